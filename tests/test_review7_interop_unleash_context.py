"""Unleash context values that are no text, against the Python SDK itself (UnleashClient,
not only its engine): UnleashClient gives its engine every context value as Python's
``str()`` of it, so ``True`` is the text "True" there. cfgcore's ``unleash.context()``
read it as JSON's "true" (which only the bare engine, given JSON, sees), so a constraint
IN ["true"] matched in cfgcore where the SDK does not, IN ["True"] the other way round,
and a boolean userId was bucketed as another text.
"""

from __future__ import annotations

import json
import logging
import tempfile
from typing import Any

import pytest

from cfgcore.interop import unleash

UnleashClient = pytest.importorskip("UnleashClient").UnleashClient
FileCache = pytest.importorskip("UnleashClient.cache").FileCache


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("UnleashClient").setLevel(logging.CRITICAL)
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


def _client(payload: dict[str, Any]) -> Any:
    """An UnleashClient answering from ``payload`` (bootstrapped, no server)."""
    cache = FileCache("review7", directory=tempfile.mkdtemp())
    cache.bootstrap_from_dict(json.loads(json.dumps(payload)))
    client = UnleashClient(
        url="http://127.0.0.1:9",
        app_name="review7",
        cache=cache,
        disable_metrics=True,
        disable_registration=True,
    )
    client.initialize_client(fetch_toggles=False)
    return client


_BOOL_CONSTRAINTS = [
    ("IN", ["true"]), ("IN", ["True"]), ("NOT_IN", ["false"]), ("NOT_IN", ["False"]),
    ("STR_CONTAINS", ["ru"]), ("STR_STARTS_WITH", ["T"]), ("STR_STARTS_WITH", ["t"]),
    ("STR_ENDS_WITH", ["SE"]), ("NUM_EQ", "1"), ("REGEX", "^t"), ("REGEX", "^T"),
]  # fmt: skip


@pytest.mark.parametrize("ci", [False, True])
@pytest.mark.parametrize("where", ["properties", "userId"])
def test_a_boolean_context_value_reads_as_the_python_sdk_reads_it(make, ci, where):
    features = []
    for i, (op, values) in enumerate(_BOOL_CONSTRAINTS):
        c: dict[str, Any] = {"contextName": "x" if where == "properties" else "userId"}
        c["operator"] = op
        c["values" if isinstance(values, list) else "value"] = values
        if ci:
            c["caseInsensitive"] = True
        strategy = {"name": "default", "constraints": [c]}
        features.append({"name": f"f{i}", "enabled": True, "strategies": [strategy]})
    payload = {"version": 2, "features": features}
    client = _client(payload)
    try:
        engine = make(unleash.to_snapshot(payload))
        for v in (True, False):
            ctx: dict[str, Any] = (
                {"properties": {"x": v}} if where == "properties" else {"userId": v}
            )
            for i, f in enumerate(features):
                want = client.is_enabled(f["name"], ctx)
                got = engine.is_enabled(f["name"], unleash.context(ctx))
                assert got is want, (_BOOL_CONSTRAINTS[i], ci, v)
    finally:
        client.destroy()


def test_a_boolean_user_id_is_bucketed_as_the_python_sdk_does(make):
    variants = [{"name": n, "weight": 250, "weightType": "variable"} for n in "abcd"]
    features = []
    for group in "ghijklmnop":
        params = {"rollout": "50", "groupId": group, "stickiness": "userId"}
        strategy = {"name": "flexibleRollout", "parameters": params, "variants": variants}
        features.append({"name": f"f{group}", "enabled": True, "strategies": [strategy]})
    payload = {"version": 2, "features": features}
    client = _client(payload)
    try:
        engine = make(unleash.to_snapshot(payload))
        for v in (True, False):
            c = unleash.context({"userId": v})
            for f in features:
                want = client.get_variant(f["name"], {"userId": v})
                got = unleash.get_variant(engine, f["name"], c)
                assert engine.is_enabled(f["name"], c) is client.is_enabled(
                    f["name"], {"userId": v}
                )
                assert (got["name"], got["enabled"]) == (want["name"], want["enabled"]), (f, v)
    finally:
        client.destroy()


def test_a_realistic_export_answers_as_the_python_sdk_with_boolean_properties(make):
    # a feature targeting "beta" users as an Unleash UI writes it (IN ["true"]), asked
    # as services ask UnleashClient, with a Python boolean
    c = {"contextName": "beta", "operator": "IN", "values": ["true"], "inverted": False}
    params = {"rollout": "100", "stickiness": "default", "groupId": "beta-ui"}
    strategy = {"name": "flexibleRollout", "parameters": params, "constraints": [c]}
    payload = {
        "version": 2,
        "features": [{"name": "beta-ui", "enabled": True, "strategies": [strategy]}],
    }
    client = _client(payload)
    try:
        engine = make(unleash.to_snapshot(payload))
        for ctx in (
            {"userId": "1", "properties": {"beta": True}},
            {"userId": "1", "properties": {"beta": "true"}},
        ):
            want = client.is_enabled("beta-ui", ctx)
            assert engine.is_enabled("beta-ui", unleash.context(ctx)) is want, ctx
    finally:
        client.destroy()


# -- the rest of the same defect: other values that are no text, custom top-level fields
def _deep_list(n: int) -> list[Any]:
    out: list[Any] = []
    for _ in range(n):
        out = [out]
    return out


def test_other_values_and_custom_top_level_fields_read_as_the_python_sdk_reads_them(make):
    # UnleashClient str()s every value (a list is "['a', 'b']") and moves a top-level
    # field that is not Unleash's own into properties (a property of that name wins);
    # cfgcore kept the list itself, which no string operator read, and ignored the field
    constraints = [
        ("tenant", "IN", ["acme"]),
        ("tags", "STR_CONTAINS", ["'a'"]),
        ("tags", "IN", ["['a', 'b']"]),
        ("meta", "STR_STARTS_WITH", ["{"]),
        ("plan", "IN", ["gold"]),
        ("plan", "IN", ["silver"]),
        ("count", "NUM_GT", "3"),
    ]
    features = []
    for i, (name, op, values) in enumerate(constraints):
        c: dict[str, Any] = {"contextName": name, "operator": op}
        c["values" if isinstance(values, list) else "value"] = values
        features.append(
            {
                "name": f"f{i}",
                "enabled": True,
                "strategies": [{"name": "default", "constraints": [c]}],
            }
        )
    payload = {"version": 2, "features": features}
    contexts: list[dict[str, Any]] = [
        {"userId": "1", "tenant": "acme"},
        {"userId": "1", "properties": {"tags": ["a", "b"], "meta": {"k": 1}}},
        {"userId": "1", "plan": "silver", "properties": {"plan": "gold"}},
        {"userId": "1", "count": 5, "tags": ("a", "b")},
    ]
    client = _client(payload)
    try:
        engine = make(unleash.to_snapshot(payload))
        for ctx in contexts:
            for i, f in enumerate(features):
                want = client.is_enabled(f["name"], ctx)
                assert engine.is_enabled(f["name"], unleash.context(ctx)) is want, (
                    constraints[i],
                    ctx,
                )
    finally:
        client.destroy()


# Nested past the depth at which str() of a list raises RecursionError on every CPython:
# 3.11 stops at the recursion limit (1,000), 3.12.1 near 1,500 levels, 3.13.0 only
# near 10,000 (its C recursion limit), so a 5,000-deep list has a text there.
DEEP = 100_000


@pytest.mark.parametrize(
    "value",
    [10**5000, _deep_list(DEEP), {"k": _deep_list(DEEP)}],
    ids=["long-int", "deep", "deep-in-dict"],
)
@pytest.mark.parametrize("where", ["properties", "userId", "custom"])
def test_a_value_with_no_text_is_left_out_not_raised(value, where):
    # str() raises for these (past Python's digit limit, past the recursion limit): a
    # context is read on the request path, so the value is left out, the rest kept
    with pytest.raises((ValueError, RecursionError)):
        str(value)
    ctx: dict[str, Any] = {"sessionId": "s"}
    if where == "properties":
        ctx["properties"] = {"x": value, "country": "NL"}
    elif where == "userId":
        ctx["userId"] = value
        ctx["properties"] = {"country": "NL"}
    else:
        ctx["x"] = value
        ctx["country"] = "NL"
    out = unleash.context(ctx)
    key = "userId" if where == "userId" else "x"
    assert key not in out and f"{key}#num" not in out
    assert out["country"] == "NL" and out["sessionId"] == "s"
