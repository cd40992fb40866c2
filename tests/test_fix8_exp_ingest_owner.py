"""Eighth round: `cfgcore experiment ingest` (and its recovery of an unfinished one)
run as root in the service's state directory. A rewrite of a log already kept its
owner (runtime.atomicio); a log the ingest created (the first one, or the new file
after a rotation), its lock files and a journal a crash left were root's, 0640, so
the service could no longer append to its own logs (its lock file did not open) or
report. They now get the owner and group of the file they follow, else of the state
directory. Real files, a real service process under another uid."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap

import pytest

from cfgcore.experiments.exposures import JsonLinesSink, append_together, recover_appends

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving files away needs root"
)

SERVICE = (4321, 4321)  # the service's uid and gid (need not exist)


def _line(i: int) -> bytes:
    return b'{"test":"t","variant":"a","user":"u%d","ts":1.0}\n' % i


@pytest.fixture
def state():
    """The service's state directory, where its user can reach it (pytest's own
    temporary directories are root's, 0700)."""
    top = tempfile.mkdtemp(prefix="cfgcore-fix8-")
    try:
        os.chmod(top, 0o755)
        path = pathlib.Path(top) / "state"
        path.mkdir()
        os.chown(path, *SERVICE)
        yield path
    finally:
        shutil.rmtree(top)


def _service_appends(path) -> subprocess.CompletedProcess:
    """The service's writer, as its own user, appends one record."""
    code = textwrap.dedent(f"""
        import os
        from cfgcore.experiments.exposures import JsonLinesSink
        os.setgid({SERVICE[1]}); os.setuid({SERVICE[0]})  # (imported first: /root)
        JsonLinesSink({str(path)!r}, max_bytes=10**6).write(
            [{{"test": "t", "variant": "a", "user": "svc", "ts": 1.0}}])
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def _owner(path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_uid, st.st_gid


def test_an_ingest_as_root_leaves_the_service_its_logs(state):
    exposures = JsonLinesSink(state / "flags.exposures.jsonl", max_bytes=200)
    metrics = JsonLinesSink(state / "flags.metrics.jsonl", max_bytes=200)
    journal = str(state / ".ingest.journal")
    # First ingest: the logs do not exist yet.
    append_together([(exposures, _line(1)), (metrics, _line(2))], journal)
    for name in ("flags.exposures.jsonl", "flags.metrics.jsonl",
                 "flags.exposures.jsonl.lock", "flags.metrics.jsonl.lock"):  # fmt: skip
        assert _owner(state / name) == SERVICE, name
    # Enough to rotate: the new current file is the service's again.
    for i in range(10):
        append_together([(exposures, _line(i) * 3), (metrics, _line(i) * 3)], journal)
    assert os.path.exists(state / "flags.exposures.jsonl.1")
    assert _owner(state / "flags.exposures.jsonl") == SERVICE
    assert _owner(state / "flags.exposures.jsonl.1") == SERVICE
    done = _service_appends(state / "flags.exposures.jsonl")
    assert done.returncode == 0, done.stderr


def test_a_journal_a_crashed_ingest_left_is_the_service_s(state):
    log = state / "flags.exposures.jsonl"
    journal = state / ".ingest.journal"
    code = textwrap.dedent(f"""
        import os
        from cfgcore.experiments import exposures
        from cfgcore.experiments.exposures import JsonLinesSink, append_together
        exposures._write_all = lambda fd, data: os._exit(3)  # killed after the journal
        append_together([(JsonLinesSink({str(log)!r}), {_line(7)!r})], {str(journal)!r})
    """)
    crashed = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert crashed.returncode == 3 and journal.exists()
    assert _owner(journal) == SERVICE
    # The service's own recovery (its next report) can read and take it back.
    code = textwrap.dedent(f"""
        import os
        from cfgcore.experiments.exposures import recover_appends
        os.setgid({SERVICE[1]}); os.setuid({SERVICE[0]})  # (imported first: /root)
        assert recover_appends({str(journal)!r})
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not journal.exists()


def test_a_recovery_as_root_keeps_the_log_s_owner_and_group(state):
    log = state / "flags.exposures.jsonl"
    log.write_bytes(_line(1) + _line(2)[:20])
    os.chown(log, *SERVICE)
    os.chmod(log, 0o660)
    journal = state / ".ingest.journal"
    plan = json.dumps({"appends": [{"path": str(log), "offset": len(_line(1)),
                                    "data": _line(2).decode()}]}).encode()  # fmt: skip
    journal.write_bytes(plan)
    assert recover_appends(str(journal))
    assert log.read_bytes() == _line(1)
    assert _owner(log) == SERVICE and os.stat(log).st_mode & 0o777 == 0o660
