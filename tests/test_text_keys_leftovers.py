"""Keys that are not text where a configuration file's rule did not reach yet: a legacy
YAML file's keys for `cfgcore migrate` and its mapping file, an A/B test whose refused
variant's configuration was judged again at the path of a text key (`configurations.None`),
a flag's `metadata` (kept from Python or MessagePack, then changed or crashed on the way
through a JSON store, a YAML file or `cfgcore export`), and the line of a problem in a
YAML source of `cfgcore import`."""

from __future__ import annotations

from datetime import datetime, timezone

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import Engine
from cfgcore.config.legacy_formats import read_legacy
from cfgcore.config.migration import load_mapping
from cfgcore.errors import ConfigError, SnapshotError, python_key_segment
from cfgcore.experiments.abtest import ABTestConfiguration
from cfgcore.yamlio import load_yaml
from tests.conftest import run_cli
from tests.fuzz import examples

# ------------------------------------------------------------------ migrate: legacy YAML


def test_migrate_refuses_a_null_key_naming_file_line_and_path(tmp_path, capsys):
    src = tmp_path / "legacy.yaml"
    src.write_text("app:\n  name: demo\n  null: x\n")
    code, _out, err = run_cli(
        capsys, "migrate", str(src), "--out", str(tmp_path / "out"), "--keep-unmapped"
    )
    assert code == 1
    assert f"{src}:3: app.null: key null is null, not a string" in err
    assert not (tmp_path / "out" / "base.yaml").exists()  # never migrated as "None"


def test_migrate_writes_decimal_integer_keys_as_their_digits(tmp_path, capsys):
    src = tmp_path / "legacy.yaml"
    src.write_text("servers:\n  1: a.example\n  2: b.example\n")
    out = tmp_path / "out"
    code, _out, err = run_cli(capsys, "migrate", str(src), "--out", str(out), "--keep-unmapped")
    assert code == 0, err
    written = load_yaml((out / "base.yaml").read_text(), text_keys=True)
    assert written["servers"] == {"1": "a.example", "2": "b.example"}


def test_migrate_refuses_an_integer_key_beside_its_text_naming_both_lines(tmp_path, capsys):
    src = tmp_path / "legacy.yaml"
    src.write_text("x:\n  one: 0\n  1: a\n  '1': b\n")
    code, _out, err = run_cli(capsys, "migrate", str(src), "--out", str(tmp_path / "out"))
    assert code == 1
    assert f"{src}:4: x.1: key 1 is the same key as the one on line 3" in err


_NOT_DECIMAL = st.sampled_from(
    ["null", "~", "true", "False", "1.5", "1e3", "0x1F", "0o17", "+1", ".inf", "2001-01-01"]
)


@settings(max_examples=examples(40), deadline=None)
@given(key=_NOT_DECIMAL, depth=st.integers(0, 3))
def test_any_other_non_text_key_is_refused_on_its_line(tmp_path_factory, key, depth):
    path = tmp_path_factory.mktemp("legacy") / "old.yaml"
    lines = [f"{'  ' * i}k{i}:" for i in range(depth)]
    lines.append(f"{'  ' * depth}{key}: v")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as err:
        read_legacy(path)
    [problem] = err.value.problems
    assert problem.line == depth + 1
    assert problem.message.startswith(f"key {key} is ")


@settings(max_examples=examples(40), deadline=None)
@given(key=st.integers(-(10**12), 10**12))
def test_a_decimal_integer_key_is_migrated_as_its_digits(tmp_path_factory, key):
    path = tmp_path_factory.mktemp("legacy") / "old.yaml"
    path.write_text(f"a:\n  {key}: v\n")
    [entry] = read_legacy(path)
    assert (entry.key, entry.value, entry.line) == (f"a.{key}", "v", 2)


def test_a_mapping_file_refuses_keys_that_are_not_text(tmp_path):
    path = tmp_path / "map.yaml"
    path.write_text("keys:\n  legacy.a: new.a\n  null: new.b\n")
    with pytest.raises(ConfigError, match=r"map\.yaml:3: keys\.null: key null is null"):
        load_mapping(path)
    with pytest.raises(ConfigError) as err:
        load_mapping({"keys": {None: "new.b"}, "defaults": {1: 2}})
    paths = [p.path for p in err.value.problems]
    assert paths == ["keys[None]", "defaults[1]"]


# ------------------------------------------------------------------ A/B test configurations

_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
_END = datetime(2026, 2, 1, tzinfo=timezone.utc)
_KEYS = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.booleans())


@settings(max_examples=examples(60), deadline=None)
@given(variant=_KEYS, in_split=st.booleans())
def test_a_refused_variant_is_one_problem_at_a_real_path(variant, in_split):
    split = {"a": 50, "b": 50}
    if in_split:
        split = {variant: 50, "b": 50}
    configs = {variant: {"x": {1: 2}}, "b": {}}
    if not in_split:
        configs["a"] = {}
    test = ABTestConfiguration("t", "d", _START, _END, split, configs)
    problems = test.validate()
    assert len(problems) == 1, problems
    where = "traffic_split" if in_split else "configurations"
    assert problems[0].startswith(f"t: {where}[{variant!r}]: ")


def test_a_usable_variant_s_configuration_is_still_judged():
    test = ABTestConfiguration(
        "t", "d", _START, _END, {"a": 50, "b": 50}, {"a": {"x": {None: 1}}, "b": {}}
    )
    assert test.validate() == [
        "t: configurations.a.x[None]: key None (NoneType) is not a string (quote it)"
    ]


# ------------------------------------------------------------------ flag metadata


def _doc(metadata):
    return {"flags": {"f": {"variants": {"on": True, "off": False}, "default": "off",
                            "metadata": metadata}}}  # fmt: skip


@settings(max_examples=examples(60), deadline=None)
@given(
    key=st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.floats(allow_nan=False),
        st.booleans(),
        st.binary(),
        st.none(),
    ),  # fmt: skip
    depth=st.integers(0, 3),
)
def test_a_non_text_metadata_key_is_refused_by_key_path_on_both_formats(key, depth):
    value: object = {key: "v"}
    for _ in range(depth):
        value = {"k": [value]}
    value = {"owner": value}  # (a top-level key is typed: "expected str" at metadata)
    for data, fmt in ((msgspec.msgpack.encode(_doc(value)), "msgpack"), (None, "python")):
        with pytest.raises(SnapshotError) as err:
            if fmt == "msgpack":
                Engine.from_bytes(data, format="msgpack")
            else:
                Engine.from_snapshot(_doc(value))
        [problem] = err.value.problems
        assert problem.path.startswith("flags.f.metadata")
        assert problem.path.endswith(python_key_segment(key))
        assert "is not a string" in problem.message


def test_a_yaml_flag_file_names_the_metadata_key_s_line(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("flags:\n  f:\n    default: on\n    metadata:\n      owner: {1: team}\n")
    with pytest.raises(SnapshotError, match=r"flags\.yaml:5: flags\.f\.metadata\.owner\.1: key 1"):
        Engine.from_file(path)


def test_text_metadata_keys_round_trip_through_json_and_msgpack():
    from cfgcore.snapshot import decode_snapshot, encode_snapshot, snapshot_from_dict

    original = snapshot_from_dict(_doc({"owner": {"1": "a", "None": "b"}}))
    for fmt in ("json", "msgpack", "yaml"):
        again = decode_snapshot(encode_snapshot(original, fmt), fmt)
        assert again.flags["f"].metadata == {"owner": {"1": "a", "None": "b"}}


# ------------------------------------------------------------------ import: lines


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (
            "version: 1\nfeatures:\n  - name: a\n    enabled: true\n    x: .nan\n",
            ":5: features.0.x",
        ),
        (
            "version: 1\nfeatures:\n  - name: a\n    n: 99999999999999999999999\n",
            ":4: features.0.n",
        ),
        ("version: 1\nfeatures: {a: 1}\n", ":2: features: expected a list"),
    ],
)
def test_import_names_the_line_of_a_yaml_source_s_problem(tmp_path, capsys, body, where):
    src = tmp_path / "unleash.yaml"
    src.write_text(body)
    code, _out, err = run_cli(
        capsys, "import", "unleash", str(src), "--out", str(tmp_path / "o.yaml")
    )
    assert code == 1
    assert f"{src}{where}" in err


def test_engine_swap_refuses_it_and_keeps_serving(make):
    engine = make(_doc({"owner": "team"}))
    with pytest.raises(SnapshotError, match=r"flags\.f\.metadata\.owner\[None\]: key None"):
        engine.swap(_doc({"owner": {None: "team"}}))
    assert engine.value("f", {}) is False


@pytest.mark.parametrize("key", [None, 1, 1.5, True])
def test_a_stored_record_s_non_text_variant_or_metric_is_named_in_brackets(key):
    from cfgcore.experiments.abtest import record_problems

    meta = {"traffic_split": {key: 50, "b": 50}, "metric_types": {key: "binary"}}
    paths = [p.path for p in record_problems("t", meta)]
    assert paths == [
        f"experiments.t.traffic_split[{key!r}]",
        f"experiments.t.metric_types[{key!r}]",
    ]
