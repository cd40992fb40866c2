"""Fourth audit, hot reload: a refused input is reported once, not once per read.

Real files and the real watchfiles watcher. Two ways one bad input used to be
reported again and again (an error event to listeners and an audit entry each time):
a file whose modification time is in the future (a skewed clock on a network
filesystem, an archive extracted with its times) never counted as settled, so the
poll read and refused it again every 0.5 s; and a file an explicit ``reload()``
refused right after it was written was refused, and reported, a second time by the
watcher that heard of the write.
"""

from __future__ import annotations

import os
import time

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for

BAD = "svc:\n  a: [1\n"  # an unclosed flow sequence


@pytest.fixture
def watched(tmp_path):
    root = tmp_path / "config"
    root.mkdir()
    (root / "base.yaml").write_text("app:\n  name: svc\nsvc:\n  a: 0\n")
    (root / "development.yaml").write_text("svc:\n  a: 1\n")
    m = ConfigurationManager(
        root, environment="development", environ={}, audit_log=tmp_path / "audit.jsonl"
    )
    m.load_environment_config()
    events: list = []
    m.register_change_listener(events.append)
    m.enable_hot_reload(poll_interval=0.2)
    yield root, m, events
    m.close()


def _finish(root, m, events):
    """Write a good version and wait for it: every event before it has been delivered."""
    atomic_write_text(root / "development.yaml", "svc:\n  a: 2\n")
    assert wait_for(lambda: m.get("svc.a") == 2)
    assert wait_for(lambda: any(e.config_path == "svc.a" for e in events))
    errors = [e for e in events if e.is_error]
    audited = [e for e in m.audit.entries() if e["kind"] == "error"]
    return errors, audited


def test_a_bad_file_dated_in_the_future_is_reported_once(watched):
    root, m, events = watched
    env = root / "development.yaml"
    atomic_write_text(env, BAD)
    future = time.time() + 3600
    os.utime(env, (future, future))
    assert wait_for(lambda: any(e.is_error for e in events))
    # Several polls (every 0.2 s) run meanwhile; each used to refuse and report it again.
    wait_for(lambda: sum(e.is_error for e in events) > 1, timeout=1.5)
    assert m.get("svc.a") == 1
    errors, audited = _finish(root, m, events)
    assert len(errors) == 1 and len(audited) == 1
    assert "development.yaml:3" in str(errors[0].error)


def test_a_file_refused_by_an_explicit_reload_is_not_reported_again_by_the_watcher(watched):
    root, m, events = watched
    atomic_write_text(root / "development.yaml", BAD)
    assert m.reload() is False  # at once: the watcher has heard of the write, or will
    assert "development.yaml" in str(m.last_error)
    # The watcher reads the same bytes once they settle and used to report them again.
    wait_for(lambda: sum(e.is_error for e in events) > 1, timeout=1.5)
    errors, audited = _finish(root, m, events)
    assert len(errors) == 1 and len(audited) == 1
    assert m.last_error is None


def test_the_same_error_in_a_new_write_is_reported_again(watched):
    # Not a re-read: a new save that is still broken is news to whoever watches.
    root, m, events = watched
    atomic_write_text(root / "development.yaml", BAD)
    assert wait_for(lambda: sum(e.is_error for e in events) == 1)
    atomic_write_text(root / "development.yaml", BAD)
    assert wait_for(lambda: sum(e.is_error for e in events) == 2)
    errors, _ = _finish(root, m, events)
    assert len(errors) == 2
