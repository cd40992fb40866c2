"""Refusals of a flapping input are logged at ERROR a few times per text and minute.

A configuration file or flags file written in turn with two bad versions (or a bad and a
good one, over and over) was logged at ERROR at every flip: only a refusal with exactly
the text of the one before went to DEBUG. Now one refusal text is logged at ERROR at
most ``BURST`` times in ``WINDOW`` seconds (broken, repaired, broken again: still two
ERRORs), more go to DEBUG, and the next ERROR of that text says how many did; every
refusal is still counted in the metrics. The windows are driven by a fake clock (no
timing)."""

from __future__ import annotations

import logging
import os
import signal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.observability.instruments import CONFIG_LOADS
from cfgcore.observability.repeats import BURST, WINDOW, RepeatedRefusals
from tests.fuzz import examples


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _errors(caplog, needle):
    return [r for r in caplog.records if r.levelno >= logging.ERROR and needle in r.getMessage()]


def _write(path, text, tick):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)
    st_ = os.stat(path)  # a new mtime each write: the poll and reload() see a change
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + tick * 1_000_000_000))


def test_a_config_file_flapping_between_refusals_is_logged_a_few_times_per_window(
    bundled_config, tmp_path, caplog
):
    path = bundled_config / "development.yaml"
    good = path.read_text()
    bad_a = good.replace("  worker_threads: 2", "  worker_threads: many")
    bad_b = good + "\nserver:\n  request_timeout_seconds: [\n"
    m = ConfigurationManager(str(bundled_config), environ={}, record_usage=False,
                             audit_log=str(tmp_path / "audit.jsonl"))  # fmt: skip
    clock = _Clock()
    m.reloader.refusals = RepeatedRefusals(clock=clock)
    try:
        m.load_environment_config("development")
        rejected = CONFIG_LOADS.value(operation="reload", result="rejected", reason="parse")
        rejected += CONFIG_LOADS.value(operation="reload", result="rejected", reason="validation")
        caplog.set_level(logging.DEBUG, logger="cfgcore")
        flips = [bad_a, bad_b, good] * 5
        for tick, text in enumerate(flips, 1):
            _write(path, text, tick)
            m.reload()
        assert m.version == 1  # every bad version refused: the first one serves
        errors = _errors(caplog, "configuration reload rejected")
        assert len(errors) == 2 * BURST, [r.getMessage() for r in errors]
        assert "performance.worker_threads" in errors[0].getMessage()  # key path named
        assert "development.yaml" in errors[0].getMessage()  # file named
        debug = [r for r in caplog.records if r.levelno == logging.DEBUG
                 and "configuration reload rejected" in r.getMessage()]  # fmt: skip
        assert len(debug) == 10 - 2 * BURST
        # Every refusal is still counted.
        now = CONFIG_LOADS.value(operation="reload", result="rejected", reason="parse")
        now += CONFIG_LOADS.value(operation="reload", result="rejected", reason="validation")
        assert now - rejected == 10

        clock.now += WINDOW  # past the window: logged again, with what was not
        caplog.clear()
        _write(path, bad_a, 20)
        m.reload()
        errors = _errors(caplog, "configuration reload rejected")
        assert len(errors) == 1
        assert f"came {5 - BURST} more time(s)" in errors[0].getMessage()
    finally:
        m.close()


def test_a_flags_file_flapping_between_refusals_is_logged_a_few_times_per_window(tmp_path, caplog):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    clock = _Clock()
    m._live.refusals = RepeatedRefusals(clock=clock)
    path = m.flags_file
    bad_a = '{"flags": {"a": {"variants": {"on": true}, "default": "nope"}}}'
    bad_b = '{"flags": {"b": ['  # (the file is JSON: flags.json)
    try:
        before = m._live.documents["rejected"]
        caplog.set_level(logging.DEBUG, logger="cfgcore")
        for tick, text in enumerate([bad_a, bad_b] * 6, 1):
            _write(path, text, tick)
            m.reload()
        assert m._live.documents["rejected"] - before == 12  # each counted
        errors = _errors(caplog, "flag document rejected")
        assert len(errors) == 2 * BURST, [r.getMessage() for r in errors]
        assert "flags.json" in errors[0].getMessage()  # file named
        assert "flags.a.default" in errors[0].getMessage()  # key path named
        clock.now += WINDOW
        caplog.clear()
        _write(path, bad_a, 30)  # (bad_b again would be the refusal standing: not read)
        m.reload()
        errors = _errors(caplog, "flag document rejected")
        assert len(errors) == 1 and f"came {6 - BURST} more time(s)" in errors[0].getMessage()
    finally:
        m.close()


@settings(max_examples=examples(300), deadline=None)
@given(
    events=st.lists(st.tuples(st.sampled_from("abc"), st.floats(0, 40)), max_size=80),
    burst=st.integers(1, 4),
)
def test_each_text_gets_at_most_burst_errors_per_window_and_the_rest_are_counted(events, burst):
    clock = _Clock()
    refusals = RepeatedRefusals(clock=clock, burst=burst)
    errors: dict[str, list[float]] = {}
    debug_since: dict[str, int] = {}
    for text, step in events:
        clock.now += step
        at_error, unlogged = refusals.judge(text)
        recent = [t for t in errors.get(text, []) if clock.now - t < WINDOW]
        # ERROR exactly while fewer than `burst` ERRORs of this text fell in the window.
        assert at_error == (len(recent) < burst)
        if at_error:
            assert unlogged == debug_since.get(text, 0)  # what went to DEBUG is told
            errors.setdefault(text, []).append(clock.now)
            debug_since[text] = 0
        else:
            assert unlogged == 0
            debug_since[text] = debug_since.get(text, 0) + 1


def test_the_texts_remembered_are_bounded():
    refusals = RepeatedRefusals(kept=4)
    for i in range(1000):
        assert refusals.judge(f"refusal {i}") == (True, 0)
    assert len(refusals._seen) == 4


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_a_refusal_was_judged_can_judge_refusals():
    refusals = RepeatedRefusals()
    with refusals._lock:  # another thread judging at fork time
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            signal.alarm(20)  # a hang ends the child by SIGALRM: reported below
            try:
                ok = refusals.judge("a: bad") == (True, 0)
            finally:
                os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
