"""Audit of validation, profiles and migration: hostile input must not hang or crash.

Each hang test runs the work in a subprocess with a generous deadline: it detects a
hang (the inputs took minutes to hours before the fixes), it does not time anything.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.legacy_formats import _ini_key, _ini_section, read_legacy
from cfgcore.errors import ConfigError
from cfgcore.validation.keys import redact_url, url_password
from tests.fuzz import examples

DEADLINE = 60  # seconds; the fixed code needs well under one


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter; its stdout, or a failure on a hang."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {DEADLINE} s (catastrophic backtracking?)")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# --- validation on load ------------------------------------------------------------------


def test_a_long_size_value_is_refused_without_hanging_validation():
    # SIZE_PATTERN had \s* on both sides of an optional unit: quadratic on spaces
    # (40 kB took 7 s; this value would take minutes).
    out = _run(
        """
        from cfgcore.validation_engine import ConfigValidator
        cfg = {"caching_layers": {"l1_cache": {"ttl": 60, "size_limit": "1" + " " * 300_000 + "x"}}}
        report = ConfigValidator().validate_config(cfg, "c", "production")
        print(sorted({r.rule_id for r in report.failures}))
        """
    )
    assert "structure.format" in out


@pytest.mark.parametrize(
    ("value", "ok"),
    [("2GB", True), (" 512 MiB ", True), ("10", True), ("1.5 G", True), ("7 bytes", True),
     ("2 GBx", False), ("GB", False), ("1..5GB", False), ("1 2", False)],
)  # fmt: skip
def test_size_pattern_accepts_what_it_did(value, ok):
    from cfgcore.config.schema import SIZE_PATTERN

    assert (re.search(SIZE_PATTERN, value) is not None) is ok


def test_a_long_url_like_value_does_not_hang_the_url_rules():
    # The credential regex retried the scheme from every letter of a long run.
    out = _run(
        """
        from cfgcore.validation_engine import ConfigValidator
        cfg = {"service": {"endpoint": "a" * 400_000 + "://bb@"}}
        report = ConfigValidator().validate_config(cfg, "c", "production")
        print(report.overall_valid)
        """
    )
    assert out.strip() == "True"


@pytest.mark.parametrize(
    ("value", "found", "redacted"),
    [
        ("postgresql://user:pass@db/x", True, "postgresql://user:***@db/x"),
        ("redis://:${REDIS_PASSWORD}@cache:6379", False, "redis://:***@cache:6379"),
        ("a://u:p@h and mysql+pymysql://x:y@z", True, "a://u:***@h and mysql+pymysql://x:***@z"),
        ("https://host:8443/path?to=a@b", False, "https://host:8443/path?to=a@b"),
        ("amqp://guest:ENC[abc]@rabbit", False, "amqp://guest:***@rabbit"),
    ],
)
def test_url_credentials_found_and_redacted_as_before(value, found, redacted):
    assert url_password(value) is found
    assert redact_url(value) == redacted


# --- legacy files ---------------------------------------------------------------------------


_OLD_SECTION = re.compile(r"^\[\s*([^\]]*?)\s*\]\s*(?:[;#].*)?$")
_OLD_KEY = re.compile(r"^([^=:\s][^=:]*?)\s*[=:]\s?(.*)$")


@settings(max_examples=examples(400), deadline=None)
@given(st.text(alphabet="[] \t=:;#ab\u00a0", max_size=14).map(str.strip))
def test_ini_lines_split_as_the_old_patterns_did(line):
    # The old regexes are the reference on short lines (where they are fast).
    m = _OLD_SECTION.match(line)
    assert _ini_section(line) == (m.group(1) if m else None)
    if m is None:
        k = _OLD_KEY.match(line)
        pair = _ini_key(line)
        if k is None:
            assert pair is None
        else:
            assert pair is not None
            assert pair[0].strip() == k.group(1).strip() and pair[1] == k.group(2)


def test_hostile_ini_lines_are_refused_quickly(tmp_path):
    # "[" and spaces: the old section pattern was cubic (5,000 spaces: 37 s).
    path = tmp_path / "legacy.ini"
    path.write_text("[" + " " * 200_000 + "x\n" + "k" + " " * 400_000 + "x\n")
    out = _run(
        f"""
        from cfgcore.config.legacy_formats import read_legacy
        from cfgcore.errors import ConfigError
        try:
            read_legacy({str(path)!r})
        except ConfigError as exc:
            print(len(exc.problems), [p.line for p in exc.problems])
        """
    )
    assert out.strip() == "2 [1, 2]"


def test_unterminated_quote_in_a_long_env_file_is_refused_quickly(tmp_path):
    path = tmp_path / "legacy.env"
    path.write_text('A="start\n' + "line\n" * 300_000)
    out = _run(
        f"""
        from cfgcore.config.legacy_formats import read_legacy
        from cfgcore.errors import ConfigError
        try:
            read_legacy({str(path)!r})
        except ConfigError as exc:
            print(exc.problems[0].line, exc.problems[0].message)
        """
    )
    assert out.strip() == '1 unterminated " quote'


def test_multiline_env_values_still_parse(tmp_path):
    path = tmp_path / "legacy.env"
    path.write_text('A="one\\\ntwo \\" q\nthree" # note\nB=\'x\'\nC="a\\\\"\nD="x\ny"z\n')
    with pytest.raises(ConfigError) as exc:
        read_legacy(path)
    # D's text after its closing quote is the only problem; A, B, C parse.
    assert [(p.path, p.line) for p in exc.value.problems] == [("D", 6)]
    path.write_text('A="one\\\ntwo \\" q\nthree" # note\nB=\'x\'\nC="a\\\\"\n')
    entries = {e.key: (e.value, e.line) for e in read_legacy(path)}
    assert entries == {
        "a": ('one\\\ntwo " q\nthree', 1),
        "b": ("x", 4),
        "c": ("a\\", 5),
    }


def test_many_continued_properties_lines_are_read_quickly(tmp_path):
    path = tmp_path / "legacy.properties"
    path.write_text("a=" + "x\\\n" * 2_000_000 + "end\n")
    out = _run(
        f"""
        from cfgcore.config.legacy_formats import read_legacy
        (entry,) = read_legacy({str(path)!r}, max_bytes=1 << 30)
        print(len(entry.value), entry.value[-4:])
        """
    )
    assert out.split() == [str(2_000_003), "xend"]


def test_properties_continuations_keep_their_meaning(tmp_path):
    path = tmp_path / "legacy.properties"
    path.write_text("a=1\\\n  2\\\\\nb=3\\\\\\\n   4\nc=5\\\n\nd=6\n")
    got = [(e.key, e.value) for e in read_legacy(path)]
    assert got == [("a", "12\\"), ("b", "3\\4"), ("c", "5"), ("d", "6")]


def test_many_duplicate_json_keys_are_reported_quickly(tmp_path):
    path = tmp_path / "legacy.json"
    path.write_text("{" + ",\n".join(f'"k{i}": 1, "k{i}": 2' for i in range(100_000)) + "}")
    out = _run(
        f"""
        from cfgcore.config.legacy_formats import read_legacy
        from cfgcore.errors import ConfigError
        try:
            read_legacy({str(path)!r})
        except ConfigError as exc:
            print(len(exc.problems), exc.problems[-1].line)
        """
    )
    assert out.split() == ["100000", "100000"]


def test_json_duplicate_names_the_repeated_line_not_a_nested_namesake(tmp_path):
    path = tmp_path / "legacy.json"
    path.write_text('{\n "x": 1,\n "y": {"x": "{\\"x\\": ["},\n "x": 2\n}\n')
    with pytest.raises(ConfigError) as exc:
        read_legacy(path)
    (problem,) = exc.value.problems
    assert (problem.path, problem.line) == ("x", 4)
    assert "first set on line 2" in problem.message


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 5_000 + "1" + "}" * 5_000,
        '{"a":' * 150 + "1" + "}" * 150,
    ],
    ids=["array-100k", "object-5k", "object-150"],
)
def test_deep_legacy_json_is_a_config_error_not_a_recursion_error(tmp_path, text):
    path = tmp_path / "legacy.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match="nested more than 100 levels deep"):
        read_legacy(path)


def test_deep_json_value_for_a_list_field_is_kept_as_text(tmp_path):
    from cfgcore.migration import LegacyConfigMigrator

    path = tmp_path / "legacy.ini"
    path.write_text("[music_streaming]\ncodecs = " + "[" * 50_000 + "\n")
    migrator = LegacyConfigMigrator()
    config = migrator.migrate_from_legacy(path)
    assert config["music_streaming"]["audio_quality"]["codecs"].startswith("[[[")
    assert "music_streaming.audio_quality.codecs" in migrator.report.untyped


# --- the migrated file reads back as migrated ------------------------------------------------


def test_migrate_writes_yaml_that_reads_back_as_the_migration(tmp_path, capsys):
    from cfgcore.config.files import read_config_file
    from cfgcore.migration import LegacyConfigMigrator
    from tests.conftest import run_cli

    tricky = ["0o17", "1e3", "0x1F", "12:30", "1_000", "null", "~", "true", ".inf", "-.5e1"]
    src = tmp_path / "legacy.ini"
    src.write_text("[misc]\n" + "".join(f"v{i} = {v}\n" for i, v in enumerate(tricky)))
    expected = LegacyConfigMigrator(keep_unmapped=True).migrate_from_legacy(src)
    code, _, _ = run_cli(
        capsys, "migrate", str(src), "--out", str(tmp_path / "out"), "--keep-unmapped"
    )
    assert code in (0, 1)
    assert read_config_file(str(tmp_path / "out" / "base.yaml")).data == expected
    report = json.loads((tmp_path / "out" / "migration-report.json").read_text())
    assert report["format"] == "ini"
