"""A write that compared only the stored version (and epoch) with the one it read, tenth
audit.

The write script is a compare-and-set: a writer reads the document, computes and
judges its change on it, and stores the result only if the store still holds what it
read. It compared the version and the epoch only. Another document stored under that
same number between the read and the write (a failover lost the write that took the
number first, and a writer that had not seen it took the number again; or a hand
repair with ``HSET`` keeping the version) passed the comparison: the writer stored its
change computed on the document it read, and the other write (acknowledged to its
writer) was gone without a word, its flags never judged against. The script now
compares the checksum too, so the writer computes and judges its change again on the
document stored.

Real redis-server; the failover's lost write is reproduced by putting the key back as
the replica held it (DUMP before the write, RESTORE after), as in
test_audit7_fleet_same_version.py.
"""

from __future__ import annotations

import msgspec

from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.fleet_helpers import quiet_fleet  # noqa: F401 - autouse fixture


def _set(name: str, default: str):
    return lambda s: msgspec.structs.replace(
        s, flags={**s.flags, name: Flag(default=default, variants={"on": True, "off": False})}
    )


def test_a_write_is_made_again_on_another_document_stored_under_the_number_it_read(
    redis_server, tmp_path
):
    url = f"{redis_server.url}?namespace=casid"
    client = redis_server.client()
    a = RedisFlagStore(f"{url}&cache={tmp_path / 'a.msgpack'}")
    b = RedisFlagStore(f"{url}&cache={tmp_path / 'b.msgpack'}")
    c = RedisFlagStore(f"{url}&cache={tmp_path / 'c.msgpack'}")
    try:
        a.update(_set("checkout", "off"))  # version 1
        replica = client.dump("{casid}:flags")  # what the replica holds
        a.update(_set("checkout", "on"))  # version 2, lost in the failover below
        seen: list[set[str]] = []

        def change(snapshot):
            seen.append(set(snapshot.flags))
            if len(seen) == 1:
                # c read version 2 (checkout on); now the failover, and b, which never
                # saw that 2, writes another 2 (search on): acknowledged to b.
                client.restore("{casid}:flags", 0, replica, replace=True)
                _, written = b.update(_set("search", "on"))
                assert written.version == 2
            return _set("banner", "on")(snapshot)

        _, new = c.update(change)
        # c's change was made again on the document stored: b's write kept.
        assert len(seen) == 2
        assert "search" in seen[1]
        assert new.version == 3
        stored = c.read()
        assert stored.checksum == new.checksum
        assert set(stored.snapshot.flags) == {"checkout", "search", "banner"}
        assert stored.snapshot.flags["checkout"].default == "off"
    finally:
        for s in (a, b, c):
            s.close()


def test_a_write_is_made_again_on_data_replaced_by_hand_under_the_same_version(
    redis_server, tmp_path
):
    url = f"{redis_server.url}?namespace=casid2&cache=off"
    client = redis_server.client()
    with RedisFlagStore(url) as a, RedisFlagStore(url) as other:
        a.update(_set("checkout", "off"))  # version 1
        other_doc = other.read()
        edited = _set("checkout", "on")(other_doc.snapshot)
        data = other._encode(edited)
        import hashlib

        calls: list[str] = []

        def change(snapshot):
            calls.append(snapshot.flags["checkout"].default)
            if len(calls) == 1:
                # An operator repairs the document by hand, keeping its version.
                client.hset(
                    "{casid2}:flags",
                    mapping={"data": data, "checksum": hashlib.sha256(data).hexdigest()},
                )
            return _set("banner", "on")(snapshot)

        _, new = a.update(change)
        assert calls == ["off", "on"]
        assert new.version == 2
        assert a.read().snapshot.flags["checkout"].default == "on"
