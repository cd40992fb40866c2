"""Audit of the transformation steps: a value a step produces obeys the limits its file
obeys (finite floats, 64-bit integers, JSON-like values), and a ``${...}`` that is not a
reference the grammar understands is an error naming the key path, never served as
written."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.transforms import ConfigurationTransformer, parse_duration, parse_size
from cfgcore.errors import ConfigError, TransformError
from tests.fuzz import examples

ALL_STEPS = ("env_var_substitution", "type_conversion", "duration_parsing", "size_parsing")


def _load(tmp_path, text, *, environ=None, transforms=ALL_STEPS):
    d = tmp_path / "config"
    d.mkdir(exist_ok=True)
    (d / "development.yaml").write_text(text)
    manager = ConfigurationManager(d, environ=environ or {}, transforms=transforms)
    try:
        return manager.load_environment_config("development")
    finally:
        manager.close()


def _finite(tree):
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack += node.values()
        elif isinstance(node, list | tuple):
            stack += node
        elif isinstance(node, float) and not math.isfinite(node):
            return False
    return True


# --- numbers a step makes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "environ"),
    [
        ("'1e999'", {}),  # type_conversion: float("1e999") is inf
        ("'-1E400'", {}),
        ("'${BIG}'", {"BIG": "1e999"}),  # substituted, then converted
    ],
)
def test_type_conversion_never_makes_an_infinite_number(tmp_path, value, environ):
    config = _load(tmp_path, f"cache:\n  ratio: {value}\n", environ=environ)
    assert _finite(config)
    assert isinstance(config["cache"]["ratio"], str)  # kept as text for validation to judge


def test_duration_no_float_can_hold_is_an_error_with_file_and_key_path(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "server:\n  timeout: '" + "9" * 400 + "s'\n")
    (problem,) = err.value.problems
    assert problem.path == "server.timeout" and problem.file.endswith("development.yaml")
    assert "duration" in problem.message and "out of range" in problem.message
    with pytest.raises(OverflowError):
        parse_duration("9" * 400 + "s")
    assert parse_duration("1h30m") == 5400.0


@pytest.mark.parametrize("text", ["9223372036854775808B", "8EiB", "99999999999999999999PB"])
def test_size_beyond_64_bits_is_an_error_with_file_and_key_path(tmp_path, text):
    if text == "8EiB":  # not a unit cfgcore knows: stays text, no error
        assert _load(tmp_path, f"cache:\n  size: '{text}'\n")["cache"]["size"] == text
        return
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, f"cache:\n  size: '{text}'\n")
    (problem,) = err.value.problems
    assert problem.path == "cache.size" and "out of range" in problem.message
    assert "OverflowError: cannot convert" not in problem.message


def test_largest_sizes_that_fit_still_parse():
    assert parse_size("8191PiB") == 8191 * 1024**5
    assert parse_size("9PB") == 9 * 10**15


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (float("nan"), "not a finite number"),
        ({1, 2}, "a set is not a configuration"),
        (2**70, "integer out of range"),
    ],
)
def test_a_registered_step_cannot_slip_past_the_file_limits(tmp_path, result, message):
    """A step is user code: what it returns must obey the limits the file obeyed."""
    d = tmp_path / "config"
    d.mkdir()
    (d / "development.yaml").write_text("app:\n  name: demo\n  mode: fast\n")
    manager = ConfigurationManager(d, environ={})
    manager.builder.transformer.register_step(
        "odd", lambda v, path, run: result if v == "fast" else v
    )
    manager.builder.transforms = ("odd",)
    with pytest.raises(ConfigError) as err:
        manager.load_environment_config("development")
    manager.close()
    (problem,) = err.value.problems
    assert problem.path == "app.mode" and problem.file.endswith("development.yaml")
    assert problem.line == 3
    assert message in problem.message


# --- references -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "${ DB_PASSWORD }",  # spaces: a typo that would be served as the password
        "${}",
        "${1X}",
        "${DB_PASSWORD",  # unclosed
        "prefix-${DB-PASS}-${ oops}",
        "${A:-${B}}",  # nested default: the default ends at the first "}"
    ],
)
def test_malformed_reference_is_an_error_naming_the_key_path(tmp_path, text):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, f"db:\n  password: '{text}'\n", environ={"B": "b", "DB": "d"})
    (problem,) = err.value.problems
    assert problem.path == "db.password" and problem.file.endswith("development.yaml")
    assert "reference" in problem.message
    assert "$${" in problem.message or "nested" in problem.message


def test_literal_dollar_brace_and_secret_files_still_pass(tmp_path):
    t = ConfigurationTransformer(env={"A": "x"})
    out = t.transform(
        {"lit": "$${ not a ref }", "ok": "${A}-${A:-d}-${MISSING-d}", "file": "${file:/s/p}"},
        ["env_var_substitution"],
    )
    assert out == {"lit": "${ not a ref }", "ok": "x-x-d", "file": "${file:/s/p}"}


_ALPHABET = st.sampled_from(["$", "{", "}", ":", "-", "?", "A", "B", "_", " ", "1", "x"])


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(_ALPHABET, max_size=24).map("".join))
def test_no_unresolved_reference_is_ever_served(text):
    """Whatever the text, substitution either reports a problem or returns a value in
    which every remaining "${" was written as "$${" (env values hold none)."""
    t = ConfigurationTransformer(env={"A": "a", "B": ""})
    try:
        out = t.transform({"v": text}, ["env_var_substitution"])["v"]
    except TransformError as exc:
        assert all(p.path == "v" for p in exc.problems)
        return
    assert out.count("${") <= text.count("$${")
