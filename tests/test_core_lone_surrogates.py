"""Text holding a lone surrogate is unusable to every operator, on both evaluators.

Half of a UTF-16 surrogate pair (``"\\ud800"``) is not a character: Python's ``json``
decodes the escape into a ``str`` that has no UTF-8 form (msgspec refuses it), and an
environment variable that is not UTF-8 reaches Python the same way. cfgcore's files
refuse such text everywhere (``files.tree_problem``), so no constant of a snapshot can
hold one. A context value holding one is therefore treated as cfgcore treats any value
it cannot read: *present but unusable*. Every operator but ``exists`` is false on it
(``ne`` and ``not_in`` included: the fail-closed answer, so a hostile value cannot slip
past a deny list), bucketing skips it for the next ``bucket_by`` attribute, and
``has_any`` skips such an element of an array. The peer SDKs compare such text as it
is, so this is the one place an imported flag may answer otherwise (README, "Importing
flags").
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz import examples

BOOL = {"on": True, "off": False}

# Constants a file can hold: any text without surrogates.
valid_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
surrogate = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)


@st.composite
def lone_surrogate_text(draw):
    """Text with at least one surrogate code point somewhere (a pair of halves in a
    Python str is two lone surrogates too: it still has no UTF-8 form)."""
    head, tail = draw(valid_text), draw(valid_text)
    middle = draw(st.lists(surrogate, min_size=1, max_size=3))
    return head + "".join(middle) + tail


def _condition(op, consts, ignore_case):
    cond = {"attr": "a"}
    if op in ("in", "not_in", "has_any"):
        cond[op] = consts
    elif op == "exists":
        cond[op] = True
    elif op == "semver_eq":
        cond[op] = "1.2.3"
    elif op == "matches":
        cond[op] = "^.*$"  # matches every valid text: only the surrogate can stop it
    else:
        cond[op] = consts[0]
    if ignore_case and op in ("eq", "ne", "in", "not_in", "has_any"):
        cond["ignore_case"] = True
    return cond


OPERATORS = [
    "eq",
    "ne",
    "in",
    "not_in",
    "starts_with",
    "ends_with",
    "contains",
    "matches",
    "semver_eq",
    "exists",
]


def _flag(when):
    return {"variants": BOOL, "default": "off", "rules": [{"when": when, "serve": "on"}]}


@settings(max_examples=examples(150), deadline=None)
@given(
    op=st.sampled_from(OPERATORS),
    consts=st.lists(valid_text, min_size=1, max_size=3),
    ignore_case=st.booleans(),
    value=lone_surrogate_text(),
    negate=st.booleans(),
    near=st.booleans(),
)
def test_a_lone_surrogate_answers_as_an_unusable_value(
    make_py_and_c, op, consts, ignore_case, value, negate, near
):
    if near:  # what would match but for the surrogate: the constant, then the surrogate
        value = ("1.2.3" if op == "semver_eq" else consts[0]) + value
    cond = _condition(op, consts, ignore_case)
    if negate:
        cond = {"not": cond}
    # the fail-closed answer: only `exists` holds on it, and `not` turns that
    on = (op == "exists") is not negate
    for make in make_py_and_c:
        engine = make({"flags": {"f": _flag(cond)}})
        got = engine.evaluate("f", {"a": value})
        unusable = engine.evaluate("f", {"a": {"an": "object"}})
        assert (got.variant, got.reason) == (unusable.variant, unusable.reason)
        assert (got.variant == "on") is on
        assert engine.is_enabled("f", engine.context({"a": value})) is on


@settings(max_examples=examples(100), deadline=None)
@given(value=lone_surrogate_text(), fallback=valid_text.filter(bool))
def test_bucketing_skips_a_lone_surrogate_for_the_next_attribute(make_py_and_c, value, fallback):
    flags = {
        "split": {
            "variants": {"a": "a", "b": "b", "c": "c"},
            "default": "a",
            "rules": [{"split": {"a": 34, "b": 33, "c": 33}}],
        },
        "half": {"variants": BOOL, "default": "off", "rules": [{"rollout": 50, "serve": "on"}]},
    }
    for make in make_py_and_c:
        engine = make({"flags": flags})
        for key in flags:
            both = engine.evaluate(key, {"user_id": value, "targeting_key": fallback})
            fallback_only = engine.evaluate(key, {"targeting_key": fallback})
            assert (both.variant, both.reason) == (fallback_only.variant, fallback_only.reason)
            # with nothing else to bucket by, the rule is skipped as for a user without an id
            alone = engine.evaluate(key, {"user_id": value})
            assert (alone.variant, alone.reason) == ("a" if key == "split" else "off", "DEFAULT")


@settings(max_examples=examples(100), deadline=None)
@given(value=lone_surrogate_text(), const=valid_text, others=st.lists(valid_text, max_size=3))
def test_has_any_skips_an_element_holding_a_lone_surrogate(make_py_and_c, value, const, others):
    for make in make_py_and_c:
        engine = make({"flags": {"f": _flag({"attr": "a", "has_any": [const]})}})
        elements = [value, *others]
        assert engine.is_enabled("f", {"a": elements}) is (const in others)
        assert engine.is_enabled("f", {"a": [*elements, const]}) is True
