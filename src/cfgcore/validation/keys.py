"""Classifying key names and values: secrets, references, encrypted values, URLs.

Shared by the security rules, the schema checker (which must not echo a secret in
a type error) and anyone who needs to redact: :func:`redact_url` hides the password
in ``scheme://user:password@host``. Which key names are secrets
(:func:`is_secret_key`, :func:`names_secret`) is defined once, in
:mod:`cfgcore.runtime.redaction`, and re-exported here.
"""

from __future__ import annotations

import re
from typing import Any

# One definition of a secret's name, shared with redaction, the empty-secret report
# and secret environment variables (it lives beside the masking that uses it).
from cfgcore.runtime.redaction import SECRET_KEY_PARENTS, is_secret_key, names_secret

__all__ = [
    "SECRET_KEY_PARENTS",
    "is_encrypted_value",
    "is_secret_key",
    "literal_secret_kind",
    "names_secret",
    "redact_url",
    "url_password",
]

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


# A ${VAR}, ${VAR:-default}, ${VAR-default} or ${VAR:?message} reference (the
# transformer's grammar): its default may hold ":" or "@", which are not the URL's.
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")
# A reference's default (``${VAR:-value}`` / ``${VAR-value}``) is a literal written in the
# file: a URL password there is as much in the file as one outside a reference.
_DEFAULT = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}")


def url_password(value: str) -> bool:
    """True when ``value`` holds a URL with a literal password (``user:pass@host``).

    References are judged as the variables they name: ``${DB_USER:-app}:${DB_PW}@``
    holds no literal password (the ``:`` of the user's default is not the URL's); a
    default that is itself a URL with a password (``${CACHE_URL:-redis://u:pw@h/0}``) does."""
    if "://" not in value or "@" not in value:
        return False
    if "${" in value:
        if any(url_password(d) for d in _DEFAULT.findall(value) if d):
            return True
        value = _REFERENCE.sub(r"${\1}", value)
    for m in _URL_CRED.finditer(value):
        password = m.group(2)
        if not (password.startswith("${") or is_encrypted_value(password)):
            return True
    return False


def redact_url(value: str) -> str:
    """``value`` with every URL password replaced by ``***``."""
    return _URL_CRED.sub(lambda m: f"://{m.group(1)}:***@", value)
