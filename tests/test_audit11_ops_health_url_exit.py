"""``cfgcore health`` exits 1 when not ready, ``--url`` included. Given the liveness
probe's URL (``/health/live``, the other probe a deploy script may name), a process that
is live but not ready (nothing loaded yet, closed, a stuck watcher) answers 200 with a
report saying ``ready: false``; the command printed ``ready: NO`` and exited 0, so the
script went on as if the service were ready. The exit status follows the report's
readiness and the answer's status both."""

from __future__ import annotations

import pytest

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.observability.http import serve


@pytest.fixture
def served(bundled_config):
    m = ConfigurationManager(bundled_config, environ={})
    server = serve(m, port=0)
    yield m, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    m.close()


@pytest.mark.parametrize("as_json", [[], ["--json"]])
def test_live_but_not_ready_exits_1_whichever_probe_is_asked(served, capsys, as_json):
    manager, base = served
    # nothing loaded: live, not ready
    assert main(["health", "--url", base + "/health/live", *as_json]) == 1
    assert main(["health", "--url", base + "/health/ready", *as_json]) == 1
    manager.load_environment_config("staging")
    assert main(["health", "--url", base + "/health/live", *as_json]) == 0
    assert main(["health", "--url", base + "/health/ready", *as_json]) == 0
    manager.close()  # closing: still live, no longer ready
    assert main(["health", "--url", base + "/health/live", *as_json]) == 1
    out = capsys.readouterr().out
    assert ("ready: NO" in out) if not as_json else ('"ready": false' in out)
