"""``ConfigurationManager.pinned()`` after ``close()``.

A closed manager keeps serving reads (``get()``, ``flags``: a shutdown in progress still
answers its requests, and a hot-path read never raises), so ``pinned()`` keeps answering
too, never raising. But its pair froze: ``close()`` unsubscribed the manager from its
flag set, so a flag change made by a manager of the same store still open (the
dynamic-config API, a fleet follower) went live in ``manager.flags`` while ``pinned()``
went on answering the flags of before: two reads of one manager disagreed. The pair now
follows such a change, as ``flags`` does (the closed manager's listeners still hear
nothing). And a manager closed before it ever served flags opened its flag set on its
next read and held it for good (``close()`` had run): its watcher or fleet follower and
store were never let go of. Such a read now serves the set's document and lets go of
it. Real files, real managers."""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.dynamic_config import DynamicConfigurationManager


def _write(config_dir, gen: int) -> None:
    (config_dir / "base.yaml").write_text(f"app: {{name: svc}}\nsvc: {{gen: {gen}}}\n")
    (config_dir / "flags.yaml").write_text(
        f"flags:\n  gen:\n    variants: {{g: {gen}}}\n    default: g\n"
    )


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "development.yaml").write_text("{}\n")
    _write(config_dir, 1)
    return config_dir


def _manager(config_dir) -> ConfigurationManager:
    m = ConfigurationManager(str(config_dir), environ={})
    m.load_environment_config("development")
    return m


def test_a_closed_managers_pair_follows_what_its_flags_serve(config_dir, tmp_path):
    m = _manager(config_dir)
    dyn = DynamicConfigurationManager(
        flags_file=str(config_dir / "flags.yaml"), state_dir=tmp_path / "state"
    )
    heard: list = []
    m.register_change_listener(heard.append)
    try:
        assert dyn.engine is m.flags  # (one flag set per store per process)
        m.close()
        dyn.set_feature_flag("extra", True)  # the set is still open: dyn holds it
        snap, flags = m.pinned()
        assert m.flags.is_enabled("extra", {})
        assert flags.is_enabled("extra", {})  # answered the flags of before close()
        assert flags is m.flags.snapshot()
        assert snap.config["svc"]["gen"] == 1 and snap is m.pinned()[0]
        assert heard == []  # a closed manager's listeners hear nothing more
        assert not m.health().ready
    finally:
        dyn.close()
    # Nothing follows any more once the last holder closed: the pair stays as it is.
    assert m.pinned()[1].is_enabled("extra", {})


def test_an_update_after_close_is_paired_as_before(config_dir):
    m = _manager(config_dir)
    m.close()
    assert m.update_config("svc.gen", 7)
    snap, flags = m.pinned()
    assert snap.config["svc"]["gen"] == 7 == m.get("svc.gen")
    assert flags is m.flags.snapshot() and flags.evaluate("gen").value == 1


@pytest.mark.parametrize("read", ["pinned", "get", "flags"])
def test_a_read_after_close_does_not_hold_the_flag_set_open(config_dir, read):
    """Closed before it served anything: the read loads and serves (as before), and the
    flag set it opens is not held by the closed manager (it was held for good)."""
    m = ConfigurationManager(str(config_dir), environ={})
    m.close()
    if read == "pinned":
        snap, flags = m.pinned()
        assert snap.config["svc"]["gen"] == 1 and flags.evaluate("gen").value == 1
    elif read == "get":
        assert m.get("svc.gen") == 1
    else:
        assert m.flags.evaluate("gen").value == 1
    live = m._flags._live
    assert live is not None
    assert live.closed  # no holder: its watcher stopped, its store closed
    assert m.flags.evaluate("gen").value == 1  # the engine serves on
    assert m.pinned()[1] is m.flags.snapshot()


def test_a_read_after_close_leaves_another_managers_set_open(config_dir, tmp_path):
    dyn = DynamicConfigurationManager(
        flags_file=str(config_dir / "flags.yaml"), state_dir=tmp_path / "state"
    )
    try:
        m = ConfigurationManager(str(config_dir), environ={})
        m.close()
        assert m.pinned()[1].evaluate("gen").value == 1
        assert not dyn._live.closed and m.flags is dyn.engine
        dyn.set_feature_flag("extra", True)
        assert m.pinned()[1].is_enabled("extra", {})  # followed, though never held
    finally:
        dyn.close()
    assert dyn._live.closed  # its close was the last: the closed manager held nothing
