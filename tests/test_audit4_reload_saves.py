"""Fourth audit, hot reload: saves that remove a file for a moment, and close() mid-wait.

Real files and the real watchfiles watcher. An editor that renames the original away
before writing the new file (vim's ``backupcopy=no``), a deploy that deletes and
re-creates a file, or a directory moved away and back, leave an input missing for a
few milliseconds. A removal has no timestamp, so the settle wait used to find the other
inputs old and read at once: a spurious rejection (an error event, an ERROR log, the
audit log, ``last_error``) for a save that was fine. And ``close()`` waited out a
settle wait it could not interrupt (or gave up on the watcher, which then went on).
"""

from __future__ import annotations

import logging
import os
import threading

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.settle import file_fingerprint, wait_until_settled
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for

# Wide enough that the steps below (a removal, a bounded look for a premature read,
# the write that completes the save) fall inside one settle window on a loaded machine.
SETTLE_MS = 2500


def _env(n: int) -> str:
    return f"svc:\n  a: {n}\n  b: {n}\n"


def _written_an_hour_ago(root):
    # Inputs long settled, as on a server: what the wait has to go on is the removal.
    for name in os.listdir(root):
        os.utime(root / name, (os.path.getmtime(root / name) - 3600,) * 2)


@pytest.fixture
def watched(tmp_path):
    root = tmp_path / "config"
    root.mkdir()
    (root / "base.yaml").write_text("app:\n  name: svc\nsvc:\n  a: 0\n  b: 0\n")
    (root / "development.yaml").write_text(_env(1))
    _written_an_hour_ago(root)
    m = ConfigurationManager(root, environment="development", environ={})
    m.load_environment_config()
    m.reloader.settle_ms = SETTLE_MS
    events: list = []
    m.register_change_listener(events.append)
    m.enable_hot_reload()
    yield root, m, events
    m.close()


def _rename_away_then_write(root):
    env = root / "development.yaml"
    os.rename(env, root / "development.yaml~")  # vim: the original becomes the backup
    yield
    env.write_text(_env(2))
    os.unlink(root / "development.yaml~")


def _delete_then_create(root):
    (root / "development.yaml").unlink()
    yield
    (root / "development.yaml").write_text(_env(2))


def _directory_away_and_back(root):
    away = root.with_name("config.away")
    os.rename(root, away)
    yield
    (away / "development.yaml").write_text(_env(2))
    os.rename(away, root)


@pytest.mark.parametrize(
    "save", [_rename_away_then_write, _delete_then_create, _directory_away_and_back]
)
def test_an_input_missing_for_a_moment_is_not_a_rejection(watched, save):
    root, m, events = watched
    errors = lambda: [e for e in events if e.is_error]  # noqa: E731
    steps = save(root)
    next(steps)  # the input is missing now
    # The old wait read at once (the other inputs were long settled) and refused the
    # missing file: look for that, for a bounded time, before completing the save.
    wait_for(errors, timeout=0.8)
    next(steps, None)
    assert wait_for(lambda: m.get("svc.a") == 2 and m.get("svc.b") == 2)
    assert wait_for(lambda: len(events) >= 2)
    assert errors() == []
    assert m.last_error is None
    assert m.version == 2
    assert sorted((e.config_path, e.old_value, e.new_value) for e in events) == [
        ("svc.a", 1, 2),
        ("svc.b", 1, 2),
    ]


def test_an_input_that_stays_missing_is_refused_once_and_the_last_good_serves(tmp_path):
    root = tmp_path / "config"
    root.mkdir()
    (root / "base.yaml").write_text("app:\n  name: svc\nsvc:\n  a: 0\n")
    (root / "development.yaml").write_text(_env(1))
    m = ConfigurationManager(root, environment="development", environ={})
    m.load_environment_config()
    errors: list = []
    m.register_change_listener(lambda e: errors.append(e) if e.is_error else None)
    m.enable_hot_reload()
    try:
        (root / "base.yaml").unlink()
        assert wait_for(lambda: errors)
        assert "base.yaml" in errors[0].config_path
        assert m.get("svc.a") == 1 and m.get("app.name") == "svc"
        # further events in the directory do not report it again
        for n in range(5):
            atomic_write_text(root / "notes.txt", str(n))
        (root / "base.yaml").write_text("app:\n  name: svc2\n")
        assert wait_for(lambda: m.get("app.name") == "svc2")
        assert len(errors) == 1 and m.last_error is None
    finally:
        m.close()


def test_wait_until_settled_waits_for_a_file_that_vanished(tmp_path):
    # The writer acts right after the reader first looks (deterministic order): the
    # file is gone at the first look and back, rewritten, at the next.
    path = tmp_path / "development.yaml"
    path.write_text(_env(1))
    path.unlink()
    looks: list = []

    def take():
        found = file_fingerprint([str(path)])
        looks.append(found)
        if len(looks) == 1:
            path.write_text(_env(2))
        return found

    settled = wait_until_settled(take, 50, expected={str(path)})
    assert settled is not None and [entry[0] for entry in settled] == [str(path)]
    assert settled[0][2] == len(_env(2))


def test_wait_until_settled_ends_when_its_watcher_stops(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("a: 1\n")
    stop = threading.Event()
    stop.set()
    # a file written just now, a window of an hour: only the stop event ends this
    assert wait_until_settled(lambda: file_fingerprint([str(path)]), 3_600_000, stop=stop) is None


class _Seen(logging.Handler):
    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text, self.event = text, threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


def test_close_interrupts_a_reload_waiting_for_files_to_settle(tmp_path):
    root = tmp_path / "config"
    root.mkdir()
    (root / "base.yaml").write_text("app:\n  name: svc\nsvc:\n  a: 0\n")
    (root / "development.yaml").write_text(_env(1))
    m = ConfigurationManager(root, environment="development", environ={})
    m.load_environment_config()
    m.reloader.settle_ms = 600_000  # a writer that never stops, as far as the wait knows
    seen = _Seen("waiting for the inputs to stay unchanged")
    logger = logging.getLogger("cfgcore.manager")
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(seen)
    try:
        m.enable_hot_reload()
        watcher = m.reloader._watcher
        thread = watcher._thread
        (root / "development.yaml").write_text(_env(2))
        assert seen.event.wait(15)  # the watcher (its event or its poll) waits for it to settle
    finally:
        m.close()
        logger.removeHandler(seen)
        logger.setLevel(old_level)
    # close() stopped the watcher: its thread is gone, nothing went live after it
    assert not thread.is_alive()
    assert m.get("svc.a") == 1 and m.version == 1
