"""The flag store's lock, third security round: a local user who could open the lock file
(mode 0644) could flock it read-only and hold every flag change of the service up for
ever. The lock file is now 0640 (an old 0644 one is narrowed), and a writer waits at most
``flagstore.LOCK_TIMEOUT`` before the change is refused, naming the lock and its holder.
Held by a real second process."""

from __future__ import annotations

import os
import stat

import msgspec
import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime import flagstore
from cfgcore.runtime.flagstore import open_store
from cfgcore.snapshot import Flag
from tests.test_audit3_sec_lock import holders  # noqa: F401  (fixture)


def _add(name: str):
    def change(snap):
        flags = dict(snap.flags)
        flags[name] = Flag(variants={"on": True, "off": False}, default="on")
        return msgspec.structs.replace(snap, flags=flags)

    return change


def test_a_held_lock_refuses_the_change_instead_of_hanging(tmp_path, holders, monkeypatch):  # noqa: F811
    monkeypatch.setattr(flagstore, "LOCK_TIMEOUT", 0.5)
    (tmp_path / "flags.yaml").write_text("flags: {}\n")
    store = open_store(str(tmp_path / "flags.yaml"))
    store.update(_add("first"))  # creates the file and its lock
    before = (tmp_path / "flags.yaml").read_bytes()
    holder = holders(store.lock_path)
    with pytest.raises(ConfigError, match=r"cannot lock flag file: lock held by pid \d+") as err:
        store.update(_add("second"))
    assert store.lock_path in str(err.value)
    assert (tmp_path / "flags.yaml").read_bytes() == before  # nothing changed
    holder.release()
    store.update(_add("second"))  # the lock is free again: the change goes through
    assert "second" in store.read().snapshot.flags


def test_the_lock_file_is_not_open_to_other_users(tmp_path):
    (tmp_path / "flags.yaml").write_text("flags: {}\n")
    store = open_store(str(tmp_path / "flags.yaml"))
    store.update(_add("x"))
    assert stat.S_IMODE(os.stat(store.lock_path).st_mode) & 0o007 == 0
    os.chmod(store.lock_path, 0o644)  # one an older cfgcore created
    store.update(_add("y"))
    assert stat.S_IMODE(os.stat(store.lock_path).st_mode) & 0o007 == 0
