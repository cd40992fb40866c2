"""A write script sent again after its reply was lost made the change twice, tenth
audit.

redis-py sends a command again on a new connection when the first one fails (the
store's command client retries once), and so it did with a write script whose reply
was lost after it ran (the connection reset by a proxy, a network blip): the script
ran again, found the document its first run had written, and answered a conflict. The
write then made its change a second time on top of its own (two versions for one
write, a change that is no plain assignment applied twice), a write with
``expected_version`` (``cfgcore publish --expect-version``) was refused as if another
publish had replaced the version it expected (exit 1, although it was written), and a
publish with flags was written twice. The scripts now know their own write (its writer
record is unique to it): sent again, they answer what they did.

Real redis-server; the lost reply is a ConnectionError raised as the reply of the
write script is read, after the server ran it.
"""

from __future__ import annotations

import msgspec
import pytest
import redis

from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore, RedisFlagStore
from cfgcore.snapshot import Flag
from tests.fleet_helpers import quiet_fleet  # noqa: F401 - autouse fixture


def _lose_first_reply(store: RedisFlagStore, sha: str) -> list[int]:
    """The reply of the first run of the script ``sha`` through ``store``'s command
    client is lost (a ConnectionError once the server ran it); returns the count of
    the script's runs sent."""
    client = store._client
    send = client._send_command_parse_response
    runs: list[int] = []

    def lossy(conn, command_name, *args, **options):
        reply = send(conn, command_name, *args, **options)
        if command_name == "EVALSHA" and args[1:2] == (sha,):
            runs.append(1)
            if len(runs) == 1:
                raise redis.ConnectionError("Connection reset by peer (after the script ran)")
        return reply

    client._send_command_parse_response = lossy
    return runs


def _bump(calls: list[int]):
    """A change that is no plain assignment: the flag ``n`` counts the changes made."""

    def change(snapshot):
        n = int(snapshot.flags["n"].default) if "n" in snapshot.flags else 0
        calls.append(n)
        return msgspec.structs.replace(
            snapshot, flags={**snapshot.flags, "n": Flag(default=str(n + 1))}
        )

    return change


@pytest.mark.parametrize("expected", [None, 1])
def test_a_write_whose_reply_was_lost_is_made_once(redis_server, expected):
    url = redis_server.url + "?namespace=resent&cache=off"
    with RedisFlagStore(url) as store:
        store.update(_bump([]))  # version 1, n = 1
        runs = _lose_first_reply(store, store._cas.sha)
        calls: list[int] = []
        _, new = store.update(_bump(calls), expected_version=expected)
        assert len(runs) == 2  # (sent again by redis-py: the case at hand)
        assert calls == [1]
        assert new.version == 2
        stored = store.read()
        assert stored.version == 2 and stored.checksum == new.checksum
        assert stored.snapshot.flags["n"].default == "2"


def test_a_publish_whose_reply_was_lost_is_written_once_and_not_refused(redis_server):
    from cfgcore.runtime.redis_store import _PAIR

    url = redis_server.url + "?namespace=resentpair&cache=off"
    with RedisConfigStore(url, "production") as config, RedisFlagStore(url) as flags:
        doc = PublishedConfig(environment="production", config={"n": 1})
        config.publish_with_flags(doc, flags, _bump([]))  # versions 1 and 1
        sha = config._client.register_script(_PAIR).sha
        runs = _lose_first_reply(config, sha)
        calls: list[int] = []
        doc = PublishedConfig(environment="production", config={"n": 2})
        config.publish_with_flags(doc, flags, _bump(calls), expected_version=1)
        assert len(runs) == 2
        assert calls == [1]
        assert config.read().version == 2 and config.read().snapshot.config == {"n": 2}
        stored = flags.read()
        assert stored.version == 2 and stored.snapshot.flags["n"].default == "2"


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "record-gone"])
def test_a_lost_write_another_writer_built_on_is_not_said_unwritten(redis_server, recorded):
    """The reply lost for good (the resend fails too), and another writer's document
    stored on top of this one meanwhile: the store's record of recent writes says this
    write was applied (fifteenth pass: test_fix15_fleet_resend_on_newer); without it
    (trimmed since, a store an earlier release wrote) the store cannot tell whether this
    write was applied (it was), so the error says the outcome is unknown, not that it
    failed to write (whereupon the caller makes the change again)."""
    url = redis_server.url + "?namespace=resentlost&cache=off"
    with RedisFlagStore(url) as store, RedisFlagStore(url) as other:
        store.update(_bump([]))  # version 1
        client = store._client
        send = client._send_command_parse_response
        runs: list[int] = []

        def lossy(conn, command_name, *args, **options):
            if command_name == "EVALSHA" and args[1:2] == (store._cas.sha,):
                runs.append(1)
                if len(runs) > 1:  # the resend: the connection is down
                    raise redis.ConnectionError("Connection refused (resend)")
                send(conn, command_name, *args, **options)  # version 2, ours
                other.update(_bump([]))  # version 3, on top of it
                if not recorded:
                    other._client.delete(other.writes_key)
                raise redis.ConnectionError("Connection reset by peer (after the script ran)")
            return send(conn, command_name, *args, **options)

        client._send_command_parse_response = lossy
        if recorded:
            _, new = store.update(_bump([]))
            assert new.version == 2 and len(runs) == 2
        else:
            with pytest.raises(ConfigError, match="the outcome is unknown"):
                store.update(_bump([]))
        assert other.read().snapshot.flags["n"].default == "3"  # (both applied)
