"""The numbers rule (cfgcore._numbers) for "wait up to" timeouts, the settle bounds of
LiveFlags.refresh and the probe server's port.

A timeout is a finite real number of seconds >= 0, taken by its value (NumPy scalars,
Fraction, Decimal); 0 looks without waiting. Refused, with a ValueError naming the
argument, before anything waits: bool (``True`` was a one-second wait), text (``"5"``
was a TypeError from deep inside, or nothing at all when there was nothing to wait
for), NaN (a wait that never ended: an audit flush spun forever on a held lock), a
negative number (as ``lock_timeout`` refuses one), and None or infinity unless None
already meant something there: the audit log's flush waits ``lock_timeout``, a
watcher's ``start(wait=None)`` does not wait, and its ``stop(None)`` (and so
``stop(inf)``) waits without limit.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore._numbers import real_number
from cfgcore.config.watcher import DirectoryWatcher
from cfgcore.experiments.exposures import ExposureLogger
from cfgcore.experiments.metrics import MetricsStore
from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.events import ConfigChangeEvent, EventBus
from cfgcore.runtime.flags import LiveFlags
from cfgcore.runtime.flagstore import FileFlagStore
from tests.fuzz import examples
from tests.test_numbers_rule import NOT_NUMBERS, values

NEGATIVE = st.one_of(values(-(10**4), -1, 100), st.floats(max_value=-1e-9, allow_infinity=False))
INFINITY = st.sampled_from([math.inf, np.float64("inf"), Decimal("Infinity")])


@pytest.fixture
def objects(tmp_path):
    """One of each waiting object, idle (nothing to wait for), closed afterwards."""
    made: dict[str, Any] = {}
    made["audit"] = AuditLog(tmp_path / "audit.log", lock_timeout=0.5)
    made["audit"].append({"kind": "update", "path": "a", "new": 1})
    made["bus"] = EventBus()
    made["metrics"] = MetricsStore(str(tmp_path / "metrics.jsonl"))
    made["exposures"] = ExposureLogger()
    watcher = DirectoryWatcher([str(tmp_path)], lambda _changes: None)
    assert watcher.start(wait=10)
    made["watcher"] = watcher
    made["tmp"] = tmp_path
    yield made
    watcher.stop()
    made["exposures"].close()
    made["metrics"].close()
    made["bus"].close()


@dataclass(frozen=True)
class Timeout:
    name: str
    call: Callable[[dict[str, Any], Any], Any]
    took: Callable[[dict[str, Any], Any], bool]  # what a taken value must have done
    none_ok: bool = False  # None has a meaning here
    inf_ok: bool = False  # infinity (as None) means "no limit"
    arg: str = "timeout"

    def __repr__(self) -> str:
        return self.name


def _stopped(o: dict[str, Any], result: Any) -> bool:
    return result is None and not o["watcher"].running and not o["watcher"].wanted


def _start_again(o: dict[str, Any], v: Any) -> Any:
    o["watcher"].start(wait=10)  # (already running: no-op)
    return o["watcher"].stop(v)


def _closed_bus(_o: dict[str, Any], v: Any) -> EventBus:
    """A bus with an event queued for its dispatcher thread, closed with ``v``."""
    bus = EventBus()
    bus.register(lambda _event: None)
    bus.emit_in_background([ConfigChangeEvent("a", 1, 2, "update_config", 1, 0.0)])
    assert bus._queue is not None  # (the dispatcher's)
    try:
        bus.close(v)
    except ValueError:
        assert bus._queue is not None  # a refused timeout closes nothing
        bus.close()
        raise
    return bus


def _aclosed_bus(_o: dict[str, Any], v: Any) -> EventBus:
    """:func:`_closed_bus` through ``await bus.aclose(v)``."""
    bus = EventBus()
    bus.register(lambda _event: None)
    bus.emit_in_background([ConfigChangeEvent("a", 1, 2, "update_config", 1, 0.0)])
    assert bus._queue is not None  # (the dispatcher's)
    try:
        asyncio.run(bus.aclose(v))
    except ValueError:
        assert bus._queue is not None  # a refused timeout closes nothing
        bus.close()
        raise
    return bus


TIMEOUTS = [
    Timeout("AuditLog.flush", lambda o, v: o["audit"].flush(v), lambda o, r: r is True,
            none_ok=True),
    Timeout("EventBus.wait_idle", lambda o, v: o["bus"].wait_idle(v), lambda o, r: r is True),
    Timeout("EventBus.close", _closed_bus, lambda o, r: r._queue is None),
    Timeout("EventBus.aclose", _aclosed_bus, lambda o, r: r._queue is None),
    Timeout("DirectoryWatcher.wait_ready", lambda o, v: o["watcher"].wait_ready(v),
            lambda o, r: r is True),
    Timeout("DirectoryWatcher.start wait", lambda o, v: o["watcher"].start(wait=v),
            lambda o, r: r is True, none_ok=True, arg="wait"),
    Timeout("DirectoryWatcher.stop", _start_again, _stopped, none_ok=True, inf_ok=True),
    Timeout("MetricsStore.flush", lambda o, v: o["metrics"].flush(v), lambda o, r: r is True),
    Timeout("MetricsStore.close", lambda o, v: MetricsStore(None).close(v),
            lambda o, r: r is True),
    Timeout("ExposureLogger.flush", lambda o, v: o["exposures"].flush(v),
            lambda o, r: r is True),
    Timeout("ExposureLogger.close", lambda o, v: ExposureLogger().close(v),
            lambda o, r: r is None),
]  # fmt: skip


@pytest.mark.parametrize("entry", TIMEOUTS, ids=repr)
@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_a_timeout_is_a_finite_number_of_seconds_at_least_zero(objects, entry, data):
    refused = st.one_of(NOT_NUMBERS, NEGATIVE)
    if entry.none_ok:
        refused = refused.filter(lambda v: v is not None)
    if entry.inf_ok:
        refused = refused.filter(lambda v: real_number(v) != math.inf)
    bad = data.draw(refused, label="refused")
    with pytest.raises(ValueError, match=rf"\b{entry.arg} must be a finite number of seconds >= 0"):
        entry.call(objects, bad)
    good = data.draw(values(0, 30, 10), label="taken")  # 0 .. 3 s, of every kind
    assert entry.took(objects, entry.call(objects, good)), good


@pytest.mark.parametrize("entry", [t for t in TIMEOUTS if t.inf_ok], ids=repr)
@given(forever=st.one_of(st.none(), INFINITY))
@settings(
    max_examples=examples(5),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
def test_none_or_infinity_waits_without_limit_where_none_always_did(objects, entry, forever):
    assert entry.took(objects, entry.call(objects, forever))


@pytest.mark.parametrize("entry", [t for t in TIMEOUTS if not t.inf_ok], ids=repr)
def test_infinity_is_refused_where_none_is_no_limit(objects, entry):
    for forever in (math.inf, np.float64("inf")):
        with pytest.raises(ValueError, match=rf"\b{entry.arg} must be a finite number"):
            entry.call(objects, forever)


def test_audit_flush_refuses_nan_rather_than_spinning_on_a_held_lock(tmp_path):
    """With the writers' lock held elsewhere, flush(nan) polled the lock forever."""
    import fcntl

    log = AuditLog(tmp_path / "audit.log", lock_timeout=0.01)
    fd = os.open(str(tmp_path / "audit.log.lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        log.append({"kind": "update", "path": "a", "new": 1})
        assert log.pending() == 1
        for bad in (math.nan, -1, "5", True):
            with pytest.raises(ValueError, match="timeout must be a finite number"):
                log.flush(bad)
        assert log.flush(Fraction(0)) is False  # held: still waiting, none lost
        assert log.pending() == 1
    finally:
        os.close(fd)
    assert log.flush(Decimal("5")) is True
    assert log.pending() == 0


# -- LiveFlags.refresh: whole milliseconds --------------------------------------------------


@pytest.fixture
def live(tmp_path):
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"version": 1, "flags": {}}))
    return LiveFlags(FileFlagStore(str(path)))


_VERSIONS = itertools.count()


def _write_new(live: LiveFlags) -> None:
    """A new document in the live flags' file (one they have not served)."""
    n = next(_VERSIONS)
    doc = {"version": 1, "flags": {f"f{n}": {"variants": {"on": True}, "default": "on"}}}
    with open(live.store.path, "w") as f:  # type: ignore[attr-defined]
        json.dump(doc, f)


@pytest.mark.parametrize("arg", ["settle_ms", "max_wait_ms"])
@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_refresh_takes_whole_milliseconds_at_least_zero(live, arg, data):
    bad = data.draw(st.one_of(NOT_NUMBERS, NEGATIVE, st.sampled_from([0.5, Fraction(1, 2)])),
                    label="refused")  # fmt: skip
    before = live.document
    with pytest.raises(ValueError, match=rf"{arg} must be a whole number of milliseconds >= 0"):
        live.refresh(**{arg: bad})
    assert live.document is before  # refused before anything is read
    good = data.draw(values(0, 20), label="taken")
    _write_new(live)
    kw = {arg: good, "settle_ms": good if arg == "settle_ms" else 1}
    assert live.refresh(**kw) is True  # (nothing writes meanwhile: it settles at once)
    assert live.document is not before


# -- serve(port=): an int 0..65535 ------------------------------------------------------------


@pytest.fixture
def manager(tmp_path):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    yield m
    m.close()


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(bad=st.one_of(
    NOT_NUMBERS,
    st.integers(max_value=-1),
    st.integers(min_value=65536),
    st.floats(0, 65535),  # 8080.0 too: a port is an int
    st.sampled_from([Fraction(8080), Decimal(8080), np.float64(8080), np.bool_(False)]),
))  # fmt: skip
def test_serve_refuses_a_port_that_is_no_int_in_range_before_binding(manager, bad):
    from cfgcore.observability.http import serve

    with pytest.raises(ValueError, match=r"port must be an integer from 0 to 65535, got"):
        server = serve(manager, port=bad)
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("port", [0, np.int64(0), np.uint16(0)], ids=repr)
def test_serve_takes_an_int_port(manager, port):
    from cfgcore.observability.http import serve

    server = serve(manager, port=port)
    try:
        assert 0 < server.server_port <= 65535
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("bad", [True, "5", math.nan, -1, math.inf, 1j], ids=repr)
def test_the_async_watcher_refuses_a_bad_wait_before_starting(tmp_path, bad):
    from cfgcore.config.watcher import AsyncDirectoryWatcher

    async def run() -> bool:
        watcher = AsyncDirectoryWatcher([str(tmp_path)], lambda _changes: None)
        with pytest.raises(ValueError, match=r"wait must be a finite number of seconds >= 0"):
            await watcher.start(wait=bad)
        assert not watcher.running  # refused before the task was made
        try:
            return await watcher.start(wait=Decimal("10"))
        finally:
            await watcher.stop()

    assert asyncio.run(run()) is True


# -- the settle attributes: checked when set ---------------------------------------------------


@pytest.mark.parametrize("attr", ["settle_ms", "max_settle_wait_ms"])
@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_settle_attributes_take_whole_milliseconds_when_set(manager, tmp_path, attr, data):
    """``manager.reloader.settle_ms = "200"`` (README "Hot reload") was taken and made
    every later watcher reload fail inside the watcher thread; the dynamic manager's
    own attributes the same. Refused where set, the value before kept."""
    from cfgcore.config.manager import ConfigurationManager

    config = ConfigurationManager(environ={}, validate=False)
    for owner in (config.reloader, manager):
        before = getattr(owner, attr)
        bad = data.draw(st.one_of(NOT_NUMBERS, NEGATIVE, st.sampled_from([0.5, Fraction(1, 2)])))
        with pytest.raises(ValueError, match=rf"{attr} must be a whole number of milliseconds"):
            setattr(owner, attr, bad)
        assert getattr(owner, attr) == before
        good = data.draw(values(0, 10_000), label="taken")
        setattr(owner, attr, good)
        assert getattr(owner, attr) == good and type(getattr(owner, attr)) is int


@pytest.mark.parametrize("host", [None, b"127.0.0.1", 127001, ["127.0.0.1"]])
def test_serve_refuses_a_host_that_is_no_text_before_binding(manager, host):
    from cfgcore.observability.http import serve

    with pytest.raises(TypeError, match=r"host: expected text such as '127\.0\.0\.1'"):
        serve(manager, port=0, host=host)
