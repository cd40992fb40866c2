"""A flag document holding an integer past 64 bits: YAML and JSON files hold one, and
the compiler takes condition constants up to 2**106 (the GrowthBook importer writes
them for its exact comparisons). Such a document loaded and served, and then every
change of it raised a bare OverflowError: `reload()` and `set_feature_flag` (the
incremental compile compared flags by their MessagePack bytes), and `cfgcore publish`
or any Redis or .msgpack write ("internal error"). Changes now work; a MessagePack
write is a SnapshotError naming the key path."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import Engine
from cfgcore.compiler import compile_incremental, compile_snapshot
from cfgcore.errors import SnapshotError
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.snapshot import decode_snapshot, encode_snapshot
from tests.conftest import run_cli
from tests.fuzz import examples

BIG = 99999999999999999999999  # 77 bits: a double holds it, MessagePack does not

FLAGS = f"""\
flags:
  adult:
    rules: [{{when: {{attr: age, gt: {BIG}}}, serve: on}}]
    default: off
  beta: {{default: on}}
"""


def test_a_change_to_a_document_holding_a_big_constant_goes_live(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "flags.yaml"
    path.write_text(FLAGS)
    m = DynamicConfigurationManager(str(path), record_usage=False)
    try:
        user = {"user_id": "u", "age": 1e24}
        assert m.is_feature_enabled("adult", user) is True
        assert m.is_feature_enabled("beta", user) is True
        path.write_text(FLAGS.replace("beta: {default: on}", "beta: {default: off}"))
        assert m.reload() is True
        assert m.is_feature_enabled("beta", user) is False
        m.set_feature_flag("beta", True)  # written back as YAML, which holds it
        assert m.is_feature_enabled("beta", user) is True
        assert m.is_feature_enabled("adult", user) is True
        assert str(BIG) in path.read_text()
    finally:
        m.close()


@settings(max_examples=examples(30), deadline=None)
@given(constant=st.one_of(st.integers(2**64, 2**106), st.integers(-(2**106), -(2**63) - 1)))
def test_the_incremental_compile_matches_a_full_one(constant):
    doc = {"flags": {"a": {"default": "off",
                           "rules": [{"when": {"attr": "n", "lt": constant}, "serve": "on"}]},
                     "b": {"default": "on"}}}  # fmt: skip
    old = decode_snapshot(msgspec.json.encode(doc), "json")
    doc["flags"]["b"]["default"] = "off"
    new = decode_snapshot(msgspec.json.encode(doc), "json")
    tables = compile_incremental(compile_snapshot(old), new)
    full = Engine.from_snapshot(new)
    inc = Engine.from_snapshot(old)
    inc.swap(new)  # compiled incrementally over the old document's tables
    for n in (constant - 1, constant, constant + 1, 0):
        ctx = {"user_id": "u", "n": n}
        assert inc.evaluate("a", ctx).value == full.evaluate("a", ctx).value
    assert tables.keys == ["a", "b"]


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (FLAGS, "flags.adult.rules[0].when.gt"),
        (f"version: {BIG}\nflags: {{}}\n", "version"),
        (f"metadata: {{owner: {{id: [1, {-BIG}]}}}}\nflags: {{}}\n", "metadata.owner.id[1]"),
        (f"flags:\n  f: {{default: on, metadata: {{n: {BIG}}}}}\n", "flags.f.metadata.n"),
    ],
)
def test_a_messagepack_write_names_the_integer(text, path):
    snapshot = decode_snapshot(text.encode(), "yaml")
    with pytest.raises(SnapshotError) as err:
        encode_snapshot(snapshot, "msgpack", file="flags.msgpack")
    [problem] = err.value.problems
    assert problem.path == path and problem.file == "flags.msgpack"
    assert "integer out of range for MessagePack" in problem.message
    assert encode_snapshot(snapshot, "yaml")  # YAML keeps it


def test_publish_refuses_it_naming_the_key_not_an_internal_error(
    redis_server, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text("app: {name: demo}\n")
    (config / "development.yaml").write_text("{}\n")
    flags = tmp_path / "flags.yaml"
    flags.write_text(FLAGS)
    url = redis_server.url + "?namespace=big&cache=off"
    code, _out, err = run_cli(
        capsys, "publish", "-q", "--store", url, "--config-dir", str(config),
        "-e", "development", "--flags", str(flags),
    )  # fmt: skip
    assert code == 1
    assert "internal error" not in err and "OverflowError" not in err
    assert "flags.adult.rules[0].when.gt: integer out of range for MessagePack" in err
