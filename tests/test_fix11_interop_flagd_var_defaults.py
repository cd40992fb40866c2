"""flagd ``{"var": [name, default]}`` (JSONLogic's var with a default value) is lowered
where flagd's evaluators answer it the same way, and refused naming the reason where
they do not.

What flagd's evaluators answer (read from their sources, checked against the Python one
here, ``FlagdCore``): the default where the attribute is missing, and where it is null
in the Go (diegoholiveira/jsonlogic, flagd itself) and Python (json-logic, the in-process
provider) evaluators; the value itself where it is set. The JavaScript evaluator
(json-logic-engine) reads a null attribute as null, not the default: cfgcore follows
flagd and the Python provider. A default that is an operation (an object of one key) is
evaluated by the Python evaluator and not by Go's: refused. Every position the importer
takes a var in is covered: comparisons, ``in``, ``starts_with``/``ends_with``,
``sem_ver``, truthiness under ``if``/``and``/``or``/``!``/``!!``, a variant named by a
var, and fractional bucketing keys (a var, a ``cat``), on both cfgcore evaluators.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest

from cfgcore.compiler import compile_snapshot
from cfgcore.interop import InteropError, flagd

core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import OpenFeatureError  # noqa: E402

VARIANTS = {"yes": "yes", "no": "no", "maybe": "maybe"}
# the values an attribute takes in the contexts (None: present and null)
VALUES = [None, "", "a", "free", "yes", "null", "10", 0, 1, 1.5, True, False, [], ["a"],
          ["yes", 5], {"k": 1}, "1.2.3", "2.0.0-rc.1"]  # fmt: skip
# defaults of every JSON type (null is no default: flagd reads it as none)
DEFAULTS = ["free", "", "yes", "1.2.3", 0, 1, 2.5, -1, True, False, [], ["a"], {"k": 1, "j": 2}]


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)


def _doc(targeting: Any, default: str | None = "no") -> dict[str, Any]:
    flag: dict[str, Any] = {"state": "ENABLED", "variants": dict(VARIANTS), "targeting": targeting}
    if default is not None:
        flag["defaultVariant"] = default
    return {"flags": {"f": flag}}


def _contexts() -> list[tuple[str | None, dict[str, Any]]]:
    out: list[tuple[str | None, dict[str, Any]]] = [(None, {}), ("u1", {}), ("", {})]
    for v in VALUES:
        out += [(None, {"t": v}), ("u1", {"t": v}), ("u2", {"o": {"t": v}})]
    out.append(("u3", {"o": "not an object"}))
    return out


def _core(doc: dict[str, Any]) -> Any:
    """flagd's evaluator holding ``doc`` (a copy): it answers every context asked of it
    from the flags it parsed, changing none."""
    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    return core


def _peer(core: Any, tk: str | None, attrs: dict[str, Any]) -> tuple:
    try:
        p = core.resolve_string_value("f", "FB", EvaluationContext(tk, copy.deepcopy(attrs)))
    except OpenFeatureError as exc:
        return ("FB", None, "ERROR", str(exc.error_code).split(".")[-1])
    code = p.error_code and str(p.error_code).split(".")[-1]
    return (p.value, p.variant, str(p.reason).split(".")[-1], code)


def _agree(make_py_and_c, doc: dict[str, Any]) -> None:
    snap = flagd.to_snapshot(copy.deepcopy(doc))  # before the fix: refused
    tables = compile_snapshot(snap)  # compiled once: each engine installs the tables
    engines = [make(tables) for make in make_py_and_c]
    core = _core(doc)
    for tk, attrs in _contexts():
        want = _peer(core, tk, attrs)
        ctx = flagd.context(tk, attrs)  # (an evaluation reads a context, never changes it)
        for engine in engines:
            r = flagd.resolve(engine, "f", ctx, "FB")
            got = (r.value, r.variant, r.reason, r.error_code)
            assert got == want, (doc["flags"]["f"]["targeting"], tk, attrs)


def _conditions(d: Any) -> list[Any]:
    v, nested = {"var": ["t", d]}, {"var": ["o.t", d]}
    return [
        {"==": [v, "free"]},
        {"!=": ["1", v]},
        {"===": [v, 1]},
        {"!==": [nested, "yes"]},
        {"<": [v, 2]},
        {">=": ["b", v]},
        {"<": [0, nested, 5]},
        {
            "<": [
                {"var": "$flagd.timestamp"},
                {"var": ["t", d if not isinstance(d, (list, dict)) else 0]},
            ]
        },
        {"in": [v, ["a", "free", 1, None]]},
        {"in": ["a", v]},
        {"starts_with": [v, "fr"]},
        {"ends_with": [nested, "3"]},
        {"sem_ver": [v, ">=", "1.0.0"]},
        {"sem_ver": [nested, "^", "1.0.0"]},
        v,
        {"!": v},
        {"!!": [nested]},
        {"and": [v, {"==": [{"var": "t"}, None]}]},
        {"or": [{"var": ["zz", d]}, {"==": [v, "a"]}]},
    ]


@pytest.mark.parametrize("d", DEFAULTS, ids=repr)
def test_conditions_over_a_var_with_a_default_answer_as_flagd(make_py_and_c, d):
    for cond in _conditions(d):
        _agree(make_py_and_c, _doc({"if": [cond, "yes", "maybe"]}))
        if "var" in cond and isinstance(d, (list, dict)):
            # the value names a variant: an array or object names none (refused, as
            # any targeting result that is no variant name)
            with pytest.raises(InteropError, match="is not a variant name"):
                flagd.to_snapshot(_doc(cond))
        elif "and" in cond or "or" in cond:
            # a top-level and/or names the variant of an operand's value (here a var's):
            # refused (before: lowered as if it named "true"/"false")
            with pytest.raises(InteropError, match="naming a variant with an operand"):
                flagd.to_snapshot(_doc(cond))
        else:  # its result names "true"/"false" (or null: the default)
            _agree(make_py_and_c, _doc(cond))


@pytest.mark.parametrize("d", ["yes", "maybe", "nope", "", 0, 1, True], ids=repr)
def test_a_variant_named_by_a_var_with_a_default_answers_as_flagd(make_py_and_c, d):
    _agree(make_py_and_c, _doc({"var": ["t", d]}))
    _agree(make_py_and_c, _doc({"if": [{"var": "o"}, {"var": ["o.t", d]}, "no"]}, None))
    _agree(make_py_and_c, _doc({"fractional": [[{"var": ["t", d]}, 1], ["no", 1]]}))


@pytest.mark.parametrize("d", ["free", "", "yes", 0, 1, 2.5, True, False, {"k": 1, "j": 2}],
                         ids=repr)  # fmt: skip
def test_fractional_bucketing_keys_with_a_default_answer_as_flagd(make_py_and_c, d):
    entries = [["yes", 1], ["no", 1], ["maybe", 2]]
    for key in (
        {"var": ["t", d]},
        {"var": ["o.t", d]},
        {"var": ["targetingKey", d]},
        {"var": ["$flagd.flagKey", d]},
        {"var": ["$flagd.other", d]},
        {"cat": ["p", {"var": ["t", d]}, "s"]},
        {"cat": [{"var": "$flagd.flagKey"}, {"var": ["o.t", d]}]},
    ):
        _agree(make_py_and_c, _doc({"fractional": [key, *entries]}))
    _agree(make_py_and_c, _doc({"if": [{"fractional": [{"var": ["t", d]}, ["a", 1], ["", 1]]},
                                       "yes", "no"]}))  # fmt: skip


def test_a_top_level_and_or_of_tests_names_true_or_false_as_flagd(make_py_and_c):
    v = {"var": ["t", "free"]}
    both = {"and": [{"==": [v, "free"]}, {"!": [{"var": ["o.t", 0]}]}]}
    either = {"or": [{"<": [v, 2]}, {"in": [v, ["a", None]]}, True]}
    for cond in (both, either):
        doc = _doc(cond)
        doc["flags"]["f"]["variants"].update({"true": "T", "false": "F"})
        _agree(make_py_and_c, doc)


def test_a_null_default_is_no_default(make_py_and_c):
    _agree(make_py_and_c, _doc({"if": [{"==": [{"var": ["t", None]}, 0]}, "yes", "no"]}))
    _agree(make_py_and_c, _doc({"fractional": [{"var": ["t", None]}, ["yes", 1], ["no", 1]]}))


def test_the_flag_key_and_timestamp_never_read_their_default(make_py_and_c):
    _agree(make_py_and_c, _doc({"if": [{"==": [{"var": ["$flagd.flagKey", "g"]}, "f"]}, "yes"]}))
    cond = {">": [{"var": ["$flagd.timestamp", 0]}, 1_000_000]}
    _agree(make_py_and_c, _doc({"if": [cond, "yes", "no"]}))


@pytest.mark.parametrize(
    ("targeting", "why"),
    [
        ({"==": [{"var": ["t", {"var": "u"}]}, 1]}, "an operation"),
        ({"==": [{"var": ["t", [{"cat": ["a"]}]]}, 1]}, "an operation"),
        ({"==": [{"var": ["t", 1, 2]}, 1]}, "var with 3 arguments"),
        ({"<": [{"var": ["a", 1]}, {"var": ["b", 2]}]}, "two vars with default values"),
        ({"<": [{"var": "$flagd.timestamp"}, {"var": ["t", [1]]}]},
         "only a string, number or boolean default"),
        ({"fractional": [{"var": ["t", ["yes"]]}, ["yes", 1], ["no", 1]]},
         "flagd v3 reads an array as a bucket entry"),
    ],
)  # fmt: skip
def test_what_cannot_be_lowered_exactly_is_refused_with_the_reason(targeting, why):
    with pytest.raises(InteropError) as err:
        flagd.to_snapshot(_doc({"if": [targeting, "yes", "no"]}), source="flags.json")
    assert "flags.json" in str(err.value) and "flags.f.targeting" in str(err.value)
    assert why in str(err.value)


def test_a_cat_with_a_default_under_v2_is_refused_with_the_reason():
    doc = _doc({"fractional": [{"cat": [{"var": ["t", "x"]}]}, ["yes", 1], ["no", 1]]})
    with pytest.raises(InteropError, match="fractional v2"):
        flagd.to_snapshot(doc, fractional="v2")


def test_v2_bucketing_keys_with_a_default_hash_the_default_where_the_value_is_missing(
    make_py_and_c,
):
    # flagd v2: a string key hashes itself; any other key falls back to flagKey +
    # targetingKey. A missing value reads the default: the same bucket as that string.
    entries = [["yes", 1], ["no", 1], ["maybe", 1]]
    doc = _doc({"fractional": [{"var": ["t", "fallback"]}, *entries]})
    same = _doc({"fractional": ["fallback", *entries]})
    other = _doc({"fractional": [{"var": ["t", 7]}, *entries]})
    pair = _doc({"fractional": [*entries]})
    snaps = [flagd.to_snapshot(copy.deepcopy(d), fractional="v2") for d in (doc, same, other, pair)]
    for make in make_py_and_c:
        e_doc, e_same, e_other, e_pair = (make(s) for s in snaps)
        for tk in ("u1", "u2", "u3", "u4", "u5"):
            missing = flagd.context(tk, {})
            assert e_doc.variant("f", missing) == e_same.variant("f", missing)
            assert e_other.variant("f", missing) == e_pair.variant("f", missing)
            there = flagd.context(tk, {"t": "fallback"})
            assert e_doc.variant("f", there) == e_same.variant("f", there)
