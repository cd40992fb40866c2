"""``cfgcore secrets``: make keys, encrypt and decrypt values, rotate a config directory.

``keygen [--id ID]`` prints a new key (``<id>:<base64>``): put it FIRST in
``CFGCORE_SECRET_KEYS`` (or the key file) and keep the old keys after it until
``rotate`` has re-encrypted everything. ``encrypt [VALUE]`` (VALUE, else standard input,
so the secret stays out of the shell history) prints ``ENC[...]`` with the newest key;
``decrypt ENVELOPE`` prints the plaintext. ``rotate DIR`` re-encrypts every ``ENC[...]``
value of every configuration file under DIR with the newest key, keeping each file's
formatting and each value's scheme: every value is decrypted and re-encrypted first,
and files are written (each atomically) only when all of them succeeded. A file that is
a symlink (a configuration shared between directories) is rewritten where it really
is, and the link is kept: replacing the link with a copy would leave the shared file
under the old key, and removing that key would break every other user of it.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from cfgcore.errors import ConfigError, Problem

_ENVELOPE_IN_TEXT = re.compile(r"ENC\[[^\]\s\"']+\]")
_CONFIG_EXTS = (".yaml", ".yml", ".json", ".toml")


def register(subparsers: Any) -> None:
    """Add the ``secrets`` command group."""
    p = subparsers.add_parser("secrets", help="encrypted values: keygen, encrypt, decrypt, rotate")
    sub = p.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND")

    def keys(sp: Any) -> None:
        sp.add_argument("--key-file", help="key file (default: $CFGCORE_SECRET_KEYS, then "
                        "$CFGCORE_SECRET_KEY_FILE)")  # fmt: skip

    k = sub.add_parser("keygen", help="print a new key")
    k.add_argument("--id", help="key id (default: derived from the key)")
    k.set_defaults(func=_keygen)

    e = sub.add_parser("encrypt", help="print ENC[...] of VALUE (or of standard input)")
    e.add_argument("value", nargs="?", help="plaintext (default: read standard input)")
    e.add_argument("--scheme", choices=("fernet", "aesgcm"), default="fernet")
    keys(e)
    e.set_defaults(func=_encrypt)

    d = sub.add_parser("decrypt", help="print the plaintext of an ENC[...] value")
    d.add_argument("value", help="ENC[...] envelope")
    keys(d)
    d.set_defaults(func=_decrypt)

    r = sub.add_parser("rotate", help="re-encrypt every ENC[...] under DIR with the newest key")
    r.add_argument("directory", help="configuration directory")
    r.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    keys(r)
    r.set_defaults(func=_rotate)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _keyring(args: Any) -> Any:
    from cfgcore.runtime.secrets import Keyring

    ring = Keyring.from_file(args.key_file) if args.key_file else Keyring.from_environ()
    if not ring:
        raise ConfigError("no keys: set CFGCORE_SECRET_KEYS or CFGCORE_SECRET_KEY_FILE, or "
                          "pass --key-file (make one with `cfgcore secrets keygen`)")  # fmt: skip
    return ring


def _keygen(args: Any) -> int:
    from cfgcore.runtime.secrets import generate_key

    try:
        print(generate_key(args.id))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return 0


def _encrypt(args: Any) -> int:
    from cfgcore.runtime.secrets import encrypt_value

    text = args.value if args.value is not None else sys.stdin.read()
    if args.value is None and text.endswith("\n"):
        text = text[:-1]  # `echo secret | cfgcore secrets encrypt`
    print(encrypt_value(text, _keyring(args), scheme=args.scheme))
    return 0


def _decrypt(args: Any) -> int:
    from cfgcore.runtime.secrets import decrypt_value

    try:
        print(decrypt_value(args.value.strip(), _keyring(args)))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return 0


def config_files(directory: str) -> list[str]:
    """Every configuration file under ``directory`` (hidden entries skipped)."""
    out = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out += [
            os.path.join(root, n)
            for n in sorted(names)
            if n.lower().endswith(_CONFIG_EXTS) and not n.startswith(".")
        ]
    return out


def rotate_directory(directory: str, keyring: Any, *, write: bool = True) -> dict[str, int]:
    """Re-encrypt every ``ENC[...]`` under ``directory`` with the newest key of
    ``keyring``; ``{file: values re-encrypted}``. All or nothing: a value no key decrypts
    is a ConfigError (every one listed, with file and line) and no file is written.

    A symlinked file is rewritten at its real target (atomically, the link kept); a
    file reached through several names is rewritten once, counted under the first."""
    from cfgcore.runtime.atomicio import atomic_write, read_regular
    from cfgcore.runtime.secrets import decrypt_value, encrypt_value, envelope_scheme

    if not os.path.isdir(directory):
        raise ConfigError("not a directory", file=directory)
    problems: list[Problem] = []
    planned: list[tuple[str, bytes, bytes, int]] = []
    counts: dict[str, int] = {}
    seen: set[str] = set()
    for path in config_files(directory):
        target = os.path.realpath(path)  # what a write must replace: the link's target
        if target in seen:
            continue
        seen.add(target)
        try:
            raw = read_regular(target)
        except OSError as exc:
            problems.append(Problem(path="", message=f"cannot read: {exc.strerror}", file=path))
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        n = 0

        def repl(m: re.Match[str], path: str = path, text: str = text) -> str:
            nonlocal n
            try:
                plain = decrypt_value(m.group(0), keyring)
            except ValueError as exc:
                line = text.count("\n", 0, m.start()) + 1
                problems.append(Problem(path="", message=str(exc), file=path, line=line))
                return m.group(0)
            n += 1
            return encrypt_value(plain, keyring, scheme=envelope_scheme(m.group(0)))

        reported = len(problems)
        new = _ENVELOPE_IN_TEXT.sub(repl, text)
        if len(problems) == reported:  # else those values are reported already
            problems.extend(_left_behind(path, new, keyring))
        if n:
            counts[path] = n
            mode = os.stat(target).st_mode & 0o7777
            planned.append((target, raw, new.encode("utf-8"), mode))
    if problems:
        raise ConfigError(problems)
    if write:
        # A file edited since it was read would lose that edit to our rewrite: refuse
        # before writing anything (the window left is the one between this check and
        # each rename, not the whole re-encryption).
        changed = [t for t, raw, _, _ in planned if _read_or_none(t) != raw]
        if changed:
            raise ConfigError([
                Problem(path="", message="changed while it was being re-encrypted; nothing "
                        "was written, run rotate again", file=t) for t in changed
            ])  # fmt: skip
        for target, _, data, mode in planned:
            atomic_write(target, data, mode=mode)
    return counts


def _read_or_none(path: str) -> bytes | None:
    from cfgcore.runtime.atomicio import read_regular

    try:
        return read_regular(path)
    except OSError:
        return None


def _left_behind(path: str, text: str, keyring: Any) -> list[Problem]:
    """A problem for every envelope that ``path``, once rewritten as ``text``, would
    still hold for a key other than the newest: the rewrite works on the text, and an
    envelope spelled with escapes (``"ENC\\u005b..."`` in JSON or TOML, ``"ENC\\x5b..."``
    in YAML) loads as one but is not seen there. Reported, never silently left for the
    retired key: removing that key would break the next load."""
    from cfgcore.config.files import FORMATS, parse_text
    from cfgcore.runtime.secrets import Keyring, decrypt_value, is_envelope

    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        return []
    try:
        data = parse_text(text[1:] if text.startswith("\ufeff") else text, fmt, path)
    except ConfigError:  # a file the loader refuses holds nothing it could read
        return []
    newest = Keyring(keyring.keys[:1], origin=keyring.origin)
    problems: list[Problem] = []

    def walk(node: Any, key: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, (*key, str(k)))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, (*key, str(i)))
        elif is_envelope(node):
            try:
                decrypt_value(node, newest)
            except ValueError:
                problems.append(Problem(
                    path=".".join(key),
                    message="this ENC[...] value still needs a retired key after rotation: "
                    "it is written with escapes that rotate cannot rewrite in place; write "
                    "it as plain ENC[...] text (or re-encrypt it with `cfgcore secrets "
                    "encrypt`) and rotate again",
                    file=path,
                ))  # fmt: skip

    walk(data, ())
    return problems


def _rotate(args: Any) -> int:
    ring = _keyring(args)
    counts = rotate_directory(args.directory, ring, write=not args.dry_run)
    verb = "would re-encrypt" if args.dry_run else "re-encrypted"
    for path, n in counts.items():
        where = os.path.relpath(path, args.directory)
        if os.path.islink(path):
            done = "would be rewritten" if args.dry_run else "rewritten"
            where += f" (a symlink: its target {os.path.realpath(path)} {done}, the link kept)"
        print(f"{verb} {n} value(s) in {where}")
    print(f"{sum(counts.values())} value(s) in {len(counts)} file(s) with key {ring.keys[0].kid}")
    return 0
