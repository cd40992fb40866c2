"""Fix 8 (a neighbour of the transform fix): a profile whose overrides hold one dict in
many places.

``Profile.apply`` refused a configuration holding one mapping in so many places that
copying it expands past 5,000,000 values (c3c1708), but not a profile's own
``overrides``: a ``Profile`` made in Python with one dict at both keys of each of 60
levels was merged and frozen path by path, and ``apply`` / ``apply_profile`` never
returned. Both are now refused with the same error; overrides sharing a dict a few
times are applied as their copy.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from cfgcore.config.profiles import Profile


def _run_bounded(body: str) -> list[str]:
    """``body`` in a child with a memory cap and a time bound (the old code never ends)."""
    code = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
    code += textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_overrides_expanding_past_the_bound_are_refused():
    out = _run_bounded(
        """
        from cfgcore.config.profiles import Profile, ProfileManager
        from cfgcore.errors import ConfigError
        node = {"n": 1}
        for _ in range(60):
            node = {"a": node, "b": node}
        profile = Profile("wide", "deployment", {"svc": node})
        manager = ProfileManager()
        manager.register(profile)
        for apply in (
            lambda: profile.apply({"svc": {"n": 0}}),
            lambda: manager.apply_profile({"svc": {"n": 0}}, profile),
            lambda: manager.apply_profile({"svc": {"n": 0}}, "wide"),
        ):
            try:
                apply()
                print("applied")
            except ConfigError as exc:
                print("its overrides" in str(exc), "more than 5,000,000 values" in str(exc))
        """
    )
    assert out == ["True True"] * 3


def test_overrides_sharing_a_dict_a_few_times_are_applied_as_copies():
    shared = {"timeout": 5, "retries": [1, 2]}
    profile = Profile("p", "deployment", {"clients": {"db": shared, "cache": shared}})
    out = profile.apply({"clients": {"db": {"timeout": 1, "pool": 3}}})
    assert out == {"clients": {"db": {"timeout": 5, "retries": [1, 2], "pool": 3}, "cache": shared}}
    out["clients"]["db"]["timeout"] = 0
    assert out["clients"]["cache"]["timeout"] == 5
