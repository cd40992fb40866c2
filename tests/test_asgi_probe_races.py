"""The ASGI probe app's one shared computation under attack: reports raising what is not
an ``Exception``, clients gone while a failing report is computed, a report that never
ends, no thread to be had, and requests racing the end of a computation from many event
loops at once. Every request must be answered (``wait_for`` below only detects a hang)."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from cfgcore.observability.http import asgi_app
from tests.test_asgi_probe_flood import _failing_report, _request, _until

OURS = ("cfgcore-probe-report", "cfgcore-probe-scrape")
HANG = 120  # seconds after which a request that has not been answered counts as hung


async def _status(app, path: str = "/health/ready", method: str = "GET") -> int:
    return (await _request(app, path, method))[0]


def _ours(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in OURS and t not in before]


@pytest.mark.parametrize(
    "raised", [KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError]
)
def test_a_report_raising_a_base_exception_fails_its_request_not_the_event_loop(
    manager, monkeypatch, raised
):
    # Raised on cfgcore's thread and handed to the request awaiting it, a KeyboardInterrupt
    # or SystemExit went through asyncio and out of asyncio.run (every request of the
    # loop lost), and a CancelledError made the request look cancelled by its server.
    gate, calls = _failing_report(manager, monkeypatch, raised)
    app = asgi_app(manager)

    async def main():
        tasks = [asyncio.create_task(_status(app)) for _ in range(5)]
        await _until(lambda: calls, "the report started")
        gate.set()
        return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), HANG)

    try:
        outcomes = asyncio.run(main())
    except BaseException as exc:  # noqa: BLE001 - what the bug did
        pytest.fail(f"the event loop stopped: {exc!r}")
    first, *rest = outcomes
    assert isinstance(first, RuntimeError) and isinstance(first.__cause__, raised), first
    assert rest == [200] * 4  # the next computes again, the others share it
    assert asyncio.run(_status(app, "/health/live")) == 200


def test_requests_cancelled_while_a_failing_report_is_computed_cost_no_computation(
    manager, monkeypatch
):
    # Clients that gave up (a probe's timeout) while a report waited on a slow store: a
    # failure was told to each of them in turn, each after a computation of its own, so
    # the one request still waiting waited for one failing report per client gone.
    gate, calls = _failing_report(
        manager, monkeypatch, lambda: OSError("the store timed out"), every=True
    )
    app = asgi_app(manager)

    async def main():
        gone = [asyncio.create_task(_status(app)) for _ in range(50)]
        await _until(lambda: calls, "the report started")
        for task in gone:
            task.cancel()
        await asyncio.gather(*gone, return_exceptions=True)
        waiting = asyncio.create_task(_status(app))
        await asyncio.sleep(0)  # it reaches its wait
        gate.set()
        return await asyncio.wait_for(asyncio.gather(waiting, return_exceptions=True), HANG)

    [outcome] = asyncio.run(main())
    assert isinstance(outcome, OSError)
    assert len(calls) == 1


def test_a_report_that_never_ends_holds_one_thread_while_requests_come_and_go(manager, monkeypatch):
    before = set(threading.enumerate())
    gate, calls = _failing_report(manager, monkeypatch)  # (gated, raising nothing)
    app = asgi_app(manager)
    seen: dict[str, object] = {}

    async def storm(loop_index: int) -> None:
        rnd = random.Random(loop_index)
        for _ in range(5):
            tasks = [asyncio.create_task(_status(app)) for _ in range(40)]
            await asyncio.sleep(rnd.choice([0, 0.001, 0.01]))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        # What needs no report is answered meanwhile.
        seen[f"404-{loop_index}"] = await asyncio.wait_for(_status(app, "/nope"), HANG)

    def run(index: int) -> None:
        asyncio.run(storm(index))
        asyncio.run(storm(index + 10))

    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HANG)
        assert not any(t.is_alive() for t in threads)
        assert [t.name for t in _ours(before)] == ["cfgcore-probe-report"]
        assert len(calls) == 1
        assert set(seen.values()) == {404} and len(seen) == 8
    finally:
        gate.set()
    # Once the report ends, the app answers with a new one.
    assert asyncio.run(asyncio.wait_for(_status(app), HANG)) == 200
    for t in _ours(before):
        t.join(30)
    assert _ours(before) == []


def test_requests_racing_the_end_of_computations_from_many_loops_are_all_answered(
    manager, monkeypatch
):
    # Reports and scrapes of random length (some failing), requests from several loops
    # in several threads arriving and cancelled at random points, each loop's
    # asyncio.run repeated: every request not cancelled is answered.
    real = manager.health
    draws = random.Random(20261206)
    draws_lock = threading.Lock()

    def health(*args, **kwargs):
        with draws_lock:
            pause, fail = draws.choice([0, 0, 1e-5, 5e-4, 2e-3]), draws.random() < 0.2
        if pause:
            time.sleep(pause)
        if fail:
            raise OSError("the store failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(manager, "health", health)
    app = asgi_app(manager)
    hung: list[tuple[int, str]] = []
    wrong: list[object] = []

    async def one(rnd: random.Random, seed: int) -> None:
        await asyncio.sleep(rnd.choice([0, 0, 1e-4, 1e-3]))
        path = rnd.choice(["/health/ready", "/health/live", "/metrics", "/nope"])
        task = asyncio.create_task(_status(app, path))
        if rnd.random() < 0.3:
            await asyncio.sleep(rnd.choice([0, 1e-4, 1e-3]))
            task.cancel()
        try:
            status = await asyncio.wait_for(asyncio.shield(task), HANG)
        except asyncio.CancelledError:
            return
        except OSError:
            return
        except asyncio.TimeoutError:
            hung.append((seed, path))
            return
        if status not in (200, 404):
            wrong.append(status)

    def run(seed: int) -> None:
        rnd = random.Random(seed)

        async def burst() -> None:
            await asyncio.gather(*(one(rnd, seed) for _ in range(rnd.randint(1, 20))))

        for _ in range(40):
            asyncio.run(burst())

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG * 4)
    assert not any(t.is_alive() for t in threads)
    assert hung == [] and wrong == []


@pytest.mark.skipif(not hasattr(os, "fork") or os.geteuid() != 0, reason="root, to drop to nobody")
def test_no_thread_to_be_had_fails_the_waiting_requests_and_the_app_serves_on(bundled_config):
    # A real pids limit: the process runs as nobody with RLIMIT_NPROC of 1 (root is not
    # held to it), so no thread starts; then the limit is lifted.
    code = f"""
        import asyncio, os, resource, threading
        from cfgcore.config.manager import ConfigurationManager
        from cfgcore.observability.http import asgi_app
        from tests.test_asgi_probe_races import _status

        m = ConfigurationManager({str(bundled_config)!r}, environ={{}})
        m.load_environment_config("staging")
        app = asgi_app(m)
        os.setgid(65534); os.setuid(65534)
        hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
        resource.setrlimit(resource.RLIMIT_NPROC, (1, hard))
        try:
            threading.Thread(target=print).start()
            raise SystemExit("a thread started under the limit")
        except RuntimeError:
            pass

        async def flood():
            tasks = [_status(app, p) for p in ["/health/ready"] * 20 + ["/metrics", "/nope"]]
            got = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
            return [type(g).__name__ if isinstance(g, BaseException) else g for g in got]

        print(asyncio.run(flood()))
        resource.setrlimit(resource.RLIMIT_NPROC, (hard, hard))
        print(asyncio.run(flood()))
        m.close()
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*sys.path, root])}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=HANG, env=env, cwd="/")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    limited, lifted = proc.stdout.splitlines()
    assert limited == str(["RuntimeError"] * 21 + [404])
    assert lifted in (str([200] * 20 + [200, 404]), str([200] * 20 + [404, 404]))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
@pytest.mark.parametrize(
    "path, module",
    [("/metrics", "prometheus_client"), ("/health/ready", "cfgcore.observability.health")],
)
def test_a_child_forked_while_the_first_computation_imports_answers(bundled_config, path, module):
    # A fresh process, its first report or scrape held in the middle of an import (by an
    # importer that waits, on the computing thread only, until the test lets it go), then
    # forked: the child must answer (before: every report or scrape in it waited for the
    # module lock of a thread it does not have).
    if path == "/metrics":
        pytest.importorskip("prometheus_client")
    code = f"""
        import asyncio, os, sys, threading

        parent, gate, importing = os.getpid(), threading.Event(), threading.Event()

        class Hold:
            def find_spec(self, name, path=None, target=None):
                if (name == {module!r} and os.getpid() == parent
                        and threading.current_thread() is not threading.main_thread()):
                    importing.set()
                    gate.wait(60)
                return None

        sys.meta_path.insert(0, Hold())
        from cfgcore.config.manager import ConfigurationManager
        from cfgcore.observability.http import asgi_app
        from tests.test_asgi_probe_races import _status

        m = ConfigurationManager({str(bundled_config)!r}, environ={{}})
        m.load_environment_config("staging")
        app = asgi_app(m)
        loop = asyncio.new_event_loop()
        first = loop.create_task(_status(app, {path!r}))

        async def held():
            while not (importing.is_set() or first.done()):
                await asyncio.sleep(0.005)

        loop.run_until_complete(held())
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                answer = asyncio.run(asyncio.wait_for(_status(app, {path!r}), 30))
            except asyncio.TimeoutError:
                answer = "hung"
            os.write(write, str(answer).encode())
            os._exit(0)
        os.close(write)
        child = os.read(read, 64).decode()
        os.waitpid(pid, 0)
        gate.set()
        print(child, loop.run_until_complete(first))
        loop.close()
        m.close()
    """
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*sys.path, root])}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=HANG, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["200", "200"]  # the child's answer, the parent's
