"""Unleash import: a field of the wrong type that makes yggdrasil (the engine
UnleashClient runs) reject the whole payload is refused by its key path; a field it
takes is answered as it answers.

Checked against yggdrasil, field by field: a feature variant's ``weightType`` other
than "fix" or "variable" (a strategy variant's is not read), strategy ``parameters``
no object (a list too), a constraint's ``inverted`` or ``caseInsensitive`` null or no
boolean, a ``sortOrder`` no 32-bit integer, ``impressionData`` or ``stale`` no
boolean, ``project``, ``type``, ``description``, ``createdAt`` or ``lastSeenAt`` no
string or (those two) no date and time as chrono reads one ("2024-01-01", no zone, ""),
a payload ``query`` no object or ``version`` no integer from 0 to 2**32 - 1, a segment
id (or a reference to one) no 32-bit integer. cfgcore imported
them (a list as parameters was read as none), or refused a float segment id saying
"expected a number, got a number".

Then the payload itself: ``version`` missing, ``features`` null, ``query`` fields
(``tags`` a list of lists of strings, ``projects`` a list of strings, ``namePrefix`` and
``environment`` strings, ``inlineSegmentConstraints`` a boolean), ``meta`` (``etag``,
``queryHash`` strings, ``revisionId`` an integer from 0 to 2**64 - 1), and delta events
(``eventId`` an integer from 0 to 2**32 - 1, the fields each event type needs, a
``segmentId`` a 32-bit integer): cfgcore imported all of these, answering where the
SDK knows no feature.
"""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import InteropError, unleash
from tests.fuzz import examples

ygg = pytest.importorskip("yggdrasil_engine.engine")

G = {"name": "g", "enabled": True, "strategies": []}
A = {"name": "A", "weight": 500, "stickiness": "default"}
B = {"name": "B", "weight": 500, "stickiness": "default"}
CONSTRAINT = {"contextName": "userId", "operator": "IN", "values": ["u1", "u2", "u3"]}
I32 = (-(2**31), 2**31 - 1)


def _feature(**fields: Any) -> dict[str, Any]:
    return {"name": "f", "enabled": True, "strategies": [{"name": "default"}], **fields}


def _strategy(**fields: Any) -> dict[str, Any]:
    return {"features": [_feature(strategies=[{"name": "default", **fields}]), G]}


def _variant(**fields: Any) -> dict[str, Any]:
    return {"features": [_feature(variants=[{**A, **fields}, B]), G]}


def _strategy_variant(**fields: Any) -> dict[str, Any]:
    return _strategy(variants=[{**A, **fields}, B])


def _constraint(**fields: Any) -> dict[str, Any]:
    return _strategy(constraints=[{**CONSTRAINT, **fields}])


def _segment_constraint(**fields: Any) -> dict[str, Any]:
    return {
        "features": [_feature(strategies=[{"name": "default", "segments": [1]}]), G],
        "segments": [{"id": 1, "constraints": [{**CONSTRAINT, **fields}]}],
    }


def _segment_id(seg_id: Any, ref: Any = 1) -> dict[str, Any]:
    return {
        "features": [_feature(strategies=[{"name": "default", "segments": [ref]}]), G],
        "segments": [{"id": seg_id, "constraints": [CONSTRAINT]}],
    }


def _top(**fields: Any) -> dict[str, Any]:
    return {"features": [_feature(**fields), G]}


def _delta(*events: dict[str, Any]) -> dict[str, Any]:
    """A delta-API payload: a hydration holding f and g, then ``events``."""
    hydration = {"type": "hydration", "eventId": 1, "features": [_feature(), G], "segments": []}
    return {"events": [hydration, *events]}


def _hydration(**fields: Any) -> dict[str, Any]:
    event = {"type": "hydration", "eventId": 1, "features": [_feature(), G], "segments": []}
    return {"events": [{**event, **fields}]}


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return _delta({"type": kind, "eventId": 2, **fields})


SEG = {"id": 1, "constraints": [CONSTRAINT]}
S = "features[0].strategies[0]"
C = f"{S}.constraints[0]"
SC = "segments[0].constraints[0]"
# (payload, what cfgcore's refusal says)
REFUSED: list[tuple[dict[str, Any], str]] = [
    (_variant(weightType="other"), "features[0]: malformed: variants[0].weightType: expected"),
    (_variant(weightType=""), "features[0]: malformed: variants[0].weightType: expected"),
    (_variant(weightType=5), "features[0]: malformed: variants[0].weightType: expected"),
    (_variant(weightType=True), "features[0]: malformed: variants[0].weightType: expected"),
    (_strategy(parameters=[]), f"{S}.parameters: expected an object, got a list"),
    (_strategy(parameters=["a"]), f"{S}.parameters: expected an object"),
    (_strategy(parameters="x"), f"{S}.parameters: expected an object"),
    (_constraint(inverted=None), f"{C}.inverted: expected a boolean, got null"),
    (_constraint(inverted=1), f"{C}.inverted: expected a boolean"),
    (_constraint(caseInsensitive=None), f"{C}.caseInsensitive: expected a boolean, got null"),
    (_constraint(caseInsensitive="true"), f"{C}.caseInsensitive: expected a boolean"),
    (_segment_constraint(inverted=None), f"{SC}.inverted: expected a boolean, got null"),
    (_segment_constraint(caseInsensitive=None), f"{SC}.caseInsensitive: expected a boolean, got"),
    (_strategy(sortOrder=1.5), f"{S}.sortOrder: expected an integer"),
    (_strategy(sortOrder=1.0), f"{S}.sortOrder: expected an integer"),
    (_strategy(sortOrder="1"), f"{S}.sortOrder: expected an integer"),
    (_strategy(sortOrder=True), f"{S}.sortOrder: expected an integer"),
    (_strategy(sortOrder=2**31), f"{S}.sortOrder: expected an integer"),
    (_strategy(sortOrder=-(2**31) - 1), f"{S}.sortOrder: expected an integer"),
    (_top(impressionData="yes"), "features[0].impressionData: expected a boolean, got a string"),
    (_top(impressionData=1), "features[0].impressionData: expected a boolean, got a number"),
    (_top(impressionData=0), "features[0].impressionData: expected a boolean, got a number"),
    (_top(stale="true"), "features[0].stale: expected a boolean, got a string"),
    (_top(project=5), "features[0].project: expected a string, got a number"),
    (_top(project=True), "features[0].project: expected a string, got a boolean"),
    (_top(type=[]), "features[0].type: expected a string, got a list"),
    (_top(type={}), "features[0].type: expected a string, got an object"),
    (_top(description=5), "features[0].description: expected a string, got a number"),
    (_top(description=["d"]), "features[0].description: expected a string, got a list"),
    (_top(createdAt=0), "features[0].createdAt: expected a string, got a number"),
    (_top(lastSeenAt=True), "features[0].lastSeenAt: expected a string, got a boolean"),
    (_top(createdAt="2024-01-01"), "features[0].createdAt: '2024-01-01' is not a date and time"),
    (_top(createdAt="2024-01-01T00:00:00"), "features[0].createdAt: '2024-01-01T00:00:00' is not"),
    (_top(createdAt=""), "features[0].createdAt: '' is not a date and time with a time zone"),
    (_top(createdAt="2024-02-30T00:00:00Z"), "features[0].createdAt: '2024-02-30T00:00:00Z' is"),
    (_top(createdAt="2024-01-01T00:00:00+24:00"), "features[0].createdAt: '2024-01-01T00:00:00"),
    (_top(lastSeenAt="2024-01-01"), "features[0].lastSeenAt: '2024-01-01' is not a date and time"),
    (_top(lastSeenAt="2024-01-01T24:00:00Z"), "features[0].lastSeenAt: '2024-01-01T24:00:00Z' is"),
    (_top(lastSeenAt="yesterday"), "features[0].lastSeenAt: 'yesterday' is not a date and time"),
    ({**_top(), "query": []}, "query: expected an object, got a list"),
    ({**_top(), "query": "x"}, "query: expected an object, got a string"),
    ({**_top(), "query": 1}, "query: expected an object, got a number"),
    ({**_top(), "version": "2"}, "version: expected an integer from 0 to 4294967295, got a string"),
    ({**_top(), "version": "x"}, "version: expected an integer from 0 to 4294967295, got a string"),
    ({**_top(), "version": None}, "version: expected an integer from 0 to 4294967295, got null"),
    ({**_top(), "version": 2.0}, "version: expected an integer from 0 to 4294967295, got a number"),
    ({**_top(), "version": True}, "version: expected an integer from 0 to 4294967295, got a bool"),
    ({**_top(), "version": -1}, "version: expected an integer from 0 to 4294967295, got -1"),
    ({**_top(), "version": 2**32}, "version: expected an integer from 0 to 4294967295, got 4294"),
    ({**_top(), "query": {"tags": "t"}}, "query.tags: expected a list of lists of strings"),
    ({**_top(), "query": {"tags": ["t"]}}, "query.tags: expected a list of lists of strings"),
    ({**_top(), "query": {"tags": [[1]]}}, "query.tags: expected a list of lists of strings"),
    ({**_top(), "query": {"tags": [None]}}, "query.tags: expected a list of lists of strings"),
    ({**_top(), "query": {"projects": "p"}}, "query.projects: expected a list of strings"),
    ({**_top(), "query": {"projects": [None]}}, "query.projects: expected a list of strings"),
    ({**_top(), "query": {"namePrefix": 3}}, "query.namePrefix: expected a string, got a"),
    ({**_top(), "query": {"environment": []}}, "query.environment: expected a string, got"),
    ({**_top(), "query": {"inlineSegmentConstraints": 1}}, "query.inlineSegmentConstraints:"),
    ({**_top(), "meta": 5}, "meta: expected an object, got a number"),
    ({**_top(), "meta": []}, "meta: expected an object, got a list"),
    ({**_top(), "meta": {"etag": 5}}, "meta.etag: expected a string, got a number"),
    ({**_top(), "meta": {"queryHash": True}}, "meta.queryHash: expected a string, got a bool"),
    ({**_top(), "meta": {"revisionId": "5"}}, "meta.revisionId: expected an integer from 0 to"),
    ({**_top(), "meta": {"revisionId": -1}}, "meta.revisionId: expected an integer from 0 to"),
    ({**_top(), "meta": {"revisionId": 2**64}}, "meta.revisionId: expected an integer from 0"),
    ({**_top(), "meta": {"revisionId": 1.0}}, "meta.revisionId: expected an integer from 0 to"),
    ({"features": None}, "features: expected a list, got null"),
    (_hydration(eventId=None), "events[0].eventId: expected an integer from 0 to 4294967295"),
    (_hydration(eventId="1"), "events[0].eventId: expected an integer from 0 to 4294967295"),
    (_hydration(eventId=-1), "events[0].eventId: expected an integer from 0 to 4294967295, got"),
    (_hydration(eventId=2**32), "events[0].eventId: expected an integer from 0 to 4294967295"),
    (_hydration(eventId=1.0), "events[0].eventId: expected an integer from 0 to 4294967295"),
    (_hydration(eventId=True), "events[0].eventId: expected an integer from 0 to 4294967295"),
    (_hydration(segments=None), "events[0].segments: expected a list, got null"),
    (_hydration(segments={}), "events[0].segments: expected a list, got an object"),
    (_hydration(features=None), "events[0].features: expected a list, got null"),
    (_hydration(type="Hydration"), "events[0].type: unknown delta event type 'Hydration'"),
    (_hydration(type=5), "events[0].type: unknown delta event type 5"),
    (_event("feature-updated", feature=None), "events[1].feature: expected an object, got null"),
    (_event("feature-removed", featureName="f"), "events[1].project: expected a string, got"),
    (_event("feature-removed", featureName=5, project="p"), "events[1].featureName: expected"),
    (_event("feature-removed", featureName="f", project=None), "events[1].project: expected"),
    (_event("segment-updated", segment=None), "events[1].segment: expected an object, got null"),
    (_event("segment-updated", segment={**SEG, "id": "1"}), "events[1].segment.id: expected"),
    (_event("segment-removed"), "events[1].segmentId: missing"),
    (_event("segment-removed", segmentId="1"), "events[1].segmentId: expected an integer, got"),
    (_event("segment-removed", segmentId=1.0), "events[1].segmentId: expected an integer, got"),
    (_event("segment-removed", segmentId=2**31), "events[1].segmentId: expected an integer from"),
    ({"events": None}, "events: expected a list, got null"),
    ({"events": {}}, "events: expected a list, got an object"),
    (_segment_id(1.0), "segments[0].id: expected an integer, got a number"),
    (_segment_id(1.5), "segments[0].id: expected an integer, got a number"),
    (_segment_id("1"), "segments[0].id: expected an integer, got a string"),
    (_segment_id(2**31, 2**31), "segments[0].id: expected an integer from"),
    (_segment_id(1, 2**31), f"{S}.segments[0]: expected an integer from"),
]  # fmt: skip

# taken by yggdrasil: answered as it answers
ACCEPTED: list[dict[str, Any]] = [
    _variant(weightType="fix"),
    _variant(weightType="variable"),
    _variant(weightType=None),
    _strategy_variant(weightType="other"),  # not read on a strategy variant
    _strategy_variant(weightType=5),
    _strategy(parameters=None),
    _strategy(parameters={}),
    _constraint(inverted=True),
    _constraint(inverted=False),
    _constraint(caseInsensitive=True),
    _segment_constraint(inverted=True),
    _strategy(sortOrder=None),
    _strategy(sortOrder=-1),
    _strategy(sortOrder=I32[0]),
    _strategy(sortOrder=I32[1]),
    _top(impressionData=True),
    _top(impressionData=None),
    _top(stale=True),
    _top(stale=None),
    _top(project="p", type="release", description="d"),
    _top(project=None, type=None, description=None),
    _top(createdAt="2024-01-01T00:00:00Z", lastSeenAt=None),
    # chrono's relaxed RFC 3339, which yggdrasil reads them with
    _top(createdAt="2024-01-01 00:00:00Z", lastSeenAt="2024-01-01t00:00:00.123456789z"),
    _top(createdAt=" 2024-01-01T00:00:00+0200 ", lastSeenAt="2024-01-01T23:59:60 UTC"),
    _top(createdAt="+2024-1-1T1:1:1-00:00", lastSeenAt="2024-02-29T00:00:00\u221223:59"),
    {**_top(), "query": {}},
    {**_top(), "query": {"project": ["p"], "other": 1}},
    {**_top(), "query": None},
    {**_top(), "version": 0},
    {**_top(), "version": 2**32 - 1},
    {**_top(), "query": {"tags": [["a", "b"], []], "projects": [], "namePrefix": "n",
                         "environment": "e", "inlineSegmentConstraints": False}},
    {**_top(), "query": {"tags": None, "projects": None, "namePrefix": None,
                         "environment": None, "inlineSegmentConstraints": None}},
    {**_top(), "query": {"name_prefix": 3, "other": [1]}},  # fields it does not read
    {**_top(), "meta": None},
    {**_top(), "meta": {}},
    {**_top(), "meta": {"etag": "e", "revisionId": 2**64 - 1, "queryHash": "h", "x": 1}},
    {**_top(), "meta": {"etag": None, "revisionId": None, "queryHash": None}},
    {**_top(), "meta": {"revision_id": "x", "query_hash": 5}},
    _hydration(eventId=0),
    _hydration(eventId=2**32 - 1),
    _hydration(segments=[SEG]) | {"version": "x", "query": 5},  # read as a delta
    _delta({"type": "hydration", "eventId": 2, "features": [G, _feature(enabled=False)],
            "segments": []}),
    _event("feature-updated", feature=_feature(enabled=False)),
    _event("feature-removed", featureName="f", project="p"),
    _event("feature-removed", featureName="unknown", project=""),
    _event("segment-updated", segment=SEG),
    _event("segment-removed", segmentId=1),
    _event("segment-removed", segmentId=I32[0]),
    _event("segment-removed", segmentId=I32[1]),
    _segment_id(I32[1], I32[1]),
    _segment_id(I32[0], I32[0]),
    # strategies are evaluated in payload order: a sortOrder does not reorder them
    {"features": [_feature(strategies=[
        {"name": "default", "sortOrder": 2, "variants": [{**A, "weight": 1000}]},
        {"name": "default", "sortOrder": 1, "variants": [{**B, "weight": 1000}]},
    ]), G]},
]  # fmt: skip

# (each with a userId: with none, "default" stickiness is random)
CONTEXTS = [{"userId": f"u{i}"} for i in range(12)]


@pytest.fixture(autouse=True, scope="module")
def _quiet() -> Any:
    logger = logging.getLogger("yggdrasil_engine")
    old = logger.level
    logger.setLevel(logging.CRITICAL)
    yield
    logger.setLevel(old)


def _peer(payload: dict[str, Any]) -> Any:
    engine = ygg.UnleashEngine()
    try:
        engine.take_state(json.dumps(payload))
    except (TypeError, KeyError):
        # the SDK's Python side reads some malformed payloads after its engine took or
        # rejected them, and fails there: what counts is what the engine answers
        pass
    return engine


def _rejected(payload: dict[str, Any]) -> bool:
    """yggdrasil rejects the whole payload: g, always on otherwise, is unknown."""
    return _peer(payload).is_enabled("g", {}).is_enabled is False


@pytest.mark.parametrize("payload, message", REFUSED, ids=range(len(REFUSED)))
def test_what_the_engine_rejects_is_refused_by_key_path(payload, message):
    payload = {"version": 2, **payload}
    assert _rejected(payload)
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(copy.deepcopy(payload))
    assert message in str(err.value)
    if message.startswith("features["):  # the rest of the payload can still be taken
        snap = unleash.to_snapshot(copy.deepcopy(payload), on_error="skip")
        assert set(snap.flags) == {"g"}


@pytest.mark.parametrize("payload", ACCEPTED, ids=range(len(ACCEPTED)))
def test_what_the_engine_takes_is_answered_as_it_answers(make, payload):
    payload = {"version": 2, **payload}
    peer = _peer(payload)
    assert peer.is_enabled("g", {}).is_enabled is True
    engine = make(unleash.to_snapshot(copy.deepcopy(payload)))
    for ctx in CONTEXTS:
        mine = engine.context(unleash.context(ctx))
        assert engine.is_enabled("f", mine) is peer.is_enabled("f", ctx).is_enabled, ctx
        got = unleash.get_variant(engine, "f", mine)["name"]
        assert got == peer.get_variant("f", ctx).variant.name, ctx


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(["", "fix", "x"]),
    lambda inner: st.lists(inner, max_size=2)
    | st.dictionaries(st.sampled_from("ab"), inner, max_size=2),
    max_leaves=3,
)  # fmt: skip
_PLACES = {
    "weightType": lambda v: _variant(weightType=v),
    "strategy weightType": lambda v: _strategy_variant(weightType=v),
    "parameters": lambda v: _strategy(parameters=v),
    "inverted": lambda v: _constraint(inverted=v),
    "caseInsensitive": lambda v: _segment_constraint(caseInsensitive=v),
    "sortOrder": lambda v: _strategy(sortOrder=v),
    "impressionData": lambda v: _top(impressionData=v),
    "stale": lambda v: _top(stale=v),
    "project": lambda v: _top(project=v),
    "type": lambda v: _top(type=v),
    "description": lambda v: _top(description=v),
    "segment id": lambda v: _segment_id(v, v),
}


_PLACES.update({
    "query.tags": lambda v: {**_top(), "query": {"tags": v}},
    "query.projects": lambda v: {**_top(), "query": {"projects": v}},
    "query.namePrefix": lambda v: {**_top(), "query": {"namePrefix": v}},
    "query.inlineSegmentConstraints": lambda v: {
        **_top(), "query": {"inlineSegmentConstraints": v}
    },
    "meta": lambda v: {**_top(), "meta": v},
    "meta.etag": lambda v: {**_top(), "meta": {"etag": v}},
    "meta.revisionId": lambda v: {**_top(), "meta": {"revisionId": v}},
    "eventId": lambda v: _hydration(eventId=v),
    "hydration segments": lambda v: _hydration(segments=v),
    "featureName": lambda v: _event("feature-removed", featureName=v, project="p"),
    "project": lambda v: _event("feature-removed", featureName="x", project=v),
    "segmentId": lambda v: _event("segment-removed", segmentId=v),
    "event type": lambda v: _hydration(type=v),
    "createdAt": lambda v: _top(createdAt=v),
    "lastSeenAt": lambda v: _top(lastSeenAt=v),
    "query": lambda v: {**_top(), "query": v},
    "version": lambda v: {**_top(), "version": v},
})  # fmt: skip


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(place=st.sampled_from(sorted(_PLACES)), value=_JSON)
def test_any_json_value_is_refused_exactly_where_the_engine_rejects_it(place, value):
    payload = {"version": 2, **_PLACES[place](value)}
    try:
        unleash.to_snapshot(copy.deepcopy(payload))
    except InteropError as exc:
        assert _rejected(payload), (place, value, str(exc))
    else:
        assert not _rejected(payload), (place, value)


# A timestamp built of parts, each well-formed or not as chrono reads it.
_TIMESTAMPS = st.tuples(
    st.sampled_from(["2024", "2023", "2000", "1900", "0000", "1", "+2024", "-0001", "12345",
                     "+262142", "+262143", "-262143", "-262144", " 2024", "", "x"]),
    st.sampled_from(["-", " -", "/", ""]),
    st.sampled_from(["01", "1", "02", "12", "13", "00", " 02", "001"]),
    st.sampled_from(["-", "- ", ""]),
    st.sampled_from(["01", "1", "28", "29", "30", "31", "32", "00"]),
    st.sampled_from(["T", "t", " ", "  ", "\t", "", "TT"]),
    st.sampled_from(["00", "0", "23", "24", " 12"]),
    st.sampled_from([":", " :", ""]),
    st.sampled_from(["00", "0", "59", "60", "000"]),
    st.sampled_from([":", ""]),
    st.sampled_from(["00", "0", "59", "60", "61"]),
    st.sampled_from(["", ".", ".5", ".123456789", ".1234567891", ",5", ". 5"]),
    st.sampled_from(["", " ", "\u3000"]),
    st.sampled_from(["Z", "z", "UTC", "utc", "U", "+02:00", "+0200", "+02", "+2:00", "-23:59",
                     "+24:00", "+00:60", "\u221201:00", "+02 30", "+02::30", "+02:00:00", "",
                     "-01:00", "+01:00", "Z Z", "Zx"]),
    st.sampled_from(["", " ", "\u3000", "\n"]),
).map("".join)  # fmt: skip


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(["createdAt", "lastSeenAt"]), text=_TIMESTAMPS)
def test_a_timestamp_is_refused_exactly_where_the_engine_rejects_it(field, text):
    payload = {"version": 2, **_top(**{field: text})}
    try:
        unleash.to_snapshot(copy.deepcopy(payload))
    except InteropError as exc:
        assert f"features[0].{field}: " in str(exc)
        assert _rejected(payload), (text, str(exc))
    else:
        assert not _rejected(payload), text


def test_a_payload_without_a_version_is_refused_as_the_engine_rejects_it():
    # Unleash's server always sends one; the SDK's engine knows no feature of a payload
    # without it, so an import of one would answer what the SDK never does
    payload = _top()
    assert _rejected(payload)
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(copy.deepcopy(payload))
    assert 'version: missing: Unleash\'s payloads start with one, such as "version": 1' in str(
        err.value
    )
    assert not _rejected({"version": 1, **payload})
    assert set(unleash.to_snapshot({"version": 1, **payload}).flags) == {"f", "g"}


@pytest.mark.parametrize("field", ["eventId", "type"])
def test_a_delta_event_missing_its_id_or_type_is_refused_as_the_engine_rejects_it(field):
    payload = _event("feature-removed", featureName="x", project="p")
    del payload["events"][1][field]
    assert _rejected(payload)
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(copy.deepcopy(payload))
    assert f"events[1].{field}: " in str(err.value)
