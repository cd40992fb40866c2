"""The experiments capability as an attacker and a new user meet it.

- ``track_metric`` raised the exception of a context dict whose key collides with
  ``"user_id"`` and whose ``__eq__`` raises (it reads ``ctx.get("user_id")``), though
  it is documented never to raise on bad data (``record_metric`` and
  ``get_ab_test_variant`` do not);
- ``manager.analyze()`` (the shared logs, read incrementally) reported
  ``unusable_lines=0`` for logs holding damaged lines, which ``cfgcore experiment
  report`` over the same files counts and names; the guardrail checks passed over
  them without a word;
- a stored A/B test record edited by hand with a field of the wrong shape (a
  ``traffic_split`` that is a string, ``guardrail_metrics`` a list) made ``analyze``,
  ``check_guardrails`` and ``get_ab_test`` raise AttributeError / ValueError naming
  nothing, and ``success_metrics: "ctr"`` was read as the metrics ``c``, ``t``, ``r``.
  Now each is a ConfigError naming the file and the record's key path, and such a
  document never goes live (judged where every document goes live: a start fails, a
  reload keeps the last good one; see test_hostile_exp_records_live.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.texts import any_text

NOW = datetime.now(timezone.utc)


def _test(name: str = "exp") -> ABTestConfiguration:
    return ABTestConfiguration(
        test_name=name,
        description="",
        start_date=NOW - timedelta(days=1),
        end_date=NOW + timedelta(days=1),
        traffic_split={"control": 50.0, "treatment": 50.0},
        configurations={"control": {}, "treatment": {}},
        success_metrics=["ctr"],
        guardrail_metrics={"errors": "lower_is_better"},
    )


def _manager(tmp_path, impl, **kw) -> DynamicConfigurationManager:
    engine = engine_class(impl).from_snapshot({"flags": {}})
    return DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False, **kw)


class _Collides:
    """A key whose hash is that of ``name`` and whose comparison raises: a dict lookup
    of ``name`` in a dict holding it raises."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("hostile __eq__")


def _hostile_context(keys: list[str], values: list[object]) -> dict[object, object]:
    ctx: dict[object, object] = {}
    for key, value in zip(keys, values, strict=False):
        try:
            ctx[_Collides(key) if key.startswith("!") else key] = value
        except RuntimeError:  # it collided with a key already there
            pass
    return ctx


_keys = st.lists(
    st.sampled_from(["user_id", "targeting_key", "!user_id", "!targeting_key", "region"]),
    max_size=4,
)
_values = st.lists(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        any_text(max_size=4),
        st.binary(max_size=2),
        st.just("\ud800"),
        st.builds(_Collides, st.just("u")),
    ),  # fmt: skip
    max_size=4,
)


def test_no_request_call_raises_on_a_context_whose_keys_raise(tmp_path, impl):
    m = _manager(tmp_path, impl)
    try:
        assert m.create_ab_test(_test())
        calls = [
            lambda ctx: m.get_ab_test_variant("exp", ctx),
            lambda ctx: m.record_metric("exp", "ctr", 1.0, user_context=ctx),
            lambda ctx: m.track_metric("exp", "ctr", 1.0, user_context=ctx),
            lambda ctx: m.log_exposure("exp", "control", ctx),
            lambda ctx: DynamicConfigurationManager.record_metric(m, "exp", "ctr", 1.0,
                                                                  user_context=ctx),
        ]  # fmt: skip

        @settings(max_examples=examples(300))
        @given(_keys, _values)
        def check(keys, values):
            ctx = _hostile_context(keys, values)
            for call in calls:
                call(ctx)  # never raises

        check()
        # The one the review found, named: a user_id lookup that raises.
        assert m.track_metric("exp", "ctr", 1.0, user_context={_Collides("user_id"): 1}) is False
    finally:
        m.close()


def _fill(m: DynamicConfigurationManager, users: int = 20) -> None:
    for i in range(users):
        assert m.record_metric("exp", "ctr", 1.0, user_id=f"u{i}")
        assert m.record_metric("exp", "errors", float(i % 3), user_id=f"u{i}")


def _damage(path: str) -> None:
    with open(path, "ab") as fh:
        fh.write(b'\x00\xff not json\n{"test": 5, "variant": [], "user": {}}\n')


def test_analyze_counts_the_unusable_lines_of_the_shared_logs_and_names_each_file(tmp_path, impl):
    m = _manager(tmp_path, impl)
    assert m.create_ab_test(_test())
    _fill(m)
    m.close()
    exposures = str(tmp_path / "flags.exposures.jsonl")
    metrics = str(tmp_path / "flags.metrics.jsonl")
    _damage(exposures)
    _damage(metrics)

    m = _manager(tmp_path, impl)
    try:
        report = m.analyze("exp")
        assert report.unusable_lines == 4
        named = " ".join(report.unusable_examples)
        assert exposures in named and metrics in named
        assert "unusable log line" in report.to_text()
        assert sum(report.exposures.values()) == 20  # the good lines are all counted
        # Read again (incrementally, and from the start for a test analysed anew):
        # the same lines are not counted twice.
        assert m.analyze("exp").unusable_lines == 4
        assert m.create_ab_test(_test("other"))
        assert m.analyze("other").unusable_lines == 4
        assert m.analyze("exp").unusable_lines == 4
        _damage(metrics)  # damaged while served: counted once read
        assert m.analyze("exp").unusable_lines == 6
    finally:
        m.close()


def test_a_guardrail_check_says_which_log_lines_it_left_out(tmp_path, impl, caplog):
    m = _manager(tmp_path, impl)
    assert m.create_ab_test(_test())
    _fill(m)
    m.close()
    metrics = str(tmp_path / "flags.metrics.jsonl")
    _damage(metrics)

    m = _manager(tmp_path, impl)
    try:
        with caplog.at_level(logging.WARNING, logger="cfgcore.dynamic_config"):
            assert m.check_guardrails("exp") == []
        said = [r.getMessage() for r in caplog.records if "unusable" in r.getMessage()]
        assert len(said) == 1 and metrics in said[0] and "exp" in said[0]
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="cfgcore.dynamic_config"):
            m.check_guardrails("exp")  # nothing new: said once
        assert not [r for r in caplog.records if "unusable" in r.getMessage()]
    finally:
        m.close()


MALFORMED = [
    ("traffic_split", "abc", "traffic_split"),
    ("traffic_split", {"control": "half", "treatment": 50.0}, "traffic_split.control"),
    ("success_metrics", "ctr", "success_metrics"),
    ("success_metrics", ["ctr", 5], "success_metrics"),
    ("guardrail_metrics", ["errors"], "guardrail_metrics"),
    ("guardrail_metrics", {"errors": "worse"}, "guardrail_metrics.errors"),
    ("metric_types", "binary", "metric_types"),
    ("metric_types", {"ctr": "count"}, "metric_types.ctr"),
    ("control", ["control"], "control"),
    ("control", {"name": "control"}, "control"),
]


@pytest.mark.parametrize(("field", "value", "where"), MALFORMED)
def test_a_malformed_stored_record_is_a_config_error_naming_file_and_field(
    tmp_path, impl, capsys, field, value, where
):
    m = _manager(tmp_path, impl)
    assert m.create_ab_test(_test())
    m.close()
    flags = tmp_path / "flags.json"
    doc = json.loads(flags.read_text())
    doc["experiments"]["exp"][field] = value
    flags.write_text(json.dumps(doc))

    # Judged before it goes live (tests/test_hostile_exp_records_live.py): a start with
    # nothing else to serve fails, naming the file and the field.
    with pytest.raises(ConfigError) as err:
        _manager(tmp_path, impl)
    text = str(err.value)
    assert os.fspath(flags) in text and f"experiments.exp.{where}" in text, text
    # `cfgcore experiment report` over the same files says the same.
    code, out, err = run_cli(capsys, "experiment", "report", "exp", "--flags", str(flags))
    assert code != 0 and os.fspath(flags) in err and f"experiments.exp.{where}" in err, err


@pytest.mark.parametrize(("field", "value", "where"), MALFORMED)
def test_the_readers_check_a_record_they_are_given_as_well(field, value, where):
    """The readers keep their own check (a record reaches them from an old process's
    logs or a document read outside the live flags, as the report reads its file)."""
    from cfgcore.experiments.abtest import check_record

    meta = {**_test().to_metadata(), field: value}
    with pytest.raises(ConfigError) as err:
        check_record("exp", meta, "flags.json")
    assert f"flags.json: experiments.exp.{where}" in str(err.value)


def test_a_record_without_the_optional_fields_is_still_analysed(tmp_path, impl, capsys):
    """A record made by hand with only a split (no metrics, no control): what the
    readers always took, still taken."""
    m = _manager(tmp_path, impl)
    assert m.create_ab_test(_test())
    m.close()
    flags = tmp_path / "flags.json"
    doc = json.loads(flags.read_text())
    record = doc["experiments"]["exp"]
    for key in ("success_metrics", "guardrail_metrics", "control", "status"):
        record.pop(key, None)
    flags.write_text(json.dumps(doc))
    m = _manager(tmp_path, impl)
    try:
        assert m.record_metric("exp", "ctr", 1.0, user_id="u1")
        report = m.analyze("exp")
        assert report.control == "control" and report.for_metric("ctr")
        assert m.check_guardrails("exp") == []
    finally:
        m.close()
    code, out, err = run_cli(capsys, "experiment", "report", "exp", "--flags", str(flags))
    assert code == 0 and "ctr" in out, err


@settings(max_examples=examples(500))
@given(
    st.dictionaries(st.sampled_from("abcd"), st.integers(0, 10**15)),
    st.dictionaries(st.sampled_from("abcd"), st.floats(0, 100)),
)
def test_the_sample_ratio_check_gives_an_answer_for_any_counts_and_split(observed, split):
    """A split weight of a subnormal percent (2.2e-309) raised a RuntimeWarning from
    the chi-square (an error under -W error) instead of reporting the mismatch."""
    from cfgcore.experiments.stats import sample_ratio_mismatch

    r = sample_ratio_mismatch(observed, split)
    assert 0.0 <= r.p_value <= 1.0 and not math.isnan(r.chi2)
    assert r.mismatch == (r.p_value < 0.001)


def test_a_subnormal_weight_is_a_certain_mismatch_once_users_are_there():
    from cfgcore.experiments.stats import sample_ratio_mismatch

    r = sample_ratio_mismatch({"a": 1}, {"a": 2.225073858507203e-309, "b": 1.0})
    assert r.mismatch and r.p_value == 0.0 and r.chi2 == math.inf
