"""Refusals of a typed view read through msgspec's message, attacked with data.

msgspec puts the place it refused after its message (`` - at `$[...].kind` ``); a value
shown in the message (a tag or an enum value the view does not take) may itself hold
that text, and the place is the last such suffix that reads as a path. A key of text
the view reads as a number (``"1"`` for ``dict[int, ...]``, as ``section`` decodes
with ``str_keys``) is not the key refused.
"""

from __future__ import annotations

import json
import string
from typing import Any, Literal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError, child_key_path
from tests.fuzz import examples


class Eq(msgspec.Struct, tag="eq", tag_field="kind", forbid_unknown_fields=True):
    value: str


class Lt(msgspec.Struct, tag="lt", tag_field="kind", forbid_unknown_fields=True):
    value: int


class Mode(msgspec.Struct, tag="mode", tag_field="kind", forbid_unknown_fields=True):
    mode: Literal["on", "off"]


Check = Eq | Lt | Mode


def _section_problem(tmp_path: Any, base: str, key: str, typ: Any) -> Any:
    (tmp_path / "base.yaml").write_text(base, encoding="utf-8")
    (tmp_path / "staging.yaml").write_text("x: 1\n")
    # (not validated: a generated key such as "Pwd" reads as a secret stored in clear,
    # which validation refuses before the section is read; the section is what is judged)
    manager = ConfigurationManager(str(tmp_path), environ={}, record_usage=False, validate=False)
    try:
        manager.load_environment_config("staging")
        with pytest.raises(ConfigError) as err:
            manager.section(key, typ)
    finally:
        manager.close()
    (problem,) = err.value.problems
    return problem


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.mark.parametrize(
    "shown",
    ["zz` - at `$.a", "zz` - at `$[...].value", "zz` - at `$", "zz' - at `$[...]`", "` - at `$.a`"],
)
@pytest.mark.parametrize("field", ["kind", "mode"])
def test_a_refused_value_holding_a_path_names_its_entry(tmp_path, shown, field):
    bad = f"{{kind: {_quoted(shown)}, value: 1}}"
    if field == "mode":
        bad = f"{{kind: mode, mode: {_quoted(shown)}}}"
    base = f"c:\n  a: {{kind: eq, value: x}}\n  b: {bad}\n"
    problem = _section_problem(tmp_path, base, "c", dict[str, Check])
    assert (problem.path, problem.line) == (f"c.b.{field}", 3), problem
    said = "invalid value " if field == "kind" else "invalid enum value "
    assert problem.message == said + repr(shown).replace("`", ""), problem


def test_a_refused_value_holding_a_path_without_a_tagged_union(tmp_path):
    base = "c:\n  a: {m: on}\n  b: {m: 'q` - at `$[...].value'}\n"
    problem = _section_problem(tmp_path, base, "c", dict[str, dict[str, Literal["on", "off"]]])
    assert (problem.path, problem.line) == ("c.b.m", 3), problem


@pytest.mark.parametrize(
    ("typ", "value"), [(dict[int, Check], "{kind: eq, value: x}"), (dict[int, int], "1")],
    ids=["union", "int"],
)  # fmt: skip
@pytest.mark.parametrize("nested", [False, True])
def test_a_key_the_view_reads_as_a_number_is_not_the_key_refused(tmp_path, typ, value, nested):
    entries = f"'1': {value}\n'-2': {value}\n'x': {value}\n'3': {value}\n"
    indent = "    " if nested else "  "
    body = "".join(indent + line + "\n" for line in entries.splitlines())
    base = "c:\n" + ("  g:\n" if nested else "") + body
    problem = _section_problem(tmp_path, base, "c", dict[str, typ] if nested else typ)
    assert problem.path == ("c.g.x" if nested else "c.x"), problem
    assert problem.line == (5 if nested else 4)
    assert problem.message == "expected int, got str (a key)"


@settings(max_examples=examples(40), deadline=None)
@given(
    st.lists(st.integers(-(10**9), 10**9).map(str), max_size=6, unique=True),
    st.text(string.ascii_letters + ".[]", min_size=1, max_size=6),
    st.data(),
)
def test_the_first_key_no_number_is_named(tmp_path_factory, numbers, word, data):
    """Keys that read as ints and one that does not, anywhere among them (msgspec reads
    "00" as no int: the view's own reading tells, not a guess)."""
    at = data.draw(st.integers(0, len(numbers)), label="at")
    keys = [*numbers[:at], word, *numbers[at:]]
    base = "c:\n" + "".join(f"  {_quoted(k)}: {{kind: lt, value: 1}}\n" for k in keys)
    problem = _section_problem(tmp_path_factory.mktemp("k"), base, "c", dict[int, Check])
    assert (problem.path, problem.line) == (child_key_path("c", word), at + 2), problem


def test_a_key_that_reads_as_a_secret_name_is_named_too(tmp_path):
    """(Found by the property above: "Pwd" among the keys.)"""
    base = "c:\n  '1': {kind: lt, value: 1}\n  Pwd: {kind: lt, value: 1}\n"
    problem = _section_problem(tmp_path, base, "c", dict[int, Check])
    assert (problem.path, problem.line) == (child_key_path("c", "Pwd"), 3), problem


def test_a_key_msgspec_reads_as_no_number_is_refused_though_it_looks_like_one(tmp_path):
    base = "c:\n  '1': 1\n  '01': 2\n  'x': 3\n"
    problem = _section_problem(tmp_path, base, "c", dict[int, int])
    assert (problem.path, problem.line) == (child_key_path("c", "01"), 3), problem


_NAMES: set[str] = set()


class Named(msgspec.Struct, tag="named", tag_field="kind"):
    """A Struct whose check depends on the entries decoded before it (a name taken)."""

    name: str

    def __post_init__(self) -> None:
        if self.name in _NAMES:
            raise ValueError(f"name {self.name} taken")
        _NAMES.add(self.name)


def test_a_check_that_depends_on_other_entries_names_no_entry_that_is_fine(tmp_path):
    """``a`` is fine in the document; decoded again alone it fails as ``b`` did (its
    name is taken by then): a message of the Struct's own check that two entries give
    names the mapping, not ``a``."""
    _NAMES.clear()
    base = "c:\n  a: {kind: named, name: n1}\n  b: {kind: named, name: n1}\n"
    problem = _section_problem(tmp_path, base, "c", dict[str, Named | Lt])
    assert problem.path in ("c", "c[...]", "c.b"), problem
    assert problem.message == "name n1 taken"


class Ordered(msgspec.Struct, tag="range", tag_field="kind"):
    low: int
    high: int

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError("low above high")


def test_a_check_of_the_struct_itself_names_its_entry(tmp_path):
    base = "c:\n  a: {kind: range, low: 1, high: 2}\n  b: {kind: lt, value: 1}\n"
    base += "  c: {kind: range, low: 3, high: 2}\n  d: {kind: range, low: 1, high: 2}\n"
    problem = _section_problem(tmp_path, base, "c", dict[str, Ordered | Lt])
    assert (problem.path, problem.line, problem.message) == ("c.c", 4, "low above high"), problem


_KEY_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list(".[]'\"`$ -\\")),
    min_size=1,
    max_size=8,
)
_FINE = ["{kind: eq, value: x}", "{kind: lt, value: 1}", "{kind: mode, mode: 'on'}"]
_BAD = ["{kind: lt, value: x}", "{kind: eq, value: [1]}", "{kind: mode, mode: 'x` - at `$'}"]


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(_KEY_TEXT, min_size=1, max_size=6, unique=True), st.data())
def test_keys_of_any_text_name_the_entry_refused_and_its_line(tmp_path_factory, keys, data):
    """Keys holding dots, brackets, quotes, backticks and msgspec's path words, valid
    entries of every tag and one refused anywhere among them, in a YAML file."""

    at = data.draw(st.integers(0, len(keys) - 1), label="at")
    fine = data.draw(st.lists(st.sampled_from(_FINE), min_size=len(keys), max_size=len(keys)))
    fine[at] = data.draw(st.sampled_from(_BAD), label="bad")
    base = "c:\n" + "".join(f"  {json.dumps(k)}: {v}\n" for k, v in zip(keys, fine, strict=True))
    problem = _section_problem(tmp_path_factory.mktemp("t"), base, "c", dict[str, Check])
    refused = child_key_path("c", keys[at])
    assert problem.path == refused or problem.path.startswith((refused + ".", refused + "[")), (
        problem
    )
    assert problem.line == at + 2, problem
