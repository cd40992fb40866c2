"""DynamicConfigurationManager: the seed's feature-flag API, persistence, dependencies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from enum import Enum
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import (
    DynamicConfigurationManager,
    FeatureFlag,
    get_dynamic_config_manager,
    reset_dynamic_config_manager,
)
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError
from cfgcore.snapshot import load_snapshot
from tests.fuzz import examples
from tests.texts import any_text

PREMIUM_EU = {"user_id": "12345", "user_segment": "premium", "region": "EU"}
FREE_US = {"user_id": "67890", "user_segment": "free", "region": "US"}
USERS = [f"user-{i}" for i in range(4000)]


@pytest.fixture
def manager(tmp_path, impl):
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine_class(impl)())
    yield m
    m.close()


def test_seed_feature_flag_example(manager):
    """The seed's "Dynamic Feature Flags" block, as written."""
    dynamic_config = manager
    user_context = {"user_id": "12345", "user_segment": "premium", "region": "EU"}
    assert dynamic_config.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, user_context)
    assert not dynamic_config.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, FREE_US)
    feature_status = dynamic_config.get_feature_flags_status()
    assert feature_status["enhanced_anomaly_detection"]["enabled"] is True
    assert feature_status["experimental_ml_models"]["rollout_percentage"] == 25.0
    # Every catalog member is a flag of the bundled set.
    for member in FeatureFlag:
        assert member.value in feature_status, member


def test_seed_unit_test_without_user_id(tmp_path, monkeypatch):
    """The seed's test_feature_flag_evaluation, through the process-wide manager."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    reset_dynamic_config_manager()
    try:
        manager = get_dynamic_config_manager()
        assert manager is get_dynamic_config_manager()
        assert manager.flags_file == str(tmp_path / "state" / "flags.json")
        assert manager.is_feature_enabled(
            FeatureFlag.ENHANCED_ANOMALY_DETECTION, {"user_segment": "premium"}
        )
        # Out of the box nothing is written until something changes.
        assert not os.path.exists(manager.flags_file)
    finally:
        reset_dynamic_config_manager()


def test_seed_module_level_functions(tmp_path, monkeypatch):
    """The seed's get_recommendation_algorithm uses a bare is_feature_enabled()."""
    from cfgcore.dynamic_config import get_ab_test_variant, is_feature_enabled

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    reset_dynamic_config_manager()
    try:

        def get_recommendation_algorithm(user_context):
            if is_feature_enabled(FeatureFlag.EXPERIMENTAL_ML_MODELS, user_context):
                return "experimental_transformer_model"
            elif is_feature_enabled(FeatureFlag.ADVANCED_AUDIO_ANALYTICS, user_context):
                return "enhanced_collaborative_filtering"
            else:
                return "standard_matrix_factorization"

        get_dynamic_config_manager().set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, False)
        assert get_recommendation_algorithm(PREMIUM_EU) == "enhanced_collaborative_filtering"
        assert get_recommendation_algorithm(FREE_US) == "standard_matrix_factorization"
        assert get_ab_test_variant("no_such_test", PREMIUM_EU) is None
    finally:
        reset_dynamic_config_manager()


def test_segment_features(manager):
    for flag, segment in [
        (FeatureFlag.PARENTAL_CONTROLS, "family"),
        (FeatureFlag.STUDY_MODE_DETECTION, "student"),
        (FeatureFlag.AD_PLACEMENT_OPTIMIZATION, "free"),
        (FeatureFlag.PREDICTIVE_SKIP_DETECTION, "premium"),
    ]:
        assert manager.is_feature_enabled(flag, {"user_id": "u", "user_segment": segment})
        assert not manager.is_feature_enabled(flag, {"user_id": "u", "user_segment": "other"})


def test_seed_recommendation_function(manager):
    """The seed's get_recommendation_algorithm pattern with string names too."""
    manager.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, False)

    def algorithm(ctx):
        if manager.is_feature_enabled(FeatureFlag.EXPERIMENTAL_ML_MODELS, ctx):
            return "experimental_transformer_model"
        if manager.is_feature_enabled("advanced_audio_analytics", ctx):
            return "enhanced_collaborative_filtering"
        return "standard_matrix_factorization"

    assert algorithm(PREMIUM_EU) == "enhanced_collaborative_filtering"
    assert algorithm(FREE_US) == "standard_matrix_factorization"


def test_unknown_flag_and_bad_context_never_raise(manager):
    assert manager.is_feature_enabled("no_such_flag", PREMIUM_EU) is False
    assert manager.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, None) is False
    assert manager.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, 42) is False  # type: ignore[arg-type]
    assert manager.is_feature_enabled(12, PREMIUM_EU) is False  # type: ignore[arg-type]


def test_set_feature_flag_rollout_is_monotonic_and_proportional(manager):
    premium = [{"user_id": u, "user_segment": "premium"} for u in USERS]
    on = {}
    for pct in (10, 40, 100):
        manager.set_feature_flag(FeatureFlag.ADVANCED_AUDIO_ANALYTICS, True, pct)
        on[pct] = {c["user_id"] for c in premium if manager.is_feature_enabled(
            FeatureFlag.ADVANCED_AUDIO_ANALYTICS, c)}  # fmt: skip
        assert abs(len(on[pct]) / len(USERS) - pct / 100) < 0.03
    assert on[10] <= on[40] <= on[100]  # raising a rollout only adds users
    # targeting is kept: free users still do not get it
    assert not manager.is_feature_enabled(FeatureFlag.ADVANCED_AUDIO_ANALYTICS, FREE_US)
    manager.set_feature_flag(FeatureFlag.ADVANCED_AUDIO_ANALYTICS, False)
    assert not any(manager.is_feature_enabled("advanced_audio_analytics", c) for c in premium[:200])


def test_set_feature_flag_on_untargeted_and_new_flags(manager):
    manager.set_feature_flag("brand_new_flag", True, 30.0)
    share = sum(manager.is_feature_enabled("brand_new_flag", {"user_id": u}) for u in USERS)
    assert abs(share / len(USERS) - 0.30) < 0.03
    manager.set_feature_flag("brand_new_flag", True, 100.0)
    assert all(manager.is_feature_enabled("brand_new_flag", {"user_id": u}) for u in USERS[:300])
    assert manager.get_feature_flags_status()["brand_new_flag"]["rollout_percentage"] == 100.0


def test_set_feature_flag_rejects_bad_input_and_keeps_state(manager):
    before = manager.snapshot
    for bad in (-1, 100.5, float("nan"), "lots"):
        with pytest.raises(ConfigError, match=r"flags\.experimental_ml_models\.rollout_percentage"):
            manager.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, bad)
    with pytest.raises(ConfigError, match="not a boolean feature flag"):
        manager.set_feature_flag("recommendation_algorithm_v2", True)
    assert manager.snapshot is before
    assert not os.path.exists(manager.flags_file)


def test_changes_persist_atomically_and_survive_restart(tmp_path, impl):
    cls = engine_class(impl)
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=cls())
    m.set_feature_flag(FeatureFlag.ENHANCED_ANOMALY_DETECTION, False)
    m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, 60)
    status = m.get_feature_flags_status()
    m.close()
    assert [p for p in os.listdir(tmp_path) if p.endswith(".tmp")] == []  # no temp left over
    disk = load_snapshot(tmp_path / "flags.json")
    assert disk.flags["enhanced_anomaly_detection"].enabled is False
    again = DynamicConfigurationManager(state_dir=tmp_path, engine=cls())
    try:
        assert again.get_feature_flags_status() == status
        assert not again.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, PREMIUM_EU)
        premium = [{"user_id": u, "user_segment": "premium"} for u in USERS[:500]]
        assert [again.is_feature_enabled("experimental_ml_models", c) for c in premium] == [
            m.is_feature_enabled("experimental_ml_models", c) for c in premium
        ]
    finally:
        again.close()


def test_yaml_flags_file_round_trip(tmp_path):
    path = tmp_path / "flags.yaml"
    m = DynamicConfigurationManager(path)
    m.set_feature_flag(FeatureFlag.PARENTAL_CONTROLS, True, 50)
    m.close()
    text = path.read_text()
    assert '"on"' in text or "'on'" in text  # the YAML 1.2 trap: on must stay a string
    again = DynamicConfigurationManager(path)
    assert again.get_feature_flags_status()["parental_controls"]["rollout_percentage"] == 50.0
    again.close()


_CRASH_SCRIPT = textwrap.dedent(
    """
    import sys
    from cfgcore.dynamic_config import DynamicConfigurationManager
    m = DynamicConfigurationManager(sys.argv[1], log_exposures=False)
    i = 0
    while True:
        i += 1
        m.set_feature_flag("f%d" % (i % 50), True, i % 100)
        if i == 5:
            print("ready", flush=True)
    """
)


def test_killed_writer_never_leaves_a_half_written_file(tmp_path):
    """SIGKILL a process in the middle of a stream of updates: the file always decodes."""
    path = tmp_path / "flags.json"
    for _ in range(3):
        with subprocess.Popen(
            [sys.executable, "-c", _CRASH_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True
        ) as proc:
            try:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"
                # Kill at a varying point of the update stream (no condition to wait for:
                # the point is to interrupt whatever write is in flight).
                time.sleep(0.05 + 0.05 * _)
            finally:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        snap = load_snapshot(path)  # raises if half-written
        assert any(k.startswith("f") and k[1:].isdigit() for k in snap.flags)
        m = DynamicConfigurationManager(path, log_exposures=False)
        assert m.snapshot.flags.keys() == snap.flags.keys()
        m.close()


def test_register_custom_feature_flag_enum_and_string(manager):
    class CustomFeatureFlag(Enum):
        EXPERIMENTAL_AUDIO_ENHANCEMENT = "experimental_audio_enhancement"
        BETA_SOCIAL_FEATURES = "beta_social_features"

    assert manager.register_custom_feature_flag(CustomFeatureFlag.EXPERIMENTAL_AUDIO_ENHANCEMENT)
    assert not manager.register_custom_feature_flag(
        CustomFeatureFlag.EXPERIMENTAL_AUDIO_ENHANCEMENT
    )
    assert manager.register_custom_feature_flag("advanced_analytics", enabled=True)
    ctx = {"user_id": "1"}
    assert not manager.is_feature_enabled(CustomFeatureFlag.EXPERIMENTAL_AUDIO_ENHANCEMENT, ctx)
    assert manager.is_feature_enabled("advanced_analytics", ctx)
    manager.set_feature_flag(CustomFeatureFlag.EXPERIMENTAL_AUDIO_ENHANCEMENT, True)
    assert manager.is_feature_enabled(CustomFeatureFlag.EXPERIMENTAL_AUDIO_ENHANCEMENT, ctx)
    status = manager.get_feature_flags_status()
    assert status["experimental_audio_enhancement"]["tags"] == ["custom"]

    class NotAString(Enum):
        X = 1

    with pytest.raises(ConfigError):
        manager.register_custom_feature_flag(NotAString.X)


def test_flag_dependencies_are_prerequisites(manager):
    """Seed troubleshooting: "verify dependencies between feature flags"."""
    manager.set_flag_dependencies(
        FeatureFlag.EXPERIMENTAL_ML_MODELS, [FeatureFlag.ENHANCED_ANOMALY_DETECTION]
    )
    manager.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, 100)
    assert manager.is_feature_enabled(FeatureFlag.EXPERIMENTAL_ML_MODELS, PREMIUM_EU)
    manager.set_feature_flag(FeatureFlag.ENHANCED_ANOMALY_DETECTION, False)
    assert not manager.is_feature_enabled(FeatureFlag.EXPERIMENTAL_ML_MODELS, PREMIUM_EU)
    status = manager.get_feature_flags_status()
    assert status["experimental_ml_models"]["prerequisites"] == ["enhanced_anomaly_detection"]


def test_dependency_cycle_is_rejected_and_nothing_changes(manager):
    manager.set_flag_dependencies("parental_controls", ["shared_playlists_analysis"])
    disk_before = Path(manager.flags_file).read_bytes()
    live_before = manager.snapshot
    with pytest.raises(ConfigError, match="prerequisite cycle") as err:
        manager.set_flag_dependencies("shared_playlists_analysis", ["parental_controls"])
    assert manager.flags_file in str(err.value)
    assert manager.snapshot is live_before
    assert Path(manager.flags_file).read_bytes() == disk_before
    with pytest.raises(ConfigError, match="unknown flag"):
        manager.set_flag_dependencies("parental_controls", ["nope"])


def test_change_events_and_audit(manager):
    seen = []

    class ConfigurationChangeListener:
        async def on_config_changed(self, event):
            seen.append(event)

    sync_seen = []
    manager.register_change_listener(ConfigurationChangeListener())
    manager.register_change_listener(sync_seen.append)
    manager.set_feature_flag(FeatureFlag.PARENTAL_CONTROLS, False)
    assert [e.config_path for e in sync_seen] == ["flags.parental_controls"]
    event = sync_seen[0]
    assert event.source == "set_feature_flag"
    assert event.old_value.get("enabled", True) is True  # omitted when it is the default
    assert event.new_value["enabled"] is False
    assert event.version == manager.engine.version
    assert manager.events.wait_idle(5)
    assert [e.config_path for e in seen] == ["flags.parental_controls"]
    audit = manager.audit.read(manager.audit.path)
    assert audit[-1]["path"] == "flags.parental_controls"
    assert audit[-1]["source"] == "set_feature_flag"


def test_in_memory_mode_writes_nothing(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, persist=False)
    m.set_feature_flag("x", True)
    assert m.is_feature_enabled("x", {"user_id": "1"})
    m.close()
    assert os.listdir(tmp_path) == []


def test_bad_state_file_at_startup_is_a_clear_error(tmp_path):
    path = tmp_path / "flags.json"
    path.write_text('{"flags": {"a": {"rules": [{"rollot": 5}]}}}')
    with pytest.raises(ConfigError) as err:
        DynamicConfigurationManager(path)
    assert str(path) in str(err.value) and "flags.a.rules[0]" in str(err.value)


@settings(max_examples=examples(25), deadline=None)
@given(pct=st.floats(0, 100), user=any_text(min_size=1, max_size=20))
def test_rollout_zero_and_hundred_are_exact(tmp_path_factory, pct, user):
    empty = tmp_path_factory.getbasetemp() / "no-state"
    m = DynamicConfigurationManager(state_dir=empty, persist=False, log_exposures=False)
    m.set_feature_flag("f", True, 0.0)
    assert not m.is_feature_enabled("f", {"user_id": user})
    m.set_feature_flag("f", True, 100.0)
    assert m.is_feature_enabled("f", {"user_id": user})
    m.set_feature_flag("f", True, pct)
    # the answer is a pure function of (flag, user): asking twice gives the same answer
    assert m.is_feature_enabled("f", {"user_id": user}) == m.is_feature_enabled(
        "f", {"user_id": user}
    )
    m.close()


def test_concurrent_updates_and_reads(tmp_path, impl):
    """Writers serialise; readers never fail or see a half-built snapshot."""
    import threading

    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine_class(impl)())
    m.set_feature_flag("a", True, 100)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        ctx = {"user_id": "u", "user_segment": "premium"}
        while not stop.is_set():
            try:
                assert m.is_feature_enabled("a", ctx) in (True, False)
                assert m.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, ctx)
            except BaseException as exc:  # noqa: BLE001 - collected for the main thread
                errors.append(exc)
                return
            # Yield the GIL so writers make progress between reads. Not sleep(0): on
            # CPython 3.10 two threads spinning on sleep(0) starved the writers (each
            # write took seconds, 24 writes up to 3 minutes); 0.1 ms keeps them going.
            time.sleep(0.0001)

    def writer(k):
        try:
            for i in range(8):
                m.set_feature_flag(f"w{k}", True, float(i))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join(60)
    stop.set()
    for t in readers:
        t.join(10)
    assert not any(t.is_alive() for t in writers), "a writer still running after 60 s"
    assert errors == []
    status = m.get_feature_flags_status()
    last = {k: status[f"w{k}"]["rollout_percentage"] for k in range(3)}
    assert last == dict.fromkeys(range(3), 7.0), (last, m.store.read().version)
    m.close()
    again = DynamicConfigurationManager(state_dir=tmp_path)
    assert again.get_feature_flags_status() == status  # the last write is the file
    again.close()


PATCH_KEYS = [
    "enhanced_anomaly_detection",
    "experimental_ml_models",
    "parental_controls",
    "lossless_audio_eu",
    "brand_new",
]


@settings(max_examples=examples(40), deadline=None)
@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(PATCH_KEYS),
            st.booleans(),
            st.sampled_from([0.0, 0.001, 5.5, 25, 50, 99.999, 100]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_updates_evaluate_like_a_full_compile(tmp_path_factory, ops):
    """set_feature_flag compiles only the changed flag on top of the live tables
    (compiler.compile_incremental); every evaluation must equal a full compile's."""
    empty = tmp_path_factory.getbasetemp() / "no-state"
    m = DynamicConfigurationManager(state_dir=empty, persist=False, log_exposures=False)
    users = [
        {"user_id": f"u{i}", "user_segment": seg, "region": region}
        for i, (seg, region) in enumerate(
            [("premium", "EU"), ("free", "US"), ("family", "UK"), ("student", "APAC")] * 25
        )
    ]
    for key, enabled, pct in ops:
        m.set_feature_flag(key, enabled, pct)
        live = m.engine.snapshot().tables
        assert live.source is m.snapshot
        reference = m.engine.from_snapshot(m.snapshot)
        for ctx in users:
            assert m.engine.evaluate_all(ctx) == reference.evaluate_all(ctx)
            got, want = m.engine.evaluate(key, ctx), reference.evaluate(key, ctx)
            assert (got.value, got.variant, got.reason, got.rule_index) == (
                want.value, want.variant, want.reason, want.rule_index,
            )  # fmt: skip
    m.close()


def test_set_feature_flag_compiles_incrementally_and_persists(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, log_exposures=False)
    m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, 10)
    before = m.engine.snapshot().tables
    m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, 90)
    after = m.engine.snapshot().tables
    assert after.garbage == before.garbage + 1  # one flag compiled again, not the set
    m.close()
    again = DynamicConfigurationManager(state_dir=tmp_path, log_exposures=False)
    assert again.get_feature_flags_status()["experimental_ml_models"]["rollout_percentage"] == 90
    again.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_is_not_deadlocked_by_locks_held_at_fork(tmp_path):
    """Another thread in the middle of an update or a metric write when a pre-fork
    server forks: the child must not inherit those locks held forever. Covers the
    manager's own audit log and metrics store (with exposure logging off, nothing else
    resets the metrics store)."""
    import threading
    import warnings

    m = DynamicConfigurationManager(state_dir=tmp_path, log_exposures=False)
    held, release = threading.Event(), threading.Event()

    def hold():
        with m.audit._lock, m.metrics._lock:
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    assert held.wait(5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12: fork with threads
            pid = os.fork()
        if pid == 0:  # child: a deadlock becomes SIGALRM, the result the exit status
            code = 1
            try:
                signal.alarm(5)
                m.set_feature_flag("child_flag", True)  # audit log
                m.metrics.record("t", "control", "ctr", 1.0, "u1")
                code = 0
            finally:
                os._exit(code)
    finally:
        release.set()
        t.join(5)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    m.close()


def test_rollout_applies_to_a_flag_that_is_on_by_default_with_on_rules(tmp_path, impl):
    """default: on plus a targeted rule serving on: set_feature_flag(..., 0) must turn
    it off for everyone (the default used to keep serving on to every other user)."""
    import json

    (tmp_path / "flags.json").write_text(
        json.dumps(
            {
                "flags": {
                    "f": {
                        "default": "on",
                        "rules": [{"when": {"attr": "tier", "eq": "premium"}, "serve": "on"}],
                    }
                }
            }
        )
    )
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), log_exposures=False
    )
    users = [{"user_id": u, "tier": t} for u in USERS[:1000] for t in ("premium", "free")]
    m.set_feature_flag("f", True, 0)
    assert not any(m.is_feature_enabled("f", u) for u in users)
    assert m.get_feature_flags_status()["f"]["rollout_percentage"] == 0.0
    m.set_feature_flag("f", True, 30)
    share = sum(m.is_feature_enabled("f", u) for u in users) / len(users)
    assert abs(share - 0.30) < 0.04
    m.set_feature_flag("f", True, 100)
    assert all(m.is_feature_enabled("f", u) for u in users)
    m.close()


def test_recreating_a_test_with_a_value_of_another_type_serves_the_new_value(tmp_path):
    """{"x": 1} -> {"x": True}: equal in Python, a different configuration to serve."""
    from datetime import datetime, timedelta

    from cfgcore.dynamic_config import ABTestConfiguration

    m = DynamicConfigurationManager(state_dir=tmp_path, log_exposures=False)
    start = datetime.now() - timedelta(days=1)  # the same window both times: only x differs

    def make(value):
        return ABTestConfiguration(
            test_name="typed",
            description="d",
            start_date=start,
            end_date=start + timedelta(days=2),
            traffic_split={"control": 50.0, "treatment": 50.0},
            configurations={"control": {"x": value}, "treatment": {"x": 2}},
            success_metrics=["ctr"],
        )

    assert m.create_ab_test(make(1))
    assert m.create_ab_test(make(True))
    served = m.get_ab_test_config("typed", "control")
    assert served["x"] is True
    m.close()
    again = DynamicConfigurationManager(state_dir=tmp_path, log_exposures=False)
    assert again.get_ab_test_config("typed", "control")["x"] is True
    again.close()


def test_a_reload_from_1_to_true_is_a_change_with_an_event_and_an_audit_entry(tmp_path):
    """Flags are compared as stored, not with ==: 1 == True, but the served value and
    its type changed."""
    import json as _json

    from cfgcore.dynamic_config import DynamicConfigurationManager

    path = tmp_path / "flags.json"
    doc = lambda v: _json.dumps({"flags": {"limit": {"variants": {"v": v}, "default": "v"}}})  # noqa: E731
    path.write_text(doc(1))
    m = DynamicConfigurationManager(path, state_dir=tmp_path / "state")
    try:
        events = []
        m.register_change_listener(events.append)
        path.write_text(doc(True))
        assert m.reload() is True
        assert m.engine.value("limit", {}) is True
        assert [e.config_path for e in events] == ["flags.limit"]
        audit = (tmp_path / "flags.audit.jsonl").read_text().splitlines()
        assert any('"flags.limit"' in line for line in audit)
    finally:
        m.close()


def test_get_dynamic_config_manager_refuses_other_arguments_once_it_exists(tmp_path, monkeypatch):
    """Only the first call's arguments built the process-wide manager: a later call
    naming another flags file or other settings got the first one without a word."""
    first, other = tmp_path / "first", tmp_path / "other"
    first.mkdir()
    other.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "default-state"))
    reset_dynamic_config_manager()
    try:
        manager = get_dynamic_config_manager(state_dir=first, log_exposures=False)
        # No arguments, or the same ones (a path relative or absolute), is that manager.
        assert get_dynamic_config_manager() is manager
        assert get_dynamic_config_manager(state_dir="first") is manager
        assert get_dynamic_config_manager(state_dir=first, log_exposures=False) is manager
        assert get_dynamic_config_manager(log_exposures=False, persist=True) is manager
        # flags_file naming the file the manager serves (with its logs beside it).
        assert get_dynamic_config_manager(flags_file=first / "flags.json") is manager

        with pytest.raises(ConfigError) as refused:
            get_dynamic_config_manager(state_dir=other)
        message = str(refused.value)
        assert message.startswith("get_dynamic_config_manager(): ")
        assert f"state_dir={str(other)!r}" in message
        assert f"flags {other / 'flags.json'}" in message
        assert f"the manager's: {first / 'flags.json'}" in message
        assert "DynamicConfigurationManager(...)" in message

        with pytest.raises(ConfigError, match=r"log_exposures=True \(the manager's: False\)"):
            get_dynamic_config_manager(log_exposures=True)
        # An argument the first call left out is compared with its default.
        with pytest.raises(ConfigError, match=r"persist=False \(the manager's: True\)"):
            get_dynamic_config_manager(persist=False)
        with pytest.raises(ConfigError, match=r"flags_file="):
            get_dynamic_config_manager(flags_file=other / "flags.json")
        with pytest.raises(TypeError, match="no_such_argument"):
            get_dynamic_config_manager(no_such_argument=1)
        assert get_dynamic_config_manager() is manager
    finally:
        reset_dynamic_config_manager()


def test_get_dynamic_config_manager_compares_objects_by_identity(tmp_path, impl):
    engine = engine_class(impl)()
    reset_dynamic_config_manager()
    try:
        manager = get_dynamic_config_manager(state_dir=tmp_path, engine=engine, persist=False)
        assert get_dynamic_config_manager(engine=engine) is manager
        with pytest.raises(ConfigError, match=r"engine=<.*> \(the manager's: <"):
            get_dynamic_config_manager(engine=engine_class(impl)())
        with pytest.raises(ConfigError, match=r"clock="):
            get_dynamic_config_manager(clock=time.time)
        assert get_dynamic_config_manager(clock=None) is manager
    finally:
        reset_dynamic_config_manager()
