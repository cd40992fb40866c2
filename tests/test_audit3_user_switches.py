"""Third round, found by the new-user audit: a flag switched with a string, and the
writer a flag store records."""

from __future__ import annotations

from pathlib import Path

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager, FeatureFlag
from cfgcore.errors import ConfigError
from cfgcore.runtime.audit import default_actor
from cfgcore.runtime.flagstore import writer_identity

FLAG = FeatureFlag.ENHANCED_ANOMALY_DETECTION
CTX = {"user_id": "u1", "user_segment": "premium", "region": "EU"}


@pytest.fixture
def dyn(tmp_path):
    m = DynamicConfigurationManager(state_dir=tmp_path, log_exposures=False, record_usage=False)
    yield m
    m.close()


@pytest.mark.parametrize("bad", ["false", "0", "", "no", None, 2, 0.0, [], "True"])
def test_enabled_must_be_a_switch(dyn, bad):
    dyn.set_feature_flag(FLAG, False)
    before = Path(dyn.flags_file).read_bytes()
    with pytest.raises(ConfigError, match=r"flags\.enhanced_anomaly_detection\.enabled"):
        dyn.set_feature_flag(FLAG, bad)
    assert dyn.is_feature_enabled(FLAG, CTX) is False  # "false" used to switch it on
    assert Path(dyn.flags_file).read_bytes() == before


@pytest.mark.parametrize(("value", "on"), [(True, True), (False, False), (1, True), (0, False)])
def test_true_false_and_one_zero_switch(dyn, value, on):
    dyn.set_feature_flag(FLAG, not on)
    dyn.set_feature_flag(FLAG, value)
    assert dyn.is_feature_enabled(FLAG, CTX) is on


def test_the_store_writer_is_the_real_user_not_USER(monkeypatch, tmp_path):
    monkeypatch.setenv("USER", "alice")
    monkeypatch.setenv("LOGNAME", "alice")
    me = default_actor().rpartition("@")[0]
    assert me != "alice"
    assert writer_identity()["actor"] == me
    assert writer_identity("bob")["actor"] == "bob"  # a named actor is kept
    m = DynamicConfigurationManager(state_dir=tmp_path, log_exposures=False, record_usage=False)
    try:
        m.set_feature_flag(FLAG, True)
        sidecars = [p for p in tmp_path.iterdir() if "writer" in p.name or p.suffix == ".json"]
        text = " ".join(p.read_text(errors="replace") for p in sidecars if p.is_file())
        assert '"alice"' not in text
    finally:
        m.close()
