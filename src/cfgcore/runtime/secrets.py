"""Secrets: encrypted ``ENC[...]`` values, ``${file:...}`` secret files, and masking.

Encrypted values
    A configuration value (or flag variant payload) written ``ENC[...]`` is decrypted
    at load with the keys of a :class:`Keyring`:

    * ``ENC[fernet:<token>]`` (or ``ENC[<token>]``): a Fernet token; every key of the
      ring is tried (``MultiFernet``), so values encrypted with a retired key still load
      while it stays in the ring;
    * ``ENC[aesgcm:<key id>:<base64url(nonce + ciphertext)>]``: AES-256-GCM, the key
      picked by its id (the key id and the format version are authenticated data);
    * ``ENC[v2:fernet:<token>]`` and ``ENC[v2:aesgcm:<key id>:<data>]``: the same,
      *bound to the key path* the value was encrypted for (``cfgcore secrets encrypt
      --path db.password``): for AES-GCM the path is authenticated data, for Fernet it
      is authenticated inside the token. Such a value decrypts only at that path, so
      someone who can edit a configuration file but holds no key can no longer move an
      encrypted ``db.admin_password`` into a key that is shown to users
      (``feature.banner_text``): the load fails naming the file and key path.

    The version-1 forms above are *unbound*: they still decrypt wherever they are.
    ``cfgcore secrets check DIR`` lists them (file and key path), ``cfgcore secrets
    rotate --bind DIR`` re-encrypts every one bound to the key path it is found at
    (review the list first: a value already moved would be bound where it was moved
    to), and ``CFGCORE_SECRET_REQUIRE_BOUND=1`` refuses unbound values at load (an
    error naming the file and key path; the last good configuration stays active).
    What binding cannot stop: an older envelope *of the same key path* (a password
    changed since) put back in place still decrypts while the key that made it is in
    the ring; after changing a secret, rotate to a new key and remove the old one.

    Key paths are the dotted paths of the loaded configuration (a list item by its
    index: ``servers.0.password``; a flag variant payload as
    ``flags.<flag>.variants.<variant>``; a profile file's ``overrides`` are bound
    without the ``overrides.`` prefix). A key whose name holds a dot is given to the
    CLI as a JSON list (``--path '["a.b", "c"]'``).

    Keys resolve as: an explicit :class:`Keyring`, then ``CFGCORE_SECRET_KEYS``
    (comma-separated), then the file named by ``CFGCORE_SECRET_KEY_FILE`` (one key a
    line, ``#`` comments). A key is ``[<id>:]<urlsafe base64 of 32 bytes>`` (what
    ``cfgcore secrets keygen`` prints); without an id, the id is the first 8 hex digits
    of its SHA-256. The FIRST key is the newest: it encrypts, the others only decrypt.

Secret files
    ``${file:/run/secrets/db_password}`` is replaced by the file's text (one trailing
    newline removed). Only files inside the allowed directories
    (``CFGCORE_SECRET_DIRS``, ``os.pathsep``-separated; default ``/run/secrets`` and
    ``/var/run/secrets``) are read: ``..`` segments are refused and symlinks must
    resolve inside an allowed directory too. The resolved file is opened from its
    allowed directory one component at a time, refusing symlinks, so nothing swapped
    in after the check leads outside; only a regular file of at most 1 MiB is read.

Masking
    Every resolved secret (decrypted values, secret files, values of secret-named or
    listed environment variables) is remembered in a process-wide registry (any number
    of them, within a memory budget), as plain text and as ``repr()`` and JSON spell it
    inside a longer string (a PEM's newlines as ``\\n``);
    :func:`cfgcore.runtime.redaction.redact`, reprs of configuration objects and the
    ``cfgcore`` loggers mask any string containing one, wherever the key name is.
    Decrypted values and file secrets are also :class:`Secret` strings, whose ``repr``
    is masked.

The ``cryptography`` package is needed only for ``ENC[...]`` values
(``pip install 'cfgcore[secrets]'``).
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import json
import logging
import os
import re
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cfgcore import errors as _errors
from cfgcore._encoding import decode_text
from cfgcore.errors import ConfigError, Problem, format_key_path, rendered_key_path
from cfgcore.runtime.forks import after_fork_in_child

__all__ = [
    "MASK",
    "Keyring",
    "Secret",
    "SecretKey",
    "allowed_secret_dirs",
    "decrypt_value",
    "encrypt_value",
    "generate_key",
    "is_bound",
    "is_envelope",
    "is_secret_variable",
    "key_path",
    "mask_text",
    "register_secret",
    "resolve_tree",
]

MASK = "***"
MIN_MASK_LENGTH = 4  # shorter secrets are masked only as whole values (else "a" masks all)
_REGISTRY_BUDGET = 256 << 20  # see the registry below
_ENTRY_COST = 256  # what one remembered secret costs besides its characters, about
_PINNED = 1024  # the first secrets registered are never forgotten (see register_secret)
_REGEX_SPELLINGS = 32  # up to this many spellings, masking uses one alternation (faster)

ENVELOPE = re.compile(r"^ENC\[(?:(?P<scheme>fernet|aesgcm):)?(?P<body>[^\]\s]+)\]$")
# Version 2: bound to its key path. Matched first (ENVELOPE reads it as a fernet body).
ENVELOPE_V2 = re.compile(r"^ENC\[v2:(?P<scheme>fernet|aesgcm):(?P<body>[^\]\s]+)\]$")
FILE_REF = re.compile(r"\$\{file:(?P<path>[^}]+)\}")
_AAD_PREFIX = b"cfgcore-enc-v1:"
_V2_LABEL = b"cfgcore-enc-v2\x00"
_TRUTHY = {"1", "true", "yes", "on"}
_DEFAULT_DIRS = ("/run/secrets", "/var/run/secrets")
_MAX_FILE = 1 << 20

log = logging.getLogger("cfgcore.secrets")


class Secret(str):
    """A secret string: the value itself for the application, ``'***'`` in reprs.

    ``json.dumps`` and ``yaml.safe_dump`` write the plaintext; msgspec encoders need
    ``enc_hook=str`` (msgspec refuses str subclasses).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)

    def __reduce__(self) -> Any:
        return (Secret, (str(self),))


def _yaml_support() -> None:
    # yaml.safe_dump refuses str subclasses; a dumped config holds the plaintext, as
    # json.dumps does (dumping is the application reading its own configuration).
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a dependency
        return
    for dumper in (yaml.SafeDumper, yaml.Dumper):
        dumper.add_representer(Secret, lambda d, v: d.represent_str(str(v)))


_yaml_support()


# --------------------------------------------------------------------------- registry
#
# Every resolved secret is kept, whatever their number, up to a memory budget
# (_REGISTRY_BUDGET: characters of its spellings plus _ENTRY_COST each, about a million
# short secrets). Each build registers its secrets again (most recent last), so only
# secrets no build has resolved since a million others were can be forgotten, never
# the first _PINNED, and never those of the current or the previous build. A few
# secrets (up to _REGEX_SPELLINGS spellings) are found by one compiled alternation;
# past that, by an index of each spelling's first MIN_MASK_LENGTH characters, so each
# character of a text costs one look-up whatever the number of secrets (the one
# alternation tried every secret at every character: 0.1 s per 3 KiB message at 4,000
# random secrets), and only the secrets sharing those characters are tried there.

_known: dict[str, tuple[str, ...]] = {}  # secret -> its spellings
# The secrets that may be forgotten (all but the first _PINNED), least recently
# registered first -> the build epoch of their last registration (never decreasing
# along the order: the scan for what to forget stops at the first one still in use).
_lru: OrderedDict[str, int] = OrderedDict()
_epoch = 0  # one more at each build (each Resolver): see new_build_epoch
_known_lock = threading.Lock()
_pattern: re.Pattern[str] | None = None
_pattern_stale = False  # _known changed since _pattern was built
_pinned: set[str] = set()
_forgotten_said = False
_cost = 0  # of the remembered secrets: spelling characters plus _ENTRY_COST each
# spelling -> how many remembered secrets spell it (two secrets can share a spelling)
_spelled: dict[str, int] = {}


class _Bucket:
    """The spellings that start with one MIN_MASK_LENGTH characters: their lengths,
    longest first (a new list on each change: readers iterate it without the lock),
    the spellings of each length, and, for a bucket of many lengths, one alternation
    of them (compiled when first needed after a change)."""

    __slots__ = ("groups", "lengths", "pattern")

    def __init__(self) -> None:
        self.lengths: list[int] = []
        self.groups: dict[int, set[str]] = {}
        self.pattern: re.Pattern[str] | None = None


_index: dict[str, _Bucket] = {}  # first MIN_MASK_LENGTH characters -> their spellings
# Past this many lengths in a bucket, the bucket's alternation finds the longest there:
# it stops at the first character that differs, where a look-up per length hashes a
# slice of each length (a flood sharing its first and last characters cost seconds).
_BUCKET_LENGTHS = 4


def _escaped(text: str, *, quote: bool) -> str:
    # repr() escapes each character on its own (backslash, newline, non-printables);
    # only the single quote depends on the whole string, so both spellings exist.
    out = []
    for ch in text:
        if ch == "'":
            out.append("\\'" if quote else "'")
        elif ch == '"':
            out.append('"')
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


def _spellings(text: str) -> tuple[str, ...]:
    """How ``text`` can appear in a message: as it is, inside ``repr()`` of a string
    that holds it (a PEM's newlines as ``\\n``, a backslash doubled), and inside JSON."""
    if len(text) < MIN_MASK_LENGTH:
        return ()
    forms = dict.fromkeys(
        (
            text,
            _escaped(text, quote=True),
            _escaped(text, quote=False),
            json.dumps(text)[1:-1],
            json.dumps(text, ensure_ascii=False)[1:-1],
        )
    )
    return tuple(forms)


def _cost_of(forms: tuple[str, ...]) -> int:
    return _ENTRY_COST + sum(map(len, forms))


def _index_add(form: str) -> None:
    # Under _known_lock. Readers go without it: they look up, never iterate a set, and
    # a bucket's length list is replaced, not changed in place.
    count = _spelled.get(form, 0)
    _spelled[form] = count + 1
    if count:
        return
    size = len(form)
    bucket = _index.get(form[:MIN_MASK_LENGTH])
    if bucket is None:
        bucket = _index[form[:MIN_MASK_LENGTH]] = _Bucket()
    group = bucket.groups.get(size)
    if group is None:
        bucket.groups[size] = {form}
        bucket.lengths = sorted((*bucket.lengths, size), reverse=True)
    else:
        group.add(form)
    bucket.pattern = None


def _index_remove(form: str) -> None:
    count = _spelled[form] - 1
    if count:
        _spelled[form] = count
        return
    del _spelled[form]
    gram = form[:MIN_MASK_LENGTH]
    bucket = _index[gram]
    bucket.pattern = None
    group = bucket.groups[len(form)]
    group.discard(form)
    if group:
        return
    rest = [n for n in bucket.lengths if n != len(form)]
    if rest:
        bucket.lengths = rest
        del bucket.groups[len(form)]
    else:
        del _index[gram]


def _bucket_pattern(bucket: _Bucket) -> re.Pattern[str]:
    with _known_lock:
        pattern = bucket.pattern
        if pattern is None:
            forms = sorted((f for g in bucket.groups.values() for f in g), key=len, reverse=True)
            pattern = bucket.pattern = re.compile("|".join(map(re.escape, forms)))
        return pattern


def new_build_epoch() -> None:
    """A build (of a configuration or a flag document) begins: the secrets it registers,
    and those of the build before it, are not forgotten whatever the budget says."""
    global _epoch
    with _known_lock:
        _epoch += 1


def register_secret(value: Any) -> None:
    """Remember ``value`` as a secret: every masking surface hides it from now on.

    Any number are remembered within a memory budget (:data:`_REGISTRY_BUDGET`); past
    it the least recently registered are forgotten first (said once, as an error: a
    forgotten secret is no longer masked), except the first :data:`_PINNED` and those
    registered during this build or the one before (:func:`new_build_epoch`). A count
    limit let a flood of secret-named ``CFGCORE__`` overrides (from a ``.env`` file or
    the environment) push out the service's own secrets, which were then shown in
    clear. The masking pattern is rebuilt when next used, not here (rebuilt on each
    of a few thousand registrations it cost minutes of CPU), and only while there
    are few secrets: past that, masking reads an index kept up to date here."""
    global _pattern_stale, _forgotten_said, _cost
    if not isinstance(value, str) or not value:
        return
    text = str(value)
    forgotten = 0
    with _known_lock:
        if text in _known:
            if text in _lru:
                _lru[text] = _epoch
                _lru.move_to_end(text)
            return
        forms = _spellings(text)
        _known[text] = forms
        _cost += _cost_of(forms)
        for form in forms:
            _index_add(form)
        if len(_pinned) < _PINNED:
            _pinned.add(text)
        else:
            _lru[text] = _epoch
        if _cost > _REGISTRY_BUDGET:
            # The least recent first, and never one this build or the one before it
            # registered: a flood inside one build cannot push out a secret of that
            # build (the budget gives way instead; it is in memory anyway).
            excess, victims = _cost - _REGISTRY_BUDGET, []
            for oldest, epoch in _lru.items():
                if excess <= 0 or epoch >= _epoch - 1:
                    break
                victims.append(oldest)
                excess -= _cost_of(_known[oldest])
            for oldest in victims:
                del _lru[oldest]
                gone = _known.pop(oldest)
                _cost -= _cost_of(gone)
                for form in gone:
                    _index_remove(form)
            forgotten = len(victims)
        _pattern_stale = True
        say = forgotten and not _forgotten_said
        if say:
            _forgotten_said = True
    if say:  # outside the lock: the record is masked, and masking takes it
        log.error(
            "the secrets resolved in this process passed the registry's budget (%d MiB): "
            "the least recently resolved (but not the first %d) are forgotten and no "
            "longer masked in messages and logs (a flood of secret-named variables or "
            "CFGCORE__ overrides?)",
            _REGISTRY_BUDGET >> 20,
            _PINNED,
        )
    _install_log_filter()


def _current_pattern() -> re.Pattern[str] | None:
    """The pattern matching every spelling of every remembered secret, longest first
    (rebuilt after registrations, once), or None when there are too many for one."""
    global _pattern, _pattern_stale
    if not _pattern_stale:
        return _pattern
    with _known_lock:
        if _pattern_stale:
            if len(_spelled) > _REGEX_SPELLINGS:
                _pattern = None
            else:
                long = sorted(_spelled, key=len, reverse=True)
                _pattern = re.compile("|".join(map(re.escape, long))) if long else None
            _pattern_stale = False
        return _pattern


def _index_subn(text: str) -> tuple[str, int]:
    """``pattern.subn(MASK, text)`` for the pattern of every spelling, from the index:
    the leftmost match, the longest there, as the alternation finds it."""
    index = _index
    get = index.get
    width = MIN_MASK_LENGTH
    size = len(text)
    out: list[str] = []
    start = i = n = 0
    last = size - width
    while i <= last:
        bucket = get(text[i : i + width])
        found = 0
        if bucket is not None:
            lengths = bucket.lengths
            if len(lengths) > _BUCKET_LENGTHS:
                m = (bucket.pattern or _bucket_pattern(bucket)).match(text, i)
                found = m.end() - i if m is not None else 0
            else:
                groups = bucket.groups
                for length in lengths:
                    if i + length <= size:
                        group = groups.get(length)
                        if group is not None and text[i : i + length] in group:
                            found = length
                            break
        if found:
            out.append(text[start:i])
            out.append(MASK)
            n += 1
            i += found
            start = i
        else:
            i += 1
    if not n:
        return text, 0
    out.append(text[start:])
    return "".join(out), n


def is_resolved_secret(value: str) -> bool:
    """Is ``value`` a :class:`Secret` or exactly a remembered secret?"""
    return isinstance(value, Secret) or value in _known


def mask_text(text: str) -> str:
    """``text`` with every remembered secret in it replaced by ``***``."""
    if isinstance(text, Secret) or (text and text in _known):
        return MASK
    if not text or not _spelled:
        return text
    pattern = _current_pattern()
    subn = _index_subn if pattern is None else (lambda t: pattern.subn(MASK, t))
    # Again while something matches: a mask next to text can spell a secret ("a" + "***").
    for _ in range(8):
        text, n = subn(text)
        if not n:
            return text
    return MASK if subn(text)[1] else text


def forget_secrets() -> None:
    """Clear the registry (tests)."""
    global _pattern, _pattern_stale, _cost
    with _known_lock:
        _known.clear()
        _lru.clear()
        _pinned.clear()
        _spelled.clear()
        _index.clear()
        _cost = 0
        _pattern, _pattern_stale = None, False


@after_fork_in_child
def _after_fork_in_child() -> None:
    """A thread of the parent may have held ``_known_lock`` at the fork (resolving a
    build's secrets): held for good in the child, where the next registration, and
    masking while the pattern is stale, would wait for it forever. Renewed; and when it
    was held, what it guards may be half changed (a secret remembered but not all its
    spellings indexed, so shown in clear), so the index, the cost and the pattern are
    rebuilt from the remembered secrets."""
    global _known_lock, _cost, _pattern, _pattern_stale
    held = _known_lock.locked()
    _known_lock = threading.Lock()
    if not held:
        return
    _spelled.clear()
    _index.clear()
    cost = 0
    for forms in list(_known.values()):
        cost += _cost_of(forms)
        for form in forms:
            _index_add(form)
    _cost, _pattern, _pattern_stale = cost, None, True


def is_secret_variable(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Does the environment variable ``name`` hold a secret? Secret-looking names
    (``KAFKA_SASL_PASSWORD``, ``API_TOKEN``...) and names listed in
    ``CFGCORE_SECRET_VARS`` (comma-separated) do."""
    from cfgcore.runtime.redaction import is_secret_key

    env = os.environ if environ is None else environ
    listed = {v.strip() for v in env.get("CFGCORE_SECRET_VARS", "").split(",") if v.strip()}
    if name in listed:
        return True
    # The shell's working directories: "pwd" is a password's word in a name of words
    # (DB_PWD, MYSQL_PWD), but PWD and OLDPWD are paths every shell sets. Taken for
    # secrets, the directory a service runs in was masked in every log line and value.
    return name.upper() not in _SHELL_VARIABLES and is_secret_key(name.lower())


_SHELL_VARIABLES = frozenset({"PWD", "OLDPWD"})


def note_variable(name: str, value: str | None, environ: Mapping[str, str] | None = None) -> None:
    """Called for every ``${VAR}`` substituted: remember the value of a secret variable,
    and of one whose name may hold a secret though validation does not call it one
    (``STRIPE_KEY``, ``SENTRY_DSN``: :func:`~cfgcore.runtime.redaction.may_hold_secret`),
    so that masking stays as broad as redaction's."""
    if not value:
        return
    if is_secret_variable(name, environ):
        register_secret(value)
        return
    from cfgcore.runtime.redaction import may_hold_secret

    if may_hold_secret(name.lower()):
        register_secret(value)


class _MaskFilter(logging.Filter):
    """Masks remembered secrets, and the passwords and tokens of URLs (see
    :func:`cfgcore.runtime.redaction.redact_text`), in the text of every record of a
    ``cfgcore`` logger: the message, the traceback (``exc_info``) and ``stack_info``."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        made = getattr(_made, "record", None)
        if made is None or made() is not record:
            _mask_record(record)
        # else the record factory masked it when it was made, a moment ago on this
        # thread: masking it again formatted its message and traceback once more.
        return True

    def mask(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            message = None
        if message is not None:
            masked = _mask_messages(message)
            if masked != message:
                record.msg, record.args = masked, ()
        if not _known and not record.exc_info and "://" not in (record.exc_text or ""):
            return  # nothing registered, no traceback: only URLs could show
        if record.exc_info and record.exc_info[0] is not None:
            # Formatters print exc_text when it is set and exc_info is gone. Only a
            # traceback that showed a secret loses its exc_info (a handler reading the
            # exception object itself could print the secret from its arguments).
            try:
                text = record.exc_text or self._formatter.formatException(record.exc_info)
            except Exception:
                text = "(the traceback could not be formatted)"
            masked = _mask_messages(text)
            if masked != text:
                record.exc_info, record.exc_text = None, masked
        elif record.exc_text:
            record.exc_text = _mask_messages(record.exc_text)
        if record.stack_info:
            record.stack_info = _mask_messages(record.stack_info)


_FILTER = _MaskFilter()
_mask_record = _FILTER.mask
# The last cfgcore record the factory made (and masked) on each thread, weakly: the
# logger filter it then meets skips it, so a logged exception's traceback is formatted
# once for masking, not twice (a record made otherwise, by logging.makeLogRecord or
# another factory, is still masked by the filter).
_made = threading.local()


def _mask_messages(text: str) -> str:
    """Log and error text with its secrets masked: the remembered ones, and in any URL
    its password, secret query parameters and webhook tokens (an error quoting a
    webhook or a ``redis://user:pass@`` URL masks them even with no secret resolved)."""
    from cfgcore.runtime.redaction import mask_auth_credentials, redact_text  # it imports us

    if "://" in text:
        return redact_text(text)
    # An Authorization header quoted in an error ("sent Bearer <token>": 401).
    text = mask_auth_credentials(text)
    return mask_text(text) if _known else text


_errors.mask = _mask_messages  # ConfigError messages mask resolved secrets


_factory_installed = False


def _install_log_filter() -> None:
    # Logger filters see only records made on that logger, so every cfgcore logger gets it.
    loggers = [logging.getLogger("cfgcore")] + [
        obj
        for name, obj in list(logging.root.manager.loggerDict.items())
        if name.startswith("cfgcore.") and isinstance(obj, logging.Logger)
    ]
    for logger in loggers:
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    _install_record_factory()


def _install_record_factory() -> None:
    # A cfgcore logger made after the last secret was registered has no filter (the CLI's
    # "cfgcore.cli" traceback at -vv, "cfgcore.hooks" on the first hook): the record
    # factory masks every cfgcore record when it is made. It wraps the factory in place,
    # so another library's factory keeps working; one that replaces ours later leaves
    # the logger filters.
    global _factory_installed
    with _known_lock:
        if _factory_installed:
            return
        _factory_installed = True
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            name = record.name
            # logging.makeLogRecord makes its record with name None, then names it.
            if isinstance(name, str) and (name == "cfgcore" or name.startswith("cfgcore.")):
                _mask_record(record)
                _made.record = weakref.ref(record)
            return record

        logging.setLogRecordFactory(factory)


# URLs' passwords and tokens are masked in cfgcore's log records from the start, not
# only once a first secret is resolved: a process that resolves none (a Redis URL with
# its password in CFGCORE_FLAG_STORE, a webhook in an alert) logged them in clear.
_install_log_filter()


# --------------------------------------------------------------------------- keys


def _crypto() -> Any:
    try:
        from cryptography import fernet
        from cryptography.hazmat.primitives.ciphers import aead
    except ImportError:  # pragma: no cover - the extra is installed in CI
        raise ConfigError(
            "ENC[...] values need the cryptography package: pip install 'cfgcore[secrets]'"
        ) from None
    return fernet, aead


_KEY_ID = re.compile(r"[A-Za-z0-9_.\-]+")
_SHOWN_ID_LENGTH = 24  # 32 bytes of base64 are 43+ characters: an id this short is no key


def safe_key_id(kid: str) -> str:
    """``kid`` if it may be shown in a message (a well-formed id of at most 24
    characters), else ``""``: text that is not an id may be key material."""
    return kid if len(kid) <= _SHOWN_ID_LENGTH and _KEY_ID.fullmatch(kid) else ""


@dataclass(frozen=True)
class SecretKey:
    """One 32-byte key and its id."""

    kid: str
    raw: bytes

    @classmethod
    def parse(cls, text: str) -> SecretKey:
        """``[<id>:]<urlsafe base64 of 32 bytes>``; ValueError if not.

        The error never shows key material: a mistyped list separator or a trailing
        comment puts other keys before the last ``:``, so what precedes it is shown only
        when it is a short, well-formed id (:func:`safe_key_id`).
        """
        text = text.strip()
        kid, sep, material = text.rpartition(":")
        if not sep:
            kid, material = "", text
        try:
            raw = base64.urlsafe_b64decode(material.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raw = b""
        if kid and not _KEY_ID.fullmatch(kid):
            raise ValueError(
                "the key id (the text before the last ':') may hold only letters, digits, "
                "'_', '.' and '-' (separate keys with ',' or whitespace, and put '#' "
                "comments on lines of their own)"
            )
        if len(raw) != 32:
            shown = safe_key_id(kid)
            raise ValueError(
                f"{f'key {shown!r}' if shown else 'the key'} is not urlsafe base64 of 32 bytes "
                "(make one with `cfgcore secrets keygen`)"
            )
        return cls(kid or hashlib.sha256(raw).hexdigest()[:8], raw)

    def encoded(self) -> str:
        """``<id>:<base64>``, the form the keyring reads."""
        return f"{self.kid}:{base64.urlsafe_b64encode(self.raw).decode()}"

    def aes_key(self) -> bytes:
        """The AES-256-GCM key derived from this key."""
        # Separate keys per algorithm from one secret: HKDF with a fixed label.
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"cfgcore aesgcm").derive(
            self.raw
        )

    def fernet_key(self) -> bytes:
        """This key in Fernet's encoding."""
        return base64.urlsafe_b64encode(self.raw)

    def __repr__(self) -> str:
        return f"SecretKey(kid={self.kid!r}, raw=***)"


def generate_key(kid: str | None = None) -> str:
    """A new random key in the ``<id>:<base64>`` form the keyring reads."""
    if kid and not _KEY_ID.fullmatch(kid):
        raise ValueError(f"key id {kid!r}: use letters, digits, '_', '.', '-'")
    key = SecretKey.parse(base64.urlsafe_b64encode(os.urandom(32)).decode())
    if kid:
        key = SecretKey.parse(f"{kid}:{key.encoded().split(':', 1)[1]}")
    return key.encoded()


class Keyring:
    """Ordered keys, newest first: the first encrypts, all decrypt.

    A key that does not parse is a :class:`ConfigError` naming its position ("key 2 of
    CFGCORE_SECRET_KEYS", "line 3" of a key file), never its text.
    """

    def __init__(self, keys: Iterable[SecretKey | str] = (), *, origin: str = "keys") -> None:
        parsed: list[SecretKey] = []
        for n, k in enumerate(keys, 1):
            try:
                parsed.append(k if isinstance(k, SecretKey) else SecretKey.parse(k))
            except ValueError as exc:
                raise ConfigError(f"key {n} of {origin}: {exc}") from None
        self.keys = tuple(parsed)
        self.origin = origin
        self._fernet: Any = None

    def __bool__(self) -> bool:
        return bool(self.keys)

    def __repr__(self) -> str:
        return f"Keyring({[k.kid for k in self.keys]!r}, origin={self.origin!r})"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Keyring:
        """``CFGCORE_SECRET_KEYS``, else ``CFGCORE_SECRET_KEY_FILE``, else an empty ring."""
        env = os.environ if environ is None else environ
        inline = env.get("CFGCORE_SECRET_KEYS", "").strip()
        if inline:
            return cls([k for k in re.split(r"[,\s]+", inline) if k], origin="CFGCORE_SECRET_KEYS")
        path = env.get("CFGCORE_SECRET_KEY_FILE", "").strip()
        if path:
            return cls.from_file(path)
        return cls()

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Keyring:
        """Keys of a key file: one a line, newest first, ``#`` comments."""
        from cfgcore.runtime.atomicio import read_regular

        _refuse_writable_by_all(os.fspath(path))
        _warn_readable_by_all(os.fspath(path))
        try:
            raw = read_regular(path, _MAX_FILE)
        except OSError as exc:
            raise ConfigError(
                f"cannot read key file: {exc.strerror or exc}", file=str(path)
            ) from None
        text = decode_text(raw, str(path), "key file: ", secret=True)
        keys: list[SecretKey] = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                keys.append(SecretKey.parse(line))
            except ValueError as exc:
                problem = Problem(path="", message=str(exc), file=str(path), line=n)
                raise ConfigError([problem]) from None
        return cls(keys, origin=str(path))

    def by_id(self, kid: str) -> SecretKey | None:
        """The key with id ``kid``, or None."""
        return next((k for k in self.keys if k.kid == kid), None)

    def fernet(self) -> Any:
        """A ``MultiFernet`` over every key (the first encrypts)."""
        if self._fernet is None:
            fernet, _ = _crypto()
            self._fernet = fernet.MultiFernet([fernet.Fernet(k.fernet_key()) for k in self.keys])
        return self._fernet


def _warn_readable_by_all(path: str) -> None:
    """A key file every local user can read gives each of them every key: said (not
    refused: a mounted secret is often 0644 in a container only the service runs in),
    as ssh says of a private key."""
    if os.name == "nt":  # pragma: no cover - no POSIX permission bits
        return
    import stat

    try:
        st = os.stat(path)
    except OSError:
        return  # reading it says why
    if st.st_mode & stat.S_IROTH:
        log.warning(
            "key file %s is readable by every user (mode %04o): anyone on this host can "
            "decrypt every value encrypted with its keys, or sign audit entries with them "
            "(chmod o-r)",
            path,
            stat.S_IMODE(st.st_mode),
        )


def _refuse_writable_by_all(path: str) -> None:
    """A key file any local user can rewrite lets them put their own key first: every
    value encrypted or re-encrypted (``cfgcore secrets rotate``) from then on is theirs
    to read. Refused, like a world-writable directory without the sticky bit above it
    (anyone may replace the file), and another user's file in a directory every user
    may create files in (anyone could have been first to make it)."""
    if os.name == "nt":  # pragma: no cover - no POSIX permission bits
        return

    try:
        st = os.stat(path)
    except OSError:
        return  # reading it says why
    # (every directory above it too, not only its own: see replaceable_by_all)
    from cfgcore.runtime.atomicio import rewritable_by_all, trust_fix

    why = rewritable_by_all(path, st)
    if why:
        raise ConfigError(
            f"key file refused: {why}, and whoever can put a key first reads every value "
            f"encrypted from then on ({trust_fix(why)})",
            file=path,
        )


def is_envelope(value: Any) -> bool:
    """Is ``value`` written ``ENC[...]``?"""
    return isinstance(value, str) and value.startswith("ENC[") and value.endswith("]")


KeyPath = str | Iterable[Any]


def key_path(path: KeyPath) -> tuple[str, ...]:
    """A key path as a tuple of names: ``"db.password"`` (dotted), a JSON list
    (``'["a.b", "c"]'``, for a name holding a dot) or a sequence of names (list
    indexes as their digits). ValueError for an empty path or a bad JSON list."""
    if isinstance(path, str):
        text = path.strip()
        # as messages show it, 'loggers["uvicorn.access"].token', read as the configuration
        # reads it (config.tree.split_path); a JSON list of one name reads the same
        rendered = rendered_key_path(text) if '["' in text else None
        if rendered is not None:
            out = rendered
        elif text.startswith("["):
            try:
                parts = json.loads(text)
            except ValueError:
                raise ValueError(f"key path {path!r}: not a JSON list of names") from None
            if not isinstance(parts, list) or not all(isinstance(p, str | int) for p in parts):
                raise ValueError(f"key path {path!r}: not a JSON list of names")
            out = tuple(str(p) for p in parts)
        else:
            out = tuple(text.split(".")) if text else ()
    else:
        out = tuple(str(p) for p in path)
    if not out or any(p == "" for p in out):
        raise ValueError(f"key path {path!r}: empty, or an empty name in it")
    return out


def _path_bytes(path: KeyPath) -> bytes:
    # Canonical and unambiguous (a name holding a dot is not two names).
    return json.dumps(list(key_path(path)), ensure_ascii=True, separators=(",", ":")).encode()


def _shown(path: KeyPath) -> str:
    # For messages only, as every key path cfgcore shows (a name holding a dot quoted:
    # ``loggers["uvicorn.access"].token``). What a v2 envelope is bound to is
    # _path_bytes (a JSON list of the names), a persisted format this does not touch.
    return format_key_path(key_path(path))


def is_bound(value: Any) -> bool:
    """Is ``value`` an envelope bound to its key path (``ENC[v2:...]``)?"""
    return isinstance(value, str) and ENVELOPE_V2.match(value) is not None


def encrypt_value(
    plaintext: str, keyring: Keyring, *, scheme: str = "fernet", path: KeyPath | None = None
) -> str:
    """``ENC[...]`` of ``plaintext`` with the newest key (``scheme``: fernet or aesgcm).

    With ``path`` (the key path the value is for), a version-2 envelope bound to it:
    it decrypts only there. Without, an unbound version-1 envelope (as before)."""
    if scheme not in ("fernet", "aesgcm"):
        raise ValueError(f"unknown scheme {scheme!r} (fernet or aesgcm)")
    if not keyring:
        raise ConfigError("no encryption key: set CFGCORE_SECRET_KEYS or CFGCORE_SECRET_KEY_FILE")
    try:
        data = plaintext.encode("utf-8")
    except UnicodeEncodeError:
        # (Python's own error named the codec and "surrogates not allowed", not the value)
        raise ValueError(
            "the value to encrypt is not UTF-8 text (it holds a lone surrogate, as bytes "
            "that are no UTF-8 read with surrogateescape do): ENC[...] values hold text; "
            "encode binary data first (base64)"
        ) from None
    bound = _path_bytes(path) if path is not None else None
    version = "v2:" if bound is not None else ""
    if scheme == "fernet":
        if bound is not None:  # Fernet has no associated data: the path is inside the token
            data = _V2_LABEL + bound + b"\n" + data
        token = keyring.fernet().encrypt(data).decode("ascii")
        return f"ENC[{version}fernet:{token}]"
    _, aead = _crypto()
    key = keyring.keys[0]
    nonce = os.urandom(12)
    ct = aead.AESGCM(key.aes_key()).encrypt(nonce, data, _aad(key.kid, bound))
    body = base64.urlsafe_b64encode(nonce + ct).decode("ascii").rstrip("=")
    return f"ENC[{version}aesgcm:{key.kid}:{body}]"


def _aad(kid: str, bound: bytes | None) -> bytes:
    if bound is None:
        return _AAD_PREFIX + kid.encode()
    return _V2_LABEL + kid.encode() + b"\x00" + bound


def envelope_scheme(value: str) -> str:
    """``fernet`` or ``aesgcm`` for an envelope, ``""`` for anything else."""
    m = ENVELOPE_V2.match(value) or ENVELOPE.match(value)
    return (m["scheme"] or "fernet") if m else ""


def decrypt_value(value: str, keyring: Keyring, *, path: KeyPath | None = None) -> str:
    """The plaintext of an ``ENC[...]`` value; ValueError saying why not (no secret text).

    A bound (``ENC[v2:...]``) value needs the key path it is found at (``path``) and
    decrypts only if it was encrypted for that path. An unbound value decrypts anywhere
    (``path`` is not checked: see :func:`is_bound`)."""
    m2 = ENVELOPE_V2.match(value)
    m = m2 or ENVELOPE.match(value)
    if m is None:
        raise ValueError(
            "malformed ENC[...] value (expected ENC[fernet:...] or ENC[aesgcm:id:...])"
        )
    if m2 is not None and path is None:
        raise ValueError(
            "this ENC[v2:...] value is bound to the key path it was encrypted for: "
            "decrypt it at that path (cfgcore secrets decrypt --path KEY.PATH)"
        )
    bound = _path_bytes(path) if m2 is not None and path is not None else None
    if not keyring:
        raise ValueError(
            "encrypted value but no keys: set CFGCORE_SECRET_KEYS or CFGCORE_SECRET_KEY_FILE"
        )
    scheme, body = m["scheme"] or "fernet", m["body"]
    if m["scheme"] is None and ":" in body:
        # A Fernet token is base64url and holds no ':': this names a scheme (or a
        # format version) cfgcore does not know (ENC[none:...], ENC[v2:xchacha:...],
        # ENC[v3:...]). Said so, not "no key decrypts this value", which sent the
        # reader looking for a key.
        named = body.split(":", 2)
        name = ":".join(named[:2]) if named[0] == "v2" and len(named) > 1 else named[0]
        forms = "cfgcore reads ENC[fernet:...], ENC[aesgcm:ID:...] and their ENC[v2:...] forms"
        if name.removeprefix("v2:") in ("fernet", "aesgcm"):
            raise ValueError(f"malformed ENC[{name}:...] value, its data missing ({forms})")
        shown = repr(name) if all(map(safe_key_id, name.split(":"))) else "(text that is no scheme)"
        raise ValueError(f"unknown encryption scheme {shown} ({forms}); refused")
    fernet, aead = _crypto()
    if scheme == "fernet":
        token = _b64url_exact(body)
        if token is None:
            raise ValueError(_NOT_B64URL.format(form="ENC[fernet:...]"))
        try:
            # (the token as Fernet writes it, padded, whichever spelling was given)
            data = keyring.fernet().decrypt(base64.urlsafe_b64encode(token))
        except (fernet.InvalidToken, UnicodeError):
            raise ValueError(
                f"no key of {keyring.origin} decrypts this value (wrong key, or the key "
                "it was encrypted with was removed from the ring)"
            ) from None
        if bound is not None:
            label = _V2_LABEL + bound + b"\n"
            if not data.startswith(label):
                raise ValueError("this value was " + _moved(path))
            data = data[len(label) :]
        elif data.startswith(_V2_LABEL):
            # A bound token relabelled ENC[fernet:...] to skip the path check (AES-GCM
            # needs no such check: the version is in its associated data).
            raise ValueError(
                "a bound ENC[v2:...] token written as an unbound ENC[fernet:...] value "
                "(moved from another key and relabelled, or tampered); refused"
            )
        try:
            return data.decode("utf-8")
        except UnicodeError:
            raise ValueError(f"no key of {keyring.origin} decrypts this value") from None
    kid, sep, blob = body.partition(":")
    if not sep:
        raise ValueError("malformed ENC[aesgcm:...] value (expected ENC[aesgcm:<key id>:<data>])")
    # Every key with that id: `keygen --id prod` run twice gives two "prod" keys, and a
    # value made with the older must still load (and rotate) once the newer is first.
    candidates = [k for k in keyring.keys if k.kid == kid]
    if not candidates:
        # The id is the envelope's text: shown only when it is one (not a pasted key,
        # not megabytes of it).
        shown = repr(safe_key_id(kid)) if safe_key_id(kid) else "(text that is no key id)"
        raise ValueError(
            f"encrypted with key id {shown}, which {keyring.origin} does not hold "
            f"(it holds {', '.join(k.kid for k in keyring.keys)})"
        )
    from cryptography.exceptions import InvalidTag

    raw = _b64url_exact(blob)
    if raw is None:
        raise ValueError(_NOT_B64URL.format(form="ENC[aesgcm:ID:...]"))
    for key in candidates:
        try:
            plain = aead.AESGCM(key.aes_key()).decrypt(raw[:12], raw[12:], _aad(kid, bound))
            return plain.decode("utf-8")
        except (ValueError, UnicodeError, InvalidTag):
            continue
    if bound is not None:
        raise ValueError(f"key {kid!r} does not decrypt this value: it was " + _moved(path))
    raise ValueError(f"key {kid!r} does not decrypt this value (tampered or wrong key)")


_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_NOT_B64URL = (
    "malformed {form} value: its data is not base64url as cfgcore writes it (a character "
    "other than A-Z, a-z, 0-9, '-' and '_', '=' padding of the wrong length, or a last "
    "character changed); refused"
)


def _b64url_exact(text: str) -> bytes | None:
    """The bytes ``text`` encodes when it is base64url exactly as an encoder writes it
    (padded or not), else None. Python's decoder skips characters outside the alphabet,
    reads '+' and '/' as '-' and '_' and ignores a last character's unused bits, so one
    envelope had many spellings that all decrypted: only the written one is read (as
    fleet signatures are)."""
    if not _B64URL.fullmatch(text):
        return None
    bare = text.rstrip("=")
    if text != bare and text != bare + "=" * (-len(bare) % 4):
        return None
    try:
        raw = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if base64.urlsafe_b64encode(raw).decode().rstrip("=") == bare else None


def _moved(path: KeyPath | None) -> str:
    return (
        f"not encrypted for key path {_shown(path or ())!r} (moved or copied from another "
        "key, tampered, or the wrong key); refused"
    )


# --------------------------------------------------------------------------- secret files


def allowed_secret_dirs(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The directories ``${file:...}`` may read from: ``CFGCORE_SECRET_DIRS``, else
    :data:`_DEFAULT_DIRS`. A setting that opens a system directory (``/``, ``/etc``,
    a home directory...) is logged as a warning, once per value."""
    env = os.environ if environ is None else environ
    raw = env.get("CFGCORE_SECRET_DIRS")
    dirs = [d for d in raw.split(os.pathsep) if d] if raw is not None else list(_DEFAULT_DIRS)
    allowed = tuple(dict.fromkeys(os.path.realpath(d) for d in dirs))  # /var/run is /run
    if raw is not None and raw not in _DIRS_SAID:
        _DIRS_SAID.add(raw)
        system = (*_SYSTEM_DIRS, os.path.realpath(os.path.expanduser("~")))
        wide = [d for d in allowed if any(_inside(s, d) for s in system)]
        if wide:
            log.warning(
                "CFGCORE_SECRET_DIRS=%r lets ${file:...} references read any file under %s "
                "(a configuration value, or a CFGCORE__ environment override, can then "
                "copy one into a key)",
                raw,
                ", ".join(wide),
            )
    return allowed


# Directories no secrets-only directory is, or contains: CFGCORE_SECRET_DIRS naming one
# of them (or a parent), or the home directory, is said.
_SYSTEM_DIRS = ("/", "/etc", "/root", "/home", "/proc", "/sys", "/dev", "/usr", "/var", "/boot")
_DIRS_SAID: set[str] = set()


def read_secret_file(path: str, allowed: Iterable[str]) -> str:
    """The text of the secret file ``path`` (confined to ``allowed``); ValueError if not.

    The path is resolved (symlinks followed) and must lie inside an allowed directory;
    the file is then opened from that directory one component at a time, refusing any
    symlink, so a directory swapped for a symlink between the check and the open cannot
    lead outside. Only a regular file of at most 1 MiB is read (a FIFO would block).
    """
    if not os.path.isabs(path):
        raise ValueError(f"secret file {path!r}: the path must be absolute")
    if ".." in path.replace("\\", "/").split("/"):
        raise ValueError(f"secret file {path!r}: '..' is not allowed")
    try:
        real = os.path.realpath(path)
    except OSError:  # a link removed while it was resolved (realpath is not strict)
        raise ValueError(f"secret file {path!r} changed while it was resolved") from None
    allowed = tuple(allowed)
    base = next((d for d in allowed if _inside(real, d)), None)
    if base is None:
        raise ValueError(
            f"secret file {path!r} is outside the allowed directories "
            f"({', '.join(allowed) or 'none'}; set CFGCORE_SECRET_DIRS)"
        )
    from cfgcore.runtime.atomicio import read_regular_fd

    try:
        fd = _open_confined(real, base)
        try:
            raw = read_regular_fd(fd, _MAX_FILE)
        finally:
            os.close(fd)
    except OSError as exc:
        why = {
            errno.ELOOP: "the file was replaced by a symlink after the check",
            errno.ENOTDIR: "a directory on its path is not one, or was replaced by a "
            "symlink after the check",
            errno.EXDEV: "it changed while it was opened",
        }.get(exc.errno or 0)
        if why:
            raise ValueError(f"secret file {path!r}: {why}; refused") from None
        raise ValueError(f"secret file {path!r}: {exc.strerror or exc}") from None
    try:
        # (a byte-order mark is no part of the secret; no line nor byte is named)
        text = decode_text(raw, path, secret=True)
    except ConfigError as exc:
        raise ValueError(f"secret file {path!r}: {exc.problems[0].message}") from None
    return text[:-1] if text.endswith("\n") else text


def _inside(real: str, directory: str) -> bool:
    return real == directory or real.startswith(directory.rstrip(os.sep) + os.sep)


_FILE_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO's open would block until a writer came
    | getattr(os, "O_NOCTTY", 0)  # nor may a terminal become the controlling one
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
# O_PATH: walking a directory needs only search permission, as a path lookup does.
_DIR_FLAGS = (
    getattr(os, "O_PATH", os.O_RDONLY)
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_WALK = os.open in os.supports_dir_fd and hasattr(os, "O_NOFOLLOW") and hasattr(os, "O_DIRECTORY")


def _open_confined(real: str, base: str) -> int:
    """A descriptor of ``real`` (a resolved path inside the allowed directory ``base``)
    that is certainly inside ``base``: each component is opened relative to the one
    before with ``O_NOFOLLOW`` (ELOOP or ENOTDIR if one became a symlink)."""
    if not _WALK:  # pragma: no cover - Windows: no dir_fd; check what was opened instead
        fd = os.open(real, _FILE_FLAGS)
        try:
            now, opened = os.path.realpath(real), os.fstat(fd)
            there = os.stat(now)
            if now != real or (opened.st_dev, opened.st_ino) != (there.st_dev, there.st_ino):
                raise OSError(errno.EXDEV, "changed while it was opened")
        except BaseException:
            os.close(fd)
            raise
        return fd
    parts = [p for p in os.path.relpath(real, base).split(os.sep) if p != "."]
    if not parts:
        return os.open(base, _FILE_FLAGS)  # the directory itself: refused as not a file
    current = os.open(base, _DIR_FLAGS)
    try:
        for name in parts[:-1]:
            step = os.open(name, _DIR_FLAGS, dir_fd=current)
            os.close(current)
            current = step
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=current)
    finally:
        os.close(current)


# --------------------------------------------------------------------------- trees


class Resolver:
    """Resolves ``ENC[...]`` and ``${file:...}`` in trees, collecting problems."""

    def __init__(
        self,
        keyring: Keyring | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        require_bound: bool | None = None,
    ) -> None:
        self.environ = environ
        self._keyring = keyring
        new_build_epoch()  # one Resolver per build
        if require_bound is None:
            env = os.environ if environ is None else environ
            flag = env.get("CFGCORE_SECRET_REQUIRE_BOUND", "").strip().lower()
            require_bound = flag in _TRUTHY
        self.require_bound = require_bound
        # The secret files ``${file:...}`` references read, as written in them, with a
        # digest of what each held: the configuration builder watches and compares them
        # like its other inputs, so a rotated secret goes live on the next reload.
        self.files: dict[str, bytes] = {}
        # Secret files the live version read non-empty: one of them empty now is refused
        # (SecretFileEmptied), as a configuration file that was emptied is. Set by the
        # builder on a reload; a start, or load_environment_config, accepts any content.
        self.keep_filled: frozenset[str] = frozenset()

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            self._keyring = Keyring.from_environ(self.environ)
        return self._keyring

    def value(self, text: str, path: KeyPath | None = None) -> str:
        """Resolve one string found at key path ``path`` (ValueError on failure).

        A bound envelope decrypts only at the path it was made for; with
        ``require_bound`` (``CFGCORE_SECRET_REQUIRE_BOUND=1``) an unbound one is refused."""
        if is_envelope(text):
            if self.require_bound and not is_bound(text):
                raise ValueError(
                    "unbound ENC[...] value refused (CFGCORE_SECRET_REQUIRE_BOUND is set): "
                    "it could have been moved here from another key; re-encrypt it bound "
                    "to this key path (`cfgcore secrets rotate --bind DIR`, or `cfgcore "
                    "secrets encrypt --path KEY.PATH`)"
                )
            plain = Secret(decrypt_value(text, self.keyring, path=path))
            register_secret(plain)
            return plain
        if "${file:" in text:
            allowed = allowed_secret_dirs(self.environ)
            parts: list[str] = []

            def repl(m: re.Match[str]) -> str:
                where = m["path"].strip()
                self.files.setdefault(where, b"")  # tried, even if it cannot be read
                content = read_secret_file(where, allowed)
                if not content and where in self.keep_filled:
                    # Rewritten in place (truncated, not written yet) and read in
                    # between: serving that would log everyone out with an empty
                    # password. Recorded as tried, so the rewrite is a change to see.
                    raise SecretFileEmptied(
                        f"secret file {where!r} is empty (a write in progress?); keeping "
                        "the previous configuration (to empty it on purpose, call "
                        "load_environment_config)"
                    )
                self.files[where] = secret_digest(content)
                register_secret(content)
                parts.append(content)
                return content

            out = FILE_REF.sub(repl, text)
            return Secret(out) if parts else out
        return text


class SecretFileEmptied(ValueError):
    """A secret file that held a value when the live version read it is empty now."""


def secret_digest(content: str) -> bytes:
    """What a secret file held, as a digest to compare (never the text itself)."""
    return hashlib.blake2b(content.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def needs_resolving(text: str) -> bool:
    """Does ``text`` hold an envelope or a ``${file:...}`` reference?"""
    return is_envelope(text) or "${file:" in text


def resolve_tree(
    tree: Any,
    resolver: Resolver,
    *,
    file: str | None = None,
    prefix: tuple[Any, ...] = (),
) -> tuple[Any, dict[tuple[Any, ...], str]]:
    """``(tree with secrets resolved, {path: original text})``.

    All or nothing: every value that cannot be resolved is reported (file and key path)
    in one :class:`ConfigError`, and no resolved tree is returned.
    """
    refs: dict[tuple[Any, ...], str] = {}
    problems: list[Problem] = []

    def walk(node: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(node, dict):
            return {k: walk(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list | tuple):
            return [walk(v, (*path, str(i))) for i, v in enumerate(node)]
        if isinstance(node, str) and needs_resolving(node):
            try:
                out = resolver.value(node, path)
            except ValueError as exc:
                # An emptied secret file is an input caught mid-write, as an emptied
                # configuration file is: its reason class says so.
                kind = "incomplete" if isinstance(exc, SecretFileEmptied) else ""
                where = format_key_path(path)
                problems.append(Problem(path=where, message=str(exc), file=file, kind=kind))
                return node
            except ConfigError as exc:  # cryptography missing, a bad key or key file
                # A key file's problem keeps its file and line: it is not the config file's.
                first = exc.problems[0] if exc.problems else None
                if first is None:
                    message = str(exc)
                else:
                    message = str(first) if first.file else first.message
                problems.append(Problem(path=format_key_path(path), message=message, file=file))
                return node
            refs[path] = node
            return out
        return node

    out = walk(tree, prefix)
    if problems:
        raise ConfigError(problems, kind="secrets")
    return out, refs


def has_secrets(tree: Any) -> bool:
    """Does any string of ``tree`` need resolving? (Most trees: no, and nothing is copied.)"""
    if isinstance(tree, dict):
        return any(has_secrets(v) for v in tree.values())
    if isinstance(tree, list | tuple):
        return any(has_secrets(v) for v in tree)
    return isinstance(tree, str) and needs_resolving(tree)


def decrypt_snapshot(
    snapshot: Any, origin: str | None = None, resolver: Resolver | None = None
) -> Any:
    """``snapshot`` (a flag :class:`~cfgcore.snapshot.Snapshot`) with ``ENC[...]`` and
    ``${file:...}`` in variant payloads resolved, for compiling only: the stored document
    keeps its envelopes. All or nothing: a :class:`ConfigError` names every flag and
    variant that cannot be resolved."""
    if not any(f.variants and has_secrets(f.variants) for f in snapshot.flags.values()):
        return snapshot
    import msgspec

    resolver = resolver or Resolver()
    flags = dict(snapshot.flags)
    problems: list[Problem] = []
    for key, flag in snapshot.flags.items():
        if not flag.variants or not has_secrets(flag.variants):
            continue
        try:
            variants, _ = resolve_tree(dict(flag.variants), resolver, file=origin,
                                       prefix=("flags", key, "variants"))  # fmt: skip
        except ConfigError as exc:
            problems += exc.problems
            continue
        # Plain str for the evaluators (hostile-subclass rules); the registry masks them.
        flags[key] = msgspec.structs.replace(flag, variants=_plain(variants))
    if problems:
        raise ConfigError(problems)
    return msgspec.structs.replace(snapshot, flags=flags)


def _plain(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _plain(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_plain(v) for v in tree]
    return str(tree) if isinstance(tree, Secret) else tree
