"""What the fleet tests of hostile or broken Redis state share: cfgcore's fleet log kept
quiet while they plant what it reports, and the store change that adds a flag.

``quiet_fleet`` is an autouse fixture: a test module imports it by name to have it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import msgspec
import pytest

from cfgcore.snapshot import Flag, Snapshot


@pytest.fixture(autouse=True)
def quiet_fleet() -> Iterator[None]:
    """The ``cfgcore.fleet`` logger at CRITICAL during each test (the refusals planted
    there are logged as ERRORs), its own level unset afterwards."""
    logging.getLogger("cfgcore.fleet").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("cfgcore.fleet").setLevel(logging.NOTSET)


def add(name: str) -> Callable[[Snapshot], Snapshot]:
    """A store change adding the flag ``name`` (default "on")."""
    return lambda s: msgspec.structs.replace(s, flags={**s.flags, name: Flag(default="on")})
