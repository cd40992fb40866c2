"""The start of a service script for tests that run one in a subprocess: a
``DynamicConfigurationManager`` on ``sys.argv[1]`` (its state directory) with a
running 50/50 A/B test ``t`` whose success metric is ``m``."""

AB_MANAGER = """
from datetime import datetime, timedelta, timezone
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
now = datetime.now(timezone.utc)
m = DynamicConfigurationManager(state_dir=sys.argv[1], record_usage=False)
assert m.create_ab_test(ABTestConfiguration(
    test_name="t", description="d", start_date=now - timedelta(days=1),
    end_date=now + timedelta(days=1), traffic_split={"a": 50.0, "b": 50.0},
    configurations={"a": {}, "b": {}}, success_metrics=["m"]))
"""
