"""Each running file watcher's liveness is a metric, so an alert can fire before readiness
flips.

``cfgcore_config_watcher_last_tick_age_seconds`` is how long ago each watcher's loop last
came round (what the health ``freshness`` check compares with the bound), and
``cfgcore_config_watcher_stall_bound_seconds`` is that bound, labelled by ``watcher``
(its name, as the health check gives it), ``config_dir`` (a configuration manager's
watchers) or ``store`` (the dynamic-config manager's flags file watcher). A stopped
watcher has no series.

Real watchers on real files, scraped through prometheus_client and checked with its
parser and ``promtool check metrics``; a reload is blocked on an Event the test holds,
and every wait is for a state, with a deadline."""

from __future__ import annotations

import asyncio
import subprocess
import uuid

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.runtime.atomicio import atomic_write, atomic_write_text
from tests.conftest import copy_bundled_config
from tests.test_alerts import promtool  # noqa: F401 - the fixture
from tests.test_obs3_watcher_stuck import (
    STALL,
    _blocking_transform,
    _BlockingSubscriber,
    _flags,
    _Hang,
    _stuck_reason,
    _write_marker,
)
from tests.waiting import wait_for, wait_for_async

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from cfgcore.observability.prometheus import exposition  # noqa: E402

AGE = "cfgcore_config_watcher_last_tick_age_seconds"
BOUND = "cfgcore_config_watcher_stall_bound_seconds"


def _scrape() -> bytes:
    return exposition(CollectorRegistry())


def _series(name: str, text: bytes | None = None) -> dict[tuple[str, str, str], float]:
    """``name``'s samples as ``{(watcher, config_dir, store): value}``."""
    text = _scrape() if text is None else text
    out: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text.decode("utf-8")):
        if family.name != name:
            continue
        assert family.type == "gauge"
        for sample in family.samples:
            labels = sample.labels
            assert set(labels) == {"watcher", "config_dir", "store"}, labels
            out[labels["watcher"], labels["config_dir"], labels["store"]] = sample.value
    return out


def _age(key: tuple[str, str, str]) -> float | None:
    return _series(AGE).get(key)


def _promtool_accepts(binary: str, text: bytes) -> None:
    proc = subprocess.run(
        [binary, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")


@pytest.fixture
def config_dir(tmp_path):
    return copy_bundled_config(tmp_path / "config", flags=True)


def _change(config_dir, value: str) -> None:
    staging = config_dir / "staging.yaml"
    body = staging.read_text(encoding="utf-8")
    atomic_write_text(staging, body + f"\nliveness_metric_test:\n  value: {value}\n")


def test_the_hot_reload_thread_is_scraped_while_it_runs_and_gone_once_stopped(
    config_dir,
    monkeypatch,
    promtool,  # noqa: F811
):
    monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", STALL)
    hang = _Hang("hang-" + uuid.uuid4().hex)
    key = ("cfgcore-hot-reload", str(config_dir), "")
    m = ConfigurationManager(str(config_dir), environ={}, record_usage=False)
    try:
        m.load_environment_config("staging")
        assert key not in _series(AGE)  # not watching yet
        _blocking_transform(m, hang)
        m.enable_hot_reload(poll_interval=0.1)

        # A real change, read by the watcher: its loop comes round after the reload.
        _change(config_dir, "first")
        assert wait_for(lambda: m.get("liveness_metric_test.value") == "first", timeout=30)
        text = _scrape()
        assert key in _series(AGE, text), _series(AGE, text)
        assert _series(AGE, text)[key] >= 0.0
        assert _series(BOUND, text)[key] == float(STALL)
        _promtool_accepts(promtool, text)

        # A reload blocked on a lock: the age grows past the bound as readiness flips.
        _write_marker(config_dir, hang.marker)
        assert hang.entered.wait(30), "the watcher never reloaded the file"
        assert wait_for(lambda: (_age(key) or 0.0) > float(STALL), timeout=30), _series(AGE)
        assert wait_for(lambda: _stuck_reason(m.health()) is not None, timeout=30)
        assert m.hot_reload_enabled  # alive: only the tick's age says it is stuck

        hang.release.set()
        assert wait_for(lambda: m.health().ready, timeout=30), m.health()
        assert wait_for(lambda: (_age(key) or 1e9) < float(STALL), timeout=30), _series(AGE)

        m.disable_hot_reload()
        text = _scrape()
        assert key not in _series(AGE, text) and key not in _series(BOUND, text)
    finally:
        hang.release.set()
        m.close()
    assert key not in _series(AGE)


def test_the_asyncio_watcher_is_scraped_while_it_runs_and_gone_once_stopped(
    config_dir, monkeypatch
):
    monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", STALL)
    key = ("cfgcore-file-watching", str(config_dir), "")
    m = ConfigurationManager(str(config_dir), environ={}, record_usage=False)

    async def scenario():
        m.load_environment_config("staging")
        await m.start_file_watching(poll_interval=0.1)
        try:
            _change(config_dir, "async")
            assert await wait_for_async(
                lambda: m.get("liveness_metric_test.value") == "async", timeout=30
            )
            assert key in _series(AGE), _series(AGE)
            assert _series(BOUND)[key] == float(STALL)
        finally:
            await m.stop_file_watching()
        assert key not in _series(AGE) and key not in _series(BOUND)

    try:
        asyncio.run(scenario())
    finally:
        m.close()


def test_the_flags_file_watcher_is_scraped_by_store_and_gone_once_stopped(
    tmp_path,
    monkeypatch,
    promtool,  # noqa: F811
):
    monkeypatch.setenv("CFGCORE_WATCHER_STALL_SECONDS", STALL)
    flags_file = tmp_path / "flags" / "flags.json"
    flags_file.parent.mkdir()
    atomic_write(flags_file, _flags(False))
    hang = _Hang("")
    subscriber = _BlockingSubscriber(hang)  # (held weakly by the flag set: kept here)
    m = DynamicConfigurationManager(
        flags_file=str(flags_file), state_dir=tmp_path / "state", record_usage=False
    )
    key = ("cfgcore-dynamic-flags", "", m._live.store.url)
    assert key[2].startswith("file://")  # as cfgcore_flags_version's store label

    async def scenario():
        await m.start_file_watching(debounce_ms=20, poll_interval=0.1)
        try:
            atomic_write(flags_file, _flags(True))
            assert await wait_for_async(
                lambda: m.is_feature_enabled("stuck_watcher_test", {"user_id": "u"}), timeout=30
            )
            text = _scrape()
            assert key in _series(AGE, text), _series(AGE, text)
            assert _series(BOUND, text)[key] == float(STALL)
            _promtool_accepts(promtool, text)

            m._live.subscribe(subscriber)
            atomic_write(flags_file, _flags(False))
            assert await wait_for_async(hang.entered.is_set, timeout=30)
            assert await wait_for_async(lambda: (_age(key) or 0.0) > float(STALL), timeout=30)
            assert not m.health().ready
            hang.release.set()
            assert await wait_for_async(lambda: m.health().ready, timeout=30), m.health()
        finally:
            hang.release.set()
            await m.stop_file_watching()
        assert key not in _series(AGE) and key not in _series(BOUND)

        # Closing the manager stops its watcher, and its series with it.
        await m.start_file_watching(debounce_ms=20, poll_interval=0.1)
        assert key in _series(AGE)
        m.close()
        assert key not in _series(AGE)

    try:
        asyncio.run(scenario())
    finally:
        hang.release.set()
        m.close()


def test_an_alert_on_the_stall_ratio_fires_before_readiness_would_flip(
    promtool,  # noqa: F811
    tmp_path,
):
    """``config_watcher_stall_ratio > 0.5``, exported as a rule, fires on a watcher whose
    tick age passed half its bound (its manager still ready) and not on one that ticks;
    promtool evaluates the rule on series named and labelled as cfgcore exports them."""
    import yaml

    from tests.test_alerts import _export

    config_dir = copy_bundled_config(tmp_path / "config")
    alert = (
        "  - name: watcher_stalling\n    condition: config_watcher_stall_ratio > 0.5\n"
        "    severity: warning\n"
    )
    rules_path = _export(config_dir, tmp_path, alert)
    with open(rules_path) as fh:
        rule = {r["alert"]: r for r in yaml.safe_load(fh)["groups"][0]["rules"]}["watcher_stalling"]
    stuck = '{watcher="cfgcore-hot-reload",config_dir="/etc/app",store=""}'
    free = '{watcher="cfgcore-dynamic-flags",config_dir="",store="file:///etc/flags.json"}'
    fires = [{"exp_labels": {**rule["labels"], "alertname": "watcher_stalling"},
              "exp_annotations": rule["annotations"]}]  # fmt: skip
    cases = [
        # 20 s without a tick, bound 30 s: past half of it, not yet not ready.
        ({AGE + stuck: "0+1x20", BOUND + stuck: "30x20", AGE + free: "0.1x20",
          BOUND + free: "30x20"}, fires),
        ({AGE + free: "0.1x20", BOUND + free: "30x20"}, []),
        ({}, []),  # no watcher running
    ]  # fmt: skip
    tests = [
        {
            "interval": "1s",
            "input_series": [{"series": s, "values": v} for s, v in series.items()],
            "alert_rule_test": [
                {"eval_time": "20s", "alertname": "watcher_stalling", "exp_alerts": exp}
            ],
        }
        for series, exp in cases
    ]
    spec = tmp_path / "rules.test.yml"
    spec.write_text(
        yaml.safe_dump({"rule_files": [rules_path], "evaluation_interval": "1s", "tests": tests})
    )
    proc = subprocess.run(
        [promtool, "test", "rules", str(spec)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
