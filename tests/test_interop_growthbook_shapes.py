"""GrowthBook import: malformed ``namespace``, ``range``, ``ranges``, ``coverage`` and
``filters``, against the real SDK (growthbook 4.0.0).

The SDK compares a user's bucket with range bounds in Python, lazily: ``inRange`` is
``r[0] <= n < r[1]`` and ``chooseVariation`` stops at the first range holding n, so a
value outside its types (``Tuple[float, float]``, ``Tuple[str, float, float]``, a list of
``Filter``) makes it raise for some users and not others, or never (``[2, null]``: ``2 <=
n`` is false first). cfgcore imports what the SDK evaluates with the SDK's answer for
every bucket, and refuses what it raises on, naming the key path and what is wrong; it
used to say ``malformed: a value of the wrong type (IndexError: ...)``.

The users cover every bucket of the hashes in play (version 1, 1,000 buckets), plus one
without a hash value, so "the SDK raises for some user" is decided, not sampled.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, growthbook
from cfgcore.interop._hashing import growthbook_hash
from tests.fuzz import examples

gb_sdk = pytest.importorskip("growthbook")

SEED = "s"  # the rules' and filters' seed
NS = "ns"  # the namespaces' id


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("growthbook").setLevel(logging.CRITICAL)


def _ids_per_bucket(seed: str) -> list[str]:
    """One user id for each of the 1,000 version-1 buckets of ``seed``."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < 1000:
        uid = f"u{i}"
        found.setdefault(growthbook_hash(seed, uid, 1), uid)
        i += 1
    return [found[b] for b in range(1000)]


USERS = [{"id": u} for u in _ids_per_bucket(SEED)] + [{}]
NS_USERS = [{"id": u} for u in _ids_per_bucket("__" + NS)] + [{}]


def _sdk(features: dict[str, Any], users: list[dict[str, Any]]) -> list[Any]:
    """The SDK's (value, on) per user, or the exception class it raised."""
    out: list[Any] = []
    try:
        sdk = gb_sdk.GrowthBook(attributes={}, features=copy.deepcopy(features))
    except Exception as exc:  # a feature it cannot build (rules that are no list)
        return [type(exc)] * len(users)
    try:
        for attrs in users:
            sdk.set_attributes(attrs)
            try:
                res = sdk.eval_feature("f")
            except Exception as exc:  # the SDK's own failure: TypeError, IndexError, ...
                out.append(type(exc))
            else:
                out.append((res.value, res.on))
    finally:
        sdk.destroy()
    return out


def _agree(make_py_and_c, rule: dict[str, Any], users: list[dict[str, Any]]) -> str | None:
    """Import ``rule``; assert cfgcore answers as the SDK for every user, or refuses
    where the SDK raises for some user. Returns the refusal's message, or None."""
    features = {"f": {"defaultValue": -1, "rules": [rule]}}
    want = _sdk(features, users)
    raised = [w for w in want if isinstance(w, type)]
    try:
        snap = growthbook.to_snapshot(copy.deepcopy(features))
    except InteropError as exc:
        message = str(exc)
        assert "malformed" not in message, message
        assert raised, f"cfgcore refused what the SDK evaluates: {message}"
        return message
    assert not raised, f"the SDK raises ({raised[0].__name__}) on what cfgcore imported"
    for make in make_py_and_c:
        engine = make(snap)
        for attrs, (value, on) in zip(users, want, strict=True):
            ctx = growthbook.context(attrs)
            got = growthbook.thaw(engine.evaluate("f", ctx).value)
            assert (got, engine.is_enabled("f", ctx)) == (value, on), (rule, attrs)
    return None


EXPERIMENT = {"key": "e", "seed": SEED, "variations": ["a", "b", "c"]}
FORCE = {"force": "on", "seed": SEED}


@pytest.mark.parametrize(
    "rule, users, message",
    [
        # namespace: [id, start, end]
        ({**EXPERIMENT, "namespace": [NS, 0]}, NS_USERS,
         r"rules\[0\]\.namespace: expected \[id, start, end\], got a list of 2"),
        ({**EXPERIMENT, "namespace": NS}, NS_USERS,
         r"rules\[0\]\.namespace: expected \[id, start, end\], got a string"),
        ({**EXPERIMENT, "namespace": {"id": NS}}, NS_USERS,
         r"rules\[0\]\.namespace: expected \[id, start, end\], got an object"),
        ({**EXPERIMENT, "namespace": 1}, NS_USERS,
         r"rules\[0\]\.namespace: expected \[id, start, end\], got a number"),
        ({**EXPERIMENT, "namespace": [NS, None, 0.5]}, NS_USERS,
         r"rules\[0\]\.namespace\[1\]: expected a number, got null"),
        ({**EXPERIMENT, "namespace": [NS, 0.2, "0.5"]}, NS_USERS,
         r"rules\[0\]\.namespace\[2\]: expected a number, got a string"),
        ({**EXPERIMENT, "namespace": [7, 0, 0.5]}, NS_USERS,
         r"rules\[0\]\.namespace\[0\]: expected a string \(the namespace id\), got a number"),
        # range: [start, end] of a force rule
        ({**FORCE, "range": [0.5]}, USERS,
         r"rules\[0\]\.range: expected \[start, end\], got a list of 1"),
        ({**FORCE, "range": "0.5"}, USERS,
         r"rules\[0\]\.range: expected \[start, end\], got a string"),
        ({**FORCE, "range": [0, None]}, USERS,
         r"rules\[0\]\.range\[1\]: expected a number, got null"),
        ({**FORCE, "range": [[0], 1]}, USERS,
         r"rules\[0\]\.range\[0\]: expected a number, got a list"),
        # coverage
        ({**FORCE, "coverage": "0.5"}, USERS,
         r"rules\[0\]\.coverage: expected a number, got a string"),
        ({**EXPERIMENT, "coverage": [0.5]}, USERS,
         r"rules\[0\]\.coverage: expected a number, got a list"),
        # ranges: a list of [start, end]
        ({**EXPERIMENT, "ranges": [[0, 0.3], [0.3]]}, USERS,
         r"rules\[0\]\.ranges\[1\]: expected \[start, end\], got a list of 1"),
        ({**EXPERIMENT, "ranges": [0, 0.5]}, USERS,
         r"rules\[0\]\.ranges\[0\]: expected \[start, end\], got a number"),
        ({**EXPERIMENT, "ranges": {"a": [0, 1]}}, USERS,
         r"rules\[0\]\.ranges: expected a list of \[start, end\], got an object"),
        ({**EXPERIMENT, "ranges": 1}, USERS,
         r"rules\[0\]\.ranges: expected a list of \[start, end\], got a number"),
        ({**EXPERIMENT, "ranges": [[0, 0.5], [0.5, None]]}, USERS,
         r"rules\[0\]\.ranges\[1\]\[1\]: expected a number, got null"),
        # filters: a list of {attribute, seed, hashVersion, ranges}
        ({**EXPERIMENT, "filters": {"seed": SEED}}, USERS,
         r"rules\[0\]\.filters: expected a list of filters, got an object"),
        ({**FORCE, "filters": 1}, USERS,
         r"rules\[0\]\.filters: expected a list of filters, got a number"),
        ({**FORCE, "filters": [[0, 1]]}, USERS,
         r"rules\[0\]\.filters\[0\]: expected an object, got a list"),
        ({**EXPERIMENT, "filters": [{"seed": SEED}]}, USERS,
         r"rules\[0\]\.filters\[0\]\.ranges: missing"),
        ({**FORCE, "filters": [{}]}, USERS, r"rules\[0\]\.filters\[0\]\.ranges: missing"),
        ({**FORCE, "filters": [{"seed": None, "ranges": [[0, 1]]}]}, USERS,
         r"rules\[0\]\.filters\[0\]\.seed: expected a string, got null"),
        ({**FORCE, "filters": [{"seed": SEED, "hashVersion": 1, "ranges": [[0, 0.5], [0.5]]}]},
         USERS, r"rules\[0\]\.filters\[0\]\.ranges\[1\]: expected \[start, end\], got a list of 1"),
        ({**FORCE, "filters": [{"seed": SEED, "ranges": None}]}, USERS,
         r"rules\[0\]\.filters\[0\]\.ranges: expected a list of \[start, end\], got null"),
        # a filter read only for users who passed the one before
        ({**EXPERIMENT, "filters": [{"seed": SEED, "hashVersion": 1, "ranges": [[0, 0.5]]},
                                    "x"]}, USERS,
         r"rules\[0\]\.filters\[1\]: expected an object, got a string"),
        # neither force nor variations: the SDK reads the filters first all the same
        ({"filters": [{"seed": SEED, "ranges": [5]}]}, USERS,
         r"rules\[0\]\.filters\[0\]\.ranges\[0\]: expected \[start, end\], got a number"),
    ],
)  # fmt: skip
def test_what_the_sdk_raises_on_is_refused_by_key_path(make_py_and_c, rule, users, message):
    refused = _agree(make_py_and_c, rule, users)
    assert refused is not None
    assert refused.startswith("features.f.rules[0]")  # the key path of what is refused
    assert re.search(message, refused), refused


@pytest.mark.parametrize(
    "rule, users",
    [
        # past the SDK's types, never raising: answered as the SDK answers
        ({**EXPERIMENT, "namespace": [NS, 0, 0.5, "extra"]}, NS_USERS),
        ({**EXPERIMENT, "namespace": [NS, 2, None]}, NS_USERS),  # 2 <= n is false first
        ({**EXPERIMENT, "namespace": [NS, False, True]}, NS_USERS),  # booleans compare as 0, 1
        ({**FORCE, "namespace": 7}, USERS),  # a force rule has no namespace
        ({**EXPERIMENT, "namespace": [NS, 0], "filters": [{"seed": SEED, "hashVersion": 1,
                                                           "ranges": [[0, 0.5]]}]}, USERS),
        ({**EXPERIMENT, "variations": ["a"], "namespace": 7}, USERS),  # never in the experiment
        ({**EXPERIMENT, "hashVersion": 3, "ranges": 7, "coverage": "x"}, USERS),  # no bucket
        ({**FORCE, "range": []}, USERS),  # falsy: every user with a bucket
        ({**FORCE, "range": [], "coverage": 0.3}, USERS),  # falsy: the coverage decides
        ({**FORCE, "range": [0.2, 0.6, "x"]}, USERS),
        ({**FORCE, "range": [0.1, 0.4], "coverage": "x"}, USERS),  # coverage unread
        ({**FORCE, "coverage": True}, USERS),
        ({**EXPERIMENT, "coverage": 10**400}, USERS),  # clamped to 1 before any float
        ({**EXPERIMENT, "weights": [10**400, 0, 0]}, USERS),  # not a valid vector: equal
        ({**EXPERIMENT, "ranges": [[0, 0.5], [0.5, 1], "never read"]}, USERS),
        ({**EXPERIMENT, "ranges": [[0, 0.5], [2, None]]}, USERS),  # 2 <= n is false first
        ({**EXPERIMENT, "ranges": [[0.1, 0.4]], "coverage": "x"}, USERS),
        ({**FORCE, "filters": [{"seed": SEED, "hashVersion": 1, "ranges": []}]}, USERS),
        ({**FORCE, "filters": [{"seed": SEED, "hashVersion": 1, "ranges": ""}]}, USERS),
        ({**FORCE, "filters": [{"hashVersion": 3}]}, USERS),  # no bucket: nobody, unread
        ({**FORCE, "filters": [{"seed": SEED, "hashVersion": 1, "ranges": [[0, 0.5]]},
                               {"seed": SEED, "hashVersion": 1, "ranges": [[0.3, 1]]}]}, USERS),
        ({**FORCE, "filters": [{"seed": SEED, "hashVersion": 1, "ranges": []}, "x"]}, USERS),
        ({**FORCE, "filters": [{"attribute": None, "seed": SEED, "hashVersion": 1,
                                "ranges": [[0, 0.5]]}]}, USERS),
    ],
)  # fmt: skip
def test_what_the_sdk_evaluates_is_imported_with_its_answers(make_py_and_c, rule, users):
    assert _agree(make_py_and_c, rule, users) is None


# -- generated shapes ---------------------------------------------------------------------
_ODD = st.sampled_from([None, "", "0.5", "x", [], {}, {"a": 1}, [0.5], True, False])
_BOUND = st.one_of(
    st.sampled_from([0, 0.25, 0.5, 0.75, 1, 2, -1, 0.999]),
    st.floats(-0.2, 1.2, allow_nan=False),
    _ODD,
)
_SPAN = st.one_of(st.lists(_BOUND, min_size=0, max_size=4), _ODD)
_RANGES = st.one_of(st.lists(_SPAN, min_size=0, max_size=4), _ODD)
_FILTER = st.one_of(
    st.fixed_dictionaries(
        {
            "seed": st.sampled_from([SEED, SEED, SEED, None, 0]),
            "hashVersion": st.sampled_from([1, 1, 1, 3]),
        },  # version 2's buckets: the table
        optional={"ranges": _RANGES},
    ),  # fmt: skip
    _ODD,
)


@st.composite
def _rules(draw: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    kind = draw(st.sampled_from(["namespace", "range", "coverage", "ranges", "filters"]))
    if kind == "namespace":
        ns = draw(st.one_of(st.lists(_BOUND, max_size=4).map(lambda b: [NS, *b]), _ODD))
        return {**EXPERIMENT, "namespace": ns}, NS_USERS
    if kind == "range":
        rule = {**FORCE, "range": draw(_SPAN)}
        if draw(st.booleans()):
            rule["coverage"] = draw(_BOUND)
        return rule, USERS
    if kind == "coverage":
        base = draw(st.sampled_from([FORCE, EXPERIMENT]))
        return {**base, "coverage": draw(_BOUND)}, USERS
    if kind == "ranges":
        return {**EXPERIMENT, "ranges": draw(_RANGES)}, USERS
    base = draw(st.sampled_from([FORCE, EXPERIMENT]))
    filters = draw(st.one_of(st.lists(_FILTER, min_size=1, max_size=2), _ODD))
    return {**base, "filters": filters}, USERS


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_rules())
def test_generated_shapes_answer_as_the_sdk_or_are_refused(make_py_and_c, case):
    rule, users = case
    _agree(make_py_and_c, rule, users)


@pytest.mark.parametrize("rules", [0, 1.5, True, False, "x", {"a": {"force": 1}}, {}, "", None])
def test_rules_that_are_no_list_answer_as_the_sdk_or_are_refused(make_py_and_c, rules):
    # the SDK makes a rule of each item: null, {} and "" hold none; 0 and False raise too
    features = {"f": {"defaultValue": -1, "rules": rules}}
    want = _sdk(features, USERS[:3])
    if isinstance(want[0], type):
        with pytest.raises(InteropError, match=r"features\.f\.rules: expected a list of rules"):
            growthbook.to_snapshot(copy.deepcopy(features))
    else:
        assert want[0] == (-1, True)
        for make in make_py_and_c:
            engine = make(growthbook.to_snapshot(copy.deepcopy(features)))
            assert growthbook.thaw(engine.evaluate("f", growthbook.context({})).value) == -1
