"""The cache file records the environment the repair commands name.

A process restarted after Redis lost its data, with no configuration manager, knew no
environment: the stored document (and its record) was gone, it had seen none, and no
manager served one, so its repair command said ``-e ENV``. The flag document's cache
file now records the environment the process that wrote it would have named (the one
the stored document records, else the one it last found recorded, else the one its
managers serve), and a process that knows none names that one. Cache files without the
field (earlier releases) still serve; a field that is no environment name is never
suggested. Real redis-server; the printed commands are run through ``cfgcore.cli.main``.
"""

from __future__ import annotations

import logging
import shlex
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.config.builder import is_environment_name
from cfgcore.runtime.redis_store import RedisFlagStore
from tests.fleet_repair import add, printed_command
from tests.fuzz import examples


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("cfgcore.fleet").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("cfgcore.fleet").setLevel(logging.NOTSET)


def cache_fields(path: Any) -> dict[str, Any]:
    with open(path, "rb") as f:
        return msgspec.msgpack.decode(f.read())


def write_fields(path: Any, fields: dict[str, Any]) -> None:
    with open(path, "wb") as f:
        f.write(msgspec.msgpack.encode(fields))


def published_and_cached(redis_server, tmp_path, ns: str) -> tuple[str, Any]:
    """A namespace published for staging, and the cache file a process that served it
    wrote. Returns the store URL and the cache file's path."""
    url = redis_server.url + f"?namespace={ns}"
    assert main(["publish", "--store", url + "&cache=off", "-e", "staging", "--flags"]) == 0
    cache = tmp_path / f"{ns}.msgpack"
    with RedisFlagStore(url + f"&cache={cache}") as first:
        doc = first.read()
        first._write_cache(doc)  # (as its follower does with the document it serves)
    return url, cache


def test_a_restarted_process_without_a_manager_names_its_cache_files_environment(
    redis_server, operator_shell, tmp_path, capsys
):
    url, cache = published_and_cached(redis_server, tmp_path, "cacheenv")
    assert cache_fields(cache)["environment"] == "staging"
    r = redis_server.client()
    r.flushall()  # Redis lost its data: the document and its record are gone
    with RedisFlagStore(url + f"&cache={cache}") as restarted:  # no manager
        doc = restarted.read()
        assert doc.version == 1  # the cache file's document serves
        msg = restarted.last_error or ""
        assert "lost its flag document" in msg, msg
        command = printed_command(msg)
        assert command.endswith(" -e staging --flags FILE"), command
        assert "ENV:" not in msg  # nothing left to fill in
        # The command as printed restores it, for the environment the namespace serves
        argv = shlex.split(command.replace("--flags FILE", f"--flags-from-cache {cache}"))
        capsys.readouterr()
        assert main(argv[1:]) == 0, capsys.readouterr().err
        assert restarted.read().version == 2
    assert r.hget("{cacheenv}:flags", "environment") == b"staging"


def test_a_cache_file_of_an_earlier_release_still_serves(redis_server, operator_shell, tmp_path):
    url, cache = published_and_cached(redis_server, tmp_path, "cacheold")
    fields = cache_fields(cache)
    del fields["environment"]  # as an earlier release wrote it
    write_fields(cache, fields)
    redis_server.client().flushall()
    with RedisFlagStore(url + f"&cache={cache}") as restarted:
        doc = restarted.read()
        assert doc.version == 1 and doc.checksum == fields["checksum"]
        msg = restarted.last_error or ""
        assert printed_command(msg).endswith(" -e ENV --flags FILE"), msg
        assert "ENV: the environment the namespace's processes serve" in msg


def test_the_environment_a_manager_served_is_cached_when_none_is_recorded(redis_server, tmp_path):
    """Flags written without a publish record no environment: the one the process's
    manager serves is what its repair named, and what its cache file keeps."""
    ns = "cacheowner"
    cache = tmp_path / "owner.msgpack"
    url = redis_server.url + f"?namespace={ns}&cache={cache}"

    class Manager:
        def serving_environment(self) -> str:
            return "production"

    manager = Manager()
    with RedisFlagStore(url) as store:
        store.add_owner(manager)
        store.update(add("a"))  # (its own write: cached as it returns)
        assert redis_server.client().hget(f"{{{ns}}}:flags", "environment") is None
    assert cache_fields(cache)["environment"] == "production"
    redis_server.client().flushall()
    with RedisFlagStore(url) as restarted:
        assert restarted.read().version == 1
        assert " -e production --flags FILE" in (restarted.last_error or "")


def test_a_live_manager_is_named_before_the_cache_file(redis_server, operator_shell, tmp_path):
    url, cache = published_and_cached(redis_server, tmp_path, "cachelive")
    redis_server.client().flushall()

    class Manager:
        def serving_environment(self) -> str:
            return "test"

    manager = Manager()
    with RedisFlagStore(url + f"&cache={cache}") as restarted:
        restarted.add_owner(manager)
        restarted.read()
        assert " -e test --flags FILE" in (restarted.last_error or "")
        restarted.remove_owner(manager)
        assert " -e staging --flags FILE" in restarted._repair_command()


HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),  # (what MessagePack holds)
    st.floats(allow_nan=True),
    st.binary(max_size=300),
    st.text(max_size=300),
    st.sampled_from(["../etc", "a b", "prod:eu", "-rf", "x" * 201, "\x1b[31mprod", "Staging"]),
    st.recursive(
        st.text(max_size=10) | st.integers(-(2**63), 2**64 - 1),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=20,
    ),
)


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=HOSTILE)
def test_a_cache_files_environment_is_suggested_only_when_e_takes_it(redis_server, tmp_path, value):
    """Whatever the field holds (another type, a name -e refuses, text a terminal would
    act on), reading the file does not fail, its document serves, and only a name -e
    takes is suggested."""
    cache = tmp_path / "hostile.msgpack"
    url = redis_server.url + f"?namespace=cachehostile&cache={cache}"
    if not cache.exists():
        with RedisFlagStore(url) as first:
            first.update(add("a"))
    fields = cache_fields(cache)
    fields["environment"] = value
    write_fields(cache.with_suffix(".tmp"), fields)
    cache.with_suffix(".tmp").replace(cache)
    with RedisFlagStore(url) as store:  # (Redis not read: what a restart knows)
        assert store.read_cache().version == fields["version"]
        env, note = store._environment_arg()
    takes = (
        isinstance(value, str)
        and value.isprintable()
        and 0 < len(value) <= 200
        and is_environment_name(value)
    )
    if takes:
        assert env == f"-e {shlex.quote(value)}" and note == ""
        assert shlex.split(env) == ["-e", value]
    else:
        assert env == "-e ENV" and note


@pytest.mark.parametrize("value", [17, ["staging"], {"name": "staging"}, b"staging", "a b", ""])
def test_a_restart_on_a_damaged_environment_field_serves_and_names_none(
    redis_server, operator_shell, tmp_path, value
):
    url, cache = published_and_cached(redis_server, tmp_path, "cachebad")
    fields = cache_fields(cache)
    fields["environment"] = value
    write_fields(cache, fields)
    redis_server.client().flushall()
    with RedisFlagStore(url + f"&cache={cache}") as restarted:
        assert restarted.read().version == 1
        msg = restarted.last_error or ""
        assert "lost its flag document" in msg and " -e ENV --flags FILE" in msg, msg
