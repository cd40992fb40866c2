"""What the fleet repair-command tests share: reading the printed ``cfgcore publish``
out of a refusal and running it as a shell would (the shell it runs in is the
``operator_shell`` fixture of tests/conftest.py)."""

from __future__ import annotations

import shlex
from collections.abc import Callable

import msgspec

from cfgcore.cli import main
from cfgcore.snapshot import Flag, Snapshot

JWT = "sup3r-s3cret-signing-key-0123456789abcdef"


def add(name: str) -> Callable[[Snapshot], Snapshot]:
    """A store change adding the flag ``name`` (default "on")."""
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})


def printed_command(message: str) -> str:
    """The command in a refusal, as an operator copies it: from ``cfgcore publish`` up
    to the parenthesis that explains it."""
    start = message.index("cfgcore publish --store")
    return message[start:].split(" (", 1)[0]


def run(command: str) -> int:
    """A printed ``cfgcore publish ...`` run as a shell would split it."""
    argv = shlex.split(command)
    assert argv[:2] == ["cfgcore", "publish"], command
    return main(argv[1:])
