"""``cfgcore publish --flags`` judges the document as every process does before it goes
live: a document that would move the users an A/B test has enrolled is refused (it is a
forced write, yet followers would refuse it and keep the last one while processes
starting afterwards served it: the fleet would split), unless it restarts the test as a
new run (a later ``experiments.TEST.since``); a secret reference served as written is
refused too. ``--flags-from-cache`` restores what the fleet served and is not compared
with the store's document. Real redis-server, real CLI."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.cli import main
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import encode_snapshot

NOW = datetime.now(timezone.utc)


@pytest.fixture
def served_store(redis_server, tmp_path):
    """A Redis store whose document holds an A/B test that has served (50/50)."""
    url = redis_server.url + "?namespace=judged&cache=off"
    m = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state", log_exposures=False)
    try:
        assert m.create_ab_test(
            ABTestConfiguration(
                test_name="checkout", description="", start_date=NOW - timedelta(days=1),
                end_date=NOW + timedelta(days=30), traffic_split={"control": 50, "green": 50},
                configurations={"control": {}, "green": {}}, success_metrics=["conversion"],
            )
        )  # fmt: skip
    finally:
        m.close()
    with RedisFlagStore(url) as store:
        doc = json.loads(encode_snapshot(store.read().snapshot, "json"))
    return url, doc


def _publish(url, doc, tmp_path, bundled_config, capsys, monkeypatch) -> tuple[int, str]:
    path = tmp_path / "publish.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setenv("JWT_SIGNING_KEY", "sup3r-s3cret-signing-key-0123456789abcdef")
    code = main(["publish", "--store", url, "--config-dir", str(bundled_config),
                 "--flags", str(path), "--actor", "oncall"])  # fmt: skip
    return code, capsys.readouterr().err


def _resplit(doc, since=None):
    split = {"control": 30, "green": 70}
    doc["experiments"]["checkout"]["traffic_split"] = split
    doc["flags"]["checkout"]["rules"][0]["split"] = split
    if since is not None:
        doc["experiments"]["checkout"]["since"] = since
    return doc


def _version(url) -> int:
    with RedisFlagStore(url) as store:
        return store.read().version


def test_a_publish_that_moves_enrolled_users_is_refused(
    served_store, tmp_path, bundled_config, capsys, monkeypatch
):
    url, doc = served_store
    before = _version(url)
    code, err = _publish(url, _resplit(doc), tmp_path, bundled_config, capsys, monkeypatch)
    assert code == 1
    assert "experiments.checkout.traffic_split" in err and "move" in err
    assert _version(url) == before  # the flag document is not written


def test_a_publish_restarting_the_test_as_a_new_run_goes_out(
    served_store, tmp_path, bundled_config, capsys, monkeypatch
):
    url, doc = served_store
    before = _version(url)
    code, err = _publish(
        url, _resplit(doc, since=time.time()), tmp_path, bundled_config, capsys, monkeypatch
    )
    assert code == 0, err
    assert _version(url) > before


def test_a_publish_serving_a_secret_reference_as_written_is_refused(
    served_store, tmp_path, bundled_config, capsys, monkeypatch
):
    url, doc = served_store
    before = _version(url)
    doc["flags"]["checkout"]["metadata"] = {"owner": "${file:/run/secrets/db}"}
    code, err = _publish(url, doc, tmp_path, bundled_config, capsys, monkeypatch)
    assert code == 1 and "flags.checkout.metadata.owner" in err
    assert _version(url) == before
