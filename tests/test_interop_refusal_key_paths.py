"""flagd and GrowthBook refusals name the key path in the SOURCE document, as Unleash's
do: the construct itself (``flags.f.targeting.if[0].and[1].foo``,
``features.f.rules[1].condition.$or[1].country.$regex``), not only the flag, in both
the ``"raise"`` and ``"skip"`` modes and in ``cfgcore import``'s report, where the line
given is that path's line. A refusal inside a flagd ``$evaluators`` entry names the
evaluator's path and the ``$ref`` that reached it. ``cfgcore import``'s refusal of a
secret reference names the value's path in the source too (it named the converted
flag's ``variants.on.value``, a path no source file has)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.errors import child_key_path, parse_key_path
from cfgcore.interop import InteropError, flagd, growthbook
from tests.conftest import run_cli as run
from tests.fuzz import examples
from tests.key_paths import resolves

_FLAG = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "off"}

FLAGD: dict[str, Any] = {
    "flags": {
        "nested": {**_FLAG, "targeting": {
            "if": [{"and": [{"==": [{"var": "a"}, 1]}, {"foo": [1]}]}, "on", "off"]}},
        "nullv": {**_FLAG, "variants": {"on": True, "off": None}, "defaultVariant": "on"},
        "state": {**_FLAG, "state": "MAYBE"},
        "ref": {**_FLAG, "targeting": {"if": [{"$ref": "e"}, "on", "off"]}},
        "frac": {**_FLAG, "targeting": {"fractional": [["on", 50], ["off", "x"]]}},
        "fine": _FLAG,
    },
    "$evaluators": {"e": {"or": [{"==": [{"var": "a"}, 1]}, {"bar": 2}]}},
}  # fmt: skip

FLAGD_WHERE = {
    "nested": ("flags.nested.targeting.if[0].and[1].foo", "JSONLogic operator 'foo'"),
    "nullv": ("flags.nullv.variants.off", "variant 'off' has a null value"),
    "state": ("flags.state.state", "state must be ENABLED or DISABLED, got 'MAYBE'"),
    # an evaluator's construct: its own path, and the $ref that reached it
    "ref": ("$evaluators.e.or[1]", "JSONLogic operator 'bar'"),
    "frac": ("flags.frac.targeting.fractional[1]", "fractional weight 'x' is not an integer"),
}

GROWTHBOOK: dict[str, Any] = {
    "features": {
        "regex": {"defaultValue": False, "rules": [
            {"condition": {"x": 1}, "force": True},
            {"condition": {"$or": [{"a": 1}, {"country": {"$regex": "(?i)x"}}]}, "force": True},
        ]},
        "seed": {"defaultValue": 1, "rules": [
            {"filters": [{"attribute": "id", "seed": 5, "ranges": [[0, 0.5]]}], "force": 2}]},
        "rules": {"defaultValue": 1, "rules": 5},
        "notobj": 5,
        "child": {"defaultValue": 1, "rules": [{"parentConditions": [
            {"id": "notobj", "condition": {"value": True}, "gate": True}], "force": 3}]},
        "force": {"defaultValue": 1, "rules": [{"force": 2**70}]},
        "elem": {"defaultValue": 1, "rules": [
            {"condition": {"a": {"$elemMatch": {"b": {"$regex": "(?i)x"}}}}, "force": 2}]},
        "fine": {"defaultValue": 1},
    }
}  # fmt: skip

GROWTHBOOK_WHERE = {
    "regex": ("features.regex.rules[1].condition.$or[1].country.$regex", "the group '(?i'"),
    "seed": ("features.seed.rules[0].filters[0].seed", "expected a string, got a number"),
    "rules": ("features.rules.rules", "expected a list of rules, got a number"),
    "notobj": ("features.notobj", "a feature must be an object"),
    # the parent's reason named by its own path
    "child": (
        "features.child.rules[0].parentConditions[0]",
        "the prerequisite 'notobj' is refused (features.notobj: a feature must be an object)",
    ),
    "force": ("features.force.rules[0].force", "integer out of range"),
    "elem": ("features.elem.rules[0].condition.a.$elemMatch.b.$regex", "the group '(?i'"),
}


@pytest.mark.parametrize(
    ("module", "doc", "where"),
    [(flagd, FLAGD, FLAGD_WHERE), (growthbook, GROWTHBOOK, GROWTHBOOK_WHERE)],
    ids=["flagd", "growthbook"],
)
def test_skipped_flags_are_listed_by_the_source_key_path(module, doc, where):
    refused = module.to_snapshot(doc, on_error="skip").metadata["refused"]
    assert set(refused) == set(where)
    for key, (path, why) in where.items():
        reason = refused[key]
        assert reason.startswith(f"{path}: "), (key, reason)
        assert why in reason, (key, reason)
        assert resolves(doc, list(parse_key_path(path))), path


@pytest.mark.parametrize(
    ("module", "doc", "where"),
    [(flagd, FLAGD, FLAGD_WHERE), (growthbook, GROWTHBOOK, GROWTHBOOK_WHERE)],
    ids=["flagd", "growthbook"],
)
def test_raised_problems_name_the_source_key_path(module, doc, where):
    with pytest.raises(InteropError) as info:
        module.to_snapshot(doc, source="src.json")
    got = {p.path: p.message for p in info.value.problems}
    assert set(got) == {path for path, _ in where.values()}
    for path, why in where.values():
        assert why in got[path], (path, got[path])
        assert info.value.problems[0].file == "src.json"


def test_a_refusal_inside_an_evaluator_names_the_ref_that_reached_it():
    refused = flagd.to_snapshot(FLAGD, on_error="skip").metadata["refused"]
    assert refused["ref"].endswith("(through the $ref at flags.ref.targeting.if[0])")


# keys as a file can hold them: dots, brackets, spaces, quotes (rendered quoted)
_KEYS = st.text(st.sampled_from('ab.[]" :é'), min_size=1, max_size=8)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=_KEYS, depth=st.integers(1, 4), width=st.integers(1, 4), data=st.data())
def test_flagd_names_the_refused_operand_wherever_it_is_nested(key, depth, width, data):
    at = data.draw(st.integers(0, width - 1))
    operands: list[Any] = [{"==": [{"var": f"v{i}"}, i]} for i in range(width)]
    operands.insert(at, {"nope": [1]})
    targeting: Any = {"if": [{"or": operands}, "on", "off"]}
    path = f"if[0].or[{at}].nope"
    for _ in range(depth - 1):
        targeting = {"if": [{"==": [{"var": "z"}, 1]}, targeting, "off"]}
        path = f"if[1].{path}"
    doc = {"flags": {key: {**_FLAG, "targeting": targeting}}}
    where = f"{child_key_path('flags', key)}.targeting.{path}"
    assert resolves(doc, list(parse_key_path(where)))
    reason = flagd.to_snapshot(doc, on_error="skip").metadata["refused"][key]
    assert reason == f"{where}: JSONLogic operator 'nope'"
    with pytest.raises(InteropError) as info:
        flagd.to_snapshot(doc)
    assert [p.path for p in info.value.problems] == [where]


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    key=_KEYS,
    attr=st.text(st.sampled_from("ab: é"), min_size=1, max_size=6),
    ops=st.lists(st.sampled_from(["$and", "$or", "$nor", "$not"]), max_size=4),
    width=st.integers(1, 3),
    data=st.data(),
)
def test_growthbook_names_the_refused_operator_wherever_it_is_nested(key, attr, ops, width, data):
    cond: Any = {attr: {"$regex": "(?i)x"}}
    path = f"{attr}.$regex"  # (no dot nor bracket in it: a plain segment)
    for op in ops:
        if op == "$not":
            cond, path = {"$not": cond}, f"$not.{path}"
            continue
        at = data.draw(st.integers(0, width - 1))
        items: list[Any] = [{f"q{i}": i} for i in range(width)]
        items.insert(at, cond)
        cond, path = {op: items}, f"{op}[{at}].{path}"
    doc = {"features": {key: {"defaultValue": 0, "rules": [{"condition": cond, "force": 1}]}}}
    where = f"{child_key_path('features', key)}.rules[0].condition.{path}"
    assert resolves(doc, list(parse_key_path(where))), where
    reason = growthbook.to_snapshot(doc, on_error="skip").metadata["refused"][key]
    assert reason.startswith(f"{where}: "), (where, reason)
    with pytest.raises(InteropError) as info:
        growthbook.to_snapshot(doc)
    assert [p.path for p in info.value.problems] == [where]


# -- cfgcore import -----------------------------------------------------------------------
def _import(tmp_path, capsys, system: str, doc: Any) -> tuple[int, str, list[str]]:
    src = tmp_path / "src.json"
    text = json.dumps(doc, indent=2)
    src.write_text(text)
    code, _, err = run(capsys, "import", system, str(src), "--out", str(tmp_path / "out.yaml"))
    return code, err, text.splitlines()


# what a file can hold: no integer past 64 bits (the reader refuses the file)
_GB_FILE = {"features": {k: v for k, v in GROWTHBOOK["features"].items() if k != "force"}}


def _line_of(lines: list[str], needle: str) -> int:
    return next(n for n, line in enumerate(lines, 1) if needle in line)


@pytest.mark.parametrize(
    ("system", "doc", "key", "where", "needle"),
    [
        ("flagd", FLAGD, "nested", FLAGD_WHERE["nested"][0], '"foo"'),
        ("flagd", FLAGD, "state", FLAGD_WHERE["state"][0], '"MAYBE"'),
        ("flagd", FLAGD, "ref", FLAGD_WHERE["ref"][0], '"bar"'),
        ("growthbook", _GB_FILE, "regex", GROWTHBOOK_WHERE["regex"][0], '"(?i)x"'),
        ("growthbook", _GB_FILE, "seed", GROWTHBOOK_WHERE["seed"][0], '"seed": 5'),
        ("growthbook", _GB_FILE, "child", GROWTHBOOK_WHERE["child"][0], '"id": "notobj"'),
    ],
)
def test_cfgcore_import_lists_each_refusal_at_its_source_line(
    tmp_path, capsys, system, doc, key, where, needle
):
    code, err, lines = _import(tmp_path, capsys, system, doc)
    assert code == 1
    src = tmp_path / "src.json"
    (entry,) = [line for line in err.splitlines() if line.startswith(f"  - {key}: ")]
    prefix = f"  - {key}: refused: {src}:"
    assert entry.startswith(prefix), entry
    line, rest = entry[len(prefix) :].split(": ", 1)
    assert rest.startswith(f"{where}: "), entry
    # the line of the construct (its value's line, or the line its object opens on)
    assert int(line) in (_line_of(lines, needle), _line_of(lines, needle) - 1), entry


@pytest.mark.parametrize(
    ("system", "doc", "key", "where"),
    [
        (
            "flagd",
            {
                "flags": {
                    "s": {
                        **_FLAG,
                        "variants": {"on": {"db": {"password": "${file:/etc/passwd}"}}, "off": {}},
                    }
                }
            },
            "s",
            "flags.s.variants.on.db.password",
        ),
        (
            "growthbook",
            {"features": {"s": {"defaultValue": 1, "rules": [{"force": ["x", "ENC[abc]"]}]}}},
            "s",
            "features.s.rules[0].force[1]",
        ),
        (
            "growthbook",
            {"features": {"s": {"defaultValue": {"k": "${file:/etc/passwd}"}}}},
            "s",
            "features.s.defaultValue.k",
        ),
        (
            "growthbook",
            {
                "features": {
                    "s": {
                        "defaultValue": 1,
                        "rules": [{"variations": [1, {"v": "${file:/x}"}], "weights": [0.5, 0.5]}],
                    }
                }
            },
            "s",
            "features.s.rules[0].variations[1].v",
        ),
    ],  # fmt: skip
)
def test_a_secret_reference_is_refused_naming_its_source_key_path(
    tmp_path, capsys, system, doc, key, where
):
    code, err, _ = _import(tmp_path, capsys, system, doc)
    assert code == 1
    (entry,) = [line for line in err.splitlines() if line.startswith(f"  - {key}: ")]
    assert f": {where}: holds an encrypted value or a secret file reference" in entry, entry
    assert resolves(doc, list(parse_key_path(where)))
