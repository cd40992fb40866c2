"""An A/B test record's ``since`` (epoch seconds: when this run of the test began) must
be a time: a finite number of seconds from 1970 up to the start of the year 10000.

A document holding ``since: 1.7976931348623157e308`` (the largest float) went live;
deleting the test then recorded its retirement a moment after the run,
``math.nextafter(since, inf)``: infinity, which no JSON number holds, so the delete
raised from the store's encoder. ``since`` values of other kinds (text, a bool, NaN, an
integer past a float) were read differently by each reader (a bool taken as 1 second,
an integer past a float raising OverflowError when a test was created again). Such a
document is now refused where every document is judged, naming the file and the key
path ``experiments.NAME.since``; the live flags keep serving. Real files (YAML, which
carries every one of these values), real managers."""

from __future__ import annotations

import math
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import RETIRED, retire_dropped
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.snapshot import decode_snapshot
from tests.fuzz import examples

NOW = datetime.now(timezone.utc)
#: The start of the year 10000 in epoch seconds (the end of 9999, as a float).
LATEST = datetime.max.replace(tzinfo=timezone.utc).timestamp()

HOSTILE = st.one_of(
    st.just(1.7976931348623157e308),
    st.floats(min_value=LATEST),  # the year 10000 on, inf included
    st.just(math.nan),
    st.floats(max_value=0.0, exclude_max=True),  # before 1970, -inf included
    st.integers(min_value=int(LATEST) + 1),
    st.integers(min_value=2**1024, max_value=2**4000),  # past a float
    st.integers(max_value=-1),
    st.booleans(),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
)


def _document(since: object) -> dict:
    return {
        "flags": {
            "exp": {
                "variants": {"control": {"v": 1}, "t": {"v": 2}},
                "default": "control",
                "tags": ["ab-test"],
            }
        },
        "experiments": {
            "exp": {
                "description": "",
                "start_date": (NOW - timedelta(days=1)).isoformat(),
                "end_date": (NOW + timedelta(days=30)).isoformat(),
                "traffic_split": {"control": 50.0, "t": 50.0},
                "control": "control",
                "since": since,
            }
        },
    }


def _write(path: Path, since: object) -> None:
    atomic_write(str(path), yaml.safe_dump(_document(since)).encode())


def _names_since(err: ConfigError, path: Path) -> bool:
    return any(p.path == "experiments.exp.since" and p.file == str(path) for p in err.problems)


@settings(max_examples=examples(80), deadline=None)
@given(since=HOSTILE)
def test_a_since_that_is_no_time_is_refused_naming_file_and_key_path(since):
    with tempfile.TemporaryDirectory() as home:
        path = Path(home) / "flags.yaml"
        _write(path, since)
        with pytest.raises(ConfigError) as err:
            DynamicConfigurationManager(str(path), state_dir=home, record_usage=False)
        assert _names_since(err.value, path), err.value
        assert "since" in str(err.value) and str(path) in str(err.value)


@settings(max_examples=examples(30), deadline=None)
@given(
    since=st.one_of(
        st.floats(0, LATEST, exclude_max=True), st.integers(0, int(LATEST) - 1), st.none()
    )
)
def test_a_since_that_is_a_time_goes_live(since):
    with tempfile.TemporaryDirectory() as home:
        path = Path(home) / "flags.yaml"
        _write(path, since)
        m = DynamicConfigurationManager(str(path), state_dir=home, record_usage=False)
        try:
            assert m._live.last_error is None
            assert m.list_ab_tests()["exp"].get("since") == since
        finally:
            m.close()


def test_a_reload_keeps_serving_and_the_test_can_still_be_deleted(tmp_path):
    """The largest float on reload: refused, the live test kept; deleting it records
    a finite retirement, written in JSON."""
    path = tmp_path / "flags.json"
    m = DynamicConfigurationManager(str(path), state_dir=tmp_path, record_usage=False)
    try:
        _write(tmp_path / "good.yaml", 1_700_000_000.0)
        good = yaml.safe_load((tmp_path / "good.yaml").read_text())
        import json

        atomic_write(str(path), json.dumps(good).encode())
        assert m.reload()
        assert m.list_ab_tests()["exp"]["since"] == 1_700_000_000.0
        good["experiments"]["exp"]["since"] = 1.7976931348623157e308
        atomic_write(str(path), json.dumps(good).encode())
        assert not m.reload()
        assert "experiments.exp.since" in str(m._live.last_error)
        assert str(path) in str(m._live.last_error)
        assert m.list_ab_tests()["exp"]["since"] == 1_700_000_000.0  # still served
        assert m.delete_ab_test("exp"), m.last_error  # (made on the stored document)
        written = json.loads(path.read_text())
        assert "exp" not in written.get("experiments", {})
        when = written["metadata"][RETIRED]["exp"]
        assert math.isfinite(when) and when <= LATEST
    finally:
        m.close()


@given(since=HOSTILE)
def test_a_retirement_is_always_a_finite_time(since):
    """The judgement alone, on a document no process serves (a stored one refused): the
    retirement recorded for a dropped test is a time, whatever its ``since`` holds."""
    old = decode_snapshot(yaml.safe_dump(_document(since)), "yaml", file="flags.yaml")
    new = decode_snapshot(yaml.safe_dump({"flags": {}}), "yaml", file="flags.yaml")
    when = retire_dropped(old, new).metadata[RETIRED]["exp"]
    assert isinstance(when, float) and math.isfinite(when) and 0 <= when <= LATEST


@settings(max_examples=examples(60), deadline=None)
@given(hostile=HOSTILE)
def test_a_retirement_that_is_no_time_is_replaced_by_the_next_one(hostile):
    """A ``retired_ab_tests`` entry that is no time (hand-edited metadata) counts as no
    retirement: dropping the test again records a time in its place, from which a test
    created again under the name starts its run (else it would count the old run)."""
    doc = _document(None)
    doc["metadata"] = {RETIRED: {"exp": hostile}}
    old = decode_snapshot(yaml.safe_dump(doc), "yaml", file="flags.yaml")
    new = decode_snapshot(
        yaml.safe_dump({"flags": {}, "metadata": {RETIRED: {"exp": hostile}}}),
        "yaml",
        file="flags.yaml",
    )
    when = retire_dropped(old, new).metadata[RETIRED]["exp"]
    assert isinstance(when, float) and math.isfinite(when) and 0 <= when <= LATEST


def test_the_last_since_a_record_holds_has_a_retirement_that_is_a_time():
    """A ``since`` at the bound (the start of the year 10000) is refused; the last one
    below it is a time, and so is the retirement a moment after it (never inf)."""
    from cfgcore.experiments.abtest import _incarnation, epoch_time, record_problems

    def since_problems(since: float) -> list:
        doc = _document(since)["experiments"]["exp"]
        return [p for p in record_problems("exp", doc, "flags.yaml") if "since" in p.path]

    assert since_problems(LATEST), "the start of the year 10000 is no since"
    last = math.nextafter(LATEST, 0.0)
    assert not since_problems(last)
    old = decode_snapshot(yaml.safe_dump(_document(last)), "yaml", file="flags.yaml")
    new = decode_snapshot(yaml.safe_dump({"flags": {}}), "yaml", file="flags.yaml")
    when = retire_dropped(old, new).metadata[RETIRED]["exp"]
    assert when == LATEST and epoch_time(when) == when  # a time, written as JSON takes it
    # ... from which no later run can begin (its since would be refused): none does.
    assert _incarnation("exp", None, {RETIRED: {"exp": when}}) is None
    # An ordinary run's retirement starts the next one.
    old = decode_snapshot(yaml.safe_dump(_document(1.7e9)), "yaml", file="flags.yaml")
    when = retire_dropped(old, new).metadata[RETIRED]["exp"]
    assert _incarnation("exp", None, {RETIRED: {"exp": when}}) == when > 1.7e9


@given(
    value=st.integers(min_value=2**256 + 1, max_value=10**6000) | st.integers(max_value=-(2**300))
)
def test_messages_describe_an_integer_past_python_s_digit_limit(value):
    """The one value describer of messages (``describe``) names a huge integer by its
    size: its text may be more digits than Python converts (ValueError)."""
    from cfgcore.validation.structure import describe

    assert describe(value) == f"an integer of {value.bit_length()} bits"
