"""RedisFlagStore against a real redis-server: URLs, compare-and-set, followers,
rejection, AUTH and TLS (issue 9). The multi-process tests are in test_fleet_processes.py."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.engine import Engine
from cfgcore.errors import ConfigError, SnapshotError
from cfgcore.runtime.redis_store import RedisFlagStore, parse_redis_url
from cfgcore.snapshot import Flag, Snapshot
from tests.fuzz import examples
from tests.redis_server import RedisServer, free_port, wait_for


def add(name: str, **kw):
    return lambda s: msgspec.structs.replace(
        s, flags={**s.flags, name: Flag(**{"default": "on", **kw})}
    )


@pytest.fixture
def store_url(redis_server, tmp_path):
    return redis_server.url + f"?namespace=t&cache={tmp_path / 'cache.msgpack'}"


# -- URLs --------------------------------------------------------------------------


def test_url_forms():
    u = parse_redis_url("redis://cache.internal:6380/2?namespace=music")
    assert (u.scheme, u.hosts, u.db, u.namespace) == (
        "redis",
        (("cache.internal", 6380),),
        2,
        "music",
    )
    assert parse_redis_url("redis://h").hosts == (("h", 6379),)
    assert parse_redis_url("redis://h").namespace == "cfgcore"
    s = parse_redis_url("redis+sentinel://:pw@s1:26379,s2,[::1]:26380/primary/3?namespace=x")
    assert s.hosts == (("s1", 26379), ("s2", 26379), ("::1", 26380))
    assert (s.service, s.db, s.password) == ("primary", 3, "pw")
    t = parse_redis_url("rediss://user:secret@h:6390/0?ssl_cert_reqs=none&wait=1&poll=2.5")
    assert (t.username, t.password, t.options["wait"], t.options["poll"]) == (
        "user",
        "secret",
        1,
        2.5,
    )
    assert "secret" not in t.redacted() and t.redacted().startswith("rediss://user:***@h:6390/0")


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://h/0", "not a Redis store URL"),
        ("redis://h/0?namespce=x", "unknown query parameter 'namespce'"),
        ("redis://h/zero", "database: expected a number"),
        ("redis://h:port/0", "port: expected a number"),
        ("redis://a,b/0", "redis+sentinel"),
        ("redis+sentinel://s1/", "Sentinel service name"),
        ("redis://h/0?poll=soon", "poll: expected a number"),
        ("redis://h/0?namespace=a:b", "namespace"),
        ("redis://:hunter2@h/0?ssl=maybe", "ssl: expected true or false"),
    ],
)
def test_bad_urls_name_the_url_and_the_problem(url, message):
    with pytest.raises(ConfigError) as err:
        parse_redis_url(url)
    assert message in str(err.value)
    assert "hunter2" not in str(err.value)


@settings(max_examples=examples(30), deadline=None)
@given(
    host=st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    port=st.integers(1, 65535),
    db=st.integers(0, 15),
    ns=st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True),
    password=st.text(min_size=1, max_size=12),
)
def test_redacted_url_parses_back_to_the_same_store(host, port, db, ns, password):
    from urllib.parse import quote

    u = parse_redis_url(f"redis://:{quote(password, safe='')}@{host}:{port}/{db}?namespace={ns}")
    assert u.password == password
    back = parse_redis_url(u.redacted())
    assert (back.hosts, back.db, back.namespace) == (((host, port),), db, ns)
    assert back.password == "***"  # the redacted form never carries the secret


# -- writes ------------------------------------------------------------------------


def test_update_stores_version_checksum_and_writer(store_url, stores):
    store = stores(store_url)
    assert store.read().version == 0
    old, new = store.update(add("a"), actor="release-bot")
    assert (old.version, new.version) == (0, 1)
    assert new.checksum == hashlib.sha256(new.data).hexdigest()
    assert new.writer["pid"] == os.getpid() and new.writer["actor"] == "release-bot"
    again = stores(store_url).read()
    assert (again.version, again.checksum, set(again.snapshot.flags)) == (1, new.checksum, {"a"})
    assert again.writer["actor"] == "release-bot"


def test_a_change_that_does_not_compile_writes_nothing(store_url, stores):
    store = stores(store_url)
    store.update(add("a"))
    with pytest.raises(SnapshotError):
        store.update(add("b", default="missing-variant"), check=Engine().compile)
    doc = store.read()
    assert doc.version == 1 and set(doc.snapshot.flags) == {"a"}


def test_concurrent_writers_lose_nothing(store_url, stores):
    writers = [stores(store_url) for _ in range(4)]

    def run(i: int) -> None:
        for j in range(25):
            writers[i].update(add(f"w{i}_{j}"))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc = stores(store_url).read()
    assert doc.version == 100
    assert len(doc.snapshot.flags) == 100
    assert sum(w.stats["writes"] for w in writers) == 100


def test_writes_fail_loudly_when_redis_is_down(redis_binary, tmp_path, stores):
    server = RedisServer(str(tmp_path / "r")).start()
    store = stores(server.url + "?cache=off")
    server.kill()
    with pytest.raises(ConfigError, match="cannot write the flag document"):
        store.update(add("a"))
    with pytest.raises(ConfigError, match="Redis unreachable"):
        store.read()


# -- following ---------------------------------------------------------------------


def test_watch_delivers_newer_documents_once_each(store_url, stores):
    writer, follower = stores(store_url), stores(store_url)
    seen: list[int] = []
    unsubscribe = follower.watch(lambda doc: seen.append(doc.version))
    wait_for(lambda: follower.connected)
    for name in "abc":
        writer.update(add(name))
    wait_for(lambda: follower.version == 3)
    assert seen == sorted(set(seen)) and seen[-1] == 3
    unsubscribe()
    writer.update(add("d"))
    wait_for(lambda: follower.version == 4)  # still followed, but nobody is called
    assert seen[-1] == 3


def test_own_writes_are_not_delivered_back_as_remote(store_url, stores):
    store = stores(store_url)
    seen: list[int] = []
    store.watch(lambda doc: seen.append(doc.version))
    wait_for(lambda: store.connected)
    store.update(add("a"))
    stores(store_url).update(add("b"))  # another process's write is delivered
    wait_for(lambda: seen == [2])


def test_the_follower_never_moves_to_an_older_version(redis_server, store_url, stores):
    writer, follower = stores(store_url), stores(store_url + "&poll=0.05")
    for name in "abc":
        writer.update(add(name))
    follower.read()
    delivered: list[int] = []
    follower.watch(lambda doc: delivered.append(doc.version))
    redis_server.client().hset("{t}:flags", "version", 2)  # e.g. a failover lost a write
    wait_for(lambda: follower.stats["backwards"] == 1)
    assert follower.version == 3
    # a writer that had seen 3 continues above it
    _, new = writer.update(add("d"))
    assert new.version == 4
    wait_for(lambda: follower.version == 4)
    assert delivered == [4]  # never 2


def test_rejected_documents_are_counted_and_reported_once(redis_server, store_url, stores):
    writer = stores(store_url)
    follower = stores(store_url + "&poll=0.05")  # polls re-read the bad key many times
    writer.update(add("a"))
    follower.read()
    errors: list[Exception] = []

    def compile_or_raise(doc):
        Engine().compile(doc.snapshot, file=doc.origin)

    follower.watch(compile_or_raise, on_error=errors.append)
    r = redis_server.client()
    r.hset("{t}:flags", mapping={"version": 2, "data": b"\x00not msgpack"})
    wait_for(lambda: len(errors) == 1)
    assert "checksum mismatch in version 2" in str(errors[0])
    # a document the listener refuses (it does not compile): counted, not re-reported
    # through on_error (the listener reports it: the live flag set audits it)
    bad = msgspec.msgpack.encode({"flags": {"x": {"default": "nope"}}})
    r.hset(
        "{t}:flags",
        mapping={"version": 3, "data": bad, "checksum": hashlib.sha256(bad).hexdigest()},
    )
    wait_for(lambda: follower.stats["rejected"] == 2)
    assert "flags.x" in (follower.last_error or "")
    time.sleep(0.3)  # several polls re-read the bad key meanwhile: still counted once
    assert follower.stats["rejected"] == 2 and len(errors) == 1 and follower.version == 1


def test_the_cache_file_is_written_after_every_accepted_document(store_url, stores, tmp_path):
    writer, follower = stores(store_url), stores(store_url)
    follower.watch(lambda doc: None)
    wait_for(lambda: follower.connected)
    writer.update(add("a"))
    wait_for(lambda: follower.version == 1)
    cached = follower.read_cache()
    assert cached.version == 1 and set(cached.snapshot.flags) == {"a"}
    assert str(tmp_path / "cache.msgpack") in cached.origin
    (tmp_path / "cache.msgpack").write_bytes(b"\x93garbage")
    with pytest.raises(ConfigError, match="cache.msgpack"):
        follower.read_cache()


def test_forced_replace_repairs_an_unreadable_version(redis_server, store_url, stores):
    store = stores(store_url)
    store.update(add("a"))
    redis_server.client().hset("{t}:flags", "version", "garbage")
    with pytest.raises(ConfigError, match="not a number"):
        store.update(add("b"))
    _, new = store.update(lambda _: Snapshot(flags={"fresh": Flag(default="on")}), force=True)
    assert new.version == 2 and set(store.read().snapshot.flags) == {"fresh"}


# -- AUTH and TLS ------------------------------------------------------------------


def test_auth(redis_binary, tmp_path, stores):
    server = RedisServer(str(tmp_path / "r"), args=("--requirepass", "s3cret")).start()
    try:
        store = stores(server.url.replace("redis://", "redis://:s3cret@") + "?cache=off")
        store.update(add("a"))
        assert store.read().version == 1
        assert "s3cret" not in store.url
        wrong = stores(server.url.replace("redis://", "redis://:nope@") + "?cache=off")
        with pytest.raises(ConfigError) as err:
            wrong.read()
        assert "nope" not in str(err.value)
    finally:
        server.stop()


def _self_signed(directory) -> tuple[str, str]:
    cert, key = str(directory / "cert.pem"), str(directory / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def tls_server(tmp_path) -> tuple[RedisServer, int, str]:
    """A started redis-server with TLS on its own port and a self-signed certificate:
    (server, TLS port, its certificate: the CA to trust). Its plain port answers the
    fixture's readiness PING; stores use the TLS port. Skips without openssl."""
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = _self_signed(tmp_path)
    port = free_port()
    server = RedisServer(
        str(tmp_path / "tls"),
        args=("--tls-port", str(port), "--tls-cert-file", cert, "--tls-key-file", key,
              "--tls-ca-cert-file", cert, "--tls-auth-clients", "no"),
    ).start()  # fmt: skip
    return server, port, cert


def test_tls(redis_binary, tmp_path, stores):
    tls, tls_port, cert = tls_server(tmp_path)
    try:
        url = f"rediss://127.0.0.1:{tls_port}/0?cache=off&ssl_ca_certs={cert}"
        store = stores(url)
        store.update(add("a"))
        assert store.read().version == 1 and store.url.startswith("rediss://")
        untrusted = stores(f"rediss://127.0.0.1:{tls_port}/0?cache=off")
        with pytest.raises(ConfigError, match="Redis unreachable"):
            untrusted.read()  # a certificate nobody vouches for is refused
    finally:
        tls.stop()


def test_a_forked_child_follows_on_its_own(store_url, stores):
    """A pre-fork server (gunicorn --preload) forks after the store started following:
    the child gets its own follower thread and connections."""
    import warnings

    follower = stores(store_url)
    follower.watch(lambda doc: None)
    wait_for(lambda: follower.connected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        code = 1
        try:
            with RedisFlagStore(store_url) as writer:
                writer.update(add("from_child"))
            wait_for(lambda: follower.version == 1, timeout=10)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    wait_for(lambda: follower.version == 1)  # the parent follows too


def test_unix_socket(redis_binary, tmp_path, stores):
    sock = tmp_path / "redis.sock"
    server = RedisServer(str(tmp_path / "r"), args=("--unixsocket", str(sock))).start()
    try:
        store = stores(f"unix://{sock}?db=2&namespace=local&cache=off")
        store.update(add("a"))
        assert store.read().version == 1 and store.url.startswith("unix://")
        import redis

        in_db_2 = redis.Redis(unix_socket_path=str(sock), db=2)
        assert in_db_2.hget("{local}:flags", "version") == b"1"
        in_db_2.close()
    finally:
        server.stop()


def test_a_listener_failing_unexpectedly_is_retried_not_marked_applied(
    redis_server, store_url, stores
):
    # A listener that fails with something other than ConfigError (a bug, MemoryError)
    # did not apply the document: the follower must not record the version as seen (the
    # process would serve the old flags while its version and health claimed the new
    # ones, and never retry); it retries at the next poll and reports it meanwhile.
    from cfgcore.observability.health import _store_check

    writer = stores(store_url)
    follower = stores(store_url + "&poll=0.05")
    writer.update(add("a"))
    follower.read()
    applied: list[int] = []
    failed: list[int] = []
    mended = threading.Event()  # the listener fails until this is set

    def install(doc):
        if not mended.is_set():
            failed.append(doc.version)
            raise MemoryError("compile ran out of memory")
        applied.append(doc.version)

    follower.watch(install)
    wait_for(lambda: follower.connected)
    writer.update(add("b"))
    wait_for(lambda: follower.stats["failed"] >= 2)  # retried at the next poll
    assert follower.version == 1 and follower.failing_version == 2
    assert "version 2 not applied" in (follower.last_error or "")
    check = _store_check("flag_store", follower, 60.0)
    assert check.status == "warn" and "version 2 not applied" in check.detail
    mended.set()
    wait_for(lambda: follower.version == 2)  # the polls retried until it applied
    assert applied == [2] and set(failed) == {2}
    assert follower.stats["failed"] == len(failed)  # each failure counted once
    assert follower.failing_version is None and follower.last_error is None
    assert _store_check("flag_store", follower, 60.0).status == "ok"


def test_an_oversized_stored_document_is_refused_without_reading_it(
    redis_server, store_url, stores, monkeypatch
):
    # A follower must not download and decode whatever was stored (up to Redis's
    # 512 MB): past the flag file's limit the document is refused by its size, the
    # last good flags keep serving, and writers refuse to store one that large.
    from cfgcore.runtime import redis_store

    writer = stores(store_url)
    follower = stores(store_url + "&poll=0.05")
    writer.update(add("a"))
    follower.read()
    errors: list[Exception] = []
    follower.watch(lambda doc: None, on_error=errors.append)
    wait_for(lambda: follower.connected)
    monkeypatch.setattr(redis_store, "MAX_DOCUMENT_BYTES", 4096)
    big = msgspec.msgpack.encode({"flags": {"x": {"default": "on", "description": "y" * 5000}}})
    redis_server.client().hset(
        "{t}:flags",
        mapping={"version": 2, "data": big, "checksum": hashlib.sha256(big).hexdigest()},
    )
    wait_for(lambda: len(errors) == 1)
    assert f"{len(big):,} bytes, over the 4,096-byte limit" in str(errors[0])
    assert follower.version == 1 and follower.stats["rejected"] == 1
    with pytest.raises(ConfigError, match="over the 4,096-byte limit"):
        stores(store_url).read()
    with pytest.raises(ConfigError, match="would be .* bytes, over the 4,096-byte limit"):
        writer.update(add("b" * 5000), force=True)
    # a document within the limit is read as before
    monkeypatch.setattr(redis_store, "MAX_DOCUMENT_BYTES", 1 << 20)
    assert stores(store_url).read().version == 2


class _CountsSeen(dict):
    """A follower's ``stats`` that note, as each of ``names`` is counted, what the
    store's ``last_error`` said at that moment."""

    def __init__(self, store, names):
        super().__init__(store.stats)
        self.store, self.names, self.said = store, names, []

    def __setitem__(self, key, value):
        if key in self.names:
            self.said.append((key, self.store.last_error))
        super().__setitem__(key, value)


def test_a_problem_is_said_before_it_is_counted(redis_server, store_url, stores):
    # A reader of a follower's stats (a test, a monitor) that sees a refusal, a failed
    # listener, a store gone backwards or a lost connection counted finds last_error
    # saying it: the count came first, and for a moment last_error did not say it.
    writer, follower = stores(store_url), stores(store_url + "&poll=0.05&backoff_max=0.05")
    writer.update(add("a"))
    follower.read()
    failures = [MemoryError("compile ran out of memory")]

    def install(doc):
        if "x" in doc.snapshot.flags:
            Engine().compile(doc.snapshot, file=doc.origin)  # refused: ConfigError
        if failures:
            raise failures.pop()

    counted = ("rejected", "failed", "backwards", "reconnects")
    seen = follower.stats = _CountsSeen(follower, counted)
    follower.watch(install)
    wait_for(lambda: follower.connected)
    writer.update(add("b"))  # fails once (counted "failed"), then applies
    wait_for(lambda: follower.version == 2)
    r = redis_server.client()
    r.hset("{t}:flags", mapping={"version": 3, "data": b"\x00not msgpack"})  # "rejected"
    wait_for(lambda: follower.stats["rejected"] == 1)
    bad = msgspec.msgpack.encode({"flags": {"x": {"default": "nope"}}})
    r.hset(
        "{t}:flags",
        mapping={"version": 4, "data": bad, "checksum": hashlib.sha256(bad).hexdigest()},
    )
    wait_for(lambda: follower.stats["rejected"] == 2)  # refused by the listener
    r.hset("{t}:flags", "version", 1)  # "backwards": older than the 2 served
    wait_for(lambda: follower.stats["backwards"] == 1)
    r.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # "reconnects"
    wait_for(lambda: follower.stats["reconnects"] >= 1)
    said: dict[str, list[str]] = {}
    for key, error in seen.said:
        said.setdefault(key, []).append(str(error))
    assert sorted(said) == ["backwards", "failed", "reconnects", "rejected"]
    assert "version 2 not applied" in said["failed"][0]
    assert "checksum mismatch in version 3" in said["rejected"][0]
    assert "flags.x" in said["rejected"][1]
    assert "older than the 2 served" in said["backwards"][0]
    assert "connection lost" in said["reconnects"][0]
