"""Audit of how configuration text is read: what a file says is what loads, whatever
editor wrote it (a byte-order mark) and however YAML 1.1 would have read a number."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.yamlio import load_yaml
from tests.fuzz import examples

BOM = b"\xef\xbb\xbf"


def _load(tmp_path, name, raw):
    d = tmp_path / "config"
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(raw)
    manager = ConfigurationManager(d, environ={})
    try:
        manager.load_environment_config("development")
        return manager.config, manager.explain("server.port")
    finally:
        manager.close()


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("development.yaml", "server:\n  port: 8080\n", 2),
        ("development.json", '{\n  "server": {\n    "port": 8080\n  }\n}\n', 3),
        ("development.toml", "[server]\nport = 8080\n", 2),
    ],
)
def test_a_byte_order_mark_is_not_content_in_any_format(tmp_path, name, text, line):
    """Notepad and other Windows editors start UTF-8 files with a BOM: YAML skipped it,
    JSON and TOML refused the file ("Unexpected UTF-8 BOM", "Invalid statement")."""
    config, prov = _load(tmp_path, name, BOM + text.replace("\n", "\r\n").encode())
    assert config["server"]["port"] == 8080
    assert prov.winner.line == line  # lines still counted from the first real line


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12:30", "12:30"),  # YAML 1.1: 750 (base 60)
        ("1:30:00", "1:30:00"),  # YAML 1.1: 5400
        ("0644", "0644"),  # YAML 1.1: 420 (octal)
        ("01234", "01234"),  # a zip code
        ("1_000", "1_000"),
        ("0b101", "0b101"),
        ("0o17", 15),
        ("0x1F", 31),
        ("-0", 0),
        ("+12", 12),
        ("1e3", 1000.0),
        ("0.5", 0.5),
        (".5", 0.5),
        ("-.inf", float("-inf")),
        ("true", True),
        ("on", "on"),
    ],
)
def test_yaml_numbers_are_yaml_1_2_core_and_leading_zeros_stay_text(text, value):
    assert load_yaml(f"v: {text}\n") == {"v": value}


def test_a_time_of_day_loads_as_written(tmp_path):
    config, _ = _load(
        tmp_path, "development.yaml", b"server:\n  port: 8080\nbackup:\n  at: 12:30\n"
    )
    assert config["backup"]["at"] == "12:30"  # YAML 1.1: 750


@settings(max_examples=examples(300), deadline=None)
@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_plain_integers_still_load_as_integers(n):
    assert load_yaml(f"v: {n}\n") == {"v": n}


@settings(max_examples=examples(300), deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_plain_floats_still_load_as_floats(x):
    text = repr(x)
    loaded = load_yaml(f"v: {text}\n")["v"]
    assert isinstance(loaded, float) and loaded == x
