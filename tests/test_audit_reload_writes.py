"""How editors and deploy tools really write files, against the real watcher: the last
good configuration serves through every intermediate state, the final state goes live
once, and listeners hear one event per changed key (no storm)."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import pytest

from cfgcore.config.manager import ConfigurationManager, default_config_dir
from tests.waiting import wait_for

DEFAULTS = default_config_dir()


def _text(name: str, generation: int) -> str:
    with open(os.path.join(DEFAULTS, name), encoding="utf-8") as f:
        body = f.read()
    key = "base" if name == "base.yaml" else "env"
    return body + f"\naudit_gen:\n  {key}: {generation}\n"


def vim(d, name, text):  # backupcopy=no: original renamed to a backup, new file, backup gone
    os.rename(d / name, d / (name + "~"))
    with open(d / name, "w") as f:
        f.write(text)
    os.unlink(d / (name + "~"))


def sed_i(d, name, text):  # GNU sed -i: a temporary file in the directory, renamed over
    tmp = d / "sedAb12Cd"
    tmp.write_text(text)
    os.rename(tmp, d / name)


def in_place(d, name, text):  # truncate, then two writes
    with open(d / name, "w") as f:
        f.write(text[: len(text) // 2])
        f.flush()
        f.write(text[len(text) // 2 :])


def cp_over(d, name, text):  # cp: truncates the existing inode and writes
    src = d.parent / ("src-" + name)
    src.write_text(text)
    shutil.copyfile(src, d / name)


def rsync(d, name, text):  # rsync: ".name.XXXXXX" next to it, then renamed
    tmp = d / f".{name}.Xy12Ab"
    tmp.write_text(text)
    os.rename(tmp, d / name)


def delete_recreate(d, name, text):
    os.unlink(d / name)
    (d / name).write_text(text)


PATTERNS = [vim, sed_i, in_place, cp_over, rsync, delete_recreate]


@pytest.fixture
def manager(tmp_path):
    d = tmp_path / "config"
    d.mkdir()
    for name in os.listdir(DEFAULTS):
        (d / name).write_text(_text(name, 0) if name in ("base.yaml", "staging.yaml") else "")
        if name not in ("base.yaml", "staging.yaml"):
            shutil.copy(os.path.join(DEFAULTS, name), d / name)
    m = ConfigurationManager(d, environ={})
    m.load_environment_config("staging")
    m.enable_hot_reload()
    yield m
    m.close()


@pytest.mark.parametrize("write", PATTERNS, ids=[p.__name__ for p in PATTERNS])
def test_write_pattern_goes_live_once_and_never_serves_a_partial_file(manager, write):
    d = Path(manager.config_dir)
    changes, errors = [], []
    manager.register_change_listener(
        lambda e: errors.append(e) if e.is_error else changes.append(e)
    )
    stop = threading.Event()
    bad: list[object] = []

    def reader():
        while not stop.is_set():
            try:
                gen = manager["audit_gen"]
                if gen.get("env") not in (0, 1) or manager.get("music_streaming") is None:
                    bad.append(dict(gen))
            except Exception as exc:
                bad.append(exc)

    t = threading.Thread(target=reader)
    t.start()
    start = manager.version
    try:
        for generation in (1, 2):
            write(d, "staging.yaml", _text("staging.yaml", generation))
            assert wait_for(lambda g=generation: manager.get("audit_gen.env") == g)
            if generation == 1:
                stop.set()
                t.join()
        # Readers see a swap before its listeners hear of it (swap, then publish): under
        # load the second event may not be queued yet when the value is already live.
        assert wait_for(lambda: len(changes) + len(errors) >= 2)
        assert manager.events.wait_idle()
        assert manager.version == start + 2  # one activation per effective change
        assert [(e.config_path, e.old_value, e.new_value) for e in changes] == [
            ("audit_gen.env", 0, 1),
            ("audit_gen.env", 1, 2),
        ]
        assert manager.last_error is None
    finally:
        stop.set()
        t.join()
    assert bad == []


def test_git_checkout_of_two_files_never_goes_live_mixed(manager):
    """``git checkout`` unlinks and writes each file, one after another."""
    d = Path(manager.config_dir)
    seen = []
    manager.register_change_listener(
        lambda e: None if e.is_error else seen.append(dict(manager.snapshot.config["audit_gen"]))
    )
    start = manager.version
    for generation in (1, 2, 3):
        for name in ("base.yaml", "staging.yaml"):
            os.unlink(d / name)
            (d / name).write_text(_text(name, generation))
        assert wait_for(lambda g=generation: manager.get("audit_gen") == {"base": g, "env": g})
    assert manager.events.wait_idle()
    assert manager.version == start + 3
    assert all(g["base"] == g["env"] for g in seen)


def test_a_new_profile_file_goes_live_when_that_profile_is_chosen(manager):
    d = Path(manager.config_dir)
    version = manager.version
    (d / "profiles").mkdir()
    (d / "profiles" / "audit_canary.yaml").write_text(
        "name: audit_canary\nkind: deployment\noverrides:\n  audit_gen:\n    env: 7\n"
    )
    assert wait_for(lambda: manager.reloader.confirmed_at > 0)
    manager.set_profile("audit_canary")
    assert manager.get("audit_gen.env") == 7
    assert manager.version > version
    (d / "profiles" / "audit_canary.yaml").write_text(
        "name: audit_canary\nkind: deployment\noverrides:\n  audit_gen:\n    env: 8\n"
    )
    assert wait_for(lambda: manager.get("audit_gen.env") == 8)
