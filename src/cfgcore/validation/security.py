"""Security pack: weak algorithms, password policy, https, CORS, debug, plain-text secrets.

Findings never contain a secret: messages name the key path and the kind of
problem; URLs are shown with their password replaced by ``***``.

Levels by environment (``off`` = silent):

=============================  ===========  =========  ==========  ==========================
rule                           development  test       staging     production
=============================  ===========  =========  ==========  ==========================
security.weak_algorithm        error        error      error       critical
security.password_policy       warning      warning    error       error
security.https_required        off          off        warning     error (loopback exempt)
security.cors_credentials      error        error      error       critical
security.debug_in_production   off          off        warning     critical
security.plaintext_secret      warning      warning    error       critical
security.url_credentials       warning      warning    error       critical
=============================  ===========  =========  ==========  ==========================

Without a known environment the https and debug rules are silent and the others use
their staging level.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from cfgcore.runtime.redaction import key_words
from cfgcore.validation.core import OFF, ValidationResult
from cfgcore.validation.keys import (
    is_secret_key,
    literal_secret_kind,
    names_secret,
    redact_url,
    url_password,
)
from cfgcore.validation.walk import TreeRule

__all__ = [
    "CorsCredentialsRule",
    "DebugInProductionRule",
    "HttpsRequiredRule",
    "PasswordPolicyRule",
    "PlaintextSecretRule",
    "UrlCredentialsRule",
    "WeakAlgorithmRule",
    "empty_secrets",
    "names_secret",
    "no_protection",
    "weak_algorithms",
]


class _SecurityRule(TreeRule):
    pack = "security"

    def level(self, ctx: Mapping[str, Any]) -> str:
        return self.severity_for(ctx.get("environment"))

    def report(
        self,
        out: list[ValidationResult],
        ctx: Mapping[str, Any],
        path: str,
        detail: str,
        fix: str,
    ) -> None:
        level = self.level(ctx)
        if level != OFF:
            out.append(ValidationResult(self.rule_id, level, f"{path}: {detail}", path, fix, False))


# --- weak algorithms ------------------------------------------------------------------------

_ALGO_TOKENS = frozenset(
    {
        "algorithm",
        "algorithms",
        "algo",
        "alg",
        "cipher",
        "ciphers",
        "suites",
        "hash",
        "hashing",
        "hasher",
        "digest",
        "signature",
        "signing",
        "encryption",
        "kdf",
        "hmac",
        "mac",
        "crypto",
    }
)
# Path words that mean "this hash protects a password or a signature".
_PW_SIG_TOKENS = frozenset(
    {
        "password",
        "passwords",
        "passwd",
        "signature",
        "signatures",
        "signing",
        "sign",
        "hmac",
        "jwt",
        "token",
        "tokens",
        "auth",
        "authentication",
        "certificate",
        "cert",
        "tls",
        "ssl",
        "webhook",
        "kdf",
    }
)
_DES = frozenset(
    {"DES", "DESCBC", "DESECB", "DESEDE", "DESEDE3", "3DES", "TRIPLEDES", "TDEA", "TDES"}
)
_RC4 = frozenset({"RC4", "ARCFOUR", "ARC4", "RC4MD5"})
# Ciphers with 64-bit blocks: a long-lived key collides within a few hundred GB of
# traffic (Sweet32, CVE-2016-2183), as 3DES does; RC2 is broken outright.
_SMALL_BLOCK = {
    "BLOWFISH": "Blowfish",
    "BF": "Blowfish",
    "IDEA": "IDEA",
    "RC2": "RC2",
    "CAST5": "CAST5",
    "CAST128": "CAST5",
}
# Values that name no protection at all, or an encoding that only looks like one. Weak
# only where the key path is about cryptography: ``compression_algorithm: none`` is fine.
_NO_PROTECTION = {
    "NONE": "none (no protection)",
    "NULL": "NULL (no protection)",
    "PLAIN": "plain (no protection)",
    "PLAINTEXT": "plaintext (no protection)",
    "CLEARTEXT": "cleartext (no protection)",
    "ROT13": "ROT13 (an encoding)",
    "XOR": "XOR (no cipher)",
    "BASE64": "Base64 (an encoding)",
    "B64": "Base64 (an encoding)",
}
# Path words that say the value protects something (where "none" means unprotected).
_CRYPTO_TOKENS = frozenset(
    {
        "encryption",
        "encrypt",
        "encrypted",
        "cipher",
        "ciphers",
        "crypto",
        "signature",
        "signing",
        "jwt",
        "tls",
        "ssl",
        "kdf",
        "hmac",
        "password",
        "passwords",
    }
)
_MD5 = re.compile(r"^(?:HMAC)?MD[245](?:WITH[A-Z0-9]+)?$")
_SHA1 = re.compile(r"^(?:HMAC|RSA|DSA|ECDSA)?SHA1(?:WITH[A-Z0-9]+)?$")
_SPLIT = re.compile(r"[^A-Z0-9]+")
# Elements of an OpenSSL cipher list (``:``, also ``,`` and spaces).
_LIST_SPLIT = re.compile(r"[:,\s]+")


def weak_algorithms(text: str) -> list[tuple[str, bool]]:
    """Weak algorithm names found in ``text``: ``(name, only_weak_for_passwords_and_signatures)``.

    DES/3DES/RC4 are weak everywhere; MD5 and SHA-1 only where they protect passwords
    or signatures (they are fine as non-security checksums).

    Also ciphers with 64-bit blocks (Blowfish, IDEA, RC2, CAST5) and ECB mode, weak
    everywhere. Names of no protection at all ("none", ROT13, Base64) are judged by
    the rule with the key path (:func:`no_protection`).

    An OpenSSL cipher list (``HIGH:!aNULL:!MD5``, as nginx's ``ssl_ciphers`` takes) is
    read as OpenSSL reads it: what an element beginning with ``!`` or ``-`` names is
    excluded, ``+`` only moves ciphers already listed, ``@`` is a directive; so only the
    other elements are judged. Included ``aNULL``/``eNULL`` (no authentication, no
    encryption) and export-grade suites are weak.

    >>> weak_algorithms("DES-EDE3-CBC"), weak_algorithms("HmacSHA1"), weak_algorithms("AES-256-GCM")
    ([('3DES', False)], [('SHA-1', True)], [])
    >>> weak_algorithms("aes-128-ecb"), weak_algorithms("bf-cbc")
    ([('ECB mode', False)], [('Blowfish', False)])
    >>> weak_algorithms("HIGH:!aNULL:!MD5"), weak_algorithms("ALL:eNULL")
    ([], [('NULL cipher', False)])
    """
    found: dict[str, bool] = {}
    for element in _LIST_SPLIT.split(text):
        if element and element[0] not in "!-+@":
            _weak_tokens([t for t in _SPLIT.split(element.upper()) if t], found)
    return list(found.items())


def _weak_tokens(tokens: list[str], found: dict[str, bool]) -> None:
    """Add what the tokens of one name (or cipher list element) name weak to ``found``."""
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok in _DES:
            triple = tok != "DES" or nxt in {"EDE", "EDE3", "CBC3"}
            found.setdefault("3DES" if triple else "DES", False)
        elif tok in _RC4 or (tok == "RC" and nxt == "4"):  # "RC-4" too
            found.setdefault("RC4", False)
        elif (
            tok in _SMALL_BLOCK
            or (tok == "RC" and nxt == "2")
            or (tok == "CAST" and nxt in ("5", "128"))
        ):
            name = _SMALL_BLOCK.get(tok) or ("RC2" if tok == "RC" else "CAST5")
            found.setdefault(name, False)
        elif tok == "ECB":  # the mode: equal blocks encrypt equal, whatever the cipher
            found.setdefault("ECB mode", False)
        elif tok in ("ANULL", "ENULL") or (tok == "NULL" and len(tokens) > 1):
            # OpenSSL's aNULL/eNULL, or NULL inside a suite's name (TLS_RSA_WITH_NULL_SHA);
            # a lone "null" is judged with the key path (no_protection).
            found.setdefault("NULL cipher", False)
        elif tok in ("EXPORT", "EXP"):  # 40/56-bit export suites (FREAK, Logjam)
            found.setdefault("export-grade cipher", False)
        elif _MD5.match(tok) or (tok in ("MD", "HMACMD") and nxt in ("2", "4", "5")):
            found.setdefault("MD5", True)
        elif _SHA1.match(tok) or (tok == "SHA" and nxt == "1"):
            found.setdefault("SHA-1", True)


_FIX = (
    "Use AES-256-GCM or ChaCha20-Poly1305 to encrypt, SHA-256 or better / Ed25519 / "
    "RS256 to sign, argon2id, scrypt or bcrypt for passwords"
)


def no_protection(text: str) -> str | None:
    """What ``text`` names when the whole value is no protection (``none``, ``null``,
    ``plaintext``) or an encoding taken for one (ROT13, XOR, Base64); else None.

    >>> no_protection("none"), no_protection("ROT-13"), no_protection("AES-256-GCM")
    ('none (no protection)', 'ROT13 (an encoding)', None)
    """
    return _NO_PROTECTION.get("".join(_SPLIT.split(text.upper())))


def _strings(path: str, value: Any) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, (list, tuple)):
        return [(f"{path}.{i}", v) for i, v in enumerate(value) if isinstance(v, str)]
    return []


class WeakAlgorithmRule(_SecurityRule):
    """DES, 3DES, RC4, 64-bit block ciphers and ECB anywhere; MD5 and SHA-1 for
    passwords or signatures; "none", ROT13, XOR or Base64 where the key path is about
    cryptography. Names it does not know pass (it cannot vouch for them either)."""

    description = (
        "no DES/3DES/RC4/Blowfish/ECB; no MD5/SHA-1 for passwords or signatures; "
        "no 'none'/ROT13/Base64 as encryption"
    )

    def __init__(self) -> None:
        super().__init__(
            "security.weak_algorithm", "error", env_severity={"production": "critical"}
        )

    def wants_key(self, key: str) -> bool:
        return not is_secret_key(key) and not _ALGO_TOKENS.isdisjoint(key.split("_"))

    def visit(
        self,
        path: str,
        key: str,
        value: Any,
        parent: Mapping[Any, Any],
        parent_key: str,
        ctx: dict[str, Any],
        out: list[ValidationResult],
    ) -> None:
        texts = _strings(path, value)
        if not texts:
            return
        words = set(re.split(r"[^a-z0-9]+", path.lower()))
        for_secrets = not _PW_SIG_TOKENS.isdisjoint(words)
        crypto = for_secrets or not _CRYPTO_TOKENS.isdisjoint(words)
        for item_path, text in texts:
            nothing = no_protection(text) if crypto else None
            if nothing is not None:
                self.report(
                    out,
                    ctx,
                    item_path,
                    f"{nothing} where a cryptographic algorithm is expected",
                    _FIX,
                )
                continue
            for name, scoped in weak_algorithms(text):
                if scoped and not for_secrets:
                    continue
                use = "passwords or signatures" if scoped else "any use"
                self.report(
                    out,
                    ctx,
                    item_path,
                    f"weak algorithm {name} (broken for {use})",
                    _FIX,
                )


# --- password policy ------------------------------------------------------------------------

_MIN_LENGTH_KEYS = ("min_length", "minimum_length", "min_len")
_CLASS_KEYS = {
    "uppercase": ("require_uppercase", "require_upper", "uppercase"),
    "lowercase": ("require_lowercase", "require_lower", "lowercase"),
    "digits": ("require_digits", "require_digit", "require_numbers", "require_number", "digits"),
    "special characters": (
        "require_special",
        "require_special_chars",
        "require_special_characters",
        "require_symbols",
        "symbols",
    ),
}
_CLASS_COUNT_KEYS = ("min_character_classes", "required_character_classes")


class PasswordPolicyRule(_SecurityRule):
    """A ``password_policy`` needs min_length >= 12 and at least 3 of 4 character classes."""

    description = "password_policy: min_length >= 12 and >= 3 required character classes"

    def __init__(self, min_length: int = 12, min_classes: int = 3) -> None:
        super().__init__(
            "security.password_policy",
            "error",
            env_severity={"development": "warning", "test": "warning"},
        )
        self.min_length = min_length
        self.min_classes = min_classes

    def wants_key(self, key: str) -> bool:
        return key == "password_policy"

    def visit(
        self,
        path: str,
        key: str,
        value: Any,
        parent: Mapping[Any, Any],
        parent_key: str,
        ctx: dict[str, Any],
        out: list[ValidationResult],
    ) -> None:
        if not isinstance(value, Mapping):
            return
        length_key = next((k for k in _MIN_LENGTH_KEYS if k in value), "min_length")
        length = value.get(length_key)
        if not _is_num(length) or length < self.min_length:  # type: ignore[operator]
            have = (
                "is not set"
                if length is None
                else f"is {length}"
                if _is_num(length)
                else "is not a number"
            )
            self.report(
                out,
                ctx,
                f"{path}.{length_key}",
                f"minimum password length {have}; it must be at least {self.min_length}",
                f"Set {path}.{length_key}: {self.min_length} (or more)",
            )
        count_key = next((k for k in _CLASS_COUNT_KEYS if k in value), None)
        if count_key is not None and _is_num(value[count_key]):
            classes = int(value[count_key])
        else:
            classes = sum(
                1 for names in _CLASS_KEYS.values() if any(value.get(n) is True for n in names)
            )
        if classes < self.min_classes:
            missing = [
                label
                for label, names in _CLASS_KEYS.items()
                if not any(value.get(n) is True for n in names)
            ]
            self.report(
                out,
                ctx,
                path,
                f"requires {classes} character class(es); at least {self.min_classes} of "
                "uppercase, lowercase, digits and special characters are needed",
                "Turn on " + ", ".join(f"require_{m.split()[0]}" for m in missing),
            )


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# --- https ----------------------------------------------------------------------------------

_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
_HTTP = re.compile(r"http://[^\s'\"}]*", re.IGNORECASE)


def _is_loopback(url: str) -> bool:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:
        return False
    if host in _LOOPBACK or host.endswith(".localhost"):
        return True
    # 127.0.0.0/8 by address, not by prefix: "127.0.0.1.evil.example" is a DNS name.
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpsRequiredRule(_SecurityRule):
    """Plain ``http://`` URLs (other than loopback) where the environment requires https."""

    description = "no plain http:// URLs where https is required (loopback exempt)"
    wants_urls = True

    def __init__(self) -> None:
        super().__init__(
            "security.https_required",
            "warning",
            env_severity={
                "production": "error",
                "staging": "warning",
                "development": OFF,
                "test": OFF,
            },
        )

    def visit_url(
        self, path: str, key: str, value: str, ctx: dict[str, Any], out: list[ValidationResult]
    ) -> None:
        if ctx.get("environment") is None or key.lower().startswith("$"):
            return
        for m in _HTTP.finditer(value):
            url = m.group(0)
            if _is_loopback(url):
                continue
            env = ctx.get("environment")
            # Under a secret key the URL is the secret (a webhook token): never print it.
            shown = "(value not shown)" if is_secret_key(key) else repr(redact_url(url))
            self.report(
                out,
                ctx,
                path,
                f"plain http URL {shown} in {env}, which requires https",
                f"Use an https:// URL for {path} (plain http is allowed only for loopback)",
            )
            return


# --- CORS -----------------------------------------------------------------------------------

_ORIGIN_KEYS = frozenset(
    {
        "allowed_origins",
        "allow_origins",
        "allow_origin",
        "cors_origins",
        "origins",
        "access_control_allow_origin",
    }
)
_CREDENTIAL_KEYS = (
    "allow_credentials",
    "credentials",
    "allowed_credentials",
    "supports_credentials",
    "access_control_allow_credentials",
)


# What reads as "on" to the services these rules protect: cfgcore's own environment
# parsing (cfgcore._env) and most config libraries take these words; Python takes any
# non-zero number. A rule that knew only True and "true" let `debug: 1` or
# `allow_credentials: "yes"` through while the application switched the feature on.
_TRUE_WORDS = frozenset({"true", "1", "yes", "on", "y", "t", "enable", "enabled"})


def _truthy(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return v != 0
    return isinstance(v, str) and v.strip().lower() in _TRUE_WORDS


def _wildcard(value: Any) -> bool:
    """An origin setting that allows any origin: ``*``, alone, in a list, or as one
    entry of a comma- or space-separated string (``"https://a.example, *"``)."""
    if isinstance(value, str):
        return "*" in (part for part in re.split(r"[,\s]+", value.strip()))
    if isinstance(value, list | tuple):
        return any(isinstance(v, str) and _wildcard(v) for v in value)
    return False


class CorsCredentialsRule(_SecurityRule):
    """CORS origin ``*`` together with credentials: any site could act as the user."""

    description = "CORS: allowed origin '*' together with allow_credentials"

    def __init__(self) -> None:
        super().__init__(
            "security.cors_credentials", "error", env_severity={"production": "critical"}
        )

    def wants_key(self, key: str) -> bool:
        return key in _ORIGIN_KEYS

    def visit(
        self,
        path: str,
        key: str,
        value: Any,
        parent: Mapping[Any, Any],
        parent_key: str,
        ctx: dict[str, Any],
        out: list[ValidationResult],
    ) -> None:
        if not _wildcard(value):
            return
        cred = next((k for k in _CREDENTIAL_KEYS if _truthy(parent.get(k))), None)
        if cred is None:
            return
        self.report(
            out,
            ctx,
            path,
            f"allows any origin ('*') while {cred} is true, so any site could make "
            "credentialed requests",
            f"List the allowed origins explicitly in {path}, or set {cred}: false",
        )


# --- debug ----------------------------------------------------------------------------------


class DebugInProductionRule(_SecurityRule):
    """``debug: true`` (or debug_mode / debug_enabled) in production."""

    description = "debug switched off in production"

    def __init__(self) -> None:
        super().__init__(
            "security.debug_in_production",
            "warning",
            env_severity={
                "production": "critical",
                "staging": "warning",
                "development": OFF,
                "test": OFF,
            },
        )

    def wants_key(self, key: str) -> bool:
        return key in ("debug", "debug_mode", "debug_enabled")

    def visit(
        self,
        path: str,
        key: str,
        value: Any,
        parent: Mapping[Any, Any],
        parent_key: str,
        ctx: dict[str, Any],
        out: list[ValidationResult],
    ) -> None:
        env = ctx.get("environment")
        if env is None or not _truthy(value):
            return
        self.report(
            out,
            ctx,
            path,
            f"debug is on in {env}: it exposes internals and slows requests",
            f"Set {path}: false in the {env} configuration",
        )


# --- secrets --------------------------------------------------------------------------------


def _env_var_name(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_").upper() or "SECRET"


_SECRET_LEVELS = {
    "production": "critical",
    "staging": "error",
    "development": "warning",
    "test": "warning",
}


def empty_secrets(
    config: Any,
    refs: Mapping[tuple[Any, ...], str] | None = None,
    secret_reference: Callable[[str], bool] | None = None,
) -> list[tuple[str, str | None]]:
    """``(key path, reference or None)`` of each empty secret in ``config`` (a resolved
    tree), in the order the tree holds them. Empty: null or blank text. A secret: a
    key named as one (:func:`names_secret`), or a value whose path ``refs`` maps to a
    reference (``${API_TOKEN:-}``) that ``secret_reference`` says reads a secret.

    ``${VAR:-}`` leaves a secret empty when ``VAR`` is not exported: the configuration
    loads, and the service starts without its database password (``cfgcore setup``
    reports them). A reference inside a longer value counts too: in
    ``postgres://app:${DB_PASSWORD:-}@db/x`` an empty ``DB_PASSWORD`` is reported with
    the value's key path and that reference alone (``${DB_PASSWORD:-}``), as is any
    variable left empty in a secret-named key's value (``password: ${A}${B}``).

    >>> empty_secrets({"db": {"password": "", "user": ""}, "jwt": {"key": None}})
    [('db.password', None), ('jwt.key', None)]
    >>> empty_secrets(
    ...     {"db": {"url": "postgres://app:@db/x"}},
    ...     {("db", "url"): "postgres://app:${DB_PASSWORD:-}@db/x"},
    ...     lambda ref: "PASSWORD" in ref,
    ... )
    [('db.url', '${DB_PASSWORD:-}')]
    """
    from cfgcore.validation.core import join_path

    refs = refs or {}
    found: list[tuple[str, str | None]] = []
    # (value, path, dotted path, its key, the key of the mapping holding it, in a mapping)
    stack: list[tuple[Any, tuple[Any, ...], str, Any, Any, bool]] = [
        (config, (), "", "", "", False)
    ]
    while stack:
        node, path, dotted, key, parent_key, in_map = stack.pop()
        if isinstance(node, Mapping):
            stack.extend(
                (v, (*path, k), join_path(dotted, k), k, key, True)
                for k, v in reversed(list(node.items()))
            )
        elif isinstance(node, (list, tuple)):
            # A list item is judged under the list's own key (``tokens: ["", ...]``).
            stack.extend(
                (v, (*path, i), join_path(dotted, i), key, parent_key, in_map)
                for i, v in reversed(list(enumerate(node)))
            )
        elif node is None or isinstance(node, str):
            ref = _ref_at(refs, path)
            named = in_map and names_secret(key, parent_key)
            if node is None or not node.strip():
                if named or (
                    ref is not None and secret_reference is not None and secret_reference(ref)
                ):
                    found.append((dotted, ref))
            elif ref is not None and "${" in ref:
                found += [
                    (dotted, piece)
                    for piece in _blank_pieces(ref, node)
                    if named or (secret_reference is not None and secret_reference(piece))
                ]
    return found


def _ref_at(refs: Mapping[tuple[Any, ...], str], path: tuple[Any, ...]) -> str | None:
    """The reference recorded for ``path`` (list indices recorded as text or numbers)."""
    ref = refs.get(path)
    if ref is None and any(type(p) is int for p in path):
        ref = refs.get(tuple(str(p) if type(p) is int else p for p in path))
    return ref


def _blank_pieces(template: str, value: str) -> list[str]:
    """The ``${VAR...}`` references of ``template`` that must have resolved to blank
    text for it to read ``value``, each as written, in order. A value the template
    cannot have given (a later step changed it) yields none."""
    from cfgcore.config.environ import ENV_REF

    literals = [""]
    pieces: list[str] = []
    last = 0
    for m in ENV_REF.finditer(template):
        literals[-1] += template[last : m.start()]
        last = m.end()
        if m["name"]:
            pieces.append(m.group(0))
            literals.append("")
        else:  # "$${" is a literal "${"; a malformed one was refused by the build
            literals[-1] += "${" if m.group(0) == "$${" else m.group(0)
    literals[-1] += template[last:]
    if not pieces or not _fits(value, literals, None):
        return []
    return [piece for i, piece in enumerate(pieces) if not _fits(value, literals, i)]


def _fits(value: str, literals: list[str], filled: int | None) -> bool:
    """Can ``value`` read as ``literals[0] V0 literals[1] V1 ... literals[k]`` for some
    texts ``V``, with ``V[filled]`` not blank? Linear: each ``V`` ends at the earliest
    place the next literal allows (an earlier end never leaves later parts less room)."""
    if not value.startswith(literals[0]):
        return False
    start = len(literals[0])
    count = len(literals) - 1
    for j in range(count):
        low = start
        if j == filled:
            low = next((i for i in range(start, len(value)) if not value[i].isspace()), -1)
            if low < 0:
                return False
            low += 1
        literal = literals[j + 1]
        if j == count - 1:
            end = len(value) - len(literal)
            return end >= low and value.endswith(literal)
        at = value.find(literal, low)
        if at < 0:
            return False
        start = at + len(literal)
    return True


# Lower-cased endings of camelCase secret names the walker's lower-cased key hides
# ("dbPass", "apiJwt", "sessionCookie", "authHeader", "connString", "dbCreds"):
# wants_key lets them through and visit judges the key as written.
_CAMEL_ENDS = (
    "pass",
    "pwd",
    "authorization",
    "auth",
    "jwt",
    "cookie",
    "header",
    "string",
    "str",
    "cred",
)


class PlaintextSecretRule(_SecurityRule):
    """Keys like password, secret, token, api_key holding a literal instead of ``${ENV}``."""

    description = "secrets (password, secret, token, api_key, ...) are ${ENV} refs or encrypted"

    def __init__(self) -> None:
        super().__init__("security.plaintext_secret", "error", env_severity=_SECRET_LEVELS)

    def wants_key(self, key: str) -> bool:
        # The walker passes the name lower-cased, which hides camelCase words
        # ("dbPass" reads "dbpass"): every name that may be a secret's is visited, and
        # visit judges the key as written, with its parent (names_secret).
        return is_secret_key(key) or key.endswith(_CAMEL_ENDS) or key_words(key) == ["key"]

    def visit(
        self,
        path: str,
        key: str,
        value: Any,
        parent: Mapping[Any, Any],
        parent_key: str,
        ctx: dict[str, Any],
        out: list[ValidationResult],
    ) -> None:
        if not names_secret(key, parent_key):
            return
        kind = literal_secret_kind(value)
        if kind is None:
            return
        var = _env_var_name(path)
        self.report(
            out,
            ctx,
            path,
            f"secret stored as {kind} in plain text (value not shown)",
            # (cfgcore decrypts ENC[...] only: an "enc:" value passes this rule as a
            # pointer for another tool to resolve, and cfgcore would serve it as text.)
            f"Use an environment reference such as ${{{var}}} (no default) or an encrypted "
            f"value (`cfgcore secrets encrypt --path {path}` writes one: ENC[...]), and "
            "rotate the exposed secret",
        )


class UrlCredentialsRule(_SecurityRule):
    """URLs with an embedded literal password, such as ``postgresql://user:pass@host/db``."""

    description = "no literal password inside URLs (scheme://user:password@host)"
    wants_urls = True

    def __init__(self) -> None:
        super().__init__("security.url_credentials", "error", env_severity=_SECRET_LEVELS)

    def visit_url(
        self, path: str, key: str, value: str, ctx: dict[str, Any], out: list[ValidationResult]
    ) -> None:
        # A secret-named key is already reported (once) by security.plaintext_secret.
        if is_secret_key(key) or not url_password(value):
            return
        self.report(
            out,
            ctx,
            path,
            f"URL {redact_url(value)!r} embeds a literal password",
            f"Take the password out of the URL: ${{{_env_var_name(path)}}} for the whole URL, "
            "or user:${DB_PASSWORD}@host",
        )
