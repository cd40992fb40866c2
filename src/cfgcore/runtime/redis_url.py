"""Flag-store URLs for Redis: ``redis://[user:password@]host:port/db?namespace=NS``,
``rediss://`` (TLS), ``unix://`` sockets and ``redis+sentinel://host:port,.../service``,
with their query options (``namespace``, ``cache``, ``wait``, ``max_items`` (the item
bound of the store's MessagePack documents, read and written: 1,000 to 10,000,000,
default 1,000,000, see :data:`cfgcore.snapshot.MAX_MSGPACK_ITEMS`), TLS files,
``sentinel_ssl`` (TLS to the Sentinels too, with the same files), timeouts,
``password_file``/``sentinel_password_file``/``ssl_password_file``: a password read
again at every new connection, see :mod:`cfgcore.runtime.redis_credentials`). TLS
options on a URL without TLS are refused: redis-py would ignore them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, unquote_to_bytes, urlsplit, urlunsplit

from cfgcore._encoding import utf8_encodable
from cfgcore.errors import ConfigError

__all__ = ["DEFAULT_NAMESPACE", "SCHEMES", "RedisURL", "parse_redis_url", "redact_url"]

SCHEMES = ("redis", "rediss", "redis+sentinel", "unix")
DEFAULT_NAMESPACE = "cfgcore"

_INT_OPTS = {"wait", "wait_timeout", "min_version"}
_FLOAT_OPTS = {"poll", "socket_timeout", "socket_connect_timeout", "backoff_max"}
_STR_OPTS = {
    "namespace",
    "cache",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_cert_reqs",
    "ssl_password",
    "sentinel_password",
    "sentinel_username",
    "client_name",
    "password_file",
    "sentinel_password_file",
    "ssl_password_file",
}
_BOOL_OPTS = {"ssl", "ssl_check_hostname", "sentinel_ssl"}
# The options that name a file of this machine: no file name holds a NUL byte (%00),
# which every use of the path refused with a bare ValueError ("embedded null byte"),
# naming neither the option nor the URL, at the store's first read or connection.
_PATH_OPTS = {
    "cache",
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "password_file",
    "sentinel_password_file",
    "ssl_password_file",
}
# The item bound of the store's MessagePack documents (cfgcore.snapshot.MAX_MSGPACK_ITEMS
# by default): a whole number from 1,000 to 10,000,000, judged by msgpack_items_bound.
_ITEMS_OPTS = {"max_items"}
# The longest key password OpenSSL asks for (PEM_BUFSIZE), in UTF-8 bytes.
MAX_KEY_PASSWORD_BYTES = 1024
# The options of a TLS connection: ignored by redis-py on one without TLS.
_TLS_OPTS = {
    "ssl_ca_certs",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
    "ssl_password_file",
    "ssl_cert_reqs",
    "ssl_check_hostname",
}


@dataclass(frozen=True)
class RedisURL:
    """A parsed store URL (see the module docstring for the forms)."""

    scheme: str
    hosts: tuple[tuple[str, int], ...]
    db: int = 0
    service: str | None = None
    username: str | None = None
    password: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    socket_path: str | None = None  # unix:///path/to/redis.sock

    @property
    def namespace(self) -> str:
        """The key prefix (``namespace=``), ``cfgcore`` by default."""
        return str(self.options.get("namespace") or DEFAULT_NAMESPACE)

    def __repr__(self) -> str:
        # (the dataclass's own repr showed the password and the secret options: a
        # traceback's locals, a debugger, a log of the parsed URL printed them)
        options = {k: "***" if k in _SECRET_OPTS else v for k, v in self.options.items()}
        return (
            f"RedisURL(scheme={self.scheme!r}, hosts={self.hosts!r}, db={self.db!r}, "
            f"service={self.service!r}, username={self.username!r}, "
            f"password={None if self.password is None else '***'!r}, "
            f"options={options!r}, socket_path={self.socket_path!r})"
        )

    def redacted(self) -> str:
        """The URL without its password: safe for logs, events and error messages."""
        auth = ""
        if self.username or self.password:
            user = quote(self.username or "", safe="")
            if user and self.password is None and "password_file" not in self.options:
                # A user-info part without ':' (redis://SECRET@host) is the password to
                # redis-cli -u, which reads it so; redis-py sends it as a user name. It
                # is shown as a password is, whichever it is.
                user = "***"
            auth = user + (":***" if self.password else "") + "@"
        query = f"namespace={quote(self.namespace, safe='')}"
        if self.socket_path is not None:
            # (a file name's bytes, those that are not UTF-8 too: read back by the parser)
            path = quote(os.fsencode(self.socket_path))
            return f"unix://{auth}{path}?db={self.db}&{query}"
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.hosts)
        path = f"/{self.service}/{self.db}" if self.service else f"/{self.db}"
        # Only the namespace names the document; the other options tune this client.
        return f"{self.scheme}://{auth}{hosts}{path}?{query}"

    def for_command(self) -> str:
        """The URL for a command a message tells an operator to run (``cfgcore publish
        --store``): :meth:`redacted` with the options that connect to this store (TLS
        files, Sentinel user, timeouts, ``wait``) and ``max_items`` (a repair writes a
        document as large as the fleet reads), secrets among them as ``***``; not the
        ones that tune this process only (cache file, poll, client name)."""
        extra = []
        for key in sorted(self.options.keys() & _CONNECT_OPTS):
            value = self.options[key]
            if key in _SECRET_OPTS:
                shown = "***"
            elif isinstance(value, bool):
                shown = "true" if value else "false"
            else:
                shown = quote(str(value), safe="/")
            extra.append(f"{key}={shown}")
        return "&".join([self.redacted(), *extra])


# Query parameters that carry secrets: masked in every message, like the password.
_SECRET_OPTS = {"sentinel_password", "ssl_password"}
# Every option name a store URL takes (``db`` on unix:// URLs).
_KNOWN_OPTS = _INT_OPTS | _FLOAT_OPTS | _STR_OPTS | _BOOL_OPTS | _ITEMS_OPTS | {"db"}
# The options a command needs to reach the same store (for_command); max_items= too: a
# repair publishes a document as large as the one the fleet reads.
_CONNECT_OPTS = (_INT_OPTS | _FLOAT_OPTS | _STR_OPTS | _BOOL_OPTS | _ITEMS_OPTS) - {
    "namespace", "cache", "poll", "backoff_max", "client_name", "min_version",
}  # fmt: skip


def redact_url(url: str) -> str:
    """``url`` as given, with its password and secret query parameters as ``***``
    (for messages about a URL that may not parse)."""
    try:
        return _shown(urlsplit(url), url)
    except ValueError:
        # (up to the last '@': a password may hold '/', '?' or '#' not percent-encoded)
        return re.sub(r"(?<=//).*@", "***@", url, flags=re.S).split("?", 1)[0].split("#")[0]


# A host list as the authority of a store URL holds it: HOST[:PORT] or [IPv6][:PORT],
# comma-separated (Sentinels); empty for unix:// sockets.
_HOSTS = re.compile(r"(?:\[[^\]]*\]|[^:@,\[\]]+)(?::\d*)?(?:,(?:\[[^\]]*\]|[^:@,\[\]]+)(?::\d*)?)*")


def _spilled(parts: Any, url: str) -> bool:
    """Whether the user name and password run past the authority: a '/', '?' or '#' in
    them not percent-encoded ends the authority there for every URL parser, and the rest
    of the password lands in the path, query or fragment, before the '@' that was meant
    to end it. Told by an '@' after the authority that no query value holds (``a=x@y``),
    or by an authority that is no host list (``user:pa`` of ``user:pa/ss@host``)."""
    netloc = parts.netloc
    if not netloc:
        return False
    start = url.find("//")
    after = url[start + 2 + len(netloc) :] if start >= 0 else ""
    if "@" not in after:
        return False
    hosts = netloc.rpartition("@")[2]  # (a password holding '@' and then a '/')
    if parts.scheme.lower() == "unix":
        # No host there (a socket's path may hold an '@'): text where the host would be
        # is the start of a password.
        return bool(hosts)
    return "=" not in after[: after.index("@")] or not _HOSTS.fullmatch(hosts)


def _shown(parts: Any, url: str | None = None) -> str:
    """The URL as given, for error messages: the password and the secret query
    parameters (``sentinel_password``, ``ssl_password``) replaced by ``***``, and a
    fragment (the rest of a secret whose '#' was not percent-encoded) too. With ``url``
    (the text ``parts`` came from): a password that ran past the authority (see
    :func:`_spilled`) is hidden up to its '@'."""
    if url is not None and _spilled(parts, url):
        rest = url.rpartition("@")[2]
        try:
            return _shown(urlsplit(f"{parts.scheme}://***@{rest}"))
        except ValueError:  # no valid authority after it either ('[' unclosed, ']')
            return f"{parts.scheme}://***@{rest.split('?', 1)[0].split('#', 1)[0]}"
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":***"
    elif at and userinfo and not re.search(r"(?:^|&)password_file=", parts.query):
        userinfo = "***"  # (as RedisURL.redacted: what redis-cli -u reads as the password)
    query = []
    after_secret = False
    for piece in parts.query.split("&") if parts.query else ():
        key, eq, _value = piece.partition("=")
        if after_secret and unquote(key) not in _KNOWN_OPTS:
            # (the rest of a secret whose '&' was not percent-encoded)
            query.append("***")
            continue
        name = unquote(key).lower()
        # the known secrets, and what looks like one (a misspelt sentinel_pasword=)
        secret = name in _SECRET_OPTS or re.search(r"pas|pw|secret|token|auth", name)
        after_secret = bool(eq and secret)
        query.append(f"{key}=***" if after_secret else piece)
    netloc = f"{userinfo}{at}{hostlist}"
    fragment = "***" if parts.fragment else ""
    shown = urlunsplit((parts.scheme, netloc, parts.path, "&".join(query), fragment))
    if not netloc and parts.path.startswith("/") and not shown.startswith(f"{parts.scheme}://"):
        # (urlunsplit writes unix:///run/redis.sock, with no host, as unix:/run/...)
        shown = f"{parts.scheme}://{shown[len(parts.scheme) + 1 :]}"
    return shown


def _bool(text: str, url: str, key: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}: expected true or false, got {text!r}", file=url)


def _host_port(text: str, default_port: int, url: str) -> tuple[str, int]:
    if text.startswith("["):  # [IPv6]:port
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":")
    if not host:
        raise ConfigError("missing host", file=url)
    try:
        port = int(port_text) if port_text else default_port
    except ValueError:
        raise ConfigError(f"port: expected a number, got {port_text!r}", file=url) from None
    return unquote(host), port


def parse_redis_url(url: str) -> RedisURL:
    """Parse a ``redis://``, ``rediss://`` or ``redis+sentinel://`` store URL.

    Raises ConfigError naming the URL (password hidden) for anything it cannot use.

    >>> parse_redis_url("redis://cache:6380/2?namespace=music").namespace
    'music'
    """
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. "Invalid IPv6 URL" for a '[' in the password
        shown = redact_url(url).encode("utf-8", "backslashreplace").decode("utf-8")
        raise ConfigError(f"not a valid URL: {exc}", file=shown) from None
    # (text that cannot be encoded, a lone surrogate, is shown escaped: printing it
    # would fail again)
    shown = _shown(parts, url).encode("utf-8", "backslashreplace").decode("utf-8")
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"not a Redis store URL (use {', '.join(SCHEMES)})", file=shown)
    if _spilled(parts, url):
        raise ConfigError(
            "the user name or password runs past the host: a '/', '?' or '#' in it must "
            "be percent-encoded (%2F, %3F, %23); or an '@' in the Sentinel service name "
            "or socket path is read as ending a password: write it as %40",
            file=shown,
        )
    if "#" in url:
        # Never part of a store URL: the rest of a password or option value whose '#'
        # was not percent-encoded, silently cut off there (a wrong password, or a
        # "missing host" that names none of it).
        raise ConfigError(
            "'#' in the URL: percent-encode it as %23 in a password or option value",
            file=shown,
        )
    # A lone surrogate (undecodable bytes in an environment variable, read with
    # surrogateescape) reaches Redis in a key, an AUTH or a host name: redis-py cannot
    # encode it, and every read failed with a UnicodeEncodeError instead of this error.
    # Only a socket path may hold one (a file name of this machine, encoded as such).
    for part, what in (
        (parts.netloc, "the host, user name or password"),
        ("" if scheme == "unix" else parts.path, "the path"),
        (parts.query, "the query"),
    ):
        if not utf8_encodable(part):
            raise ConfigError(
                f"{what} is not valid text (a lone surrogate: undecodable bytes, e.g. "
                "from an environment variable); percent-encode UTF-8 there",
                file=shown,
            )
        try:
            # (each part is read as text: a percent-escape that is not UTF-8 was read
            # as U+FFFD, so namespace=a%FF and namespace=a%FE named one namespace, the
            # other's document, and a password or file name changed silently)
            unquote_to_bytes(part).decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(
                f"{what} holds percent-encoded bytes that are not UTF-8 (such as %FF): "
                "read as text, they would name another namespace, password or file than "
                "the one written; percent-encode UTF-8 there",
                file=shown,
            ) from None
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    username = password = None
    if userinfo:
        user, has_pw, pw = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if has_pw else None
    if scheme == "unix":
        return _parse_unix(parts, shown, username, password)
    sentinel = scheme == "redis+sentinel"
    default_port = 26379 if sentinel else 6379
    hosts = tuple(_host_port(h, default_port, shown) for h in hostlist.split(",") if h)
    if not hosts:
        hosts = (("localhost", default_port),)
    if len(hosts) > 1 and not sentinel:
        raise ConfigError("several hosts need a redis+sentinel:// URL", file=shown)
    segments = [s for s in parts.path.split("/") if s]
    service = None
    if sentinel:
        if not segments:
            raise ConfigError("missing the Sentinel service name (/SERVICE)", file=shown)
        service = unquote(segments.pop(0))
    if len(segments) > 1:
        raise ConfigError(f"unexpected path {parts.path!r}", file=shown)
    try:
        db = int(segments[0]) if segments else 0
    except ValueError:
        raise ConfigError(f"database: expected a number, got {segments[0]!r}", file=shown) from None
    options: dict[str, Any] = {}
    after_secret = None  # the secret option just read: its value may run on past an '&'
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if after_secret is not None and key not in _KNOWN_OPTS:
            # Not named: it is likely the rest of that password.
            raise ConfigError(
                f"unknown query parameter after {after_secret}=: an '&' in its value must "
                "be percent-encoded as %26",
                file=shown,
            )
        after_secret = key if key in _SECRET_OPTS else None
        try:
            if key in _INT_OPTS:
                options[key] = int(value)
            elif key in _FLOAT_OPTS:
                options[key] = float(value)
            elif key in _BOOL_OPTS:
                options[key] = _bool(value, shown, key)
            elif key in _STR_OPTS:
                if key in _PATH_OPTS and "\0" in value:
                    raise ConfigError(f"{key}: a file name holds no NUL byte (%00)", file=shown)
                if key == "client_name" and not all("!" <= c <= "~" for c in value):
                    # (Redis refuses CLIENT SETNAME with any other character: every
                    # connection then failed, and the store read as unreachable)
                    raise ConfigError(
                        f"client_name: {value!r} holds a space or a character other than "
                        "printable ASCII, which Redis refuses in a client name",
                        file=shown,
                    )
                options[key] = value
            elif key in _ITEMS_OPTS:
                from cfgcore.snapshot import msgpack_items_bound

                options[key] = msgpack_items_bound(value, name=key, file=shown, text=True)
            else:
                raise ConfigError(f"unknown query parameter {key!r}", file=shown)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {value!r}", file=shown) from None
    if options.get("namespace") == "" or ":" in str(options.get("namespace", "")):
        raise ConfigError("namespace: must be non-empty and without ':'", file=shown)
    _check_ranges(options, db, hosts, shown)
    _check_sentinel_tls(options, scheme, shown)
    _check_tls(options, scheme, shown)
    _check_password_files(options, password, scheme, shown)
    _check_client_key(options, shown)
    return RedisURL(scheme, hosts, db, service, username, password, options)


def _check_ranges(
    options: Mapping[str, Any], db: int, hosts: tuple[tuple[str, int], ...], shown: str
) -> None:
    """Refuse values the follower cannot run with: ``poll=0`` re-read the key in a busy
    loop, ``backoff_max=0`` reconnected in one, a NaN never polled, a negative database
    or port only failed at connection time."""
    for key in sorted(_FLOAT_OPTS & options.keys()):
        if not 0 < options[key] < math.inf:  # NaN is refused too
            raise ConfigError(
                f"{key}: expected a number of seconds above 0, got {options[key]!r}", file=shown
            )
    for key in sorted(_INT_OPTS & options.keys()):
        if options[key] < 0:
            raise ConfigError(f"{key}: expected 0 or more, got {options[key]!r}", file=shown)
    if options.get("min_version", 0) > 2**53 - 1:  # (what a stored version can be)
        raise ConfigError(
            f"min_version: expected a version from 0 to 2**53 - 1, got {options['min_version']}",
            file=shown,
        )
    if db < 0:
        raise ConfigError(f"database: expected 0 or more, got {db}", file=shown)
    for host, port in hosts:
        if not 0 < port < 65536:
            raise ConfigError(f"port of {host}: expected 1 to 65535, got {port}", file=shown)


def _check_tls(options: Mapping[str, Any], scheme: str, shown: str) -> None:
    """Refuse TLS options where there is no TLS: redis-py ignores them on a connection
    in clear text, and a deployment that believes it sends a client certificate (and
    checks the server's) would send everything, password included, in clear."""
    given = sorted(_TLS_OPTS & options.keys())
    if given and scheme != "rediss" and not (scheme != "unix" and options.get("ssl")):
        names = ", ".join(f"{key}=" for key in given)
        use = (
            "a unix:// socket has no TLS: use rediss://HOST:PORT"
            if scheme == "unix"
            else "use rediss:// (or ssl=true with redis+sentinel://)"
        )
        raise ConfigError(
            f"{names} without TLS: a {scheme}:// URL connects in clear text and would "
            f"ignore {'them' if len(given) > 1 else 'it'}; {use}",
            file=shown,
        )


def _check_sentinel_tls(options: Mapping[str, Any], scheme: str, shown: str) -> None:
    """``sentinel_ssl=`` (TLS to the Sentinels, with the TLS files of the primary's
    connections) only on a ``redis+sentinel://`` URL, and only with ``ssl=true``:
    TLS to the Sentinels alone would send the data and the Redis password in clear
    text while the URL names TLS files."""
    if "sentinel_ssl" not in options:
        return
    if scheme != "redis+sentinel":
        raise ConfigError(
            "sentinel_ssl= is for redis+sentinel:// URLs (TLS to the Sentinels); for "
            "Redis itself, use rediss://",
            file=shown,
        )
    if options["sentinel_ssl"] and not options.get("ssl"):
        raise ConfigError(
            "sentinel_ssl=true without ssl=true: the Sentinels would be reached over TLS "
            "and the primary in clear text; add ssl=true (the TLS files serve both)",
            file=shown,
        )


def _check_client_key(options: Mapping[str, Any], shown: str) -> None:
    """Refuse a client key, or its password, without the certificate: redis-py loads
    the key only with one (a key alone failed every connection with a TypeError, a
    password alone was ignored). A key password longer than OpenSSL takes is refused
    too: the ssl module raised a bare ValueError from each connection."""
    password = options.get("ssl_password")
    if password is not None and len(password.encode("utf-8")) > MAX_KEY_PASSWORD_BYTES:
        raise ConfigError(
            f"ssl_password: longer than {MAX_KEY_PASSWORD_BYTES} bytes, the longest key "
            "password OpenSSL takes",
            file=shown,
        )
    if "ssl_certfile" in options:
        return
    for key in ("ssl_keyfile", "ssl_password", "ssl_password_file"):
        if key in options:
            raise ConfigError(
                f"{key}= without ssl_certfile=: the client key is loaded with its "
                "certificate; give ssl_certfile= (a file that holds both, or the "
                "certificate beside ssl_keyfile=)",
                file=shown,
            )


def _check_password_files(
    options: dict[str, Any], password: str | None, scheme: str, shown: str
) -> None:
    """A password file (``password_file=``, ``sentinel_password_file=``,
    ``ssl_password_file=``) is the one source of its password: one given in the URL as
    well is refused (which would the store send?). Its path is made absolute here, once:
    the file is read at every new connection, and a later ``chdir`` must not change
    which file that is."""
    pairs = (
        ("password_file", password, "a password in the URL (user:PASSWORD@)"),
        ("sentinel_password_file", options.get("sentinel_password"), "sentinel_password="),
        ("ssl_password_file", options.get("ssl_password"), "ssl_password="),
    )
    for key, given, where in pairs:
        if key not in options:
            continue
        if not options[key]:
            raise ConfigError(f"{key}: expected the path of a file holding the password",
                              file=shown)  # fmt: skip
        if given is not None:
            raise ConfigError(
                f"both {where} and {key}= give the password: keep one (the file, for a "
                "password that is rotated while the process runs)",
                file=shown,
            )
        options[key] = os.path.abspath(os.path.expanduser(options[key]))
    if "sentinel_password_file" in options and scheme != "redis+sentinel":
        raise ConfigError(
            "sentinel_password_file= is for redis+sentinel:// URLs (the password of the "
            "Sentinels); for Redis itself, use password_file=",
            file=shown,
        )
    for key, instead in (
        ("sentinel_password", "a password in the URL (user:PASSWORD@) or password_file="),
        ("sentinel_username", "a user in the URL (USER@)"),
    ):
        if key in options and scheme != "redis+sentinel":
            # (redis-py would ignore it: a deployment believing it authenticates
            # with it would connect without)
            raise ConfigError(
                f"{key}= is for redis+sentinel:// URLs (the Sentinels'); for Redis "
                f"itself, use {instead}",
                file=shown,
            )


def _parse_unix(parts: Any, shown: str, username: str | None, password: str | None) -> RedisURL:
    """``unix:///path/to/redis.sock?db=N&namespace=NS`` (a Redis on this machine)."""
    if not parts.path:
        raise ConfigError("missing the socket path (unix:///path/to/redis.sock)", file=shown)
    if "\0" in unquote(parts.path):
        raise ConfigError("the socket path: a file name holds no NUL byte (%00)", file=shown)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if query.get("ssl") is not None and _bool(query["ssl"], shown, "ssl"):
        raise ConfigError(
            "ssl=true: a unix:// socket has no TLS (redis-py connects in clear text "
            "whatever ssl= says): use rediss://HOST:PORT",
            file=shown,
        )
    _check_tls(query, "unix", shown)
    db_text = query.pop("db", "0")
    try:
        db = int(db_text)
    except ValueError:
        raise ConfigError(f"db: expected a number, got {db_text!r}", file=shown) from None
    from urllib.parse import urlencode

    try:  # the same options as a TCP URL's, judged as such, named by this URL
        rest = parse_redis_url(f"redis://localhost/{db}?{urlencode(query)}")
    except ConfigError as exc:
        raise ConfigError([replace(p, file=shown) for p in exc.problems]) from None
    _check_password_files(dict(rest.options), password, "unix", shown)
    return RedisURL(
        "unix",
        (),
        db,
        None,
        username,
        password,
        rest.options,
        # (percent-encoded bytes that are not UTF-8 name the file they name on disk)
        socket_path=unquote(parts.path, errors="surrogateescape"),
    )
