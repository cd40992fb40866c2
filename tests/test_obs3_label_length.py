"""Every label value cfgcore exports is at most ``CFGCORE_METRICS_MAX_LABEL_BYTES`` bytes
of UTF-8 (default 1024).

Flag keys, variant and experiment names and directory paths come from whoever writes a
flag file, a store or an import: a 5,000-character flag key was exported whole, and
backends lose or alter a series over their cap (Cortex and Mimir skip it, Grafana Cloud
cuts it: 2048), or fail the whole scrape (Prometheus's `label_value_length_limit`). A
longer value is now exported as its first bytes, ``...#`` and 16 hex digits of its
BLAKE2b hash, so two keys sharing a prefix stay two series and a key gives the same
label in every process."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.observability import instruments
from cfgcore.observability.instruments import EVALUATION_SERIES, OVERFLOW
from cfgcore.observability.registry import (
    DEFAULT_MAX_LABEL_BYTES,
    MIN_LABEL_BYTES,
    SHORTENED,
    Registry,
    exported_text,
    label_value,
    registry,
)
from cfgcore.snapshot import SnapshotError
from tests.conftest import copy_bundled_config
from tests.fuzz import examples
from tests.test_alerts import promtool  # noqa: F401 - the fixture
from tests.texts import any_character, text_of

prometheus_client = pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry  # noqa: E402
from prometheus_client.openmetrics.exposition import (  # noqa: E402
    generate_latest as openmetrics_latest,
)
from prometheus_client.openmetrics.parser import (  # noqa: E402
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from cfgcore.observability.prometheus import exposition, register  # noqa: E402

# Each scrape holds its own test's evaluations alone (see the fixture).
pytestmark = pytest.mark.usefixtures("fresh_evaluation_totals")


BOUND = DEFAULT_MAX_LABEL_BYTES


def _scrapes() -> dict[str, list[dict[str, str]]]:
    """The label sets of every sample of one text scrape and one OpenMetrics scrape,
    each parsed by prometheus_client's own parser (a value it cannot read raises)."""
    reg = CollectorRegistry()
    register(reg)
    text = exposition(reg).decode("utf-8")
    om = openmetrics_latest(reg).decode("utf-8")
    return {
        "text": [s.labels for f in text_string_to_metric_families(text) for s in f.samples],
        "openmetrics": [s.labels for f in parse_openmetrics(om) for s in f.samples],
    }


def _assert_bounded(scrapes: dict[str, list[dict[str, str]]]) -> None:
    for fmt, label_sets in scrapes.items():
        for labels in label_sets:
            for name, value in labels.items():
                size = len(value.encode("utf-8"))
                assert size <= BOUND, f"{fmt}: {name} of {size} bytes: {value[:60]!r}"


def _flag_labels(scrapes: dict[str, list[dict[str, str]]]) -> set[str]:
    return {labels["flag"] for labels in scrapes["text"] if "flag" in labels}


# Keys of any length: short ones of any code point, and long ones made by repeating one
# (so thousands of characters cost hypothesis little), some sharing a long prefix.
_CHARS = any_character  # lone surrogates too
_FILE_CHARS = st.characters(exclude_categories=("Cs",))  # what a flag file can hold


def _keys(chars: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    short = text_of(chars, min_size=1, max_size=40)
    long = st.builds(
        lambda unit, n, tail: unit * n + tail,
        text_of(chars, min_size=1, max_size=4),
        st.integers(min_value=200, max_value=3000),
        text_of(chars, max_size=3),
    )
    return st.one_of(short, long)


def _engine(make, keys):
    flags = {k: {"variants": {"on": True}, "default": "on"} for k in keys}
    try:
        engine = make({"flags": flags})
    except SnapshotError:
        return None  # refused when compiled: never served, never counted
    for key in keys:
        assert engine.is_enabled(key, {}) is True
    return engine


@settings(max_examples=examples(40), deadline=None)
@given(keys=st.lists(_keys(_CHARS), min_size=1, max_size=4, unique=True))
def test_every_exported_label_value_is_within_the_bound_and_parses(make_py_and_c, keys):
    engines = [_engine(make, keys) for make in make_py_and_c]
    scrapes = _scrapes()
    _assert_bounded(scrapes)
    if engines[0] is not None:
        flags = _flag_labels(scrapes)
        for key in keys:
            assert label_value(key, BOUND)[0] in flags


@settings(max_examples=examples(40), deadline=None)
@given(
    keys=st.lists(_keys(_FILE_CHARS), min_size=2, max_size=5, unique=True),
    prefix=st.text(_FILE_CHARS, min_size=0, max_size=2).map(lambda s: s * 600),
)
def test_distinct_keys_give_distinct_labels(make_py_and_c, keys, prefix):
    """Distinct keys stay distinct series, long keys sharing their first kilobyte
    included (the prefix)."""
    keys = list(dict.fromkeys(prefix + k for k in keys))
    engines = [_engine(make, keys) for make in make_py_and_c]
    labels = [label_value(k, BOUND)[0] for k in keys]
    assert len(set(labels)) == len(keys)
    if engines[0] is not None:
        flags = _flag_labels(_scrapes())
        assert set(labels) <= flags


@given(value=st.text(_CHARS, max_size=3000), bound=st.integers(MIN_LABEL_BYTES, 2048))
def test_label_value_is_within_any_bound_and_keeps_short_values(value, bound):
    text, shortened = label_value(value, bound)
    assert len(text.encode("utf-8")) <= bound
    if len(value.encode("utf-8", "surrogatepass")) > bound:
        assert shortened
    if shortened:
        assert text[-20:-16] == "...#"
        # The start of the value is still readable: as many whole characters of it as
        # fit (a lone surrogate shown escaped, as unshortened values show it).
        start = text[:-20]
        assert exported_text(value).startswith(start)
        assert len(start.encode()) > bound - 20 - 4
    elif value.isascii():
        assert text == value


def test_a_value_shaped_like_a_shortened_label_cannot_take_its_place():
    """Someone who can name flags cannot give a short flag the label of a long one
    (merging the two series): such a value is shortened in its turn."""
    long_key = "k" * 5000
    label, shortened = label_value(long_key)
    assert shortened
    forged, forged_shortened = label_value(label)
    assert forged_shortened
    assert forged != label
    assert len(forged.encode()) <= BOUND


def test_a_key_gives_the_same_label_in_another_process():
    """A real hash (BLAKE2b), not Python's salted hash(): the series keeps its label
    across restarts and is the same label on every replica."""
    key = "checkout_" * 400 + "é\u2028"
    here, _ = label_value(key)
    code = (
        "import sys; from cfgcore.observability.registry import label_value;"
        "sys.stdout.write(label_value(sys.stdin.read())[0])"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONIOENCODING": "utf-8"}
    there = subprocess.run(
        [sys.executable, "-c", code],
        input=key.encode(),
        capture_output=True,
        env=env,
        check=True,
        timeout=120,
    ).stdout.decode()
    assert there == here


def test_long_keys_pass_promtool_and_are_counted_and_logged_once(make, promtool, caplog):  # noqa: F811
    caplog.set_level(logging.WARNING, logger="cfgcore.metrics")
    reg = registry()
    reg._shortened_logged.discard(("cfgcore_flag_evaluations_total", "flag"))
    reg._shortened_logged.discard(("cfgcore_flag_evaluations_total", "variant"))
    tag = uuid.uuid4().hex
    keys = [tag + "a" * 5000, tag + "a" * 5000 + "b", tag + "é" * 3000]
    variant = "v" * 4000
    flags = {k: {"variants": {variant: True}, "default": variant} for k in keys}
    engine = make({"flags": flags})
    for key in keys:
        assert engine.is_enabled(key, {}) is True
    text = exposition(CollectorRegistry())
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    families = {f.name: f for f in text_string_to_metric_families(text.decode())}
    ours = [
        s.labels
        for s in families["cfgcore_flag_evaluations"].samples
        if s.labels["flag"].startswith(tag)
    ]
    assert {labels["flag"] for labels in ours} == {label_value(k)[0] for k in keys}
    assert all(labels["variant"] == label_value(variant)[0] for labels in ours)
    counts = {(s.labels["metric"], s.labels["label"]): s.value for s in families[SHORTENED].samples}
    assert counts[("cfgcore_flag_evaluations_total", "flag")] >= 3
    assert counts[("cfgcore_flag_evaluations_total", "variant")] >= 3
    exposition(CollectorRegistry())  # a second scrape: no second warning
    warned = [r for r in caplog.records if "cfgcore_flag_evaluations_total: a flag" in r.message]
    assert len(warned) == 1
    assert "CFGCORE_METRICS_MAX_LABEL_BYTES" in warned[0].message


@pytest.fixture
def one_more_series():
    """The process-wide evaluation series limit set to 1 more than the series already
    exported (other tests of this worker evaluated flags), restored afterwards."""
    before = EVALUATION_SERIES._limit
    own = [s for s in _scrapes()["text"] if "flag" in s and s.get("flag") != OVERFLOW]
    EVALUATION_SERIES.limit = len({(s["flag"], s["variant"], s["reason"]) for s in own}) + 1
    yield
    EVALUATION_SERIES.limit = before


def test_long_keys_past_the_series_limit_are_bounded_too(make, one_more_series):
    tag = uuid.uuid4().hex
    keys = [f"{tag}{i}" + "x" * 3000 for i in range(4)]
    assert _engine(make, keys) is not None
    scrapes = _scrapes()
    _assert_bounded(scrapes)
    flags = _flag_labels(scrapes)
    assert OVERFLOW in flags  # three of the four went to the overflow series
    assert len([f for f in flags if f.startswith(tag)]) == 1


def test_exposure_counters_bound_experiment_and_variant_names():
    tag = uuid.uuid4().hex
    experiment, variant = tag + "e" * 3000, "ß" * 2000
    instruments.exposures_written({(experiment, variant): 2})
    scrapes = _scrapes()
    _assert_bounded(scrapes)
    assert {"experiment": label_value(experiment)[0], "variant": label_value(variant)[0]} in [
        {k: v for k, v in labels.items() if k in ("experiment", "variant")}
        for labels in scrapes["text"]
        if "experiment" in labels
    ]


def test_a_deep_configuration_directory_is_bounded(tmp_path, caplog):
    """``config_dir`` (and the flag set's ``store``, the flags file's path) come from the
    file system: five directories of 230 characters make a path over the bound."""
    caplog.set_level(logging.ERROR, logger="cfgcore")
    where = tmp_path.joinpath(*[f"{i}" + "d" * 229 for i in range(5)])
    assert len(str(where).encode()) > BOUND
    where.parent.mkdir(parents=True)
    copy_bundled_config(where, flags=True)
    manager = ConfigurationManager(str(where), environ={}, record_usage=False)
    try:
        manager.load_environment_config("staging")
        scrapes = _scrapes()
        _assert_bounded(scrapes)
        dirs = {labels["config_dir"] for labels in scrapes["text"] if "config_dir" in labels}
        assert label_value(str(where))[0] in dirs
    finally:
        manager.close()


def test_the_bound_is_configurable(monkeypatch, caplog):
    monkeypatch.setenv("CFGCORE_METRICS_MAX_LABEL_BYTES", "100")
    reg = Registry()
    assert reg.max_label_bytes == 100
    loads = reg.counter("demo_loads_total", "Loads.", ("tenant",))
    loads.inc(tenant="t" * 500)
    (family,) = [f for f in reg.collect() if f.name == "demo_loads_total"]
    (value,) = [s.labels["tenant"] for s in family.samples]
    assert len(value.encode()) == 100 and value.startswith("t" * 80)

    monkeypatch.setenv("CFGCORE_METRICS_MAX_LABEL_BYTES", "8")
    caplog.set_level(logging.WARNING, logger="cfgcore.metrics")
    assert Registry().max_label_bytes == MIN_LABEL_BYTES
    assert "below the smallest bound" in caplog.text
    monkeypatch.setenv("CFGCORE_METRICS_MAX_LABEL_BYTES", "lots")
    assert Registry().max_label_bytes == DEFAULT_MAX_LABEL_BYTES
    with pytest.raises(ValueError, match="max_label_bytes"):
        Registry(max_label_bytes=10)
