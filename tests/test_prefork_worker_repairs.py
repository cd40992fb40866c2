"""A pre-fork server's workers, forked while the parent's threads were busy.

* A configuration manager's locks held across slow Redis work were not repaired in a
  forked child: the published source's (a thread following a published environment,
  ``config_source=URL``, reading Redis) and the flag source's (a thread opening the
  manager's flag store at its first activation). A worker forked meanwhile hung
  forever at ``close()`` and at any activation that needed them; both are now new
  locks in the child, as the manager's own lock is. So is the lock under which a
  thread builds the process-wide dynamic-config manager (opening its store): a worker
  forked meanwhile hung at its first ``is_feature_enabled()``.
* The parent's Redis subscription socket stayed open in every worker (the follower's
  frame, kept by CPython in the child, held it); the worker closes its copy.
* A worker forked while its parent's exposure writer was stuck took the parent's
  "stuck at N" mark for its own writer, whose count starts over: it wrote its metric
  events before their exposures without waiting.
* ``cfgcore_dropped_events_total``: the counters of a forked worker start at zero, but
  a writer's drops and losses were the parent's in the child, so each worker reported
  the records its parent dropped (and had not had collected) as its own, and a sum over
  the workers counted them once per worker.

Each child reports through its exit status; a deadlock becomes SIGALRM."""

from __future__ import annotations

import os
import signal
import threading
import warnings

import pytest

import cfgcore.metrics
from cfgcore.config import published
from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime import flagstore
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore


def _fork(child):
    """Run ``child()`` (returns an exit status) in a forked child; its exit status
    (-SIGALRM when it hung)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork with threads
        pid = os.fork()
    if pid == 0:
        code = 1
        try:
            signal.alarm(10)
            code = child()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app: {name: base}\n")
    (d / "development.yaml").write_text("{}\n")
    return d


def test_a_worker_forked_while_a_published_environment_was_being_read_closes(
    redis_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=prefork"
    for env in ("development", "production"):
        with RedisConfigStore(url, env) as store:
            tree = {"app": {"n": env}}
            store.update(
                lambda _, env=env, tree=tree: PublishedConfig(environment=env, config=tree)
            )
    m = ConfigurationManager(config_source=url, environment="development", environ={})
    m.load_environment_config()
    # A thread starts following production and waits for Redis (slow), under the
    # published source's lock, as the main thread forks a worker.
    reading, answer = threading.Event(), threading.Event()
    first_pair = published.PublishedSource._first_pair

    def slow_first_pair(self, store, live):
        on_thread = threading.current_thread() is not threading.main_thread()
        if store.environment == "production" and on_thread:
            reading.set()
            answer.wait(10)
        return first_pair(self, store, live)

    monkeypatch.setattr(published.PublishedSource, "_first_pair", slow_first_pair)
    t = threading.Thread(target=m._published.sync, args=("production",))
    t.start()
    try:
        assert reading.wait(5)

        def child():
            snap = m.load_environment_config("production")  # followed here, by this worker
            if snap["app"]["n"] != "production":
                return 3
            m.close()  # a worker's shutdown
            return 0

        assert _fork(child) == 0
    finally:
        answer.set()
        t.join(10)
        m.close()


def test_a_worker_forked_while_the_flag_store_was_being_opened_loads(config_dir, monkeypatch):
    (config_dir / "flags.yaml").write_text('flags:\n  a: {default: "on"}\n')
    m = ConfigurationManager(str(config_dir), environment="development", environ={})
    # The first activation opens the flag store (a Redis one may take seconds to
    # answer) under the flag source's lock, on a thread, as the main thread forks.
    opening, opened = threading.Event(), threading.Event()
    open_store = flagstore.open_store

    def slow_open(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            opening.set()
            opened.wait(10)
        return open_store(*args, **kwargs)

    monkeypatch.setattr(flagstore, "open_store", slow_open)
    t = threading.Thread(target=m.load_environment_config)
    t.start()
    try:
        assert opening.wait(5)

        def child():
            m.load_environment_config()
            if m.get("app.name") != "base" or m.flags.is_enabled("a", {}) is not True:
                return 3
            m.close()
            return 0

        assert _fork(child) == 0
    finally:
        opened.set()
        t.join(10)
        m.close()


def _dropped(stream):
    samples = cfgcore.metrics.snapshot()["metrics"]["cfgcore_dropped_events_total"]["samples"]
    return sum(s["value"] for s in samples if s["labels"]["stream"] == stream)


def test_a_forked_worker_does_not_report_its_parents_dropped_records(impl, monkeypatch):
    from cfgcore.experiments import writer as writer_module

    monkeypatch.setattr(writer_module, "_impl", impl)

    written = []
    release = threading.Event()

    def deliver(batch):
        release.wait(10)
        written.extend(batch)

    before = _dropped("prefork-probe")  # (another test's writer of that name)
    w = writer_module.BackgroundWriter(deliver, name="cfgcore-prefork-probe", max_pending=5)
    try:
        for i in range(50):  # the writer is stuck on its first batch: most are dropped
            w.append(i)
        dropped = w.dropped
        assert dropped >= 40

        def child():
            if w.dropped != 0:
                return 3  # the parent's
            if _dropped("prefork-probe") != 0:
                return 4  # reported by this worker as its own
            release.set()
            for i in range(3):
                w.append(i)
            return 0 if w.flush(5) and w.dropped == 0 else 5

        assert _fork(child) == 0
        assert _dropped("prefork-probe") == before + dropped  # the parent's, reported there
    finally:
        release.set()
        w.close()


def _open_inodes():
    """The (device, inode) of each descriptor this process holds."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            st = os.stat(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_a_worker_does_not_keep_its_parents_subscription_open(redis_server, tmp_path, monkeypatch):
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from tests.waiting import wait_for

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    m = DynamicConfigurationManager(store=redis_server.url + "?namespace=prefork")
    try:
        store = m.store
        assert wait_for(lambda: store.connected)
        sock = store._pubsub.connection._sock  # the follower waits on it, on its thread
        st = os.fstat(sock.fileno())
        parents = (st.st_dev, st.st_ino)

        def child():
            # The parent's follower thread is not here, but its frame still held the
            # subscription's connection: the socket stayed open in every worker for its
            # whole life (a subscribed client kept alive in Redis should the parent end).
            if parents in _open_inodes():
                return 3
            m.set_feature_flag("x", True)  # written and followed on connections of its own
            return 0 if wait_for(lambda: m.engine.is_enabled("x", {}), 10) else 4

        assert _fork(child) == 0
        # The parent's subscription was closed in the child only: it still hears of the
        # child's write.
        assert wait_for(lambda: m.engine.is_enabled("x", {}))
        assert store._pubsub.connection._sock.fileno() == sock.fileno() != -1
    finally:
        m.close()


def test_a_worker_forked_while_the_process_wide_manager_was_being_built_checks_flags(
    tmp_path, monkeypatch
):
    from cfgcore import dynamic_config
    from cfgcore.experiments import dynamic

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "flags.json").write_text('{"flags": {"a": {"default": "on"}}}')
    monkeypatch.setenv("CFGCORE_FLAG_STORE", str(tmp_path / "flags.json"))
    dynamic_config.reset_dynamic_config_manager()
    # The seed's module-level check builds the process-wide manager on first use, under
    # a lock, opening its store (a Redis one may take seconds): on a thread of the
    # parent, as the main thread forks a worker.
    opening, opened = threading.Event(), threading.Event()
    open_store = dynamic.open_store

    def slow_open(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            opening.set()
            opened.wait(10)
        return open_store(*args, **kwargs)

    monkeypatch.setattr(dynamic, "open_store", slow_open)
    t = threading.Thread(target=dynamic_config.is_feature_enabled, args=("a", {}))
    t.start()
    try:
        assert opening.wait(5)

        def child():  # the worker's first request
            return 0 if dynamic_config.is_feature_enabled("a", {"user_id": "1"}) else 3

        assert _fork(child) == 0
    finally:
        opened.set()
        t.join(10)
        dynamic_config.reset_dynamic_config_manager()


def test_a_worker_writes_its_exposures_before_its_metric_events_whatever_its_parent_did(
    tmp_path, monkeypatch
):
    import time
    from datetime import datetime, timedelta

    from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
    from cfgcore.experiments import metrics
    from tests.waiting import wait_for

    monkeypatch.setattr(metrics, "EXPOSURES_FIRST_WAIT", 1.0)
    metric_log = tmp_path / "flags.metrics.jsonl"
    gate = threading.Event()
    early: list[str] = []  # users whose metric event reached its log before their exposure

    class Sink:  # the application's exposure sink: stuck in the parent, slow in the child
        def write(self, batch):
            gate.wait(30)
            time.sleep(0.2)
            text = metric_log.read_text() if metric_log.exists() else ""
            early.extend(e.user for e in batch if f'"{e.user}"' in text)

    m = DynamicConfigurationManager(flags_file=tmp_path / "flags.json", exposure_sinks=[Sink()])
    now = datetime.now()
    test = ABTestConfiguration(
        "t", "d", now - timedelta(days=1), now + timedelta(days=3),
        {"control": 50, "b": 50}, {"control": {}, "b": {}}, ["m"],
    )  # fmt: skip
    assert m.create_ab_test(test)
    try:
        assert m.record_metric("t", "m", 1, user_id="parent-user")
        # The metric writer gave up waiting for the parent's stuck exposure writer.
        assert wait_for(lambda: metric_log.exists() and "parent-user" in metric_log.read_text())

        def child():
            gate.set()  # (this process's sink only)
            if not m.record_metric("t", "m", 1, user_id="child-user"):
                return 3
            if not m.flush(10):
                return 4
            return 5 if "child-user" in early else 0

        assert _fork(child) == 0
    finally:
        gate.set()
        m.close()
