"""ConfigurationTransformer: ${VAR} substitution, type conversion, durations, sizes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.config_utils import ConfigurationTransformer, parse_duration, parse_size
from cfgcore.errors import ConfigError, TransformError

ALL = ["env_var_substitution", "type_conversion", "duration_parsing", "size_parsing"]


def test_seed_example_runs_all_four_steps_in_order():
    raw = {
        "db": {"url": "postgresql://${DB_HOST:-localhost}:${DB_PORT}/app", "port": "${DB_PORT}"},
        "timeouts": ["250ms", "30s", "5m", "1h30m"],
        "cache": {"l1": "2GB", "l2": "512MiB"},
        "debug": "${DEBUG:-false}",
    }
    out = ConfigurationTransformer(env={"DB_PORT": "5432"}).transform(raw, ALL)
    assert out == {
        "db": {"url": "postgresql://localhost:5432/app", "port": 5432},
        "timeouts": [0.25, 30.0, 300.0, 5400.0],
        "cache": {"l1": 2_000_000_000, "l2": 536_870_912},
        "debug": False,
    }
    assert raw["db"]["port"] == "${DB_PORT}"  # the input is untouched


def test_substitution_forms():
    t = ConfigurationTransformer(env={"SET": "v", "EMPTY": ""})
    out = t.transform(
        {
            "plain": "${SET}",
            "colon_default_on_empty": "${EMPTY:-d}",
            "dash_default_only_when_unset": "${EMPTY-d}",
            "dash_unset": "${UNSET-d}",
            "escaped": "$${SET}",
            "inline": "a-${SET}-b",
            "required_ok": "${SET:?must be set}",
        }
    )
    assert out == {
        "plain": "v",
        "colon_default_on_empty": "d",
        "dash_default_only_when_unset": "",
        "dash_unset": "d",
        "escaped": "${SET}",
        "inline": "a-v-b",
        "required_ok": "v",
    }


def test_missing_variables_are_all_reported_with_key_path_and_file():
    t = ConfigurationTransformer(env={})
    with pytest.raises(TransformError) as err:
        t.transform(
            {"kafka": {"password": "${KAFKA_PW}"}, "x": ["${NEEDED:?ask the platform team}"]},
            file="prod.yaml",
        )
    problems = {(p.path, p.file) for p in err.value.problems}
    assert problems == {("kafka.password", "prod.yaml"), ("x.0", "prod.yaml")}
    text = str(err.value)
    assert "KAFKA_PW" in text and "ask the platform team" in text
    assert isinstance(err.value, ConfigError)


def test_unknown_step_is_an_error_before_anything_runs():
    with pytest.raises(TransformError, match="unknown transformation step.*'nope'"):
        ConfigurationTransformer(env={}).transform({"a": "${MISSING}"}, ["nope"])


def test_type_conversion_keeps_look_alikes_as_strings():
    out = ConfigurationTransformer().transform(
        {"a": "0755", "b": "on", "c": "yes", "d": "2.0.0", "e": "-12", "f": "1e3", "g": "~"},
        ["type_conversion"],
    )
    assert out == {
        "a": "0755",
        "b": "on",
        "c": "yes",
        "d": "2.0.0",
        "e": -12,
        "f": 1000.0,
        "g": None,
    }


def test_custom_step_and_order_matters():
    t = ConfigurationTransformer(env={"T": "5m"})
    t.register_step("upper", lambda v, path, run: v.upper() if isinstance(v, str) else v)
    assert t.transform({"x": "${T}"}, ["env_var_substitution", "duration_parsing"]) == {"x": 300.0}
    # duration first: "${T}" is not a duration yet, so it stays a string
    assert t.transform({"x": "${T}"}, ["duration_parsing", "env_var_substitution"]) == {"x": "5m"}
    assert t.transform({"x": "abc"}, ["upper"]) == {"x": "ABC"}
    assert "upper" in t.step_names


units = st.sampled_from(["us", "ms", "s", "m", "h", "d", "w"])
factor = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@given(st.lists(st.tuples(st.integers(0, 10_000), units), min_size=1, max_size=4))
def test_durations_sum_their_components(parts):
    text = "".join(f"{n}{u}" for n, u in parts)
    assert parse_duration(text) == pytest.approx(sum(n * factor[u] for n, u in parts))


@given(
    st.integers(0, 10**6),
    st.sampled_from(["B", "KB", "kB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB", "gib", "mb"]),
)
def test_sizes_si_are_powers_of_1000_and_iec_of_1024(n, unit):
    power = {"b": 0, "k": 1, "m": 2, "g": 3, "t": 4}[unit[0].lower()]
    base = 1024 if "i" in unit.lower() else 1000
    assert parse_size(f"{n}{unit}") == n * base**power


@pytest.mark.parametrize("text", ["", "5", "m5", "5 minutes", "1h-30m", "5x"])
def test_non_durations_are_rejected(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parsing_steps_leave_other_strings_alone():
    out = ConfigurationTransformer().transform(
        {"name": "ms", "path": "/health/live", "ver": "2.0.0", "bits": "5Mb", "word": "bad"},
        ["duration_parsing", "size_parsing"],
    )
    assert out["name"] == "ms" and out["path"] == "/health/live" and out["word"] == "bad"
    assert out["bits"] == 5_000_000  # units are case-insensitive: "b" is bytes, not bits


def test_a_value_a_step_cannot_handle_is_reported_with_file_and_key_path():
    huge_size = "1" + "0" * 400 + "KB"  # a size, but no int can hold it
    huge_int = "9" * 5000  # beyond Python's int-from-string limit
    t = ConfigurationTransformer(env={})
    t.register_step("strict", lambda v, path, run: int(v) if v == "boom" else v)
    with pytest.raises(TransformError) as err:
        t.transform(
            {"cache": {"l1": huge_size}, "n": huge_int, "x": ["boom"], "ok": "1KB"},
            ["size_parsing", "type_conversion", "strict"],
            file="staging.yaml",
        )
    problems = {(p.path, p.file) for p in err.value.problems}
    assert problems == {
        ("cache.l1", "staging.yaml"),
        ("n", "staging.yaml"),
        ("x.0", "staging.yaml"),
    }
