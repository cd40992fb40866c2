"""Round 5, the secrets registry past any count: a count limit (4,096 remembered, the
first 1,024 pinned) let a flood of secret-named overrides push a secret resolved later
out of the registry, shown in clear from then on; and masking tried every remembered
secret at every character of a message (0.1 s per 3 KiB message at 4,000 secrets,
seconds for a traceback), so the flood also made every cfgcore log line slow."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.runtime import secrets
from tests.fuzz import examples


def test_a_secret_resolved_after_a_flood_is_masked_whatever_the_count():
    secrets.forget_secrets()
    try:
        for i in range(1100):  # past the pinned ones
            secrets.register_secret(f"flood-a-{i:05d}")
        secrets.register_secret("RealRotatedPassw0rd")
        for i in range(5000):  # past the old count limit
            secrets.register_secret(f"flood-b-{i:05d}")
        assert secrets.mask_text("login with RealRotatedPassw0rd refused") == (
            "login with *** refused"
        )
        assert secrets.mask_text("flood-a-01099 flood-b-00000") == "*** ***"
    finally:
        secrets.forget_secrets()


def test_past_the_budget_the_least_recent_unpinned_go_and_the_index_follows(monkeypatch):
    monkeypatch.setattr(secrets, "_ENTRY_COST", 0)
    monkeypatch.setattr(secrets, "_REGISTRY_BUDGET", 10 * 16)  # ten 16-character secrets
    monkeypatch.setattr(secrets, "_PINNED", 2)
    monkeypatch.setattr(secrets, "_forgotten_said", True)
    secrets.forget_secrets()
    try:
        for i in range(40):
            secrets.new_build_epoch()  # one build each
            secrets.register_secret(f"secret-number-{i:02d}")
            secrets.register_secret("secret-number-00")  # re-resolved by every build
        assert secrets._cost <= 10 * 16
        kept = [i for i in range(40) if f"secret-number-{i:02d}" in secrets._known]
        assert kept == [0, 1, *range(32, 40)]
        # The index holds exactly the spellings of what is remembered: nothing leaks.
        assert set(secrets._spelled) == {f for v in secrets._known.values() for f in v}
        indexed = {f for b in secrets._index.values() for g in b.groups.values() for f in g}
        assert indexed == set(secrets._spelled)
        masked = secrets.mask_text(" ".join(f"secret-number-{i:02d}" for i in range(40)))
        assert masked.split() == [
            "***" if i in kept else f"secret-number-{i:02d}" for i in range(40)
        ]
    finally:
        secrets.forget_secrets()


_ALPHABET = "ab'\"\\\n\u00e9x"


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.text(_ALPHABET, min_size=1, max_size=7), max_size=12),
    st.text(_ALPHABET + "*", max_size=40),
)
def test_the_index_masks_exactly_as_one_alternation(found, text):
    secrets.forget_secrets()
    try:
        for value in found:
            secrets.register_secret(value)
        spelled = sorted(secrets._spelled, key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, spelled))) if spelled else None
        for _ in range(3):  # the index's subn is the alternation's, pass after pass
            if pattern is None:
                break
            expected = pattern.subn(secrets.MASK, text)
            for lengths in (0, 100):  # buckets searched by their alternation, by length
                secrets._BUCKET_LENGTHS = lengths
                try:
                    assert secrets._index_subn(text) == expected
                finally:
                    secrets._BUCKET_LENGTHS = 4
            text = expected[0]
        # And mask_text answers the same with the alternation or with the index.
        with_pattern = secrets.mask_text(text)
        old = secrets._REGEX_SPELLINGS
        secrets._REGEX_SPELLINGS = -1
        secrets._pattern_stale = True
        try:
            assert secrets.mask_text(text) == with_pattern
        finally:
            secrets._REGEX_SPELLINGS = old
            secrets._pattern_stale = True
    finally:
        secrets.forget_secrets()


CHILD = textwrap.dedent(
    """
    import json, random, resource, string
    resource.setrlimit(resource.RLIMIT_CPU, (30, 30))  # the old masking took minutes
    from cfgcore.runtime import secrets
    rng = random.Random(5)
    chars = string.ascii_letters + string.digits
    values = ["".join(rng.choices(chars, k=16)) for _ in range(20000)]
    for value in values:
        secrets.register_secret(value)
    text = "".join(rng.choices(chars + " ", k=30000))
    outs = [secrets.mask_text(text + " " + values[i]) for i in range(0, 20000, 400)]
    # Secrets sharing their first and last characters, over a text of those: each
    # position is a candidate for every length.
    for k in range(1, 1001):
        secrets.register_secret("aaaa" + "b" * k + "aaaa")
    crafted = secrets.mask_text("a" * 20000 + "aaaabbbaaaa")
    print(json.dumps({"masked": sum(o.endswith(" ***") for o in outs), "n": len(outs),
                      "crafted": crafted[-8:]}))
    """
)


def test_many_secrets_cost_masking_no_time_per_secret():
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]  # killed by the CPU limit before
    out = json.loads(proc.stdout)
    assert out["masked"] == out["n"] == 50
    assert out["crafted"] == "aaaaa***"  # the a's are no secret; the secret after them is


def test_a_flood_inside_one_build_cannot_push_out_that_builds_secrets(monkeypatch):
    monkeypatch.setattr(secrets, "_ENTRY_COST", 0)
    monkeypatch.setattr(secrets, "_REGISTRY_BUDGET", 10 * 16)
    monkeypatch.setattr(secrets, "_PINNED", 0)
    monkeypatch.setattr(secrets, "_forgotten_said", True)
    secrets.forget_secrets()
    try:
        secrets.new_build_epoch()
        secrets.register_secret("an-old-build-secret")
        secrets.new_build_epoch()
        secrets.new_build_epoch()  # this build: its own secret, then a flood past the budget
        secrets.register_secret("this-build-secret")
        for i in range(100):
            secrets.register_secret(f"flood-value-{i:04d}")
        assert secrets.mask_text("this-build-secret flood-value-0000") == "*** ***"
        assert secrets.mask_text("an-old-build-secret") == "an-old-build-secret"
        secrets.new_build_epoch()
        secrets.new_build_epoch()  # two builds later, what no build re-resolved goes
        secrets.register_secret("a-later-secret-0")
        assert secrets._cost <= 10 * 16
        assert secrets.mask_text("a-later-secret-0 flood-value-0099") == "*** ***"
        assert secrets.mask_text("flood-value-0000") == "flood-value-0000"
    finally:
        secrets.forget_secrets()


FLOOD = textwrap.dedent(
    """
    import resource
    resource.setrlimit(resource.RLIMIT_CPU, (9, 9))  # looking past the pinned: 16 s
    from cfgcore.runtime import secrets
    secrets._REGISTRY_BUDGET = 2 << 20
    secrets._forgotten_said = True
    for i in range(1024):
        secrets.register_secret(f"pinned-{i:06d}")
    for i in range(150_000):
        if i % 1000 == 0:
            secrets.new_build_epoch()
        secrets.register_secret(f"flood-{i:08d}")
    assert secrets._cost <= secrets._REGISTRY_BUDGET
    assert secrets.mask_text("pinned-000000 flood-00149999") == "*** ***"
    """
)


def test_forgetting_past_the_budget_costs_no_time_per_pinned_secret():
    proc = subprocess.run([sys.executable, "-c", FLOOD], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
