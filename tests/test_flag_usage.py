"""Flag usage persistence (cfgcore.runtime.usage): merged across processes under a lock,
written atomically, periodically, at close and at exit, and after a fork."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cfgcore
from cfgcore.errors import ConfigError
from cfgcore.runtime import usage as usage_mod
from cfgcore.runtime.usage import (
    Usage,
    UsageRecorder,
    merge_usage,
    read_usage,
    start_usage_recording,
    usage_path,
)
from tests.fuzz import examples
from tests.redis_server import wait_for

SRC = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))


def _writer(path: str, seen: dict[str, float], since: float) -> None:
    for _ in range(20):  # many merges each, so the processes really interleave
        merge_usage(path, seen, since=since)


def test_many_processes_merge_the_latest_time_per_flag(tmp_path):
    path = str(tmp_path / "flag-usage.json")
    ctx = multiprocessing.get_context("spawn")
    plans = [({"a": 100.0 + i, "b": 500.0 - i, f"only{i}": float(i)}, 50.0 + i) for i in range(6)]
    procs = [ctx.Process(target=_writer, args=(path, seen, since)) for seen, since in plans]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    got = read_usage(path)
    assert got.flags == {"a": 105.0, "b": 500.0, **{f"only{i}": float(i) for i in range(6)}}
    assert got.since == 50.0
    leftovers = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert leftovers == []


@settings(max_examples=examples(60), deadline=None)
@given(
    batches=st.lists(
        st.dictionaries(
            st.sampled_from(["a", "b", "c", "d"]),
            st.floats(0, 2e9, allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_merging_is_the_max_per_flag_in_any_order(tmp_path_factory, batches):
    path = tmp_path_factory.mktemp("usage") / "flag-usage.json"
    for batch in batches:
        merge_usage(path, batch, since=1.0)
    expected: dict[str, float] = {}
    for batch in batches:
        for key, value in batch.items():
            expected[key] = max(expected.get(key, value), value)
    assert read_usage(path).flags == expected


def test_nothing_is_written_when_nothing_changed(tmp_path):
    path = tmp_path / "flag-usage.json"
    merge_usage(path, {"a": 10.0}, since=5.0)
    inode = os.stat(path).st_ino
    merge_usage(path, {"a": 9.0}, since=7.0)  # older time, later start: nothing new
    assert os.stat(path).st_ino == inode  # an atomic write would have replaced the file
    merge_usage(path, {"a": 11.0})
    assert os.stat(path).st_ino != inode
    assert read_usage(path) == Usage({"a": 11.0}, 5.0)


def test_bad_values_are_ignored_when_merging(tmp_path):
    path = tmp_path / "flag-usage.json"
    merge_usage(path, {"a": float("nan"), "b": True, "c": 3.0, 4: 5.0}, since=1.0)  # type: ignore[dict-item]
    assert read_usage(path).flags == {"c": 3.0}


@pytest.mark.parametrize(
    "content, where",
    [
        (b"{not json", "not JSON"),
        (b'{"flags": []}', "flags: expected an object"),
        (b'{"format": 1, "flags": {"a": "yesterday"}}', "flags.a: expected epoch seconds"),
        (b'{"format": 9, "flags": {}}', "format: unknown usage file format"),
        (b'{"flags": {}, "since": "x"}', "since: expected epoch seconds"),
    ],
)
def test_a_bad_usage_file_is_reported_with_file_and_key(tmp_path, content, where):
    path = tmp_path / "flag-usage.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        read_usage(path)
    assert str(path) in str(err.value) and where in str(err.value)


def test_the_recorder_replaces_an_unreadable_file_and_keeps_recording(tmp_path, caplog):
    path = tmp_path / "flag-usage.json"
    path.write_bytes(b"\x00garbage")
    recorder = UsageRecorder(path, source=lambda: {"x": 42.0}, clock=lambda: 40.0)
    assert recorder.flush() is True
    assert read_usage(path) == Usage({"x": 42.0}, 40.0)
    assert "replacing an unreadable flag usage file" in caplog.text


def test_a_failing_source_never_raises(tmp_path, caplog):
    def broken() -> dict[str, float]:
        raise RuntimeError("no totals")

    recorder = UsageRecorder(tmp_path / "u.json", source=broken)
    assert recorder.flush() is False
    assert recorder.last_error == "RuntimeError: no totals"
    assert "cannot record flag usage" in caplog.text


def test_the_thread_records_periodically_and_close_flushes(tmp_path):
    path = tmp_path / "flag-usage.json"
    seen = {"a": 1.0}
    recorder = UsageRecorder(path, interval=0.05, source=lambda: dict(seen), clock=lambda: 0.5)
    recorder.start()
    try:
        assert recorder.running
        wait_for(lambda: read_usage(path).flags.get("a") == 1.0)
        seen["a"] = 2.0
        wait_for(lambda: read_usage(path).flags.get("a") == 2.0)
    finally:
        seen["b"] = 3.0
        recorder.close()
    assert not recorder.running
    assert read_usage(path).flags == {"a": 2.0, "b": 3.0}  # the last flush at close


def test_the_interval_must_be_positive(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="positive number of seconds"):
        UsageRecorder(tmp_path / "u.json", interval=0)
    monkeypatch.setenv("CFGCORE_USAGE_INTERVAL", "soon")
    with pytest.raises(ConfigError, match="CFGCORE_USAGE_INTERVAL"):
        start_usage_recording(tmp_path / "new-dir")


def test_exit_flushes_what_was_recorded(tmp_path):
    """A process that ends between two periodic writes still leaves its times."""
    state = tmp_path / "state"
    seen = time.time() - 60.5  # a recent time (the recorder drops flags idle for a year)
    script = textwrap.dedent(f"""
        from cfgcore.runtime import usage
        recorder = usage.start_usage_recording({str(state)!r}, interval=3600)
        recorder.source = lambda: {{"checkout": {seen!r}}}
    """)
    out = subprocess.run([sys.executable, "-c", script], env=dict(os.environ, PYTHONPATH=SRC),
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert read_usage(usage_path(state)).flags == {"checkout": seen}


def test_recording_is_on_by_default_off_by_argument_or_environment(tmp_path, monkeypatch):
    a = start_usage_recording(tmp_path / "s")
    try:
        assert a is not None and a.running
        assert a.path == str(tmp_path / "s" / "flag-usage.json")
        assert start_usage_recording(tmp_path / "s") is a  # one per file per process
        assert start_usage_recording(tmp_path / "t", enabled=False) is None
        monkeypatch.setenv("CFGCORE_USAGE", "0")
        assert start_usage_recording(tmp_path / "t") is None
        assert start_usage_recording(tmp_path / "t", environ={"CFGCORE_USAGE": "1"}) is not None
    finally:
        for recorder in usage_mod.recorders():
            if str(tmp_path) in recorder.path:
                recorder.close()
                usage_mod._RECORDERS.pop(recorder.path)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_records_with_a_thread_of_its_own(tmp_path):
    path = tmp_path / "flag-usage.json"
    now = time.time()  # recorded times within the retention (the recorder prunes older)
    recorder = UsageRecorder(path, interval=0.05, source=lambda: {"parent": now})
    usage_mod._RECORDERS[recorder.path] = recorder  # registered, as start_usage_recording does
    recorder.start()
    read, write = os.pipe()
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            ok = recorder.running and recorder._thread is not None
            recorder.source = lambda: {"child": now + 1}
            try:
                wait_for(lambda: "child" in read_usage(path).flags, timeout=10)
            except Exception:
                ok = False
            os.write(write, b"ok" if ok else b"no")
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.read(read, 2) == b"ok"
        assert read_usage(path).flags.keys() >= {"parent", "child"}
    finally:
        recorder.close()
        usage_mod._RECORDERS.pop(recorder.path, None)
        os.close(read)
        os.close(write)


def test_the_file_is_plain_json_others_can_read(tmp_path):
    path = tmp_path / "flag-usage.json"
    merge_usage(path, {"b": 2.0, "a": 1.0}, since=0.5)
    doc = json.loads(path.read_text())
    assert doc == {"format": 1, "since": 0.5, "flags": {"a": 1.0, "b": 2.0}}


def _recorder_for(state) -> UsageRecorder | None:
    return usage_mod._RECORDERS.get(usage_path(state))


def test_the_managers_record_usage_when_they_serve_flags(tmp_path, monkeypatch):
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    state = tmp_path / "state"
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(state))
    try:
        off = DynamicConfigurationManager(state_dir=state, log_exposures=False, record_usage=False)
        assert off.usage is None and _recorder_for(state) is None
        private = DynamicConfigurationManager(state_dir=state, log_exposures=False, persist=False)
        assert private.usage is None and _recorder_for(state) is None

        config = ConfigurationManager(environ={"CFGCORE_CONFIG_DIR": "embedded"})
        assert _recorder_for(state) is None  # no flags served yet
        config.flags.is_enabled("enhanced_anomaly_detection", {"user_id": "1"})
        recorder = _recorder_for(state)
        assert recorder is not None and recorder.running

        dynamic = DynamicConfigurationManager(state_dir=state, log_exposures=False)
        assert dynamic.usage is recorder  # one recorder per usage file per process
    finally:
        recorder = _recorder_for(state)
        if recorder is not None:
            recorder.close()
            usage_mod._RECORDERS.pop(recorder.path)


def test_config_manager_opt_out(tmp_path, monkeypatch):
    from cfgcore.config.manager import ConfigurationManager

    state = tmp_path / "state"
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(state))
    config = ConfigurationManager(environ={"CFGCORE_CONFIG_DIR": "embedded", "CFGCORE_USAGE": "0"})
    config.flags.is_enabled("enhanced_anomaly_detection", {"user_id": "1"})
    assert _recorder_for(state) is None
    explicit = ConfigurationManager(environ={"CFGCORE_CONFIG_DIR": "embedded"}, record_usage=False)
    explicit.flags.is_enabled("enhanced_anomaly_detection", {"user_id": "1"})
    assert _recorder_for(state) is None


# -- end to end: the evaluation totals are the source ------------------------------------


def test_evaluations_reach_the_usage_file_through_the_totals(tmp_path, impl):
    """Both evaluators: what a request evaluates is in the file after the next flush,
    with the time of the harvest; what it did not evaluate is not."""
    import time

    from cfgcore.engine import engine_class
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    flags = tmp_path / "flags.yaml"
    used, idle = f"usage_used_{impl.__name__[-3:]}", f"usage_idle_{impl.__name__[-3:]}"
    flags.write_text(f'flags:\n  {used}: {{default: "on"}}\n  {idle}: {{default: "on"}}\n')
    state = tmp_path / "state"
    manager = DynamicConfigurationManager(
        store=flags, state_dir=state, log_exposures=False, engine=engine_class(impl)()
    )
    try:
        recorder = manager.usage
        assert recorder is not None and recorder.path == usage_path(state)
        before = time.time()
        assert manager.is_feature_enabled(used, {"user_id": "1"}) is True
        assert recorder.flush() is True, recorder.last_error
        got = read_usage(recorder.path)
        assert before <= got.flags[used] <= time.time()
        assert idle not in got.flags
        assert got.since is not None and got.since <= before
    finally:
        manager.close()
        _forget(state)


def test_the_config_manager_records_its_evaluations(tmp_path, monkeypatch):
    from cfgcore.config.manager import ConfigurationManager

    d = tmp_path / "config"
    d.mkdir()
    (d / "development.yaml").write_text("service: {name: shop}\n")
    (d / "flags.yaml").write_text('flags:\n  usage_from_config: {default: "off"}\n')
    state = tmp_path / "state"
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(state))
    config = ConfigurationManager(d, environ={}, validate=False)
    try:
        config.load_environment_config("development")
        assert config.flags.is_enabled("usage_from_config", {"user_id": "7"}) is False
        recorder = _recorder_for(state)
        assert recorder is not None and recorder.flush() is True
        assert "usage_from_config" in read_usage(usage_path(state)).flags
    finally:
        config.close()
        _forget(state)


def test_a_service_process_leaves_its_usage_at_exit(tmp_path):
    """A real process: serve flags, evaluate, exit (no flush called): the file holds the
    flag, merged with what another process recorded before."""
    state = tmp_path / "state"
    before = time.time() - 3600  # within the retention the exiting process prunes with
    merge_usage(usage_path(state), {"from_before": before}, since=before)
    flags = tmp_path / "flags.yaml"
    flags.write_text('flags:\n  exit_flag: {default: "on"}\n')
    script = textwrap.dedent(f"""
        from cfgcore.experiments.dynamic import DynamicConfigurationManager
        m = DynamicConfigurationManager(store={str(flags)!r}, state_dir={str(state)!r},
                                        log_exposures=False)
        assert m.is_feature_enabled("exit_flag", {{"user_id": "1"}})
    """)
    env = dict(os.environ, PYTHONPATH=SRC, CFGCORE_USAGE_INTERVAL="3600")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 0, out.stderr
    got = read_usage(usage_path(state))
    assert set(got.flags) == {"from_before", "exit_flag"} and got.since == before


def _forget(state) -> None:
    recorder = _recorder_for(state)
    if recorder is not None:
        recorder.close()
        usage_mod._RECORDERS.pop(recorder.path, None)


def test_the_last_manager_to_close_stops_the_recorder(tmp_path, monkeypatch):
    """One recorder thread per state directory while a manager serves from it: it ran
    for the life of the process after every manager had closed, one thread per
    directory a process ever opened (and kept harvesting the evaluation counts)."""
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    state = tmp_path / "state"
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(state))
    a = DynamicConfigurationManager(state_dir=state, log_exposures=False)
    b = DynamicConfigurationManager(state_dir=state, log_exposures=False)
    config = ConfigurationManager(environ={"CFGCORE_CONFIG_DIR": "embedded"})
    config.flags.is_enabled("enhanced_anomaly_detection", {"user_id": "1"})
    recorder = _recorder_for(state)
    try:
        assert recorder is not None and a.usage is recorder and b.usage is recorder
        a.close()
        assert recorder.running and _recorder_for(state) is recorder  # b and config hold it
        a.close()  # a second close releases nothing more
        config.close()
        assert recorder.running
        assert b.is_feature_enabled("enhanced_anomaly_detection", {"user_id": "2"}) in (True, False)
        b.close()  # the last holder: stopped, flushed, forgotten
        assert not recorder.running and _recorder_for(state) is None
        assert "enhanced_anomaly_detection" in read_usage(recorder.path).flags
        again = DynamicConfigurationManager(state_dir=state, log_exposures=False)
        try:  # a new manager starts a new recorder
            assert again.usage is not None and again.usage is not recorder and again.usage.running
        finally:
            again.close()
    finally:
        _forget(state)
