"""``cfgcore health --url`` pointed at something that is not a probe: a body that
never ends (a download, a streaming endpoint) was read whole into memory, and a deeply
nested JSON body ended as "internal error: RecursionError". Both are now the usual
one-line error saying it is not a cfgcore health report."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cfgcore.cli import main

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


@pytest.fixture
def base_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


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
