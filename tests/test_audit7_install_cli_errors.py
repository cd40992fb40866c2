"""What the command line prints when something fails must hold no secret, and a feature
whose optional extra is missing must say which extra to install.

``cfgcore health --url http://user:PASSWORD@host/...`` printed the URL, password
included, in its error (and the password never reached the server: urllib took
``user:PASSWORD@host`` for the host name). Errors from outside ``ConfigError`` (a
command's own error, an ``OSError``, an unexpected exception) were printed without the
masking every log line and ``ConfigError`` get. ``cfgcore publish --store redis://...``
without the redis package ended in "internal error: ModuleNotFoundError: No module
named 'redis'" instead of naming the ``redis`` extra.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.observability.health import wsgi_app
from tests.redis_server import refused_port

PASSWORD = "hunter2-Pw9xQ"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def probe(bundled_config):
    """A real probe server behind basic auth (as a reverse proxy in front of it would
    be): the readiness URL, and the Authorization headers it received."""
    manager = ConfigurationManager(bundled_config, environ={})
    manager.load_environment_config("staging")
    inner = wsgi_app(manager)
    seen: list[str] = []
    expected = "Basic " + base64.b64encode(f"probe:{PASSWORD}".encode()).decode()

    def app(environ, start_response):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        seen.append(auth)
        if auth != expected:
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"who are you?\n"]
        return inner(environ, start_response)

    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()
        server.server_close()
        manager.close()


def test_health_url_credentials_are_sent_and_never_printed(probe, capsys):
    where, seen = probe
    url = f"http://probe:{PASSWORD}@{where}/health/ready"
    assert main(["health", "--url", url, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["ready"] is True
    assert PASSWORD not in out + err
    assert seen and seen[-1].startswith("Basic ")


def test_health_url_error_masks_the_password(capsys):
    url = f"http://probe:{PASSWORD}@127.0.0.1:{refused_port()}/health/ready"
    assert main(["health", "--url", url]) == 1
    err = capsys.readouterr().err
    assert "cfgcore: error:" in err
    assert PASSWORD not in err
    assert "127.0.0.1" in err  # still says where


def _raises(exc):
    def command(args):
        raise exc

    return command


@pytest.mark.parametrize(
    "exc",
    [
        "CommandError",
        OSError(f"cannot connect to redis://app:{PASSWORD}@cache:6379/0"),
        ValueError(f"bad URL https://hooks.example/x?token={PASSWORD}"),
        RuntimeError(f"redis://app:{PASSWORD}@cache:6379/0 went away"),
    ],
)
def test_every_command_error_masks_url_secrets(exc, capsys):
    # Whatever a command raises, the one line printed is masked as a log line is.
    from cfgcore import cli

    if exc == "CommandError":
        exc = cli.CommandError(f"redis://app:{PASSWORD}@cache:6379/0: refused")
    assert cli._run(_raises(exc), object(), 30) == 1
    err = capsys.readouterr().err
    assert err.startswith("cfgcore: error:")
    assert PASSWORD not in err, err


@pytest.mark.parametrize(
    "module, extra",
    [("redis", "redis"), ("scipy", "stats"), ("cryptography", "secrets")],
)
def test_a_missing_extra_is_named_not_an_internal_error(monkeypatch, capsys, module, extra):
    from cfgcore import cli

    def needs_it(args):
        __import__(module)

    # A command whose optional dependency is absent: the import fails as it does on a
    # machine without the extra (None in sys.modules: ModuleNotFoundError, name=module).
    monkeypatch.setitem(sys.modules, module, None)
    assert cli._run(needs_it, object(), 30) == 1
    err = capsys.readouterr().err
    assert f"pip install 'cfgcore[{extra}]'" in err, err
    assert "internal error" not in err


def test_publish_to_redis_without_the_redis_package_names_the_extra(
    bundled_config, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    code = main(
        [
            "publish",
            "--config-dir",
            str(bundled_config),
            "-e",
            "staging",
            "--store",
            f"redis://:{PASSWORD}@127.0.0.1:{refused_port()}/0",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "pip install 'cfgcore[redis]'" in err, err
    assert PASSWORD not in err


@pytest.mark.parametrize("flags", [False, True])
def test_publish_to_an_unreachable_store_names_the_document_it_could_not_write(
    bundled_config, tmp_path, monkeypatch, capsys, flags
):
    """A publish of the configuration alone said "cannot write the flag document": the
    configuration's store is a flag store underneath."""
    pytest.importorskip("redis")
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    url = f"redis://:{PASSWORD}@127.0.0.1:{refused_port()}/0?namespace=m"
    argv = ["publish", "--config-dir", str(bundled_config), "-e", "staging", "--store", url]
    code = main([*argv, "--flags"] if flags else argv)
    err = capsys.readouterr().err
    assert code == 1 and PASSWORD not in err
    if flags:  # the stored flags are read first, to judge the new ones against them
        assert "cannot read the stored flag document" in err and "nothing written" in err, err
    else:
        assert "cannot write the published configuration of staging: " in err, err
        assert "flag document" not in err


VV_SCRIPT = r"""
import sys
from cfgcore import cli

def command(args):
    raise RuntimeError("redis://app:%s@cache:6379/0 went away")

cli._setup_logging(10)  # -vv
sys.exit(cli._run(command, None, 10))
"""


def test_the_vv_traceback_is_masked_in_a_fresh_process():
    # A command failing before anything imported cfgcore.runtime.secrets (whose import
    # installs the loggers' mask): the traceback -vv prints was shown unmasked.
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", VV_SCRIPT % PASSWORD], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "Traceback" in done.stderr and "RuntimeError: redis://app:" in done.stderr
    assert PASSWORD not in done.stderr, done.stderr
