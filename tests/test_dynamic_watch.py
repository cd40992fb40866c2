"""`await start_file_watching()`: real files, the real watcher, conditions with deadlines."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager, FeatureFlag
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.snapshot import encode_snapshot
from tests.waiting import wait_for_async as wait_for

PREMIUM = {"user_id": "1", "user_segment": "premium"}


def edited(manager, **enabled):
    snap = manager.snapshot
    import msgspec

    flags = dict(snap.flags)
    for key, value in enabled.items():
        flags[key] = msgspec.structs.replace(flags[key], enabled=value)
    return encode_snapshot(msgspec.structs.replace(snap, flags=flags), "json")


def test_external_edit_is_picked_up_and_bad_file_keeps_old_flags(tmp_path):
    async def scenario():
        m = DynamicConfigurationManager(state_dir=tmp_path)
        m.set_feature_flag(FeatureFlag.PARENTAL_CONTROLS, True)  # creates the file
        events = []

        class Listener:
            async def on_config_changed(self, event):
                events.append(event)

        m.register_change_listener(Listener())
        await m.start_file_watching(debounce_ms=20, poll_interval=0.2)
        try:
            assert m.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, PREMIUM)
            # Another process (an operator, a deploy) rewrites the file atomically.
            atomic_write(m.flags_file, edited(m, enhanced_anomaly_detection=False))
            assert await wait_for(
                lambda: not m.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, PREMIUM)
            )
            assert await wait_for(lambda: any(e.source == "reload" for e in events))
            reload_paths = {e.config_path for e in events if e.source == "reload"}
            assert reload_paths == {"flags.enhanced_anomaly_detection"}

            # A broken file: the live flags stay, an error event names the file and path.
            bad = json.loads(Path(m.flags_file).read_text())
            bad["flags"]["enhanced_anomaly_detection"]["rules"] = [{"serve": "nope"}]
            atomic_write(m.flags_file, json.dumps(bad).encode())
            assert await wait_for(lambda: any(e.is_error for e in events))
            err = next(e for e in events if e.is_error)
            assert m.flags_file in str(err.error)
            assert "flags.enhanced_anomaly_detection.rules[0].serve" in str(err.error)
            assert not m.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, PREMIUM)
            assert m.is_feature_enabled(
                FeatureFlag.PARENTAL_CONTROLS, {"user_id": "1", "user_segment": "family"}
            )
            audit = m.audit.read(m.audit.path)
            assert any(a["kind"] == "error" and a["source"] == "reload" for a in audit)

            # Fixing the file brings the new flags in.
            atomic_write(m.flags_file, edited(m, enhanced_anomaly_detection=True))
            assert await wait_for(
                lambda: m.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, PREMIUM)
            )
        finally:
            await m.stop_file_watching()
            m.close()

    asyncio.run(scenario())


class CountingManager(DynamicConfigurationManager):
    """Counts the watcher's reloads, so a test can wait for the watcher to have looked."""

    reloads = 0

    def _watched_reload(self):
        CountingManager.reloads += 1
        return super()._watched_reload()


def test_own_writes_do_not_cause_reloads(tmp_path):
    async def scenario():
        m = CountingManager(state_dir=tmp_path)
        await m.start_file_watching(debounce_ms=20, poll_interval=0.05)
        seen = []
        m.register_change_listener(seen.append)
        try:
            m.set_feature_flag("x", True, 50)
            version = m.engine.version
            after_write = CountingManager.reloads
            # The watcher event for our own write and a few polls have been handled.
            assert await wait_for(lambda: CountingManager.reloads >= after_write + 3)
            assert m.engine.version == version
            assert [e.source for e in seen] == ["set_feature_flag"]
        finally:
            await m.stop_file_watching()
            m.close()

    asyncio.run(scenario())


def test_reload_without_watcher(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path)
    m.set_feature_flag("x", True)
    assert m.reload() is False  # unchanged
    atomic_write(m.flags_file, edited(m, x=False))
    assert m.reload() is True
    assert not m.is_feature_enabled("x", {"user_id": "1"})
    m.close()


@pytest.mark.parametrize("content", [b"", b"{", b'{"flags": 3}'])
def test_garbage_never_replaces_live_flags(tmp_path, content):
    m = DynamicConfigurationManager(state_dir=tmp_path)
    m.set_feature_flag("x", True)
    atomic_write(m.flags_file, content)
    assert m.reload() is False
    assert m.is_feature_enabled("x", {"user_id": "1"})
    m.close()


def test_a_stuck_listener_does_not_hold_up_the_next_reload(tmp_path):
    # The watcher's thread reloads the flags file; the change listeners run on the
    # notifier thread, so a listener that blocks does not stop later edits going live.
    import threading

    async def scenario():
        m = DynamicConfigurationManager(state_dir=tmp_path)
        m.set_feature_flag(FeatureFlag.PARENTAL_CONTROLS, True)  # creates the file
        release, seen = threading.Event(), []

        def stuck(event):
            seen.append(event.config_path)
            release.wait(30)

        m.register_change_listener(stuck)
        await m.start_file_watching(debounce_ms=20, poll_interval=0.2)
        try:
            atomic_write(m.flags_file, edited(m, enhanced_anomaly_detection=False))
            assert await wait_for(lambda: seen == ["flags.enhanced_anomaly_detection"])
            # the listener is stuck on the first change; the second still goes live
            atomic_write(m.flags_file, edited(m, parental_controls=False))
            assert await wait_for(
                lambda: (
                    not m.is_feature_enabled(
                        FeatureFlag.PARENTAL_CONTROLS, {"user_id": "1", "user_segment": "family"}
                    )
                )
            )
            assert seen == ["flags.enhanced_anomaly_detection"]
            release.set()
            assert await wait_for(
                lambda: seen == ["flags.enhanced_anomaly_detection", "flags.parental_controls"]
            )
        finally:
            release.set()
            await m.stop_file_watching()
            m.close()

    asyncio.run(scenario())
