"""Hot reload: an input refused while it moved is read again before it is reported.

A watcher reads an input once it looks settled and refuses it if it is broken. When the
file moved while it was being read (a writer still at work; a truncation, whose new size
a racing ``stat`` can see with the old modification time), the refusal was reported
against the fingerprint taken before the read, which no longer describes the file: the
next poll or watcher event read the same broken input under its new fingerprint and
reported the same refusal a second time (a flaky double error event for an emptied
``.env`` on loaded machines). A build refused while its inputs moved is now read again
first, as a build that succeeded is, and a file caught in the middle of a truncation
(its new size with the old times) is waited for like one still being written: the
refusal is reported once, for what the files hold. Real files and the real watcher;
only the moment of the move, or the stat that races the truncation, is arranged.
"""

from __future__ import annotations

import os
import time

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.settle import mid_truncation
from cfgcore.errors import ConfigError
from tests.waiting import wait_for


@pytest.fixture
def service(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("H", raising=False)
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text("app:\n  host: ${H:-localhost}\n")
    (config / "development.yaml").write_text("{}\n")
    env_file = tmp_path / ".env"
    env_file.write_text("H=db.internal\n")
    long_ago = time.time_ns() - 10 * 10**9  # written a while ago: settled
    for path in (config / "base.yaml", config / "development.yaml", env_file):
        os.utime(path, ns=(long_ago, long_ago))
    m = ConfigurationManager(
        str(config), environment="development", validate=False, record_usage=False
    )
    m.load_environment_config()
    events: list = []
    m.register_change_listener(events.append)
    yield m, env_file, events
    m.close()


def _moved_after_first_refusal(m, path, moves: list[int]) -> None:
    """Wrap the manager's builder so the first refused build finds ``path`` touched once
    it has read it: the same broken bytes, a later modification time."""
    build = m.builder.build

    def building(*args, **kwargs):
        try:
            return build(*args, **kwargs)
        except ConfigError:
            if not moves:
                st = os.stat(path)
                os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
                moves.append(1)
            raise

    m.builder.build = building


def test_a_refusal_read_while_the_input_moved_is_reported_once(service):
    m, env_file, events = service
    moves: list[int] = []
    _moved_after_first_refusal(m, env_file, moves)
    m.enable_hot_reload(poll_interval=0.05)
    env_file.write_text("")  # emptied: refused, "a write in progress?"
    assert wait_for(lambda: m.last_error is not None and moves)
    assert "empty" in str(m.last_error)
    # Many polls later (and the watcher's event for the touch): still one report.
    seen = m.reloader.confirmed_at
    assert wait_for(lambda: m.reloader.confirmed_at > seen + 0.3)
    assert m.events.wait_idle(10)
    errors = [e for e in events if e.is_error]
    assert len(errors) == 1, errors
    assert m.get("app.host") == "db.internal"  # the last good version serves on
    assert m.reloader.rejected_fingerprint == m.reloader.fingerprint("development")

    env_file.write_text("H=db.internal\n")  # repaired: the refusal ends, unreported again
    assert wait_for(lambda: m.last_error is None)
    assert m.events.wait_idle(10)
    assert len([e for e in events if e.is_error]) == 1


def test_an_explicit_reload_refused_while_the_input_moved_reports_what_the_files_hold(service):
    m, env_file, events = service
    moves: list[int] = []
    env_file.write_text("")
    _moved_after_first_refusal(m, env_file, moves)
    assert m.reload() is False
    assert moves  # it moved during the first read, and was read again
    errors = [e for e in events if e.is_error]
    assert len(errors) == 1 and "empty" in str(m.last_error)
    assert m.get("app.host") == "db.internal"


def test_mid_truncation_is_a_new_size_under_old_times():
    live = (("/c/.env", 7, 14, 100, 100), ("/c/base.yaml", 8, 29, 90, 90))
    torn = (("/c/.env", 7, 0, 100, 100), ("/c/base.yaml", 8, 29, 90, 90))
    done = (("/c/.env", 7, 0, 200, 200), ("/c/base.yaml", 8, 29, 90, 90))
    replaced = (("/c/.env", 9, 0, 100, 100), ("/c/base.yaml", 8, 29, 90, 90))
    assert mid_truncation(torn, [live])
    assert mid_truncation(torn, [(), live])  # (every input missing is a fingerprint too)
    assert not mid_truncation(done, [live])  # the times landed: an ordinary change
    assert not mid_truncation(replaced, [live])  # another file (a rename over it)
    assert not mid_truncation(live, [live])
    assert not mid_truncation(torn, [])  # nothing seen before: nothing to compare
    assert not mid_truncation((), [live])  # deleted: _vanished's concern, not this one


TORN_FOR = 0.045  # under the 60 ms the reload waits for a change to settle


def test_a_file_seen_mid_truncation_is_waited_for_and_reported_once(service):
    # The kernel sets an emptied file's size, then its times, and stat takes no lock:
    # a stat in between sees size 0 with the old times, a change that looks long
    # settled. Arranged here for TORN_FOR seconds, as a truncation preempted under load.
    m, env_file, events = service
    real = m.reloader.fingerprint
    live = {entry[0]: entry for entry in real("development")}
    emptied_at: list[float] = []

    def racing_stat(env):
        fp = real(env)
        if emptied_at and time.monotonic() - emptied_at[0] < TORN_FOR:
            old = live[str(env_file)]
            fp = tuple((p, i, s, old[3], old[4]) if p == old[0] else (p, i, s, mt, ct)
                       for p, i, s, mt, ct in fp)  # fmt: skip
        return fp

    m.reloader.fingerprint = racing_stat
    env_file.write_text("")
    emptied_at.append(time.monotonic())
    assert mid_truncation(racing_stat("development"), [m._current().fingerprint])
    m.reloader.reload("reload", background=True)  # the watcher's reload, in the window
    assert m.last_error is not None and "empty" in str(m.last_error)
    # refused under the file's final fingerprint, not the torn one
    assert m.reloader.rejected_fingerprint == real("development")
    for _ in range(5):  # later polls and watcher events: nothing new to read or report
        m.reloader.poll()
        m.reloader.reload("reload", background=True)
    assert m.events.wait_idle(10)  # (a watcher's reload tells listeners on another thread)
    assert len([e for e in events if e.is_error]) == 1
    assert m.get("app.host") == "db.internal"
