"""``cfgcore secrets``: make keys, encrypt and decrypt values, rotate a config directory.

``keygen [--id ID]`` prints a new key (``<id>:<base64>``): put it FIRST in
``CFGCORE_SECRET_KEYS`` (or the key file) and keep the old keys after it until
``rotate`` has re-encrypted everything. ``encrypt --path KEY.PATH [VALUE]`` (VALUE, else
standard input, so the secret stays out of the shell history) prints ``ENC[v2:...]``
with the newest key, bound to the key path it is for: it decrypts only there (without
``--path``, an unbound ``ENC[...]`` as before, with a warning); ``decrypt [--path
KEY.PATH] ENVELOPE`` prints the plaintext. ``rotate DIR`` re-encrypts every ``ENC[...]``
value of every configuration file under DIR with the newest key, keeping each file's
formatting, each value's scheme and its binding (``--bind``: unbound values are bound
to the key path they are found at); every value is decrypted and re-encrypted first,
and files are written (each atomically) only when all of them succeeded. A file that is
a symlink (a configuration shared between directories) is rewritten where it really
is, and the link is kept: replacing the link with a copy would leave the shared file
under the old key, and removing that key would break every other user of it.
``check DIR`` lists every unbound value and, with keys, every value that does not
decrypt where it is, each as ``file:line: key path: ...``; exit status 1 if it lists any.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from cfgcore.errors import ConfigError, Problem, format_key_path

_ENVELOPE_IN_TEXT = re.compile(r"ENC\[[^\]\s\"']+\]")
_CONFIG_EXTS = (".yaml", ".yml", ".json", ".toml")


def register(subparsers: Any) -> None:
    """Add the ``secrets`` command group."""
    p = subparsers.add_parser(
        "secrets", help="encrypted values: keygen, encrypt, decrypt, rotate, check"
    )
    sub = p.add_subparsers(dest="secrets_command", metavar="SUBCOMMAND")

    def keys(sp: Any) -> None:
        sp.add_argument("--key-file", help="key file (default: $CFGCORE_SECRET_KEYS, then "
                        "$CFGCORE_SECRET_KEY_FILE)")  # fmt: skip

    k = sub.add_parser("keygen", help="print a new key")
    k.add_argument("--id", help="key id (default: derived from the key)")
    k.set_defaults(func=_keygen)

    path_help = ("the key path the value is for (db.password; a name holding a dot: as "
                 "messages show it, 'loggers[\"uvicorn.access\"].token', "
                 "or a JSON list)")  # fmt: skip
    e = sub.add_parser("encrypt", help="print ENC[...] of VALUE (or of standard input)")
    e.add_argument("value", nargs="?", help="plaintext (default: read standard input)")
    e.add_argument(
        "--scheme",
        choices=("fernet", "aesgcm"),
        default="fernet",
        help="fernet (default; every key is tried to decrypt it) or aesgcm (AES-256-GCM, "
        "naming the newest key's id)",
    )
    e.add_argument("--path", help=path_help + ": the value decrypts only there")
    keys(e)
    e.set_defaults(func=_encrypt)

    d = sub.add_parser("decrypt", help="print the plaintext of an ENC[...] value")
    d.add_argument("value", help="ENC[...] envelope")
    d.add_argument("--path", help=path_help + " (needed for a bound ENC[v2:...] value)")
    keys(d)
    d.set_defaults(func=_decrypt)

    r = sub.add_parser("rotate", help="re-encrypt every ENC[...] under DIR with the newest key")
    r.add_argument("directory", help="configuration directory")
    r.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    r.add_argument("--bind", action="store_true",
                   help="also bind every unbound value to the key path it is found at "
                   "(review `cfgcore secrets check DIR` first)")  # fmt: skip
    keys(r)
    r.set_defaults(func=_rotate)

    c = sub.add_parser("check", help="list unbound ENC[...] values (and, with keys, values "
                       "that do not decrypt where they are)")  # fmt: skip
    c.add_argument("directory", help="configuration directory")
    keys(c)
    c.set_defaults(func=_check)
    p.set_defaults(func=lambda _args: (p.print_help(sys.stderr), 2)[1])  # usage: exit 2


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

    path = _key_path(args.path)
    text = args.value if args.value is not None else sys.stdin.read()
    if args.value is None and text.endswith("\n"):
        text = text[:-1]  # `echo secret | cfgcore secrets encrypt`
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # (bytes that are no UTF-8 reach here as surrogates: Python's error named the
        # codec, "surrogates not allowed", and not the input)
        where = "standard input" if args.value is None else "the VALUE argument"
        raise ConfigError(
            f"{where} is not UTF-8 text: ENC[...] values "
            "hold text; encode binary data first (base64)"
        ) from None
    print(encrypt_value(text, _keyring(args), scheme=args.scheme, path=path))
    if args.value is not None:
        warning = ("warning: the plaintext was given on the command line, where every local "
                   "user can read it while the command runs (ps, /proc/PID/cmdline) and the "
                   "shell history keeps it: pass it on standard input")  # fmt: skip
        print(warning, file=sys.stderr)
    if path is None:
        warning = ("warning: an unbound value (no --path): it decrypts at any key path, so "
                   "whoever can edit the file can move it into another key")  # fmt: skip
        print(warning, file=sys.stderr)
    return 0


def _key_path(raw: str | None) -> tuple[str, ...] | None:
    from cfgcore.runtime.secrets import key_path

    if raw is None:
        return None
    try:
        return key_path(raw)
    except ValueError as exc:
        raise ConfigError(f"--path: {exc}") from None


def _decrypt(args: Any) -> int:
    from cfgcore.runtime.secrets import decrypt_value

    try:
        print(decrypt_value(args.value.strip(), _keyring(args), path=_key_path(args.path)))
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


def rotate_directory(
    directory: str,
    keyring: Any,
    *,
    write: bool = True,
    bind: bool = False,
    bound: dict[str, int] | None = None,
) -> dict[str, int]:
    """Re-encrypt every ``ENC[...]`` under ``directory`` with the newest key of
    ``keyring``; ``{file: values re-encrypted}``. All or nothing: a value no key decrypts
    is a ConfigError (every one listed, with file and line) and no file is written.

    A bound value stays bound to its key path (it is decrypted there, so one moved from
    another key fails here too). With ``bind``, every unbound value is bound to the key
    path it is found at (``bound``, if given, receives ``{file: values newly bound}``).

    A symlinked file is rewritten at its real target (atomically, the link kept); a
    file reached through several names is rewritten once, counted under the first."""
    from cfgcore._encoding import UTF8_BOM, decode_text
    from cfgcore.runtime.atomicio import atomic_write, read_regular
    from cfgcore.runtime.secrets import decrypt_value, encrypt_value, envelope_scheme, is_bound

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
            text = decode_text(raw, path)
        except ConfigError as exc:
            # The loader refuses the file too; whether it holds values for the retired
            # key cannot be told, so the rotation may not call itself done.
            problems.extend(_unparsed(path, exc.problems, "not re-encrypted"))
            continue
        bom = UTF8_BOM if raw.startswith(UTF8_BOM) else b""  # kept as the file had it
        n = newly = 0
        # The key path of each envelope in the text (a binding needs it; None: not a
        # value the loader reads, e.g. in a comment).
        located = _envelope_paths(path, text)
        if located and all(where is None for where in located):
            data, why = _parse(path, text)
            if data is None and why:
                # Without key paths a bound value cannot be decrypted and --bind cannot
                # bind: rewriting only the rest would leave values for the retired key.
                problems.extend(_unparsed(path, why, "not re-encrypted"))
                continue
        slots = iter(range(len(located)))

        def repl(
            m: re.Match[str],
            path: str = path,
            text: str = text,
            located: list[tuple[str, ...] | None] = located,
            slots: Any = slots,
        ) -> str:
            nonlocal n, newly
            envelope = m.group(0)
            where = located[next(slots)]
            if where is None and is_bound(envelope):
                return envelope  # not a value (a comment): no key path to decrypt it at
            to_bind = where is not None and (bind or is_bound(envelope))
            try:
                plain = decrypt_value(envelope, keyring, path=where)
                # (a key path no binding can name, a key with an empty name: refused
                # here, with its file and line, not as a bare error naming neither)
                out = encrypt_value(plain, keyring, scheme=envelope_scheme(envelope),
                                    path=where if to_bind else None)  # fmt: skip
            except ValueError as exc:
                line = text.count("\n", 0, m.start()) + 1
                key = format_key_path(where) if where else ""
                problems.append(Problem(path=key, message=str(exc), file=path, line=line))
                return envelope
            n += 1
            newly += to_bind and not is_bound(envelope)
            return out

        reported = len(problems)
        new = _ENVELOPE_IN_TEXT.sub(repl, text)
        if len(problems) == reported:  # else those values are reported already
            problems.extend(_left_behind(path, new, keyring))
        if n:
            counts[path] = n
            if newly and bound is not None:
                bound[path] = newly
            mode = os.stat(target).st_mode & 0o7777
            planned.append((target, raw, bom + new.encode("utf-8"), mode))
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
        written: list[str] = []
        for target, _, data, mode in planned:
            try:
                atomic_write(target, data, mode=mode)
            except OSError as exc:
                # Each file is whole (old key or new), and the ring still decrypts both,
                # but the reader must know the rotation is half done: removing the old
                # key now would break every file not yet rewritten.
                done = ", ".join(written) if written else "none"
                raise ConfigError(
                    f"cannot write: {exc.strerror or exc}; the rotation is not finished: "
                    f"re-encrypted before it: {done}; this file and the ones after it "
                    "still need the old key (keep it in the ring), fix the cause and run "
                    "rotate again",
                    file=target,
                ) from None
            written.append(target)
    return counts


def _read_or_none(path: str) -> bytes | None:
    from cfgcore.runtime.atomicio import read_regular

    try:
        return read_regular(path)
    except OSError:
        return None


def _parsed(path: str, text: str) -> Any:
    """The data of the configuration file ``path`` holding ``text``, or None if the
    loader would refuse it (it then holds nothing a load could read)."""
    return _parse(path, text)[0]


def _parse(path: str, text: str) -> tuple[Any, list[Problem]]:
    """``(data, [])`` of the configuration file ``path`` holding ``text``, or ``(None,
    why)`` when the loader would refuse it (``why`` empty for a file of no known format)."""
    layer, why = _parse_layer(path, text)
    return (layer.data if layer is not None else None), why


def _parse_layer(path: str, text: str) -> tuple[Any, list[Problem]]:
    """:func:`_parse` as the loader's :class:`~cfgcore.config.files.Layer`, which
    knows the line of each key (``layer.line_of``)."""
    from cfgcore.config.files import FORMATS, parse_layer_text

    fmt = FORMATS.get(os.path.splitext(path)[1].lower())
    if fmt is None:
        return None, []
    try:
        return parse_layer_text(text, fmt, path), []
    except ConfigError as exc:
        return None, exc.problems


def _unparsed(path: str, why: list[Problem], what: str) -> list[Problem]:
    """``why`` (the loader's refusal of ``path``), each problem saying ``what`` that
    means for the command: the file's ``ENC[...]`` values have no key path to be found at."""
    return [
        Problem(
            path=p.path,
            message=f"{what}: the file does not parse: {p.message}",
            file=p.file or path,
            line=p.line,
        )  # fmt: skip
        for p in why
    ] or [Problem(path="", message=f"{what}: the file does not parse", file=path)]


def _under(path: str, data: Any) -> tuple[str, ...]:
    """Where in the file ``path`` the key paths of :func:`_values` are: a profile
    file's under its ``overrides`` key, others at its top."""
    if (
        os.path.basename(os.path.dirname(os.path.abspath(path))) == "profiles"
        and isinstance(data, dict)
        and isinstance(data.get("overrides"), dict)
    ):
        return ("overrides",)
    return ()


def _values(path: str, data: Any) -> list[tuple[tuple[str, ...], Any]]:
    """``(key path, value)`` of every leaf of the file ``path``'s ``data``, in document
    order, with the key path a load resolves it at: a profile file's (``profiles/``)
    ``overrides`` apply at the top of the configuration."""
    if _under(path, data):
        data = data["overrides"]
    out: list[tuple[tuple[str, ...], Any]] = []
    stack: list[tuple[Any, tuple[str, ...]]] = [(data, ())]
    while stack:  # iterative, in order: a deep file must not exhaust the stack
        node, key = stack.pop()
        if isinstance(node, dict):
            stack.extend(reversed([(v, (*key, str(k))) for k, v in node.items()]))
        elif isinstance(node, list):
            stack.extend(reversed([(v, (*key, str(i))) for i, v in enumerate(node)]))
        else:
            out.append((key, node))
    return out


_SLOT = re.compile(r"ENC\[cfgcore-slot-([0-9]+)\]")


def _envelope_paths(path: str, text: str) -> list[tuple[str, ...] | None]:
    """The key path of each ``ENC[...]`` that :data:`_ENVELOPE_IN_TEXT` finds in
    ``text``, in order (None where the loader reads no value: a comment). Found by
    parsing the text with each envelope replaced by a numbered marker, so the same
    envelope at several keys (or in a comment too) is told apart by position."""
    matches = list(_ENVELOPE_IN_TEXT.finditer(text))
    located: list[tuple[str, ...] | None] = [None] * len(matches)
    if not matches:
        return located
    counter = iter(range(len(matches)))
    marked = _ENVELOPE_IN_TEXT.sub(lambda _m: f"ENC[cfgcore-slot-{next(counter)}]", text)
    data = _parsed(path, marked)
    if data is None:
        return located
    for key, value in _values(path, data):
        slot = _SLOT.fullmatch(value) if isinstance(value, str) else None
        if slot is not None and key and int(slot[1]) < len(located):
            located[int(slot[1])] = key
    return located


def _left_behind(path: str, text: str, keyring: Any) -> list[Problem]:
    """A problem for every envelope that ``path``, once rewritten as ``text``, would
    still hold for a key other than the newest: the rewrite works on the text, and an
    envelope spelled with escapes (``"ENC\\u005b..."`` in JSON or TOML, ``"ENC\\x5b..."``
    in YAML) loads as one but is not seen there. Reported, never silently left for the
    retired key: removing that key would break the next load."""
    from cfgcore.runtime.secrets import Keyring, decrypt_value, is_bound, is_envelope

    layer, _ = _parse_layer(path, text)
    if layer is None:  # a file the loader refuses holds nothing it could read
        return []
    newest = Keyring(keyring.keys[:1], origin=keyring.origin)
    under = _under(path, layer.data)
    problems: list[Problem] = []
    for key, node in _values(path, layer.data):
        if not is_envelope(node):
            continue
        try:
            decrypt_value(node, newest, path=key or None)
        except ValueError:
            if is_bound(node):
                message = ("this ENC[v2:...] value would not decrypt at this key path with "
                           "the newest key after rotation: it is written with escapes that "
                           "rotate cannot rewrite in place, or the same envelope text "
                           "appears at more than one key (moved or copied); encrypt it "
                           "with `cfgcore secrets encrypt --path` and rotate again")  # fmt: skip
            else:
                message = ("this ENC[...] value still needs a retired key after rotation: "
                           "it is written with escapes that rotate cannot rewrite in place; "
                           "write it as plain ENC[...] text (or re-encrypt it with `cfgcore "
                           "secrets encrypt`) and rotate again")  # fmt: skip
            # file:line: key path: ..., as `secrets check` names a value (the rewrite
            # keeps every envelope on its line: the line is the file's as it is now)
            line = layer.line_of((*under, *key))
            problems.append(Problem(format_key_path(key), message, file=path, line=line))
    return problems


def _rotate(args: Any) -> int:
    ring = _keyring(args)
    bound: dict[str, int] = {}
    counts = rotate_directory(args.directory, ring, write=not args.dry_run, bind=args.bind,
                              bound=bound)  # fmt: skip
    verb = "would re-encrypt" if args.dry_run else "re-encrypted"
    for path, n in counts.items():
        where = os.path.relpath(path, args.directory)
        if os.path.islink(path):
            done = "would be rewritten" if args.dry_run else "rewritten"
            where += f" (a symlink: its target {os.path.realpath(path)} {done}, the link kept)"
        if bound.get(path):
            where += f", {bound[path]} of them newly bound to their key path"
        print(f"{verb} {n} value(s) in {where}")
    dry = " (dry run: nothing written)" if args.dry_run else ""
    print(
        f"{sum(counts.values())} value(s) in {len(counts)} file(s) with key {ring.keys[0].kid}{dry}"
    )
    return 0


def check_directory(directory: str, keyring: Any = None) -> tuple[list[Problem], int, int]:
    """``(findings, bound values, unbound values)`` of every configuration file under
    ``directory``: each unbound ``ENC[...]`` value (it decrypts at any key path), and
    with ``keyring`` each value that does not decrypt at the key path it is found at."""
    from cfgcore._encoding import decode_text
    from cfgcore.runtime.atomicio import read_regular
    from cfgcore.runtime.secrets import decrypt_value, is_bound, is_envelope

    if not os.path.isdir(directory):
        raise ConfigError("not a directory", file=directory)
    findings: list[Problem] = []
    n_bound = n_unbound = 0
    for path in config_files(directory):
        try:
            raw = read_regular(path)
        except OSError as exc:
            findings.append(Problem(path="", message=f"cannot read: {exc.strerror}", file=path))
            continue
        try:
            text = decode_text(raw, path)
        except ConfigError as exc:  # the loader refuses it too
            findings.extend(_unparsed(path, exc.problems, "not checked"))
            continue
        layer, why = _parse_layer(path, text)
        if layer is None:
            if "ENC[" in text:
                findings.extend(_unparsed(path, why, "not checked"))
            continue
        under = _under(path, layer.data)
        for key, value in _values(path, layer.data):
            if not is_envelope(value):
                continue
            # file:line: key path: ..., as a load names it (the line the file's own).
            where = {"path": format_key_path(key), "file": path,
                     "line": layer.line_of((*under, *key))}  # fmt: skip
            if is_bound(value):
                n_bound += 1
            else:
                n_unbound += 1
                findings.append(Problem(**where, message=(
                    "unbound ENC[...] value: it decrypts at any key path, so it may have "
                    "been moved here from another key; bind it with `cfgcore secrets "
                    "rotate --bind` (or `cfgcore secrets encrypt --path`)")))  # fmt: skip
            if keyring:
                try:
                    decrypt_value(value, keyring, path=key or None)
                except ValueError as exc:
                    findings.append(Problem(**where, message=str(exc)))
    return findings, n_bound, n_unbound


def _check(args: Any) -> int:
    from cfgcore.runtime.secrets import Keyring

    ring = Keyring.from_file(args.key_file) if args.key_file else Keyring.from_environ()
    findings, n_bound, n_unbound = check_directory(args.directory, ring or None)
    for problem in findings:
        print(problem)
    note = "" if ring else " (no keys: decryption not checked)"
    print(f"{n_bound} bound value(s), {n_unbound} unbound value(s){note}")
    return 1 if findings else 0
