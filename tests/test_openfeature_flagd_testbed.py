"""The flagd testbed's OpenFeature provider evaluation scenarios, through CfgcoreProvider.

The .feature files of ../shared/conformance/flagd-testbed/gherkin are read with
gherkin-official and every evaluation scenario is run through the real openfeature-sdk
client on both evaluators. Flag files:

* the testbed's own JSON files, imported by ``cfgcore.interop.flagd`` and answered
  with the importer's ``context`` and ``resolve`` (flagd's semantics): every scenario;
* hand translations into cfgcore's native format of the flags that need no JSONLogic
  (tests/data/flagd_testbed/*.yaml), answered with the provider's own semantics: the
  scenarios those flags cover.

Scenarios that test the gRPC/sync provider machinery (config, connection, events,
caching, context enrichment by the sync server) are out of scope, as the testbed's
README says. ``selector.feature`` is run although the README lists it there: its
scenarios only evaluate flags of one selected file (rawflags/selector-flags.json). Of the
tagged alternatives, @fractional-v3 is run and v1/v2 are excluded; @deprecated
(@no-default) contradicts @no-default-variant and is excluded.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re

import pytest

pytest.importorskip("openfeature", reason="openfeature-sdk is not installed")
gherkin_parser = pytest.importorskip("gherkin.parser", reason="gherkin-official is not installed")

from gherkin.pickles.compiler import Compiler  # noqa: E402
from openfeature import api  # noqa: E402
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

from cfgcore.compiler import compile_snapshot  # noqa: E402
from cfgcore.openfeature import CfgcoreProvider  # noqa: E402
from cfgcore.snapshot import load_snapshot  # noqa: E402

HERE = os.path.dirname(__file__)
TESTBED = os.path.join(HERE, "..", "..", "shared", "conformance", "flagd-testbed")
NATIVE = os.path.join(HERE, "data", "flagd_testbed")
FEATURES = (
    "evaluation.feature",
    "metadata.feature",
    "disabled.feature",
    "targeting.feature",
    "selector.feature",
)
EXCLUDED_TAGS = {"@fractional-v1", "@fractional-v2", "@deprecated", "@no-default"}

try:  # the importer is written on the interop branch
    from cfgcore.interop import flagd as flagd_interop
except ImportError:
    flagd_interop = None


def _pickles():
    if not os.path.isdir(TESTBED):
        return []
    out = []
    for name in FEATURES:
        path = os.path.join(TESTBED, "gherkin", name)
        with open(path, encoding="utf-8") as fh:
            doc = gherkin_parser.Parser().parse(fh.read())
        doc["uri"] = name
        for pickle in Compiler().compile(doc):
            tags = {t["name"] for t in pickle["tags"]}
            if tags & EXCLUDED_TAGS:
                continue
            out.append(pytest.param(pickle, id=f"{name}:{pickle['location']['line']}"))
    return out


PICKLES = _pickles()


def _selector_file(steps) -> str:
    """The flag file a scenario loads: rawflags/<name>.json alone, else all of them."""
    for step in steps:
        m = re.fullmatch(r'an option "selector" of type "String" with value "(.+)"', step["text"])
        if m and m.group(1).startswith("rawflags/"):
            return os.path.splitext(os.path.basename(m.group(1)))[0]
    return "allFlags"


@functools.cache
def _native_snapshot(name: str):
    path = os.path.join(NATIVE, f"{name}.yaml")
    return load_snapshot(path) if os.path.exists(path) else None


@functools.cache
def _flagd_snapshot(name: str):
    flags_dir = os.path.join(TESTBED, "flags")
    if name == "allFlags":
        doc: dict = {"flags": {}, "$evaluators": {}}
        for f in sorted(os.listdir(flags_dir)):
            if f.endswith(".json") and not f.startswith("selector"):
                with open(os.path.join(flags_dir, f), encoding="utf-8") as fh:
                    part = json.load(fh)
                doc["flags"].update(part.get("flags", {}))
                doc["$evaluators"].update(part.get("$evaluators", {}))
    else:
        with open(os.path.join(flags_dir, f"{name}.json"), encoding="utf-8") as fh:
            doc = json.load(fh)
    # flagd answers PARSE_ERROR for a flag it cannot parse: the import keeps such flags
    # as flags that resolve to that error, as the error scenarios expect.
    return flagd_interop.to_snapshot(doc, on_error="keep")


@functools.cache
def _compiled(kind: str, name: str):
    """The tables a flag file compiles to, compiled once: each scenario's engine is a
    new one installing them (what ``from_snapshot`` does with the snapshot, less its
    compile), so no evaluation state passes from one scenario to the next."""
    snapshot = _flagd_snapshot(name) if kind == "flagd" else _native_snapshot(name)
    return compile_snapshot(snapshot)


def _typed(type_name: str, text: str):
    if type_name == "Boolean":
        return text == "true"
    if type_name == "Integer":
        return int(text)
    if type_name == "Float":
        return float(text)
    if type_name == "Object":
        return json.loads(text.replace('\\"', '"'))
    return text


_domains = itertools.count()
_METHODS = {
    "Boolean": "get_boolean_details",
    "String": "get_string_details",
    "Integer": "get_integer_details",
    "Float": "get_float_details",
    "Object": "get_object_details",
}


class Scenario:
    """The state one scenario's steps build up, and the step grammar."""

    def __init__(self, engine_cls, tables, context_mapper, resolve):
        self.engine = engine_cls.from_snapshot(tables)
        self.provider = CfgcoreProvider(self.engine, context=context_mapper, resolve=resolve)
        self.domain = f"flagd-testbed-{next(_domains)}"
        api.set_provider_and_wait(self.provider, domain=self.domain)
        self.client = api.get_client(self.domain)
        self.flag = None
        self.targeting_key = None
        self.attrs: dict = {}
        self.details = None

    def run(self, step) -> None:
        text = step["text"]
        if text.startswith("an option ") or text in (
            "a stable flagd provider",
            "a metadata flagd provider",
            "an evaluator",
        ):
            return  # setup only (the selector was applied when the flags were loaded)
        m = re.fullmatch(
            r"an? (Boolean|String|Integer|Float|Object)-flag with key \"(.*)\" and a "
            r"(?:default|fallback) value \"(.*)\"",
            text,
        )
        if m:
            self.flag = (m.group(1), m.group(2), _typed(m.group(1), m.group(3)))
            return
        m = re.fullmatch(
            r'a context containing a key "(.*)", with type "(\w+)" and with value "(.*)"', text
        )
        if m:
            self.attrs[m.group(1)] = _typed(m.group(2), m.group(3))
            return
        m = re.fullmatch(
            r'a context containing a nested property with outer key "(.*)" and inner key '
            r'"(.*)", with value "(.*)"',
            text,
        )
        if m:
            self.attrs.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
            return
        m = re.fullmatch(r'a context containing a targeting key with value "(.*)"', text)
        if m:
            self.targeting_key = m.group(1)
            return
        if text == "the flag was evaluated with details":
            type_name, key, default = self.flag
            ctx = EvaluationContext(self.targeting_key, self.attrs)
            self.details = getattr(self.client, _METHODS[type_name])(key, default, ctx)
            return
        m = re.fullmatch(r'the resolved details value should be "(.*)"', text)
        if m:
            expected = _typed(self.flag[0], m.group(1))
            assert self.details.value == expected, self.details
            assert type(self.details.value) is type(expected), self.details
            return
        m = re.fullmatch(r'the reason should be "(.*)"', text)
        if m:
            assert self.details.reason == m.group(1), self.details
            return
        m = re.fullmatch(r'the error-code should be "(.*)"', text)
        if m:
            code = self.details.error_code
            assert (code.value if code else "") == m.group(1), self.details
            return
        m = re.fullmatch(r'the variant should be "(.*)"', text)
        if m:
            assert self.details.variant == m.group(1), self.details
            return
        if text == "the resolved metadata should contain":
            rows = step["argument"]["dataTable"]["rows"][1:]
            for row in rows:
                key, type_name, value = (c["value"] for c in row["cells"])
                got = self.details.flag_metadata.get(key)
                want = _typed(type_name, value)
                assert got == want and type(got) is type(want), (key, self.details)
            return
        if text == "the resolved metadata is empty":
            assert dict(self.details.flag_metadata) == {}, self.details
            return
        raise AssertionError(f"unknown step: {text!r}")  # never pass a step silently

    def close(self) -> None:
        self.provider.shutdown()


def _flag_keys(steps) -> list[str]:
    keys = []
    for step in steps:
        m = re.search(r'-flag with key "(.*)" and a', step["text"])
        if m:
            keys.append(m.group(1))
    return keys


def _native_covers(pickle) -> bool:
    """True if every flag the scenario uses has a native translation."""
    steps = pickle.values[0]["steps"]
    snapshot = _native_snapshot(_selector_file(steps))
    return snapshot is not None and all(k in snapshot.flags for k in _flag_keys(steps))


NATIVE_PICKLES = [p for p in PICKLES if _native_covers(p)]


def _run(impl, tables, mapper, resolve, steps) -> None:
    from cfgcore.engine import engine_class

    scenario = Scenario(engine_class(impl), tables, mapper, resolve)
    try:
        for step in steps:
            scenario.run(step)
    finally:
        scenario.close()


@pytest.mark.skipif(not PICKLES, reason="../shared/conformance/flagd-testbed is not present")
@pytest.mark.skipif(
    flagd_interop is None, reason="the flagd importer (cfgcore.interop.flagd) is not installed"
)
@pytest.mark.parametrize("pickle", PICKLES)
def test_provider_scenario(pickle, impl):
    """Every evaluation scenario, on the testbed's flagd JSON imported, answered with
    flagd's semantics (the importer's context and resolve)."""
    steps = pickle["steps"]
    tables = _compiled("flagd", _selector_file(steps))
    _run(impl, tables, flagd_interop.context, flagd_interop.resolve, steps)


@pytest.mark.skipif(not PICKLES, reason="../shared/conformance/flagd-testbed is not present")
@pytest.mark.parametrize("pickle", NATIVE_PICKLES)
def test_provider_scenario_native(pickle, impl):
    """The scenarios whose flags need no JSONLogic, on native translations of the flags
    and the provider's own semantics (no importer involved)."""
    steps = pickle["steps"]
    _run(impl, _compiled("native", _selector_file(steps)), None, None, steps)


@pytest.mark.skipif(not PICKLES, reason="../shared/conformance/flagd-testbed is not present")
def test_native_translation_covers_the_json_only_scenarios():
    """Guard against the native files drifting from the testbed: every flag in them
    exists in the testbed's JSON with the same variant values (null variants aside)."""
    flags_dir = os.path.join(TESTBED, "flags")
    source: dict = {}
    for f in os.listdir(flags_dir):
        if f.endswith(".json"):
            with open(os.path.join(flags_dir, f), encoding="utf-8") as fh:
                source.setdefault(f[:-5], json.load(fh))
    all_flags = {
        k: v
        for name, doc in source.items()
        if not name.startswith("selector")
        for k, v in doc["flags"].items()
    }
    for native in ("allFlags", "selector-flags", "selector-flag-combined-metadata"):
        snap = _native_snapshot(native)
        reference = all_flags if native == "allFlags" else source[native]["flags"]
        for key, flag in snap.flags.items():
            variants = {k: v for k, v in flag.variants.items() if v is not None}
            assert variants == reference[key]["variants"], key
            assert flag.enabled == (reference[key]["state"] == "ENABLED"), key
            assert flag.metadata == reference[key].get("metadata", {}), key
        if native != "allFlags":
            assert snap.metadata == source[native].get("metadata", {})
