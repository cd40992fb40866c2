"""Unleash context values None and floats, against the Python SDK itself
(UnleashClient): it hands its engine every value as Python's ``str()``, so a None
field is the text "None" (cfgcore dropped it: ``IN ["None"]``, ``NOT_IN`` and
stickiness answered otherwise), and a float is its Python text ("1e+20", "-0.0").
"""

from __future__ import annotations

import json
import logging
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.interop import unleash
from tests.fuzz import examples

UnleashClient = pytest.importorskip("UnleashClient").UnleashClient
FileCache = pytest.importorskip("UnleashClient.cache").FileCache

_STATIC = {"appName": "fix8", "environment": "default"}  # what the client adds itself
_NOW = "2024-01-01T00:00:00+00:00"


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("UnleashClient").setLevel(logging.CRITICAL)
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


_CONSTRAINTS = [
    ("IN", ["None"]), ("NOT_IN", ["None"]), ("NOT_IN", ["x"]), ("STR_CONTAINS", ["on"]),
    ("STR_STARTS_WITH", ["N"]), ("STR_ENDS_WITH", ["ne"]), ("NUM_EQ", "0"), ("NUM_GT", "-1e300"),
    ("NUM_LTE", "1"), ("NUM_EQ", "100000000000000000000"), ("NUM_EQ", "0.30000000000000004"),
    ("DATE_AFTER", "2000-01-01T00:00:00.000Z"), ("SEMVER_GT", "0.0.1"), ("REGEX", "^N"),
    ("REGEX", "^-?[0-9.]+(e[+-][0-9]+)?$"), ("IN_CIDR", ["0.0.0.0/0"]), ("IN", ["1.0"]),
    ("IN", ["1e+20"]), ("IN", ["-0.0"]), ("IN", ["0.30000000000000004"]), ("IN", ["inf"]),
    ("STR_CONTAINS", ["."]),
]  # fmt: skip
_FIELDS = ["userId", "x", "currentTime", "environment", "remoteAddress", "sessionId"]


def _payload() -> dict[str, Any]:
    features = []
    for op, values in _CONSTRAINTS:
        for name in _FIELDS:
            for inverted in (False, True):
                c = {"contextName": name, "operator": op, "inverted": inverted}
                c["values" if isinstance(values, list) else "value"] = values
                strategy = {"name": "default", "constraints": [c]}
                features.append(
                    {"name": f"f{len(features)}", "enabled": True, "strategies": [strategy]}
                )
    for stickiness in ("userId", "sessionId", "x"):
        params = {"rollout": "50", "stickiness": stickiness, "groupId": "g"}
        strategy = {"name": "flexibleRollout", "parameters": params}
        features.append({"name": f"r-{stickiness}", "enabled": True, "strategies": [strategy]})
    return {"version": 2, "features": features}


PAYLOAD = _payload()


@pytest.fixture(scope="module")
def client():
    cache = FileCache("fix8", directory=tempfile.mkdtemp())
    cache.bootstrap_from_dict(json.loads(json.dumps(PAYLOAD)))
    c = UnleashClient(
        url="http://127.0.0.1:9", app_name="fix8", cache=cache,
        disable_metrics=True, disable_registration=True,
    )  # fmt: skip
    c.initialize_client(fetch_toggles=False)
    yield c
    c.destroy()


@pytest.fixture(scope="module")
def _engines() -> dict[str, Any]:
    return {}


@pytest.fixture
def engine(impl, _engines):
    """PAYLOAD imported and built once per evaluator for the module (an engine's
    answers depend on its snapshot alone)."""
    from cfgcore.engine import engine_class

    if impl.__name__ not in _engines:
        _engines[impl.__name__] = engine_class(impl).from_snapshot(unleash.to_snapshot(PAYLOAD))
    return _engines[impl.__name__]


def _agree(client, engine, ctx: dict[str, Any]) -> None:
    ours = unleash.context({**_STATIC, **ctx})
    for f in PAYLOAD["features"]:
        want = client.is_enabled(f["name"], dict(ctx))
        assert engine.is_enabled(f["name"], ours) is want, (f, ctx)


@pytest.mark.parametrize("where", [*_FIELDS, "properties"])
def test_a_none_value_is_the_text_none(engine, client, where):
    ctx: dict[str, Any] = {"currentTime": _NOW}
    if where == "properties":
        ctx["properties"] = {"x": None}
    else:
        ctx[where] = None
    if where not in ("userId", "sessionId"):
        ctx["userId"] = "u1"  # a rollout on a missing id is random in both
    if where != "sessionId":
        ctx["sessionId"] = "s1"
    _agree(client, engine, ctx)


def test_a_none_user_id_is_bucketed_as_the_text_none(engine):
    as_text = unleash.context({"userId": "None"})
    as_none = unleash.context({"userId": None})
    for stickiness in ("userId", "sessionId"):
        assert engine.is_enabled(f"r-{stickiness}", as_none) is engine.is_enabled(
            f"r-{stickiness}", as_text
        )


_values = st.one_of(
    st.none(),
    st.floats(allow_nan=True),
    st.sampled_from([1.0, 1e20, 0.1 + 0.2, -0.0, 1e16, 5e-324, 1e-7, 123456789.0]),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.text(max_size=6),
)
_FIXTURE = [HealthCheck.function_scoped_fixture]


@settings(max_examples=examples(40), deadline=None, suppress_health_check=_FIXTURE)
@given(st.dictionaries(st.sampled_from(["x", "environment", "remoteAddress"]), _values,
                       max_size=3))  # fmt: skip
def test_values_answer_as_the_python_sdk(engine, client, values):
    ctx: dict[str, Any] = {"currentTime": _NOW, "userId": "u1", "sessionId": "s1"}
    for k, v in values.items():
        if k == "x":
            ctx["properties"] = {"x": v}
        else:
            ctx[k] = v
    _agree(client, engine, ctx)
