"""Which keys and values are secrets, and how they are masked on every surface
(event reprs, the audit log, the command line).
"""

from __future__ import annotations

import base64
import re
import string
from collections.abc import Iterable
from typing import Any

from cfgcore.errors import parse_key_path
from cfgcore.runtime import secrets as _secrets

REDACTED = "***redacted***"

# --------------------------------------------------------------------------- redaction

# The password runs to the last "@" before the path, as urllib and redis-py read it.
# The scheme's letters are a lookbehind, not part of the match: matching them made the
# search retry from every letter of a long run, quadratic in a value's length (a 1 MB
# value holding "@" and "://" took over an hour to mask). They stay in the output.
_URL_CREDENTIALS = re.compile(
    r"(?<=[a-z0-9+.\-])(?P<scheme>://)(?P<user>[^:/@\s]*):(?P<password>[^/?#\s]+)@", re.I
)
_TOKEN_VALUE = re.compile(
    r"^(-----BEGIN [A-Z ]*PRIVATE KEY-----|sk_(live|test)_|ghp_|gho_|xox[abp]-"
    r"|AKIA[0-9A-Z]{16}|eyJ[\w-]+\.)"
)
# password=... inside connection strings (libpq, JDBC, ADO.NET, JAAS, query strings).
_KV_PASSWORD = re.compile(
    r"(?P<key>\b(?:password|passwd|pwd)\s*=\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^;&\s]+)",
    re.IGNORECASE,
)
# A URL's query parameter (its value masked when the name is a secret's: token,
# api_key, client_secret, key, X-Amz-Signature...).
_QUERY_PARAM = re.compile(r"(?P<pre>[?&;])(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>[^&#;\s]*)")
# A URL's host and path (its secret path segments masked: webhook tokens). Anchored on
# "://" and bounded by characters the host and path cannot hold: linear in a value.
_URL_PATH = re.compile(r"(?P<host>://[^/\s?#]+)(?P<path>/[^\s?#]*)")
# Path segments that mark a webhook: what follows them is the hook's address, and its
# long random parts are the credential (whoever has the URL can post).
_HOOK_SEGMENTS = frozenset({"hook", "hooks", "webhook", "webhooks"})
# A run of 8+ letters and digits: a random piece when it mixes both (_random_piece). Not
# one regex with lookaheads: those rescan the rest of a run from each of its letters,
# quadratic in a segment's length (a 200 kB path segment took minutes in a log line).
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]{8,}")
_DIGITS = frozenset("0123456789")
_LETTERS = frozenset(string.ascii_letters)
_TOKEN_SEGMENT = re.compile(r"[A-Za-z0-9_\-]{16,}")
# A whole-value ${VAR}, ${VAR:-default}, ${VAR-default} or ${VAR:?message} reference.
_WHOLE_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}$")

# --------------------------------------------------------------------------- secret names
#
# The one definition of a secret's key name: validation's plain-text secret rule, the
# empty-secret report (``cfgcore setup``, ``cfgcore validate``, the health report),
# secret environment variables and the masking below all ask is_secret_key
# (cfgcore.validation.keys re-exports it). A name is judged by its words
# (``db_password``, ``dbPassword``, ``DB-PASSWORD`` are one name), the last deciding.

# The last word of a secret's name (``password``, ``db_pass``, ``api_secret``,
# ``credentials``), or how it ends (``dbpassword``, ``clientsecret``). A plural names a
# section or a list of them (``secrets:``, ``api_keys:``): masked whole, but judged
# entry by entry (:func:`may_hold_secret`).
_SECRET_WORDS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "passphrase",
        "secret",
        "token",
        "credential",
        "credentials",
        "authorization",
        "apikey",
        "creds",
        "cred",
    }
)
_SECRET_WORD_ENDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "credentials",
    "apikey",
    "creds",
    # A session id in one word (``sessionid``, Java's ``JSESSIONID``, PHP's ``PHPSESSID``):
    # a bearer credential, whoever holds it is logged in as that user.
    "sessionid",
    "sessid",
)
# A ``key`` is a secret after one of these (``api_key``, ``signingKey``,
# ``secret_access_key``, ``hmac_key``, ``privatekey``); other keys (``partition_key``,
# ``sort_key``, ``public_key``) are not.
_KEY_QUALIFIERS = frozenset(
    {
        "api",
        "private",
        "secret",
        "access",
        "signing",
        "encryption",
        "master",
        "hmac",
        "jwt",
        "crypto",
        "cipher",
        "aes",
        "auth",
        "session",
        "shared",
        "account",
        "admin",
        "service",
        "app",
        "refresh",
        "bearer",
        "webhook",
        "csrf",
    }
)
# Words that make a name count something, or switch something, rather than hold a
# secret (``max_token``, ``allow_credentials``, ``require_password``).
_ABOUT = frozenset(
    {
        "max",
        "min",
        "num",
        "number",
        "total",
        "count",
        "allow",
        "allowed",
        "allows",
        "support",
        "supports",
        "require",
        "requires",
        "required",
        "use",
        "enable",
        "enabled",
        "disable",
        "disabled",
        "is",
        "has",
    }
)
# A ``pass`` after one of these is a filter (``low_pass``, ``band_pass``) or a step of
# an encoder (``first_pass``, ``two_pass``), not a password (``db_pass``, ``user_pass``).
_PASS_KINDS = frozenset(
    {
        "low",
        "high",
        "band",
        "notch",
        "all",
        "first",
        "second",
        "third",
        "last",
        "final",
        "next",
        "single",
        "double",
        "one",
        "two",
        "multi",
        "each",
    }
)
# Words that are a credential after one of these, though alone they name a section or a
# setting (``auth:``, ``cookie:``, ``jwt:`` hold settings, as cfgcore's own
# ``security.jwt`` does): ``basic_auth``, ``auth_header``, ``session_cookie``,
# ``connection_string``, ``access_jwt``; written as one word too (``basicauth``,
# ``sessioncookie``, ``connectionstring``). A bare ``jwt`` holding text is masked all
# the same (:func:`_secret_path`).
_SECRET_AFTER: dict[str, frozenset[str]] = {
    "auth": frozenset({"basic", "bearer", "digest", "proxy", "http"}),
    "header": frozenset({"auth", "authorization"}),
    "cookie": frozenset({"session", "auth", "login", "remember", "sso"}),
    "string": frozenset({"connection", "conn"}),
    "str": frozenset({"connection", "conn"}),
    "jwt": _KEY_QUALIFIERS - {"jwt"} | {"id"},
    # A session id (``session_id``, ``sessionId``, ``SESSION_ID``, ``sess_id``) is what a
    # session cookie carries. Names that count or measure sessions end in another word
    # (``session_count``, ``session_length_s``, ``session_id_length``) or hold an
    # about-word (``max_session_ids``): not secrets.
    "id": frozenset({"session", "sess"}),
}
_SECRET_JOINED = frozenset(q + w for w, qs in _SECRET_AFTER.items() for q in qs)
# Bare names masked as a value, judged entry by entry as a section (:func:`_secret_path`):
# a ``session`` holding text is the session id, holding a map its settings.
_VALUE_SECRETS = frozenset({"jwt", "auth", "cookie", "session"})
# A bare ``id`` under these parents is a session id (``session: {id: ...}``).
_SECRET_ID_PARENTS = frozenset({"session", "sessions"})
#: A bare ``key`` holds a secret under these parents (``security.encryption.key``,
#: ``jwt.key``, ``tls.key``...): see :func:`names_secret`.
SECRET_KEY_PARENTS = frozenset({"encryption", "signing", "jwt", "crypto", "hmac", "tls", "ssl"})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_names: dict[Any, bool] = {}


def key_words(name: Any) -> list[str]:
    """The lower-case words of a key name, camelCase split (``dbPassword``,
    ``X-Api-Key``, ``AWS_SECRET_ACCESS_KEY``), trailing numbers dropped."""
    words = [w.lower() for w in _WORD.findall(name if type(name) is str else str(name))]
    while words and words[-1].isdigit():
        words.pop()
    return words


def _judge(name: str) -> bool:
    words = key_words(name)
    if not words or not _ABOUT.isdisjoint(words):
        return False
    last = words[-1]
    before = words[-2] if len(words) > 1 else ""
    if last == "pass" and before in _PASS_KINDS:
        return False  # a filter or an encoding pass (low_pass: 8000), not a password
    if last in _SECRET_WORDS or last.endswith(_SECRET_WORD_ENDS):
        return True
    if before in _SECRET_AFTER.get(last, ()) or last in _SECRET_JOINED:
        return True
    if last == "key":
        return before in _KEY_QUALIFIERS
    if last.endswith("key"):
        # One word: "privatekey", "secretaccesskey" (a camelCase "secretAccessKey"
        # reads so lower-cased).
        head = last[:-3]
        return any(head.endswith(q) for q in _KEY_QUALIFIERS)
    return False


def is_secret_key(path: Any) -> bool:
    """Does the key name (the last segment of a dotted path) say its value is a secret?

    ``password``, ``db_pass``, ``passphrase``, ``api_secret``, ``credentials``,
    ``access_token``, ``api_key``, ``secret_access_key``, ``privateKey``,
    ``DB_PASSWORD``, ``creds``, ``basic_auth``, ``auth_header``, ``session_cookie``,
    ``connection_string``, ``session_id``, ``sessionId``, ``JSESSIONID``: yes. Names
    about a secret (``token_ttl``, ``password_policy``,
    ``secret_name``, ``api_key_required``, ``password_file``), keys that are not
    credentials (``partition_key``, ``public_key``, ``key_id``) and counts
    (``max_tokens``) are not. A bare ``key`` is one only under a secret parent:
    :func:`names_secret` judges that.
    """
    if isinstance(path, str):
        key: Any = path.rsplit(".", 1)[-1]
    elif isinstance(path, list | tuple):
        key = path[-1] if path else ""
    else:
        key = path
    try:
        hit = _names.get(key)
    except TypeError:  # unhashable (only possible from hand-built trees)
        return _judge(str(key))
    if hit is None:
        hit = _judge(key if type(key) is str else str(key))
        if len(_names) < 8192:
            _names[key] = hit
    return hit


def names_secret(key: Any, parent_key: Any = "") -> bool:
    """Whether the value under ``key`` (in a mapping under ``parent_key``) is a secret
    by its name: :func:`is_secret_key`, a bare ``key`` under ``encryption``, ``jwt``,
    ``tls``... (:data:`SECRET_KEY_PARENTS`), or a bare ``id`` under ``session`` (the
    session id). What validation's plain-text secret rule, the empty-secret report and
    redaction call a secret."""
    if is_secret_key(key):
        return True
    if _bare_key(key):
        return key_words(parent_key)[-1:] in ([p] for p in SECRET_KEY_PARENTS)
    return _bare_id(key) and key_words(parent_key)[-1:] in ([p] for p in _SECRET_ID_PARENTS)


def _bare_id(key: Any) -> bool:
    """``id``, ``ID``, ``id_1``: a bare id (its parent says of what)."""
    text = key if type(key) is str else str(key)
    return len(text) <= 8 and key_words(text) == ["id"]


def _bare_key(key: Any) -> bool:
    """``key``, ``KEY``, ``key-1``: a bare key (its parent says whose)."""
    text = key if type(key) is str else str(key)
    return len(text) <= 8 and "key" in text.lower() and key_words(text) == ["key"]


def may_hold_secret(name: Any) -> bool:
    """Masked anyway, though not called a secret: a name ending in ``key``
    (``stripe_key``, ``license_key``, a bare ``key``) or ``dsn`` (``sentry_dsn``, a
    database DSN), and a plural that holds secrets (``secrets``, ``passwords``,
    ``tokens``, ``api_keys``: each entry is judged by its own name). A mask there costs
    a reader little, while validation demanding a reference for them would refuse
    ``partition_key: user_id``, ``max_tokens: 4096`` or a ``secrets:`` section's
    ``provider: vault``."""
    try:
        hit = _maybe.get(name)
    except TypeError:
        return _may_hold(str(name))
    if hit is None:
        hit = _may_hold(name if type(name) is str else str(name))
        if len(_maybe) < 8192:
            _maybe[name] = hit
    return hit


_maybe: dict[Any, bool] = {}


def _may_hold(name: str) -> bool:
    words = key_words(name)
    if not words:
        return False
    if not _ABOUT.isdisjoint(words):
        # A secret word last after "enable" or "support" names a secret (a network
        # device's enable_password / enable_secret, a support_password): masked, as
        # they were before secret names had one home. Other about-words (is_token,
        # use_secret, require_password) name switches, left as they are.
        return (
            _ABOUT.intersection(words) <= _SECRET_ABOUT
            and words[-1] in _SECRET_WORDS
            and words[-1] != "pass"
        )
    last = words[-1]
    if (
        last.endswith(("key", "keys", "dsn"))
        or last in _SECRET_PLURALS
        or (last.endswith("s") and _judge(name[:-1]))
    ):
        return True
    # A secret's name followed by the form it is written in (``private_key_pem``,
    # ``secret_key_base``, ``encryption_key_b64``, ``api_key_v2``, ``secret_value``,
    # ``password_hash``, ``authorization_header``): the value is the secret.
    end = len(words)
    while end > 1 and words[end - 1] in _SECRET_FORMS:
        end -= 1
    return end < len(words) and _judge("_".join(words[:end]))


_SECRET_PLURALS = frozenset({"passwords", "secrets", "tokens", "credentials", "apikeys"})
_SECRET_ABOUT = frozenset({"enable", "support"})
# Words naming the form a secret is written in, after the secret's name.
_SECRET_FORMS = frozenset(
    {
        "value",
        "val",
        "pem",
        "der",
        "b",  # b64 (its digits are dropped)
        "base",
        "hex",
        "string",
        "str",
        "text",
        "data",
        "bytes",
        "binary",
        "blob",
        "raw",
        "material",
        "encoded",
        "plain",
        "plaintext",
        "literal",
        "content",
        "contents",
        "body",
        "json",
        "salt",
        "hash",
        "header",
        "code",
        "v",  # v2 (its digits are dropped)
    }
)


def _secret_path(key: str) -> bool:
    """Is the value at dotted ``key`` masked: its name says it is a secret
    (:func:`names_secret`) or may hold one (:func:`may_hold_secret`), or it sits under
    a secret's key (``db.password.value``: the map under ``password`` is the secret)."""
    # A key path as cfgcore shows it: a key holding a dot quoted (a["b.c"].d).
    segs = list(parse_key_path(key)) if "[" in key else key.split(".")
    last, parent = segs[-1], (segs[-2] if len(segs) > 1 else "")
    if names_secret(last, parent) or may_hold_secret(last):
        return True
    words = key_words(last)
    if len(words) == 1 and words[0] in _VALUE_SECRETS:
        # A bare ``jwt``, ``auth`` or ``cookie`` is a credential when it holds a value
        # (a token, Redis's AUTH password, a Cookie header in an evaluation context),
        # settings when it holds a map (``security.jwt.algorithm``): masked as a value
        # only, and validation leaves it alone (cfgcore's own defaults have that section).
        return True
    return any(is_secret_key(seg) or may_hold_secret(seg) for seg in segs[:-1] if seg)


def redact(path: str | Iterable[Any], value: Any) -> Any:
    """``value`` with secrets replaced by :data:`REDACTED` (recursively for trees).

    A non-empty string is redacted when it is a resolved secret (decrypted, read from a
    secret file, or from a secret variable: see :mod:`cfgcore.runtime.secrets`) or
    contains one (that part is masked), when its key looks secret or the text itself looks
    like a credential (private key, well-known token prefixes); passwords inside URLs
    (``redis://user:pw@host``), ``password=...`` parameters of connection strings
    (``host=db password=pw``, ``...;Password=pw;``, ``password="pw";``) and query
    parameters of URLs named like a secret (``?token=...``, ``&api_key=...``,
    ``X-Amz-Signature=...``) and webhook tokens in a URL's path (Slack's
    ``/services/T…/B…/TOKEN``, Discord's ``/webhooks/ID/TOKEN``, long random segments
    after ``/hooks/`` or ``/webhook/``) are masked.
    A number under a secret key is redacted too, and a key under a secret key is one
    (``password: {value: ...}``, as a change event's leaf path ``db.password.value``);
    other numbers, booleans and empty strings stay.
    """
    key = path if isinstance(path, str) else ".".join(str(p) for p in path)
    if isinstance(value, dict):
        return {k: redact(f"{key}.{k}" if key else str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(key, v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        # A numeric PIN or password (``password: 84726153``) is as secret as a string
        # one: the application reads it with str(). Booleans stay (``password: false``).
        return REDACTED if key and _secret_path(key) else value
    if not isinstance(value, str | bool) and value is not None:
        # bytes, a Decimal, any other object: the audit log and reprs write its str(),
        # which shows the secret (b'hunter2') as well as a string would.
        return REDACTED if key and _secret_path(key) else value
    if isinstance(value, str) and value:
        if _secrets.is_resolved_secret(value):
            # Decrypted, read from a secret file or a secret variable: whatever the key.
            return REDACTED
        if (key and _secret_path(key)) or _TOKEN_VALUE.match(value):
            ref = _WHOLE_REF.match(value)
            if ref is not None:
                # An unresolved ${VAR} reference names a variable, not a secret, but a
                # ${VAR:-default} carries its default in clear: mask that part.
                name, op, default = ref.groups()
                if op in (":-", "-") and default:
                    return f"${{{name}{op}{REDACTED}}}"
                return value
            return REDACTED
        if "://" in value:
            value = _mask_url(value)
        if "=" in value:
            value = _KV_PASSWORD.sub(_mask_kv, value)
        value = _AUTH_SCHEME.sub(_mask_auth, value)
        return _secrets.mask_text(value)
    return value


def _mask_url(value: str) -> str:
    """``value`` (holding ``://``) with the secret parts of its URLs masked: the
    password of ``user:password@``, query parameters named like a secret and webhook
    tokens in the path."""
    if "@" in value:
        value = _URL_CREDENTIALS.sub(_mask_credentials, value)
    if "=" in value:
        value = _QUERY_PARAM.sub(_mask_query, value)
    return _URL_PATH.sub(_mask_path, value)


def _mask_credentials(m: re.Match[str]) -> str:
    """``user:password@`` with the password masked; one cfgcore already masked (``***``
    as the CLI and the audit log write a store URL, or ``***redacted***``) stays as it
    is, so a message quoting a masked URL reads the same after another pass."""
    if m["password"] in _MASKS:
        return m.group(0)
    return f"{m['scheme']}{m['user']}:{REDACTED}@"


_MASKS = frozenset(("***", REDACTED))


def _mask_query(m: re.Match[str]) -> str:
    name, value = m["name"], m["value"]
    low = name.lower()
    secret = (
        is_secret_key(name)
        or may_hold_secret(name)
        or low in ("sig", "signature")
        or low.endswith("signature")
    )
    if not secret or not value or value.startswith("${"):
        return m.group(0)
    return f"{m['pre']}{name}={REDACTED}"


def _mask_path(m: re.Match[str]) -> str:
    """A URL's path with its webhook token masked: Slack's
    (``hooks.slack.com/services/T…/B…/TOKEN``), Discord's
    (``/api/webhooks/ID/TOKEN``), and elsewhere every long random segment (16+
    characters, a piece of 8+ mixing letters and digits) after a ``hooks``/``webhook``
    segment. Ordinary paths (words, numeric ids) stay."""
    host = m["host"][3:].rsplit("@", 1)[-1].split(":", 1)[0].lower().rstrip(".")
    segs = m["path"].split("/")
    low = [seg.lower() for seg in segs]
    secret: set[int] = set()
    if host == "hooks.slack.com" or host.endswith(".slack.com"):
        # /services/T…/B…/TOKEN, /workflows/T…/A…/ID/TOKEN, /triggers/T…/ID/TOKEN
        if len(segs) > 1 and low[1] in ("services", "workflows", "triggers"):
            last = max((i for i, seg in enumerate(segs) if seg), default=0)
            if last >= 4:
                secret.add(last)
    if host in ("discord.com", "discordapp.com") or host.endswith(
        (".discord.com", ".discordapp.com")
    ):
        if "webhooks" in low:
            secret.add(low.index("webhooks") + 2)  # /api[/vN]/webhooks/ID/TOKEN
    hook = next((i for i, seg in enumerate(low) if seg in _HOOK_SEGMENTS), None)
    if hook is not None:
        secret.update(
            i
            for i in range(hook + 1, len(segs))
            if _TOKEN_SEGMENT.fullmatch(segs[i]) and _random_piece(segs[i])
        )
    shown = [
        REDACTED if i in secret and seg and not seg.startswith("${") else seg
        for i, seg in enumerate(segs)
    ]
    return m["host"] + "/".join(shown)


def _random_piece(segment: str) -> bool:
    """Does ``segment`` hold a piece of 8+ letters and digits mixing both? Linear."""
    for m in _ALNUM_RUN.finditer(segment):
        chars = set(m.group())
        if not chars.isdisjoint(_DIGITS) and not chars.isdisjoint(_LETTERS):
            return True
    return False


def _mask_kv(m: re.Match[str]) -> str:
    value = m["value"]
    quote = value[0] if value[:1] in ("'", '"') else ""
    inner = value[1:-1] if quote else value
    if not inner or inner.startswith("${"):  # empty, or a reference: nothing secret shown
        return m.group(0)
    return f"{m['key']}{quote}{REDACTED}{quote}"


# An HTTP ``Authorization`` credential written in text or in a value: ``Bearer <token>``
# and ``Basic <base64 of user:password>``. The scheme word alone ("Basic auth is
# required", "Bearer tokens expire") is prose: a bearer token is masked when it looks
# like one (8+ characters holding a digit or one of "-._~+/=", or 20+), a basic
# credential when it decodes to "user:password".
_AUTH_SCHEME = re.compile(
    r"\b(?P<scheme>bearer|basic)(?P<space>[ \t]+)(?P<cred>[A-Za-z0-9\-._~+/]+=*)", re.I
)
_TOKEN_MARKS = frozenset("0123456789-._~+/=")


def _mask_auth(m: re.Match[str]) -> str:
    cred = m["cred"]
    if m["scheme"].lower() == "basic":
        try:
            secret = b":" in base64.b64decode(cred, validate=True)
        except ValueError:  # binascii.Error: not base64
            secret = False
    else:
        secret = len(cred) >= 20 or (len(cred) >= 8 and not _TOKEN_MARKS.isdisjoint(cred))
    return f"{m['scheme']}{m['space']}{REDACTED}" if secret else m.group(0)


def mask_auth_credentials(text: str) -> str:
    """``text`` with ``Bearer <token>`` and ``Basic <base64>`` credentials masked (an
    ``Authorization`` header quoted in a value, a log line or an error)."""
    return _AUTH_SCHEME.sub(_mask_auth, text)


# Where a URL written in free text ends: a character a URL cannot hold unescaped
# (white space, quotes, angle brackets, backslash...), and punctuation that closes a
# sentence or a bracket around it is left out of its end ("see https://h/x/TOKEN.").
_URL_STOP = re.compile(r"[\s\"'<>`\\^{}|]")
_SCHEME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
_TRAILING = ".,;:!?)]"
_TRAILING_SET = frozenset(_TRAILING)
# A scheme is a short word ("https", "redis+sentinel"): letters further back are text.
_SCHEME_MAX = 32


def _url_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each URL in free text: from its scheme to a stop character,
    the next URL's scheme, or the end of the text, less trailing punctuation. Each
    character is looked at a bounded number of times: linear in the text's length."""
    spans: list[tuple[int, int]] = []
    find, n, pos = text.find, len(text), 0
    i = find("://", pos)
    while i >= 0:
        start, low = i, max(pos, i - _SCHEME_MAX)
        while start > low and text[start - 1] in _SCHEME_CHARS:
            start -= 1
        nxt = find("://", i + 3)
        limit = n if nxt < 0 else nxt
        stop = _URL_STOP.search(text, i + 3, limit)
        if stop is not None:
            end = stop.start()
        else:
            end = limit
            if nxt >= 0:  # "a://x,b://y": this URL ends where the next one's scheme starts
                low = max(i + 3, end - _SCHEME_MAX)
                while end > low and text[end - 1] in _SCHEME_CHARS:
                    end -= 1
        if text[end - 1 : end] in _TRAILING_SET:
            end = i + 3 + len(text[i + 3 : end].rstrip(_TRAILING))
        spans.append((start, end))
        pos = max(end, i + 3)
        i = nxt if nxt >= pos else find("://", pos)
    return spans


def redact_text(text: str) -> str:
    """Free text (a message, a log line, an exception's text) with its secrets masked:
    every resolved secret (:mod:`cfgcore.runtime.secrets`), and in each URL written in
    it what :func:`redact` masks in a URL value: the password of ``user:password@``,
    query parameters named like a secret (``?token=``, ``&api_key=``, ``sig=``) and
    webhook tokens in the path (Slack's ``/services/T…/B…/TOKEN``, Discord's
    ``/api/webhooks/ID/TOKEN``, long random segments after ``/hooks/``). Text outside
    URLs is left as it is (``token=`` in a sentence is not a URL's parameter).

    >>> redact_text("POST https://discord.com/api/webhooks/123/abcDEF123456xyz: 404")
    'POST https://discord.com/api/webhooks/123/***redacted***: 404'
    """
    if "://" in text:
        if "@" in text:
            # A URL's password first, on the whole text, as in a value: it runs to the
            # last "@" before the path, over characters that end a URL in text (quotes,
            # angle brackets, braces, "|", "\\"), which generated passwords hold
            # unescaped and clients read (redis://app:ab<cd@cache: the password is
            # "ab<cd"). Cut at them first, the password was shown whole.
            text = _URL_CREDENTIALS.sub(_mask_credentials, text)
        parts, last = [], 0
        for start, end in _url_spans(text):
            parts.append(text[last:start])
            parts.append(_mask_url(text[start:end]))
            last = end
        parts.append(text[last:])
        text = "".join(parts)
    return _secrets.mask_text(_AUTH_SCHEME.sub(_mask_auth, text))
