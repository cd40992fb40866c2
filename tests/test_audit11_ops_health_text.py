"""``cfgcore health`` prints the report for a terminal: each check on one line. The
names, statuses and details were printed as the report held them, and ``--url`` takes
them from whatever answers at the URL (plain HTTP across a network, a proxy, a service
whose check details quote a store's error text): an escape sequence in one cleared the
operator's terminal or retitled it, and a newline forged a further check line
(``[  ok] flags: ...``) under a failing one. They are shown escaped now, as cfgcore's
other reports show names read from outside (``printable_name``); ``--json`` was
escaped all along."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest

from cfgcore.cli import main
from cfgcore.observability.health import Check, HealthReport
from tests.http_stub import http_server

HOSTILE = {
    "live": True,
    "ready": False,
    "checked_at": 1.0,
    "liveness": [{"name": "config_read\x1b]0;owned\x07", "status": "ok", "detail": "fine"}],
    "readiness": [
        {
            "name": "flags",
            "status": "fail\x1b[2J",
            "detail": "refused\n  [  ok] flag_store: following it\u202e\r[  ok] all good",
        }
    ],
}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps(HOSTILE).encode()
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def base_url():
    with http_server(_Handler) as url:
        yield url


def _plain(text: str) -> None:
    for control in ("\x1b", "\x07", "\r", "\u202e"):
        assert control not in text


def test_a_remote_report_is_printed_one_line_per_check_with_nothing_raw(base_url, capsys):
    assert main(["health", "--url", base_url + "/health/ready"]) == 1
    out = capsys.readouterr().out
    _plain(out)
    lines = out.splitlines()
    assert len(lines) == 6  # live, ready, two titles, one line per check: nothing forged
    assert lines[-1].startswith("  [fail\\x1b[2J] flags: refused\\n  [  ok] flag_store")
    assert "config_read\\x1b]0;owned\\x07: fine" in lines[3]


def test_the_json_form_keeps_the_text_as_it_came(base_url, capsys):
    assert main(["health", "--url", base_url + "/health/ready", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == HOSTILE


def test_a_local_report_with_a_multiline_detail_stays_one_line_per_check():
    report = HealthReport(
        (Check("config_read", "ok", "version 3 readable"),),
        (Check("flag_store", "fail", "not following redis://r:6379/0 (Error 111\nconnecting)"),),
    )
    text = str(report)
    _plain(text)
    assert text.splitlines()[-1] == (
        "  [fail] flag_store: not following redis://r:6379/0 (Error 111\\nconnecting)"
    )
    assert "version 3 readable" in text and report.to_dict()["readiness"][0]["detail"].count("\n")
