"""Redis credentials read again at every new connection, so a password rotated on the
server is picked up without a restart.

Two sources, both handed to redis-py as its ``credential_provider`` (redis-py asks it
for ``(password,)`` or ``(username, password)`` in each connection's handshake, never
per command):

- a password file named in the store URL: ``password_file=PATH`` for Redis itself,
  ``sentinel_password_file=PATH`` for the Sentinels of a ``redis+sentinel://`` URL. The
  file is read at each new connection, its text (UTF-8) without one trailing newline
  (``\\n`` or ``\\r\\n``). The user name stays in the URL (``redis://app@host/0?...``,
  ``sentinel_username=``): a rotation changes the password, not the user.
  ``ssl_password_file=PATH`` holds the password of an encrypted TLS client key
  (``ssl_keyfile=``): :class:`KeyPasswordFile`, handed to redis-py as ``ssl_password``,
  read when the TLS layer loads the key for a new connection (it loads the key file
  again then too, so a key rotated with a new password is taken as both change).
- an object given to the store (``RedisFlagStore(url, credential_provider=...)``): a
  redis-py ``CredentialProvider`` (``get_credentials()``) or a plain callable returning
  ``(password,)`` or ``(username, password)``.

A TLS client key or certificate that cannot be loaded (a wrong key password, a file
missing or holding no PEM) fails deep in OpenSSL (``[SSL] PEM lib``, ``Error 2``, with
no file named): :func:`tls_files_problem` loads the URL's TLS files again, as the
connection did, to say in the store's message which file is at fault and why.

Whatever cannot give credentials (a file missing, unreadable or empty, a provider that
raised or returned something else) raises :class:`CredentialsUnavailable` at that
connection: a ``redis.ConnectionError``, so the store treats it as an outage (the last
good document keeps serving, the follower retries with backoff, ``last_error`` and
health say why), and its message names the file or the provider, never what it holds.
A password is never kept here: it is read, handed to redis-py's handshake, and dropped.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import redis
from redis.credentials import CredentialProvider

from cfgcore._encoding import decode_text
from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import read_regular
from cfgcore.runtime.redis_url import MAX_KEY_PASSWORD_BYTES

__all__ = [
    "CredentialsUnavailable",
    "FileCredentials",
    "GivenCredentials",
    "KeyPasswordFile",
    "tls_files_problem",
]

# A password file holds a password: a megabyte is far above any, and a path given by
# mistake (a log, a disk image) is refused without being read whole.
MAX_PASSWORD_FILE_BYTES = 1 << 20
# (MAX_KEY_PASSWORD_BYTES: the longest key password OpenSSL asks for; the ssl module
# raises a ValueError past it, which is no connection error)


class CredentialsUnavailable(redis.ConnectionError):
    """No credentials for a new connection: the message names the password file or
    the credential provider and why, never the password."""


def read_password_file(path: str, what: str = "password file") -> str:
    """The password in ``path``: its UTF-8 text without one trailing newline.

    Raises :class:`CredentialsUnavailable` naming the file (and ``what`` it is) for a
    file that is missing, unreadable, not a regular file, over 1 MiB, not UTF-8 or empty.
    """
    try:
        raw = read_regular(path, MAX_PASSWORD_FILE_BYTES)
    except OSError as exc:
        raise CredentialsUnavailable(
            f"cannot read the Redis {what} {path}: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        # (no position nor byte: they would tell part of the password)
        text = decode_text(raw, path, secret=True)
    except ConfigError as exc:
        reason = exc.problems[0].message
        raise CredentialsUnavailable(f"the Redis {what} {path}: {reason}") from None
    if text.endswith("\n"):
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    if not text:
        # An empty file: a writer that truncates before it writes (not an atomic
        # rename), or a secret not filled in. Sent, it would be refused as a wrong
        # password, and the message would not say which file is at fault.
        raise CredentialsUnavailable(f"the Redis {what} {path} is empty")
    return text


class FileCredentials(CredentialProvider):  # type: ignore[misc]
    """``(username, password)`` with the password read from ``path`` at each call
    (redis-py calls it once per new connection)."""

    def __init__(self, path: str, username: str | None = None, what: str = "password file"):
        self.path = path
        self.username = username
        self.what = what

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        password = read_password_file(self.path, self.what)
        return (self.username, password) if self.username else (password,)

    def __repr__(self) -> str:
        return f"FileCredentials({self.path!r}, username={self.username!r})"


class KeyPasswordFile:
    """The password of an encrypted TLS client key, read from ``path`` at each call.

    Given to redis-py as ``ssl_password``, it reaches ``ssl.SSLContext.load_cert_chain``
    as its ``password`` callable: OpenSSL calls it while loading the key for a new
    connection, and only when the key is encrypted. (redis-py shares no TLS context
    whose password is not text, so the key and this file are read for every new
    connection.)"""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self) -> str:
        what = "TLS key password file"
        password = read_password_file(self.path, what)
        if len(password.encode("utf-8")) > MAX_KEY_PASSWORD_BYTES:
            raise CredentialsUnavailable(
                f"the Redis {what} {self.path} holds more than {MAX_KEY_PASSWORD_BYTES} "
                "bytes, the longest key password OpenSSL takes"
            )
        return password

    def __repr__(self) -> str:
        return f"KeyPasswordFile({self.path!r})"


class GivenCredentials(CredentialProvider):  # type: ignore[misc]
    """The application's credential provider, checked at each call: what it raises or
    returns that is no ``(password,)`` / ``(username, password)`` of text becomes
    :class:`CredentialsUnavailable` naming the provider (not what it returned).

    (A redis-py ``StreamingCredentialProvider`` is asked here like any other, at each
    new connection; redis-py's re-authentication of open connections when it streams
    new credentials is not used: Redis keeps authenticated connections anyway.)"""

    def __init__(self, given: Any) -> None:
        get = getattr(given, "get_credentials", None)
        if not callable(get):
            if not callable(given):
                raise TypeError(
                    "credential_provider: expected a redis-py CredentialProvider or a "
                    f"callable returning (password,) or (username, password), got "
                    f"{type(given).__name__}"
                )
            get = given
        self._get: Callable[[], Any] = get
        self.name = _name(given)

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        try:
            got = self._get()
        except Exception as exc:
            # (its type only: a provider's own message may quote what it read)
            raise CredentialsUnavailable(
                f"the credential provider {self.name} failed: {type(exc).__name__}"
            ) from None
        if (
            isinstance(got, (tuple, list))
            and len(got) in (1, 2)
            and all(isinstance(x, str) for x in got)
            and got[-1]
        ):
            # (an empty user name: the default user, as redis-py's own provider does)
            return (got[0], got[1]) if len(got) == 2 and got[0] else (got[-1],)
        raise CredentialsUnavailable(
            f"the credential provider {self.name} returned a {type(got).__name__}, not "
            "(password,) or (username, password) with a non-empty password"
        )

    def __repr__(self) -> str:
        return f"GivenCredentials({self.name})"


def _name(given: Any) -> str:
    name = getattr(given, "__qualname__", None) or type(given).__qualname__
    module = getattr(given, "__module__", None) or type(given).__module__
    return f"{module}.{name}" if module else str(name)


# A PEM certificate or key is a few kilobytes; a CA bundle some hundreds.
_MAX_TLS_FILE_BYTES = 16 << 20


def tls_files_problem(options: Mapping[str, Any], exc: BaseException) -> str | None:
    """What is wrong with the TLS files of a store URL's ``options`` (``ssl_ca_certs=``,
    ``ssl_certfile=``, ``ssl_keyfile=`` and the key's password), in cfgcore's terms and
    naming the files (never a password), when the connection failure ``exc`` may come
    from loading them; None when they load (the failure was another, or a file was
    fixed since) or ``exc`` is a network error. Never raises: it words an error."""
    if not _maybe_loading(exc):
        return None
    try:
        return _tls_files_problem(options)
    except Exception:  # (a message helper: the connection's own error stands)
        return None


def _maybe_loading(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is an error loading a file, not one
    of the network (refused, reset, timed out, no such host)."""
    found: BaseException | None = exc
    for _ in range(8):  # (a bounded walk: a chain can be made circular)
        if found is None:
            return False
        if isinstance(found, OSError) and not isinstance(
            found, (ConnectionError, TimeoutError, socket.gaierror, ssl.SSLCertVerificationError)
        ):
            return True
        found = found.__cause__ or (None if found.__suppress_context__ else found.__context__)
    return False


def _tls_files_problem(options: Mapping[str, Any]) -> str | None:
    ca, cert, key = (options.get(k) for k in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"))
    texts: dict[str, bytes] = {}
    for path, what, option in (
        (ca, "TLS CA certificates", "ssl_ca_certs"),
        (cert, "TLS client certificate", "ssl_certfile"),
        (key, "TLS client key", "ssl_keyfile"),
    ):
        if path is None:
            continue
        try:
            texts[option] = read_regular(path, _MAX_TLS_FILE_BYTES)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            return f"cannot read the {what} {path} ({option}=): {reason}"
    # (no system certificates: only the files named are loaded)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca is not None:
        try:
            context.load_verify_locations(cafile=ca)
        except ssl.SSLError:
            return f"the TLS CA certificates {ca} (ssl_ca_certs=) hold no PEM certificate"
    if cert is None:
        return None
    asked = False

    def password() -> str:
        nonlocal asked
        asked = True
        if "ssl_password_file" in options:
            return KeyPasswordFile(options["ssl_password_file"])()
        # ("": OpenSSL would otherwise ask on the terminal)
        return str(options.get("ssl_password") or "")

    try:
        context.load_cert_chain(cert, key, password=password)
    except ssl.SSLError as exc:
        key_text = texts.get("ssl_keyfile", texts["ssl_certfile"])
        if b"-----BEGIN CERTIFICATE-----" not in texts["ssl_certfile"]:
            return f"the TLS client certificate {cert} (ssl_certfile=) holds no PEM certificate"
        if b"PRIVATE KEY-----" not in key_text:
            if key is None:
                return (
                    f"cannot load the TLS client certificate {cert}: without ssl_keyfile= "
                    "it must hold the key too"
                )
            return f"the TLS client key {key} (ssl_keyfile=) holds no PEM private key"
        if exc.reason == "KEY_VALUES_MISMATCH":
            return f"the TLS client certificate {cert} does not match the key {key or cert}"
        if asked:
            if "ssl_password_file" in options:
                hint = f"wrong password from ssl_password_file {options['ssl_password_file']}?"
            elif options.get("ssl_password"):
                hint = "wrong ssl_password=?"
            else:
                return (
                    f"the TLS client key {key or cert} is encrypted and no password is "
                    "given (ssl_password_file=)"
                )
            return f"cannot load the TLS client key {key or cert} ({hint})"
        return f"cannot load the TLS client certificate {cert} and key {key or cert}"
    except (OSError, CredentialsUnavailable):
        return None  # (changed since it was read above; or no password: said as such)
    return None
