"""An attacker's and a new user's review of ``update_ab_test`` / ``cfgcore experiment
update``, ``create`` without ``--replace`` and the ``per_user`` metric kind.

What each test pins down was found broken (or is a property the review relies on):

* a ``changes`` mapping read twice gave one set of fields to the check and another to
  the write: ``test_name`` (the salt of every user's bucket) went through, and a str
  subclass key lying in its ``__eq__``/``__hash__`` passed as another field;
* a stopped test serves its control to every user: ``update`` (or a replacement
  written stopped) with another ``control`` served them all that variant, for a test
  its guardrail stopped the harmful one, without any resume;
* a layered test whose record has no ``layer_offset`` (a hand-written flags file: its
  slice is where it is packed) could be moved to another layer, or grown into a slice
  elsewhere, moving its users and the next test's;
* ``create`` without ``--replace`` called a test "changed" when only the key order of
  a configuration, of ``metric_types`` or of ``targeting`` differed;
* a per-user (or continuous) metric whose first value was far larger than the later
  ones (a stray 1e17, refunded) rounded every later value to nothing;
* ``--config`` given twice for a variant kept the last without a word.

Real managers on real flag files, the real CLI, SciPy as the independent reference.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.experiments.analysis import analyze
from cfgcore.experiments.exposures import Exposure
from cfgcore.experiments.metrics import MetricsStore
from cfgcore.runtime.policy import AccessPolicy, set_policy
from tests.conftest import run_cli
from tests.fuzz import examples
from tests.test_experiments import _simulate
from tests.test_fix10_exp_guardrail_hold import HARMFUL, TEST, _guarded_test

USERS = [{"user_id": f"u{i}"} for i in range(400)]


@pytest.fixture(autouse=True)
def _quiet_state(tmp_path, monkeypatch):
    for name in ("CFGCORE_CONFIG_DIR", "CFGCORE_FLAG_STORE", "CFGCORE_ACCESS_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    monkeypatch.chdir(tmp_path)


def _manager(state) -> DynamicConfigurationManager:
    return DynamicConfigurationManager(
        state_dir=state, record_usage=False, guardrail_check_every=10**9
    )


def _running(name="t", **kw) -> ABTestConfiguration:
    now = datetime.now(timezone.utc)
    args = dict(
        test_name=name,
        description="d",
        start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=10),
        traffic_split={"control": 50, "b": 50},
        configurations={"control": {"x": 1}, "b": {"x": 2}},
        success_metrics=["conv"],
    )
    args.update(kw)
    return ABTestConfiguration(**args)


def _served(m, name="t"):
    return [m.get_ab_test_variant(name, u) for u in USERS]


def _doc(m) -> dict:
    return json.loads(Path(m.flags_file).read_text())


# -- update reads its changes once, by the text of each key -----------------------------


class _SecondReadRenames(Mapping):
    """Names ``description`` when first read, ``test_name`` on every later read."""

    def __init__(self) -> None:
        self.reads = 0

    def __iter__(self) -> Iterator[str]:
        self.reads += 1
        return iter(["description"] if self.reads == 1 else ["test_name"])

    def __len__(self) -> int:
        return 1

    def __getitem__(self, key: str) -> str:
        return "renamed" if key == "test_name" else "new description"


class _ClaimsDescription(str):
    """Holds "test_name", says it is "description" to == and hash()."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("description")


class _SaysDescription(str):
    def __str__(self) -> str:
        return "description"


@pytest.mark.parametrize(
    "changes",
    [
        _SecondReadRenames(),
        {_ClaimsDescription("test_name"): "renamed"},
        {_SaysDescription("test_name"): "renamed"},
    ],
    ids=["mapping-changes-between-reads", "key-eq-hash-lie", "key-str-lies"],
)
def test_update_cannot_rename_the_test_and_rebucket_its_users(tmp_path, changes):
    m = _manager(tmp_path)
    try:
        assert m.create_ab_test(_running())
        before = _served(m)
        m.update_ab_test("t", changes)
        flag = _doc(m)["flags"]["t"]
        assert flag.get("salt") in (None, "t")
        assert _served(m) == before
        other = DynamicConfigurationManager(m.flags_file, record_usage=False)
        try:
            assert _served(other) == before  # every process serves the same users alike
        finally:
            other.close()
    finally:
        m.close()


def test_a_key_naming_test_name_by_its_text_is_refused_and_nothing_written(tmp_path):
    m = _manager(tmp_path)
    try:
        assert m.create_ab_test(_running())
        before = Path(m.flags_file).read_bytes()
        assert not m.update_ab_test("t", {_ClaimsDescription("test_name"): "renamed"})
        assert "'test_name': not a field update changes" in m.last_error
        assert Path(m.flags_file).read_bytes() == before
    finally:
        m.close()


class _NamedOther(str):
    """Holds "t"; its str, eq and hash claim "other"."""

    def __str__(self) -> str:
        return "other"

    def __eq__(self, o: object) -> bool:
        return o == "other"

    def __hash__(self) -> int:
        return hash("other")


def test_update_is_judged_by_the_policy_on_the_test_it_changes(tmp_path):
    m = _manager(tmp_path)
    try:
        assert m.create_ab_test(_running())
        before = Path(m.flags_file).read_bytes()
        set_policy(AccessPolicy({"r": {"experiment.create": ["other"]}}, {"bob": ["r"]}))
        try:
            with pytest.raises(PermissionError, match="experiment.create t"):
                m.update_ab_test(_NamedOther("t"), {"description": "x"}, actor="bob")
            assert m.update_ab_test("other", {"description": "x"}, actor="bob") is False
        finally:
            set_policy(None)
        assert Path(m.flags_file).read_bytes() == before
        denied = [e for e in m.audit.entries() if e["kind"] == "denied"]
        assert denied and denied[-1]["actor"] == "bob"
        assert "experiment.create" in json.dumps(denied[-1]) and '"t"' in json.dumps(denied[-1])
    finally:
        m.close()


# -- update brings in no secret reference -----------------------------------------------


def test_update_keeps_a_stored_secret_reference_in_place_and_adds_none(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_SECRET_DIRS", str(tmp_path))
    secret = tmp_path / "token"
    secret.write_text("TOPSECRET")
    ref = f"${{file:{secret}}}"
    m = _manager(tmp_path)
    try:
        assert m.create_ab_test(_running())
    finally:
        m.close()
    doc = json.loads((tmp_path / "flags.json").read_text())
    doc["flags"]["t"]["variants"]["control"] = {"x": 1, "token": ref}  # the operator's file
    (tmp_path / "flags.json").write_text(json.dumps(doc))
    m = _manager(tmp_path)
    try:
        before = Path(m.flags_file).read_bytes()
        refused = [
            {"configurations": {"b": {"x": 2, "token": ref}}},  # the same text elsewhere
            {"configurations": {"control": {"x": 1, "other": ref}}},  # moved within
            {"configurations": {"control": {"x": 1, "token": [ref]}}},  # one level down
            {"configurations": {"control": {"x": 1, "token": "ENC[v1:abc]"}}},
            {"traffic_split": {"control": 50, "b": 50, "c": 0},
             "configurations": {"c": {"token": ref}}},
        ]  # fmt: skip
        for changes in refused:
            assert not m.update_ab_test("t", changes), changes
            assert "a secret reference" in m.last_error
            assert Path(m.flags_file).read_bytes() == before
        # kept where the file holds it: allowed, the reference stored, never its content
        assert m.update_ab_test("t", {"configurations": {"control": {"token": ref, "x": 5}}})
        text = Path(m.flags_file).read_text()
        assert "TOPSECRET" not in text and json.loads(text)["flags"]["t"]["variants"][
            "control"
        ] == {"token": ref, "x": 5}
    finally:
        m.close()


# -- a stopped test keeps serving its control -----------------------------------------


@pytest.mark.parametrize("how", ["guardrail", "by hand"])
def test_a_stopped_test_keeps_its_control_whatever_update_or_replace_says(tmp_path, how):
    m = _manager(tmp_path)
    try:
        assert m.create_ab_test(_guarded_test())
        _simulate(m, TEST, HARMFUL, metric="playback_errors")
        if how == "guardrail":
            assert m.check_guardrails(TEST)
        else:
            assert m.stop_ab_test(TEST, "by hand")
        assert set(_served(m, TEST)) == {"control"}
        before = Path(m.flags_file).read_bytes()
        for control in ("variant_a", "variant_b"):
            assert not m.update_ab_test(TEST, {"control": control})
            # (judged where every document goes live: the test, the key path, the move)
            assert f"flags.{TEST}.rules[0]" in m.last_error
            assert "the test is stopped and serves 'control'" in m.last_error
            assert f"would serve them all {control!r}" in m.last_error
            stopped = m.get_ab_test(TEST)
            replaced = ABTestConfiguration(**{**stopped.__dict__, "control": control})
            assert not m.create_ab_test(replaced, start=False, replace=True)
            assert f"would serve them all {control!r}" in m.last_error
        assert Path(m.flags_file).read_bytes() == before
        assert set(_served(m, TEST)) == {"control"}
        # its other fields may change: it stays stopped, serving its control
        assert m.update_ab_test(TEST, {"description": "paused", "control": "control"})
        assert set(_served(m, TEST)) == {"control"}
    finally:
        m.close()


def test_a_test_not_started_may_change_its_control(tmp_path):
    m = _manager(tmp_path)
    try:
        assert m.create_ab_test(_running(), start=False)
        assert m.update_ab_test("t", {"control": "b"})
        assert set(_served(m)) == {"b"}  # nobody enrolled yet: served what it now stops to
        assert _doc(m)["experiments"]["t"]["stopped_reason"] == "created, not started"
    finally:
        m.close()


# -- a layered test written without layer_offset keeps its slice ---------------------------


def _hand_written(path: Path, tests: dict[str, float]) -> None:
    """A flags file with served tests in layer "x", in order, without layer_offset."""
    now = datetime.now(timezone.utc)
    window = {"start": (now - timedelta(days=1)).isoformat(),
              "end": (now + timedelta(days=5)).isoformat()}  # fmt: skip
    split = {"control": 50.0, "b": 50.0}
    flags, experiments = {}, {}
    for name, pct in tests.items():
        flags[name] = {
            "variants": {"control": {}, "b": {}, "__none__": None}, "default": "__none__",
            "off_variant": "__none__", "rules": [{"split": split}], "salt": name,
            "schedule": window, "tags": ["ab-test"],
        }  # fmt: skip
        experiments[name] = {
            "description": "", "start_date": window["start"], "end_date": window["end"],
            "traffic_split": split, "success_metrics": [], "control": "control",
            "status": "active", "layer": "x", "layer_percentage": pct,
        }  # fmt: skip
    path.write_text(json.dumps({"flags": flags, "experiments": experiments}))


def test_growing_a_packed_slice_moves_neither_its_users_nor_the_next_tests(tmp_path):
    # "t" is packed at 0-20 %, "a" after it at 20-50 %: "t" cannot grow where it is.
    _hand_written(tmp_path / "flags.json", {"t": 20.0, "a": 30.0})
    m = _manager(tmp_path)
    try:
        users = {name: _served(m, name) for name in ("t", "a")}
        before = Path(m.flags_file).read_bytes()
        assert not m.update_ab_test("t", {"layer_percentage": 40})
        assert "cannot grow to 40% where it is" in m.last_error
        assert Path(m.flags_file).read_bytes() == before
        assert {name: _served(m, name) for name in ("t", "a")} == users
    finally:
        m.close()


def test_a_packed_slice_may_not_move_to_another_layer(tmp_path):
    _hand_written(tmp_path / "flags.json", {"t": 50.0})
    m = _manager(tmp_path)
    try:
        before = Path(m.flags_file).read_bytes()
        assert not m.update_ab_test("t", {"layer": "y", "layer_percentage": 10})
        assert "moving it to layer 'y'" in m.last_error
        replaced = ABTestConfiguration(**{**m.get_ab_test("t").__dict__, "layer": "y"})
        assert not m.create_ab_test(replaced, replace=True)
        assert Path(m.flags_file).read_bytes() == before
        # where it is, it grows (the slice after it is free) and shrinks
        assert m.update_ab_test("t", {"layer_percentage": 60})
        assert m.update_ab_test("t", {"layer_percentage": 20})
        assert _doc(m)["experiments"]["t"]["layer_offset"] == 0.0
    finally:
        m.close()


# -- create without --replace: the same test whatever the key order -----------------------


def _shuffled(value, rnd):
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return {k: _shuffled(value[k], rnd) for k in keys}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


_FULL = dict(
    configurations={"control": {"a": 1, "b": {"c": [1, {"d": 2, "e": 3}], "f": "g"}},
                    "b": {"a": 2, "b": {"c": [], "f": "h"}}},
    metric_types={"conv": "binary", "rev": "per_user", "time": "continuous"},
    guardrail_metrics={"err": "lower_is_better", "rev": "higher_is_better"},
    targeting={"all": [{"attr": "region", "in": ["EU", "UK"]}, {"attr": "age", "ge": 18}]},
)  # fmt: skip


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_same_test_in_another_key_order_is_a_no_op(tmp_path_factory, seed):
    import random

    state = tmp_path_factory.mktemp("state")
    m = _manager(state)
    try:
        first = _running(**_FULL)
        assert m.create_ab_test(first)
        before = Path(m.flags_file).read_bytes()
        rnd = random.Random(seed)
        again = ABTestConfiguration(**{
            **first.__dict__, **{k: _shuffled(v, rnd) for k, v in _FULL.items()}
        })  # fmt: skip
        for start in (True, False):
            assert m.create_ab_test(again, start=start, replace=False), m.last_error
            assert Path(m.flags_file).read_bytes() == before
        # a value of another type is another configuration (1, 1.0 and True differ)
        for x in (1.0, True):
            other = {**_FULL["configurations"], "b": {**_FULL["configurations"]["b"], "a": x}}
            changed = ABTestConfiguration(**{**first.__dict__, "configurations": other})
            assert not m.create_ab_test(changed, replace=False)
            assert "change configurations.b" in m.last_error
        # and the traffic split's order lays out its buckets: another test
        split = ABTestConfiguration(**{**first.__dict__, "traffic_split": {"b": 50, "control": 50}})
        assert not m.create_ab_test(split, replace=False)
        assert "change traffic_split" in m.last_error
        assert Path(m.flags_file).read_bytes() == before
    finally:
        m.close()


# -- per_user: a huge first value does not erase the later ones ------------------------------


def _store_with(outlier: float, values: list[float], refunded: bool) -> MetricsStore:
    store = MetricsStore()
    users = [f"u{i}" for i in range(len(values) + 1)]
    store.write([Exposure("t", "v", u, 0.0) for u in users])
    store.record("t", "v", "rev", outlier, "u0")
    if refunded:
        store.record("t", "v", "rev", -outlier, "u0")
    for i, value in enumerate(values, 1):
        store.record("t", "v", "rev", value, f"u{i}")
    return store


@settings(max_examples=examples(60), deadline=None)
@given(
    outlier=st.floats(1e8, 1e99),
    values=st.lists(st.integers(-4000, 4000).map(lambda c: c / 100), min_size=3, max_size=30),
    refunded=st.booleans(),
)
@example(outlier=1e8, values=[1.96, 0.0, 0.0], refunded=True)  # (the precision bound's edge)
def test_a_huge_first_value_keeps_every_later_users_total(outlier, values, refunded):
    store = _store_with(outlier, values, refunded)
    totals = np.array([0.0 if refunded else outlier, *values])
    pu = store.per_user("t", "v", "rev").summary
    assert pu.n == len(totals)
    # The store's promise: a value is kept to 2**-27 of itself (the shift is at most
    # 2**26 times larger: metrics._REBASE_RATIO), so each small value may be off by
    # vmax * 2**-27; twice that as the margin. (Before the rebase, a 1e8 outlier left
    # 0.49 as 0.4899999984; a 1e17 one turned 0.245 into 0.)
    vmax = max(abs(v) for v in values)
    tol = 2.0**-26 * vmax + 1e-12
    assert pu.mean == pytest.approx(float(totals.mean()), rel=1e-9, abs=tol)
    assert pu.m2 == pytest.approx(float(np.square(totals - totals.mean()).sum()), rel=1e-6,
                                  abs=4 * len(totals) * vmax * tol + 1e-9)  # fmt: skip
    # the continuous kind read the same columns: the mean per event of the users' values
    events = np.array([outlier, -outlier, *values] if refunded else [outlier, *values])
    assert store.summary("t", "v", "rev").mean == pytest.approx(
        float(math.fsum(events) / len(events)), rel=1e-9, abs=tol
    )


def test_a_refunded_outlier_and_welchs_test_agree_with_scipy_in_process_and_from_logs(
    tmp_path, capsys
):
    """The in-process store, the manager's view of the shared logs and ``cfgcore
    experiment report --json`` against SciPy's Welch test on the per-user totals."""
    m = _manager(tmp_path)
    test = _running(
        "shop", traffic_split={"control": 50, "treatment": 50},
        configurations={"control": {}, "treatment": {}}, success_metrics=["revenue"],
        metric_types={"revenue": "per_user"},
    )  # fmt: skip
    totals: dict[str, dict[str, float]] = {"control": {}, "treatment": {}}
    try:
        assert m.create_ab_test(test)
        first = {}
        for i, ctx in enumerate(USERS):
            variant = m.get_ab_test_variant("shop", ctx)
            if variant not in first:
                first[variant] = ctx["user_id"]  # its first event: a stray 1e17, refunded
                assert m.record_metric("shop", "revenue", 1e17, user_context=ctx)
                assert m.record_metric("shop", "revenue", -1e17, user_context=ctx)
                totals[variant][ctx["user_id"]] = 0.0
            value = (i % 7) * (1.25 if variant == "treatment" else 1.0) if i % 3 else 0.0
            if value:
                assert m.record_metric("shop", "revenue", value, user_context=ctx)
            totals[variant][ctx["user_id"]] = totals[variant].get(ctx["user_id"], 0.0) + value
        m.exposures.flush()
        m.metrics.flush()
        meta = m.list_ab_tests()["shop"]
        reports = [analyze("shop", meta, m.metrics), m.analyze("shop")]
    finally:
        m.close()
    control = np.array(list(totals["control"].values()))
    treatment = np.array(list(totals["treatment"].values()))
    welch = sst.ttest_ind(treatment, control, equal_var=False)
    capsys.readouterr()
    code, out, err = run_cli(capsys, "experiment", "report", "shop", "--state-dir",
                             str(tmp_path), "--json")  # fmt: skip
    assert code == 0, err
    cli = {r["variant"]: r for r in json.loads(out)["results"] if r["metric"] == "revenue"}
    for report in reports:
        rows = {r.variant: r for r in report.for_metric("revenue")}
        assert rows["control"].value == pytest.approx(control.mean(), rel=1e-9)
        assert rows["treatment"].value == pytest.approx(treatment.mean(), rel=1e-9)
        assert rows["treatment"].p_value == pytest.approx(welch.pvalue, rel=1e-6)
        assert rows["treatment"].statistic == pytest.approx(welch.statistic, rel=1e-6)
    assert cli["treatment"]["value"] == pytest.approx(treatment.mean(), rel=1e-9)
    assert cli["treatment"]["p_value"] == pytest.approx(welch.pvalue, rel=1e-6)


# -- the command line ----------------------------------------------------------------------


def test_config_given_twice_is_refused_in_one_line_and_nothing_written(tmp_path, capsys):
    flags = tmp_path / "flags.json"
    argv = ("experiment", "create", "t", "--split", "control=50,b=50", "--flags", str(flags))
    code, _, err = run_cli(capsys, *argv, "--config", 'b={"x":1}', "--config", 'b={"x":2}')
    assert code == 2 and err.strip().count("\n") == 0, err
    assert "--config: 'b' given twice" in err
    assert not flags.exists()
    assert run_cli(capsys, *argv, "--start")[0] == 0
    before = flags.read_bytes()
    code, _, err = run_cli(capsys, "experiment", "update", "t", "--flags", str(flags),
                           "--config", 'b={"x":1}', "--config", 'b={"x":2}')  # fmt: skip
    assert code == 2 and "--config: 'b' given twice" in err, err
    assert flags.read_bytes() == before


# -- what held: update never resumes a test another process stops ----------------------------


def test_update_racing_a_stop_from_another_process_never_resumes_it(tmp_path):
    m = _manager(tmp_path)
    try:
        assert m.create_ab_test(_running())
        other = (
            "from cfgcore.dynamic_config import DynamicConfigurationManager as D\n"
            f"m = D(state_dir={str(tmp_path)!r}, record_usage=False)\n"
            "for i in range(10): m.update_ab_test('t', {'description': f'o{i}'})\n"
            "assert m.stop_ab_test('t', 'from the other process')\n"
            "for i in range(10): m.update_ab_test('t', {'description': f'p{i}'})\n"
            "m.close()\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", other])
        results = []
        while proc.poll() is None or len(results) < 20:
            results.append(m.update_ab_test("t", {"success_metrics": [f"m{len(results)}"]}))
            if len(results) > 2000:
                break
        assert proc.wait(timeout=120) == 0
        assert all(results)
        m.reload()
        record = _doc(m)["experiments"]["t"]
        assert record["status"] == "stopped"
        assert record["stopped_reason"] == "from the other process"
        assert set(_served(m)) == {"control"}
    finally:
        m.close()
