"""cfgcore's OpenFeature provider vs openfeature-provider-flagd in-process, same run.

Both sides are called the way an application calls them: through the OpenFeature SDK
client (hooks, context merging, provider dispatch). flagd runs its in-process resolver
(``FlagdProvider(resolver_type=FILE)`` over a flags JSON file, evaluated by FlagdCore);
cfgcore runs :class:`cfgcore.openfeature.CfgcoreProvider` over an engine of either
evaluator.

The flag set is the 1,000-flag scenario set of ``benchmarks/peers.py``, written as one
flagd JSON document. cfgcore evaluates that very document, imported by
``cfgcore.interop.flagd`` (flagd's fractional bucketing, so every user gets the same
answer from both), through the provider in two set-ups:

* ``cfgcore-c`` / ``cfgcore-py``: a minimal context mapping (attributes plus
  ``targetingKey``) and the provider's own answers;
* ``cfgcore-c-flagd-semantics``: the importer's ``context`` and ``resolve`` (flagd's
  exact reasons, metadata and errors, at the price of those Python functions).

Without the importer it falls back to the native equivalent that
``bench_core.cfgcore_snapshot`` builds (same shares, cfgcore's own bucketing).
``extra_info["flag_source"]`` records which.

Run::

    python -m pytest benchmarks/bench_openfeature.py --benchmark-enable \\
        --benchmark-json=openfeature.json -q
    python benchmarks/report.py openfeature.json
"""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature import api  # noqa: E402
from openfeature.evaluation_context import EvaluationContext  # noqa: E402

from bench_core import cfgcore_snapshot  # noqa: E402
from cfgcore._compat import implementations  # noqa: E402
from cfgcore.engine import engine_class  # noqa: E402
from cfgcore.openfeature import CfgcoreProvider  # noqa: E402
from peers import (  # noqa: E402
    FLAG_ON,
    FLAG_ROLLOUT,
    FLAG_RULE,
    FLAG_SPLIT,
    PREMIUM_EU,
    SPLIT_VARIANTS,
    FlagdOpenFeaturePeer,
    FlagdPeer,
    _rest,
    scenario_flags,
    user_ids,
)

IMPLS = implementations()
BATCH = 1000
USERS = user_ids()
N_FLAGS = 1000

#: The flagd JSON document both sides evaluate (flagd reads it from a file).
FLAGD_DOC = {"flags": {f.name: FlagdPeer()._flag(f) for f in scenario_flags(N_FLAGS)}}

try:
    from cfgcore.interop import flagd as _flagd_interop
except ImportError:
    _flagd_interop = None


def _lean_flagd_context(targeting_key, attributes):
    """All these flags read from a flagd context: its attributes and ``targetingKey``
    (the fractional bucketing key). flagd's full mapping (``flagd.context``) also adds
    ``$flagd.timestamp`` and version normal forms for every attribute."""
    ctx = dict(attributes)
    if targeting_key is not None:
        ctx["targetingKey"] = targeting_key
    return ctx


def _cfgcore_flags(flagd_semantics: bool):
    """(snapshot, provider keyword arguments, what it is). With ``flagd_semantics`` the
    provider uses the importer's ``context`` and ``resolve``, as an application that
    needs flagd's exact answers (reasons, metadata, errors) would."""
    if _flagd_interop is not None:
        snapshot = _flagd_interop.to_snapshot(FLAGD_DOC)
        if flagd_semantics:
            kwargs = {"context": _flagd_interop.context, "resolve": _flagd_interop.resolve}
            return snapshot, kwargs, "flagd JSON, imported; flagd.context + flagd.resolve"
        return snapshot, {"context": _lean_flagd_context}, "flagd JSON, imported"
    return cfgcore_snapshot(N_FLAGS), {}, "native equivalent (flagd importer not installed)"


_domains = itertools.count()


class CfgcoreOpenFeature:
    """The cfgcore side, shaped like the flagd peer: an OpenFeature client per domain."""

    def __init__(self, impl_name: str, flagd_semantics: bool = False) -> None:
        snapshot, kwargs, self.flag_source = _cfgcore_flags(flagd_semantics)
        engine = engine_class(IMPLS[impl_name]).from_snapshot(snapshot)
        self.provider = CfgcoreProvider(engine, **kwargs)
        self.domain = f"cfgcore-bench-openfeature-{next(_domains)}"
        api.set_provider_and_wait(self.provider, domain=self.domain)
        self.client = api.get_client(self.domain)

    def close(self) -> None:
        from openfeature.provider.no_op_provider import NoOpProvider

        self.provider.shutdown()
        api.set_provider(NoOpProvider(), domain=self.domain)

    # The same calls FlagdOpenFeaturePeer makes (benchmarks/peers.py).
    def plain_on(self):
        get = self.client.get_boolean_value
        return lambda: get(FLAG_ON, False)

    def rule(self):
        get = self.client.get_boolean_value
        ctx = EvaluationContext(str(PREMIUM_EU["user_id"]), _rest(PREMIUM_EU))
        return lambda: get(FLAG_RULE, False, ctx)

    def rollout(self):
        get, ctx = self.client.get_boolean_value, EvaluationContext
        return lambda uid: get(FLAG_ROLLOUT, False, ctx(uid))

    def split(self):
        get, ctx = self.client.get_string_value, EvaluationContext
        fallback = SPLIT_VARIANTS[0]
        return lambda uid: get(FLAG_SPLIT, fallback, ctx(uid))

    def rule_details(self):
        get = self.client.get_boolean_details
        ctx = EvaluationContext(str(PREMIUM_EU["user_id"]), _rest(PREMIUM_EU))
        return lambda: get(FLAG_RULE, False, ctx)

    # The provider alone, without the SDK client around it.
    def provider_rule(self):
        resolve = self.provider.resolve_boolean_details
        ctx = EvaluationContext(str(PREMIUM_EU["user_id"]), _rest(PREMIUM_EU))
        return lambda: resolve(FLAG_RULE, False, ctx)

    def provider_split(self):
        resolve, ctx = self.provider.resolve_string_details, EvaluationContext
        fallback = SPLIT_VARIANTS[0]
        return lambda uid: resolve(FLAG_SPLIT, fallback, ctx(uid))


class FlagdSide:
    """openfeature-provider-flagd in-process (FILE resolver) on the same flags."""

    def __init__(self) -> None:
        self.peer = FlagdOpenFeaturePeer()
        self.peer.setup(N_FLAGS)
        self.flag_source = "flagd JSON"

    def close(self) -> None:
        self.peer.close()

    def plain_on(self):
        return self.peer.plain_on()

    def rule(self):
        return self.peer.rule(PREMIUM_EU)

    def rollout(self):
        return self.peer.rollout()

    def split(self):
        return self.peer.split()

    def rule_details(self):
        get = self.peer._client.get_boolean_details
        ctx = self.peer._context(PREMIUM_EU)
        return lambda: get(FLAG_RULE, False, ctx)

    def provider_rule(self):
        resolve = self.peer._provider.resolve_boolean_details
        ctx = self.peer._context(PREMIUM_EU)
        return lambda: resolve(FLAG_RULE, False, ctx)

    def provider_split(self):
        resolve, ctx = self.peer._provider.resolve_string_details, EvaluationContext
        fallback = SPLIT_VARIANTS[0]
        return lambda uid: resolve(FLAG_SPLIT, fallback, ctx(uid))


SIDES = [f"cfgcore-{k}" for k in sorted(IMPLS)]
if _flagd_interop is not None and "c" in IMPLS:
    SIDES.append("cfgcore-c-flagd-semantics")
if FlagdOpenFeaturePeer.unavailable_reason() is None:
    SIDES.append("flagd-openfeature")


@pytest.fixture(scope="module", params=SIDES)
def side(request):
    name = request.param
    if name == "flagd-openfeature":
        s = FlagdSide()
    elif name == "cfgcore-c-flagd-semantics":
        s = CfgcoreOpenFeature("c", flagd_semantics=True)
    else:
        s = CfgcoreOpenFeature(name.removeprefix("cfgcore-"))
    yield s
    s.close()


def _run(benchmark, side, group, fn, calls):
    benchmark.group = group
    benchmark.extra_info["calls"] = calls
    benchmark.extra_info["flag_source"] = side.flag_source
    return benchmark(fn)


def _repeat(call):
    r = range(BATCH)

    def run():
        for _ in r:
            call()

    return run


def _over(call, items):
    def run():
        for x in items:
            call(x)

    return run


def test_of_plain_on(benchmark, side):
    fn = side.plain_on()
    assert fn() is True
    _run(benchmark, side, "of-plain-on", _repeat(fn), BATCH)


def test_of_rule(benchmark, side):
    fn = side.rule()
    assert fn() is True
    _run(benchmark, side, "of-rule", _repeat(fn), BATCH)


def test_of_rule_details(benchmark, side):
    fn = side.rule_details()
    d = fn()
    assert d.value is True and d.reason == "TARGETING_MATCH" and d.error_code is None
    _run(benchmark, side, "of-rule-details", _repeat(fn), BATCH)


def _users(benchmark):
    # A smoke run (--benchmark-disable) calls the batch once: a short one keeps the
    # suite fast; timed runs use all 10,000 users, like bench_core.
    return USERS[:500] if benchmark.disabled else USERS


def test_of_rollout(benchmark, side):
    fn = side.rollout()
    sample = USERS[:4000]
    assert 0.22 < sum(fn(u) for u in sample) / len(sample) < 0.28  # the same work on both
    users = _users(benchmark)
    _run(benchmark, side, "of-rollout", _over(fn, users), len(users))


def test_of_split(benchmark, side):
    fn = side.split()
    assert {fn(u) for u in USERS[:300]} == set(SPLIT_VARIANTS)
    users = _users(benchmark)
    _run(benchmark, side, "of-split", _over(fn, users), len(users))


# The providers alone: what differs between the two stacks, without the SDK client's
# per-call hook and context-merging work (the same for both, and most of the time above).
def test_of_provider_rule(benchmark, side):
    fn = side.provider_rule()
    d = fn()
    assert d.value is True and d.reason == "TARGETING_MATCH"
    _run(benchmark, side, "of-provider-rule", _repeat(fn), BATCH)


def test_of_provider_split(benchmark, side):
    fn = side.provider_split()
    assert {fn(u).value for u in USERS[:300]} == set(SPLIT_VARIANTS)
    users = _users(benchmark)
    _run(benchmark, side, "of-provider-split", _over(fn, users), len(users))


@pytest.mark.skipif(
    _flagd_interop is None or "flagd-openfeature" not in SIDES,
    reason="needs the flagd importer and openfeature-provider-flagd",
)
def test_same_answers_as_flagd():
    """Imported, the flagd document gives every user the same answers through cfgcore
    as through flagd's own provider: the timings above compare the same work."""
    ours, theirs = CfgcoreOpenFeature(sorted(IMPLS)[0], flagd_semantics=True), FlagdSide()
    lean = CfgcoreOpenFeature(sorted(IMPLS)[0])
    try:
        for make in ("rollout", "split"):
            a, b = getattr(lean, make)(), getattr(theirs, make)()
            assert [a(u) for u in USERS[:300]] == [b(u) for u in USERS[:300]], make
        for make in ("rollout", "split"):
            a, b = getattr(ours, make)(), getattr(theirs, make)()
            assert [a(u) for u in USERS[:1000]] == [b(u) for u in USERS[:1000]], make
        assert ours.rule()() is theirs.rule()() is True
        d, e = ours.rule_details()(), theirs.rule_details()()
        assert (d.value, d.variant, d.reason) == (e.value, e.variant, e.reason)
    finally:
        ours.close()
        lean.close()
        theirs.close()
