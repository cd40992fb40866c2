"""An unknown field is named where it is even when its name looks like the end of
msgspec's message: msgspec quotes the field as written, so a field named
``x` - at `$.rules[0]`` at a flag's top read as field ``x`` inside ``rules[0]``."""

from __future__ import annotations

import json

import msgspec
import pytest

from cfgcore import Engine
from cfgcore.errors import SnapshotError, child_key_path


def _refused(path, text: str | bytes) -> SnapshotError:
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    with pytest.raises(SnapshotError) as err:
        Engine.from_file(path)
    return err.value


def _flag(**extra):
    return {"flags": {"a": {"default": "on", "variants": {"on": 1}, **extra}}}


@pytest.mark.parametrize(
    "field",
    [
        "x` - at `$.flags['evil']",  # no such place in a flag
        "x` - at `$.rules[0]",  # a place the flag has: still not where the field is
        "x` - at `$",
    ],
)
def test_a_flag_field_named_like_a_path_is_named_at_its_flag(tmp_path, field):
    doc = _flag(rules=[{"serve": "on"}], **{field: 1})
    err = _refused(tmp_path / "flags.json", json.dumps(doc, indent=1))
    [problem] = err.problems
    assert problem.path == child_key_path("flags.a", field)
    assert problem.message.startswith("unknown field")


def test_a_field_named_like_a_path_inside_a_list_of_structs(tmp_path):
    doc = _flag(rules=[{"serve": "on", "y` - at `$.rules[0]": 1}])
    [problem] = _refused(tmp_path / "flags.json", json.dumps(doc)).problems
    assert problem.path == 'flags.a.rules[0]["y` - at `$.rules[0]"]'


def test_a_condition_field_named_like_a_path_is_named_at_its_condition(tmp_path):
    text = (
        "flags:\n  a:\n    default: on\n    variants: {on: 1}\n    rules:\n      - serve: on\n"
        '        when: {any: [{attr: x, eq: 1}], "y` - at `$.any[0]": 2}\n'
    )
    [problem] = _refused(tmp_path / "flags.yaml", text).problems
    assert problem.path == 'flags.a.rules[0].when["y` - at `$.any[0]"]'
    assert problem.line == 7


def test_a_top_level_field_named_like_a_path_in_messagepack(tmp_path):
    doc = msgspec.msgpack.encode({"flags": {}, "x` - at `$.flags": 1})
    [problem] = _refused(tmp_path / "flags.msgpack", doc).problems
    assert problem.path == '["x` - at `$.flags"]'
    assert problem.message.startswith("unknown field")


def test_a_real_unknown_field_is_named_as_before(tmp_path):
    doc = _flag(rules=[{"serve": "on", "bogus": 1}])
    [problem] = _refused(tmp_path / "flags.json", json.dumps(doc)).problems
    assert problem.path == "flags.a.rules[0].bogus"
