"""A flag document built in Python holding text with a lone surrogate where another type
is due is refused naming the text's key path (msgspec raised UnicodeEncodeError, which
escaped ``Engine.from_snapshot`` and ``snapshot_from_dict`` raw)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.errors import SnapshotError
from cfgcore.snapshot import snapshot_from_dict
from tests.texts import any_character, text_of

LONE = text_of(any_character, min_size=1, max_size=4).filter(
    lambda t: any(0xD800 <= ord(c) <= 0xDFFF for c in t)
)


@pytest.mark.parametrize(
    "doc, path",
    [
        ({"flags": {"f": "\ud800"}}, "flags.f"),
        ({"flags": {"f": {"variants": "\ud800"}}}, "flags.f.variants"),
        ({"flags": {"f": {"variants": {"x": 1}, "default": "x",
                          "rules": [{"when": {"attr": "c", "any": "x\udfff"}, "serve": "x"}]}}},
         "flags.f.rules[0].when.any"),
        ({"segments": {"s": "\ud800"}, "flags": {}}, "segments.s"),
        ({"flags": "\ud800"}, "flags"),
        ({"version": "\ud800", "flags": {}}, "version"),
    ],
)  # fmt: skip
def test_text_holding_a_lone_surrogate_is_refused_by_its_key_path(make, doc, path):
    for build in (snapshot_from_dict, make):
        with pytest.raises(SnapshotError) as err:
            build(doc)
        assert f"{path}: text is not valid Unicode (a lone surrogate" in str(err.value)


@given(text=LONE, where=st.sampled_from(["flag", "variants", "rules", "segment", "version"]))
def test_any_such_text_in_a_place_for_another_type_is_a_snapshot_error(text, where):
    doc: dict = {
        "flag": {"flags": {"f": text}},
        "variants": {"flags": {"f": {"variants": text}}},
        "rules": {"flags": {"f": {"variants": {"a": 1}, "default": "a", "rules": text}}},
        "segment": {"segments": {"s": text}, "flags": {}},
        "version": {"version": text, "flags": {}},
    }[where]
    with pytest.raises(SnapshotError) as err:
        snapshot_from_dict(doc)
    assert "lone surrogate" in str(err.value)
    str(err.value).encode("utf-8")  # the message itself is writable
