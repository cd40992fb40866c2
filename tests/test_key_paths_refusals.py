"""A refusal inside a mapping that says no type names the entry that is refused.

msgspec names no key of a mapping (``$[...]``); the key was looked up in the data as
the first entry holding a value of the type msgspec's message names ("got `str`"). A
message naming no type (a required field missing, a field not declared, a bound, a
length, a value not among a Literal's) matched the first entry of all, so
``section("limits", dict[str, Limit])`` over ``a: {max: 1}, b: {min: 2}`` named
``limits.a`` and its line, an entry that is fine. The entry is now the first one the
message refuses; where the message tells no entry from another, the mapping is named
with msgspec's ``[...]`` rather than a guess.

A key that is no text (in a Python or MessagePack document) was refused at its mapping
(``flags.f.variants``); it is named (``flags.f.variants[5]``). MessagePack's decoder
says ``got None`` and ``got ext`` where JSON says ``got null``: such a value matched no
entry and was refused at ``split[...]``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore._msgspec_errors import msgspec_problem
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError, child_key_path
from cfgcore.snapshot import SnapshotError, decode_snapshot, snapshot_from_dict


class Limit(msgspec.Struct, forbid_unknown_fields=True):
    max: int
    note: str = ""


class Checked(msgspec.Struct):
    n: int

    def __post_init__(self) -> None:
        if self.n == 13:
            raise ValueError("unlucky")


# (type of each entry, a value it takes, a value it refuses with a message naming no type)
REFUSALS: dict[str, tuple[Any, Any, Any]] = {
    "missing field": (Limit, {"max": 1}, {"note": "x"}),
    "unknown field": (Limit, {"max": 1}, {"max": 1, "maks": 2}),
    "int bound": (Annotated[int, msgspec.Meta(ge=0)], 3, -1),
    "float bound": (Annotated[float, msgspec.Meta(lt=1.5)], 0.5, 2.0),
    "multiple": (Annotated[int, msgspec.Meta(multiple_of=5)], 10, 12),
    "text length": (Annotated[str, msgspec.Meta(max_length=3)], "abc", "abcd"),
    "list length": (Annotated[list[int], msgspec.Meta(min_length=1)], [1], []),
    "pattern": (Annotated[str, msgspec.Meta(pattern="^v[0-9]+$")], "v1", "x1"),
    "literal": (Literal["red", "blue"], "red", "green"),
    "tuple length": (tuple[int, int], [1, 2], [1, 2, 3]),
}


def _problem(data: dict[str, Any], kind: Any, prefix: str = "limits") -> Any:
    with pytest.raises(msgspec.ValidationError) as err:
        msgspec.convert(data, type=dict[str, kind])
    return msgspec_problem(err.value, "f.yaml", prefix=prefix, data=data)


@pytest.mark.parametrize("refusal", list(REFUSALS))
def test_the_refused_entry_is_named_not_the_first(refusal):
    kind, good, bad = REFUSALS[refusal]
    problem = _problem({"a": good, "b": good, "c": bad, "d": good}, kind)
    # (an unknown field is named by its own path, below its entry)
    assert problem.path == "limits.c" + (".maks" if refusal == "unknown field" else ""), problem


@given(
    st.lists(st.text(max_size=6), min_size=1, max_size=6, unique=True),
    st.data(),
    st.sampled_from(list(REFUSALS)),
)
def test_the_first_refused_entry_is_named_whatever_the_keys(keys, data, refusal):
    kind, good, bad = REFUSALS[refusal]
    refused = data.draw(st.sets(st.sampled_from(keys), min_size=1), label="refused")
    doc = {k: (bad if k in refused else good) for k in keys}
    first = child_key_path("limits", next(k for k in keys if k in refused))
    if refusal == "unknown field":
        first = child_key_path(first, "maks")
    assert _problem(doc, kind).path == first


def test_a_refusal_that_tells_no_entry_from_another_names_the_mapping():
    problem = _problem({"a": {"n": 1}, "b": {"n": 13}}, Checked)
    assert problem.path == "limits[...]", problem  # not limits.a, which is fine
    assert problem.message == "unlucky"
    assert _problem({"b": {"n": 13}}, Checked).path == "limits.b"  # the only entry


def test_a_typed_section_names_the_entry_missing_a_field_and_its_line(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "limits:\n  a:\n    max: 1\n  b:\n    maks: 2\n  c:\n    max: 3\nsizes:\n  a: 1\n  b: -5\n"
    )
    (tmp_path / "staging.yaml").write_text("x: 1\n")
    manager = ConfigurationManager(str(tmp_path), environ={}, record_usage=False)
    try:
        manager.load_environment_config("staging")
        with pytest.raises(ConfigError) as err:
            manager.section("limits", dict[str, Limit])
        (problem,) = err.value.problems
        # the unknown field's own key and line
        assert (problem.path, problem.line) == ("limits.b.maks", 5), str(err.value)
        assert problem.message == "unknown field"  # ("maks" is not close enough to "max")
        with pytest.raises(ConfigError) as err:
            manager.section("sizes", dict[str, Annotated[int, msgspec.Meta(ge=0)]])
        (problem,) = err.value.problems
        assert (problem.path, problem.line, problem.message) == ("sizes.b", 10, "expected int >= 0")
    finally:
        manager.close()


def _doc(split: dict[Any, Any], variants: dict[Any, Any] | None = None) -> dict[str, Any]:
    variants = variants or {"a": 1, "b": 2}
    return {"flags": {"f": {"variants": variants, "default": "a", "rules": [{"split": split}]}}}


@pytest.mark.parametrize("form", ["python", "msgpack"])
@pytest.mark.parametrize(
    ("doc", "path"),
    [
        (_doc({"a": 50}, {"a": 1, 5: 2}), "flags.f.variants[5]"),
        (_doc({"a": 50, 1: 50}), "flags.f.rules[0].split[1]"),
    ],
    ids=["variant", "split"],
)
def test_a_key_that_is_no_text_is_named(form, doc, path):
    """It was refused at the mapping (``flags.f.variants``), whichever of its keys."""
    with pytest.raises(SnapshotError) as err:
        if form == "python":
            snapshot_from_dict(doc)
        else:
            decode_snapshot(msgspec.msgpack.encode(doc), "msgpack", file="f.msgpack")
    (problem,) = err.value.problems
    assert problem.path == path, str(err.value)
    assert problem.message == "expected str, got int (a key)"


@pytest.mark.parametrize(
    "weight", [None, msgspec.msgpack.Ext(5, b"x"), datetime(2030, 1, 1, tzinfo=timezone.utc)]
)
def test_a_messagepack_weight_of_another_kind_is_named_by_its_variant(weight):
    """MessagePack's decoder says ``got None`` and ``got ext``, which no value matched:
    the weight was refused at ``split[...]``."""
    doc = _doc({"a": 50, "b": weight})
    with pytest.raises(SnapshotError) as err:
        decode_snapshot(msgspec.msgpack.encode(doc), "msgpack", file="f.msgpack")
    (problem,) = err.value.problems
    assert problem.path == "flags.f.rules[0].split.b", str(err.value)
