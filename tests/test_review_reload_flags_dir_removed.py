"""A removed flags directory is not created again by the dynamic manager's logs.

The audit, exposure and metric logs of a ``DynamicConfigurationManager`` given a
``flags_file`` live beside it. A deploy that replaces the directory (``rm -rf dir &&
mkdir dir``) removed the flags file too; the watcher reported the removal, the report
went to the audit log, and the audit log created the directory again to write it, so
the deploy's ``mkdir`` failed ("File exists"). A directory the deployment owns is now
never created just to write a log: the removal is reported through logging, listeners
and ``last_error`` as before, its audit entry waits in memory (``audit.pending()``)
and is written once the directory exists again. Real files, the real watcher.
"""

from __future__ import annotations

import asyncio
import os
import shutil

from cfgcore.dynamic_config import DynamicConfigurationManager, FeatureFlag
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.runtime.audit import AuditLog
from tests.test_dynamic_watch import PREMIUM, edited
from tests.waiting import wait_for, wait_for_async

WATCHER_ONLY = 3600.0


def test_rm_rf_then_mkdir_of_the_flags_directory_succeeds(tmp_path):
    flags_dir = tmp_path / "flags"
    flags_dir.mkdir()
    flags_file = flags_dir / "flags.json"

    async def scenario():
        m = DynamicConfigurationManager(
            flags_file=flags_file, state_dir=tmp_path / "state", record_usage=False
        )
        m.set_feature_flag(FeatureFlag.PARENTAL_CONTROLS, True)  # creates the file
        document = edited(m, enhanced_anomaly_detection=False)
        errors = []

        class Listener:
            async def on_config_changed(self, event):
                if event.is_error:
                    errors.append(event)

        m.register_change_listener(Listener())
        await m.start_file_watching(debounce_ms=20, poll_interval=WATCHER_ONLY)
        try:
            # (the audit entry of the write above is on disk first: written while rmtree
            # runs, it made the rmdir fail with "Directory not empty")
            assert m.audit.flush(10)
            shutil.rmtree(flags_dir)  # the deploy: rm -rf dir ...
            assert await wait_for_async(lambda: errors, timeout=30)  # removal reported
            assert "removed" in str(errors[0].error)
            assert not flags_dir.exists()  # nothing made it again to write a log
            assert m.audit.pending() >= 1  # the entry waits in memory
            assert "does not exist" in str(m.audit.last_error)
            os.mkdir(flags_dir)  # ... && mkdir dir: no "File exists"
            atomic_write(flags_file, document)  # the deploy's new flags
            assert await wait_for_async(
                lambda: not m.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, PREMIUM),
                timeout=30,
            )
            assert await wait_for_async(lambda: m.audit.pending() == 0, timeout=30)
            # The reload's change event reaches this loop's listener before the loop
            # ends: under load it was still being dispatched when asyncio.run closed
            # the loop, and its coroutine was never awaited (a RuntimeWarning, an error
            # here). Waited for from another thread, so this loop runs it meanwhile.
            assert await asyncio.to_thread(m.events.wait_idle, 30)
            kinds = [e["kind"] for e in AuditLog.read(m.audit.path)]
            # The removal, written once the directory was back, before the reload's
            # change that followed it.
            assert "error" in kinds
            assert kinds.index("error") < len(kinds) - 1
        finally:
            await m.stop_file_watching()
            m.close()

    asyncio.run(scenario())


def test_a_state_directory_is_still_created_for_the_first_entry(tmp_path):
    # cfgcore's own state directory (no flags_file given) is created as before.
    state = tmp_path / "state" / "nested"
    m = DynamicConfigurationManager(state_dir=state, record_usage=False)
    try:
        m.set_feature_flag(FeatureFlag.PARENTAL_CONTROLS, False)  # a change: audited
        assert wait_for(lambda: (state / "flags.audit.jsonl").is_file())
        assert m.audit.pending() == 0
    finally:
        m.close()


def test_an_audit_log_that_may_not_create_its_directory_keeps_entries_until_it_exists(tmp_path):
    directory = tmp_path / "gone"
    log = AuditLog(directory / "audit.jsonl", create_dir=False)
    log.append({"kind": "update", "path": "a", "new": 1})
    log.append({"kind": "update", "path": "b", "new": 2})
    assert not directory.exists()
    assert log.pending() == 2 and "does not exist" in str(log.last_error)
    assert [e["path"] for e in log.entries()] == ["a", "b"]
    directory.mkdir()
    assert log.flush()
    assert log.last_error is None
    assert [e["path"] for e in AuditLog.read(directory / "audit.jsonl")] == ["a", "b"]


def test_exposure_and_metric_logs_do_not_create_it_either(tmp_path):
    from datetime import datetime, timedelta, timezone

    from tests.test_experiments import seed_test

    flags_dir = tmp_path / "flags"
    flags_dir.mkdir()
    m = DynamicConfigurationManager(
        flags_file=flags_dir / "flags.json", state_dir=tmp_path / "state", record_usage=False
    )
    now = datetime.now(timezone.utc)
    test = "recommendation_algorithm_v2"
    try:
        assert m.create_ab_test(
            seed_test(test, start_date=now - timedelta(days=1), end_date=now + timedelta(days=5))
        )
        users = [{"user_id": f"u{i}", "user_segment": "premium"} for i in range(50)]
        assert any(m.get_ab_test_variant(test, user) for user in users)  # exposures logged
        assert m.exposures.flush()
        assert (flags_dir / "flags.exposures.jsonl").is_file()
        shutil.rmtree(flags_dir)
        assert any(m.get_ab_test_variant(test, {**u, "user_id": "x" + u["user_id"]}) for u in users)
        m.record_metric(test, "click_through_rate", 1.0, user_id="u1")
        m.exposures.flush()
        m.metrics.flush()
        assert not flags_dir.exists()
    finally:
        m.close()
    assert not flags_dir.exists()
