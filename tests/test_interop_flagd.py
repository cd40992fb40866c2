"""flagd import: the flagd testbed's evaluator scenarios and provider evaluation
scenarios (Gherkin, read with gherkin-official), on both evaluators.

Data: ../shared/conformance/flagd-testbed (test-only, license unconfirmed; see its
README). Scenarios tagged ``@fractional-v1`` give the expected values of flagd's
legacy float bucketing, which cfgcore does not implement: they are not collected
(v2 and v3 are, each under its own scheme). ``@deprecated``/``@no-default`` contradict
``@no-default-variant`` and are not collected either (the README says so). The
provider files run are those that evaluate flags (``selector.feature`` too: its
scenarios only evaluate the one file they select); ``config``, ``connection``,
``events``, ``rpc-caching``, ``sync-payload`` and ``contextEnrichment`` test flagd's
gRPC provider and sync server, not evaluation.
"""

from __future__ import annotations

import glob
import json
import os
import re
from typing import Any

import pytest

from cfgcore.compiler import compile_snapshot
from cfgcore.interop import InteropError, flagd
from cfgcore.interop._hashing import cbor_encode, flagd_bucket_v2, murmur3_32
from tests.conftest import SHARED

TESTBED = os.path.join(SHARED, "conformance", "flagd-testbed")
HAVE = os.path.isdir(TESTBED)
needs_testbed = pytest.mark.skipif(not HAVE, reason="../shared/conformance/flagd-testbed is absent")
PROVIDER_FILES = (
    "targeting.feature",
    "evaluation.feature",
    "disabled.feature",
    "metadata.feature",
    "selector.feature",
)
EXCLUDED_TAGS = {"@fractional-v1", "@deprecated", "@no-default"}


def _pickles(path: str) -> list[dict]:
    from gherkin.parser import Parser
    from gherkin.pickles.compiler import Compiler

    with open(path, encoding="utf-8") as fh:
        doc = Parser().parse(fh.read())
    doc["uri"] = path
    return Compiler().compile(doc)


def _scenarios() -> list[Any]:
    if not HAVE:
        return []
    out = []
    suites = [("evaluator", f) for f in sorted(glob.glob(f"{TESTBED}/evaluator/gherkin/*.feature"))]
    suites += [("provider", f"{TESTBED}/gherkin/{name}") for name in PROVIDER_FILES]
    for suite, path in suites:
        for i, p in enumerate(_pickles(path)):
            tags = {t["name"] for t in p["tags"]}
            if tags & EXCLUDED_TAGS:
                continue
            fid = f"{suite}:{os.path.basename(path)[:-8]}:{i}"
            out.append(pytest.param(suite, p, id=fid))
    return out


def _flag_file(suite: str, selector: str | None) -> dict:
    if suite == "evaluator":
        with open(f"{TESTBED}/evaluator/flags/testkit-flags.json", encoding="utf-8") as fh:
            return json.load(fh)
    if selector and os.path.basename(selector) != "allFlags.json":
        with open(f"{TESTBED}/flags/{os.path.basename(selector)}", encoding="utf-8") as fh:
            return json.load(fh)
    # every flags/*.json except the selector files, merged: upstream's allFlags.json
    merged: dict[str, Any] = {"flags": {}, "$evaluators": {}}
    for path in sorted(glob.glob(f"{TESTBED}/flags/*.json")):
        if os.path.basename(path).startswith("selector"):
            continue
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
        merged["flags"].update(doc.get("flags", {}))
        merged["$evaluators"].update(doc.get("$evaluators", {}))
    return merged


_COMPILED: dict[tuple, Any] = {}


def _compiled(suite: str, selector: str | None, scheme: str):
    """The flag file imported and compiled once: each scenario's engine is a new one
    installing these tables (what ``make`` does with the snapshot, less its compile),
    so no evaluation state passes from one scenario to the next."""
    key = (suite, selector, scheme)
    if key not in _COMPILED:
        doc = _flag_file(suite, selector)
        snapshot = flagd.to_snapshot(doc, fractional=scheme, on_error="keep")
        _COMPILED[key] = compile_snapshot(snapshot)
    return _COMPILED[key]


def _unescape(cell: str) -> str:
    return cell


def _typed(kind: str, text: str) -> Any:
    if kind == "Boolean":
        return text == "true"
    if kind == "Integer":
        return int(text)
    if kind == "Float":
        return float(text)
    if kind == "Object":
        return json.loads(text.replace('\\"', '"'))
    return text


_QUOTED = r'"((?:[^"\\]|\\.)*)"'
# Object cells hold raw JSON quotes: this step is matched whole, its value up to the end
_CONTEXT_KEY = re.compile(
    r'^a context containing a key "(.*?)", with type "(\w+)" and with value "(.*)"$'
)


@needs_testbed
@pytest.mark.parametrize(
    ("suite", "pickle"), _scenarios() or [pytest.param(None, None, id="absent")]
)
def test_scenario(suite, pickle, impl, make):
    tags = {t["name"] for t in pickle["tags"]}
    scheme = "v2" if "@fractional-v2" in tags else "v3" if "@fractional-v3" in tags else None
    if scheme is None:
        scheme = "v2" if suite == "evaluator" else "v3"
    selector = None
    flag_type = key = None
    default: Any = None
    attrs: dict[str, Any] = {}
    targeting_key = None
    result = None
    for step in pickle["steps"]:
        text = step["text"]
        m = _CONTEXT_KEY.match(text)
        args = list(m.groups()) if m else [a.replace('\\"', '"') for a in re.findall(_QUOTED, text)]
        if text.startswith("an option") and args[0] == "selector":
            selector = args[2]
        elif re.match(r"an? \w+-flag with key", text):
            flag_type = text.split("-flag")[0].split()[-1]
            key, raw_default = args
            default = _typed(flag_type, raw_default)
        elif text.startswith("a context containing a key"):
            name, kind, value = args
            attrs[name] = _typed(kind, value)
        elif text.startswith("a context containing a nested property"):
            outer, inner, value = args
            attrs.setdefault(outer, {})[inner] = value
        elif text.startswith("a context containing a targeting key"):
            targeting_key = args[0]
        elif text.startswith("the flag was evaluated"):
            engine = make(_compiled(suite, selector, scheme))
            ctx = flagd.context(targeting_key, attrs)
            result = flagd.resolve(engine, key, ctx, default)
        elif text.startswith("the resolved details value should be"):
            want = _typed(flag_type, args[0])
            assert result.value == want and type(result.value) is type(want), result
        elif text.startswith("the reason should be"):
            assert result.reason == args[0], result
        elif text.startswith("the error-code should be"):
            assert (result.error_code or "") == args[0], result
        elif text.startswith("the resolved metadata should contain"):
            rows = step["argument"]["dataTable"]["rows"][1:]
            for row in rows:
                mkey, mtype, mval = (c["value"] for c in row["cells"])
                assert result.metadata.get(mkey) == _typed(mtype, mval), (mkey, result)
        elif text.startswith("the resolved metadata is empty"):
            assert not result.metadata, result
        elif text in ("an evaluator", "a stable flagd provider", "a metadata flagd provider") or (
            text.startswith("an option")
        ):
            pass
        else:  # pragma: no cover - a new step in a future testbed
            raise AssertionError(f"unknown step: {text}")


def test_fractional_hashes_match_the_documented_formulas(make):
    doc = {
        "flags": {
            "f": {
                "state": "ENABLED",
                "variants": {"a": "a", "b": "b", "c": "c"},
                "defaultVariant": "a",
                "targeting": {"fractional": [{"var": "email"}, ["a", 30], ["b", 50], ["c", 20]]},
            }
        }
    }
    v2 = make(flagd.to_snapshot(doc, fractional="v2"))
    v3 = make(flagd.to_snapshot(doc))
    names = ["a", "b", "c"]

    def pick(bucket: int) -> str:
        return names[0] if bucket < 30 else names[1] if bucket < 80 else names[2]

    for i in range(200):
        email = f"user{i}@example.com"
        ctx = flagd.context(None, {"email": email})
        assert v2.variant("f", ctx) == pick(flagd_bucket_v2(email.encode(), 100))
        assert v3.variant("f", ctx) == pick(flagd_bucket_v2(cbor_encode(email), 100))
        assert murmur3_32(email.encode()) >= 0


def test_unsupported_jsonlogic_is_an_import_error_naming_flag_and_construct():
    doc = {
        "flags": {
            "calc": {
                "state": "ENABLED",
                "variants": {"a": 1, "b": 2},
                "defaultVariant": "a",
                "targeting": {"if": [{">": [{"+": [{"var": "x"}, 1]}, 3]}, "b"]},
            }
        }
    }
    with pytest.raises(InteropError) as err:
        flagd.to_snapshot(doc)
    assert "flags.calc" in str(err.value) and "'+'" in str(err.value)


def test_export_round_trips_what_fits(make):
    doc = {
        "flags": {
            "f": {
                "state": "ENABLED",
                "variants": {"a": "A", "b": "B", "c": "C"},
                "defaultVariant": "a",
                "targeting": {
                    "if": [
                        {
                            "and": [
                                {"ends_with": [{"var": "email"}, "@x.com"]},
                                {"in": [{"var": "tier"}, ["gold"]]},
                            ]
                        },
                        "b",
                        {"fractional": [{"var": "email"}, ["a", 50], ["c", 50]]},
                    ]
                },
                "metadata": {"owner": "web"},
            }
        }
    }
    exported = flagd.from_snapshot(flagd.to_snapshot(doc))
    again = make(flagd.to_snapshot(exported))
    first = make(flagd.to_snapshot(doc))
    for i in range(100):
        ctx = flagd.context(None, {"email": f"u{i}@x.com", "tier": "gold" if i % 3 else "free"})
        assert again.evaluate("f", ctx) == first.evaluate("f", ctx)
    assert exported["flags"]["f"]["metadata"] == {"owner": "web"}


def test_export_refuses_what_does_not_fit():
    from cfgcore.snapshot import snapshot_from_dict

    snap = snapshot_from_dict(
        {"flags": {"r": {"rules": [{"rollout": 10, "serve": "on"}]}, "ok": {"default": "off"}}}
    )
    with pytest.raises(InteropError) as err:
        flagd.from_snapshot(snap)
    assert "flags.r" in str(err.value) and "rollout" in str(err.value)
    assert "flags.ok" not in str(err.value)


def test_refused_flags_are_listed_kept_or_skipped(make):
    doc = {
        "flags": {
            "bad": {
                "state": "ENABLED",
                "variants": {"a": 1},
                "defaultVariant": "a",
                "targeting": {"substr": [{"var": "x"}, 1]},
            },
            "good": {"state": "ENABLED", "variants": {"a": 1}, "defaultVariant": "a"},
        }
    }
    kept = flagd.to_snapshot(doc, on_error="keep")
    skipped = flagd.to_snapshot(doc, on_error="skip")
    assert kept.metadata["refused"] == skipped.metadata["refused"]
    assert "substr" in kept.metadata["refused"]["bad"]
    assert list(skipped.flags) == ["good"]
    res = flagd.resolve(make(kept), "bad", flagd.context("u"), 7)
    assert (res.value, res.reason, res.error_code) == (7, "ERROR", "PARSE_ERROR")


def test_flag_key_is_decided_at_import(make):
    def flag(targeting):
        return {
            "state": "ENABLED",
            "variants": {"yes": "Y", "no": "N"},
            "defaultVariant": "no",
            "targeting": targeting,
        }

    doc = {
        "flags": {
            "promo-a": flag({"if": [{"==": [{"var": "$flagd.flagKey"}, "promo-a"]}, "yes", "no"]}),
            "promo-b": flag({"if": [{"starts_with": [{"var": "$flagd.flagKey"}, "x"]}, "yes"]}),
        }
    }
    engine = make(flagd.to_snapshot(doc))
    assert engine.value("promo-a", flagd.context("u")) == "Y"
    assert engine.value("promo-b", flagd.context("u")) == "N"
