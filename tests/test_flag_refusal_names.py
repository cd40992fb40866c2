"""A feature-flag change refused names what the caller gave, the flag's key path, and
the store as its user knows it, once: the flags store the manager writes
(``flags_file``), or, for a manager that keeps its changes in this process
(``persist=False``), no file at all, as A/B test refusals do
(tests/test_exp_refusal_target.py). Such a manager's argument refusals named the state
directory's ``flags.json`` (which it never writes), and what its private store refused
(a prerequisite cycle, an unknown prerequisite) named ``memory://<hex>``; a persisting
manager's store refusals named ``file:///...`` where its argument refusals named the
path."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError, SnapshotError
from cfgcore.experiments.features import FlagInUseError


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    return tmp_path


def _ab() -> ABTestConfiguration:
    now = datetime.now(timezone.utc)
    return ABTestConfiguration(
        test_name="t", description="t", start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=1), traffic_split={"control": 50.0, "treatment": 50.0},
        configurations={"control": {}, "treatment": {}}, success_metrics=["ctr"],
    )  # fmt: skip


# (call, the error's type, its key path, its message)
REFUSALS = [
    (lambda m: m.set_feature_flag("a", True, 150), ConfigError,
     "flags.a.rollout_percentage", "must be a number within 0..100, got 150"),
    (lambda m: m.set_feature_flag("a.b", True, -1), ConfigError,
     'flags["a.b"].rollout_percentage', "must be a number within 0..100, got -1"),
    (lambda m: m.set_feature_flag("a", "false"), ConfigError,
     "flags.a.enabled", "must be true or false, got 'false'"),
    (lambda m: m.set_feature_flag("__layer__.x", True), ConfigError,
     'flags["__layer__.x"]', "reserved for experiment layers"),
    (lambda m: m.set_feature_flag("t", True), ConfigError,
     "flags.t", "not a boolean feature flag (use the A/B test API for multivariate flags)"),
    (lambda m: m.register_custom_feature_flag("c", description=5), ConfigError,
     "flags.c.description", "must be a string (no lone surrogate)"),
    (lambda m: m.set_flag_dependencies("a", 5), ConfigError,
     "flags.a.prerequisites", "expected flags (or (flag, variant) pairs), got a int"),
    (lambda m: m.set_flag_dependencies("a", ["x", ("y",)]), ConfigError,
     "flags.a.prerequisites[1]", "expected a flag or a (flag, variant) pair, got a tuple of 1"),
    (lambda m: m.set_flag_dependencies("a.b", [("x", 5)]), ConfigError,
     'flags["a.b"].prerequisites[0].variant',
     "must be a variant name (a string, no lone surrogate), got a int"),
    (lambda m: m.set_flag_dependencies("nope", ["x"]), ConfigError,
     "flags.nope", "unknown flag"),
    # refused by the store the manager writes through (compiled, or the change itself)
    (lambda m: m.set_flag_dependencies("y", ["x"]), SnapshotError,
     "flags.y.prerequisites[0]", "prerequisite cycle: x -> y -> x"),
    (lambda m: m.set_flag_dependencies("x", ["ghost"]), SnapshotError,
     "flags.x.prerequisites[0].flag", "unknown flag 'ghost'"),
    (lambda m: m.delete_feature_flag("y"), FlagInUseError,
     "flags.y", "cannot delete: still used by flag x (prerequisite)"),
    (lambda m: m.delete_feature_flag("__layer__.x"), ConfigError,
     'flags["__layer__.x"]', "reserved for experiment layers"),
    (lambda m: m.analyze("ghost"), ConfigError,
     "experiments.ghost", "unknown A/B test"),
]  # fmt: skip


@pytest.mark.parametrize("persist", [True, False])
def test_flag_refusals_name_the_key_path_and_the_store_once(home, impl, persist):
    m = DynamicConfigurationManager(persist=persist, engine=engine_class(impl)(),
                                    record_usage=False, log_exposures=False)  # fmt: skip
    file = m.flags_file if persist else None
    where = f"{m.flags_file}: " if persist else ""
    try:
        assert m.register_custom_feature_flag("x") and m.register_custom_feature_flag("y")
        m.set_flag_dependencies("x", ["y"])
        assert m.create_ab_test(_ab()) is True, m.last_error
        before = m.snapshot
        for call, kind, path, message in REFUSALS:
            with pytest.raises(kind) as err:
                call(m)
            assert str(err.value) == f"{where}{path}: {message}", path
            assert [(p.file, p.path, p.message) for p in err.value.problems] == [
                (file, path, message)
            ]
            assert m.snapshot is before  # nothing changed
        if not persist:
            # Nothing was written where a refusal would have pointed.
            assert not os.path.exists(m.flags_file)
    finally:
        m.close()
