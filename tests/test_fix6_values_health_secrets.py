"""The readiness report names the secrets production left empty.

``cfgcore setup`` and ``cfgcore validate`` report a secret left empty
(``${DB_PASSWORD:-}`` with the variable not exported), but a service started that way
reported itself healthy and ready with nothing to say. In production the readiness
report now carries a ``warn`` check naming each empty secret by key path (and the
variable): still ready (a serving process taken out of rotation would not get its
secret back), worked out once per activated version, not on every probe.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

import cfgcore.config.checks as checks
from cfgcore.config.manager import ConfigurationManager
from cfgcore.observability.health import wsgi_app

FILES = {
    "base.yaml": (
        "database:\n"
        '  password: "${DB_PASSWORD:-}"\n'
        '  url: "postgres://app:${DB_PASSWORD:-}@db.internal/orders"\n'
        '  host: "${DB_HOST:-}"\n'
        "service:\n"
        "  name: orders\n"
    ),
    "production.yaml": "environment: production\n",
    "staging.yaml": "environment: staging\n",
}


@pytest.fixture
def directory(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    for name, text in FILES.items():
        (d / name).write_text(text)
    return d


def _open(directory, environment, environ):
    m = ConfigurationManager(directory, environment=environment, environ=environ)
    m.disable_audit()
    m.load_environment_config()
    return m


def _secrets_check(report):
    return [c for c in report.readiness if c.name == "secrets"]


def test_production_with_an_empty_secret_is_ready_with_a_warning(directory):
    m = _open(directory, "production", {})
    report = m.health()
    assert report.live and report.ready
    [check] = _secrets_check(report)
    assert check.status == "warn"
    assert check.detail.startswith("2 secret(s) empty in production: ")
    assert "database.password (from ${DB_PASSWORD:-})" in check.detail
    assert "database.url (from ${DB_PASSWORD:-})" in check.detail
    assert "database.host" not in check.detail  # not a secret
    assert any(r.startswith("secrets: 2 secret(s) empty") for r in report.reasons)
    m.close()


def test_the_probe_says_ready_over_http_with_the_warning(directory):
    m = _open(directory, "production", {})
    server = make_server("127.0.0.1", 0, wsgi_app(m), handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/health/ready"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.status == 200
            body = json.loads(response.read())
    finally:
        server.shutdown()
        server.server_close()
        m.close()
    assert body["ready"] is True
    [check] = [c for c in body["readiness"] if c["name"] == "secrets"]
    assert check["status"] == "warn" and "database.password" in check["detail"]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def test_outside_production_nothing_is_said(directory):
    m = _open(directory, "staging", {})
    assert _secrets_check(m.health()) == []
    m.close()


def test_exported_secrets_are_ok_and_a_reload_clears_the_warning(directory):
    environ: dict[str, str] = {}
    m = _open(directory, "production", environ)
    assert _secrets_check(m.health())[0].status == "warn"
    environ["DB_PASSWORD"] = "s3cret-0123456789"
    assert m.reload() is not False
    [check] = _secrets_check(m.health())
    assert (check.status, check.detail) == ("ok", "no secret is empty")
    m.close()


def test_worked_out_once_per_version_not_per_probe(directory, monkeypatch):
    calls = []
    real = checks.empty_secrets_of

    def counting(*args, **kwargs):
        calls.append(args[0].version)
        return real(*args, **kwargs)

    monkeypatch.setattr(checks, "empty_secrets_of", counting)
    m = _open(directory, "production", {})
    for _ in range(5):
        assert _secrets_check(m.health())[0].status == "warn"
    assert calls == [1]
    assert m.update_config("service.name", "orders-2")
    for _ in range(3):
        m.health()
    assert calls == [1, 2]
    m.close()


def test_many_empty_secrets_are_counted_past_the_first_ten(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    lines = "".join(f'  svc{i}_password: "${{SVC{i}_PASSWORD:-}}"\n' for i in range(14))
    (tmp_path / "production.yaml").write_text("environment: production\nsecrets_of:\n" + lines)
    m = _open(tmp_path, "production", {})
    [check] = _secrets_check(m.health())
    assert check.detail.startswith("14 secret(s) empty in production")
    assert "secrets_of.svc9_password" in check.detail and "and 4 more" in check.detail
    assert "svc10_password" not in check.detail
    m.close()
