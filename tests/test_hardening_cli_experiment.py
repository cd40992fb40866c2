"""``cfgcore experiment create`` and ``ingest`` on hostile input: every refusal is one
line naming the option or the file:line, and ingest never applies part of a run."""

from __future__ import annotations

import json
import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cfgcore._encoding import wide_encoding
from tests.conftest import run_cli as run
from tests.fuzz import examples
from tests.texts import any_text

DEEP = "[" * 100_000 + "]" * 100_000
EXPOSURE = {"test": "checkout", "user": "u1", "variant": "green", "ts": 1764547200}
METRIC = {"test": "checkout", "user": "u1", "metric": "conversion", "value": 1}


def records(path):
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_too_deep_line_is_one_unusable_line_and_the_rest_is_ingested(
    checkout_test, tmp_path, capsys
):
    events = tmp_path / "ev.jsonl"
    events.write_text(f'{json.dumps(EXPOSURE)}\n{json.dumps(METRIC)}\n{{"x": {DEEP}}}\n')
    code, _, err = run(capsys, "experiment", "ingest", str(events))
    assert code == 1
    assert f"cfgcore: error: {events}:3: not JSON: nested too deeply" in err
    assert "internal error" not in err
    # both good lines applied (before: the metric was written, the exposure never was)
    assert [e["user"] for e in records(checkout_test / "flags.exposures.jsonl")] == ["u1"]
    assert len(records(checkout_test / "flags.metrics.jsonl")) == 1


def test_undecodable_and_wrong_typed_lines_are_reported_with_file_and_line(
    checkout_test, tmp_path, capsys
):
    events = tmp_path / "ev.jsonl"
    events.write_bytes(
        b"caf\xe9\n"
        + json.dumps({**EXPOSURE, "variant": ["green"]}).encode()
        + b"\n"
        + json.dumps({**EXPOSURE, "type": {"a": 1}}).encode()
        + b"\n"
    )
    code, _, err = run(capsys, "experiment", "ingest", str(events))
    assert code == 1
    assert f"{events}:1: not UTF-8" in err
    assert f"{events}:2: variant ['green']: not a variant of checkout" in err
    assert f"{events}:3: type {{'a': 1}}: expected 'exposure' or 'metric'" in err
    assert "internal error" not in err and "codec" not in err
    assert not (checkout_test / "flags.exposures.jsonl").exists()


def test_a_misspelt_test_or_variant_suggests_the_one_meant(checkout_test, tmp_path, capsys):
    events = tmp_path / "ev.jsonl"
    events.write_text(
        "\n".join(
            json.dumps(r)
            for r in (
                {**METRIC, "test": "checkot"},
                {**EXPOSURE, "variant": "gren"},
                {**EXPOSURE, "test": "zzz"},  # nothing close: no suggestion
                EXPOSURE,
            )
        )
        + "\n"
    )
    code, _, err = run(capsys, "experiment", "ingest", str(events))
    assert code == 1
    assert f"{events}:1: test 'checkot': no such A/B test (did you mean 'checkout'?)" in err
    assert f"{events}:2: variant 'gren': not a variant of checkout (did you mean 'green'?)" in err
    assert f"{events}:3: test 'zzz': no such A/B test\n" in err
    assert [e["user"] for e in records(checkout_test / "flags.exposures.jsonl")] == ["u1"]


def test_a_directory_is_refused_naming_it(checkout_test, tmp_path, capsys):
    code, _, err = run(capsys, "experiment", "ingest", str(tmp_path))
    assert code == 1
    assert err == f"cfgcore: error: {tmp_path}: cannot read: Is a directory\n"


_good = st.sampled_from([json.dumps(EXPOSURE).encode(), json.dumps(METRIC).encode()])
_bad = st.one_of(
    st.binary(min_size=1).filter(lambda b: b.strip() and b"\n" not in b),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | any_text(max_size=5),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(any_text(max_size=5), kids),
        max_leaves=8,
    ).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {
            "test": st.sampled_from(["checkout", 1, None, [1]]),
            "user": st.one_of(any_text(max_size=3), st.lists(st.integers(), max_size=1)),
            "variant": st.one_of(st.none(), any_text(max_size=3), st.just({"a": 1})),
            "ts": st.one_of(st.floats(), any_text(max_size=3)),
        }
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(lines=st.lists(st.one_of(_good, _bad), min_size=1, max_size=8))
@example(lines=[b"\xfe\xff", json.dumps(EXPOSURE).encode()])  # a UTF-16 mark: refused whole
def test_any_file_is_ingested_line_by_line_or_reported(lines, tmp_path_factory, capsys):
    import os

    state = tmp_path_factory.mktemp("state")
    os.environ["CFGCORE_STATE_DIR"] = str(state)
    try:
        assert run(capsys, "-q", "experiment", "create", "checkout", "--split",
                   "control=50,green=50", "--metric", "conversion", "--start")[0] == 0  # fmt: skip
        events = state / "ev.jsonl"
        events.write_bytes(b"\n".join(lines) + b"\n")
        code, _, err = run(capsys, "experiment", "ingest", str(events))
    finally:
        del os.environ["CFGCORE_STATE_DIR"]
    assert "internal error" not in err and "Traceback" not in err
    reported = {
        int(line.split(":")[3]) for line in err.splitlines() if line.startswith("cfgcore: error:")
    }
    good = {i for i, line in enumerate(lines, 1) if line in (_EXPOSURE_LINE, _METRIC_LINE)}
    assert reported.isdisjoint(good)
    assert code == (1 if reported else 0)
    written = records(state / "flags.exposures.jsonl") + records(state / "flags.metrics.jsonl")
    if wide_encoding(lines[0]) is not None:  # a UTF-16/32 file is refused whole, by line 1
        assert reported == {1} and written == []
    else:
        assert len(written) == len(lines) - len(reported)


_EXPOSURE_LINE = json.dumps(EXPOSURE).encode()
_METRIC_LINE = json.dumps(METRIC).encode()


# -- create: every option refused names itself ----------------------------------------


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--days", "99999999999"], "--days 1e+11: the window would end past the year 9999"),
        (
            ["--start-date", "9999-12-31", "--days", "5"],
            "--days 5 from --start-date 9999-12-31: the window would end past the year 9999",
        ),
        (["--days", "nan"], "--days nan: expected a positive number of days"),
        (["--days", "-3"], "--days -3: expected a positive number of days"),
        # The json module refuses this depth itself before Python 3.13 (RecursionError),
        # which parses it and leaves the refusal to the 100-level limit.
        (
            ["--config", "b=" + "[" * 5000 + "]" * 5000],
            "--config b: not JSON: nested too deeply"
            if sys.version_info < (3, 13)
            else "--config b: 0.0.0.0.0.0.…: nested more",
        ),
        (["--config", "b=" + "[" * 150 + "]" * 150], "--config b: 0.0.0.0.0.0.…: nested more"),
        (["--config", "b=NaN"], "--config b: not JSON: NaN is not a JSON value"),
        (["--config", 'b={"x": -Infinity}'], "--config b: not JSON: -Infinity is not a JSON"),
        (["--config", 'b={"x": 1e999}'], "--config b: not JSON: 1e999 is past a float's range"),
        (["--config", 'b={"x": [1, 36893488147419103232]}'], "--config b: x.1: integer out of"),
    ],
)
def test_create_refuses_bad_options_naming_them(tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    code, _, err = run(capsys, "experiment", "create", "t", "--split", "a=50,b=50", *extra)
    assert code == 2  # an option value the command line judges: a usage error
    assert err.startswith(f"cfgcore: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "flags.json").exists()  # nothing stored


def test_create_stores_a_plain_config(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    code, _, err = run(
        capsys, "experiment", "create", "t", "--split", "a=50,b=50", "--config", 'b={"x": 1.5}'
    )
    assert code == 0, err
    assert '"x": 1.5' in (tmp_path / "flags.json").read_text()
