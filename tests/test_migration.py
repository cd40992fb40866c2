"""Legacy configuration migration: readers, schema mapping, report, CLI, hostile input."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main as cli_main
from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.errors import ConfigError
from cfgcore.migration import LegacyConfigMigrator, read_legacy
from cfgcore.validation_engine import validate_configuration
from tests.fuzz import examples

SEED = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "spec", "seed-enterprise-configuration.md"
)

INI = """\
; the old streaming service
[music_streaming]
premium_bitrate = 320
standard_bitrate: 160
default_codec = aac
adaptive_streaming = yes
codecs = aac, mp3, ogg

[anomaly_detection]
threshold = 0.85

[server]
port = 9090

[legacy_stuff]
foo = bar
"""

EXPECTED_INI = {
    "music_streaming": {
        "audio_quality": {
            "premium_bitrate": 320,
            "standard_bitrate": 160,
            "default_codec": "aac",
            "adaptive_streaming": True,
            "codecs": ["aac", "mp3", "ogg"],
        }
    },
    "anomaly_detection": {"threshold": 0.85},
    "server": {"port": 9090},
}


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return str(p)


def test_ini_sections_land_on_schema_paths_typed_by_the_schema(tmp_path):
    path = write(tmp_path, "app.ini", INI)
    migrator = LegacyConfigMigrator()
    config = migrator.migrate_from_legacy(path)
    assert config == EXPECTED_INI
    assert type(config["music_streaming"]["audio_quality"]["premium_bitrate"]) is int
    report = migrator.report
    assert report.mapped["music_streaming.premium_bitrate"] == (
        "music_streaming.audio_quality.premium_bitrate"
    )
    assert report.mapped["server.port"] == "server.port"  # a bundled key outside the schema
    assert list(report.unmapped) == ["legacy_stuff.foo"]
    assert "app.ini:16" in str(report)
    assert report.conflicts == [] and report.defaulted == {}
    assert validate_configuration(config).overall_valid


def test_keep_unmapped_keeps_keys_at_their_own_path(tmp_path):
    path = write(tmp_path, "app.ini", INI)
    config = LegacyConfigMigrator(keep_unmapped=True).migrate_from_legacy(path)
    assert config["legacy_stuff"] == {"foo": "bar"}
    assert validate_configuration(config).overall_valid


def test_java_properties(tmp_path):
    text = (
        "# comment\n"
        "! also a comment\n"
        "music_streaming.audio_quality.premium_bitrate=320\n"
        "music_streaming.audio_quality.default_codec : opus\n"
        "music_streaming.cdn.base_url https://cdn.example.com/a\\u00e9\n"
        "app.name = long \\\n"
        "    name\n"
        "recommendation_engine.cache_ttl_seconds=300\n"
        "Escaped\\=Key = v\n"
    )
    m = LegacyConfigMigrator(keep_unmapped=True)
    config = m.migrate_from_legacy(write(tmp_path, "legacy.properties", text))
    ms = config["music_streaming"]
    assert ms["audio_quality"] == {"premium_bitrate": 320, "default_codec": "opus"}
    assert ms["cdn"]["base_url"] == "https://cdn.example.com/a\u00e9"
    assert config["app"]["name"] == "long name"
    assert config["Escaped=Key"] == "v"
    assert "Escaped=Key" in m.report.unmapped


def test_dotenv(tmp_path):
    text = (
        "# deployment settings\n"
        "export MUSIC_STREAMING__AUDIO_QUALITY__PREMIUM_BITRATE=320\n"
        "MUSIC_STREAMING_STANDARD_BITRATE = 128  # inline comment\n"
        "APP_NAME='literal # not a comment'\n"
        'MUSIC_STREAMING__CDN__PROVIDER="multi\\nline"\n'
        'ANOMALY_DETECTION__THRESHOLD="0.9"\n'
        "EMPTY=\n"
    )
    m = LegacyConfigMigrator()
    config = m.migrate_from_legacy(write(tmp_path, "service.env", text))
    aq = config["music_streaming"]["audio_quality"]
    assert aq == {"premium_bitrate": 320, "standard_bitrate": 128}
    assert config["music_streaming"]["cdn"]["provider"] == "multi\nline"
    assert config["app"]["name"] == "literal # not a comment"
    assert config["anomaly_detection"]["threshold"] == 0.9
    assert "empty" in m.report.unmapped


def test_dotenv_prefix_from_the_mapping(tmp_path):
    path = write(tmp_path, ".env", "LEGACYAPP_SERVER_PORT=8081\nOTHER=1\n")
    m = LegacyConfigMigrator({"env_prefix": "LEGACYAPP_"})
    assert m.migrate_from_legacy(path) == {"server": {"port": 8081}}
    assert list(m.report.unmapped) == ["other"]


def test_flat_json_and_yaml_with_dotted_keys(tmp_path):
    data = {
        "music_streaming.audio_quality.premium_bitrate": "320",
        "music_streaming.audio_quality.codecs": ["aac", "flac"],
        "anomaly_detection.threshold": 0.7,
        "caching_layers.l1_cache.ttl": "5m",
    }
    expected = {
        "music_streaming": {"audio_quality": {"premium_bitrate": 320, "codecs": ["aac", "flac"]}},
        "anomaly_detection": {"threshold": 0.7},
        "caching_layers": {"l1_cache": {"ttl": "5m"}},
    }
    assert (
        LegacyConfigMigrator().migrate_from_legacy(write(tmp_path, "flat.json", json.dumps(data)))
        == expected
    )
    assert (
        LegacyConfigMigrator().migrate_from_legacy(
            write(tmp_path, "flat.yaml", yaml.safe_dump(data))
        )
        == expected
    )
    # Nested YAML is flattened the same way.
    nested = "music_streaming:\n  premium_bitrate: 256\n"
    assert LegacyConfigMigrator().migrate_from_legacy(write(tmp_path, "n.yml", nested)) == {
        "music_streaming": {"audio_quality": {"premium_bitrate": 256}}
    }


def test_mapping_file_renames_moves_drops_and_defaults(tmp_path):
    legacy = write(
        tmp_path,
        "old.properties",
        "audio.hq_kbps=320\naudio.lq_kbps=96\nstreaming.codec=aac\nobsolete.key=1\n",
    )
    mapping = write(
        tmp_path,
        "map.yaml",
        """\
keys:
  streaming.codec: music_streaming.audio_quality.default_codec
  obsolete.key: null
prefixes:
  "audio.": "music_streaming.audio_quality.bitrates."
defaults:
  music_streaming.audio_quality.adaptive_streaming: "true"
  music_streaming.audio_quality.default_codec: mp3
""",
    )
    # hq_kbps/lq_kbps are not bitrate tiers: rename the tiers exactly
    m = LegacyConfigMigrator(mapping)
    config = m.migrate_from_legacy(legacy)
    report = m.report
    assert config["music_streaming"]["audio_quality"]["default_codec"] == "aac"
    # defaults fill only what the legacy file lacks, typed by the schema
    assert config["music_streaming"]["audio_quality"]["adaptive_streaming"] is True
    assert report.defaulted == {"music_streaming.audio_quality.adaptive_streaming": True}
    assert report.unmapped["obsolete.key"] == "dropped by the mapping file"
    # the prefix moved them into bitrates, where no field is called hq_kbps
    assert "audio.hq_kbps" in report.unmapped
    assert (
        "bitrates" in report.unmapped["audio.hq_kbps"]
        or "schema" in (report.unmapped["audio.hq_kbps"])
    )

    exact = LegacyConfigMigrator(
        {
            "keys": {
                "audio.hq_kbps": "music_streaming.audio_quality.bitrates.premium",
                "audio.lq_kbps": "music_streaming.audio_quality.bitrates.low",
            }
        }
    ).migrate_from_legacy(legacy)
    assert exact["music_streaming"]["audio_quality"]["bitrates"] == {"premium": 320, "low": 96}


def test_mapping_file_errors_name_the_field(tmp_path):
    bad = write(tmp_path, "map.yaml", "keys: {a: 3}\nrenames: {}\n")
    with pytest.raises(ConfigError) as err:
        LegacyConfigMigrator(bad)
    text = str(err.value)
    assert "map.yaml" in text and "keys.a" in text and "renames" in text


def test_conflicts_exact_name_wins_then_the_later_key(tmp_path):
    text = """\
[DEFAULT]
music_streaming.audio_quality.premium_bitrate = 256

[music_streaming]
premium_bitrate = 320

[music_streaming.audio_quality]
standard_bitrate = 128

[music_streaming.x]
standard_bitrate = 160
"""
    # music_streaming.x.standard_bitrate names no field (x is not a part of any path):
    # it is unmapped, not a conflict.
    m = LegacyConfigMigrator()
    config = m.migrate_from_legacy(write(tmp_path, "c.ini", text))
    aq = config["music_streaming"]["audio_quality"]
    assert aq["premium_bitrate"] == 256  # the key that named the path exactly
    assert aq["standard_bitrate"] == 128
    by_path = {c.path: c for c in m.report.conflicts}
    c = by_path["music_streaming.audio_quality.premium_bitrate"]
    assert set(c.keys) == {
        "music_streaming.audio_quality.premium_bitrate",
        "music_streaming.premium_bitrate",
    }
    assert c.chosen == "music_streaming.audio_quality.premium_bitrate"
    assert list(by_path) == ["music_streaming.audio_quality.premium_bitrate"]
    assert "music_streaming.x.standard_bitrate" in m.report.unmapped


def test_two_inferred_keys_the_later_wins(tmp_path):
    text = "MUSIC_STREAMING_PREMIUM_BITRATE=256\nMUSIC_STREAMING__PREMIUM_BITRATE=320\n"
    m = LegacyConfigMigrator()
    config = m.migrate_from_legacy(write(tmp_path, "c.env", text))
    assert config["music_streaming"]["audio_quality"]["premium_bitrate"] == 320
    (c,) = m.report.conflicts
    assert c.keys == ("music_streaming_premium_bitrate", "music_streaming.premium_bitrate")
    assert c.chosen == "music_streaming.premium_bitrate" and c.reason == "set last"


def test_value_and_section_on_one_path(tmp_path):
    m = LegacyConfigMigrator(keep_unmapped=True)
    config = m.migrate_from_legacy(write(tmp_path, "c.properties", "legacy.a=1\nlegacy.a.b=2\n"))
    assert config == {"legacy": {"a": 1}}
    assert any("value and a section" in c.reason for c in m.report.conflicts)


def test_value_and_section_in_either_order(tmp_path):
    m = LegacyConfigMigrator(keep_unmapped=True)
    config = m.migrate_from_legacy(write(tmp_path, "r.properties", "legacy.a.b=2\nlegacy.a=1\n"))
    assert config == {"legacy": {"a": {"b": 2}}}
    (c,) = m.report.conflicts
    assert (c.path, c.chosen) == ("legacy.a", "legacy.a.b")
    assert "legacy.a" in m.report.unmapped


def test_two_keys_renamed_onto_one_path_the_later_wins(tmp_path):
    mapping = {"keys": {"old.one": "server.port", "old.two": "server.port"}}
    m = LegacyConfigMigrator(mapping)
    config = m.migrate_from_legacy(write(tmp_path, "t.properties", "old.one=1\nold.two=2\n"))
    assert config == {"server": {"port": 2}}
    (c,) = m.report.conflicts
    assert (c.keys, c.chosen, c.reason) == (("old.one", "old.two"), "old.two", "set last")


def test_ini_inline_comments_need_whitespace(tmp_path):
    text = "[music_streaming]\npremium_bitrate = 320 ; kbit/s\n[cdn]\nbase_url = http://x/#a\n"
    config = LegacyConfigMigrator(keep_unmapped=True).migrate_from_legacy(
        write(tmp_path, "c.ini", text)
    )
    assert config["music_streaming"]["audio_quality"]["premium_bitrate"] == 320
    assert config["cdn"]["base_url"] == "http://x/#a"


def test_ambiguous_key_is_unmapped_with_its_candidates(tmp_path):
    m = LegacyConfigMigrator()
    config = m.migrate_from_legacy(write(tmp_path, "c.ini", "[caching_layers]\nttl = 60\n"))
    assert config == {}
    why = m.report.unmapped["caching_layers.ttl"]
    assert why.startswith("ambiguous") and "caching_layers.l1_cache.ttl" in why


def test_untypable_value_is_reported_and_validation_names_the_path(tmp_path):
    m = LegacyConfigMigrator()
    config = m.migrate_from_legacy(
        write(tmp_path, "c.ini", "[music_streaming]\npremium_bitrate = high\n")
    )
    assert config["music_streaming"]["audio_quality"]["premium_bitrate"] == "high"
    assert "music_streaming.audio_quality.premium_bitrate" in m.report.untyped
    report = validate_configuration(config)
    assert not report.overall_valid
    assert any(
        r.key_path == "music_streaming.audio_quality.premium_bitrate" for r in report.blocking
    )


# ------------------------------------------------------------------ hostile input


def test_binary_file_names_file_and_line(tmp_path):
    path = write(tmp_path, "bin.ini", b"[a]\nx = 1\n\x00\x01\x02garbage")
    with pytest.raises(ConfigError, match=r"bin\.ini:3: a NUL character \(byte 10\)"):
        LegacyConfigMigrator().migrate_from_legacy(path)


def test_non_utf8_file_names_file_and_line(tmp_path):
    path = write(tmp_path, "latin.properties", b"a=1\nb=caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin\.properties:2: not UTF-8"):
        LegacyConfigMigrator().migrate_from_legacy(path)


def test_huge_file_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.env"
    with open(path, "wb") as fh:
        fh.truncate(17 * 1024 * 1024)  # sparse: costs no disk or time
    with pytest.raises(ConfigError, match=r"huge\.env: file is 17,825,792 bytes, over"):
        LegacyConfigMigrator().migrate_from_legacy(path)
    small = write(tmp_path, "small.env", "A=1\n" * 100)
    with pytest.raises(ConfigError, match="over the 64-byte limit"):
        LegacyConfigMigrator(max_bytes=64).migrate_from_legacy(small)


@pytest.mark.parametrize(
    ("name", "text", "line", "first"),
    [
        ("d.ini", "[s]\na = 1\nb = 2\nA = 3\n", 4, 2),  # INI keys are case-insensitive
        ("d.properties", "a=1\nb=2\na=3\n", 3, 1),
        ("d.env", "A=1\nexport A=2\n", 2, 1),
        ("d.json", '{\n "a.b": 1,\n "a.b": 2\n}', 3, 2),
        ("d.yaml", "a.b: 1\na.b: 2\n", 2, None),
    ],
)
def test_duplicate_keys_name_file_and_line(tmp_path, name, text, line, first):
    path = write(tmp_path, name, text)
    with pytest.raises(ConfigError) as err:
        LegacyConfigMigrator().migrate_from_legacy(path)
    msg = str(err.value)
    assert f"{name}:{line}" in msg and "duplicate" in msg
    if first is not None:
        assert f"line {first}" in msg


def test_duplicate_ini_section(tmp_path):
    path = write(tmp_path, "s.ini", "[a]\nx=1\n[b]\n[A]\ny=2\n")
    with pytest.raises(ConfigError, match=r"s\.ini:4: A: duplicate section \(first on line 1\)"):
        LegacyConfigMigrator().migrate_from_legacy(path)


def test_every_unparsable_line_is_reported_at_once(tmp_path):
    path = write(tmp_path, "bad.ini", "[s]\nok = 1\nthis line has no separator\n[]\n= novalue\n")
    with pytest.raises(ConfigError) as err:
        LegacyConfigMigrator().migrate_from_legacy(path)
    lines = sorted(p.line for p in err.value.problems)
    assert lines == [3, 4, 5]
    assert all(p.file == path for p in err.value.problems)
    env = write(tmp_path, "bad.env", 'GOOD=1\n1BAD=2\nNOEQUALS\nQ="open\n')
    with pytest.raises(ConfigError) as err:
        LegacyConfigMigrator().migrate_from_legacy(env)
    assert sorted(p.line for p in err.value.problems) == [2, 3, 4]
    assert "unterminated" in str(err.value)


def test_invalid_json_and_non_mapping_top_level(tmp_path):
    with pytest.raises(ConfigError, match=r"x\.json:2: invalid JSON"):
        LegacyConfigMigrator().migrate_from_legacy(write(tmp_path, "x.json", '{"a": 1,\n oops}'))
    with pytest.raises(ConfigError, match=r"l\.yaml: the top level must be a mapping"):
        LegacyConfigMigrator().migrate_from_legacy(write(tmp_path, "l.yaml", "- 1\n- 2\n"))


def test_unknown_extension_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"a\.xml: unknown legacy format"):
        LegacyConfigMigrator().migrate_from_legacy(write(tmp_path, "a.xml", "<a/>"))
    with pytest.raises(ConfigError, match="cannot read"):
        LegacyConfigMigrator().migrate_from_legacy(tmp_path / "missing.ini")


@settings(max_examples=examples(40), deadline=None)
@given(
    data=st.binary(max_size=300), fmt=st.sampled_from(["ini", "properties", "env", "json", "yaml"])
)
def test_arbitrary_bytes_parse_or_raise_config_error(tmp_path_factory, data, fmt):
    path = tmp_path_factory.mktemp("fuzz") / f"f.{fmt}"
    path.write_bytes(data)
    try:
        entries = read_legacy(path)
    except ConfigError as exc:
        assert all(p.file == str(path) for p in exc.problems if p.file)
    else:
        assert all(isinstance(e.key, str) for e in entries)


_prop_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)


def _escape_properties(s: str, key: bool) -> str:
    out = []
    for i, c in enumerate(s):
        if c == "\\":
            out.append("\\\\")
        elif c in "\n\r\t\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}[c])
        elif c in "=: #!" and (key or (i == 0 and c == " ")):
            out.append("\\" + c)
        elif ord(c) > 0x7E or ord(c) < 0x20:
            out.append("".join(f"\\u{u:04x}" for u in _utf16(c)))
        else:
            out.append(c)
    return "".join(out)


def _utf16(c: str) -> list[int]:
    b = c.encode("utf-16-be")
    return [int.from_bytes(b[i : i + 2], "big") for i in range(0, len(b), 2)]


@settings(max_examples=examples(60), deadline=None)
@given(pairs=st.dictionaries(_prop_text.filter(bool), _prop_text, min_size=1, max_size=5))
def test_properties_round_trip(tmp_path_factory, pairs):
    """Escaped the way java.util.Properties.store writes them, keys and values come back."""
    pairs = {k: v for k, v in pairs.items() if not any(0xD800 <= ord(c) for c in k + v)}
    text = "".join(
        f"{_escape_properties(k, True)}={_escape_properties(v, False)}\n" for k, v in pairs.items()
    )
    path = tmp_path_factory.mktemp("props") / "p.properties"
    path.write_text(text, encoding="utf-8")
    assert {e.key: e.value for e in read_legacy(path)} == pairs


# ------------------------------------------------------------------ the seed, as written

SEED_SNIPPET = """\
# Migrate legacy configuration
from cfgcore.migration import LegacyConfigMigrator

migrator = LegacyConfigMigrator()
new_config = migrator.migrate_from_legacy(legacy_config_path)

# Validation after migration
validation_report = validate_configuration(new_config)
if validation_report.overall_valid:
    config_manager.apply_migrated_config(new_config)
"""


@pytest.fixture
def config_manager(tmp_path):
    d = tmp_path / "config"
    shutil.copytree(default_config_dir(), d)
    manager = ConfigurationManager(d, environment="staging", environ={})
    manager.load_environment_config("staging")
    yield manager
    manager.close()


def test_seed_migration_example_runs_as_written(tmp_path, config_manager):
    legacy_config_path = write(tmp_path, "legacy.ini", INI)
    seen = []
    config_manager.register_change_listener(seen.append)
    scope = {
        "legacy_config_path": legacy_config_path,
        "validate_configuration": validate_configuration,
        "config_manager": config_manager,
    }
    exec(compile(SEED_SNIPPET, "seed-migration-example", "exec"), scope)
    assert scope["validation_report"].overall_valid
    assert config_manager.get("server.port") == 9090
    assert config_manager.get("music_streaming.audio_quality.codecs") == ["aac", "mp3", "ogg"]
    assert {e.source for e in seen} == {"migration"}


def test_seed_snippet_matches_the_spec():
    if not os.path.exists(SEED):
        pytest.skip("../shared/spec is not present: cannot compare with the seed's text")
    with open(SEED, encoding="utf-8") as fh:
        text = fh.read()
    section = text[text.index("## Migration from Legacy Systems") :]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert block.replace("config.migration", "cfgcore.migration") == SEED_SNIPPET


def test_migration_over_the_active_configuration_keeps_the_rest(tmp_path, config_manager):
    """apply_migrated_config replaces the whole tree: base= keeps what the file lacks."""
    path = write(tmp_path, "legacy.ini", "[music_streaming]\npremium_bitrate = 256\n")
    before = config_manager.config
    config = LegacyConfigMigrator(base=before).migrate_from_legacy(path)
    assert validate_configuration(config).overall_valid
    config_manager.apply_migrated_config(config)
    assert config_manager.get("music_streaming.audio_quality.premium_bitrate") == 256
    assert config_manager.get("server.port") == before["server"]["port"]
    assert config_manager.get("app.name") == before["app"]["name"]
    assert config_manager.explain("music_streaming.audio_quality.premium_bitrate").winner.kind == (
        "runtime"
    )


# ------------------------------------------------------------------ the command line


def test_cli_migrate_writes_config_and_report_and_never_overwrites(tmp_path, capsys):
    src = write(tmp_path, "app.ini", INI)
    out = tmp_path / "out"
    assert cli_main(["migrate", src, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "6 mapped, 1 unmapped" in printed or "7 mapped, 1 unmapped" in printed
    written = yaml.safe_load((out / "base.yaml").read_text())
    assert written == EXPECTED_INI
    report = json.loads((out / "migration-report.json").read_text())
    assert report["valid"] is True and list(report["unmapped"]) == ["legacy_stuff.foo"]

    (out / "base.yaml").write_text("edited: true\n")
    assert cli_main(["migrate", src, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "base.yaml" in err and "--force" in err
    assert (out / "base.yaml").read_text() == "edited: true\n"
    # only the report exists: still refused
    (out / "base.yaml").unlink()
    assert cli_main(["migrate", src, "--out", str(out)]) == 1
    assert not (out / "base.yaml").exists()
    assert cli_main(["migrate", src, "--out", str(out), "--force"]) == 0
    assert yaml.safe_load((out / "base.yaml").read_text()) == EXPECTED_INI


def test_cli_migrate_with_map_and_name(tmp_path, capsys):
    src = write(tmp_path, "old.properties", "streaming.codec=flac\n")
    mapping = write(
        tmp_path,
        "map.yaml",
        "keys: {streaming.codec: music_streaming.audio_quality.default_codec}\n",
    )
    out = tmp_path / "cfg"
    assert cli_main(["migrate", src, "--map", mapping, "--out", str(out), "--name", "staging"]) == 0
    assert yaml.safe_load((out / "staging.yaml").read_text()) == {
        "music_streaming": {"audio_quality": {"default_codec": "flac"}}
    }
    # the written file is a cfgcore configuration file the manager reads
    from cfgcore.config.files import read_config_file

    assert read_config_file(str(out / "staging.yaml")).data["music_streaming"]


def test_cli_migrate_bad_input_writes_nothing(tmp_path, capsys):
    src = write(tmp_path, "bad.env", "OK=1\nnot a line\n")
    out = tmp_path / "out"
    assert cli_main(["migrate", src, "--out", str(out)]) == 1
    assert "bad.env:2" in capsys.readouterr().err
    assert not out.exists()


def test_cli_migrate_invalid_result_exits_1(tmp_path, capsys):
    src = write(tmp_path, "bad.ini", "[music_streaming]\npremium_bitrate = 100000\n")
    assert cli_main(["migrate", src, "--out", str(tmp_path / "o")]) == 1
    out = capsys.readouterr().out
    assert "music_streaming.audio_quality.premium_bitrate" in out and "does not validate" in out


def test_readme_migration_example_runs(tmp_path, monkeypatch, config_manager):
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text[text.index("## Migrating a legacy configuration") :]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "streaming.ini").write_text(INI)
    monkeypatch.chdir(tmp_path)
    # The block takes the process's manager (get_config_manager): the fixture's here, so
    # the test changes no process-wide state.
    import cfgcore

    monkeypatch.setattr(cfgcore, "get_config_manager", lambda: config_manager)
    scope: dict = {}
    exec(compile(block, "README-migration", "exec"), scope)
    assert scope["config_manager"] is config_manager
    assert scope["new_config"] == EXPECTED_INI
    assert config_manager.get("music_streaming.audio_quality.premium_bitrate") == 320
    assert config_manager.get("server.port") == 9090


def test_readme_mapping_file_example_is_accepted(tmp_path):
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = text[text.index("## Migrating a legacy configuration") :]
    mapping = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    src = write(
        tmp_path,
        "app.env",
        "LEGACYAPP_STREAMING__HQ_KBPS=320\nLEGACYAPP_AUDIO__ADAPTIVE_STREAMING=true\n",
    )
    m = LegacyConfigMigrator(yaml.safe_load(mapping))
    assert m.migrate_from_legacy(src) == {
        "music_streaming": {
            "audio_quality": {
                "bitrates": {"premium": 320},
                "adaptive_streaming": True,
                "default_codec": "aac",
            }
        }
    }
