"""A configuration input broken the same way twice, with a good version live in
between, is reported both times. A refused reload remembered the inputs' fingerprint so
the poll would not retry it until they changed; a missing file (deleted, a dangling or
looping link) leaves no entry in it, so the second deletion of base.yaml, after the
restored file went live, had the first deletion's fingerprint: the watcher skipped it,
and `last_error` and health said nothing while the directory had no base.yaml. Real
files, the real watcher."""

from __future__ import annotations

import os
import time

import pytest

from cfgcore.config.manager import ConfigurationManager


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def watched(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app:\n  v: 1\n")
    (d / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(str(d), environment="development", environ={}, validate=False)
    m.load_environment_config()
    m.enable_hot_reload(poll_interval=0.05)
    yield d, m
    m.close()


def _restore(d, m, v):
    base = d / "base.yaml"
    if base.is_symlink() or base.exists():
        base.unlink()
    base.write_text(f"app:\n  v: {v}\n")
    assert _wait(lambda: m.get("app.v") == v and m.last_error is None)


BREAKS = {
    "deleted": lambda p: p.unlink(),
    "dangling link": lambda p: (p.unlink(), os.symlink(p.parent / "nowhere.yaml", p)),
    "link to itself": lambda p: (p.unlink(), os.symlink(p, p)),
}


@pytest.mark.parametrize("second", sorted(BREAKS))
@pytest.mark.parametrize("first", sorted(BREAKS))
def test_the_second_missing_base_file_is_reported_too(watched, first, second):
    d, m = watched
    BREAKS[first](d / "base.yaml")
    assert _wait(lambda: m.last_error is not None), first
    assert m.get("app.v") == 1  # the last good version keeps serving
    _restore(d, m, 2)
    BREAKS[second](d / "base.yaml")
    assert _wait(lambda: m.last_error is not None), f"{second} after {first} went unreported"
    assert str(d / "base.yaml") in str(m.last_error)
    assert m.get("app.v") == 2
    assert any(c.status != "ok" for c in m.health().readiness)
    _restore(d, m, 3)


FLAGS = "flags:\n  beta: {rules: [{serve: on}], default: off}\n"


def test_the_flags_file_deleted_a_second_time_is_reported_too(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app:\n  v: 1\n")
    (d / "development.yaml").write_text("{}\n")
    flags = d / "flags.yaml"
    flags.write_text(FLAGS)
    m = ConfigurationManager(
        str(d), environment="development", environ={}, validate=False, record_usage=False
    )
    try:
        m.load_environment_config()
        m.enable_hot_reload(poll_interval=0.05)
        live = True
        for served in (False, True, False):
            flags.unlink()
            assert _wait(lambda: m.last_error is not None)
            assert "flags file disappeared" in str(m.last_error)
            assert m.flags.is_enabled("beta", {"user_id": "u"}) is live  # kept serving
            live = served
            flags.write_text(FLAGS.replace("serve: on", f"serve: {'on' if served else 'off'}"))
            assert _wait(lambda: m.last_error is None)
            assert _wait(lambda s=served: m.flags.is_enabled("beta", {"user_id": "u"}) is s)
    finally:
        m.close()


@pytest.mark.parametrize("second", ["dangling link", "deleted"])
def test_a_dangling_flags_link_is_refused_not_dropped_silently(tmp_path, monkeypatch, second):
    """The flags file replaced by a link to nothing: the manager no longer found a flags
    file and activated a version without one, saying nothing (the disappearance check
    asked lexists(), which a dangling link passes). Later deletions were silent too."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app:\n  v: 1\n")
    (d / "development.yaml").write_text("{}\n")
    flags = d / "flags.yaml"
    flags.write_text(FLAGS)
    m = ConfigurationManager(
        str(d), environment="development", environ={}, validate=False, record_usage=False
    )
    try:
        m.load_environment_config()
        m.enable_hot_reload(poll_interval=0.05)
        flags.unlink()
        os.symlink(tmp_path / "release-2" / "flags.yaml", flags)
        assert _wait(lambda: m.last_error is not None)
        assert "flags file disappeared (a link to" in str(m.last_error)
        assert str(flags) in str(m.last_error)
        assert m.debug_info()["flags_file"] == str(flags)
        assert m.flags.is_enabled("beta", {"user_id": "u"}) is True
        flags.unlink()
        flags.write_text(FLAGS)
        assert _wait(lambda: m.last_error is None)
        BREAKS[second](flags)
        assert _wait(lambda: m.last_error is not None), second
        assert "flags file disappeared" in str(m.last_error)
        assert m.debug_info()["flags_file"] == str(flags)
    finally:
        m.close()
