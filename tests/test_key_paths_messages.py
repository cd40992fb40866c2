"""Every message that names a key path shows a key holding a dot quoted, and the Python
API reads that quoted text back.

Since key paths took segments, cfgcore shows a key that holds a dot quoted
(``loggers["uvicorn.access"].level``, :func:`cfgcore.errors.format_key_path`); joined
with dots it names another key. Several places still joined segments themselves:
secret resolution and the ``secrets`` commands, ``cfgcore validate``'s unknown-override
warning, migration mapping files and legacy files nested too deep, published dates,
A/B test configurations and flag metadata holding a secret reference, transforms and
``CFGCORE__`` names nesting too deep, and TOML redefinitions. Each is triggered here
with a key holding a dot (or ``[``) and must show it quoted, not dotted.

The Python API (``get``, ``section``, ``explain``, ``update_config``: every key path
``split_path`` reads) takes the quoted text too, as the command line did: a path copied
from an error names the key it showed. Only a text holding ``["`` that is a whole
rendering reads so; any other text splits on every dot as before. Real files in
``tmp_path``; both read implementations where reads are involved.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config import tree as tree_mod
from cfgcore.config import view as view_mod
from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.state import ConfigSnapshot
from cfgcore.errors import ConfigError, format_key_path
from cfgcore.runtime import policy
from cfgcore.runtime.secrets import Keyring, decrypt_value, encrypt_value, generate_key
from tests.fuzz import examples

_tree = pytest.importorskip("cfgcore._tree", reason="the compiled extension is not built")

READS = {"c": _tree.LiveReads, "py": view_mod.PyLiveReads}

YAML = """\
loggers:
  uvicorn.access:
    level: INFO
  "x[0]":
    level: WARN
  'a["b':
    'c"]': literal
hosts:
  db.internal:
    port: 5432
"""


def reader(impl: str, config: Any) -> Any:
    """The manager's read side over ``config`` on either base, with its own slow path."""

    class Reader(READS[impl]):  # type: ignore[misc, valid-type]
        _get_slow = view_mod.ConfigView.__dict__["_get_slow"]

        def _ensure_loaded(self) -> ConfigSnapshot:
            return self._snap

    r = Reader()
    r._snap = ConfigSnapshot(
        config=tree_mod.freeze(config), layers=(), version=1, environment="test",
        profile=None, geographic_profile=None, files=(), flags_file=None, fingerprint=(),
        sources=(), loaded_at=0.0,
    )  # fmt: skip
    return r


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text(YAML)
    (d / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(
        str(d), environment="development", environ={}, validate=False, record_usage=False,
        audit_log=str(tmp_path / "audit.jsonl"),
    )  # fmt: skip
    m.load_environment_config()
    yield m
    m.close()


# ------------------------------------------------------------- the quoted text as input


def test_get_section_and_explain_take_the_path_as_errors_show_it(manager):
    assert manager.get('loggers["uvicorn.access"].level') == "INFO"
    assert manager.get('hosts["db.internal"].port') == 5432
    assert manager.section('loggers["uvicorn.access"]') == {"level": "INFO"}
    prov = manager.explain('loggers["uvicorn.access"].level')
    assert prov.value == "INFO" and prov.winner.line == 3
    # The dotted text still names the path it always named (not set here).
    assert manager.get("loggers.uvicorn.access.level", "nope") == "nope"


def test_a_text_that_is_no_rendering_still_splits_on_every_dot(manager):
    # A key holding "[" but no quoted segment (no '["'): read as before.
    assert manager.get("loggers.x[0].level") == "WARN"
    assert manager.get("loggers.x[0]") == {"level": "WARN"}
    # A text that is a whole rendering is read as one (one text, one path): keys that
    # hold '["' themselves are named by segments, or by their own rendering.
    assert manager.get('loggers.a["b.c"]', "unset") == "unset"  # loggers > a > b.c
    assert manager.get(("loggers", 'a["b', 'c"]')) == "literal"
    assert format_key_path(("loggers", 'a["b', 'c"]')) == 'loggers["a[\\"b"].c"]'
    assert manager.get('loggers["a[\\"b"].c"]') == "literal"


def test_update_config_by_the_quoted_text_sets_the_key_holding_a_dot(manager):
    assert manager.update_config('loggers["uvicorn.access"].level', "DEBUG")
    assert manager.config["loggers"]["uvicorn.access"]["level"] == "DEBUG"
    assert "uvicorn" not in manager.config["loggers"]  # no key "uvicorn" made
    assert manager.audit.entries()[-1]["path"] == 'loggers["uvicorn.access"].level'


def test_the_policy_judges_the_quoted_text_as_the_segments_dotted_text(tmp_path, manager):
    path = tmp_path / "policy.yaml"
    path.write_text("roles:\n  ops:\n    config.update: ['loggers.*']\nactors:\n  bob: [ops]\n")
    policy.set_policy(path)
    try:
        # Judged as loggers.uvicorn.access.level, as the tuple is: the section rule holds.
        assert manager.update_config('loggers["uvicorn.access"].level', "ERROR", actor="bob")
        assert manager.get(("loggers", "uvicorn.access", "level")) == "ERROR"
        with pytest.raises(PermissionError):
            manager.update_config('hosts["db.internal"].port', 1, actor="bob")
    finally:
        policy.set_policy(None)


# Keys as files hold them: dots, brackets, quotes, backslashes, digits, empty.
KEYS = st.one_of(
    st.sampled_from(["a", "uvicorn.access", ".", "", "0", "x[0]", 'q"', '["', '"]', "\\"]),
    st.text(alphabet='ab.[]"\\0', max_size=5),
)


@settings(max_examples=examples(300), deadline=None)
@given(path=st.lists(KEYS, min_size=1, max_size=4))
def test_every_path_reads_back_by_its_rendering_on_both_implementations(path):
    tree: Any = "leaf"
    for seg in reversed(path):
        tree = {seg: tree}
    for impl in READS:
        r = reader(impl, tree)
        assert r.get(format_key_path(path)) == "leaf", (impl, format_key_path(path))
        assert r.get(format_key_path(path)) == "leaf"  # from the read cache too


@settings(max_examples=examples(500), deadline=None)
@given(text=st.text(alphabet='ab.[]"\\', max_size=12))
def test_a_text_is_read_one_way_only(text):
    got = tree_mod.split_path(text)
    if '["' not in text:  # no quoted segment: split on every dot, as before
        assert got == (tuple(text.split(".")) if text else ())
    elif got != tuple(text.split(".")):  # read as a rendering: it names that path
        assert tree_mod.split_path(format_key_path(got)) == got


# -------------------------------------------------------------------------- secrets


KEY = generate_key("k1")


@pytest.fixture
def ring():
    return Keyring([KEY])


def test_a_bound_value_moved_names_its_path_quoted_and_the_binding_is_unchanged(ring):
    where = ("loggers", "uvicorn.access", "token")
    value = encrypt_value("s3cret", ring, path=where)
    # The binding is the JSON list of names (a persisted format): the same value
    # decrypts at the same names however they are written.
    assert decrypt_value(value, ring, path='["loggers", "uvicorn.access", "token"]') == "s3cret"
    with pytest.raises(ValueError) as info:
        decrypt_value(value, ring, path=("loggers", "uvicorn", "access", "token"))
    assert "'loggers.uvicorn.access.token'" in str(info.value)  # where it was found
    other = encrypt_value("s3cret", ring, path=("a", "b"))
    with pytest.raises(ValueError) as info:
        decrypt_value(other, ring, path=where)
    assert """'loggers["uvicorn.access"].token'""" in str(info.value)
    assert "loggers.uvicorn.access.token" not in str(info.value)


@pytest.mark.parametrize(
    "given",
    [
        'loggers["uvicorn.access"].token',  # as a message shows it, pasted into --path
        '["loggers", "uvicorn.access", "token"]',
        ("loggers", "uvicorn.access", "token"),
    ],
)
def test_a_path_written_as_messages_show_it_binds_the_names_it_shows(ring, given):
    # `cfgcore secrets encrypt --path` takes what an error showed: it split
    # 'loggers["uvicorn.access"].token' on its dots and bound the value to four names,
    # so it failed to decrypt at the key it was meant for.
    value = encrypt_value("s3cret", ring, path=given)
    assert decrypt_value(value, ring, path=("loggers", "uvicorn.access", "token")) == "s3cret"
    with pytest.raises(ValueError):
        decrypt_value(value, ring, path=("loggers", '["uvicorn', 'access"]', "token"))


def test_a_value_that_does_not_resolve_on_load_names_its_path_quoted(tmp_path, ring):
    d = tmp_path / "config"
    d.mkdir()
    moved = encrypt_value("s3cret", ring, path=("elsewhere",))
    (d / "base.yaml").write_text(f"loggers:\n  uvicorn.access:\n    token: '{moved}'\n")
    (d / "development.yaml").write_text("{}\n")
    env = {"CFGCORE_SECRET_KEYS": KEY}
    m = ConfigurationManager(str(d), environment="development", environ=env, validate=False,
                             record_usage=False, audit_log=str(tmp_path / "a.jsonl"))  # fmt: skip
    try:
        with pytest.raises(ConfigError) as info:
            m.load_environment_config()
    finally:
        m.close()
    text = str(info.value)
    assert 'loggers["uvicorn.access"].token' in text
    assert "loggers.uvicorn.access.token" not in text


def _secrets_dir(tmp_path, body: str):
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text(body)
    return d


def test_secrets_check_names_an_envelope_under_a_dotted_key_quoted(tmp_path, ring):
    from cfgcore.cli.secrets import check_directory

    unbound = encrypt_value("s3cret", ring)
    moved = encrypt_value("s3cret", ring, path=("x",))
    d = _secrets_dir(tmp_path, f"hosts:\n  db.internal:\n    a: '{unbound}'\n    b: '{moved}'\n")
    findings, n_bound, n_unbound = check_directory(str(d), ring)
    assert (n_bound, n_unbound) == (1, 1)
    paths = {p.path for p in findings}
    assert paths == {'hosts["db.internal"].a', 'hosts["db.internal"].b'}


def test_secrets_rotate_names_a_value_it_cannot_rotate_quoted(tmp_path, ring):
    from cfgcore.cli.secrets import rotate_directory

    moved = encrypt_value("s3cret", ring, path=("x",))
    d = _secrets_dir(tmp_path, f"hosts:\n  db.internal:\n    b: '{moved}'\n")
    with pytest.raises(ConfigError) as info:
        rotate_directory(str(d), ring, write=False)
    assert [p.path for p in info.value.problems] == ['hosts["db.internal"].b']
    assert info.value.problems[0].line == 3


# ------------------------------------------------------------------ validate (CLI)


def _cli_config(tmp_path, monkeypatch, body: str):
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text(body)
    (d / "development.yaml").write_text("{}\n")
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    return d


def test_validate_names_an_unknown_override_under_a_bracketed_key_quoted(
    tmp_path, monkeypatch, capsys
):
    from cfgcore.cli import main

    d = _cli_config(tmp_path, monkeypatch, 'hosts:\n  "db[1]":\n    port: 1\n')
    monkeypatch.setenv("CFGCORE__HOSTS__DB[1]__PORTT", "2")
    main(["validate", "--config-dir", str(d), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    rule = "environment.unknown_override"
    found = [r["key_path"] for r in out["results"] if r["rule_id"] == rule]
    assert found == ['hosts["db[1]"].portt']


def test_validate_locates_a_finding_under_a_dotted_key_in_its_file(tmp_path, monkeypatch, capsys):
    from cfgcore.cli import main

    d = _cli_config(tmp_path, monkeypatch, "app:\n  name: x\nhosts:\n  db.internal:\n"
                                           "    password: hunter2\n")  # fmt: skip
    main(["validate", "--config-dir", str(d)])
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if "plaintext_secret" in s)
    # The finding's path is the quoted rendering, and explain reads it back: file:line.
    assert line.startswith("config/base.yaml:5: ") and 'hosts["db.internal"].password' in line


# ---------------------------------------------------------------- migration, legacy


def test_a_mapping_file_problem_names_a_legacy_key_holding_a_dot_quoted(tmp_path):
    from cfgcore.config.migration import load_mapping

    path = tmp_path / "mapping.yaml"
    path.write_text("keys:\n  legacy.key: 5\nprefixes:\n  'audio.': 3\n")
    with pytest.raises(ConfigError) as info:
        load_mapping(str(path))
    got = [(p.path, p.line) for p in info.value.problems]
    assert got == [('keys["legacy.key"]', 2), ('prefixes["audio."]', 4)]
    assert "keys.legacy.key" not in str(info.value)


def test_a_legacy_file_nested_too_deep_names_its_dotted_key_quoted(tmp_path):
    from cfgcore.config.migration import LegacyConfigMigrator

    deep: Any = 0
    for _ in range(120):
        deep = {"k": deep}
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"db.pool": deep}))
    with pytest.raises(ConfigError) as info:
        LegacyConfigMigrator().migrate(str(path))
    [problem] = info.value.problems
    assert problem.path == '["db.pool"].k.k.k.k.k.…'


# ------------------------------------------------------------- published, transforms


def test_a_published_value_that_is_no_date_names_its_dotted_key_quoted():
    from cfgcore.config.published import decode_temporal

    tree = {"jobs": {"nightly.backup": {"at": msgspec.msgpack.Ext(99, b"x")}}}
    with pytest.raises(ConfigError) as info:
        decode_temporal(tree, "redis://h/ns")
    assert [p.path for p in info.value.problems] == ['jobs["nightly.backup"].at']


def test_a_transformed_tree_nested_too_deep_names_its_dotted_key_quoted():
    from cfgcore.config.transforms import ConfigurationTransformer

    top: dict[str, Any] = {}
    node = top.setdefault("db.pool", {})
    for _ in range(120):
        node = node.setdefault("k", {})
    with pytest.raises(ConfigError) as info:
        ConfigurationTransformer().transform(top, file="x.yaml")
    assert [p.path for p in info.value.problems] == ['["db.pool"].k.k.k.k.k.…']


def test_a_variable_nested_too_deep_names_its_bracketed_key_quoted():
    from cfgcore.config.environ import env_layer

    var = "CFGCORE__X[0]__" + "__".join(["deep"] * 101)
    with pytest.raises(ConfigError) as info:
        env_layer({var: "1"}, "CFGCORE", {})
    [problem] = info.value.problems
    assert problem.path == '["x[0]"].deep.deep.deep.deep.deep.…'


# ------------------------------------------------------------------------------- TOML


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ('"a.b" = 1\n["a.b".c]\n', '["a.b"]', 'table ["a.b".c] over a value'),
        ('[t]\n"x.y" = 1\n"x.y".z = 2\n', 't["x.y"]', 'dotted key "x.y".z over a value'),
    ],
)
def test_a_toml_redefinition_names_a_quoted_key_quoted(tmp_path, text, path, message):
    from cfgcore.config.files import read_config_file

    f = tmp_path / "base.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as info:
        read_config_file(str(f))
    [problem] = info.value.problems
    assert problem.path == path and message in problem.message


# -------------------------------------------------------------- flags, experiments

ENVELOPE = "ENC[v2:fernet:gAAAAABnotarealtoken]"


def test_a_secret_in_flag_metadata_names_its_dotted_key_quoted(tmp_path):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    path = tmp_path / "flags.json"
    flag = {"variants": {"a": 1, "b": 2}, "default": "a",
            "metadata": {"owner.team": {"contact": ENVELOPE}}}  # fmt: skip
    path.write_text(json.dumps({"version": 1, "flags": {"api": flag}}))
    with pytest.raises(ConfigError) as info:
        DynamicConfigurationManager(flags_file=str(path))
    assert [p.path for p in info.value.problems] == ['flags.api.metadata["owner.team"].contact']


def test_a_secret_in_an_ab_test_configuration_names_its_dotted_key_quoted(
    tmp_path, impl, monkeypatch
):
    from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
    from cfgcore.engine import engine_class

    monkeypatch.setenv("CFGCORE_USAGE", "0")
    m = DynamicConfigurationManager(
        flags_file=str(tmp_path / "flags.json"), state_dir=str(tmp_path),
        engine=engine_class(impl)(),
    )  # fmt: skip
    now = datetime.now(timezone.utc)
    test = ABTestConfiguration(
        test_name="checkout", description="d", start_date=now - timedelta(days=1),
        end_date=now + timedelta(days=30), traffic_split={"control": 50.0, "b": 50.0},
        configurations={"control": {"k": 1}, "b": {"psp.stripe": {"key": ENVELOPE}}},
    )  # fmt: skip
    try:
        assert not m.create_ab_test(test)
        assert 'experiments.checkout.configurations.b["psp.stripe"].key' in m.last_error
        assert "configurations.b.psp.stripe.key" not in m.last_error
    finally:
        m.close()
