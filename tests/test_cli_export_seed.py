"""`cfgcore export --format flagd` where no flag document exists yet: the bundled demo flags.

A service started where its flags file (or Redis store) holds nothing serves the
bundled music-streaming flags (``flagstore.bundled_seed``; never in production), and
`cfgcore export` without ``--flags`` exports what the services serve: so it exports
them, saying so on stderr (stdout stays the flagd document alone), and leaves out, by
name, the few that flagd cannot express (a rollout on cfgcore's own bucketing, a
prerequisite). The real command line runs in a new user's scratch directory (no
configuration, no CFGCORE_*/CONFIG_* variables, HOME inside it), and what it exports
imports back with `cfgcore import flagd` serving every user as the bundled flags do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cfgcore
from cfgcore.engine import bundled_flags_path
from cfgcore.interop import flagd
from cfgcore.snapshot import load_snapshot
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.texts import any_text


def _new_user(home: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CFGCORE_", "CONFIG_", "XDG_")) and k != "PYTHONPATH"
    }
    env.update(
        HOME=str(home),
        # the cfgcore under test, wherever it is imported from
        PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__))),
        **extra,
    )
    return env


def _cfgcore(cwd: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfgcore", *argv], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``(stdout, stderr, the scratch directory)`` of the export run in a new user's
    empty directory, and the flag file `cfgcore import flagd` made of it there."""
    home = tmp_path_factory.mktemp("new-user")
    work = home / "work"
    work.mkdir()
    env = _new_user(home)
    proc = _cfgcore(work, env, "export", "--format", "flagd")
    assert proc.returncode == 0, proc.stderr
    (work / "exported.json").write_text(proc.stdout)
    back = _cfgcore(work, env, "import", "flagd", "exported.json", "--out", "back.yaml")
    assert back.returncode == 0, back.stderr
    return proc.stdout, proc.stderr, work, back.stdout


def test_export_without_a_flag_document_exports_the_bundled_flags(exported):
    stdout, stderr, work, _ = exported
    document = json.loads(stdout)  # stdout is the document alone
    seed = load_snapshot(bundled_flags_path())
    state_file = work.parent / ".local" / "state" / "cfgcore" / "flags.json"
    # Said on stderr: which document was missing, and what was exported instead.
    assert f"no flag document at {state_file}: exported the bundled demo flags" in stderr
    assert bundled_flags_path() in stderr
    # Each flag of the bundled set is exported, or left out and named with the reason.
    left_out = {
        line.split(":")[0].removeprefix("  - flags.")
        for line in stderr.splitlines()
        if line.startswith("  - flags.")
    }
    assert f"left out {len(left_out)} of them that do not fit flagd" in stderr
    assert set(document["flags"]) | left_out == set(seed.flags)
    assert not set(document["flags"]) & left_out and document["flags"]
    # Left out: only flags flagd cannot express (today cfgcore's own rollout and split
    # bucketing, a prerequisite), each refused when exported on its own.
    assert left_out
    for name in left_out:
        alone = msgspec.structs.replace(seed, flags={name: seed.flags[name]})
        with pytest.raises(cfgcore.ConfigError, match="does not fit flagd"):
            flagd.from_snapshot(alone)
    # Nothing is written where the services would keep their flags.
    assert not state_file.exists()


def test_the_exported_bundled_flags_import_back(exported):
    stdout, _, work, imported = exported
    names = set(json.loads(stdout)["flags"])
    assert f"imported {len(names)} flags from flagd into back.yaml" in imported
    assert set(load_snapshot(str(work / "back.yaml")).flags) == names


_TEXT = st.one_of(st.sampled_from(["premium", "family", "student", "free", "EU", "UK",
                                   "US", "eu", "Premium", ""]), any_text(max_size=6))  # fmt: skip
_VALUE = st.one_of(st.none(), _TEXT, st.integers(-2, 2), st.booleans())


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(segment=_VALUE, region=_VALUE, user=any_text(min_size=1, max_size=8))
def test_the_imported_flags_serve_every_user_as_the_bundled_ones(
    exported, make_py_and_c, segment, region, user
):
    _, _, work, _ = exported
    bundled = load_snapshot(bundled_flags_path())
    back = load_snapshot(str(work / "back.yaml"))
    attributes = {k: v for k, v in (("user_segment", segment), ("region", region)) if v is not None}
    for make in make_py_and_c:  # both evaluators
        original, again = make(bundled), make(back)
        for name in back.flags:
            want = original.evaluate(name, {"user_id": user, **attributes})
            got = again.evaluate(name, flagd.context(user, attributes))
            assert (got.variant, got.value) == (want.variant, want.value), name


def test_production_never_exports_the_bundled_flags(tmp_path):
    env = _new_user(tmp_path, CONFIG_ENVIRONMENT="production")
    proc = _cfgcore(tmp_path, env, "export", "--format", "flagd")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "flag file does not exist (in production the bundled demo flags" in proc.stderr


def test_a_flag_document_that_exists_is_exported_alone(tmp_path, monkeypatch, capsys):
    """No word of the bundled flags where the services' document exists (here the state
    directory's flags.json): it alone is exported, and whole or not at all."""
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(state))
    (state / "flags.json").write_text(
        json.dumps({"flags": {"mine": {"rules": [{"when": {"attr": "plan", "eq": "pro"},
                                                  "serve": "on"}], "default": "off"}}})
    )  # fmt: skip
    code, stdout, stderr = run_cli(capsys, "export", "--format", "flagd")
    assert code == 0 and set(json.loads(stdout)["flags"]) == {"mine"}
    assert "bundled" not in stderr
    (state / "flags.json").write_text(
        json.dumps({"flags": {"r": {"rules": [{"rollout": 10, "serve": "on"}], "default": "off"}}})
    )
    code, stdout, stderr = run_cli(capsys, "export", "--format", "flagd")
    assert code == 1 and stdout == "" and "flags.r: does not fit flagd" in stderr


def test_an_empty_redis_store_exports_the_bundled_flags(redis_server, tmp_path, monkeypatch,
                                                        capsys):  # fmt: skip
    """A Redis store holding no document serves the bundled flags too (as version 0)."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = f"redis://127.0.0.1:{redis_server.port}/0?namespace=export-seed"
    monkeypatch.setenv("CFGCORE_FLAG_STORE", url)
    code, stdout, stderr = run_cli(capsys, "export", "--format", "flagd")
    assert code == 0, stderr
    assert f"no flag document at redis://127.0.0.1:{redis_server.port}/0" in stderr
    assert f"exported the bundled demo flags, which services serve in its place " \
           f"({bundled_flags_path()})" in stderr  # fmt: skip
    exported = set(json.loads(stdout)["flags"])
    assert exported and exported < set(load_snapshot(bundled_flags_path()).flags)
