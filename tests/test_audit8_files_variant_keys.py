"""A served object's keys are text: a variant value whose mapping has an int, float,
bool, null or bytes key (YAML `1:`, `true:`; MessagePack int or bin keys) is refused at
compile time with the key path, as configuration files refuse such keys. Served, it
changed type with the store (an int key came back as "1" from a JSON store) or could not
be written as JSON at all (`cfgcore export` failed with an internal TypeError)."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import Engine
from cfgcore.errors import SnapshotError, python_key
from tests.conftest import run_cli
from tests.fuzz import examples


def _doc(value):
    return {"flags": {"f": {"variants": {"a": value, "b": 1}, "default": "a"}}}


@pytest.mark.parametrize(
    ("value", "where", "key"),
    [
        # Python's spelling in brackets: never a.1 or a.None, the text keys' paths
        ({1: 2}, "flags.f.variants.a[1]", "1 (int)"),
        ({"x": [{1.5: 2}]}, "flags.f.variants.a.x[0][1.5]", "1.5 (float)"),
        ({"x": {True: 2}}, "flags.f.variants.a.x[True]", "True (bool)"),
        ({None: 2}, "flags.f.variants.a[None]", "None (NoneType)"),
        ({b"k": 2}, "flags.f.variants.a[b'k']", "b'k' (bytes)"),
        ({("t",): 2}, "flags.f.variants.a[('t',)]", "('t',) (tuple)"),
    ],
)
def test_a_non_text_key_in_a_variant_value_is_refused(make, value, where, key):
    with pytest.raises(SnapshotError) as err:
        make(_doc(value))
    assert f"{where}: key {key} is not a string" in str(err.value)


def test_yaml_int_key_in_a_variant_value_names_the_key_path():
    text = b"flags:\n  f:\n    variants: {a: {tiers: {1: gold}}, b: 1}\n    default: a\n"
    where = r"line 3: flags\.f\.variants\.a\.tiers\.1: "
    with pytest.raises(SnapshotError, match=where + "key 1 is an integer, not a string"):
        Engine.from_bytes(text, format="yaml")
    # quoted, the same document compiles and serves the text key
    quoted = text.replace(b"{1: gold}", b"{'1': gold}")
    assert Engine.from_bytes(quoted, format="yaml").value("f", {}) == {"tiers": {"1": "gold"}}


def test_msgpack_bin_key_is_refused_not_an_internal_error_in_export(tmp_path, capsys):
    path = tmp_path / "flags.msgpack"
    path.write_bytes(msgspec.msgpack.encode(_doc({"k": {b"raw": 1}})))
    with pytest.raises(SnapshotError, match=r"flags\.f\.variants\.a\.k\[b'raw'\]: key"):
        Engine.from_file(path)
    code, _out, err = run_cli(capsys, "export", "--format", "flagd", "--flags", str(path))
    assert code == 1
    assert "internal error" not in err and "TypeError" not in err
    assert "is not a string" in err


@settings(max_examples=examples(60), deadline=None)
@given(
    key=st.one_of(
        st.integers(-(2**63), 2**63), st.floats(allow_nan=False), st.booleans(), st.binary()
    ),
    depth=st.integers(0, 3),
)
def test_any_non_text_key_at_any_depth_is_refused_on_both_formats(key, depth):
    value: object = {key: "v"}
    for _ in range(depth):
        value = {"k": [value]}
    data = msgspec.msgpack.encode(_doc(value))
    with pytest.raises(SnapshotError, match="is not a string"):
        Engine.from_bytes(data, format="msgpack")


def _path(build, value):
    with pytest.raises(SnapshotError) as err:
        build(_doc(value))
    return err.value.problems[0].path


def _from_msgpack(doc):
    return Engine.from_bytes(msgspec.msgpack.encode(doc), format="msgpack")


def test_a_none_key_and_the_text_key_none_have_different_paths():
    # the text key "None" is refused only for its value (a set cannot be served)
    assert _path(Engine.from_snapshot, {"s": {"None": {1}}}) == "flags.f.variants.a.s.None"
    assert _path(Engine.from_snapshot, {"s": {None: 1}}) == "flags.f.variants.a.s[None]"
    ext = msgspec.msgpack.Ext(1, b"x")
    assert _path(_from_msgpack, {"s": {"None": ext}}) == "flags.f.variants.a.s.None"
    assert _path(_from_msgpack, {"s": {None: 1}}) == "flags.f.variants.a.s[None]"


@settings(max_examples=examples(60), deadline=None)
@given(
    key=st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False),
        st.binary(max_size=8),
    ),
    depth=st.integers(0, 3),
    msgpack=st.booleans(),
)
def test_any_non_text_key_is_named_apart_from_its_text(key, depth, msgpack):
    build = _from_msgpack if msgpack else Engine.from_snapshot
    refused = msgspec.msgpack.Ext(1, b"x") if msgpack else {1}  # a value never served
    parents = [f"s{i}" for i in range(depth)]
    value: object = {key: 1}
    texts: list[object] = [{repr(key): refused}, {str(key): refused}]
    for p in reversed(parents):
        value = {p: value}
        texts = [{p: t} for t in texts]
    path = _path(build, value)
    assert path == "flags.f.variants.a" + "".join(f".{p}" for p in parents) + f"[{python_key(key)}]"
    for text in texts:
        assert _path(build, text) != path
