"""``cfgcore experiment report``, eighth review: a sample-ratio check that compared
nothing (no exposures logged, or one variant served) is shown as not made, never as
"ok" beside the p-values it would have vouched for."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cfgcore.experiments.analysis import analyze
from cfgcore.experiments.exposures import Exposure
from cfgcore.experiments.metrics import MetricsStore
from tests.conftest import run_cli as run
from tests.fuzz import examples
from tests.test_hardening_stats_report import _create  # the same test, created and started

scipy_stats = pytest.importorskip("scipy.stats")


def test_report_of_metrics_without_exposures_says_the_ratio_check_was_not_made(tmp_path, capsys):
    """Exposure logging off: every user came from a metric event, the exposures are 0
    and 0, and the report said ``chi2=0.000 p=1 -> ok`` above p-values a broken
    assignment would make meaningless."""
    _create(capsys, tmp_path)
    lines = [{"test": "t", "user": f"u{i}", "variant": "control" if i % 2 else "b",
              "metric": "plays", "value": i % 3 // 2} for i in range(40)]  # fmt: skip
    events = tmp_path / "ev.jsonl"
    events.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, _, err = run(capsys, "experiment", "ingest", str(events), "--state-dir", str(tmp_path))
    assert code == 0, err
    code, out, err = run(capsys, "experiment", "report", "t", "--state-dir", str(tmp_path))
    assert code == 0, err
    srm_line = next(x for x in out.splitlines() if x.startswith("sample ratio check"))
    assert srm_line == "sample ratio check: not made (no exposures logged)"
    assert "-> ok" not in out
    code, out, err = run(
        capsys, "experiment", "report", "t", "--json", "--state-dir", str(tmp_path)
    )
    assert code == 0, err
    assert json.loads(out)["srm"]["checked"] is False


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    exposed=st.dictionaries(st.sampled_from(["control", "b", "c"]), st.integers(0, 30)),
    split=st.sampled_from([{"control": 50.0, "b": 50.0}, {"control": 100.0, "b": 0.0},
                           {"control": 30.0, "b": 30.0, "c": 40.0}]),
)  # fmt: skip
def test_the_ratio_check_is_called_ok_only_when_it_compared_counts(exposed, split):
    store = MetricsStore(None)
    store.write([Exposure("t", v, f"{v}-{i}", 0.0) for v, n in exposed.items() for i in range(n)])
    report = analyze("t", {"traffic_split": split, "control": "control"}, store)
    text, data = report.to_text(), report.to_dict()["srm"]
    served = [v for v, w in split.items() if w > 0]
    users = sum(exposed.values())
    stray = any(n for v, n in exposed.items() if v not in served)
    compared = stray or (users > 0 and len(served) > 1)
    assert data["checked"] is compared
    assert ("-> ok" in text or "-> MISMATCH" in text) is compared
    if not compared:
        assert "sample ratio check: not made (" in text
    if stray:
        assert data["mismatch"] and "MISMATCH" in text


@settings(max_examples=examples(60), deadline=None)
@given(
    exposures=st.lists(
        st.tuples(st.sampled_from(["control", "b", "stray"]), st.integers(0, 12)), max_size=40
    ),
    other_test=st.lists(st.tuples(st.sampled_from(["control", "b"]), st.integers(0, 12))),
)
def test_users_exposed_in_several_variants_are_counted_and_flagged(exposures, other_test):
    """A user logged in control and in b (a broken assignment, or ids shared between
    users) was counted in both, invisible to the ratio check when it balances out."""
    store = MetricsStore(None)
    store.write([Exposure("t", v, f"u{i}", 0.0) for v, i in exposures])
    store.write([Exposure("other", v, f"u{i}", 0.0) for v, i in other_test])  # not t's
    variants_of: dict[str, set[str]] = {}
    for v, i in exposures:
        variants_of.setdefault(f"u{i}", set()).add(v)
    want = sum(1 for vs in variants_of.values() if len(vs) > 1)
    assert store.exposed_in_several("t") == want
    report = analyze("t", {"traffic_split": {"control": 50, "b": 50}, "control": "control"},
                     store)  # fmt: skip
    assert report.exposed_in_several == want
    assert report.to_dict()["exposed_in_several_variants"] == want
    text = report.to_text()
    assert ("exposed to more than one variant" in text) is (want > 0)
    if want:
        assert f"WARNING: {want} user(s) exposed to more than one variant" in text


def test_report_warns_of_users_logged_in_two_variants(tmp_path, capsys):
    _create(capsys, tmp_path)
    lines = [{"test": "t", "user": f"u{i}", "variant": v, "ts": 1764547200}
             for i in range(20) for v in ("control", "b")]  # fmt: skip
    events = tmp_path / "ev.jsonl"
    events.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, _, err = run(capsys, "experiment", "ingest", str(events), "--state-dir", str(tmp_path))
    assert code == 0, err
    code, out, err = run(capsys, "experiment", "report", "t", "--state-dir", str(tmp_path))
    assert code == 0, err
    assert "-> ok" in out  # 20 and 20: the ratio check cannot see it
    assert "WARNING: 20 user(s) exposed to more than one variant" in out


def test_a_log_named_on_the_command_line_must_exist(tmp_path, capsys):
    """``--metrics``/``--exposures`` naming a file that is not there (a typo) made a
    report of no data with exit status 0; a log whose current file rotated away (only
    ``.1`` left) is still read."""
    _create(capsys, tmp_path)
    state = ("--state-dir", str(tmp_path))
    for option in ("--metrics", "--exposures"):
        typo = tmp_path / "flags.metircs.jsonl"
        code, out, err = run(capsys, "experiment", "report", "t", option, str(typo), *state)
        assert code == 1 and out == ""
        assert f"{option} {typo}: no such file" in err
    exposures = tmp_path / "elsewhere.jsonl"
    rotated = tmp_path / "elsewhere.jsonl.1"
    rotated.write_text(
        "".join(
            json.dumps({"test": "t", "variant": v, "user": f"{v}{i}", "ts": 1764547200.0}) + "\n"
            for v in ("control", "b")
            for i in range(3)
        )
    )
    code, out, err = run(
        capsys, "experiment", "report", "t", "--json", "--exposures", str(exposures), *state
    )
    assert code == 0, err
    assert json.loads(out)["exposures"] == {"control": 3, "b": 3}


names = st.text(min_size=1, max_size=12)


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(metrics=st.lists(names, min_size=1, max_size=3, unique=True), variant=names,
       test=names)  # fmt: skip
def test_names_from_the_logs_cannot_drive_the_terminal_or_forge_lines(metrics, variant, test):
    """Metric names are written to the logs by the application (an OpenFeature
    ``track`` name may come from a client): one holding an escape sequence or a newline
    was printed raw, so a log could clear the terminal, recolour it, or add a line such
    as ``sample ratio check ... -> ok`` under a real mismatch."""
    store = MetricsStore(None)
    split = {"control": 50.0, variant: 50.0} if variant != "control" else {"control": 100.0}
    for v in split:
        store.write([Exposure(test, v, f"{v}-{i}", 0.0) for i in range(3)])
        for m in metrics:
            for i in range(3):
                store.record(test, v, m, float(i), f"{v}-{i}", 0.0, write=False)
    report = analyze(test, {"traffic_split": split, "control": "control"}, store)
    lines = report.to_text().split("\n")
    assert all(line.isprintable() for line in lines)
    assert sum(1 for line in lines if line.startswith("metric ")) == len(metrics)
    assert sum(1 for line in lines if line.startswith("sample ratio check")) == 1


def test_report_prints_an_escape_sequence_in_a_metric_name_escaped(tmp_path, capsys):
    _create(capsys, tmp_path)
    evil = "plays\x1b[2J\nsample ratio check: -> ok\r"
    lines = [{"test": "t", "user": f"u{i}", "variant": "control" if i % 2 else "b",
              "metric": evil, "value": 1} for i in range(6)]  # fmt: skip
    events = tmp_path / "ev.jsonl"
    events.write_text("".join(json.dumps(x) + "\n" for x in lines))
    code, _, err = run(capsys, "experiment", "ingest", str(events), "--state-dir", str(tmp_path))
    assert code == 0, err
    code, out, err = run(
        capsys, "experiment", "report", "t", "--mde", "0.1", "--state-dir", str(tmp_path)
    )
    assert code == 0, err
    assert "\x1b" not in out and "\r" not in out
    assert "metric plays\\x1b[2J\\nsample ratio check: -> ok\\r (binary)" in out
    assert "  plays\\x1b[2J\\nsample ratio check: -> ok\\r: " in out
    assert sum(1 for line in out.splitlines() if line.startswith("sample ratio check")) == 1


def _binary_store(counts):
    store = MetricsStore(None)
    for v, (x, n) in counts.items():
        store.write([Exposure("t", v, f"{v}-{i}", 0.0) for i in range(n)])
        for i in range(n):
            store.record("t", v, "m", 1.0 if i < x else 0.0, f"{v}-{i}", 0.0, write=False)
    return store


@settings(max_examples=examples(80), deadline=None)
@given(
    st.integers(1, 40).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.integers(1, 40).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
)
def test_a_z_test_on_fewer_than_five_conversions_is_marked_rough(control, treatment):
    """0 of 3 against 3 of 3: the z-test says p = 0.014, Fisher's exact test 0.1; the
    report showed the 0.014 as any other p-value."""
    meta = {"traffic_split": {"control": 50, "b": 50}, "control": "control",
            "metric_types": {"m": "binary"}}  # fmt: skip
    report = analyze("t", meta, _binary_store({"control": control, "b": treatment}))
    row = [x for x in report.to_text().splitlines() if x.startswith("b ")][-1]  # (the metric's)
    few = min(min(x, n - x) for x, n in (control, treatment)) < 5
    assert row.endswith("*") is few
    assert ("* fewer than 5 users converted" in report.to_text()) is few
    if few:
        p = report.for_metric("m")[1].p_value
        assert row.split()[-1] == f"{p:.3g}*"


def test_the_rough_mark_is_where_the_exact_test_disagrees():
    report = analyze("t", {"traffic_split": {"control": 50, "b": 50}, "control": "control",
                           "metric_types": {"m": "binary"}},
                     _binary_store({"control": (0, 3), "b": (3, 3)}))  # fmt: skip
    row = report.for_metric("m")[1]
    exact = scipy_stats.fisher_exact([[3, 0], [0, 3]]).pvalue
    assert row.p_value < 0.05 < exact
    assert f"{row.p_value:.3g}*" in report.to_text()


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(metric="rev $\\frac{$ x", variant="b")
@example(metric="$$", variant="b")
@example(metric="plays", variant="$^$")
@given(metric=st.text(st.sampled_from("ab$\\{}^_x \n"), min_size=1, max_size=12),
       variant=st.text(st.sampled_from("b$\\{}^_"), min_size=1, max_size=6))  # fmt: skip
def test_the_plot_draws_any_name_literally(tmp_path_factory, metric, variant):
    """Two ``$`` in a metric or variant name made matplotlib read TeX math between them;
    ``rev $\\frac{$`` raised ParseSyntaxException and no plot was written."""
    pytest.importorskip("matplotlib")
    store = MetricsStore(None)
    split = {"control": 50.0, variant: 50.0}
    for v in split:
        store.write([Exposure("t", v, f"{v}-{i}", 0.0) for i in range(3)])
        for i in range(3):
            store.record("t", v, metric, float(i), f"{v}-{i}", 0.0, write=False)
    report = analyze("t", {"traffic_split": split, "control": "control"}, store)
    out = tmp_path_factory.mktemp("plot") / "r.png"
    assert report.plot(out) == str(out)
    assert out.read_bytes().startswith(b"\x89PNG")
