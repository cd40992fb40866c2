"""Fifth audit, experiments in multiprocessing children.

A ``multiprocessing`` child process (``Process``, ``Pool`` worker; forked or from a forkserver) ends
with ``os._exit`` after multiprocessing's own finalizers: ``atexit`` never runs there.
Before, the exposures, metric events and flag usage a child recorded and its writers
had not yet written were lost when it returned: a forked worker that served 200 users
left none of them in the shared logs. cfgcore's exit hooks now run at such a child's
exit too (``cfgcore.runtime.forks.at_exit``), once per process.
"""

from __future__ import annotations

import multiprocessing
import os
from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.experiments.exposures import read_exposures
from cfgcore.experiments.metrics import read_metrics

NOW = datetime.now(timezone.utc)
USERS = 150

_manager: DynamicConfigurationManager | None = None  # the forked children's


def _serve(manager: DynamicConfigurationManager, worker: int) -> None:
    for i in range(USERS):
        user = f"w{worker}-{i}"
        assert manager.get_ab_test_variant("t", {"user_id": user}) is not None
        assert manager.record_metric("t", "buy", 1.0, user_id=user)


def _forked_worker(worker: int) -> None:
    assert _manager is not None
    _serve(_manager, worker)  # returns with the records still queued: no flush, no close


def _own_manager_worker(state_dir: str) -> None:
    global _manager
    # Kept alive, as a served application keeps its manager (a collected one would
    # flush its exposure log as it goes).
    _manager = DynamicConfigurationManager(state_dir=state_dir, record_usage=False)
    _serve(_manager, 7)


def _logs(state_dir: str) -> tuple[list, list]:
    base = os.path.join(state_dir, "flags")
    return (
        read_exposures(base + ".exposures.jsonl"),
        read_metrics(base + ".metrics.jsonl"),
    )


@pytest.fixture
def manager(tmp_path):
    global _manager
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    assert m.create_ab_test(
        ABTestConfiguration(
            "t", "", NOW - timedelta(days=1), NOW + timedelta(days=9),
            {"control": 50.0, "b": 50.0}, {"control": {}, "b": {}}, ["buy"],
        )
    )  # fmt: skip
    _manager = m
    yield m
    _manager = None
    m.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_forked_processes_write_what_they_recorded(manager, tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_forked_worker, args=(k,)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    exposures, metrics = _logs(str(tmp_path))
    assert sorted(e.user for e in exposures) == sorted(
        f"w{k}-{i}" for k in range(2) for i in range(USERS)
    )
    assert len(metrics) == 2 * USERS


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_pool_workers_write_what_they_recorded(manager, tmp_path):
    pool = multiprocessing.get_context("fork").Pool(2)
    try:
        pool.map(_forked_worker, [3, 4])
    finally:
        pool.close()
        pool.join()
    exposures, metrics = _logs(str(tmp_path))
    assert len({e.user for e in exposures}) == len(exposures) == 2 * USERS
    assert len(metrics) == 2 * USERS


@pytest.mark.skipif(
    "forkserver" not in multiprocessing.get_all_start_methods(), reason="needs forkserver"
)
def test_a_forkserver_process_writes_what_it_recorded(manager, tmp_path):
    # (A spawned process ends with sys.exit, which runs atexit; a forkserver's child,
    # like a forked one, with os._exit.)
    manager.close()  # the child opens its own manager on the same state directory
    p = multiprocessing.get_context("forkserver").Process(
        target=_own_manager_worker, args=(str(tmp_path),)
    )
    p.start()
    p.join(120)
    assert p.exitcode == 0
    exposures, metrics = _logs(str(tmp_path))
    assert len(exposures) == USERS and len(metrics) == USERS


def test_exit_hooks_run_once_per_process():
    from cfgcore.runtime import forks

    calls = []

    def hook():
        calls.append(os.getpid())

    saved = forks._EXITS[:], forks._exited_in
    forks._EXITS[:] = []  # only this hook: the real ones would close this process's
    try:
        forks.at_exit(hook)
        forks.at_exit(hook)  # registered once
        assert forks._EXITS == [hook]
        forks._exited_in = None
        forks._run_exits()
        forks._run_exits()  # multiprocessing's finalizer, then atexit: once
        assert calls == [os.getpid()]
    finally:
        forks._EXITS[:], forks._exited_in = saved
