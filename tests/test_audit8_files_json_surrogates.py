"""A JSON flag file holding a lone surrogate escape ("\\ud800", half of a pair) is
refused naming the file and the key path of the text, as a JSON configuration file is.
It was refused as msgspec saw it: "Input data was truncated" or "JSON is malformed:
invalid utf-16 surrogate pair (byte 37)", naming neither the key nor the cause."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import Engine, load_snapshot
from cfgcore.errors import SnapshotError
from tests.fuzz import examples

LONE = "\\ud800"


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('{"flags": {"f": {"variants": {"a": "x' + LONE + '"}, "default": "a"}}}',
         "flags.f.variants.a"),
        ('{"flags": {"f": {"variants": {"a": ["x", "\\udc00"]}, "default": "a"}}}',
         "flags.f.variants.a[1]"),
        ('{"flags": {"f": {"variants": {"' + LONE + '": 1}, "default": "' + LONE + '"}}}',
         "flags.f.variants.\\ud800"),
        ('{"flags": {}, "metadata": {"owner": "' + LONE + '\\u0041"}}', "metadata.owner"),
    ],
)  # fmt: skip
def test_a_lone_surrogate_is_named_with_its_path(tmp_path, text, path):
    flags = tmp_path / "flags.json"
    flags.write_text(text)
    with pytest.raises(SnapshotError) as err:
        load_snapshot(flags)
    [problem] = err.value.problems
    assert problem.path == path
    assert problem.file == str(flags)
    assert "lone surrogate" in problem.message


def test_a_surrogate_pair_is_text():
    engine = Engine.from_bytes(
        b'{"flags": {"f": {"variants": {"a": "\\ud83d\\ude00"}, "default": "a"}}}', format="json"
    )
    assert engine.value("f", {}) == "\U0001f600"


@settings(max_examples=examples(40), deadline=None)
@given(
    before=st.text(st.characters(codec="utf-8"), max_size=5),
    surrogate=st.integers(0xD800, 0xDFFF),
    where=st.sampled_from(["variant", "metadata", "key"]),
)
def test_any_lone_surrogate_anywhere_is_a_snapshot_error(before, surrogate, where):
    bad = json.dumps(before)[1:-1] + f"\\u{surrogate:04x}"
    if where == "variant":
        text = '{"flags": {"f": {"variants": {"a": "BAD"}, "default": "a"}}}'
    elif where == "metadata":
        text = '{"flags": {}, "metadata": {"m": ["BAD"]}}'
    else:
        text = '{"flags": {"f": {"default": "on", "metadata": {"BAD": 1}}}}'
    with pytest.raises(SnapshotError, match="lone surrogate"):
        Engine.from_bytes(text.replace("BAD", bad).encode(), format="json")
