"""The repair command a process prints names the environment to publish for (``-e``).

``cfgcore publish`` without ``-e`` publishes for the default environment
(``development``), and a namespace whose flag document records another environment
refuses it (FlagsEnvironmentError). The repair a process printed had no ``-e``: pasted as
printed, it was refused. Now it names the environment the stored flag document records
(read in the same round trip as the document), else the one the process last found
recorded (the document may be gone), else the one its configuration manager serves, else
``-e ENV`` with a word on what ENV is. Real redis-server; each printed command is run
through ``cfgcore.cli.main`` as printed (the configuration directory from
``$CFGCORE_CONFIG_DIR``, as an operator's shell would have it).
"""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import RedisFlagStore, _environment_text
from tests.fleet_repair import JWT, add, printed_command, run
from tests.redis_server import wait_for


def test_a_lost_publish_prints_the_recorded_environment_and_the_command_restores(
    redis_server, operator_shell, tmp_path, capsys
):
    ns = "envlost"
    url = redis_server.url + f"?namespace={ns}"
    key = f"{{{ns}}}:flags"
    r = redis_server.client()
    assert run(f"cfgcore publish --store '{url}&cache=off' -e staging --flags") == 0
    cache = tmp_path / "f.msgpack"
    f = RedisFlagStore(url + f"&poll=0.05&cache={cache}")
    errors: list[Exception] = []
    try:
        f.read()
        f.watch(lambda doc: None, on_error=errors.append)
        wait_for(lambda: f.connected)
        saved = r.dump(key)  # what the replica holds
        with RedisFlagStore(url + "&cache=off") as writer:
            writer.update(add("published"), force=True)  # lost in the failover below
        wait_for(lambda: f.version == 2 and f._cached == 2)
        r.restore(key, 0, saved, replace=True)
        wait_for(lambda: errors)
        msg = str(errors[0])
        command = printed_command(msg)
        assert " -e staging --flags-from-cache " in command, msg
        assert "ENV:" not in msg  # nothing left to fill in
        capsys.readouterr()
        # As the command was printed before: publishes for development, refused
        assert run(command.replace(" -e staging", "")) == 1
        assert "was published for environment 'staging'" in capsys.readouterr().err
        assert r.hget(key, "version") == b"1"  # nothing written
        # As printed now: restores the document this process serves, for everyone
        assert run(command) == 0, capsys.readouterr().err
        wait_for(lambda: f.version == 3)
        doc = f.read()
        assert "published" in doc.snapshot.flags and doc.forced
        assert r.hget(key, "environment") == b"staging"
    finally:
        f.close()


def test_a_flushed_store_prints_the_environment_the_process_last_found(
    redis_server, operator_shell, tmp_path, capsys
):
    ns = "envflush"
    url = redis_server.url + f"?namespace={ns}"
    key = f"{{{ns}}}:flags"
    r = redis_server.client()
    assert run(f"cfgcore publish --store '{url}&cache=off' -e test --flags") == 0
    cache = tmp_path / "f.msgpack"
    f = RedisFlagStore(url + f"&poll=0.05&cache={cache}")
    errors: list[Exception] = []
    try:
        f.read()
        f.watch(lambda doc: None, on_error=errors.append)
        wait_for(lambda: f.connected and f._cached == 1)
        served = f.read().snapshot
        r.flushall()  # the document and its record are gone: the process remembers
        wait_for(lambda: errors)
        msg = str(errors[0])
        assert "lost its flag document" in msg, msg
        command = printed_command(msg)
        assert command.endswith(" -e test --flags FILE"), command
        # FILE: the one placeholder, the document this process served
        capsys.readouterr()
        assert run(command.replace("--flags FILE", f"--flags-from-cache {cache}")) == 0, (
            capsys.readouterr().err
        )
        wait_for(lambda: f.version == 2)
        assert set(f.read().snapshot.flags) == set(served.flags)
        assert r.hget(key, "environment") == b"test"
    finally:
        f.close()


def test_a_manager_names_the_environment_it_serves_when_none_is_recorded(
    redis_server, operator_shell, tmp_path, capsys
):
    """Flags written without a publish record no environment: any -e is taken, and the
    first publish records its own, so a repair for development would have moved the
    namespace's flags away from the environment its processes serve."""
    ns = "envowner"
    url = redis_server.url + f"?namespace={ns}"
    key = f"{{{ns}}}:flags"
    r = redis_server.client()
    cache = tmp_path / "m.msgpack"
    with RedisFlagStore(url + "&cache=off") as writer:
        writer.update(add("written"))
    assert r.hget(key, "environment") is None

    def manager() -> ConfigurationManager:
        m = ConfigurationManager(
            str(operator_shell),
            flag_store=url + f"&poll=0.05&cache={cache}",
            environ={"JWT_SIGNING_KEY": JWT},
        )
        m.load_environment_config("staging")
        return m

    m = manager()
    try:
        assert m.flags.is_enabled("written") is True  # serving the store's flags
        store = m._flags._live.store
        wait_for(lambda: store.connected and store._cached == 1)
        r.flushall()
        wait_for(lambda: "lost its flag document" in (store.last_error or ""))
        msg = store.last_error
        assert " -e staging " in printed_command(msg), msg
    finally:
        m.close()
    # Closed, the manager no longer speaks for the store's environment.
    assert store._owner_environment() is None
    # A process started now: its first load opens the store and finds it lost, before
    # any configuration is live: the environment that load builds is named.
    m = manager()
    try:
        store = m._flags._live.store
        assert store is not None and store.version == 1  # served from the cache file
        msg = store.last_error or ""  # (the start's read, or its follower's first poll)
        assert "lost its flag document" in msg
        command = printed_command(msg)
        assert " -e staging " in command, msg
        capsys.readouterr()
        assert run(command.replace("--flags FILE", f"--flags-from-cache {cache}")) == 0, (
            capsys.readouterr().err
        )
        wait_for(lambda: store.version == 2)
        assert r.hget(key, "environment") == b"staging"
        assert m.flags.is_enabled("written") is True
    finally:
        m.close()


def test_the_recorded_environment_wins_over_the_managers(redis_server, tmp_path):
    """A namespace published for staging, served by a manager of another environment:
    the publish script refuses any other -e, so the command names the recorded one."""
    ns = "envboth"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    r = redis_server.client()
    with RedisFlagStore(url) as store:
        store.update(add("a"))
        r.hset(f"{{{ns}}}:flags", "environment", "staging")

        class Owner:
            def serving_environment(self):
                return "production"

        owner = Owner()
        store.add_owner(owner)
        store.read()
        assert " -e staging --flags FILE" in store._repair_command()
        r.hdel(f"{{{ns}}}:flags", "environment")
        store.read()  # the record is gone, the one found before stays
        assert " -e staging --flags FILE" in store._repair_command()
    with RedisFlagStore(url) as fresh:
        fresh.add_owner(owner)
        fresh.read()
        assert " -e production --flags FILE" in fresh._repair_command()
        fresh.remove_owner(owner)
        command = fresh._repair_command()
        assert " -e ENV --flags FILE" in command
        assert "ENV: the environment the namespace's processes serve" in command


@pytest.mark.parametrize("stored", [b"\x1b[31mprod", b"a:b", b"\xff\xfe", b"two words"])
def test_a_recorded_environment_no_publish_writes_is_not_printed_as_is(redis_server, stored):
    ns = "envodd"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    r = redis_server.client()
    with RedisFlagStore(url) as store:
        store.update(add("a"))
        r.hset(f"{{{ns}}}:flags", "environment", stored)
        store.read()
        command = store._repair_command()
    # none of them is a name -e takes (a publish never records one): the placeholder
    assert " -e ENV --flags FILE" in command and "\x1b" not in command
    assert "two words" not in command


def test_a_recorded_environment_longer_than_a_publish_writes_refuses_the_document(redis_server):
    """(Longer than 200 bytes: the read script does not read it, and readers refuse the
    document, as for every field past what cfgcore writes: tests/test_fleet_field_limits.py.)"""
    ns = "envlong"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    r = redis_server.client()
    with RedisFlagStore(url) as store:
        store.update(add("a"))
        r.hset(f"{{{ns}}}:flags", "environment", b"x" * 300)
        with pytest.raises(ConfigError, match="'environment' field .* 300 bytes") as refused:
            store.read()
    assert " -e ENV --flags FILE" in str(refused.value) and "x" * 201 not in str(refused.value)


def test_a_recorded_environment_is_shown_as_one_shell_word(redis_server):
    ns = "envword"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    r = redis_server.client()
    with RedisFlagStore(url) as store:
        store.update(add("a"))
        r.hset(f"{{{ns}}}:flags", "environment", b" Staging")  # -e takes it (trimmed, lower case)
        store.read()
        command = store._repair_command()
    assert " -e ' Staging' --flags FILE" in command


@given(st.one_of(st.text(max_size=250), st.binary(max_size=250), st.none(), st.integers()))
def test_environment_text_is_a_name_a_shell_gives_back(value):
    env = _environment_text(value)
    if env is None:
        return
    assert env and env.isprintable() and ":" not in env and len(env) <= 200
    assert shlex.split(f"-e {shlex.quote(env)}") == ["-e", env]
    assert env == (value.decode() if isinstance(value, bytes) else value)
