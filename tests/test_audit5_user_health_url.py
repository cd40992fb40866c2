"""``cfgcore health --url`` pointed at something that is not a probe: a body that
never ends (a download, a streaming endpoint) was read whole into memory, and a deeply
nested JSON body ended as "internal error: RecursionError". Both are now the usual
one-line error saying it is not a cfgcore health report."""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler

import pytest

from cfgcore.cli import main
from tests.http_stub import http_server

CHUNK = b"x" * 65536


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if self.path == "/stream":
            try:
                for _ in range(64 * 16):  # 64 MiB, where the old read took it all
                    self.wfile.write(CHUNK)
            except OSError:
                pass  # the client stopped reading: what it should do
        elif self.path == "/deep":
            self.wfile.write(b"[" * 200_000 + b"]" * 200_000)
        elif self.path == "/trickle":  # a byte at a time, each well within a read's timeout
            try:
                for _ in range(40):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass  # the client gave up: what it should do


@pytest.fixture
def base_url():
    with http_server(_Handler) as url:
        yield url


def test_an_endless_body_is_cut_and_refused(base_url, capsys):
    assert main(["health", "--url", base_url + "/stream"]) == 1
    err = capsys.readouterr().err
    assert "more than 1024 KiB: not a cfgcore health report" in err
    assert "Traceback" not in err


def test_deeply_nested_json_is_not_a_report(base_url, capsys):
    assert main(["health", "--url", base_url + "/deep"]) == 1
    err = capsys.readouterr().err
    assert "not a cfgcore health report" in err
    assert "internal error" not in err


def test_the_service_address_alone_names_the_probe_url(tmp_path, capsys, monkeypatch):
    """`--url http://HOST:PORT` (the service, not its probe) got a 404 and "not a
    cfgcore health report", which did not say what URL was meant; the probe's URL
    answers."""
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.observability.http import serve

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    manager = ConfigurationManager(record_usage=False)
    manager.load_environment_config("staging")
    server = serve(manager, port=0, host="127.0.0.1")
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        assert main(["health", "--url", base]) == 1
        err = capsys.readouterr().err
        assert "HTTP 404, not a cfgcore health report" in err
        assert "http://HOST:PORT/health/ready" in err, err
        assert main(["health", "--url", base + "/health/ready"]) == 0
        assert "ready: yes" in capsys.readouterr().out
    finally:
        server.shutdown()
        server.server_close()
        manager.close()


def test_a_trickling_answer_is_given_up_at_the_deadline(base_url, capsys, monkeypatch):
    # Each read has a 10 s timeout, which a byte every 0.2 s never reaches: the command
    # waited as long as the server kept trickling. It now gives up at URL_DEADLINE.
    from cfgcore.cli import health

    monkeypatch.setattr(health, "URL_DEADLINE", 1.0)
    assert main(["health", "--url", base_url + "/trickle"]) == 1
    err = capsys.readouterr().err
    assert "/trickle: no complete answer within 1 s" in err
    assert "Traceback" not in err
