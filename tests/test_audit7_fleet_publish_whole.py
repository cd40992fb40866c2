"""``cfgcore publish --flags`` is all or nothing, seventh audit.

The publish wrote the configuration (``{NS}:config:ENV``) first and judged the flag
document only when writing it: a flag document refused there (it moves an A/B test's
enrolled users, serves a secret reference as written) failed the command with exit
status 1 and "nothing written" in spirit, yet every process following the published
configuration had already taken the new configuration, without the flags it was
validated with. Now the flag document is judged against the stored one before anything
is written. Real redis-server, real CLI.
"""

from __future__ import annotations

from cfgcore.runtime.redis_store import RedisConfigStore
from tests.test_fleet_publish_judged import _publish, _resplit, served_store  # noqa: F401


def _config_version(url) -> int:
    with RedisConfigStore(url, "development") as store:
        return store.read().version


def test_a_refused_flag_document_publishes_no_configuration(
    served_store,  # noqa: F811
    tmp_path,
    bundled_config,
    capsys,
    monkeypatch,
):
    url, doc = served_store
    before = _config_version(url)
    code, err = _publish(url, _resplit(doc), tmp_path, bundled_config, capsys, monkeypatch)
    assert code == 1 and "move" in err
    assert _config_version(url) == before  # the configuration is not written either
    doc["flags"]["checkout"]["metadata"] = {"owner": "${file:/run/secrets/db}"}
    code, err = _publish(url, doc, tmp_path, bundled_config, capsys, monkeypatch)
    assert code == 1 and "flags.checkout.metadata.owner" in err
    assert _config_version(url) == before


def test_an_accepted_publish_writes_both(
    served_store,  # noqa: F811
    tmp_path,
    bundled_config,
    capsys,
    monkeypatch,
):
    url, doc = served_store
    before = _config_version(url)
    code, err = _publish(url, doc, tmp_path, bundled_config, capsys, monkeypatch)
    assert code == 0, err
    assert _config_version(url) > before


def test_an_unreachable_store_is_an_error_naming_it_not_an_internal_one(
    tmp_path, bundled_config, capsys, monkeypatch
):
    from tests.redis_server import refused_port

    url = f"redis://:hunter2@127.0.0.1:{refused_port()}/0?socket_connect_timeout=0.5"
    code, err = _publish(url, {"flags": {}}, tmp_path, bundled_config, capsys, monkeypatch)
    assert code == 1
    assert "internal error" not in err and "hunter2" not in err
    assert "nothing written" in err and "127.0.0.1" in err


def test_an_unacknowledged_publish_leaves_no_configuration_without_its_flags(
    redis_server, tmp_path, bundled_config, capsys, monkeypatch
):
    """``wait=1`` and no replica to acknowledge (a slow or lost one): the configuration
    was written, its wait failed, and the publish ended before writing the flags it was
    validated with, though followers had taken the configuration. Now both are written
    and waited for once: the publish still fails (both may be lost in a failover) but
    never leaves one without the other."""
    from cfgcore.runtime.redis_store import RedisFlagStore

    url = redis_server.url + "?namespace=acked&cache=off"
    with RedisFlagStore(url) as fstore:
        flags_before = fstore.read().version
    config_before = _config_version(url)
    doc = {"flags": {"acked_flag": {"default": "on"}}}
    code, err = _publish(url + "&wait=1&wait_timeout=50", doc, tmp_path, bundled_config,
                         capsys, monkeypatch)  # fmt: skip
    assert code == 1 and "acknowledged by 0 of 1 replicas" in err
    assert _config_version(url) > config_before
    with RedisFlagStore(url) as fstore:
        stored = fstore.read()
    assert stored.version > flags_before and set(stored.snapshot.flags) == {"acked_flag"}
