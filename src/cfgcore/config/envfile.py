"""``.env`` files and the seed's unprefixed settings with their ``CFGCORE_`` aliases.

A ``.env`` file supplies variables to ``${VAR}`` references (and to ``CFGCORE__``
overrides) the way python-dotenv reads one: ``KEY=value`` lines, ``export`` allowed,
quotes and ``${OTHER}`` interpolation inside the file. The real environment always wins
over the file. Which file: ``$CFGCORE_ENV_FILE`` (it must exist), else a ``.env`` beside
the configuration directory (in its parent directory), whether it is there at start or
created later: one that appears goes live with the next build (hot reload, ``reload()``,
``load_environment_config()``), as any input that appears. The embedded configuration
set reads none. The file is one of the configuration's inputs: watched and fingerprinted
like the configuration files, so hot reload sees an edited value, and a reload that
finds the file read before gone (deleted, a dangling link) or emptied is refused like a
deleted ``base.yaml`` (see :func:`cfgcore.config.builder.reject_truncated`).
The settings in :data:`PROCESS_ONLY` (secret directories and keys, audit keys, the
access policy) are taken from the process environment only: a ``.env`` file setting
one is warned of and the setting ignored.
"""

from __future__ import annotations

import io
import logging
import os
import re
import stat
from collections import ChainMap
from collections.abc import Iterator, Mapping
from typing import Any

from cfgcore.errors import ConfigError, Problem, printable_name

ENV_FILE_VAR = "CFGCORE_ENV_FILE"

log = logging.getLogger("cfgcore.config")

# Settings that decide what may be read or decrypted, and where the audit and the
# policy live: the process environment's alone. Set in a .env file beside the
# configuration, CFGCORE_SECRET_DIRS=/ let a CFGCORE__ override in the same file copy
# any file the service can read into a key (${file:/...}), and CFGCORE_SECRET_KEYS
# put another key ring in place of the one the service was given.
PROCESS_ONLY = frozenset(
    {
        "CFGCORE_SECRET_DIRS",
        "CFGCORE_SECRET_KEYS",
        "CFGCORE_SECRET_KEY_FILE",
        "CFGCORE_AUDIT_KEY",
        "CFGCORE_AUDIT_KEY_FILE",
        "CFGCORE_AUDIT_CHECKPOINT",
        "CFGCORE_ACCESS_POLICY",
        # the fleet's signing key, and the keys whose signatures a follower trusts
        "CFGCORE_FLEET_SIGNING_KEY",
        "CFGCORE_FLEET_SIGNING_KEY_FILE",
        "CFGCORE_FLEET_VERIFY_KEYS",
        "CFGCORE_FLEET_VERIFY_KEY_FILE",
        ENV_FILE_VAR,
    }
)


def env_file_for(environ: Mapping[str, str], config_dir: str, embedded: bool) -> str | None:
    """The ``.env`` file to read for ``config_dir``, or None.

    ``$CFGCORE_ENV_FILE`` names one explicitly (a missing file is an error: a typo must
    not silently drop every secret it held); otherwise ``<parent of config_dir>/.env``
    if it exists, the directory is not the embedded set and the file is not one anyone
    could have put there (:func:`untrusted`: then it is ignored, with a warning). A
    file read is refused (:class:`ConfigError`) whenever it reads as :func:`untrusted`.
    """
    named = (environ.get(ENV_FILE_VAR) or "").strip()
    if named:
        path = os.path.abspath(os.path.expanduser(named))
        if not os.path.isfile(path):
            why = "is not a regular file" if os.path.exists(path) else "does not exist"
            raise ConfigError(f"{ENV_FILE_VAR} names a file that {why}", file=path)
        return path
    if embedded:
        return None
    beside = env_file_beside(config_dir)
    if not os.path.isfile(beside):
        if os.path.exists(beside) and not os.path.isdir(beside):
            # A FIFO, a device or a socket where the .env file goes: refused as one in
            # place of a configuration file is. (A directory there is no .env file, a
            # virtualenv named .env: passed over.)
            raise ConfigError(
                "is not a regular file (a FIFO, a device or a socket), where the .env "
                "file beside the configuration directory goes",
                file=beside,
            )
        return None
    why = untrusted(beside)
    if why:
        # Found, not named: a configuration directory in /tmp (or another directory
        # every user may write) took whatever .env file someone put beside it. Naming
        # it in $CFGCORE_ENV_FILE is no way round that: a named file is refused so.
        _warn_ignored(beside, why)
        return None
    return beside


def env_file_beside(config_dir: str) -> str:
    """Where the ``.env`` file beside ``config_dir`` goes: in its parent directory."""
    return os.path.join(os.path.dirname(os.path.abspath(config_dir)), ".env")


def _warn_ignored(path: str, why: str) -> None:
    log.warning(
        "ignoring %s: %s (to use it, make it writable by its owner only, owned by this "
        "user or root, in a directory other users cannot write; %s refuses it as it is)",
        printable_name(path), why, ENV_FILE_VAR,
    )  # fmt: skip


def untrusted(path: str) -> str:
    """Why the ``.env`` file ``path`` may hold anyone's values (``""``: it may not):
    writable by every user, in a directory that lets anyone replace it, or in one every
    user may create files in (``/tmp``) and made by another user than this one or root
    (:func:`cfgcore.runtime.atomicio.rewritable_by_all`, as for key and policy files)."""
    from cfgcore.runtime.atomicio import rewritable_by_all

    if os.name == "nt":  # pragma: no cover - no POSIX permission bits
        return ""
    try:
        st = os.stat(path)
    except OSError:
        return ""  # reading it says why
    return rewritable_by_all(path, st)


class EnvironWithFile(Mapping[str, str]):
    """The process environment, then a ``.env`` file's values for names it lacks.

    Lookups consult ``os.environ`` live (a variable exported later is seen), and the
    file is re-read when it changes (size, modification or change time, inode).
    """

    def __init__(
        self,
        path: str,
        base: Mapping[str, str] | None = None,
        *,
        named: bool = False,
        optional: bool = False,
    ) -> None:
        self.path = path
        #: True when ``$CFGCORE_ENV_FILE`` named the file (it must exist), False for a
        #: ``.env`` found beside the configuration directory (it may be absent).
        self.named = named
        #: True for the place beside the configuration directory where a ``.env`` file
        #: goes, whether one is there or not (yet): as :func:`env_file_for` judges it at
        #: start, a directory there (a virtualenv named ``.env``) is no ``.env`` file, and
        #: one that reads as :func:`untrusted` is ignored with a warning, not refused;
        #: where a file was read, either is refused (a change to judge, not passed over).
        self.optional = optional
        self._base = base
        self._stamp: tuple[int, ...] | None = None
        # The untrusted file last ignored (warned of once); at start env_file_for did.
        self._ignored = _stamp_of(path) if optional else None
        self._values: dict[str, str] = {}
        #: Names the file sets from a ``${VAR}`` that is not set (and has no default):
        #: name -> (line, VAR). They are left unset, not set to "" (python-dotenv's
        #: answer), so a configuration's ``${NAME}`` is the missing-variable error.
        self.unresolved: dict[str, tuple[int, str]] = {}
        self._lines: dict[str, int] = {}

    @property
    def base(self) -> Mapping[str, str]:
        return os.environ if self._base is None else self._base

    def file_values(self) -> dict[str, str]:
        """The file's variables (python-dotenv semantics), re-read if it changed."""
        try:
            st = os.stat(self.path)
        except OSError:
            st = None
        if st is None or (self.optional and self._stamp is None and stat.S_ISDIR(st.st_mode)):
            self._stamp, self._values, self.unresolved, self._lines = None, {}, {}, {}
            return self._values
        stamp = _stamp(st)
        if stamp != self._stamp:
            why = untrusted(self.path)
            if why and self.optional and self._stamp is None:
                # Not read before: ignored, as env_file_for ignores it at start.
                if stamp != self._ignored:
                    self._ignored = stamp
                    _warn_ignored(self.path, why)
                return self._values  # (none)
            if why:
                raise ConfigError(f"the .env file is refused: {why}", file=self.path)
            values, self.unresolved, lines = _read(self.path)
            ignored = sorted(PROCESS_ONLY.intersection(values))
            if ignored:
                log.warning(
                    "the .env file %s sets %s, which only the process environment may set: ignored",
                    printable_name(self.path),
                    ", ".join(ignored),
                )
                values = {k: v for k, v in values.items() if k not in PROCESS_ONLY}
            self._values = values
            self._lines = lines
            self._stamp = stamp
        return self._values

    def state(self) -> str:
        """Read the file (if changed) and say what a build found: ``"missing"`` (deleted,
        or a link leading nowhere), ``"empty"`` (no bytes) or ``"read"``. Raises
        :class:`ConfigError` for a file that cannot be read or is refused."""
        self.file_values()
        stamp = self._stamp
        if stamp is None:
            return "missing"
        return "empty" if stamp[1] == 0 else "read"

    def why_unset(self, name: str) -> str:
        """Why ``name`` is unset although the file names it ("" when it does not):
        ``" (<file>:<line> sets it from ${VAR}, which is not set)"``."""
        if name in self.base:
            return ""
        self.file_values()
        found = self.unresolved.get(name)
        if found is None:
            return ""
        line, var = found
        return f" ({self.path}:{line} sets it from ${{{var}}}, which is not set)"

    def origin(self, name: str) -> tuple[str, int] | None:
        """``(this file, the line that sets name)`` when the value of ``name`` comes from
        the file (the environment does not set it), else None: where an error about the
        variable points."""
        if name in self.base:
            return None
        self.file_values()
        line = self._lines.get(name)
        return None if line is None else (self.path, line)

    def __getitem__(self, name: str) -> str:
        base = self.base
        if name in base:
            return base[name]
        return self.file_values()[name]

    def __contains__(self, name: object) -> bool:
        return name in self.base or name in self.file_values()

    def __iter__(self) -> Iterator[str]:
        base = self.base
        yield from base
        for name in self.file_values():
            if name not in base:
                yield name

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _stamp(st: os.stat_result) -> tuple[int, ...]:
    """What tells one version of a ``.env`` file from another. The ctime and inode too:
    an edit that keeps the size and sets the mtime back (or a file renamed into place
    with an older one) was not read again, and a reload the watcher started for it
    activated the old values."""
    return (st.st_mtime_ns, st.st_size, st.st_ctime_ns, st.st_ino, st.st_dev)


def _stamp_of(path: str) -> tuple[int, ...] | None:
    try:
        return _stamp(os.stat(path))
    except OSError:
        return None


def _read(path: str) -> tuple[dict[str, str], dict[str, tuple[int, str]], dict[str, int]]:
    """The file's variables, those it sets from an unset ``${VAR}`` (see
    :attr:`EnvironWithFile.unresolved`), which are left out of the first, and the line
    setting each of the first (the last that does)."""
    from dotenv.parser import parse_stream
    from dotenv.variables import Variable, parse_variables

    from cfgcore._encoding import decode_text
    from cfgcore.runtime.atomicio import read_regular

    try:
        # A regular file of bounded size: a FIFO would block every build, and its lock.
        raw = read_regular(path)
    except OSError as exc:
        raise ConfigError(f"cannot read the .env file: {exc.strerror or exc}", file=path) from None
    # (An editor's byte-order mark is not part of the first name.)
    text = decode_text(raw, path, "cannot read the .env file: ")
    # python-dotenv's own parser, which says where a statement went wrong (dotenv_values
    # only logs it, without the file name, and drops the variable).
    bindings = list(parse_stream(io.StringIO(text)))
    bad = [b for b in bindings if b.error]
    if bad:
        raise ConfigError(
            [Problem("", _parse_problem(b.original.string), file=path, line=_line(b)) for b in bad]
        )
    # Interpolate: ${OTHER} inside the file resolves against the real environment and
    # the file's earlier lines, as python-dotenv's resolve_variables does for load_dotenv
    # (override=True). One difference: a reference to a variable that is not set, without
    # a default, leaves the name unset instead of "" (the seed's example,
    # SPOTIFY_API_KEY=${SPOTIFY_API_SECRET}, served an empty key without a word).
    values: dict[str, str | None] = {}
    unresolved: dict[str, tuple[int, str]] = {}
    lines: dict[str, int] = {}
    # The file's values over the environment, as python-dotenv's {**os.environ, **values}
    # but not copied for each line (that cost minutes for a file of 100,000 lines).
    env: ChainMap[str, str | None] = ChainMap(values, os.environ)  # type: ignore[arg-type]
    # Values made of references to values can double at each line (B=${A}${A},
    # C=${B}${B}...): forty lines asked for terabytes. What they expand to is bounded.
    budget = _MAX_EXPANDED + len(text)
    for b in bindings:
        if b.key is None:
            continue
        unresolved.pop(b.key, None)
        if b.value is None:  # a bare `NAME` line (no '='): no value, as python-dotenv
            values[b.key] = None
            continue
        atoms = list(parse_variables(b.value))  # a generator
        missing = [
            a.name
            for a in atoms
            if isinstance(a, Variable) and a.default is None and a.name not in env
        ]
        if missing:
            values.pop(b.key, None)  # unset: later lines see it unset too
            unresolved[b.key] = (_line(b), missing[0])
            continue
        parts = []
        for atom in atoms:
            part = atom.resolve(env)
            budget -= len(part)
            if budget < 0:
                message = (
                    f"the value of {b.key} takes the file's values past "
                    f"{_MAX_EXPANDED >> 20} MiB (${{...}} references repeating long values)"
                )
                raise ConfigError([Problem("", message, file=path, line=_line(b))])
            parts.append(part)
        value = values[b.key] = "".join(parts)
        lines[b.key] = _line(b)
        if "\0" in value or "\0" in b.key:
            # No environment variable can hold one (execve ends the text there): a
            # binary or corrupted file, whose value a program given it would cut short.
            shown = b.key.replace("\0", "\\0")
            message = (
                f"{shown}: a NUL character, which no environment variable can hold "
                "(a binary or damaged file?)"
            )
            raise ConfigError([Problem("", message, file=path, line=_line(b))])
    return {k: v for k, v in values.items() if v is not None}, unresolved, lines


def _line(binding: Any) -> int:
    """The line a python-dotenv binding's statement is on: its ``original.line`` is
    that of the blank lines before it, which its text begins with."""
    text = binding.original.string
    return int(binding.original.line) + text[: len(text) - len(text.lstrip())].count("\n")


# What a .env file's values may expand to through ${...} references, beyond its size.
_MAX_EXPANDED = 64 << 20


_NAME = re.compile(r"\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.\-]*)\s*=")


def _parse_problem(statement: str) -> str:
    # The statement itself is not shown: a .env file holds secrets.
    m = _NAME.match(statement)
    what = f"the value of {m.group(1)}" if m else "this statement"
    return f"could not parse {what} (python-dotenv syntax: NAME=value, quotes closed)"


def aliased(environ: Mapping[str, str], name: str) -> str | None:
    """``CONFIG_<NAME>`` (the seed's name) or its alias ``CFGCORE_<NAME>``.

    Both set to different values is an error rather than a silent choice.
    """
    from cfgcore.config.environ import plain_text

    seed, ours = f"CONFIG_{name}", f"CFGCORE_{name}"
    # The text a value holds (a str subclass's own strip or lower may say anything);
    # a value that is not text is no setting.
    a, b = plain_text(environ.get(seed)), plain_text(environ.get(ours))
    if a and b and a.strip().lower() != b.strip().lower():
        raise ConfigError(
            f"{seed}={a!r} and {ours}={b!r} disagree: set only one of them", file="<environment>"
        )
    return a or b
