"""Fourth audit of the compiler on hostile flag documents.

* Prerequisite fan-out: a prerequisite is evaluated once per path that reaches it, so
  a few levels of flags each requiring the one below many times made one check
  evaluate millions of flags (five levels of 30: 24 million, over a second compiled
  and minutes in the reference evaluator), within the depth limit of 32. Such a
  snapshot is refused, naming the flag where the limit is passed.
* Segment inlining: a segment is copied at each reference, so segments that each
  reference the one before many times expanded exponentially (a compile that never
  ended). Inlining is budgeted per flag and per snapshot; a flag past it is refused
  by name, before anything is expanded.
* A Snapshot built in Python (not decoded, so not depth-checked) with a variant value
  nested past the recursion limit raised a bare RecursionError from compile; it is a
  SnapshotError naming the value's path, as for decoded documents.
"""

from __future__ import annotations

import pytest

import cfgcore._lower
from cfgcore.compiler import MAX_INLINED_NODES, MAX_PREREQUISITE_EVALUATIONS
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import MAX_VALUE_DEPTH, Condition, Flag, Rule, Snapshot


def _fan_out(levels: int, width: int) -> dict:
    """p{k} requires p{k-1} ``width`` times: a check of p{levels} evaluates
    1 + width + width**2 + ... flags."""
    flags = {"p0": {"default": "off", "rules": [{"when": {"attr": "a", "ne": "x"}, "serve": "on"}]}}
    for k in range(1, levels + 1):
        flags[f"p{k}"] = {"default": "on", "prerequisites": [f"p{k - 1}"] * width}
    return {"flags": flags}


def _evaluations(levels: int, width: int) -> int:
    return sum(width**k for k in range(levels + 1))


def test_prerequisite_fan_out_past_the_limit_is_refused_naming_the_flag(make):
    assert _evaluations(2, 30) <= MAX_PREREQUISITE_EVALUATIONS < _evaluations(3, 30)
    with pytest.raises(SnapshotError) as err:
        make(_fan_out(3, 30))
    text = str(err.value)
    assert "flags.p3.prerequisites: a check would evaluate more than 1,000" in text
    assert "flags.p2" not in text  # reported where the limit is first passed
    # Distinct flags reached along several paths count once per path as well.
    diamond = {"d0": {"default": "on"}}
    for k in range(1, 12):  # 2**11 paths down to d0
        diamond[f"l{k}"] = {"default": "on", "prerequisites": [f"d{k - 1}"]}
        diamond[f"r{k}"] = {"default": "on", "prerequisites": [f"d{k - 1}"]}
        diamond[f"d{k}"] = {"default": "on", "prerequisites": [f"l{k}", f"r{k}"]}
    with pytest.raises(SnapshotError, match=r"flags\.d8\.prerequisites: a check would"):
        make({"flags": diamond})


def test_prerequisite_fan_out_within_the_limit_answers_alike(make_py_and_c):
    answers = []
    for build in make_py_and_c:
        engine = build(_fan_out(2, 30))
        answers.append(
            [
                engine.is_enabled("p2", {"a": "y"}),
                engine.is_enabled("p2", {"a": "x"}),
                engine.evaluate("p2", {"a": "x"}).reason,
                engine.evaluate_all({"a": "y"}),
            ]
        )
    assert answers[0] == answers[-1]
    assert answers[0][:3] == [True, False, "PREREQUISITE_FAILED"]


def test_an_incremental_compile_checks_the_fan_out_too(make):
    engine = make(_fan_out(2, 30))
    grown = _fan_out(3, 30)
    with pytest.raises(SnapshotError, match=r"flags\.p3\.prerequisites: a check would"):
        engine.swap(grown)  # compiled against the live tables (compile_incremental)
    assert engine.is_enabled("p2", {"a": "y"}) is True  # the last good snapshot serves


def _segments(levels: int, width: int) -> dict:
    segments = {"s0": {"attr": "a", "eq": "x"}}
    for k in range(1, levels + 1):
        segments[f"s{k}"] = {"any": [{"segment": f"s{k - 1}"}] * width}
    return segments


def test_an_exponential_segment_is_refused_at_its_name(make):
    # s3 alone would be 40**3 = 64,000 copies of s0, s5 100 million; every reference to
    # a refused segment reads as false (the snapshot is refused anyway).
    doc = {
        "segments": _segments(5, 40),
        "flags": {"f": {"default": "off", "rules": [{"when": {"segment": "s5"}, "serve": "on"}]}},
    }
    with pytest.raises(SnapshotError) as err:
        make(doc)
    text = str(err.value)
    assert (
        f"segments.s3: conditions with their segments inlined exceed {MAX_INLINED_NODES:,} nodes"
        in text
    )


@pytest.fixture
def small_budgets(monkeypatch):
    """The budgets at a size these tests can reach quickly (the compiler reads them at
    each check)."""
    monkeypatch.setattr(cfgcore._lower, "MAX_INLINED_NODES", 1_000)
    monkeypatch.setattr(cfgcore._lower, "MAX_SNAPSHOT_INLINED_NODES", 5_000)
    return 1_000, 5_000


def test_a_flag_past_its_inlining_budget_is_refused_by_name(make, small_budgets):
    per_flag, _ = small_budgets
    s2 = 2 + 12 * (2 + 12 * 2)  # the estimate: 2 per node, leaves included
    assert 3 * s2 <= per_flag < 4 * s2
    rule = {"when": {"segment": "s2"}, "serve": "on"}
    doc = {
        "segments": _segments(2, 12),
        "flags": {
            "ok": {"default": "off", "rules": [rule] * 3},
            "big": {"default": "off", "rules": [rule] * 4},
        },
    }
    with pytest.raises(SnapshotError) as err:
        make(doc)
    text = str(err.value)
    assert f"flags.big: conditions with their segments inlined exceed {per_flag:,}" in text
    assert "flags.ok" not in text and "segments." not in text
    # The same flag added by an incremental compile (Engine.swap against live tables).
    del doc["flags"]["big"]
    engine = make(doc)
    doc["flags"]["big"] = {"default": "off", "rules": [rule] * 4}
    with pytest.raises(SnapshotError, match="flags.big: conditions with their segments"):
        engine.swap(doc)
    assert engine.is_enabled("ok", {"a": "x"}) is True


def test_the_snapshot_wide_inlining_budget(make, small_budgets):
    per_flag, per_snapshot = small_budgets
    rule = {"when": {"segment": "s2"}, "serve": "on"}
    flags = {f"f{i}": {"default": "off", "rules": [rule] * 3} for i in range(8)}
    with pytest.raises(SnapshotError) as err:
        make({"segments": _segments(2, 12), "flags": flags})
    text = str(err.value)
    assert f"the snapshot's segments inlined exceed {per_snapshot:,} nodes" in text
    assert "flags.f0:" not in text and "flags.f7:" in text  # the first flags fit


def test_segments_within_the_budget_answer_alike(make_py_and_c):
    doc = {
        "segments": _segments(2, 30),
        "flags": {"f": {"default": "off", "rules": [{"when": {"segment": "s2"}, "serve": "on"}]}},
    }
    answers = [
        [build(doc).is_enabled("f", {"a": v}) for v in ("x", "y", None)] for build in make_py_and_c
    ]
    assert answers[0] == answers[-1] == [True, False, False]


def test_a_segment_cycle_still_reports_the_cycle(make):
    doc = {
        "segments": {"a": {"any": [{"segment": "b"}] * 3}, "b": {"any": [{"segment": "a"}] * 3}},
        "flags": {"f": {"default": "off", "rules": [{"when": {"segment": "a"}, "serve": "on"}]}},
    }
    with pytest.raises(SnapshotError, match="segment reference cycle"):
        make(doc)


def _deep(depth: int) -> list:
    value: list = [1]
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [MAX_VALUE_DEPTH, 5_000])
def test_a_python_snapshot_with_a_deep_variant_value_is_a_snapshot_error(make, depth):
    snap = Snapshot(flags={"f": Flag(variants={"a": _deep(depth), "b": 1}, default="b")})
    with pytest.raises(SnapshotError) as err:
        make(snap)
    assert "flags.f.variants.a[0][0]" in str(err.value)
    assert f"nested deeper than {MAX_VALUE_DEPTH} levels" in str(err.value)
    # The same value as plain data is refused the same way (snapshot_from_dict).
    with pytest.raises(SnapshotError, match=f"nested deeper than {MAX_VALUE_DEPTH} levels"):
        make({"flags": {"f": {"variants": {"a": _deep(depth), "b": 1}, "default": "b"}}})
    # An incremental compile against live tables refuses it too, and keeps them.
    engine = make(Snapshot(flags={"f": Flag(variants={"a": 0, "b": 1}, default="b")}))
    with pytest.raises(SnapshotError, match="flags.f.variants.a"):
        engine.swap(snap)
    assert engine.value("f") == 1


def test_a_python_snapshot_with_a_value_just_within_the_depth_compiles(make):
    value = _deep(MAX_VALUE_DEPTH - 6)  # flags.f.variants.a and the lists: 100 levels
    engine = make(Snapshot(flags={"f": Flag(variants={"a": value, "b": 1}, default="a")}))
    assert engine.variant("f") == "a"
    rules = [Rule(serve="a")]
    engine.swap(
        Snapshot(flags={"f": Flag(variants={"a": value, "b": 1}, default="b", rules=rules)})
    )
    assert engine.variant("f") == "a"


# msgspec Structs are not validated when built in Python: wrong types in a Snapshot
# raised AttributeError or TypeError from the compiler, and an attribute name that is
# no string compiled on the reference evaluator and raised TypeError on the compiled one.
WRONGLY_TYPED = {
    "flag key": (Snapshot(flags={1: Flag(default="off")}), "flags: a flag key must be a string"),
    "rules None": (
        Snapshot(flags={"f": Flag(default="off", rules=None)}),  # type: ignore[arg-type]
        "flags.f.rules: expected array, got None",
    ),
    "variants list": (
        Snapshot(flags={"f": Flag(default="a", variants=["a"])}),  # type: ignore[arg-type]
        "flags.f.variants: expected object, got array",
    ),
    "eq a list": (
        Snapshot(flags={"f": Flag(default="off", rules=[Rule(when=Condition(attr="a", eq=[1]))])}),
        "flags.f.rules[0].when.eq: expected bool | int | float | str, got array",
    ),
    "attr an int": (
        Snapshot(flags={"f": Flag(default="off", rules=[Rule(when=Condition(attr=5, eq="x"))])}),
        "flags.f.rules[0].when.attr: expected str, got int",
    ),
    "bucket_by an int": (
        Snapshot(flags={"f": Flag(default="off", bucket_by=[7])}),  # type: ignore[list-item]
        "flags.f.bucket_by",
    ),
    "prerequisite an int": (
        Snapshot(flags={"f": Flag(default="off", prerequisites=[5])}),  # type: ignore[list-item]
        "flags.f.prerequisites[0]: expected a flag key or a prerequisite, got 5",
    ),
    "flag a string": (Snapshot(flags={"f": "x"}), "flags.f: expected object, got str"),
    "segment attr an int": (
        Snapshot(segments={"s": Condition(attr=5, eq="x")}, flags={"f": Flag(default="off")}),
        "segments.s.attr: expected str, got int",
    ),
}


@pytest.mark.parametrize("case", list(WRONGLY_TYPED))
def test_a_wrongly_typed_python_snapshot_is_a_snapshot_error_on_both(make, case):
    snap, message = WRONGLY_TYPED[case]
    with pytest.raises(SnapshotError) as err:
        make(snap)
    assert message in str(err.value)
    engine = make({"flags": {"f": {"default": "on"}}})
    with pytest.raises(SnapshotError):
        engine.swap(snap)  # incremental against live tables: refused the same way
    assert engine.is_enabled("f") is True


def test_plain_data_in_place_of_structs_compiles_as_a_document_would(make_py_and_c):
    snap = Snapshot(
        flags={"f": Flag(default="off", rules=[{"when": {"attr": "a", "eq": "x"}, "serve": "on"}])}  # type: ignore[list-item]
    )
    for build in make_py_and_c:
        engine = build(snap)
        assert engine.is_enabled("f", {"a": "x"}) is True
        assert engine.is_enabled("f", {"a": "y"}) is False


def _segment_chain(n: int) -> dict:
    segments = {"s0": {"attr": "a", "eq": "x"}}
    for k in range(1, n):
        segments[f"s{k}"] = {"segment": f"s{k - 1}"}
    return segments


def test_a_segment_chain_too_deep_is_named_where_it_starts_not_at_its_last_test(make):
    # It was reported at segments.s0 (a single test, fine by itself), once per segment
    # and flag whose chain reached it.
    deep = len(_segment_chain(40)) - 1
    doc = {
        "segments": _segment_chain(40),
        "flags": {
            "f": {"default": "off", "rules": [{"when": {"segment": f"s{deep}"}, "serve": "on"}]}
        },
    }
    with pytest.raises(SnapshotError) as err:
        make(doc)
    text = str(err.value)
    assert (
        "segments.s33: conditions nested deeper than 32 levels through segments s33 -> s32" in text
    )
    assert "segments.s0:" not in text and text.count("nested deeper") == 1
    # A chain that fits as a segment, one level too deep under a flag's rule.
    doc = {
        "segments": _segment_chain(33),
        "flags": {"f": {"default": "off", "rules": [{"when": {"segment": "s32"}, "serve": "on"}]}},
    }
    with pytest.raises(SnapshotError) as err:
        make(doc)
    assert "flags.f: conditions nested deeper than 32 levels through segments s32 -> " in str(
        err.value
    )
    doc["flags"]["f"]["rules"][0]["when"] = {"segment": "s31"}
    assert make(doc).is_enabled("f", {"a": "x"}) is True


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("caf\u00e9", "cafe\u0301"),  # é, and e with a combining acute accent
        ("\u212aelvin_mode", "Kelvin_mode"),  # KELVIN SIGN reads as K
        ("\u00c5ngstr\u00f6m", "A\u030angstro\u0308m"),
    ],
)
def test_flag_keys_that_differ_only_in_unicode_form_are_refused(make, first, second):
    flags = {first: {"default": "on"}, second: {"default": "off"}}
    with pytest.raises(SnapshotError) as err:
        make({"flags": flags})
    assert f"flags.{second}: the same key as flags.{first} in another Unicode form" in str(
        err.value
    )
    # Added later, by an incremental compile against the live tables: refused too.
    engine = make({"flags": {first: {"default": "on"}}})
    with pytest.raises(SnapshotError, match="in another Unicode form"):
        engine.swap({"flags": flags})
    assert engine.is_enabled(first) is True
    # Keys that merely look alike in some fonts are different text: both compile.
    assert make({"flags": {"cafe": {"default": "on"}, first: {"default": "off"}}})
