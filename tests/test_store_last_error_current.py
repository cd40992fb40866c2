"""A Redis flag store's ``last_error`` says what is wrong now, not what once was.

A process whose Redis user may only read (an ACL without ``@write``) serves an A/B
test another writer dropped and cannot record its retirement: the store's
``last_error`` said ``write failed: ...``, and kept saying it after every later
document was read and served, and after a later write of this process succeeded
(its user allowed to write again), so health and the OpenFeature provider, which
quote it when Redis is next unreachable, gave a reason long over. A document read
and accepted, or a write made, now clears a write's failure. Real redis-server,
real ACL."""

from __future__ import annotations

import msgspec
import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import Engine
from cfgcore.snapshot import Flag
from tests.test_retire_unwritable_store import _dropped, _test
from tests.waiting import wait_for

QUERY = "?namespace=ro&cache=off&poll=0.05"


def _other(name):
    def change(s):
        return msgspec.structs.replace(
            s, flags={**s.flags, name: Flag(variants={"on": True}, default="on")}
        )

    return change


@pytest.fixture
def reader(redis_server, tmp_path):
    """(another writer's URL, a manager following the store as Redis user ``reader``,
    whose ACL allows reads only, and a function granting it writes)."""
    admin = redis_server.client()
    admin.execute_command(
        "ACL", "SETUSER", "reader", "on", ">pw", "~*", "&*", "+@all", "-@write"
    )  # fmt: skip
    writer = DynamicConfigurationManager(store=redis_server.url + QUERY,
                                         state_dir=tmp_path / "w", record_usage=False,
                                         engine=Engine())  # fmt: skip
    try:
        assert writer.create_ab_test(_test()), writer.last_error
    finally:
        writer.close()
    url = redis_server.url.replace("redis://", "redis://reader:pw@") + QUERY
    manager = DynamicConfigurationManager(store=url, state_dir=tmp_path / "r",
                                          record_usage=False, engine=Engine())  # fmt: skip

    def grant_writes():
        admin.execute_command("ACL", "SETUSER", "reader", "+@write")

    yield redis_server.url + QUERY.replace("&poll=0.05", ""), manager, grant_writes
    manager.close()


def _failed_retirement(url, manager, stores):
    store = manager._live.store
    assert store.last_error is None
    stores(url).update(_dropped)  # another tool's write without the test
    assert wait_for(lambda: manager.get_ab_test("t") is None)
    assert wait_for(lambda: str(store.last_error).startswith("write failed"))
    assert "can't run this command" in store.last_error  # (the ACL's refusal)
    return store


def test_a_document_read_after_a_failed_write_clears_it(reader, stores):
    url, manager, _grant = reader
    store = _failed_retirement(url, manager, stores)
    stores(url).update(_other("later"))
    assert wait_for(lambda: "later" in manager.snapshot.flags)
    assert wait_for(lambda: store.last_error is None), store.last_error
    assert manager._live.last_error is None


def test_a_write_after_a_failed_write_clears_it(reader, stores):
    url, manager, grant_writes = reader
    store = _failed_retirement(url, manager, stores)
    grant_writes()
    assert manager.create_ab_test(_test()), manager.last_error
    assert store.last_error is None, store.last_error


def test_a_write_that_fails_again_says_so(reader, stores):
    url, manager, _grant = reader
    store = _failed_retirement(url, manager, stores)
    assert not manager.create_ab_test(_test())
    assert str(store.last_error).startswith("write failed")
