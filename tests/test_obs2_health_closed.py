"""A closed DynamicConfigurationManager, or a closed flag set, is not ready.

``close()`` stops the manager's watcher, its exposure log and, for the last holder, the
flag set's follower: what serves is no longer kept current. The configuration manager's
report said so (``manager: closed``), but the dynamic-config manager's report kept
answering ready, over HTTP too, so a kubelet kept routing traffic to a process that had
stopped following its flags (a Redis store's follower closed, a flags file no longer
watched)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.observability.health import flags_health
from cfgcore.observability.http import serve


def _failing(report):
    return {c.name for c in report.readiness if c.status == "fail"}


def test_a_closed_dynamic_manager_is_live_but_not_ready(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    m.set_feature_flag("checkout", True)
    assert m.health().ready
    m.close()
    report = m.health()
    assert report.live and not report.ready
    assert _failing(report) == {"manager"}
    assert m.is_feature_enabled("checkout")  # still served: only the report changed
    assert json.loads(json.dumps(report.to_dict()))["ready"] is False


def test_the_probe_of_a_closed_dynamic_manager_answers_503(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    server = serve(m, port=0)
    url = f"http://127.0.0.1:{server.server_port}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
        m.close()
        # (The previous answer may be reused for a few times what it cost to compute.)
        from tests.redis_server import wait_for

        def refused():
            try:
                urllib.request.urlopen(url, timeout=10).close()
            except urllib.error.HTTPError as exc:
                return exc.code == 503 and json.load(exc)["ready"] is False
            return False

        wait_for(refused)
    finally:
        server.shutdown()
        server.server_close()


def test_a_closed_flag_set_held_by_another_manager_fails_the_flags_check(tmp_path):
    a = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    b = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    try:
        assert a._live is b._live  # one flag set per store
        a.close()
        assert b.health().ready  # b still holds the set: it is followed
        a._live.close()  # closed whoever holds it
        report = b.health()
        assert not report.ready and _failing(report) == {"flags"}
        assert "closed" in {c.name: c.detail for c in report.readiness}["flags"]
    finally:
        b.close()


@pytest.mark.parametrize("max_staleness", [None, 3600.0])
def test_flags_health_of_a_closed_set(tmp_path, max_staleness):
    m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
    live = m._live
    m.close()
    assert live.closed
    assert not flags_health(live, max_staleness).ready


def test_a_dynamic_managers_watcher_thread_that_died_makes_it_not_ready(tmp_path):
    """``start_file_watching()`` follows the flags file; a watcher thread that ended
    without ``stop_file_watching()`` (an uncaught error) stopped following silently,
    which readiness must say, as the configuration manager's does. A deliberate stop
    is fine."""
    import asyncio

    from tests.redis_server import wait_for

    async def scenario():
        m = DynamicConfigurationManager(state_dir=tmp_path, record_usage=False)
        try:
            await m.start_file_watching(poll_interval=30)
            assert m.health().ready
            watcher = m._watcher
            watcher._stop.set()  # the thread's loop ends; nobody asked for it
            wait_for(lambda: not watcher.running)
            report = m.health()
            assert report.live and not report.ready
            assert report.reasons == [
                "freshness: file watching is on but its watcher thread is not running"
            ]
            await m.stop_file_watching()
            assert m.health().ready
        finally:
            m.close()

    asyncio.run(scenario())
