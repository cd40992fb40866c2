"""Importers on wrong-typed input: ``cfgcore import`` answers with one line naming the
file and the key path, never an internal error; ``to_snapshot`` raises only the
project's error type for any JSON-like document."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.interop import flagd, growthbook, unleash
from cfgcore.snapshot import load_snapshot
from tests.conftest import run_cli as run
from tests.fuzz import examples
from tests.texts import any_text


def _import(tmp_path, capsys, system, doc, *extra):
    src = tmp_path / "src.json"
    if isinstance(doc, bytes):
        src.write_bytes(doc)
    else:
        src.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    out = tmp_path / "out.yaml"
    code, _, err = run(capsys, "import", system, str(src), "--out", str(out), *extra)
    return code, err, src, out


@pytest.mark.parametrize(
    "doc, where",
    [
        ({"version": 1, "features": "x"}, "features: expected a list, got a string"),
        ({"version": 1, "features": [], "segments": [{"id": [1]}]},
         "segments[0].id: expected an integer, got a list"),
        ({"events": [{"type": "feature-updated", "eventId": 1}]},
         "events[0].feature: expected an object"),
        ('"hello"', "an Unleash payload must be a JSON object, got a string"),
    ],
)  # fmt: skip
def test_unleash_wrong_types_name_the_file_and_key_path(tmp_path, capsys, doc, where):
    code, err, src, out = _import(tmp_path, capsys, "unleash", doc)
    assert code == 1
    # a key path of the one-line source is on its line 1; a payload of the wrong type
    # has no key path
    line = "" if where.startswith("an Unleash") else ":1"
    assert err == f"cfgcore: error: {src}{line}: {where}" + err.split(where, 1)[1]
    assert err.count("\n") == 1 and "internal error" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "feature, refused",
    [
        (None, "features[0]: refused: features[0]: expected an object, got null"),
        ({"name": "a", "strategies": "x"}, "a: refused: features[0].strategies: expected a"),
        (
            {"name": "a", "strategies": [{"name": "default", "constraints": [1]}]},
            "a: refused: features[0].strategies[0].constraints[0]: expected an object, got a",
        ),
        # a weight the SDK's engine cannot read refuses the whole payload there: named
        ({"name": "a", "variants": [{"name": "v", "weight": "x"}]},
         "a: refused: features[0]: malformed: variants[0].weight: expected an integer, "
         "got a string"),
    ],
)  # fmt: skip
def test_a_malformed_unleash_feature_is_refused_with_its_key_path(tmp_path, capsys, feature,
                                                                   refused):  # fmt: skip
    # as for flagd and GrowthBook: the other features are imported, the refused listed
    doc = {"version": 1, "features": [feature, {"name": "ok", "enabled": True, "strategies": []}]}
    code, err, src, out = _import(tmp_path, capsys, "unleash", doc)
    assert code == 1
    # listed with the line of the key path named (the one-line source's line 1)
    refused = refused.replace(": refused: ", f": refused: {src}:1: ", 1)
    assert f"  - {refused}" in err and "internal error" not in err
    assert "ok" in load_snapshot(out).flags


def test_an_unleash_rollout_past_a_float_is_refused_naming_it(tmp_path, capsys):
    # the Node SDK reads "1e400" as Infinity (everyone), yggdrasil (the Python SDK's
    # engine) as 0 %: refused, the other features imported
    # (tests/test_audit7_interop_unleash_rollout.py)
    strategy = {"name": "flexibleRollout", "parameters": {"rollout": "1e400", "groupId": "a"}}
    doc = {"version": 1,
           "features": [{"name": "a", "enabled": True, "strategies": [strategy]},
                        {"name": "ok", "enabled": True, "strategies": []}]}  # fmt: skip
    code, err, src, out = _import(tmp_path, capsys, "unleash", doc)
    assert code == 1
    assert f"  - a: refused: {src}:1: features[0].strategies[0].parameters.rollout: '1e400'" in err
    assert set(load_snapshot(out).flags) == {"ok"}


@pytest.mark.parametrize("system", ["unleash", "flagd", "growthbook"])
def test_a_binary_source_is_named(tmp_path, capsys, system):
    code, err, src, _ = _import(tmp_path, capsys, system, b"\xff\xfe\x00binary")
    assert (code, err) == (
        1,
        f"cfgcore: error: {src}:1: UTF-16 text (it starts with a UTF-16 byte-order mark); "
        "save it as UTF-8\n",
    )


@pytest.mark.parametrize("system", ["unleash", "flagd", "growthbook"])
def test_a_too_deep_source_is_named(tmp_path, capsys, system):
    code, err, src, _ = _import(tmp_path, capsys, system, '{"a": ' + "[" * 500 + "]" * 500 + "}")
    assert code == 1 and err.startswith(f"cfgcore: error: {src}:1: a.0.0.0.0.0.…: nested more")


def test_growthbook_saved_groups_that_are_not_an_object_name_their_file(tmp_path, capsys):
    groups = tmp_path / "groups.json"
    groups.write_text('"notjson"')
    code, err, _, _ = _import(
        tmp_path, capsys, "growthbook", {"features": {}}, "--saved-groups", str(groups)
    )
    assert (code, err) == (
        1,
        f"cfgcore: error: {groups}: saved groups must be an object (group id -> list of values)\n",
    )


@pytest.mark.parametrize(
    "system, doc, refused",
    [
        ("flagd", {"flags": {"f": {"variants": {"on": True}, "defaultVariant": "on",
                                   "targeting": {"if": [{"in": [1, {"a": 1}]}, "on"]},
                                   "metadata": "x"}}}, "f: refused: flags.f.state: "),
        ("growthbook", {"features": {"f": {"defaultValue": 1, "rules": [{"force": 2,
                        "coverage": "half"}]}}},
         "f: refused: features.f.rules[0].coverage: expected a number"),
        ("growthbook", {"features": {"f": {"rules": [{"variations": [1, 2],
                        "ranges": [["a", "b"], [0, 1]]}]}}},
         "f: refused: features.f.rules[0].ranges[0][0]: expected a number, got a string"),
    ],
)  # fmt: skip
def test_a_malformed_flag_is_refused_with_its_name(tmp_path, capsys, system, doc, refused):
    code, err, src, _ = _import(tmp_path, capsys, system, doc)
    assert code == 1 and "internal error" not in err
    # with the line of the flag (the one-line source's line 1)
    assert f"  - {refused.replace(': refused: ', f': refused: {src}:1: ', 1)}" in err


# -- any JSON-like document: only the project's error type -----------------------------

_leaf = st.none() | st.booleans() | st.integers() | st.floats() | any_text(max_size=6)
_json = st.recursive(
    _leaf,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(any_text(max_size=8), kids, max_size=4)
    ),
    max_leaves=12,
)


def _shaped(keys: list[str]) -> st.SearchStrategy:
    """Objects using the format's own keys (so the importer gets past its first check),
    with random values."""
    return st.recursive(
        _leaf,
        lambda kids: (
            st.lists(kids, max_size=3)
            | st.dictionaries(st.sampled_from(keys) | any_text(max_size=4), kids, max_size=5)
        ),
        max_leaves=20,
    )


_UNLEASH = ["features", "segments", "events", "name", "enabled", "strategies", "parameters",
            "constraints", "variants", "weight", "overrides", "values", "operator",
            "contextName", "dependencies", "feature", "type", "id", "rollout", "stickiness",
            "groupId", "userIds", "IPs", "payload", "inverted", "value"]  # fmt: skip
_FLAGD = ["flags", "$evaluators", "metadata", "variants", "defaultVariant", "state",
          "targeting", "if", "var", "fractional", "in", "==", "and", "or", "!", "$ref",
          "sem_ver", "starts_with", "cat", "<", ">="]  # fmt: skip
_GROWTHBOOK = ["features", "savedGroups", "defaultValue", "rules", "force", "coverage",
               "range", "condition", "variations", "weights", "ranges", "hashVersion",
               "seed", "filters", "namespace", "meta", "key", "hashAttribute", "$in",
               "$inGroup", "$eq", "$gt", "$regex", "$or", "$not", "$elemMatch",
               "attribute", "passthrough"]  # fmt: skip


def _lower(system: str, doc: object) -> None:
    if system == "unleash":
        unleash.to_snapshot(doc, source="src.json")  # type: ignore[arg-type]
    elif system == "flagd":
        flagd.to_snapshot(doc, on_error="keep", source="src.json")  # type: ignore[arg-type]
        flagd.to_snapshot(doc, source="src.json")  # type: ignore[arg-type]
    else:
        growthbook.to_snapshot(doc, source="src.json")  # type: ignore[arg-type]


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=st.one_of(
        st.tuples(st.just("unleash"), _json | _shaped(_UNLEASH)),
        st.tuples(st.just("flagd"), _json | _shaped(_FLAGD).map(lambda d: {"flags": {"f": d}})),
        st.tuples(
            st.just("growthbook"),
            _json | _shaped(_GROWTHBOOK).map(lambda d: {"features": {"f": d}}),
        ),
    )
)
def test_any_document_raises_only_the_projects_error(case):
    system, doc = case
    try:
        _lower(system, doc)
    except ConfigError as exc:
        assert str(exc).startswith("src.json") or "\n  - src.json" in str(exc), str(exc)
