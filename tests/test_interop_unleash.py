"""Unleash import: all 279 assertions of the Unleash client specification, on both
evaluators, plus import errors and the context mapping.

The specification files live in ../shared/conformance/unleash-client-specification
(Apache-2.0, test data only); each file's ``state`` is imported once per evaluator.
"""

from __future__ import annotations

import json
import os

import pytest

from cfgcore.interop import InteropError, unleash
from cfgcore.interop._hashing import unleash_normalized, unleash_variant_target
from tests.conftest import SHARED

SPEC_DIR = os.path.join(SHARED, "conformance", "unleash-client-specification", "specifications")
HAVE_SPEC = os.path.isdir(SPEC_DIR)
needs_spec = pytest.mark.skipif(
    not HAVE_SPEC, reason="../shared/conformance/unleash-client-specification is absent"
)


def _spec_files() -> list[str]:
    if not HAVE_SPEC:
        return []
    with open(os.path.join(SPEC_DIR, "index.json"), encoding="utf-8") as fh:
        return json.load(fh)


def _load(name: str) -> dict:
    with open(os.path.join(SPEC_DIR, name), encoding="utf-8") as fh:
        return json.load(fh)


@needs_spec
def test_the_specification_has_279_assertions():
    total = 0
    for name in _spec_files():
        spec = _load(name)
        total += len(spec.get("tests", [])) + len(spec.get("variantTests", []))
    assert total == 279


@needs_spec
@pytest.mark.parametrize("name", _spec_files() or ["absent"])
def test_specification_file(name, make):
    spec = _load(name)
    engine = make(unleash.to_snapshot(spec["state"]))
    failures = []
    for case in spec.get("tests", []):
        ctx = engine.context(unleash.context(case["context"]))
        got = engine.is_enabled(case["toggleName"], ctx)
        if got != case["expectedResult"]:
            failures.append(f"{case['description']}: isEnabled {got}")
    for case in spec.get("variantTests", []):
        ctx = engine.context(unleash.context(case["context"]))
        got = unleash.get_variant(engine, case["toggleName"], ctx)
        # one evaluation answers both questions: the variant's feature_enabled is isEnabled
        enabled = engine.is_enabled(case["toggleName"], ctx)
        if got != case["expectedResult"] or enabled != got["feature_enabled"]:
            failures.append(f"{case['description']}: getVariant {got}, isEnabled {enabled}")
    assert not failures, "\n".join(failures)


def test_rollout_uses_unleash_normalized_hash(make):
    # 1..100 normalized values: a 37% rollout is on exactly where normalized <= 37
    payload = {
        "version": 1,
        "features": [
            {
                "name": "f",
                "enabled": True,
                "strategies": [
                    {"name": "flexibleRollout", "parameters": {"rollout": "37", "groupId": "g"}}
                ],
            }
        ],
    }
    engine = make(unleash.to_snapshot(payload))
    for i in range(300):
        uid = f"user-{i}"
        want = unleash_normalized("g", uid) <= 37
        assert engine.is_enabled("f", unleash.context({"userId": uid})) is want, uid


def test_variant_walk_matches_the_documented_target(make):
    payload = {
        "version": 1,
        "features": [
            {
                "name": "f",
                "enabled": True,
                "strategies": [],
                "variants": [
                    {"name": "a", "weight": 3},
                    {"name": "zero", "weight": 0},
                    {"name": "b", "weight": 5},
                    {"name": "c", "weight": 2},
                ],
            }
        ],
    }
    engine = make(unleash.to_snapshot(payload))
    for i in range(300):
        uid = str(i)
        target = unleash_variant_target("f", uid, 10)
        want = "a" if target <= 3 else "b" if target <= 8 else "c"
        details = engine.evaluate("f", unleash.context({"userId": uid}))
        assert details.variant == want and details.value["name"] == want


def test_import_errors_name_the_feature():
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot({"version": 1, "features": [{"enabled": True}]})
    assert "features" in str(err.value) and "without a name" in str(err.value)


def test_context_derives_numbers_dates_and_addresses():
    ctx = unleash.context(
        {
            "userId": "7",
            "remoteAddress": "10.0.0.1",
            "currentTime": "2024-01-01T00:00:00Z",
            "properties": {"userId": "shadowed", "n": "2.5"},
        }
    )
    assert ctx["userId"] == "7"
    assert ctx["n#num"] == 2.5
    assert ctx["currentTime#date"] == 1704067200.0
    assert ctx["remoteAddress#ip"] == "4:" + format(0x0A000001, "032b")
    assert len(ctx[unleash.RANDOM]) == 16


def test_readme_interop_example_runs():
    import contextlib
    import io
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("## Importing flags from Unleash, flagd and GrowthBook", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), {})
    enabled, variant = out.getvalue().splitlines()
    # the answer follows Unleash's documented hashing for this user
    want_on = unleash_normalized("new-player", "42") <= 50
    assert enabled == str(want_on)
    if want_on:
        target = unleash_variant_target("new-player", "42", 1000)
        assert ("blue" if target <= 500 else "green") in variant
    else:
        assert "'feature_enabled': False" in variant


@needs_spec
@pytest.mark.parametrize("fmt", ["yaml", "json", "msgpack"])
def test_imported_snapshots_survive_the_file_formats(fmt, make):
    # `cfgcore import ... --out flags.yaml` writes what to_snapshot returns
    from cfgcore.snapshot import decode_snapshot, encode_snapshot

    spec = _load("16-strategy-variants.json")
    snap = unleash.to_snapshot(spec["state"])
    again = decode_snapshot(encode_snapshot(snap, fmt), fmt)
    assert again == snap
    a, b = make(snap), make(again)
    for case in spec["variantTests"]:
        ctx = unleash.context(case["context"])
        assert a.evaluate(case["toggleName"], ctx) == b.evaluate(case["toggleName"], ctx)
