"""A datetime in an Unleash context, against the Python SDK itself (UnleashClient): it
sends the value's ``isoformat()`` text to its engine, which reads a date only with a
UTC offset. cfgcore's ``unleash.context()`` took the datetime object's own instant, so
a naive datetime (no offset) matched DATE_AFTER/DATE_BEFORE where the SDK never does.
"""

from __future__ import annotations

import json
import logging
import tempfile
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from cfgcore.interop import unleash

UnleashClient = pytest.importorskip("UnleashClient").UnleashClient
FileCache = pytest.importorskip("UnleashClient.cache").FileCache

_STATIC = {"appName": "fix8", "environment": "default"}  # what the client adds itself


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("UnleashClient").setLevel(logging.CRITICAL)
    logging.getLogger("yggdrasil_engine").setLevel(logging.CRITICAL)


_CONSTRAINTS = [
    ("DATE_AFTER", "2023-06-01T00:00:00.000Z"), ("DATE_BEFORE", "2024-06-01T00:00:00.000Z"),
    ("DATE_AFTER", "2024-01-01T10:00:00.000Z"), ("STR_ENDS_WITH", ["+00:00"]),
    ("STR_CONTAINS", [".000005"]), ("IN", ["2024-01-01T00:00:00"]),
]  # fmt: skip
_FIELDS = ["x", "userId", "currentTime"]
_VALUES = [
    datetime(2024, 1, 1),  # naive: no date to the SDK's engine
    datetime(2024, 1, 1, tzinfo=timezone.utc),
    datetime(2024, 1, 1, 12, 0, 0, 5, tzinfo=timezone(timedelta(hours=2))),
    datetime(2024, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=-1))),
]


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
    return {"version": 2, "features": features}


PAYLOAD = _payload()


@pytest.fixture(scope="module")
def client():
    cache = FileCache("fix8d", directory=tempfile.mkdtemp())
    cache.bootstrap_from_dict(json.loads(json.dumps(PAYLOAD)))
    c = UnleashClient(
        url="http://127.0.0.1:9", app_name="fix8", cache=cache,
        disable_metrics=True, disable_registration=True,
    )  # fmt: skip
    c.initialize_client(fetch_toggles=False)
    yield c
    c.destroy()


@pytest.mark.parametrize("where", _FIELDS)
@pytest.mark.parametrize("value", _VALUES, ids=str)
def test_a_datetime_reads_as_the_python_sdk_reads_it(make, client, where, value):
    engine = make(unleash.to_snapshot(PAYLOAD))
    ctx: dict[str, Any] = {"currentTime": "2024-01-01T00:00:00+00:00"}
    if where == "x":
        ctx["properties"] = {"x": value}
    else:
        ctx[where] = value
    ours = unleash.context({**_STATIC, **ctx})
    for f in PAYLOAD["features"]:
        want = client.is_enabled(f["name"], dict(ctx))
        assert engine.is_enabled(f["name"], ours) is want, (f["strategies"], ctx)
