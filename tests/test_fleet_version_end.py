"""A flag document whose stored version was set to 2**53 - 1 (by hand, or by another
program that can write Redis): no write can follow it, and the refusal said to delete
the floor key and restart the processes, which changed nothing (the floor was not what
was at the end, and a restarted process serves that version again from its cache
file): writes and publishes were refused again with the same advice. The refusal now
names what holds the version (the stored document, this process's cache file, the floor
key) and, for a document, the way out that works: stop the processes, remove their
cache files, retire the namespace, publish. Real redis-server."""

from __future__ import annotations

import os

import pytest

from cfgcore.cli import main
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_follow import MAX_VERSION
from cfgcore.runtime.redis_store import retire_namespace
from cfgcore.snapshot import Flag, Snapshot
from tests.redis_server import wait_for

FLAGS = os.path.join(os.path.dirname(__file__), "..", "src", "cfgcore", "defaults", "flags.yaml")


def add(name):
    def change(snap):
        return Snapshot(flags={**snap.flags, name: Flag(default="on")})

    return change


def test_a_stored_version_at_the_end_is_named_with_a_way_out_that_works(
    redis_server, stores, tmp_path
):
    url = redis_server.url + f"?namespace=end&poll=0.2&cache={tmp_path}/flags.msgpack"
    r = redis_server.client()
    stores(url).update(add("a"))
    follower = stores(url)
    seen = []
    follower.watch(seen.append)
    r.hset("{end}:flags", "version", MAX_VERSION)  # the same data, under the last version
    wait_for(lambda: follower.version == MAX_VERSION)  # (taken, and cached)
    writer = stores(url)
    for force in (False, True):
        with pytest.raises(ConfigError) as err:
            writer.update(add("b"), force=force)
        msg = str(err.value)
        assert f"the stored document {{end}}:flags is at version {MAX_VERSION}" in msg
        assert "this process served or cached version" in msg  # the shared cache file
        assert "DEL {end}:flags:floor" not in msg  # the floor holds nothing that high
        assert "cfgcore retire --store" in msg and "remove their cache files" in msg
    # The way out it names: the processes stopped, their cache files removed, the
    # namespace retired; then a publish is written and a new process serves it.
    follower.close()
    writer.close()
    os.remove(tmp_path / "flags.msgpack")
    retire_namespace(url)
    _, new = stores(url).update(add("b"), force=True)
    assert new.version < MAX_VERSION
    assert "b" in stores(url).read().snapshot.flags


def test_a_floor_at_the_end_still_says_delete_the_floor_key(redis_server, stores):
    url = redis_server.url + "?namespace=endf&cache=off"
    stores(url).update(add("a"))
    redis_server.client().set("{endf}:flags:floor", MAX_VERSION)
    with pytest.raises(ConfigError) as err:
        stores(url).update(add("b"))
    msg = str(err.value)
    assert f"the floor key {{endf}}:flags:floor holds {MAX_VERSION}" in msg
    assert "Delete the floor key (DEL {endf}:flags:floor)" in msg
    assert "the stored document" not in msg and "retire" not in msg


def test_publish_names_the_stored_document_at_the_end_in_one_line(
    redis_server, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=endp"
    assert main(["publish", "--store", url, "-e", "development", "--flags", FLAGS]) == 0
    redis_server.client().hset("{endp}:flags", "version", MAX_VERSION)
    capsys.readouterr()
    assert main(["publish", "--store", url, "-e", "development", "--flags", FLAGS]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"the stored document {{endp}}:flags is at version {MAX_VERSION}" in err
    assert "cfgcore retire --store" in err
