"""``cfgcore publish --flags FILE`` is how an operator repairs a fleet whose stored flag
document holds an A/B test record of the wrong shape (written by another tool): every
follower refused that document and serves its last good one. The publish judges the
new document against the stored one (moved users), and deriving the stored one raised
on its malformed record, so the repair was refused with the stored document's problem
under no file name, as if the operator's file were at fault. Real redis-server.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec

from cfgcore.dynamic_config import ABTestConfiguration
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.snapshot import Snapshot, encode_snapshot
from tests.conftest import run_cli

NOW = datetime.now(timezone.utc)
JWT = "sup3r-s3cret-signing-key-0123456789abcdef"


def _test(split: dict[str, float]) -> ABTestConfiguration:
    return ABTestConfiguration(
        test_name="exp", description="", start_date=NOW - timedelta(days=1),
        end_date=NOW + timedelta(days=1), traffic_split=split,
        configurations={v: {"v": v} for v in split}, success_metrics=["ctr"],
    )  # fmt: skip


def _malformed(snap: Snapshot) -> Snapshot:
    meta = {**snap.experiments["exp"], "control": ["control"]}
    return msgspec.structs.replace(snap, experiments={**snap.experiments, "exp": meta})


def test_a_publish_repairs_a_stored_document_holding_a_malformed_record(
    redis_server, stores, tmp_path, bundled_config, capsys, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JWT_SIGNING_KEY", JWT)
    url = redis_server.url + "?namespace=repair&cache=off"
    path = tmp_path / "publish.json"
    argv = ["publish", "--store", url, "--config-dir", str(bundled_config), "--flags", str(path),
            "-e", "staging", "--actor", "oncall"]  # fmt: skip
    test = _test({"control": 50.0, "treatment": 50.0})
    good = Snapshot(flags={"exp": test.to_flag()}, experiments={"exp": test.to_metadata()})
    atomic_write(str(path), encode_snapshot(good, "json"))
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    store = stores(url)
    store.update(_malformed)  # another tool: no experiment checks; every follower refuses it
    assert store.read().snapshot.experiments["exp"]["control"] == ["control"]

    code, _, err = run_cli(capsys, *argv)  # the repair: the good document again
    assert code == 0, err
    stored = store.read().snapshot
    assert stored.experiments["exp"]["control"] == "control"


def test_a_publish_over_a_malformed_stored_document_still_refuses_moving_users(
    redis_server, stores, tmp_path, bundled_config, capsys, monkeypatch
):
    """The well-formed tests of the stored document are still judged: a publish that
    moves their users is refused, naming the store's test and the publish's file."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JWT_SIGNING_KEY", JWT)
    url = redis_server.url + "?namespace=repair2&cache=off"
    path = tmp_path / "publish.json"
    argv = ["publish", "--store", url, "--config-dir", str(bundled_config), "--flags", str(path),
            "-e", "staging", "--actor", "oncall"]  # fmt: skip
    a = _test({"control": 50.0, "treatment": 50.0})
    other = ABTestConfiguration(**{**a.__dict__, "test_name": "other"})
    good = Snapshot(
        flags={"exp": a.to_flag(), "other": other.to_flag()},
        experiments={"exp": a.to_metadata(), "other": other.to_metadata()},
    )
    atomic_write(str(path), encode_snapshot(good, "json"))
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    store = stores(url)
    store.update(_malformed)
    moved = _test({"control": 10.0, "treatment": 90.0})
    moved_other = ABTestConfiguration(**{**moved.__dict__, "test_name": "other"})
    bad = Snapshot(
        flags={"exp": a.to_flag(), "other": moved_other.to_flag()},
        experiments={"exp": a.to_metadata(), "other": moved_other.to_metadata()},
    )
    atomic_write(str(path), encode_snapshot(bad, "json"))
    code, _, err = run_cli(capsys, *argv)
    assert code != 0 and "experiments.other" in err, err
