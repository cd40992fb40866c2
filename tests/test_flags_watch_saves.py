"""The dynamic manager's flags-file watcher, with a real watcher and real saves.

A save that renames the flags file away before writing the new one (vim) left no
timestamp for the settle wait, so the watcher read the file while it was missing and
reported a refusal for a save that was fine; and ``stop_file_watching()`` waited out a
settle wait it could not interrupt. The config manager's watcher had both fixed in
round 4; the flags-file watcher now passes the same ``expected`` and ``stop``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

import cfgcore.config.settle as settle
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from tests.waiting import wait_for

SETTLE_MS = 2500  # wide: the steps below fall inside one window on a loaded machine


def _doc(default: bool) -> str:
    return json.dumps({"flags": {"new_ui": {"default": "on" if default else "off",
                                            "variants": {"on": True, "off": False}}}})  # fmt: skip


@pytest.fixture
def watched(tmp_path, monkeypatch):
    monkeypatch.setattr(settle, "DEFAULT_SETTLE_MS", SETTLE_MS)
    path = tmp_path / "flags.json"
    path.write_text(_doc(False))
    old = time.time() - 3600
    os.utime(path, (old, old))  # long settled, as on a server
    m = DynamicConfigurationManager(path, log_exposures=False, record_usage=False)
    events: list = []
    m.events.register(events.append)
    asyncio.run(m.start_file_watching())
    yield path, m, events
    m.close()


def test_a_flags_file_renamed_away_and_written_again_is_no_refusal(watched):
    path, m, events = watched
    assert m.engine.is_enabled("new_ui") is False
    os.rename(path, path.with_name("flags.json~"))
    # the old wait read at once and refused the missing file: look for that first
    wait_for(lambda: m.last_error is not None or any(e.is_error for e in events), timeout=0.8)
    path.write_text(_doc(True))
    os.unlink(path.with_name("flags.json~"))
    assert wait_for(lambda: m.engine.is_enabled("new_ui") is True, timeout=30)
    assert m.last_error is None
    assert not [e for e in events if e.is_error]


def test_stopping_the_watcher_ends_a_settle_wait(watched):
    path, m, _ = watched
    path.write_text(_doc(True))  # fresh: the watcher's reload waits SETTLE_MS for it
    time.sleep(0.5)  # the watcher has heard of it and is waiting
    started = time.monotonic()
    asyncio.run(m.stop_file_watching())
    assert time.monotonic() - started < SETTLE_MS / 1000 / 2
