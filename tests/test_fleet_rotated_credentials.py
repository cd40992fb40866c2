"""Redis passwords rotated while processes run (``password_file=``,
``sentinel_password_file=``, ``credential_provider=``): the password is read again at
every new connection, so a follower refused after a rotation on the server follows
again once the file holds the new password, without a restart. A file that cannot be
read is an outage naming the file (never its content): the last good document keeps
serving. Real redis-server (and redis-sentinel), passwords changed with CONFIG SET and
connections cut with CLIENT KILL; the OpenFeature provider's status read through the
real SDK."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import secrets

import msgspec
import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st
from redis.credentials import CredentialProvider

from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import atomic_write_text
from cfgcore.runtime.redis_credentials import read_password_file
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.redis_url import parse_redis_url
from cfgcore.snapshot import Flag
from tests.redis_server import RedisServer, Sentinel
from tests.waiting import wait_for

_domains = itertools.count()


def _set(flag: str, value: str):
    def change(snap):
        return msgspec.structs.replace(snap, flags={**snap.flags, flag: Flag(default=value)})

    return change


def _password() -> str:
    # (distinct enough that finding it in a message is no coincidence)
    return f"pw-{secrets.token_hex(12)}"


@pytest.fixture
def secured(redis_binary, tmp_path):
    """A redis-server requiring a password, the file holding it, and an admin client
    on one connection (CLIENT KILL skips it; it stays authenticated across a
    rotation)."""
    first = _password()
    server = RedisServer(str(tmp_path / "redis"), args=("--requirepass", first)).start()
    admin = redis.Redis(port=server.port, password=first, single_connection_client=True)
    pw_file = tmp_path / "secrets" / "redis-password"
    pw_file.parent.mkdir()
    pw_file.write_text(first + "\n")
    try:
        yield server, admin, pw_file, first
    finally:
        admin.close()
        server.stop()


def _rotate(admin, new: str) -> None:
    """What a platform rotation does to Redis: the new password required, and every
    client cut so that each must authenticate again."""
    admin.config_set("requirepass", new)
    admin.execute_command("CLIENT", "KILL", "TYPE", "normal")  # (SKIPME yes: not admin)
    admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")


def _texts(store) -> list[str]:
    return [str(store.last_error), repr(store), repr(store._client), repr(store._follow_client)]


def test_a_rotated_password_file_is_picked_up_without_a_restart(secured, tmp_path, impl, caplog):
    """Password A in the file, serving; the server rotates to B and cuts every client:
    the follower is refused (the provider is STALE, saying so), keeps serving; B is
    written to the file atomically (as the kubelet swaps a mounted secret): the
    follower authenticates again, the provider is READY, and a document published
    afterwards is served. No password in any message, log line, health check or repr."""
    api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")
    from openfeature.provider import ProviderStatus

    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class
    from cfgcore.openfeature import CfgcoreProvider

    server, admin, pw_file, first = secured
    url = (
        f"redis://127.0.0.1:{server.port}/0?namespace=rot&poll=0.1&backoff_max=0.2"
        f"&cache={tmp_path / 'c.msgpack'}&password_file={pw_file}"
    )
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    engine = engine_class(impl)()
    manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "s", engine=engine)
    writer = RedisFlagStore(url)  # another process's writer, same file
    seen: list[str] = []
    try:
        writer.update(_set("a", "on"))
        domain = f"cfgcore-rotated-credentials-{next(_domains)}"
        api.set_provider_and_wait(CfgcoreProvider(engine), domain=domain)
        client = api.get_client(domain)
        assert wait_for(lambda: client.get_boolean_value("a", False) is True)
        assert client.get_provider_status() == ProviderStatus.READY
        store = manager._live.store
        assert wait_for(lambda: store.connected)

        second = _password()
        _rotate(admin, second)
        assert wait_for(lambda: "refused this store's credentials" in str(store.last_error))
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.STALE)
        assert not store.connected
        seen += _texts(store)
        stale = manager.health()
        assert any("refused this store's credentials" in r for r in stale.reasons), stale
        seen.append(str(stale))
        assert client.get_boolean_value("a", False) is True  # the last good flags serve

        atomic_write_text(str(pw_file), second + "\n")
        assert wait_for(lambda: store.connected)
        assert wait_for(lambda: client.get_provider_status() == ProviderStatus.READY)
        # The writer's connections were cut too: its next write authenticates with B.
        writer.update(_set("a", "off"))
        assert wait_for(lambda: client.get_boolean_value("a", True) is False)
        assert wait_for(lambda: store.version == writer.version == 2)
        health = manager.health()
        assert not [r for r in health.reasons if r.startswith("flag_store")], health
        seen += _texts(store) + _texts(writer) + [str(health)]
    finally:
        writer.close()
        manager.close()
    seen += [r.getMessage() for r in caplog.records]
    assert any("refused this store's credentials" in t for t in seen)
    for text in seen:
        assert first not in text and second not in text, text


def test_an_acl_rotation_with_two_passwords_refuses_nothing(secured, tmp_path):
    """An ACL user (the name in the URL, the password in the file) rotated the way
    that refuses nobody: the new password added beside the old, the file updated, the
    old one removed and the user's connections cut. The follower reconnects with the
    new password at once (never refused) and takes a document published afterwards."""
    server, admin, _pw_file, _first = secured
    old, new = _password(), _password()
    admin.execute_command("ACL", "SETUSER", "app", "on", f">{old}", "~*", "&*", "+@all")
    pw_file = tmp_path / "app-password"
    pw_file.write_text(old + "\n")
    url = (
        f"redis://app@127.0.0.1:{server.port}/0?namespace=acl&poll=0.1&backoff_max=0.2"
        f"&cache=off&password_file={pw_file}"
    )
    store = RedisFlagStore(url)
    writer = RedisFlagStore(url)
    try:
        writer.update(_set("a", "on"))
        store.read()
        store.watch(lambda doc: None)
        assert wait_for(lambda: store.connected)
        assert admin.execute_command("ACL", "WHOAMI") == b"default"
        admin.execute_command("ACL", "SETUSER", "app", f">{new}")
        atomic_write_text(str(pw_file), new + "\n")
        admin.execute_command("ACL", "SETUSER", "app", f"<{old}")
        reconnects = store.stats["reconnects"]
        admin.execute_command("CLIENT", "KILL", "USER", "app")
        assert wait_for(lambda: store.stats["reconnects"] > reconnects and store.connected)
        writer.update(_set("a", "off"))
        assert wait_for(lambda: store.version == 2)
        assert "refused" not in str(store.last_error)
        assert old not in str(store.last_error) and new not in str(store.last_error)
    finally:
        writer.close()
        store.close()


def test_a_password_file_missing_at_start_names_the_file(secured, tmp_path):
    """No file, no cache file: read() fails naming the file and why (the path, not a
    password); with a cache file it serves that, saying why it does."""
    server, _admin, pw_file, first = secured
    missing = tmp_path / "secrets" / "not-there"
    url = f"redis://127.0.0.1:{server.port}/0?namespace=m&password_file={missing}"
    store = RedisFlagStore(url + "&cache=off")
    try:
        with pytest.raises(ConfigError) as err:
            store.read()
    finally:
        store.close()
    msg = str(err.value)
    assert "no credentials for Redis" in msg
    assert f"cannot read the Redis password file {missing}: No such file or directory" in msg
    assert "no usable cache file" in msg

    cache = tmp_path / "c.msgpack"
    good = RedisFlagStore(f"redis://127.0.0.1:{server.port}/0?namespace=m&cache={cache}"
                          f"&password_file={pw_file}")  # fmt: skip
    try:
        good.update(_set("a", "on"))
    finally:
        good.close()
    store = RedisFlagStore(url + f"&cache={cache}")
    try:
        doc = store.read()
        assert doc.version == 1 and store.serving_cache
        assert "no credentials for Redis, serving the cache file" in str(store.last_error)
        assert str(missing) in str(store.last_error)
        assert first not in str(store.last_error)
    finally:
        store.close()


def _make_unreadable(kind: str, path) -> str:
    """``path`` made into something that gives no password; returns what it holds
    that must never be shown (bytes as text) or ""."""
    if kind == "directory":
        path.mkdir()
        return ""
    if kind == "fifo":
        os.mkfifo(path)  # (a reader would block on its open: never opened)
        return ""
    if kind == "empty":
        path.write_bytes(b"")
        return ""
    if kind == "newline only":
        path.write_bytes(b"\n")
        return ""
    secret = "caf\xe9-" + secrets.token_hex(8)
    path.write_bytes(secret.encode("latin-1"))  # not UTF-8
    return secret[5:]


@pytest.mark.parametrize("kind", ["directory", "fifo", "empty", "newline only", "not utf-8"])
def test_an_unreadable_password_file_while_running_keeps_the_last_document(secured, tmp_path, kind):
    """The file replaced by something that gives no password while the follower runs,
    and the server's clients cut: the follower says which file and why (never its
    content), is not connected, and serves its document; once the file is good again
    it follows, and takes a newer document."""
    server, admin, pw_file, first = secured
    url = (
        f"redis://127.0.0.1:{server.port}/0?namespace=u&poll=0.1&backoff_max=0.2"
        f"&cache=off&password_file={pw_file}"
    )
    store = RedisFlagStore(url)
    writer = RedisFlagStore(url)
    try:
        writer.update(_set("a", "on"))
        served = []
        store.read()
        store.watch(served.append)
        assert wait_for(lambda: store.connected)
        pw_file.unlink()
        hidden = _make_unreadable(kind, pw_file)
        admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        assert wait_for(lambda: "no credentials for Redis" in str(store.last_error))
        error = str(store.last_error)
        assert f"Redis password file {pw_file}" in error
        assert first not in error
        if hidden:
            assert hidden not in error
        assert not store.connected and store.version == 1
        if pw_file.is_dir():
            pw_file.rmdir()
        else:
            pw_file.unlink()
        atomic_write_text(str(pw_file), first)  # (no trailing newline: as good)
        assert wait_for(lambda: store.connected)
        writer.update(_set("a", "off"))
        assert wait_for(lambda: store.version == 2)
        assert served[-1].version == 2
    finally:
        writer.close()
        store.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:secretpw@h/0?password_file=/run/pw", "both a password in the URL"),
        ("redis://app:secretpw@h/0?password_file=/run/pw", "both a password in the URL"),
        ("unix://:secretpw@/tmp/r.sock?db=0&password_file=/run/pw", "both a password in"),
        (
            "redis+sentinel://h:26379/svc?sentinel_password=secretpw"
            "&sentinel_password_file=/run/spw",
            "both sentinel_password= and",
        ),  # fmt: skip
        ("redis://h/0?sentinel_password_file=/run/spw", "is for redis+sentinel:// URLs"),
        ("redis://h/0?password_file=", "password_file: expected the path of a file"),
    ],
)
def test_ambiguous_or_empty_password_sources_are_refused(url, expected):
    with pytest.raises(ConfigError) as err:
        parse_redis_url(url)
    assert expected in str(err.value)
    assert "secretpw" not in str(err.value)


@given(password=st.text().map("PWMARK".__add__), other=st.text().map("PWMARK".__add__))
def test_a_parsed_url_repr_holds_no_password(password, other):
    """A parsed URL's repr (a traceback's locals, a debugger) shows ``***`` for the
    password and the secret options, and the password file's path."""
    from urllib.parse import quote

    url = (
        f"redis+sentinel://app:{quote(password, safe='')}@h:26379/svc/0?"
        f"sentinel_password={quote(other, safe='')}&ssl=true&ssl_certfile=/tls/c.pem"
        f"&ssl_password={quote(other, safe='')}"
    )
    shown = repr(parse_redis_url(url))
    assert "password='***'" in shown and "'sentinel_password': '***'" in shown
    assert "PWMARK" not in shown


def test_a_credential_provider_and_url_credentials_are_refused():
    for url in ("redis://:secretpw@h/0", "redis://app@h/0", "redis://h/0?password_file=/x"):
        with pytest.raises(ConfigError, match="keep one") as err:
            RedisFlagStore(url, credential_provider=lambda: ("x",))
        assert "secretpw" not in str(err.value)
    with pytest.raises(TypeError, match="credential_provider"):
        RedisFlagStore("redis://h/0?cache=off", credential_provider="secretpw")


def test_the_password_file_path_is_absolute_and_shown_but_not_its_content(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parsed = parse_redis_url("redis://app@h/0?password_file=pw.txt")
    assert parsed.options["password_file"] == str(tmp_path / "pw.txt")
    assert parsed.password is None
    # A command an operator is told to run reaches the same store: the file is named.
    assert f"password_file={tmp_path / 'pw.txt'}" in parsed.for_command()


@pytest.mark.parametrize("shape", ["callable", "CredentialProvider"])
def test_a_credential_provider_is_asked_at_each_new_connection(secured, tmp_path, shape):
    """``credential_provider=``: a callable asked at each new connection (not per
    command); one that raises is reported by its name and exception type, never its
    message (which may quote what it read); what it returns then is used."""
    server, admin, _pw_file, first = secured
    current = {"password": first, "fail": False}
    calls = []

    def provider():
        calls.append(1)
        if current["fail"]:
            raise RuntimeError(f"vault said no to {current['password']}")
        return (current["password"],)

    class Provider(CredentialProvider):
        def get_credentials(self):
            return provider()

    given = provider if shape == "callable" else Provider()
    url = f"redis://127.0.0.1:{server.port}/0?namespace=p&poll=0.1&backoff_max=0.2&cache=off"
    store = RedisFlagStore(url, credential_provider=given)
    try:
        store.update(_set("a", "on"))
        store.watch(lambda doc: None)
        assert wait_for(lambda: store.connected)
        before = len(calls)
        for _ in range(20):
            store.read()
        assert len(calls) == before  # pooled connections: not asked per command
        second = _password()
        current["fail"] = True
        _rotate(admin, second)
        assert wait_for(lambda: "credential provider" in str(store.last_error))
        error = str(store.last_error)
        assert "the credential provider " in error and "failed: RuntimeError" in error
        assert "vault" not in error
        assert ("provider" if shape == "callable" else "Provider") in error
        assert first not in error and second not in error
        current.update(password=second, fail=False)
        assert wait_for(lambda: store.connected)
        _, new = store.update(_set("a", "off"))
        assert new.version == 2
    finally:
        store.close()


def test_a_sentinel_password_file_is_read_at_each_connection(redis_binary, tmp_path):
    """``sentinel_password_file=``: the Sentinels' password, read at each connection to
    a Sentinel; a missing one is named as the reason no primary was found."""
    primary = RedisServer(str(tmp_path / "p")).start()
    sentinel = Sentinel(str(tmp_path / "s"), primary, replicas=0).start()
    spw = _password()
    admin = redis.Redis(port=sentinel.port, single_connection_client=True)
    try:
        # (the Sentinel's own password: CONFIG SET is not a Sentinel command)
        admin.execute_command("ACL", "SETUSER", "default", "resetpass", f">{spw}")
        pw_file = tmp_path / "sentinel-password"
        pw_file.write_text(spw + "\n")
        url = (
            f"redis+sentinel://127.0.0.1:{sentinel.port}/{sentinel.name}/0?namespace=s"
            f"&cache=off&sentinel_password_file={pw_file}"
        )
        store = RedisFlagStore(url)
        try:
            _, doc = store.update(_set("a", "on"))
            assert doc.version == 1
            pw_file.unlink()
            # New connections everywhere: to the Sentinel (cut there) and to Redis.
            admin.execute_command("CLIENT", "KILL", "TYPE", "normal")
            store._client.connection_pool.disconnect()
            with pytest.raises(ConfigError) as err:
                store.read()
            msg = str(err.value)
            assert "no credentials for Redis" in msg
            assert f"Redis Sentinel password file {pw_file}" in msg
            assert spw not in msg
            rotated = _password()
            admin.execute_command("ACL", "SETUSER", "default", "resetpass", f">{rotated}")
            atomic_write_text(str(pw_file), rotated + "\n")
            assert store.read().version == 1  # the new password, read at the reconnect
        finally:
            store.close()
    finally:
        admin.close()
        sentinel.stop()
        primary.stop()


# Text a password file can hold (cfgcore._encoding: no NUL, and a leading U+FEFF is the
# UTF-8 byte-order mark, never part of the password; tests/test_text_encodings.py). No
# lone surrogates either: they have no UTF-8 spelling, so no file holds one.
_NOT_A_NEWLINE_END = st.text(
    min_size=1, alphabet=st.characters(exclude_characters="\0", exclude_categories=("Cs",))
).filter(lambda s: not s.endswith(("\n", "\r")) and not s.startswith("\ufeff"))


@given(password=_NOT_A_NEWLINE_END, ending=st.sampled_from(["", "\n", "\r\n"]))
def test_a_password_file_reads_back_the_password(tmp_path_factory, password, ending):
    """Whatever the text (spaces, ':', '@', other scripts, inner newlines), the file
    gives it back without one trailing newline."""
    path = tmp_path_factory.mktemp("pw") / "password"
    path.write_bytes((password + ending).encode("utf-8"))
    assert read_password_file(str(path)) == password


def test_a_password_with_awkward_characters_authenticates(secured):
    """Spaces, '@', ':', '%', other scripts and a trailing space reach Redis as written
    in the file (no URL encoding to get wrong)."""
    server, admin, pw_file, _first = secured
    awkward = " p@ss:w%rd/?#&= café ☃ "
    admin.config_set("requirepass", awkward)
    atomic_write_text(str(pw_file), awkward + "\n")
    url = f"redis://127.0.0.1:{server.port}/0?namespace=w&cache=off&password_file={pw_file}"
    with contextlib.closing(RedisFlagStore(url)) as store:
        _, doc = store.update(_set("a", "on"))
        assert doc.version == 1
        assert awkward not in repr(store) and awkward not in store.url
