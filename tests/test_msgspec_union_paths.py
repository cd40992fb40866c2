"""A refusal inside a mapping of tagged-union entries names the entry refused.

msgspec names no key of a mapping (``$[...]``): the key was the first entry whose value
the message refuses ("got `str`", a field missing, a field not declared). Where the
entries are Structs of a tagged union, a field's type depends on the tag, so an earlier
entry of another tag, which is fine, could hold what the message names:
``section("checks", dict[str, Check])`` over ``a: {kind: eq, value: x}`` (a str value,
right for ``eq``) and ``b: {kind: lt, value: y}`` (``lt`` takes an int) named
``checks.a.value`` and ``a``'s line. The entry is now the one that fails, with this
message, when decoded alone as its tag's type; where no entry can be told for certain,
the mapping is named (``checks[...]``) rather than an entry that is fine.

Flag documents and the access policy hold no tagged union (a condition is one Struct
whatever its operator, and each flag and segment is decoded on its own): their refusals
keep naming the flag refused, as the last tests here check.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import Engine
from cfgcore._msgspec_errors import msgspec_problem
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError, child_key_path
from cfgcore.runtime.policy import AccessPolicy
from cfgcore.snapshot import SnapshotError
from tests.fuzz import examples


class Eq(msgspec.Struct, tag="eq", tag_field="kind", forbid_unknown_fields=True):
    value: str


class Lt(msgspec.Struct, tag="lt", tag_field="kind", forbid_unknown_fields=True):
    value: int
    inclusive: bool = False


class Within(msgspec.Struct, tag="within", tag_field="kind", forbid_unknown_fields=True):
    value: list[int]
    unit: str


Check = Eq | Lt | Within


class Group(msgspec.Struct, forbid_unknown_fields=True):
    checks: dict[str, Check] = {}


def _manager(tmp_path: Any, base: str) -> ConfigurationManager:
    (tmp_path / "base.yaml").write_text(base)
    (tmp_path / "staging.yaml").write_text("x: 1\n")
    manager = ConfigurationManager(str(tmp_path), environ={}, record_usage=False)
    manager.load_environment_config("staging")
    return manager


def _section_problem(tmp_path: Any, base: str, key: str, typ: Any) -> Any:
    manager = _manager(tmp_path, base)
    try:
        with pytest.raises(ConfigError) as err:
            manager.section(key, typ)
    finally:
        manager.close()
    (problem,) = err.value.problems
    return problem


CHECKS = """\
checks:
  a:
    kind: eq
    value: x
  b:
    kind: lt
    value: y
"""


def test_a_value_refused_for_its_tag_names_its_entry_and_line(tmp_path):
    """``a.value`` is a str, right for ``eq``: ``b.value`` is the one refused."""
    problem = _section_problem(tmp_path, CHECKS, "checks", dict[str, Check])
    assert (problem.path, problem.line) == ("checks.b.value", 7), problem
    assert problem.message == "expected int, got str"
    assert problem.file is not None and problem.file.endswith("base.yaml")


@pytest.mark.parametrize(
    ("entries", "path", "line", "message"),
    [
        (  # a required field of b's tag, which a's tag does not have
            "  a: {kind: lt, value: 1}\n  b: {kind: within, value: [1]}\n",
            "checks.b",
            3,
            "object missing required field unit",
        ),
        (  # a field a's tag declares, b's does not
            "  a: {kind: within, value: [1], unit: s}\n  b: {kind: eq, value: x, unit: s}\n",
            "checks.b.unit",
            3,
            "unknown field",
        ),
        (  # a field b's tag declares under another name
            "  a: {kind: within, value: [1], unit: s}\n  b: {kind: lt, value: 1, inclusiv: true}\n",
            "checks.b.inclusiv",
            3,
            "unknown field (did you mean 'inclusive'?)",
        ),
        (  # an array, which a's tag takes
            "  a: {kind: within, value: [1, 2], unit: s}\n  b: {kind: eq, value: [1, 2]}\n",
            "checks.b.value",
            3,
            "expected str, got array",
        ),
        (  # a tag no member has: msgspec named the mapping
            "  a: {kind: eq, value: x}\n  b: {kind: gt, value: 1}\n",
            "checks.b.kind",
            3,
            "invalid value 'gt'",
        ),
        (  # no tag at all
            "  a: {kind: eq, value: x}\n  b: {value: 1}\n",
            "checks.b",
            3,
            "object missing required field kind",
        ),
    ],
    ids=["missing", "unknown", "did-you-mean", "array", "unknown-tag", "no-tag"],
)
def test_each_refusal_names_the_entry_refused(tmp_path, entries, path, line, message):
    problem = _section_problem(tmp_path, "checks:\n" + entries, "checks", dict[str, Check])
    assert (problem.path, problem.line, problem.message) == (path, line, message), problem


def test_mappings_within_mappings_name_each_entry_refused(tmp_path):
    base = """\
groups:
  g1:
    checks:
      a: {kind: eq, value: x}
  g2:
    checks:
      a: {kind: eq, value: x}
      b: {kind: lt, value: 2}
      c: {kind: lt, value: z}
"""
    problem = _section_problem(tmp_path, base, "groups", dict[str, Group])
    assert (problem.path, problem.line) == ("groups.g2.checks.c.value", 9), problem


def test_a_list_in_an_entry_names_the_entry_refused(tmp_path):
    base = "rules:\n  r1: [{kind: eq, value: x}, {kind: eq, value: y}]\n"
    base += "  r2: [{kind: lt, value: 1}, {kind: lt, value: y}]\n"
    problem = _section_problem(tmp_path, base, "rules", dict[str, list[Check]])
    assert (problem.path, problem.line) == ("rules.r2[1].value", 3), problem


def test_a_refusal_no_entry_gives_names_the_mapping():
    """A message that no entry, decoded alone, fails with (the data is not what msgspec
    read) names the mapping, not an entry that is fine."""
    data = {"a": {"kind": "eq", "value": "x"}, "b": {"kind": "lt", "value": 1}}
    wrong = {"a": {"kind": "eq", "value": "x"}, "b": {"kind": "lt", "value": "y"}}
    with pytest.raises(msgspec.ValidationError) as err:
        msgspec.convert(wrong, dict[str, Check])
    problem = msgspec_problem(err.value, "f.yaml", prefix="checks", data=data,
                              type_=dict[str, Check])  # fmt: skip
    assert problem.path == "checks[...].value", problem


# One way to refuse each tag's entry, and a valid entry of each tag.
VALID = [
    {"kind": "eq", "value": "x"},
    {"kind": "eq", "value": "7"},
    {"kind": "lt", "value": 3},
    {"kind": "lt", "value": 3, "inclusive": True},
    {"kind": "within", "value": [1, 2], "unit": "s"},
    {"kind": "within", "value": [], "unit": "s"},
]
INVALID = [
    {"kind": "lt", "value": "x"},  # a str, as eq takes
    {"kind": "eq", "value": 3},  # an int, as lt takes
    {"kind": "eq", "value": [1]},  # an array, as within takes
    {"kind": "lt", "value": 3, "unit": "s"},  # within's field
    {"kind": "eq", "value": "x", "inclusive": True},  # lt's field
    {"kind": "within", "value": [1]},  # within's required field
    {"kind": "within", "value": ["x"], "unit": "s"},
    {"kind": "lt", "value": True},
    {"kind": "ne", "value": "x"},
    {"value": "x"},
]


@settings(max_examples=examples(150), deadline=None)
@given(
    st.lists(st.sampled_from(VALID), min_size=0, max_size=8),
    st.sampled_from(INVALID),
    st.data(),
)
def test_exactly_the_invalid_entry_is_named(valid, invalid, data):
    """N entries, valid ones of mixed tags and one invalid anywhere among them: the
    problem names that entry (or a path below it), as read from a JSON document."""
    at = data.draw(st.integers(0, len(valid)), label="at")
    entries = [*valid[:at], invalid, *valid[at:]]
    doc = {f"k{i}": entry for i, entry in enumerate(entries)}
    with pytest.raises(msgspec.ValidationError) as err:
        msgspec.json.decode(json.dumps(doc), type=dict[str, Check])
    problem = msgspec_problem(err.value, "f.json", prefix="checks", data=doc,
                              type_=dict[str, Check])  # fmt: skip
    refused = child_key_path("checks", f"k{at}")
    assert problem.path == refused or problem.path.startswith((refused + ".", refused + "[")), (
        problem
    )


# Flag documents: each flag is decoded on its own, so the flag refused is named.
FLAGS = {
    "flags": {
        "a": {"default": "on", "rules": [{"when": {"attr": "plan", "eq": "pro"}, "serve": "on"}]},
        "b": {"default": "on", "rules": [{"when": {"attr": "age", "lt": "pro"}, "serve": "on"}]},
    }
}
FLAGS_YAML = """\
flags:
  a:
    default: "on"
    rules:
      - when: {attr: plan, eq: pro}
        serve: "on"
  b:
    default: "on"
    rules:
      - when: {attr: age, lt: pro}
        serve: "on"
"""


@pytest.mark.parametrize("format", ["yaml", "json", "msgpack"])
def test_a_flag_file_names_the_flag_refused(tmp_path, format):
    if format == "yaml":
        (path := tmp_path / "flags.yaml").write_text(FLAGS_YAML)
    elif format == "json":
        (path := tmp_path / "flags.json").write_text(json.dumps(FLAGS, indent=1))
    else:
        (path := tmp_path / "flags.msgpack").write_bytes(msgspec.msgpack.encode(FLAGS))
    with pytest.raises(SnapshotError) as err:
        Engine.from_file(path)
    (problem,) = err.value.problems
    assert problem.path == "flags.b.rules[0].when.lt", str(err.value)
    assert problem.message == "expected int | float, got str"
    if format == "yaml":
        assert problem.line == 10


def test_an_access_policy_names_the_role_refused():
    data = {"roles": {"viewer": {"read": ["*"]}, "editor": {"write": ["*", 5]}}, "actors": {}}
    with pytest.raises(ConfigError) as err:
        AccessPolicy.from_mapping(data, origin="policy.yaml")
    (problem,) = err.value.problems
    assert problem.path == "roles.editor.write[1]", str(err.value)


@pytest.mark.parametrize(
    ("typ", "key", "base", "path"),
    [
        (Check, "check", "check: {kind: lt, value: 1, inclusiv: true}\n", "check.inclusiv"),
        (
            list[Check],
            "checks",
            "checks:\n  - {kind: eq, value: x}\n  - {kind: lt, value: 1, inclusiv: true}\n",
            "checks[1].inclusiv",
        ),
    ],
    ids=["alone", "in-a-list"],
)
def test_an_unknown_field_suggests_a_field_of_its_tag(tmp_path, typ, key, base, path):
    problem = _section_problem(tmp_path, base, key, typ)
    assert (problem.path, problem.message) == (path, "unknown field (did you mean 'inclusive'?)")
