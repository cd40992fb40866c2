"""Seventh audit of the flag decoders: a duplicate key in a JSON flag file is named by
its key path and line, as in a YAML one.

A JSON flag file with a key written twice was refused as ``flags.json: a: duplicate
key``: the bare key, with no path and no line. In a file of thousands of flags each with
variants ``on``/``off``, nothing said which flag (or which rule, split or variant
object) held it; the YAML reader names ``flags.f.variants.a`` and both lines.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.engine import Engine
from cfgcore.errors import SnapshotError, child_key_path
from cfgcore.snapshot import decode_snapshot
from tests.fuzz import examples
from tests.texts import any_text

CASES = [
    ('{"flags": {"f": {"default": "on"}, "f": {"default": "off"}}}', "flags.f"),
    ('{"flags": {"f": {"variants": {"a": 1, "a": 2}, "default": "a"}}}', "flags.f.variants.a"),
    ('{"flags": {"f": {"default": "on", "default": "off"}}}', "flags.f.default"),
    (
        '{"flags": {"f": {"default": "off", "rules": [{"serve": "on"}, '
        '{"when": {"attr": "x", "eq": 1, "eq": 2}, "serve": "on"}]}}}',
        "flags.f.rules[1].when.eq",
    ),
    (
        '{"flags": {"f": {"variants": {"a": 1, "b": 2}, "default": "a", '
        '"rules": [{"split": {"a": 50, "a": 50, "b": 0}}]}}}',
        "flags.f.rules[0].split.a",
    ),
    (
        '{"segments": {"s": {"attr": "x", "eq": 1}, "s": {"exists": true}}, "flags": {}}',
        "segments.s",
    ),
    ('{"flags": {}, "flags": {"g": {"default": "off"}}}', "flags"),
    (
        '{"flags": {"f": {"variants": {"a": {"k": 1, "k": 2}}, "default": "a"}}}',
        "flags.f.variants.a.k",
    ),
    (
        '{"flags": {"f": {"default": "on", "metadata": {"o": 1, "\\u006f": 2}}}}',
        "flags.f.metadata.o",
    ),
]


@pytest.mark.parametrize(("text", "path"), CASES)
def test_a_json_duplicate_key_names_its_path(text, path):
    with pytest.raises(SnapshotError) as info:
        decode_snapshot(text.encode(), "json", file="flags.json")
    (problem,) = info.value.problems
    assert problem.path == path
    assert problem.file == "flags.json" and problem.line == 1
    assert str(problem).startswith(f"flags.json:1: {path}: duplicate key")


def test_the_lines_of_both_definitions_are_named(tmp_path):
    doc = {"flags": {f"flag_{i}": {"variants": {"on": True, "off": False}, "default": "off"}
                     for i in range(50)}}  # fmt: skip
    text = json.dumps(doc, indent=2)
    lines = text.splitlines()
    # flag_30's "off" variant written a second time, two lines below the first
    at = next(i for i, line in enumerate(lines) if '"flag_30"' in line)
    first = next(i for i in range(at, len(lines)) if lines[i].strip() == '"off": false')
    lines[first] += ","
    lines[first + 1 : first + 1] = ['        "x": 1,', '        "off": true']
    path = tmp_path / "flags.json"
    path.write_text("\n".join(lines))
    with pytest.raises(SnapshotError) as info:
        Engine.from_file(path)
    (problem,) = info.value.problems
    assert problem.path == "flags.flag_30.variants.off"
    assert problem.line == first + 3  # 1-based: the line of the second "off"
    assert problem.message == f"duplicate key (first defined on line {first + 1})"
    assert str(path) in str(info.value)


keys = st.sampled_from(["a", "b", "on", "off", "é", "x.y", ""])
values = st.recursive(
    st.one_of(st.integers(-5, 5), st.booleans(), st.none(), any_text(max_size=3)),
    lambda kids: st.one_of(st.lists(kids, max_size=3), st.dictionaries(keys, kids, max_size=3)),
    max_leaves=8,
)


def _paths(value, path=""):
    """Every object in ``value`` with its key path, in document order."""
    if isinstance(value, dict):
        yield path, value
        for k, v in value.items():
            yield from _paths(v, child_key_path(path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, f"{path}[{i}]")


@settings(max_examples=examples(80), deadline=None)
@given(values, st.data())
def test_a_duplicate_anywhere_in_a_variant_value_is_named_where_it_is(value, data):
    doc = {"flags": {"f": {"variants": {"v": value}, "default": "v"}}}
    objects = [(p, o) for p, o in _paths(doc) if o]
    path, target = data.draw(st.sampled_from(objects))
    key = data.draw(st.sampled_from(sorted(target)))
    # write the object with its key repeated at the end (same value: still refused)
    marker = "__dup_marker__"
    target[marker] = None
    text = json.dumps(doc, indent=1)
    del target[marker]
    text = text.replace(f'"{marker}": null', f"{json.dumps(key)}: {json.dumps(target[key])}")
    with pytest.raises(SnapshotError) as info:
        decode_snapshot(text, "json", file="flags.json")
    (problem,) = info.value.problems
    # (a key with a dot, or an empty one, quoted: flags.f.variants.v["x.y"])
    assert problem.path == child_key_path(path, key)
    assert problem.message.startswith("duplicate key (first defined on line ")


# -- a byte-order mark ------------------------------------------------------------------
# A JSON flag file saved by a Windows editor starts with a UTF-8 byte-order mark. It was
# refused as "JSON is malformed: invalid character (byte 0)", while the same flags in
# YAML, and every configuration file, are read with it skipped.

FLAGS = {"flags": {"f": {"default": "off", "rules": [{"rollout": 100, "serve": "on"}]}}}


def test_a_json_flag_file_with_a_utf8_bom_is_read(tmp_path):
    path = tmp_path / "flags.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(FLAGS, indent=2).encode())
    engine = Engine.from_file(path)
    assert engine.is_enabled("f", {"user_id": "u1"}) is True
    assert decode_snapshot("\ufeff" + json.dumps(FLAGS), "json") == engine.source


def test_a_served_json_flag_file_with_a_bom_is_served(tmp_path):
    from cfgcore.runtime.flags import LiveFlags
    from cfgcore.runtime.flagstore import FileFlagStore

    path = tmp_path / "flags.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(FLAGS).encode())
    live = LiveFlags(FileFlagStore(path))
    try:
        assert live.last_error is None
        assert live.engine.is_enabled("f", {"user_id": "u1"}) is True
    finally:
        live.close()


def test_a_bom_does_not_shift_the_lines_problems_name():
    text = '{\n "flags": {\n  "f": {"default": "on"},\n  "f": {"default": "off"}\n }\n}'
    with pytest.raises(SnapshotError) as info:
        decode_snapshot(b"\xef\xbb\xbf" + text.encode(), "json", file="flags.json")
    assert str(info.value) == "flags.json:4: flags.f: duplicate key (first defined on line 3)"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_utf16_or_utf32_json_flag_file_is_refused_saying_so(encoding):
    with pytest.raises(SnapshotError) as info:
        decode_snapshot(json.dumps(FLAGS).encode(encoding), "json", file="flags.json")
    name = encoding.upper()
    assert str(info.value) == (
        f"flags.json:1: {name} text (it starts with a {name} byte-order mark); save it as UTF-8"
    )


# -- NaN and Infinity --------------------------------------------------------------------
# Python's json.dump writes float("inf") as Infinity and NaN as NaN; no JSON number is
# either. Such a flag file was refused as "JSON is malformed: invalid character (byte
# 412)", naming neither the flag nor the key.


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_number_in_a_json_flag_file_is_named_by_its_path(tmp_path, number):
    doc = {
        "flags": {
            "g": {"default": "on", "description": "NaN and Infinity in text are text"},
            "f": {
                "default": "off",
                "rules": [{"when": {"attr": "age", "lt": 18}, "serve": "on"},
                          {"when": {"attr": "age", "ge": number}, "serve": "on"}],
            },
        }
    }  # fmt: skip
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(doc, indent=2))  # what json.dump writes
    with pytest.raises(SnapshotError) as info:
        Engine.from_file(path)
    (problem,) = info.value.problems
    written = json.dumps(number)
    assert problem.path == "flags.f.rules[1].when.ge"
    assert problem.message == f"{written} is not a JSON number: write a finite number or null"
    lines = path.read_text().splitlines()
    assert f'"ge": {written}' in lines[problem.line - 1]
