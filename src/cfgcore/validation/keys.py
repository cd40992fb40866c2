"""Classifying key names and values: secrets, references, encrypted values, URLs.

Shared by the security rules, the schema checker (which must not echo a secret in
a type error) and anyone who needs to redact: :func:`redact_url` hides the password
in ``scheme://user:password@host``.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "is_encrypted_value",
    "is_secret_key",
    "literal_secret_kind",
    "redact_url",
    "url_password",
]

# Exact key names (lower-cased, '-' folded to '_') that hold a secret.
_SECRET_EXACT = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "pass",
        "authorization",
        "secret",
        "token",
        "api_key",
        "apikey",
        "api_secret",
        "api_token",
        "access_token",
        "refresh_token",
        "auth_token",
        "bearer_token",
        "client_secret",
        "private_key",
        "secret_key",
        "access_key",
        "secret_access_key",
        "signing_key",
        "encryption_key",
        "master_key",
        "webhook_secret",
        "credentials",
    }
)
# A key ending in one of these (after an underscore) holds a secret too.
_SECRET_SUFFIXES = tuple(
    "_" + s
    for s in (
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "private_key",
        "secret_key",
        "access_key",
        "signing_key",
        "encryption_key",
        "master_key",
    )
)
# A bare `key` is a secret under these parents (security.encryption.key, jwt.key, ...).
SECRET_KEY_PARENTS = frozenset({"encryption", "signing", "jwt", "crypto", "hmac", "tls", "ssl"})

_cache: dict[Any, bool] = {}


def _norm(key: Any) -> str:
    return (key if type(key) is str else str(key)).lower().replace("-", "_")


def is_secret_key(key: Any) -> bool:
    """True when a key name says its value is a secret (password, api_key, db_token, ...)."""
    hit = _cache.get(key)
    if hit is None:
        name = _norm(key)
        hit = name in _SECRET_EXACT or name.endswith(_SECRET_SUFFIXES)
        if len(_cache) < 8192:
            try:
                _cache[key] = hit
            except TypeError:  # unhashable key (only possible from hand-built trees)
                pass
    return hit


_ENC_PREFIXES = (
    "enc:",
    "enc[",
    "encrypted:",
    "vault:",
    "{cipher}",
    "sops:",
    "kms:",
    "aws-kms:",
    "awskms:",
    "secretsmanager:",
    "arn:aws:secretsmanager:",
    "gcpsm:",
    "azurekv:",
    "op://",
    "${file:",  # a secret file (cfgcore.runtime.secrets), read at load
)


def is_encrypted_value(value: str) -> bool:
    """True for values that are ciphertext or a pointer into a secret store."""
    low = value.lstrip().lower()
    return low.startswith(_ENC_PREFIXES)


_WHOLE_REF = re.compile(r"^\s*\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}\s*$")


def literal_secret_kind(value: Any) -> str | None:
    """Why ``value`` counts as a plain-text secret, or None if it is safe.

    Safe: empty or null (not configured), a whole ``${VAR}`` / ``${VAR:?msg}``
    reference, a reference whose default is empty, an encrypted value or a
    secret-store pointer. A reference with a non-empty default carries a literal
    secret in its default, so it is not safe.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return "a literal value"
    if isinstance(value, (list, tuple, dict)):
        # A secret's key holding a list or a map holds the secret inside it
        # (``password: [hunter2]``, ``password: {value: hunter2}``): judged leaf by leaf,
        # iteratively (a hostile tree may nest deeper than the stack).
        stack: list[Any] = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, (list, tuple, dict)):
                stack.extend(node.values() if isinstance(node, dict) else node)
                continue
            kind = literal_secret_kind(node)
            if kind is not None:
                return f"{kind} inside a {'map' if isinstance(value, dict) else 'list'}"
        return None
    if not isinstance(value, str):
        return None
    if not value.strip():
        return None
    ref = _WHOLE_REF.match(value)
    if ref is not None:
        op, default = ref.group(2), ref.group(3)
        if op and op.endswith("-") and default and not _is_safe_default(default):
            return "a literal default in its ${...} reference"
        return None
    if is_encrypted_value(value):
        return None
    return "a literal value"


def _is_safe_default(default: str) -> bool:
    return default.startswith("${") or is_encrypted_value(default)


# scheme://user:password@host... ; the password may not contain '/', '@' or spaces.
# The scheme is a lookbehind, not part of the match: a search retried the scheme from
# every position of a long run of letters (quadratic: a 1 MB value froze validation),
# while the lookbehind costs one character per position. What is found and what
# redact_url keeps are the same: the scheme text is never replaced.
_URL_CRED = re.compile(r"(?<=[A-Za-z0-9+.\-])://([^/@\s:]*):([^/@\s]+)@")


def url_password(value: str) -> bool:
    """True when ``value`` holds a URL with a literal password (``user:pass@host``)."""
    if "://" not in value or "@" not in value:
        return False
    for m in _URL_CRED.finditer(value):
        password = m.group(2)
        if not (password.startswith("${") or is_encrypted_value(password)):
            return True
    return False


def redact_url(value: str) -> str:
    """``value`` with every URL password replaced by ``***``."""
    return _URL_CRED.sub(lambda m: f"://{m.group(1)}:***@", value)
