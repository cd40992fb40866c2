"""A/B tests for the tests of cfgcore's A/B write paths: one running test's
configuration, and a manager on a YAML flags file serving one."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class

TEST = "checkout"


def ab_test(**kw: Any) -> ABTestConfiguration:
    """Test ``checkout``, started a day ago for ten days, split 50/30/20 over control,
    green and blue; ``kw`` replaces any field."""
    now = datetime.now(timezone.utc)
    args: dict[str, Any] = dict(
        test_name=TEST,
        description="d",
        start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=10),
        traffic_split={"control": 50, "green": 30, "blue": 20},
        configurations={"control": {"x": 1}, "green": {"x": 2}, "blue": {"x": 3}},
        success_metrics=["conv"],
    )
    args.update(kw)
    return ABTestConfiguration(**args)


def yaml_manager_with_test(tmp_path: Any, impl: str) -> DynamicConfigurationManager:
    """A manager on ``tmp_path/flags.yaml`` (evaluator ``impl``) serving a running 50/50
    test ``checkout``; no usage file, no exposure log, no guardrail checks."""
    m = DynamicConfigurationManager(
        flags_file=str(tmp_path / "flags.yaml"), state_dir=tmp_path / "state",
        engine=engine_class(impl)(), record_usage=False, log_exposures=False,
        guardrail_check_every=10**9,
    )  # fmt: skip
    split = ab_test(
        traffic_split={"control": 50, "green": 50},
        configurations={"control": {}, "green": {}},
        success_metrics=[],
    )
    assert m.create_ab_test(split), m.last_error
    return m
