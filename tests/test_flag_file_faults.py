"""A flag file that is missing, removed, unreadable or broken: the flags it last held
keep serving, the problem is reported once (error event, audit, health) and clears
when the file is good again; production never falls back to the bundled demo flags."""

from __future__ import annotations

import asyncio

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for_async

MINE = 'version: 1\nflags:\n  mine:\n    default: "on"\n'
MINE_OFF = 'version: 1\nflags:\n  mine:\n    default: "off"\n'
BUNDLED_FLAG = "enhanced_anomaly_detection"  # one of the bundled demo flags


def _manager(tmp_path, flags=None):
    flags = flags or tmp_path / "flags.yaml"
    m = DynamicConfigurationManager(flags, state_dir=tmp_path / "state")
    errors = []
    m.register_change_listener(lambda e: errors.append(e) if e.kind == "error" else None)
    return m, errors


@pytest.mark.parametrize("variable", ["CONFIG_ENVIRONMENT", "CFGCORE_ENVIRONMENT"])
def test_production_refuses_a_missing_flag_file_instead_of_serving_the_demo_flags(
    tmp_path, monkeypatch, variable
):
    monkeypatch.setenv(variable, "production")
    missing = tmp_path / "typo" / "flags.yaml"
    with pytest.raises(ConfigError) as err:
        DynamicConfigurationManager(missing, state_dir=tmp_path / "state")
    assert str(missing) in str(err.value) and "does not exist" in str(err.value)
    monkeypatch.setenv("CFGCORE_FLAG_STORE", str(missing))
    with pytest.raises(ConfigError, match="does not exist"):
        DynamicConfigurationManager(state_dir=tmp_path / "state")


def test_outside_production_a_missing_file_serves_the_bundled_flags_until_created(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("CONFIG_ENVIRONMENT", raising=False)
    monkeypatch.delenv("CFGCORE_ENVIRONMENT", raising=False)
    m, errors = _manager(tmp_path)
    try:
        assert BUNDLED_FLAG in m.snapshot.flags and m.last_error is None
        assert m.reload() is False and not errors  # still no file: nothing to report
    finally:
        m.close()


def test_a_removed_flag_file_keeps_its_flags_reports_once_and_recovers(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text(MINE)
    m, errors = _manager(tmp_path, path)
    try:
        assert m.is_feature_enabled("mine", {"user_id": "1"})
        path.unlink()
        assert m.reload() is False
        assert m.reload() is False
        assert set(m.snapshot.flags) == {"mine"} and m.is_feature_enabled("mine", {"user_id": "1"})
        assert len(errors) == 1 and "removed" in str(errors[0].error)
        assert "removed" in " ".join(m.health().reasons)
        path.write_text(MINE_OFF)
        assert m.reload() is True
        assert not m.is_feature_enabled("mine", {"user_id": "1"})
        assert m.health().reasons == [] and len(errors) == 1
    finally:
        m.close()


@pytest.mark.parametrize(
    "broken", [b"version: 1\nflags:\n  x: [\n", b"", b"\xff\xfe\x00garbage", b"flags: 7\n"]
)
def test_a_broken_flag_file_is_reported_once_and_the_last_good_flags_serve(tmp_path, broken):
    path = tmp_path / "flags.yaml"
    path.write_text(MINE)
    m, errors = _manager(tmp_path, path)
    try:
        path.write_bytes(broken)
        assert m.reload() is False and m.reload() is False
        assert len(errors) == 1 and str(path) in str(errors[0].error)
        assert m.is_feature_enabled("mine", {"user_id": "1"})
        assert m.health().reasons  # readiness warns: the newest document was refused
        path.write_text(MINE)  # back to what serves: the refusal is over
        assert m.reload() is False
        assert m.health().reasons == [] and len(errors) == 1
    finally:
        m.close()


def test_the_watcher_reports_a_broken_then_removed_file_once_each(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text(MINE)
    m, errors = _manager(tmp_path, path)

    async def scenario():
        await m.start_file_watching(debounce_ms=10, poll_interval=0.05)
        try:
            # Replaced whole (as deploy tools do): write_text truncates first, and a
            # watcher reading in that window reports the empty file as a second error.
            atomic_write_text(path, "flags: [\n")
            assert await wait_for_async(lambda: len(errors) == 1)
            await asyncio.sleep(0.5)  # several polls: no second report
            assert len(errors) == 1
            path.unlink()
            assert await wait_for_async(lambda: len(errors) == 2)
            await asyncio.sleep(0.5)
            assert len(errors) == 2 and "removed" in str(errors[1].error)
            assert set(m.snapshot.flags) == {"mine"}
            path.write_text(MINE_OFF)
            assert await wait_for_async(lambda: not m.is_feature_enabled("mine", {"user_id": "1"}))
        finally:
            await m.stop_file_watching()

    try:
        asyncio.run(scenario())
    finally:
        m.close()
