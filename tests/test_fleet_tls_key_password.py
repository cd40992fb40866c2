"""The password of an encrypted TLS client key read from a file (``ssl_password_file=``)
at each new connection, so a client key rotated with a new password is taken without a
restart. A real redis-server with TLS that requires client certificates (and a real
redis-sentinel in front of one), a CA and certificates made with ``cryptography``, the
client key encrypted with the password the file holds. Also: TLS options on a URL
without TLS are refused, and a key or certificate that cannot be loaded (wrong password,
missing file, no match) is named in the store's error, as an outage."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import secrets
import ssl
import time
import types
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import atomic_write_text
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.redis_url import parse_redis_url
from cfgcore.snapshot import Flag
from tests.fuzz import examples
from tests.redis_server import RedisServer, Sentinel, free_port
from tests.waiting import wait_for

x509 = pytest.importorskip("cryptography.x509", reason="cryptography is not installed")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402


def _set(flag: str, value: str):
    def change(snap):
        return msgspec.structs.replace(snap, flags={**snap.flags, flag: Flag(default=value)})

    return change


def _password() -> str:
    # (distinct enough that finding it in a message is no coincidence)
    return f"keypw-{secrets.token_hex(12)}"


def _write(path: Path, data: bytes) -> None:
    """Replaced by a rename, as a secret mount or a deployment swaps files."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class PKI:
    """A CA, a server certificate for 127.0.0.1 and client identities signed by it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._ca_key = ec.generate_private_key(ec.SECP256R1())
        self._ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cfgcore test CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        ca = (
            x509.CertificateBuilder()
            .subject_name(self._ca_name)
            .issuer_name(self._ca_name)
            .public_key(self._ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._ca_key, hashes.SHA256())
        )
        self.ca = directory / "ca.pem"
        self.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.server_cert, self.server_key = directory / "server.pem", directory / "server.key"
        self.identity(self.server_cert, self.server_key, None, server=True)
        self.client_cert, self.client_key = directory / "client.pem", directory / "client.key"

    def identity(self, cert: Path, key: Path, password: str | None, *, server: bool = False):
        """A new key pair and its certificate; the key encrypted with ``password``."""
        private = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        name = "127.0.0.1" if server else f"client-{secrets.token_hex(4)}"
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._ca_name)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        encryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password is not None
            else serialization.NoEncryption()
        )
        _write(key, private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        ))  # fmt: skip
        _write(cert, builder.sign(self._ca_key, hashes.SHA256()).public_bytes(
            serialization.Encoding.PEM
        ))  # fmt: skip

    def server_args(self, tls_port: int) -> tuple[str, ...]:
        return ("--tls-port", str(tls_port), *self.tls_args())

    def tls_args(self) -> tuple[str, ...]:
        """A redis-server's TLS files (its certificate is also the one it presents as
        a replica), client certificates required, replication over TLS."""
        return (
            "--tls-cert-file", str(self.server_cert), "--tls-key-file", str(self.server_key),
            "--tls-ca-cert-file", str(self.ca), "--tls-auth-clients", "yes",
            "--tls-replication", "yes",
        )  # fmt: skip

    def sentinel_conf(self) -> str:
        """sentinel.conf lines: TLS to the servers and Sentinels it watches and talks to
        (with the server certificate as its client certificate), and from its clients."""
        return (
            f"tls-replication yes\ntls-cert-file {self.server_cert}\n"
            f"tls-key-file {self.server_key}\ntls-ca-cert-file {self.ca}\ntls-auth-clients yes\n"
        )

    def admin(self) -> dict[str, str]:
        """redis-py TLS options of the tests' own clients of the servers and Sentinels
        (the server certificate, signed by this CA, as the client certificate)."""
        return {"ssl_ca_certs": str(self.ca), "ssl_certfile": str(self.server_cert),
                "ssl_keyfile": str(self.server_key)}  # fmt: skip

    def query(self, password_file: Path) -> str:
        return (
            f"ssl_ca_certs={self.ca}&ssl_certfile={self.client_cert}"
            f"&ssl_keyfile={self.client_key}&ssl_password_file={password_file}"
        )


@pytest.fixture
def tls(redis_binary, tmp_path):
    """A redis-server whose TLS port requires a client certificate signed by the test
    CA; the client key encrypted with the password in ``key-password`` (one trailing
    newline, as ``echo`` writes it)."""
    pki = PKI(tmp_path / "pki")
    password = _password()
    pki.identity(pki.client_cert, pki.client_key, password)
    pw_file = tmp_path / "secrets" / "key-password"
    pw_file.parent.mkdir()
    pw_file.write_text(password + "\n")
    tls_port = free_port()
    server = RedisServer(str(tmp_path / "redis"), args=pki.server_args(tls_port)).start()
    try:
        yield types.SimpleNamespace(
            server=server, port=tls_port, pki=pki, pw_file=pw_file, password=password,
            admin=server.client(),  # (on the plain port: CLIENT KILL skips its own)
        )  # fmt: skip
    finally:
        server.stop()


def _url(tls, pw_file: Path, namespace: str = "k") -> str:
    return (
        f"rediss://127.0.0.1:{tls.port}/0?namespace={namespace}&cache=off&poll=0.1"
        f"&backoff_max=0.2&{tls.pki.query(pw_file)}"
    )


def _cut(admin) -> None:
    """Every client must connect again (and load its key again)."""
    admin.execute_command("CLIENT", "KILL", "TYPE", "normal")
    admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")


def _texts(store) -> list[str]:
    return [store.url, str(store.last_error), repr(store), repr(store._client),
            repr(store._parsed), store._parsed.for_command()]  # fmt: skip


def test_an_encrypted_client_key_is_unlocked_by_the_password_file(tls):
    """The server requires a client certificate: the store connects only with the
    encrypted key unlocked, the password read from the file; a file holding another
    password is refused, and neither password is in any message or repr."""
    url = _url(tls, tls.pw_file)
    with contextlib.closing(RedisFlagStore(url)) as store:
        _, doc = store.update(_set("a", "on"))
        assert doc.version == 1 and store.read().version == 1
        seen = _texts(store)
    assert f"ssl_password_file={tls.pw_file}" in seen[-1]  # (a path, not a secret)

    wrong_file = tls.pw_file.with_name("wrong")
    wrong = _password()
    wrong_file.write_text(wrong + "\n")
    with contextlib.closing(RedisFlagStore(_url(tls, wrong_file))) as store:
        with pytest.raises(ConfigError, match="cannot load the TLS client key") as err:
            store.read()
        seen += [str(err.value), *_texts(store)]
    for text in seen:
        assert tls.password not in text and wrong not in text, text


def test_a_rotated_client_key_and_password_are_taken_without_a_restart(tls):
    """A follower serving; the client key is replaced by a new one encrypted with a new
    password, and the server cuts every client. Until the password file holds the new
    password the follower cannot connect (the old password does not open the new
    key) and serves its document; once it does, the follower connects again with the
    new key, in the same process, and takes a newer document."""
    url = _url(tls, tls.pw_file)
    store = RedisFlagStore(url)
    writer = RedisFlagStore(url)
    try:
        writer.update(_set("a", "on"))
        served: list = []
        store.read()
        store.watch(served.append)
        assert wait_for(lambda: store.connected)

        rotated = _password()
        tls.pki.identity(tls.pki.client_cert, tls.pki.client_key, rotated)
        _cut(tls.admin)
        assert wait_for(lambda: store.last_error is not None and not store.connected)
        assert store.version == 1
        atomic_write_text(str(tls.pw_file), rotated + "\n")
        assert wait_for(lambda: store.connected)
        # The writer's connections were cut too: it reconnects with the new key.
        writer.update(_set("a", "off"))
        assert wait_for(lambda: store.version == 2)
        assert served[-1].version == 2
        for text in _texts(store) + _texts(writer):
            assert tls.password not in text and rotated not in text, text
    finally:
        writer.close()
        store.close()


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_a_key_password_file_that_gives_no_password_is_an_outage_naming_it(tls, kind):
    """At start without a cache file: the read fails naming the file and why. While
    following: the store says so, is not connected and serves its document; once the
    file is good again it follows."""
    missing = tls.pw_file.with_name("not-there")
    with contextlib.closing(RedisFlagStore(_url(tls, missing))) as store:
        with pytest.raises(ConfigError) as err:
            store.read()
    msg = str(err.value)
    assert "no credentials for Redis" in msg
    assert (
        f"cannot read the Redis TLS key password file {missing}: No such file or directory" in msg
    )

    url = _url(tls, tls.pw_file)
    store = RedisFlagStore(url)
    writer = RedisFlagStore(url)
    try:
        writer.update(_set("a", "on"))
        store.read()
        store.watch(lambda doc: None)
        assert wait_for(lambda: store.connected)
        if kind == "missing":
            tls.pw_file.unlink()
            expected = f"cannot read the Redis TLS key password file {tls.pw_file}"
        else:
            tls.pw_file.write_text("")
            expected = f"the Redis TLS key password file {tls.pw_file} is empty"
        _cut(tls.admin)
        assert wait_for(lambda: "no credentials for Redis" in str(store.last_error))
        assert expected in str(store.last_error)
        assert not store.connected and store.version == 1
        atomic_write_text(str(tls.pw_file), tls.password)  # (no trailing newline: as good)
        assert wait_for(lambda: store.connected)
        writer.update(_set("a", "off"))
        assert wait_for(lambda: store.version == 2)
    finally:
        writer.close()
        store.close()


def test_a_key_password_longer_than_openssl_takes_is_named(tmp_path):
    """OpenSSL takes a key password of up to 1024 bytes: a longer one is refused naming
    the file (a ValueError from deep in the ssl module, before)."""
    from cfgcore.runtime.redis_credentials import CredentialsUnavailable, KeyPasswordFile

    path = tmp_path / "long"
    secret = "x" * 1025
    path.write_text(secret + "\n")
    with pytest.raises(CredentialsUnavailable) as err:
        KeyPasswordFile(str(path))()
    assert str(path) in str(err.value) and "1024 bytes" in str(err.value)
    assert secret not in str(err.value)
    path.write_text("é" * 512)  # 1024 bytes in UTF-8: taken
    assert KeyPasswordFile(str(path))() == "é" * 512


@given(password=st.text(
    min_size=1, max_size=200, alphabet=st.characters(exclude_characters="\0\r\n\ufeff",
                                                     exclude_categories=("Cs",)),
))  # fmt: skip
@settings(max_examples=examples(15), deadline=None)
def test_the_file_unlocks_a_key_encrypted_with_any_text(tmp_path_factory, password):
    """Whatever the password's text (spaces, ':', '@', '%', other scripts), the key
    encrypted with its UTF-8 bytes is loaded with it, as the TLS layer loads it."""
    from cfgcore.runtime.redis_credentials import KeyPasswordFile

    directory = tmp_path_factory.mktemp("key")
    pki = PKI(directory)
    pki.identity(pki.client_cert, pki.client_key, password)
    pw_file = directory / "pw"
    pw_file.write_bytes((password + "\n").encode())
    context = ssl.create_default_context()
    context.load_cert_chain(pki.client_cert, pki.client_key, password=KeyPasswordFile(str(pw_file)))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "rediss://h/0?ssl_password=secretpw&ssl_password_file=/run/keypw",
            "both ssl_password= and ssl_password_file=",
        ),
        (
            "redis+sentinel://h:26379/svc?ssl=true&ssl_password_file=/run/keypw"
            "&ssl_password=secretpw",
            "both ssl_password= and ssl_password_file=",
        ),
        ("rediss://h/0?ssl_password_file=", "ssl_password_file: expected the path of a file"),
    ],
)
def test_two_key_password_sources_are_refused(url, expected):
    with pytest.raises(ConfigError) as err:
        parse_redis_url(url)
    assert expected in str(err.value)
    assert "secretpw" not in str(err.value)


def test_the_key_password_file_path_is_absolute_and_shown_but_no_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parsed = parse_redis_url(
        "rediss://app:secretpw@h/0?ssl_certfile=/tls/c.pem&ssl_password_file=keypw.txt"
    )
    assert parsed.options["ssl_password_file"] == str(tmp_path / "keypw.txt")
    assert f"ssl_password_file={tmp_path / 'keypw.txt'}" in parsed.for_command()
    for text in (repr(parsed), parsed.redacted(), parsed.for_command()):
        assert "secretpw" not in text


def test_a_sentinel_primary_with_an_encrypted_client_key(redis_binary, tmp_path):
    """``redis+sentinel://...?ssl=true&ssl_password_file=``: the primary Sentinel
    names is reached over TLS with the client key unlocked by the file, read at each
    new connection to it; a missing file is named as the reason."""
    pki = PKI(tmp_path / "pki")
    password = _password()
    pki.identity(pki.client_cert, pki.client_key, password)
    pw_file = tmp_path / "key-password"
    pw_file.write_text(password + "\n")
    tls_port = free_port()
    primary = RedisServer(str(tmp_path / "p"), args=pki.server_args(tls_port)).start()
    # Sentinel watches the primary on its TLS port (and so names that port), with the
    # server's identity as its own client certificate.
    sentinel = Sentinel(
        str(tmp_path / "s"), types.SimpleNamespace(port=tls_port), replicas=0,
        conf=f"tls-replication yes\ntls-cert-file {pki.server_cert}\n"
        f"tls-key-file {pki.server_key}\ntls-ca-cert-file {pki.ca}\n",
    )  # fmt: skip
    try:
        sentinel.start()
        assert sentinel.primary_port() == tls_port
        url = (
            f"redis+sentinel://127.0.0.1:{sentinel.port}/{sentinel.name}/0?namespace=s"
            f"&cache=off&ssl=true&{pki.query(pw_file)}"
        )
        store = RedisFlagStore(url)
        try:
            _, doc = store.update(_set("a", "on"))
            assert doc.version == 1
            pw_file.unlink()
            store._client.connection_pool.disconnect()
            with pytest.raises(ConfigError) as err:
                store.read()
            msg = str(err.value)
            assert "no credentials for Redis" in msg
            assert f"Redis TLS key password file {pw_file}" in msg
            rotated = _password()
            pki.identity(pki.client_cert, pki.client_key, rotated)
            atomic_write_text(str(pw_file), rotated + "\n")
            assert store.read().version == 1  # the new key and password, no restart
            for text in [msg, *_texts(store)]:
                assert password not in text and rotated not in text, text
        finally:
            store.close()
    finally:
        sentinel.stop()
        primary.stop()


# -- TLS options on a URL without TLS -------------------------------------------------

_TLS_QUERY = "ssl_ca_certs=/run/tls/ca.pem&ssl_certfile=/run/tls/c.pem&ssl_keyfile=/run/tls/c.key"


@pytest.mark.parametrize(
    ("url", "named"),
    [
        (f"redis://h:6379/0?{_TLS_QUERY}", "ssl_ca_certs=, ssl_certfile=, ssl_keyfile="),
        ("redis://h:6379/0?ssl_cert_reqs=required", "ssl_cert_reqs="),
        ("redis://h:6379/0?ssl_check_hostname=true", "ssl_check_hostname="),
        ("redis://h:6379/0?ssl_password=secretpw", "ssl_password="),
        ("redis://h:6379/0?ssl=false&ssl_password_file=/run/keypw", "ssl_password_file="),
        (f"redis+sentinel://s1:26379/svc/0?{_TLS_QUERY}", "ssl_ca_certs=, ssl_certfile="),
        (f"unix:///run/redis.sock?db=1&{_TLS_QUERY}", "ssl_ca_certs=, ssl_certfile="),
        ("unix:///run/redis.sock?ssl_password=secretpw", "ssl_password="),
    ],
)
def test_tls_options_on_a_url_without_tls_are_refused(url, named):
    """Ignored, they let a deployment believe it talks TLS with a client certificate
    while everything goes in clear text: refused, naming them and what to use."""
    with pytest.raises(ConfigError) as err:
        parse_redis_url(url)
    msg = str(err.value)
    assert named in msg and "without TLS" in msg
    assert "rediss://" in msg
    if url.startswith("redis+sentinel"):
        assert "ssl=true" in msg
    assert "secretpw" not in msg
    if url.startswith("unix"):
        assert msg.startswith("unix:") and "/run/redis.sock" in msg  # (the URL given)


def test_a_unix_socket_with_ssl_true_is_refused():
    """redis-py connects to a socket in clear text whatever ``ssl`` says."""
    with pytest.raises(ConfigError, match="unix:// socket has no TLS"):
        parse_redis_url("unix:///run/redis.sock?ssl=true")
    assert parse_redis_url("unix:///run/redis.sock?ssl=false").socket_path == "/run/redis.sock"


@pytest.mark.parametrize(
    "url",
    [
        f"rediss://h:6380/0?{_TLS_QUERY}&ssl_password_file=/run/keypw&ssl_cert_reqs=required",
        f"redis://h:6380/0?ssl=true&{_TLS_QUERY}&ssl_check_hostname=false",
        f"redis+sentinel://s1:26379/svc/0?ssl=true&{_TLS_QUERY}&ssl_password=pw",
        "rediss://h:6380/0?ssl_certfile=/run/tls/client-with-key.pem",  # (a PEM with both)
    ],
)
def test_tls_options_with_tls_are_taken(url):
    assert parse_redis_url(url).options["ssl_certfile"].startswith("/run/tls/")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ssl_keyfile=/run/tls/c.key", "ssl_keyfile= without ssl_certfile="),
        ("ssl_ca_certs=/ca&ssl_password=secretpw", "ssl_password= without ssl_certfile="),
        ("ssl_password_file=/run/keypw", "ssl_password_file= without ssl_certfile="),
    ],
)
def test_a_client_key_or_its_password_without_a_certificate_is_refused(query, expected):
    """redis-py loads no key without a certificate (a TypeError at each connection for
    a key alone; a password alone is ignored)."""
    with pytest.raises(ConfigError) as err:
        parse_redis_url(f"rediss://h:6380/0?{query}")
    assert expected in str(err.value) and "secretpw" not in str(err.value)


def test_every_way_to_name_a_store_refuses_tls_options_without_tls(capsys):
    """Flag stores (open_store, what the CLI's --store opens), published configurations
    (config_source=) and the CLI all parse store URLs with the one parser."""
    from cfgcore import ConfigurationManager
    from cfgcore.cli import main
    from cfgcore.runtime.flagstore import open_store
    from cfgcore.runtime.redis_store import RedisConfigStore

    url = f"redis://127.0.0.1:1/0?cache=off&{_TLS_QUERY}"
    for open_it in (
        lambda: open_store(url),
        lambda: RedisConfigStore(url, "production"),
        lambda: ConfigurationManager(config_source=url, environment="development", environ={}),
    ):
        with pytest.raises(ConfigError, match="without TLS"):
            open_it()
    assert main(["retire", "--store", url]) != 0
    assert "without TLS" in capsys.readouterr().err


# -- a client key or certificate that cannot be loaded ---------------------------------


def _outage_while_following(tls, url: str, break_it, fix_it, expected: str) -> None:
    """A follower serving version 1; ``break_it`` and every client cut: the store says
    ``expected``, is not connected, still serves version 1; ``fix_it``: it follows
    again, in the same process."""
    store = RedisFlagStore(url)
    writer = RedisFlagStore(_url(tls, tls.pw_file, namespace=parse_redis_url(url).namespace))
    try:
        writer.update(_set("a", "on"))
        store.read()
        store.watch(lambda doc: None)
        assert wait_for(lambda: store.connected)
        break_it()
        _cut(tls.admin)
        assert wait_for(lambda: expected in str(store.last_error)), store.last_error
        assert not store.connected and store.version == 1
        fix_it()
        assert wait_for(lambda: store.connected)
        writer.update(_set("a", "off"))
        assert wait_for(lambda: store.version == 2)
        for text in _texts(store):
            assert tls.password not in text, text
    finally:
        writer.close()
        store.close()


def test_a_wrong_key_password_from_the_file_is_named(tls):
    """The key does not open with the file's password: the store says which key and
    which file, not only OpenSSL's "PEM lib"; an outage, over once the file is right."""
    wrong_file = tls.pw_file.with_name("wrong")
    wrong = _password()
    wrong_file.write_text(wrong + "\n")
    expected = (
        f"cannot load the TLS client key {tls.pki.client_key} "
        f"(wrong password from ssl_password_file {wrong_file}?)"
    )
    with contextlib.closing(RedisFlagStore(_url(tls, wrong_file))) as store:
        with pytest.raises(ConfigError) as err:
            store.read()
        assert expected in str(err.value)
        assert expected in str(store.last_error) or store.last_error is None
    assert wrong not in str(err.value) and tls.password not in str(err.value)

    _outage_while_following(
        tls,
        _url(tls, tls.pw_file),
        lambda: atomic_write_text(str(tls.pw_file), wrong + "\n"),
        lambda: atomic_write_text(str(tls.pw_file), tls.password + "\n"),
        f"cannot load the TLS client key {tls.pki.client_key} "
        f"(wrong password from ssl_password_file {tls.pw_file}?)",
    )


def test_a_wrong_key_password_in_the_url_is_named_without_it(tls):
    wrong = _password()
    url = _url(tls, tls.pw_file).replace(
        f"ssl_password_file={tls.pw_file}", f"ssl_password={wrong}"
    )
    with contextlib.closing(RedisFlagStore(url)) as store:
        with pytest.raises(ConfigError) as err:
            store.read()
    msg = str(err.value)
    assert f"cannot load the TLS client key {tls.pki.client_key} (wrong ssl_password=?)" in msg
    assert wrong not in msg


def test_an_encrypted_key_without_a_password_is_named(tls):
    url = _url(tls, tls.pw_file).replace(f"&ssl_password_file={tls.pw_file}", "")
    with contextlib.closing(RedisFlagStore(url)) as store:
        with pytest.raises(ConfigError) as err:
            store.read()
    assert (
        f"the TLS client key {tls.pki.client_key} is encrypted and no password is given "
        "(ssl_password_file=)"
    ) in str(err.value)


@pytest.mark.parametrize("which", ["key", "cert", "ca"])
def test_a_missing_tls_file_is_named_and_an_outage(tls, which):
    """A key, certificate or CA file that is not there (a secret mount not yet
    populated): the store names the file and the option, serves its document, and
    follows again once the file is back."""
    path, option, what = {
        "key": (tls.pki.client_key, "ssl_keyfile", "TLS client key"),
        "cert": (tls.pki.client_cert, "ssl_certfile", "TLS client certificate"),
        "ca": (tls.pki.ca, "ssl_ca_certs", "TLS CA certificates"),
    }[which]
    kept = path.read_bytes()
    _outage_while_following(
        tls,
        _url(tls, tls.pw_file),
        path.unlink,
        lambda: _write(path, kept),
        f"cannot read the {what} {path} ({option}=): No such file or directory",
    )


def test_a_certificate_that_does_not_match_the_key_is_named(tls):
    other_cert = tls.pki.dir / "other.pem"
    tls.pki.identity(other_cert, tls.pki.dir / "other.key", None)
    url = _url(tls, tls.pw_file).replace(f"ssl_certfile={tls.pki.client_cert}",
                                         f"ssl_certfile={other_cert}")  # fmt: skip
    with contextlib.closing(RedisFlagStore(url)) as store:
        with pytest.raises(ConfigError) as err:
            store.read()
    assert (
        f"the TLS client certificate {other_cert} does not match the key {tls.pki.client_key}"
    ) in str(err.value)


def test_a_certificate_file_without_the_key_is_named(tls):
    """``ssl_certfile=`` alone: the file must hold the key too."""
    url = _url(tls, tls.pw_file).replace(
        f"&ssl_keyfile={tls.pki.client_key}&ssl_password_file={tls.pw_file}", ""
    )
    with contextlib.closing(RedisFlagStore(url)) as store:
        with pytest.raises(ConfigError) as err:
            store.read()
    assert (
        f"cannot load the TLS client certificate {tls.pki.client_cert}: without ssl_keyfile= "
        "it must hold the key too"
    ) in str(err.value)


_PROMPT_CHILD = """
import os, sys
os.setsid()
os.open(sys.argv[1], os.O_RDWR)  # (a session leader opening a terminal: its own now)
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore
store = RedisFlagStore(sys.argv[2])
try:
    store.read()
except ConfigError as exc:
    print("REFUSED", "is encrypted and no password is given" in str(exc), flush=True)
finally:
    store.close()
"""


def test_an_encrypted_key_without_a_password_never_asks_on_the_terminal(tls):
    """OpenSSL asks for a key's pass phrase on the process's terminal when no password
    is given: a service started from a shell (or the command line) would wait at each
    new connection for someone to type it. A key without a password is told so at
    once instead, whatever terminal the process has."""
    import select
    import subprocess
    import sys

    url = _url(tls, tls.pw_file).replace(f"&ssl_password_file={tls.pw_file}", "")
    master, slave = os.openpty()
    child = subprocess.Popen(
        [sys.executable, "-c", _PROMPT_CHILD, os.ttyname(slave), url],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(slave)
    terminal = b""
    try:
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    terminal += os.read(master, 4096)
                except OSError:  # (EIO: no process has the terminal open, yet or now)
                    time.sleep(0.05)
            if b"pass phrase" in terminal.lower():
                break  # (asking: it would wait there for ever)
    finally:
        if child.poll() is None:
            child.kill()
        out = child.communicate(timeout=30)[0].decode()
        os.close(master)
    assert b"pass phrase" not in terminal.lower(), terminal
    assert out.strip() == "REFUSED True", (out, terminal)
