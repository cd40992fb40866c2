"""A flag file's errors name the line, as a configuration file's do.

A problem found after the file parsed (a wrong type, an unknown field, the compiler's
checks: an unknown variant or segment, a missing default, a prerequisite cycle) read
``flags.yaml: flags.x.rules[0].serve: unknown variant ...``: the key path without the
line, where a configuration file's error reads ``base.yaml:12: key.path: message``.
Each such problem now names the line where its key path (or the nearest part of it the
file writes) is, in YAML and JSON; MessagePack has no lines and stays as it was.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.engine import Engine
from cfgcore.errors import SnapshotError, format_key_path
from cfgcore.snapshot import decode_snapshot, encode_snapshot, load_snapshot
from tests.conftest import run_cli
from tests.fuzz import examples

UNKNOWN_VARIANT = """\
flags:
  new_player:
    variants: {on: true, off: false}
    default: off
    rules:
      - when: {attr: country, in: [SE]}
        serve: missing_variant
"""


def _raised(path) -> SnapshotError:
    with pytest.raises(SnapshotError) as info:
        Engine.from_file(path)
    return info.value


def test_a_compile_problem_names_its_line_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(UNKNOWN_VARIANT)
    err = _raised(path)
    assert str(err) == (
        f"{path}:7: flags.new_player.rules[0].serve: unknown variant 'missing_variant' "
        "(variants: on, off)"
    )
    assert err.problems[0].line == 7


def test_a_compile_problem_names_its_line_json(tmp_path):
    path = tmp_path / "bad.json"
    doc = {
        "flags": {
            "new_player": {
                "variants": {"on": True, "off": False},
                "default": "off",
                "rules": [{"when": {"attr": "country", "in": ["SE"]}, "serve": "nope"}],
            }
        }
    }
    text = json.dumps(doc, indent=2)
    path.write_text(text)
    want = next(n for n, line in enumerate(text.splitlines(), 1) if '"serve"' in line)
    err = _raised(path)
    assert str(err).startswith(f"{path}:{want}: flags.new_player.rules[0].serve: unknown variant")


def test_every_problem_names_its_own_line(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text(
        "segments:\n"  # 1
        "  s: {attr: a, eq: 1}\n"  # 2
        "flags:\n"  # 3
        "  x:\n"  # 4
        "    rules:\n"  # 5
        "      - when: {segment: t}\n"  # 6
        "        serve: on\n"  # 7
        "    default: off\n"  # 8
        "    prerequisites: [{flag: y, variant: on}]\n"  # 9
        "  y:\n"  # 10
        "    default: off\n"  # 11
        "    prerequisites:\n"  # 12
        "      - {flag: x, variant: on}\n"  # 13
        "  z:\n"  # 14
        "    rules: [{serve: on}]\n"  # 15
    )
    err = _raised(path)
    got = {p.path: p.line for p in err.problems}
    assert got == {
        "flags.x.rules[0].when.segment": 6,  # unknown segment: the flow mapping's line
        "flags.y.prerequisites[0]": 13,  # the cycle
        "flags.z.default": 14,  # missing: the nearest key written is the flag's
    }
    assert f"{path}:6: flags.x.rules[0].when.segment: unknown segment 't'" in str(err)


@pytest.mark.parametrize(
    ("rule", "path", "message"),
    [
        (
            "- rollot: 5\n        serve: on",
            "flags.x.rules[0].rollot",
            "unknown field (did you mean 'rollout'?)",
        ),
        (
            "- serve: on\n        when: {attr: c, in: SE}",
            "flags.x.rules[0].when.in",
            "expected array",
        ),
    ],
)
def test_a_decode_problem_names_its_line(tmp_path, rule, path, message):
    file = tmp_path / "flags.yaml"
    file.write_text(f"flags:\n  x:\n    default: off\n    rules:\n      {rule}\n")
    line = 5 if path.endswith(("[0]", "rollot")) else 6
    err = _raised(file)
    assert str(err).startswith(f"{file}:{line}: {path}: "), err
    assert message in str(err)
    with pytest.raises(SnapshotError) as info:  # load_snapshot alone: the same
        load_snapshot(file)
    assert str(info.value) == str(err)


def test_a_decode_problem_in_json_names_its_line(tmp_path):
    file = tmp_path / "flags.json"
    file.write_text('{"flags": {\n  "x": {\n    "default": "off",\n    "rollot": 5\n  }\n}}\n')
    err = _raised(file)
    assert str(err).startswith(f"{file}:4: flags.x.rollot: unknown field"), err


@pytest.mark.parametrize("key", ["a.b", 'say "hi".v2', 'say "hi"', "a[0]"])
def test_a_quoted_flag_key(tmp_path, key):
    file = tmp_path / "flags.json"
    doc = {"flags": {"ok": {"default": "off"}, key: {"default": "off", "rules": [{"serve": "no"}]}}}
    text = json.dumps(doc, indent=1)
    file.write_text(text)
    want = next(n for n, line in enumerate(text.splitlines(), 1) if '"serve"' in line)
    path = format_key_path(("flags", key)) + ".rules[0].serve"
    assert path.startswith("flags[") == (key != 'say "hi"')  # shown quoted where it must
    err = _raised(file)
    assert err.problems[0].path == path
    assert str(err).startswith(f"{file}:{want}: {path}: unknown variant 'no'"), err


def test_load_file_keeps_the_live_flags_and_names_the_line(tmp_path):
    file = tmp_path / "flags.yaml"
    file.write_text("flags:\n  x: {default: off}\n")
    engine = Engine.from_file(file)
    file.write_text("flags:\n  x: {default: off}\n  y:\n    default: gone\n")
    with pytest.raises(SnapshotError, match=re.escape(f"{file}:4: flags.y.default: unknown")):
        engine.load_file(file)
    assert list(engine.snapshot().keys) == ["x"]


def test_messagepack_and_text_without_a_file_name_no_line(tmp_path):
    doc = {"flags": {"x": {"default": "off", "rules": [{"serve": "no"}]}}}
    file = tmp_path / "flags.msgpack"
    file.write_bytes(encode_snapshot(decode_snapshot(json.dumps(doc), "json"), "msgpack"))
    assert str(_raised(file)) == (
        f"{file}: flags.x.rules[0].serve: unknown variant 'no' (variants: on, off)"
    )
    with pytest.raises(SnapshotError) as info:
        Engine.from_bytes(json.dumps(doc), "json")
    assert info.value.problems[0].line is None


def test_a_line_found_is_not_looked_for_on_a_good_load(tmp_path, monkeypatch):
    import cfgcore.config.files as files

    calls = []
    real = files._line_index
    monkeypatch.setattr(files, "_line_index", lambda *a: calls.append(a) or real(*a))
    file = tmp_path / "flags.yaml"
    file.write_text("flags:\n  x: {default: off}\n")
    Engine.from_file(file)
    assert calls == []
    file.write_text(UNKNOWN_VARIANT)
    _raised(file)
    assert len(calls) == 1  # one index for the file, however many problems


# ----------------------------------------------------------------- managers and the CLI


def _project(tmp_path, monkeypatch, flags: str):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app: {name: demo}\n")
    (d / "development.yaml").write_text("environment: development\n")
    (d / "flags.yaml").write_text(flags)
    return d


def test_a_manager_reload_reports_the_line(tmp_path, monkeypatch):
    from cfgcore.config.manager import ConfigurationManager

    d = _project(tmp_path, monkeypatch, "flags:\n  beta: {default: off}\n")
    m = ConfigurationManager(str(d), environ={}, record_usage=False)
    try:
        m.load_environment_config("development")
        (d / "flags.yaml").write_text(
            "flags:\n  beta:\n    default: off\n    rules: [{serve: x}]\n"
        )
        assert m.reload() is False
        assert f"{d / 'flags.yaml'}:4: flags.beta.rules[0].serve: unknown variant 'x'" in str(
            m.last_error
        )
        assert m.flags.is_enabled("beta", {"user_id": "u"}) is False  # the last good flags
    finally:
        m.close()


def test_a_manager_start_refuses_naming_the_line(tmp_path, monkeypatch):
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.errors import ConfigError

    d = _project(tmp_path, monkeypatch, "flags:\n  beta:\n    rollot: 1\n    default: off\n")
    m = ConfigurationManager(str(d), environ={}, record_usage=False)
    try:
        with pytest.raises(ConfigError) as info:
            m.load_environment_config("development")
        assert f"{d / 'flags.yaml'}:3: flags.beta.rollot: unknown field" in str(info.value)
    finally:
        m.close()


def test_cli_validate_and_eval_name_the_line(tmp_path, monkeypatch, capsys):
    doc = tmp_path / "feature-flags.yaml"
    doc.write_text("version: 1\nflags:\n  x:\n    rules:\n      - {rollout: 50, serve: maybe}\n")
    code, out, err = run_cli(capsys, "validate", str(doc))
    assert code == 1, (out, err)
    assert f"{doc}:3: flags.x.default: missing" in out
    assert f"{doc}:5: flags.x.rules[0].serve: unknown variant 'maybe'" in out

    d = _project(tmp_path, monkeypatch, "flags:\n  x:\n    default: off\n    rules: [{serve: y}]\n")
    code, out, err = run_cli(capsys, "eval", "x", "--config-dir", str(d), "-e", "development")
    assert code != 0
    assert f"{d / 'flags.yaml'}:4: flags.x.rules[0].serve: unknown variant 'y'" in err + out


# ----------------------------------------------------------------------- the line is right

_KEY = st.text(alphabet='ab.["] _-é', min_size=1, max_size=6)


@st.composite
def _documents(draw):
    """A flag document written one key per line (YAML block style or indented JSON),
    with one mistake, and the line where the mistake's key path (or the nearest part of
    it the text writes) is."""
    keys = draw(st.lists(_KEY, min_size=1, max_size=4, unique=True))
    bad = draw(st.sampled_from(keys))
    n_rules = draw(st.integers(1, 3))
    at = draw(st.integers(0, n_rules - 1))
    mistake = draw(st.sampled_from(["variant", "missing_default", "unknown_field"]))
    fmt = draw(st.sampled_from(["yaml", "json"]))
    lines: list[str] = []
    want = 0
    q = json.dumps  # a JSON string is a YAML double-quoted one too
    if fmt == "yaml":
        lines.append("flags:")
        for key in keys:
            lines.append(f"  {q(key)}:")
            if key == bad and mistake == "missing_default":
                want = len(lines)
            else:
                lines.append("    default: 'off'")
            lines.append("    rules:")
            for i in range(n_rules):
                serve = "nope" if key == bad and i == at and mistake == "variant" else "on"
                lines.append("      - rollout: 10")
                if key == bad and i == at and mistake == "unknown_field":
                    lines.append("        rollot: 1")
                    want = len(lines)  # the unknown field's own line
                lines.append(f"        serve: '{serve}'")
                if key == bad and i == at and mistake == "variant":
                    want = len(lines)
    else:
        lines.append('{"flags": {')
        for k, key in enumerate(keys):
            lines.append(f"  {q(key)}: {{")
            if key == bad and mistake == "missing_default":
                want = len(lines)
            else:
                lines.append('    "default": "off",')
            lines.append('    "rules": [')
            for i in range(n_rules):
                serve = "nope" if key == bad and i == at and mistake == "variant" else "on"
                lines.append("      {")
                if key == bad and i == at and mistake == "unknown_field":
                    lines.append('        "rollot": 1,')
                    want = len(lines)
                lines.append('        "rollout": 10,')
                lines.append(f'        "serve": "{serve}"')
                if key == bad and i == at and mistake == "variant":
                    want = len(lines)
                lines.append("      }" + ("," if i < n_rules - 1 else ""))
            lines.append("    ]")
            lines.append("  }" + ("," if k < len(keys) - 1 else ""))
        lines.append("}}")
    path = {
        "variant": ("flags", bad, "rules", at, "serve"),
        "missing_default": ("flags", bad, "default"),
        "unknown_field": ("flags", bad, "rules", at, "rollot"),
    }[mistake]
    shown = format_key_path(path[:2]) + "".join(
        f"[{s}]" if isinstance(s, int) else f".{s}" for s in path[2:]
    )
    return fmt, "\n".join(lines) + "\n", shown, want


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(case=_documents())
def test_the_line_is_where_the_key_is_written(tmp_path, case):
    fmt, text, shown, want = case
    file = tmp_path / f"flags.{fmt}"
    file.write_text(text, encoding="utf-8")
    err = _raised(file)
    assert [(p.path, p.line) for p in err.problems] == [(shown, want)], text
    assert str(err).startswith(f"{file}:{want}: {shown}: ")


def test_cli_publish_refuses_naming_the_line(redis_server, tmp_path, monkeypatch, capsys):
    from cfgcore.runtime.redis_store import RedisFlagStore
    from tests.conftest import scaffolded_config

    d = scaffolded_config(tmp_path, monkeypatch, select=None)
    bad = tmp_path / "flags.yaml"
    bad.write_text(UNKNOWN_VARIANT)
    url = redis_server.url + "?namespace=lines&cache=off"
    code, out, err = run_cli(
        capsys,
        "publish",
        "--store",
        url,
        "--config-dir",
        str(d),
        "-e",
        "staging",
        "--flags",
        str(bad),
    )
    assert code != 0
    assert f"{bad}:7: flags.new_player.rules[0].serve: unknown variant" in err, err
    with RedisFlagStore(url) as store:  # nothing written
        assert "new_player" not in store.read().snapshot.flags


def test_from_bytes_with_a_file_name_names_the_line():
    with pytest.raises(SnapshotError) as info:
        Engine.from_bytes(UNKNOWN_VARIANT, "yaml", file="flags.yaml")
    assert str(info.value).startswith("flags.yaml:7: flags.new_player.rules[0].serve: ")


def test_the_docs_show_the_error_as_it_reads(tmp_path, monkeypatch):
    from pathlib import Path

    page = (Path(__file__).parent.parent / "docs" / "flags.md").read_text()
    shown = re.search(r"```\n(flags\.yaml:7: flags\.new_player\..*?)\n```", page)
    assert shown is not None
    monkeypatch.chdir(tmp_path)
    Path("flags.yaml").write_text(UNKNOWN_VARIANT)
    assert str(_raised("flags.yaml")) == shown.group(1)
