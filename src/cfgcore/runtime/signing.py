"""Signed fleet documents: Ed25519 signatures on what a Redis store delivers.

Whoever can write a fleet store's Redis keys can otherwise serve any flags to every
process (the checksum catches corruption, not forgery). With keys configured, the
process that writes a document signs it, and the processes that follow refuse a
document without a valid signature by a key they trust: the last good document keeps
serving, and the refusal is reported like any other refused document (``stats``,
``last_error``, the flag set's ``health()`` warning, the audit log, ``PROVIDER_STALE``).

Keys (the process environment's only: a ``.env`` file cannot set them)::

    CFGCORE_FLEET_SIGNING_KEY       the private key that signs: ``[ID:]<base64url of the
                                    32-byte Ed25519 seed>`` (``cfgcore fleet keygen``)
    CFGCORE_FLEET_SIGNING_KEY_FILE  else a file holding it (one line; ``#`` comments)
    CFGCORE_FLEET_VERIFY_KEYS       the public keys a follower trusts, comma-separated:
                                    ``[ID:]<base64url of 32 bytes>``; several at once for
                                    a rotation
    CFGCORE_FLEET_VERIFY_KEY_FILE   else a file of them, one a line

Without an id, a key's id is the first 8 hex digits of the SHA-256 of its *public* key,
for a private key too, so a pair made without ``--id`` names itself the same on both
sides. Nothing configured: nothing is signed or checked, and the stored documents are
exactly those of releases before signing.

The signature is stored in the document hash's ``signature`` field as
``v1:ed25519:<key id>:<base64url of the 64-byte signature>`` over (see
:func:`signed_message`) the key id, the document's Redis key (namespace and document:
``{NS}:flags``, ``{NS}:config:ENV``), its version, the SHA-256 of its data (the exact
bytes followers decode) and the SHA-256 of its writer field. A signed document therefore
cannot be replayed under another version number, into another namespace, or as another
document (a configuration as flags), nor shown as another writer's. A process that
holds the signing key trusts its own key too (besides any verification keys): it
never signs a change made on top of a document it cannot authenticate. The store's epoch
and ``forced`` mark are not signed: whoever can write the keys can make the fleet
refuse documents (or delete them) anyway, but not serve flags of their choosing.

A Redis store's cache file keeps the signature and the writer field as stored, and a
process restoring it checks them as it checks a document read from Redis, against the
keys it trusts then: a key retired since is retired for cached documents too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cfgcore._encoding import decode_text
from cfgcore.errors import ConfigError, Problem

__all__ = [
    "SIGNATURE_FIELD",
    "FleetKeys",
    "generate_signing_pair",
    "public_key_line",
    "signed_message",
    "stop_message",
]

log = logging.getLogger("cfgcore.fleet")

SIGNATURE_FIELD = "signature"  # the document hash's field
ENV_SIGNING_KEY = "CFGCORE_FLEET_SIGNING_KEY"
ENV_SIGNING_KEY_FILE = "CFGCORE_FLEET_SIGNING_KEY_FILE"
ENV_VERIFY_KEYS = "CFGCORE_FLEET_VERIFY_KEYS"
ENV_VERIFY_KEY_FILE = "CFGCORE_FLEET_VERIFY_KEY_FILE"
ENVIRONMENT = (ENV_SIGNING_KEY, ENV_SIGNING_KEY_FILE, ENV_VERIFY_KEYS, ENV_VERIFY_KEY_FILE)

_PREFIX = "v1:ed25519:"
_KEY_ID = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_MAX_FILE = 1 << 20
# The signing key files warned about as readable by others, (path, inode, mode): each
# once per process (every store a process opens reads the keys: `cfgcore publish` said
# it three times).
_WARNED_READABLE: set[tuple[str, int, int]] = set()
# The longest envelope the read script sends (a prefix, an id of 64, 86 characters of
# base64): anything longer stored there is refused unread.
MAX_ENVELOPE = 256
# The first line of the signing key file `cfgcore fleet keygen` writes.
SIGNING_FILE_HEADER = "# cfgcore fleet signing key (CFGCORE_FLEET_SIGNING_KEY_FILE)"


def _crypto(who: str) -> Any:
    """The Ed25519 module; ``who`` names what needs it, as the message's subject (a
    key setting: "fleet document signing (CFGCORE_FLEET_SIGNING_KEY is set)")."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise ConfigError(
            f"{who} needs the cryptography package: pip install 'cfgcore[secrets]'"
        ) from None
    return ed25519


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    text = text.strip()
    try:
        return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return b""


def _derived_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:8]


def _parse(text: str, what: str) -> tuple[str, bytes]:
    """``[ID:]BASE64`` of 32 bytes as (id or '', raw); ValueError that never shows key
    material (only a well-formed id)."""
    kid, sep, material = text.strip().rpartition(":")
    if not sep:
        kid, material = "", text.strip()
    if kid and not _KEY_ID.fullmatch(kid):
        raise ValueError(
            "the key id (the text before the last ':') may hold only letters, digits, "
            "'_', '.' and '-', at most 64 (separate keys with ',' or whitespace, and put "
            "'#' comments on lines of their own)"
        )
    raw = _unb64(material)
    if len(raw) != 32:
        shown = f"{what} {kid!r}" if kid and len(kid) <= 24 else f"the {what}"
        raise ValueError(
            f"{shown} is not base64url of 32 bytes (make a pair with `cfgcore fleet keygen`)"
        )
    return kid, raw


def _framed(label: bytes, parts: Iterable[bytes]) -> bytes:
    return label + b"".join(len(p).to_bytes(4, "big") + p for p in parts)


def signed_message(kid: str, key: str, version: int, data: bytes, writer: bytes) -> bytes:
    """The bytes an Ed25519 signature covers: a fixed label, then the key id, the
    document's Redis key, its version (decimal), the SHA-256 of its data and of its
    writer field, each length-prefixed (no two field lists give the same bytes)."""
    parts = (
        kid.encode(),
        key.encode("utf-8", "surrogatepass"),
        str(int(version)).encode(),
        hashlib.sha256(data).digest(),
        hashlib.sha256(writer).digest(),
    )
    return _framed(b"cfgcore fleet document v1\n", parts)


def stop_message(kid: str, key: str, test: str, content: bytes, writer: bytes) -> bytes:
    """The bytes a guardrail stop register entry's signature covers: another label than
    a document's (neither signature passes for the other), the key id, the register's
    Redis key (``{NS}:flags:guardrail-stops``), the entry's field (the A/B test's
    name), the SHA-256 of its content (the canonical JSON of its time and record) and of
    its writer (canonical JSON), each length-prefixed."""
    parts = (
        kid.encode(),
        key.encode("utf-8", "surrogatepass"),
        test.encode("utf-8", "surrogatepass"),
        hashlib.sha256(content).digest(),
        hashlib.sha256(writer).digest(),
    )
    return _framed(b"cfgcore fleet guardrail stop v1\n", parts)


@dataclass(frozen=True)
class _Signer:
    kid: str
    private: Any  # Ed25519PrivateKey
    public: bytes

    def __repr__(self) -> str:
        return f"_Signer(kid={self.kid!r}, private=***)"


def _read_key_file(path: str, *, private: bool) -> list[tuple[int, str]]:
    """The key lines of ``path`` (line number, text), comments and blank lines left out.

    Refused when every local user may rewrite or replace it, or another user made it in
    a directory every user may create files in (they would put their own
    key there: sign the fleet's documents, or be trusted by its followers); a private key
    every local user may read is warned about, as ``cfgcore secrets`` does for its keys.
    """
    from cfgcore.runtime.atomicio import read_regular, rewritable_by_all, trust_fix

    what = "signing key file" if private else "verification key file"
    if os.name != "nt":
        try:
            st = os.stat(path)
        except OSError:
            st = None  # reading it says why
        if st is not None:
            why = rewritable_by_all(path, st)
            if why:
                raise ConfigError(
                    f"{what} refused: {why}, and whoever can put a key there "
                    + ("signs documents every follower serves" if private
                       else "is trusted by this process")
                    + f" ({trust_fix(why)})",
                    file=path,
                )  # fmt: skip
            seen = (os.path.abspath(path), st.st_ino, st.st_mode)
            if (
                private
                and st.st_mode & (stat.S_IRGRP | stat.S_IROTH)
                and seen not in _WARNED_READABLE
            ):
                _WARNED_READABLE.add(seen)
                log.warning(
                    "fleet signing key file %s is readable by other users (mode %04o): "
                    "anyone who can read it can sign flags every follower serves "
                    "(chmod 600)",
                    path,
                    stat.S_IMODE(st.st_mode),
                )
    try:
        raw = read_regular(path, _MAX_FILE)
    except OSError as exc:
        raise ConfigError(f"cannot read {what}: {exc.strerror or exc}", file=path) from None
    text = decode_text(raw, path, f"{what}: ", secret=True)
    if not private and text.startswith(SIGNING_FILE_HEADER):
        raise ConfigError(
            "refused as a verification key file: it is a fleet signing (private) key "
            "file, as `cfgcore fleet keygen` writes it; give followers the verification "
            "key named in its comment (never the signing key file)",
            file=path,
        )
    return [
        (n, line)
        for n, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


class FleetKeys:
    """A process's fleet signing settings: at most one signing (private) key, and the
    verification (public) keys it trusts by id. Empty: nothing signed, nothing checked.

    >>> keys = FleetKeys.from_environ({})
    >>> keys.signs, keys.verifies
    (False, False)
    """

    def __init__(
        self,
        signing: str | None = None,
        verify: Iterable[str] = (),
        *,
        signing_origin: str = ENV_SIGNING_KEY,
        verify_origin: str = ENV_VERIFY_KEYS,
    ) -> None:
        self.signing_origin = signing_origin
        self.verify_origin = verify_origin
        verify = list(verify)
        self._signer: _Signer | None = None
        self._trusted: dict[str, Any] = {}
        if signing is None and not verify:
            return
        seed = b""
        origin = signing_origin if signing is not None else verify_origin
        ed25519 = _crypto(f"fleet document signing ({origin} is set)")
        if signing is not None:
            try:
                kid, seed = _parse(signing, "signing key")
            except ValueError as exc:
                raise ConfigError(f"{signing_origin}: {exc}") from None
            private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
            public = _public_bytes(private.public_key())
            if kid and kid != _derived_id(public) and hmac.compare_digest(kid, _derived_id(seed)):
                # A verification key line (`cfgcore fleet keygen` prints ID:PUBLIC, the
                # id derived from those bytes as a public key) given as the signing key:
                # it signs, with a key nobody trusts, and every follower refuses what this
                # process writes as tampered with. Its id tells it apart.
                raise ConfigError(
                    f"{signing_origin}: key {kid!r} is a verification (public) key, not "
                    "a signing key: give the signing key `cfgcore fleet keygen` wrote to "
                    f"its file ({ENV_SIGNING_KEY_FILE}), and this one to the followers "
                    f"({ENV_VERIFY_KEYS})"
                )
            self._signer = _Signer(kid or _derived_id(public), private, public)
        parsed = []
        for n, text in enumerate(verify, 1):
            try:
                kid, raw = _parse(text, "verification key")
                public_key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            except ValueError as exc:
                raise ConfigError(f"key {n} of {verify_origin}: {exc}") from None
            parsed.append((n, kid or _derived_id(raw), raw, public_key))
        # Before the ids are compared: a signing key listed under its pair's id is
        # named as what it is, not as a second key under that id.
        self._refuse_wrong_purpose(ed25519, [(n, kid, raw) for n, kid, raw, _ in parsed], seed)
        for n, kid, raw, public_key in parsed:
            if kid in self._trusted and _public_bytes(self._trusted[kid]) != raw:
                raise ConfigError(
                    f"key {n} of {verify_origin}: the id {kid!r} names two different keys"
                )
            self._trusted[kid] = public_key
        if self._signer is None:
            return
        trusted = self._trusted.get(self._signer.kid)
        if self._trusted and (trusted is None or _public_bytes(trusted) != self._signer.public):
            log.warning(
                "the fleet signing key %r (%s) is not among the verification keys of "
                "%s: processes that trust only those refuse what this process writes",
                self._signer.kid,
                signing_origin,
                verify_origin,
            )
        if not self._trusted:
            self.verify_origin = f"its own signing key ({signing_origin})"
        if trusted is None:
            # A process that signs checks too, with its own key at least: it never signs
            # a change made on top of a document it cannot authenticate (it would make
            # whatever someone put in Redis pass every follower's check).
            self._trusted[self._signer.kid] = self._signer.private.public_key()

    def _refuse_wrong_purpose(
        self, ed25519: Any, given: list[tuple[int, str, bytes]], seed: bytes
    ) -> None:
        """A key given for the wrong purpose, where this process can tell. Both kinds
        are 32 bytes of base64url, so nothing else refused them: a signing (private)
        key among the verification keys is handed to every follower (whoever reads one
        follower's environment then signs for the fleet), and followers refuse every
        document while it stands there. Each verification key is also read as a seed:
        one whose public key is another trusted key, or the same bytes as this
        process's signing key, is refused, named by position and id, never shown."""
        publics = {raw: kid for _, kid, raw in given}
        for n, _, raw in given:
            if seed and hmac.compare_digest(raw, seed):
                raise ConfigError(
                    f"key {n} of {self.verify_origin} and the signing key "
                    f"({self.signing_origin}) are the same 32 bytes: one of them is given "
                    "for the wrong purpose (the signing key is the one `cfgcore fleet "
                    "keygen` wrote to its file, the verification key the one it printed, "
                    "also in that file's comment)"
                )
            public = _public_bytes(ed25519.Ed25519PrivateKey.from_private_bytes(raw).public_key())
            pair = publics.get(public)
            if pair is not None and public != raw:
                raise ConfigError(
                    f"key {n} of {self.verify_origin} is a signing (private) key: the "
                    f"signing key of the trusted key {pair!r}. Followers need only the "
                    "verification key: remove it, and since it was handed out, make a new "
                    "pair (`cfgcore fleet keygen`) and retire this one"
                )

    def __repr__(self) -> str:
        signer = self._signer.kid if self._signer is not None else None
        return f"FleetKeys(signing={signer!r}, verify={sorted(self._trusted)!r})"

    @property
    def signs(self) -> bool:
        """True when this process holds a signing key."""
        return self._signer is not None

    @property
    def verifies(self) -> bool:
        """True when this process checks the documents it reads: it holds verification
        keys, or a signing key (a signer trusts its own key)."""
        return bool(self._trusted)

    @property
    def signing_kid(self) -> str | None:
        """The id of the signing key, or None."""
        return self._signer.kid if self._signer is not None else None

    @property
    def verify_kids(self) -> tuple[str, ...]:
        """The ids of the verification keys, sorted."""
        return tuple(sorted(self._trusted))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> FleetKeys:
        """``CFGCORE_FLEET_SIGNING_KEY`` (else ``..._FILE``) and ``CFGCORE_FLEET_VERIFY_KEYS``
        (else ``..._FILE``); ConfigError when one is set but unusable (a start fails
        rather than follow unchecked, or write what every follower refuses)."""
        env = os.environ if environ is None else environ
        signing: str | None = None
        signing_origin = ENV_SIGNING_KEY
        inline = env.get(ENV_SIGNING_KEY, "").strip()
        path = env.get(ENV_SIGNING_KEY_FILE, "").strip()
        if inline:
            signing = inline
        elif path:
            lines = _read_key_file(path, private=True)
            if len(lines) != 1:
                raise ConfigError(
                    f"a signing key file holds exactly one key, not {len(lines)}", file=path
                )
            signing, signing_origin = lines[0][1], path
        verify: list[str] = []
        verify_origin = ENV_VERIFY_KEYS
        inline = env.get(ENV_VERIFY_KEYS, "").strip()
        path = env.get(ENV_VERIFY_KEY_FILE, "").strip()
        if inline:
            verify = [k for k in re.split(r"[,\s]+", inline) if k]
        elif path:
            lines = _read_key_file(path, private=False)
            for n, line in lines:  # a bad line is named by its number, never shown
                try:
                    _parse(line, "verification key")
                except ValueError as exc:
                    raise ConfigError(
                        [Problem(path="", message=str(exc), file=path, line=n)]
                    ) from None
            if not lines:
                raise ConfigError("the verification key file holds no key", file=path)
            verify, verify_origin = [line for _, line in lines], path
        return cls(signing, verify, signing_origin=signing_origin, verify_origin=verify_origin)

    def _sign(self, message: Any) -> bytes:
        signer = self._signer
        if signer is None:
            raise ConfigError(f"no fleet signing key: set {ENV_SIGNING_KEY}(_FILE)")
        sig = signer.private.sign(message(signer.kid))
        return f"{_PREFIX}{signer.kid}:{_b64(sig)}".encode()

    def sign(self, key: str, version: int, data: bytes, writer: bytes) -> bytes:
        """The envelope to store beside document ``key`` at ``version``."""
        return self._sign(lambda kid: signed_message(kid, key, version, data, writer))

    def sign_stop(self, key: str, test: str, content: bytes, writer: bytes) -> str:
        """The envelope of entry ``test`` of the guardrail stop register ``key``
        (:func:`stop_message`)."""
        return self._sign(lambda kid: stop_message(kid, key, test, content, writer)).decode()

    def verify(
        self, key: str, version: int, data: bytes, writer: bytes, envelope: Any, origin: str
    ) -> None:
        """Nothing when ``envelope`` is a valid signature of the document by a trusted
        key; ConfigError saying why otherwise (never another exception: followers call
        this off the request path and report the refusal)."""
        self._verify(
            lambda kid: signed_message(kid, key, version, data, writer),
            envelope, f"version {version}", "documents", "document (changed after it was "
            "signed, or signed for another version, namespace or document)", origin,
        )  # fmt: skip

    def verify_stop(
        self, key: str, test: str, content: bytes, writer: bytes, envelope: Any, origin: str
    ) -> None:
        """Nothing when ``envelope`` is a valid signature of entry ``test`` of the
        guardrail stop register ``key`` by a trusted key; ConfigError saying why, naming
        the store ``origin`` as its file and the register and the entry in its message
        (as every refusal of a stop register entry does)."""
        shown = test if len(test) <= 80 and test.isprintable() else test[:77] + "..."
        self._verify(
            lambda kid: stop_message(kid, key, test, content, writer),
            envelope, f"the guardrail stop register {key}: guardrail stop entry {shown!r}",
            "guardrail stop entries",
            "entry (changed after it was signed, or signed for another test or "
            "namespace)", origin,
        )  # fmt: skip

    def _verify(
        self, message: Any, envelope: Any, what: str, kinds: str, mismatch: str, origin: str
    ) -> None:
        if isinstance(envelope, str):
            envelope = envelope.encode("utf-8", "replace")
        if not isinstance(envelope, bytes) or not envelope:
            raise ConfigError(
                f"{what} is not signed, and this process accepts only {kinds} "
                f"signed by a key it trusts ({self.verify_origin}): refused (the process that "
                f"wrote it holds no fleet signing key, {ENV_SIGNING_KEY} or "
                f"{ENV_SIGNING_KEY_FILE}, or the signature was removed)",
                file=origin,
            )
        text = envelope.decode("ascii", "replace")
        head, _, sig_text = text.rpartition(":")
        prefix, _, kid = head.rpartition(":")
        if prefix + ":" != _PREFIX or not _KEY_ID.fullmatch(kid):
            raise ConfigError(
                f"{what}: the stored signature is not a cfgcore fleet signature "
                f"(v1:ed25519:ID:SIGNATURE): refused",
                file=origin,
            )
        public = self._trusted.get(kid)
        if public is None:
            raise ConfigError(
                f"{what} is signed with key {kid[:24]!r}, which this process does "
                f"not trust (it trusts {', '.join(map(repr, self.verify_kids))}: "
                f"{self.verify_origin}): refused",
                file=origin,
            )
        sig = _unb64(sig_text)
        try:
            if len(sig) != 64 or _b64(sig) != sig_text:
                # (only the form sign() writes: base64 has several spellings of one
                # value, and a stored signature is either the one written or refused)
                raise ValueError("not 64 bytes of base64url as written")
            public.verify(sig, message(kid))
        except Exception:  # InvalidSignature, or a malformed one
            raise ConfigError(
                f"{what}: the signature by key {kid!r} does not match the {mismatch}: refused",
                file=origin,
            ) from None


def _public_bytes(public: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    raw: bytes = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw


def public_key_line(signing: str) -> str:
    """The verification key (``ID:BASE64``) of a signing key in the form
    :class:`FleetKeys` reads."""
    keys = FleetKeys(signing, signing_origin="the signing key")
    assert keys._signer is not None
    return f"{keys._signer.kid}:{_b64(keys._signer.public)}"


def generate_signing_pair(kid: str | None = None) -> tuple[str, str]:
    """A new Ed25519 pair as ``(signing key line, verification key line)``, both
    ``ID:BASE64URL``; the id defaults to the one derived from the public key."""
    if kid is not None and not _KEY_ID.fullmatch(kid):
        raise ConfigError(f"key id {kid!r}: use letters, digits, '_', '.', '-' (at most 64)")
    ed25519 = _crypto("making a fleet signing pair (cfgcore fleet keygen)")
    from cryptography.hazmat.primitives import serialization

    private = ed25519.Ed25519PrivateKey.generate()
    seed = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    public = _public_bytes(private.public_key())
    kid = kid or _derived_id(public)
    return f"{kid}:{_b64(seed)}", f"{kid}:{_b64(public)}"
