"""The repair command a refusal prints reaches the store it is about.

A lost publish (or a re-created store) is reported with "the exact command" that repairs
it: ``cfgcore publish --store URL --flags-from-cache CACHE_FILE``. The URL was the
redacted one, which keeps only the namespace: on a TLS store with its own CA
(``ssl_ca_certs=``) the printed command could not connect (the certificate is not
trusted), and a password was shown as ``***`` without a word. Real redis-server with
TLS (openssl makes the certificate); the printed command is run as given.
"""

from __future__ import annotations

import shlex

import msgspec

from cfgcore.cli import main
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.redis_url import parse_redis_url
from cfgcore.snapshot import Flag
from tests.redis_server import wait_for
from tests.test_fleet_store import tls_server


def add(name: str):
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


def test_the_printed_command_connects_over_tls(
    redis_binary, tmp_path, bundled_config, capsys, monkeypatch
):
    tls, port, cert = tls_server(tmp_path)
    url = f"rediss://127.0.0.1:{port}/0?namespace=tlsr&ssl_ca_certs={cert}"
    cache = tmp_path / "f.msgpack"
    f = RedisFlagStore(url + f"&poll=0.05&cache={cache}")
    errors: list[Exception] = []
    try:
        r = tls.client()
        with RedisFlagStore(url + "&cache=off") as writer:
            writer.update(add("old_a"))
            f.read()
            f.watch(lambda doc: None, on_error=errors.append)
            wait_for(lambda: f.connected)
            saved = r.dump("{tlsr}:flags")
            writer.update(add("published"), force=True)  # without wait=1
        wait_for(lambda: f.version == 2 and f._cached == 2)
        r.restore("{tlsr}:flags", 0, saved, replace=True)  # the failover lost it
        wait_for(lambda: errors)
        msg = str(errors[0])
        start = msg.index("cfgcore publish --store")
        command = msg[start:].split(" (version", 1)[0]
        assert "ssl_ca_certs=" in command and "poll=" not in command and "cache=" not in command
        # (no publish recorded an environment, nor does a manager serve one here: ENV
        # stands for the namespace's, said in the message)
        assert " -e ENV " in command and "ENV: the environment the namespace's" in msg
        monkeypatch.setenv("JWT_SIGNING_KEY", "sup3r-s3cret-signing-key-0123456789abcdef")
        command = command.replace(" -e ENV ", " -e development ")
        argv = shlex.split(command)[1:] + ["--config-dir", str(bundled_config)]
        assert main(argv) == 0, capsys.readouterr().err
        wait_for(lambda: f.version == 3)
    finally:
        f.close()
        tls.stop()


def test_a_secret_in_the_command_is_masked_and_said():
    url = parse_redis_url(
        "redis+sentinel://u:PWSECRET@h:26379/svc/0?namespace=n&sentinel_password=SPSECRET&ssl=true"
        "&cache=/x&poll=3&client_name=me&wait=1"
    )
    shown = url.for_command()
    assert "SECRET" not in shown
    assert shown == (
        "redis+sentinel://u:***@h:26379/svc/0?namespace=n&sentinel_password=***&ssl=true&wait=1"
    )
    assert parse_redis_url(shown.replace("***", "x")).options["wait"] == 1


def test_the_repair_command_says_what_the_mask_stands_for():
    with RedisFlagStore("redis://:PWSECRET@127.0.0.1:1/0?namespace=n&cache=off") as store:
        command = store._repair_command()
    assert "SECRET" not in command
    assert "--store 'redis://:***@127.0.0.1:1/0?namespace=n'" in command
    assert "*** stands for the password" in command
