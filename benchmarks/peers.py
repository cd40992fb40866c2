"""Peer feature-flag engines, driven offline through one uniform adapter interface.

cfgcore's benchmarks compare its evaluator with the feature-flag SDKs people would
otherwise reach for. Every peer here is configured, from one neutral description of the
flags (:func:`scenario_flags`), to give the answers cfgcore gives, and runs entirely
in-process: no SDK talks to a server, no flag data is fetched, no events are sent.

Peers: ``floor`` (``dict.get`` and a hand-written mmh3 bucket), ``growthbook``,
``unleash`` (Python SDK over the yggdrasil Rust engine), ``launchdarkly`` (file data
source), ``flagsmith`` (the local-evaluation engine), ``flagd`` (the in-process
evaluator ``FlagdCore``) and ``flagd-openfeature`` (the same, through the OpenFeature
client and the flagd provider in FILE mode, i.e. the path an application calls).

Scenarios (suggested ``group=`` names, one group per scenario):

``plain_on``
    ``is_enabled`` on a flag that is on for everyone, with no context (or the cheapest
    reusable one where the SDK insists on a context).
``plain_on_dict``
    The same flag, but the caller holds a plain ``dict`` context (:data:`PREMIUM_EU`);
    whatever the SDK needs to turn that dict into its own context type is done on
    every call, because that is the cost a caller with a dict pays.
``rollout``
    A 25 % rollout by user id; the callable takes a user id (iterate over
    :func:`user_ids`), building the SDK's context for that user on every call.
``rule``
    ``user_segment == "premium" AND region in ["EU", "UK"]``. The context is built once
    when the callable is made (a service builds it once per request and checks many
    flags with it); the call is the evaluation alone.
``split``
    A 50/30/20 weighted split (control / variant_a / variant_b) by user id; the callable
    takes a user id and returns the variant name.
``all_flags``
    Every flag of the :func:`scenario_flags` set (1,000 by default) for one context,
    through the SDK's bulk call where it has one, otherwise a loop over its single-flag
    call; returns ``{flag name: value}``.

Adapter interface (:class:`Peer`)::

    peer = GrowthBookPeer()          # cheap, imports nothing heavy
    peer.setup(n_flags=1000)         # builds the SDK client from scenario_flags()
    fn = peer.plain_on()             # Callable[[], bool]
    fn = peer.plain_on_dict(ctx)     # Callable[[], bool]
    fn = peer.rollout()              # Callable[[str], bool]   (user id -> on?)
    fn = peer.rule(ctx)              # Callable[[], bool]
    fn = peer.split()                # Callable[[str], str]    (user id -> variant)
    fn = peer.all_flags(ctx)         # Callable[[], dict[str, object]]
    peer.close()                     # stops background threads, removes temp files

Adapters are context managers (``with peer_cls() as peer:`` sets up and closes). Each
returned callable does ONE evaluation the way a user of that SDK would on a hot path:
clients, flag stores and reusable context objects are made outside the call.
``Peer.notes`` says, per scenario, what each SDK does inside the call.

:func:`available_peers` lists the adapters whose SDK imports here;
:func:`unavailable_peers` gives the reason for each one that does not;
:func:`describe_peers` renders versions and per-call notes as a Markdown table.

Caveat for reading Flagsmith figures: its engine has no single-flag call, so the
single-flag scenarios give it an environment holding just that flag (see
:class:`FlagsmithPeer`).

Use from a benchmark::

    import itertools

    import pytest
    from peers import PREMIUM_EU, available_peers, user_ids

    @pytest.fixture(scope="module", params=available_peers(), ids=lambda c: c.name)
    def peer(request):
        with request.param() as p:
            yield p

    def test_rule(benchmark, peer):
        benchmark.group = "rule"
        assert benchmark(peer.rule(PREMIUM_EU)) is True

    def test_rollout(benchmark, peer):
        # A different user on every call; next() costs the same for every peer.
        fn, ids = peer.rollout(), itertools.cycle(user_ids())
        benchmark.group = "rollout"
        benchmark(lambda: fn(next(ids)))
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module, metadata
from types import MappingProxyType
from typing import Any, ClassVar

__all__ = [
    "FREE_US",
    "PREMIUM_EU",
    "ROLLOUT_PERCENT",
    "RULE_REGIONS",
    "RULE_SEGMENT",
    "SPLIT_VARIANTS",
    "SPLIT_WEIGHTS",
    "FLAG_ON",
    "FLAG_ROLLOUT",
    "FLAG_RULE",
    "FLAG_SPLIT",
    "FlagSpec",
    "Peer",
    "PEER_CLASSES",
    "available_peers",
    "describe_peers",
    "expected_value",
    "unavailable_peers",
    "scenario_flags",
    "user_ids",
]

# --------------------------------------------------------------------------------------
# The scenarios, described once and independently of any SDK.
# --------------------------------------------------------------------------------------

FLAG_ON = "plain_on"
FLAG_ROLLOUT = "rollout_25"
FLAG_RULE = "premium_eu"
FLAG_SPLIT = "recommendation_algorithm_v2"

ROLLOUT_PERCENT = 25
RULE_SEGMENT = "premium"
RULE_REGIONS = ("EU", "UK")
SPLIT_WEIGHTS = (("control", 50), ("variant_a", 30), ("variant_b", 20))
SPLIT_VARIANTS = tuple(name for name, _ in SPLIT_WEIGHTS)

# Read-only: some SDKs keep (and on teardown clear) the attribute dict they are given,
# so adapters always hand them a copy, and these shared constants cannot be emptied.
PREMIUM_EU: Mapping[str, str] = MappingProxyType(
    {"user_id": "12345", "user_segment": "premium", "region": "EU"}
)
FREE_US: Mapping[str, str] = MappingProxyType(
    {"user_id": "67890", "user_segment": "free", "region": "US"}
)

# Loopback discard port: an SDK that insists on a server URL gets one that can never
# leave this machine, so a code path we failed to switch off cannot reach the internet.
_NOWHERE_URL = "http://127.0.0.1:9/"

_KINDS = ("on", "off", "rollout", "rule", "split")


@dataclass(frozen=True)
class FlagSpec:
    """One flag, in SDK-neutral terms.

    ``kind`` is ``"on"`` (on for everyone), ``"off"`` (off for everyone), ``"rollout"``
    (on for :data:`ROLLOUT_PERCENT` % of user ids), ``"rule"`` (on when
    ``user_segment == RULE_SEGMENT`` and ``region in RULE_REGIONS``) or ``"split"``
    (a :data:`SPLIT_WEIGHTS` variant chosen by user id). The flag name doubles as the
    hashing salt/seed, so two rollouts bucket users independently.
    """

    name: str
    kind: str

    @property
    def is_boolean(self) -> bool:
        """True for flags whose value is on/off (every kind except ``split``)."""
        return self.kind != "split"


def scenario_flags(n_flags: int = 1000) -> list[FlagSpec]:
    """The flag set every peer is loaded with: the four scenario flags, then fillers.

    Fillers ``flag_0004`` ... cycle through on/off/rollout/rule/split so the bulk
    scenario evaluates a realistic mix rather than 1,000 constants.

    >>> [f.kind for f in scenario_flags(6)]
    ['on', 'rollout', 'rule', 'split', 'on', 'off']
    """
    if n_flags < 4:
        raise ValueError(f"n_flags must be at least 4 (the scenario flags), got {n_flags}")
    flags = [
        FlagSpec(FLAG_ON, "on"),
        FlagSpec(FLAG_ROLLOUT, "rollout"),
        FlagSpec(FLAG_RULE, "rule"),
        FlagSpec(FLAG_SPLIT, "split"),
    ]
    for i in range(4, n_flags):
        flags.append(FlagSpec(f"flag_{i:04d}", _KINDS[(i - 4) % len(_KINDS)]))
    return flags


def user_ids(n: int = 10_000) -> list[str]:
    """Deterministic, distinct user ids for the rollout and split scenarios."""
    return [f"user-{i}" for i in range(n)]


def expected_value(spec: FlagSpec, context: Mapping[str, Any]) -> object | None:
    """What every peer must answer for ``spec`` and ``context``; None where it is
    decided by the SDK's own hashing (rollout and split)."""
    if spec.kind == "on":
        return True
    if spec.kind == "off":
        return False
    if spec.kind == "rule":
        return context.get("user_segment") == RULE_SEGMENT and context.get("region") in RULE_REGIONS
    return None


def _rest(context: Mapping[str, Any]) -> dict[str, Any]:
    """Context attributes other than the user id (SDKs that hold the id apart)."""
    return {k: v for k, v in context.items() if k != "user_id"}


# --------------------------------------------------------------------------------------
# The adapter base class.
# --------------------------------------------------------------------------------------


class Peer:
    """Uniform driver for one peer engine; see the module docstring for the contract."""

    #: Short name used as the benchmark id.
    name: ClassVar[str] = ""
    #: PyPI distribution whose version is reported.
    distribution: ClassVar[str] = ""
    #: Modules that must import for the adapter to be usable.
    requires: ClassVar[tuple[str, ...]] = ()
    #: Per scenario: what the SDK does inside one call (for the benchmark report).
    notes: ClassVar[dict[str, str]] = {}

    def __init__(self) -> None:
        self.flags: list[FlagSpec] = []
        self._ready = False

    # -- lifecycle ------------------------------------------------------------------

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when the SDK imports; otherwise why it does not."""
        for module in cls.requires:
            try:
                import_module(module)
            except Exception as exc:  # an SDK may fail with more than ImportError
                return f"{cls.distribution}: cannot import {module}: {type(exc).__name__}: {exc}"
        return None

    @classmethod
    def version(cls) -> str:
        """Installed version of the peer's distribution ("?" if unknown)."""
        try:
            return metadata.version(cls.distribution)
        except metadata.PackageNotFoundError:
            return "?"

    def setup(self, n_flags: int = 1000) -> None:
        """Build the SDK client holding :func:`scenario_flags` ``(n_flags)``.

        Calling it again closes the previous client first.
        """
        self.close()
        self.flags = scenario_flags(n_flags)
        self._setup(self.flags)
        self._ready = True

    def close(self) -> None:
        """Stop the SDK's background threads and remove anything written; idempotent."""
        if self._ready:
            self._ready = False
            self._close()

    def __enter__(self) -> Peer:
        if not self._ready:
            self.setup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.version()}>"

    # -- to implement ---------------------------------------------------------------

    def _setup(self, flags: list[FlagSpec]) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def plain_on(self) -> Callable[[], bool]:
        """Scenario (a): the always-on flag, no context."""
        raise NotImplementedError

    def plain_on_dict(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """Scenario (b): the always-on flag with a plain dict context, converted per call."""
        raise NotImplementedError

    def rollout(self) -> Callable[[str], bool]:
        """Scenario (c): user id -> is the 25 % rollout flag on for them."""
        raise NotImplementedError

    def rule(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """Scenario (d): the premium-and-EU/UK rule for ``context`` (built once, here)."""
        raise NotImplementedError

    def split(self) -> Callable[[str], str]:
        """Scenario (e): user id -> variant name of the 50/30/20 split."""
        raise NotImplementedError

    def all_flags(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], dict[str, object]]:
        """Scenario (f): every flag for ``context`` -> ``{name: value}``."""
        raise NotImplementedError


# --------------------------------------------------------------------------------------
# Hand-written floor: what a dict lookup and a bare murmur3 bucket cost in Python.
# --------------------------------------------------------------------------------------

_BUCKETS = 100_000


class FloorPeer(Peer):
    """No engine at all: ``dict.get`` and a hand-written mmh3 bucket.

    The lower bound any Python-callable engine is measured against; it has no
    validation, no reload, no fallbacks.
    """

    name = "floor"
    distribution = "mmh3"
    requires = ("mmh3",)
    notes = {
        "plain_on": "dict.get on a name -> bool dict",
        "plain_on_dict": "dict.get; the context is ignored (nothing to convert)",
        "rollout": "f-string salt:uid, mmh3.hash unsigned, % 100000 < 25000",
        "rule": "two dict.get and a set membership test",
        "split": "mmh3 bucket, two threshold compares",
        "all_flags": "dict comprehension over per-flag closures",
    }

    def _setup(self, flags: list[FlagSpec]) -> None:
        import mmh3

        self._hash = mmh3.hash
        self._static = {f.name: f.kind == "on" for f in flags if f.kind in ("on", "off")}
        self._regions = frozenset(RULE_REGIONS)
        limits = []
        acc = 0
        for variant, weight in SPLIT_WEIGHTS:
            acc += weight * _BUCKETS // 100
            limits.append((acc, variant))
        self._split_limits = tuple(limits)

    def _rollout_fn(self, salt: str) -> Callable[[str], bool]:
        hash_ = self._hash
        cut = ROLLOUT_PERCENT * _BUCKETS // 100

        def rollout(uid: str) -> bool:
            return hash_(f"{salt}:{uid}", 0, signed=False) % _BUCKETS < cut

        return rollout

    def _split_fn(self, salt: str) -> Callable[[str], str]:
        hash_ = self._hash
        (a, control), (b, variant_a), (_, variant_b) = self._split_limits

        def split(uid: str) -> str:
            bucket = hash_(f"{salt}:{uid}", 0, signed=False) % _BUCKETS
            return control if bucket < a else variant_a if bucket < b else variant_b

        return split

    def plain_on(self) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on`."""
        get = self._static.get
        return lambda: get(FLAG_ON, False)

    def plain_on_dict(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on_dict`."""
        get = self._static.get
        return lambda: get(FLAG_ON, False)

    def rollout(self) -> Callable[[str], bool]:
        """See :meth:`Peer.rollout`."""
        return self._rollout_fn(FLAG_ROLLOUT)

    def _rule_check(self, context: Mapping[str, Any]) -> bool:
        segment, region = context.get("user_segment"), context.get("region")
        return segment == RULE_SEGMENT and region in self._regions

    def rule(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.rule`."""
        check = self._rule_check
        return lambda: check(context)

    def split(self) -> Callable[[str], str]:
        """See :meth:`Peer.split`."""
        return self._split_fn(FLAG_SPLIT)

    def all_flags(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], dict[str, object]]:
        """See :meth:`Peer.all_flags`."""
        uid = str(context.get("user_id", ""))
        evaluators: dict[str, Callable[[], object]] = {}
        for f in self.flags:
            if f.kind in ("on", "off"):
                value = f.kind == "on"
                evaluators[f.name] = lambda v=value: v
            elif f.kind == "rollout":
                fn = self._rollout_fn(f.name)
                evaluators[f.name] = lambda fn=fn: fn(uid)
            elif f.kind == "rule":
                evaluators[f.name] = lambda: self._rule_check(context)
            else:
                sfn = self._split_fn(f.name)
                evaluators[f.name] = lambda sfn=sfn: sfn(uid)
        items = tuple(evaluators.items())
        return lambda: {name: fn() for name, fn in items}


# --------------------------------------------------------------------------------------
# GrowthBook (growthbook): pure-Python SDK, features given as a dict, no client key.
# --------------------------------------------------------------------------------------


class GrowthBookPeer(Peer):
    """GrowthBook Python SDK, ``GrowthBook(features=...)`` with no API host or client key,
    so it never fetches, streams or refreshes.

    Attributes are the cfgcore dict as is: rollouts and experiments hash on
    ``hashAttribute="user_id"``. GrowthBook's documented server pattern is one
    ``GrowthBook`` per request; the adapters instead keep one instance per scenario and
    call ``set_attributes`` (the cheaper, single-threaded reuse of that pattern).
    """

    name = "growthbook"
    distribution = "growthbook"
    requires = ("growthbook",)
    notes = {
        "plain_on": "gb.is_on(key): builds an EvaluationContext, walks the feature",
        "plain_on_dict": "gb.set_attributes(dict) then gb.is_on(key)",
        "rollout": "gb.set_attributes({'user_id': uid}) then is_on; force rule with "
        "coverage 0.25 hashed (FNV-1a) on user_id",
        "rule": "is_on on an instance built with the context; condition "
        "{user_segment: premium, region: {$in: [EU, UK]}}",
        "split": "set_attributes then get_feature_value; experiment rule, weights .5/.3/.2",
        "all_flags": "no bulk call: eval_feature(key).value for every feature",
    }

    def _feature(self, f: FlagSpec) -> dict[str, Any]:
        if f.kind in ("on", "off"):
            return {"defaultValue": f.kind == "on"}
        if f.kind == "rollout":
            return {
                "defaultValue": False,
                "rules": [
                    {
                        "force": True,
                        "coverage": ROLLOUT_PERCENT / 100,
                        "hashAttribute": "user_id",
                        "seed": f.name,
                        "hashVersion": 2,
                    }
                ],
            }
        if f.kind == "rule":
            return {
                "defaultValue": False,
                "rules": [
                    {
                        "condition": {
                            "user_segment": RULE_SEGMENT,
                            "region": {"$in": list(RULE_REGIONS)},
                        },
                        "force": True,
                    }
                ],
            }
        return {
            "defaultValue": SPLIT_VARIANTS[0],
            "rules": [
                {
                    "key": f.name,
                    "seed": f.name,
                    "hashAttribute": "user_id",
                    "hashVersion": 2,
                    "variations": list(SPLIT_VARIANTS),
                    "weights": [w / 100 for _, w in SPLIT_WEIGHTS],
                    "coverage": 1.0,
                }
            ],
        }

    def _setup(self, flags: list[FlagSpec]) -> None:
        from growthbook import GrowthBook

        self._cls = GrowthBook
        self._features = {f.name: self._feature(f) for f in flags}
        self._instances: list[Any] = []

    def _new(self, attributes: Mapping[str, Any] | None = None) -> Any:
        gb = self._cls(features=self._features, attributes=dict(attributes or {}))
        self._instances.append(gb)
        return gb

    def _close(self) -> None:
        for gb in self._instances:
            gb.destroy()
        self._instances.clear()

    def plain_on(self) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on`."""
        is_on = self._new().is_on
        return lambda: is_on(FLAG_ON)

    def plain_on_dict(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on_dict`."""
        gb = self._new()
        set_attributes, is_on = gb.set_attributes, gb.is_on

        def call() -> bool:
            set_attributes(dict(context))
            return is_on(FLAG_ON)

        return call

    def rollout(self) -> Callable[[str], bool]:
        """See :meth:`Peer.rollout`."""
        gb = self._new()
        set_attributes, is_on = gb.set_attributes, gb.is_on

        def call(uid: str) -> bool:
            set_attributes({"user_id": uid})
            return is_on(FLAG_ROLLOUT)

        return call

    def rule(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.rule`."""
        is_on = self._new(context).is_on
        return lambda: is_on(FLAG_RULE)

    def split(self) -> Callable[[str], str]:
        """See :meth:`Peer.split`."""
        gb = self._new()
        set_attributes, value = gb.set_attributes, gb.get_feature_value
        fallback = SPLIT_VARIANTS[0]

        def call(uid: str) -> str:
            set_attributes({"user_id": uid})
            return value(FLAG_SPLIT, fallback)

        return call

    def all_flags(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], dict[str, object]]:
        """See :meth:`Peer.all_flags`."""
        eval_feature = self._new(context).eval_feature
        keys = tuple(self._features)
        return lambda: {k: eval_feature(k).value for k in keys}


# --------------------------------------------------------------------------------------
# Unleash (UnleashClient + the yggdrasil Rust engine via ctypes), offline bootstrap.
# --------------------------------------------------------------------------------------


class UnleashPeer(Peer):
    """Unleash Python SDK in offline mode.

    Features are bootstrapped into a ``FileCache`` in a private temp directory and the
    client is started with ``initialize_client(fetch_toggles=False)``, registration and
    metrics disabled: the client never sends a request. Offline mode still runs an
    APScheduler thread that reloads the cache; its interval is set to a day so it does
    not fire mid-benchmark, and :meth:`close` shuts it down (``destroy()``).
    """

    name = "unleash"
    distribution = "UnleashClient"
    requires = ("UnleashClient", "yggdrasil_engine")
    notes = {
        "plain_on": "client.is_enabled(key): context enriched (copy, currentTime, "
        "str() of values), json.dumps, ctypes call into yggdrasil, JSON reply parsed",
        "plain_on_dict": "is_enabled(key, {'userId': ..., 'properties': {...}}) built per call",
        "rollout": "is_enabled(key, {'userId': uid}); flexibleRollout 25, stickiness userId",
        "rule": "is_enabled(key, ctx) with a prebuilt context dict; default strategy with "
        "two IN constraints (the SDK still enriches and serialises it per call)",
        "split": "get_variant(key, {'userId': uid})['name']; strategy variants 500/300/200",
        "all_flags": "no bulk call: is_enabled / get_variant per flag",
    }

    def _feature(self, f: FlagSpec) -> dict[str, Any]:
        on = f.kind != "off"
        strategy: dict[str, Any] = {"name": "default", "parameters": {}}
        if f.kind == "rollout":
            strategy = {
                "name": "flexibleRollout",
                "parameters": {
                    "rollout": str(ROLLOUT_PERCENT),
                    "stickiness": "userId",
                    "groupId": f.name,
                },
            }
        elif f.kind == "rule":
            strategy["constraints"] = [
                {"contextName": "user_segment", "operator": "IN", "values": [RULE_SEGMENT]},
                {"contextName": "region", "operator": "IN", "values": list(RULE_REGIONS)},
            ]
        elif f.kind == "split":
            strategy = {
                "name": "flexibleRollout",
                "parameters": {"rollout": "100", "stickiness": "userId", "groupId": f.name},
                "variants": [
                    {
                        "name": variant,
                        "weight": weight * 10,
                        "weightType": "variable",
                        "stickiness": "userId",
                    }
                    for variant, weight in SPLIT_WEIGHTS
                ],
            }
        return {
            "name": f.name,
            "type": "release",
            "enabled": on,
            "impressionData": False,
            "strategies": [strategy],
        }

    def _setup(self, flags: list[FlagSpec]) -> None:
        from UnleashClient import UnleashClient
        from UnleashClient.cache import FileCache
        from UnleashClient.utils import InstanceAllowType

        self._tmp = tempfile.mkdtemp(prefix="cfgcore-bench-unleash-")
        try:
            cache = FileCache("cfgcore-bench", directory=self._tmp)
            cache.bootstrap_from_dict({"version": 2, "features": [self._feature(f) for f in flags]})
            self._client = UnleashClient(
                url=_NOWHERE_URL,
                app_name="cfgcore-bench",
                refresh_interval=86_400,
                disable_metrics=True,
                disable_registration=True,
                cache=cache,
                multiple_instance_mode=InstanceAllowType.SILENTLY_ALLOW,
            )
            self._client.initialize_client(fetch_toggles=False)
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self._boolean = {f.name: f.is_boolean for f in flags}

    def _close(self) -> None:
        try:
            self._client.destroy()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    @staticmethod
    def _native(context: Mapping[str, Any]) -> dict[str, Any]:
        return {"userId": str(context.get("user_id", "")), "properties": _rest(context)}

    def plain_on(self) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on`."""
        return lambda is_enabled=self._client.is_enabled: is_enabled(FLAG_ON)

    def plain_on_dict(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on_dict`."""
        is_enabled, native = self._client.is_enabled, self._native
        return lambda: is_enabled(FLAG_ON, native(context))

    def rollout(self) -> Callable[[str], bool]:
        """See :meth:`Peer.rollout`."""
        is_enabled = self._client.is_enabled
        return lambda uid: is_enabled(FLAG_ROLLOUT, {"userId": uid})

    def rule(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.rule`."""
        is_enabled, native = self._client.is_enabled, self._native(context)
        return lambda: is_enabled(FLAG_RULE, native)

    def split(self) -> Callable[[str], str]:
        """See :meth:`Peer.split`."""
        get_variant = self._client.get_variant
        return lambda uid: get_variant(FLAG_SPLIT, {"userId": uid})["name"]

    def all_flags(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], dict[str, object]]:
        """See :meth:`Peer.all_flags`."""
        is_enabled, get_variant = self._client.is_enabled, self._client.get_variant
        native = self._native(context)
        items = tuple(self._boolean.items())
        return lambda: {
            name: is_enabled(name, native) if boolean else get_variant(name, native)["name"]
            for name, boolean in items
        }


# --------------------------------------------------------------------------------------
# LaunchDarkly (launchdarkly-server-sdk): file data source, events off.
# --------------------------------------------------------------------------------------


@contextmanager
def _files_read_as_json() -> Iterator[None]:
    """LaunchDarkly's ``Files`` data source reads its files as JSON while this holds.

    Where PyYAML is installed, the data source parses every file, JSON included, with
    ``yaml.safe_load``: PyYAML's pure-Python parser, 1.5 to 2 s of CPU for the
    1,000-flag file (``json.loads``: 0.05 s), paid by each module that sets the peer up
    (three times that in wall time on a loaded machine). Without PyYAML the data source
    reads the file with ``json.loads``, which gives the same flags (the file is JSON);
    this switches the data source to that path while the client starts (the file is
    read then, once: ``auto_update=False``). The flags, the store and every evaluation
    are the SDK's as before. Where the SDK has no such switch, the file is read as the
    SDK reads it.
    """
    try:
        from ldclient.impl.integrations.files import file_data_source
    except ImportError:  # another layout of the SDK: nothing to switch
        yield
        return
    if not hasattr(file_data_source, "have_yaml"):
        yield
        return
    had = file_data_source.have_yaml
    file_data_source.have_yaml = False
    try:
        yield
    finally:
        file_data_source.have_yaml = had


class LaunchDarklyPeer(Peer):
    """LaunchDarkly server SDK with the ``Files`` data source (full flag JSON, so
    rollouts and rules use the production evaluator; ``TestData`` cannot express
    percentage rollouts) and ``send_events=False`` (no event processor, no diagnostics).

    LaunchDarkly always needs a ``Context``; scenario (a) reuses one prebuilt context.
    """

    name = "launchdarkly"
    distribution = "launchdarkly-server-sdk"
    requires = ("ldclient",)
    notes = {
        "plain_on": "client.variation(key, ctx, False) with a prebuilt Context "
        "(the SDK has no context-free call)",
        "plain_on_dict": "Context.from_dict({'kind': 'user', 'key': ..., **attrs}) per call, "
        "then variation",
        "rollout": "Context.create(uid) per call, then variation; fallthrough rollout "
        "25000/75000 of 100000",
        "rule": "variation with a prebuilt Context; rule with two 'in' clauses",
        "split": "Context.create(uid) per call, variation; rollout 50000/30000/20000",
        "all_flags": "bulk: client.all_flags_state(ctx).to_values_map()",
    }

    def _flag(self, f: FlagSpec) -> dict[str, Any]:
        flag: dict[str, Any] = {
            "key": f.name,
            "version": 1,
            "on": True,
            "salt": f.name,
            "variations": [True, False],
            "offVariation": 1,
            "fallthrough": {"variation": 0},
            "targets": [],
            "contextTargets": [],
            "rules": [],
            "prerequisites": [],
            "trackEvents": False,
        }
        if f.kind == "off":
            flag["fallthrough"] = {"variation": 1}
        elif f.kind == "rollout":
            cut = ROLLOUT_PERCENT * _BUCKETS // 100
            flag["fallthrough"] = {
                "rollout": {
                    "variations": [
                        {"variation": 0, "weight": cut},
                        {"variation": 1, "weight": _BUCKETS - cut},
                    ]
                }
            }
        elif f.kind == "rule":
            flag["fallthrough"] = {"variation": 1}
            flag["rules"] = [
                {
                    "id": f"{f.name}-rule",
                    "variation": 0,
                    "trackEvents": False,
                    "clauses": [
                        {
                            "contextKind": "user",
                            "attribute": "user_segment",
                            "op": "in",
                            "values": [RULE_SEGMENT],
                            "negate": False,
                        },
                        {
                            "contextKind": "user",
                            "attribute": "region",
                            "op": "in",
                            "values": list(RULE_REGIONS),
                            "negate": False,
                        },
                    ],
                }
            ]
        elif f.kind == "split":
            flag["variations"] = list(SPLIT_VARIANTS)
            flag["offVariation"] = 0
            flag["fallthrough"] = {
                "rollout": {
                    "variations": [
                        {"variation": i, "weight": weight * _BUCKETS // 100}
                        for i, (_, weight) in enumerate(SPLIT_WEIGHTS)
                    ]
                }
            }
        return flag

    def _setup(self, flags: list[FlagSpec]) -> None:
        from ldclient.client import LDClient
        from ldclient.config import Config
        from ldclient.context import Context
        from ldclient.integrations import Files

        self._Context = Context
        self._tmp = tempfile.mkdtemp(prefix="cfgcore-bench-ld-")
        try:
            path = os.path.join(self._tmp, "flags.json")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"flags": {f.name: self._flag(f) for f in flags}}))
            config = Config(
                sdk_key="cfgcore-bench-offline",
                update_processor_class=Files.new_data_source(paths=[path], auto_update=False),
                send_events=False,
                diagnostic_opt_out=True,
                base_uri=_NOWHERE_URL,
                events_uri=_NOWHERE_URL,
                stream_uri=_NOWHERE_URL,
            )
            with _files_read_as_json():
                self._client = LDClient(config=config, start_wait=5)
            if not self._client.is_initialized():
                raise RuntimeError("LaunchDarkly file data source did not initialise")
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self._defaults = {
            f.name: (SPLIT_VARIANTS[0] if f.kind == "split" else False) for f in flags
        }

    def _close(self) -> None:
        try:
            self._client.close()
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def _context(self, context: Mapping[str, Any]) -> Any:
        return self._Context.from_dict(
            {"kind": "user", "key": str(context.get("user_id", "")), **_rest(context)}
        )

    def plain_on(self) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on`."""
        variation, ctx = self._client.variation, self._Context.create("anonymous-bench")
        return lambda: variation(FLAG_ON, ctx, False)

    def plain_on_dict(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on_dict`."""
        variation, make = self._client.variation, self._context
        return lambda: variation(FLAG_ON, make(context), False)

    def rollout(self) -> Callable[[str], bool]:
        """See :meth:`Peer.rollout`."""
        variation, create = self._client.variation, self._Context.create
        return lambda uid: variation(FLAG_ROLLOUT, create(uid), False)

    def rule(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.rule`."""
        variation, ctx = self._client.variation, self._context(context)
        return lambda: variation(FLAG_RULE, ctx, False)

    def split(self) -> Callable[[str], str]:
        """See :meth:`Peer.split`."""
        variation, create = self._client.variation, self._Context.create
        fallback = SPLIT_VARIANTS[0]
        return lambda uid: variation(FLAG_SPLIT, create(uid), fallback)

    def all_flags(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], dict[str, object]]:
        """See :meth:`Peer.all_flags`."""
        all_flags_state, ctx = self._client.all_flags_state, self._context(context)
        return lambda: all_flags_state(ctx).to_values_map()


# --------------------------------------------------------------------------------------
# Flagsmith local evaluation engine (flagsmith-flag-engine): pure functions on a context.
# --------------------------------------------------------------------------------------


class FlagsmithPeer(Peer):
    """Flagsmith's local-evaluation engine, ``get_evaluation_result(context)``.

    The engine has no single-flag call: it evaluates every feature (and every segment)
    in the context it is given. The single-flag scenarios therefore hand it an
    environment holding only the flag under test (and its segment), which is the
    engine's cost for one flag; a Flagsmith SDK user whose environment holds N flags
    pays the ``all_flags`` cost on each identity evaluation instead.
    Rollouts are a segment with a ``PERCENTAGE_SPLIT`` condition overriding a disabled
    feature; the split is a multivariate feature (control is the remainder).
    """

    name = "flagsmith"
    distribution = "flagsmith-flag-engine"
    requires = ("flag_engine.engine",)
    notes = {
        "plain_on": "get_evaluation_result(env context with the one feature)",
        "plain_on_dict": "identity {identifier, traits} built from the dict per call, "
        "then get_evaluation_result",
        "rollout": "identity {identifier: uid} per call; segment PERCENTAGE_SPLIT 25 "
        "(md5-based percentage)",
        "rule": "prebuilt context with identity traits; segment ALL(EQUAL, IN)",
        "split": "identity per call; multivariate feature 30/20 + control remainder",
        "all_flags": "bulk: get_evaluation_result over the whole environment",
    }

    def _setup(self, flags: list[FlagSpec]) -> None:
        from flag_engine.engine import get_evaluation_result

        self._evaluate = get_evaluation_result
        self._env = {"key": "cfgcore-bench-env", "name": "cfgcore-bench"}
        self._features: dict[str, dict[str, Any]] = {}
        self._segments: dict[str, dict[str, Any]] = {}
        self._segment_of: dict[str, str] = {}
        for i, f in enumerate(flags, start=1):
            feature: dict[str, Any] = {
                "key": str(i),
                "name": f.name,
                "enabled": f.kind in ("on", "split"),
                "value": None,
            }
            condition: dict[str, Any] | None = None
            if f.kind == "split":
                feature["value"] = SPLIT_VARIANTS[0]
                # The remainder after the listed variants is the feature's own value,
                # so control is not listed; weights are percentages.
                feature["variants"] = [
                    {"key": variant, "value": variant, "weight": weight, "priority": p}
                    for p, (variant, weight) in enumerate(SPLIT_WEIGHTS[1:])
                ]
            elif f.kind == "rollout":
                condition = {
                    "type": "ALL",
                    "conditions": [
                        {
                            "property": "",
                            "operator": "PERCENTAGE_SPLIT",
                            "value": str(ROLLOUT_PERCENT),
                        }
                    ],
                }
            elif f.kind == "rule":
                condition = {
                    "type": "ALL",
                    "conditions": [
                        {"property": "user_segment", "operator": "EQUAL", "value": RULE_SEGMENT},
                        {"property": "region", "operator": "IN", "value": list(RULE_REGIONS)},
                    ],
                }
            self._features[f.name] = feature
            if condition is not None:
                segment_key = f"{i}"
                self._segments[segment_key] = {
                    "key": segment_key,
                    "name": f"{f.name}_segment",
                    "rules": [condition],
                    "overrides": [{**feature, "enabled": True, "priority": 0}],
                }
                self._segment_of[f.name] = segment_key

    def _base(self, names: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Environment context holding ``names`` (all features when None)."""
        if names is None:
            features, segments = self._features, self._segments
        else:
            features = {n: self._features[n] for n in names}
            segments = {
                self._segment_of[n]: self._segments[self._segment_of[n]]
                for n in names
                if n in self._segment_of
            }
        base: dict[str, Any] = {"environment": self._env, "features": features}
        if segments:
            base["segments"] = segments
        return base

    @staticmethod
    def _identity(context: Mapping[str, Any]) -> dict[str, Any]:
        return {"identifier": str(context.get("user_id", "")), "traits": _rest(context)}

    def plain_on(self) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on`."""
        evaluate, base = self._evaluate, self._base((FLAG_ON,))
        return lambda: evaluate(base)["flags"][FLAG_ON]["enabled"]

    def plain_on_dict(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on_dict`."""
        evaluate, base, identity = self._evaluate, self._base((FLAG_ON,)), self._identity

        def call() -> bool:
            return evaluate({**base, "identity": identity(context)})["flags"][FLAG_ON]["enabled"]

        return call

    def rollout(self) -> Callable[[str], bool]:
        """See :meth:`Peer.rollout`."""
        evaluate, base = self._evaluate, self._base((FLAG_ROLLOUT,))

        def call(uid: str) -> bool:
            return evaluate({**base, "identity": {"identifier": uid}})["flags"][FLAG_ROLLOUT][
                "enabled"
            ]

        return call

    def rule(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.rule`."""
        ctx = {**self._base((FLAG_RULE,)), "identity": self._identity(context)}
        evaluate = self._evaluate
        return lambda: evaluate(ctx)["flags"][FLAG_RULE]["enabled"]

    def split(self) -> Callable[[str], str]:
        """See :meth:`Peer.split`."""
        evaluate, base = self._evaluate, self._base((FLAG_SPLIT,))

        def call(uid: str) -> str:
            return evaluate({**base, "identity": {"identifier": uid}})["flags"][FLAG_SPLIT]["value"]

        return call

    def all_flags(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], dict[str, object]]:
        """See :meth:`Peer.all_flags`."""
        ctx = {**self._base(), "identity": self._identity(context)}
        evaluate = self._evaluate
        split_names = frozenset(f.name for f in self.flags if not f.is_boolean)

        def call() -> dict[str, object]:
            flags = evaluate(ctx)["flags"]
            return {
                name: r["value"] if name in split_names else r["enabled"]
                for name, r in flags.items()
            }

        return call


# --------------------------------------------------------------------------------------
# flagd in-process evaluator (openfeature-flagd-core's FlagdCore).
# --------------------------------------------------------------------------------------


class FlagdPeer(Peer):
    """flagd's in-process evaluator, ``FlagdCore`` from openfeature-flagd-core.

    This is the evaluator the flagd provider's in-process resolver (FILE or gRPC sync
    mode) delegates every resolution to; calling it directly skips the OpenFeature
    client's hook and context-merging layer and the provider's file-watcher thread,
    and keeps the flag JSON, JsonLogic targeting and ``fractional`` bucketing
    (murmur3 over CBOR of [flagKey, targetingKey]) exactly as flagd runs them.
    """

    name = "flagd"
    distribution = "openfeature-flagd-core"
    requires = ("openfeature.contrib.tools.flagd.core", "openfeature.evaluation_context")
    notes = {
        "plain_on": "core.resolve_boolean_value(key, False).value; static flag, no targeting",
        "plain_on_dict": "EvaluationContext(user_id, attrs) built per call, then resolve",
        "rollout": "EvaluationContext(uid) per call; JsonLogic {fractional: [[on,25],[off,75]]}",
        "rule": "prebuilt EvaluationContext; JsonLogic if/and/==/in",
        "split": "EvaluationContext(uid) per call, resolve_string_value; fractional 50/30/20",
        "all_flags": "no bulk call in-process: resolve_* per flag",
    }

    def _flag(self, f: FlagSpec) -> dict[str, Any]:
        boolean = {"variants": {"on": True, "off": False}}
        if f.kind in ("on", "off"):
            return {"state": "ENABLED", **boolean, "defaultVariant": f.kind}
        if f.kind == "rollout":
            return {
                "state": "ENABLED",
                **boolean,
                "defaultVariant": "off",
                "targeting": {
                    "fractional": [["on", ROLLOUT_PERCENT], ["off", 100 - ROLLOUT_PERCENT]]
                },
            }
        if f.kind == "rule":
            return {
                "state": "ENABLED",
                **boolean,
                "defaultVariant": "off",
                "targeting": {
                    "if": [
                        {
                            "and": [
                                {"==": [{"var": "user_segment"}, RULE_SEGMENT]},
                                {"in": [{"var": "region"}, list(RULE_REGIONS)]},
                            ]
                        },
                        "on",
                        "off",
                    ]
                },
            }
        return {
            "state": "ENABLED",
            "variants": {v: v for v in SPLIT_VARIANTS},
            "defaultVariant": SPLIT_VARIANTS[0],
            "targeting": {"fractional": [[v, w] for v, w in SPLIT_WEIGHTS]},
        }

    def _setup(self, flags: list[FlagSpec]) -> None:
        from openfeature.contrib.tools.flagd.core import FlagdCore
        from openfeature.evaluation_context import EvaluationContext

        self._Ctx = EvaluationContext
        self._core = FlagdCore()
        self._core.set_flags({"flags": {f.name: self._flag(f) for f in flags}})
        self._boolean = {f.name: f.is_boolean for f in flags}

    def _context(self, context: Mapping[str, Any]) -> Any:
        return self._Ctx(str(context.get("user_id", "")), _rest(context))

    def plain_on(self) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on`."""
        resolve = self._core.resolve_boolean_value
        return lambda: resolve(FLAG_ON, False).value

    def plain_on_dict(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on_dict`."""
        resolve, make = self._core.resolve_boolean_value, self._context
        return lambda: resolve(FLAG_ON, False, make(context)).value

    def rollout(self) -> Callable[[str], bool]:
        """See :meth:`Peer.rollout`."""
        resolve, ctx = self._core.resolve_boolean_value, self._Ctx
        return lambda uid: resolve(FLAG_ROLLOUT, False, ctx(uid)).value

    def rule(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.rule`."""
        resolve, ctx = self._core.resolve_boolean_value, self._context(context)
        return lambda: resolve(FLAG_RULE, False, ctx).value

    def split(self) -> Callable[[str], str]:
        """See :meth:`Peer.split`."""
        resolve, ctx = self._core.resolve_string_value, self._Ctx
        fallback = SPLIT_VARIANTS[0]
        return lambda uid: resolve(FLAG_SPLIT, fallback, ctx(uid)).value

    def all_flags(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], dict[str, object]]:
        """See :meth:`Peer.all_flags`."""
        rb, rs = self._core.resolve_boolean_value, self._core.resolve_string_value
        ctx = self._context(context)
        fallback = SPLIT_VARIANTS[0]
        items = tuple(self._boolean.items())
        return lambda: {
            name: rb(name, False, ctx).value if boolean else rs(name, fallback, ctx).value
            for name, boolean in items
        }


class FlagdOpenFeaturePeer(FlagdPeer):
    """The same flagd flags through the path an application uses: the OpenFeature SDK
    client over ``FlagdProvider(resolver_type=FILE)`` reading a flags JSON file.

    Adds, per call, OpenFeature's hook machinery, the merge of the API, transaction,
    client and invocation contexts, and the provider's dispatch to ``FlagdCore``. The
    provider polls the file's mtime on a daemon thread (every 500 ms, flagd's default);
    :meth:`close` shuts the provider down, unbinds it and joins that thread (up to one
    poll interval).
    """

    name = "flagd-openfeature"
    distribution = "openfeature-provider-flagd"
    requires = ("openfeature.api", "openfeature.contrib.provider.flagd")
    notes = {
        "plain_on": "client.get_boolean_value(key, False): hooks, context merge, provider, core",
        "plain_on_dict": "EvaluationContext(user_id, attrs) per call, get_boolean_value",
        "rollout": "EvaluationContext(uid) per call, get_boolean_value; fractional 25/75",
        "rule": "prebuilt EvaluationContext, get_boolean_value",
        "split": "EvaluationContext(uid) per call, get_string_value; fractional 50/30/20",
        "all_flags": "no bulk call: get_boolean_value / get_string_value per flag",
    }
    _serial = 0

    def _setup(self, flags: list[FlagSpec]) -> None:
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType
        from openfeature.evaluation_context import EvaluationContext

        self._api = api
        self._Ctx = EvaluationContext
        # A domain of our own: the OpenFeature API is process-global, and binding the
        # default provider would hijack every other client in the process.
        FlagdOpenFeaturePeer._serial += 1
        self._domain = f"cfgcore-bench-flagd-{os.getpid()}-{FlagdOpenFeaturePeer._serial}"
        self._tmp = tempfile.mkdtemp(prefix="cfgcore-bench-flagd-")
        try:
            path = os.path.join(self._tmp, "flags.json")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(json.dumps({"flags": {f.name: self._flag(f) for f in flags}}))
            self._provider = FlagdProvider(
                resolver_type=ResolverType.FILE, offline_flag_source_path=path
            )
            before = set(threading.enumerate())
            api.set_provider_and_wait(self._provider, self._domain)
            # The file watcher's thread, found without reaching into the provider: it
            # must be joined before the file is removed, or its last poll logs an error.
            self._threads = [t for t in threading.enumerate() if t not in before]
            self._client = api.get_client(self._domain)
        except BaseException:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self._boolean = {f.name: f.is_boolean for f in flags}

    def _close(self) -> None:
        from openfeature.provider.no_op_provider import NoOpProvider

        try:
            self._provider.shutdown()
            self._api.set_provider(NoOpProvider(), self._domain)
            for thread in self._threads:
                thread.join(timeout=5.0)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def plain_on(self) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on`."""
        get = self._client.get_boolean_value
        return lambda: get(FLAG_ON, False)

    def plain_on_dict(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.plain_on_dict`."""
        get, make = self._client.get_boolean_value, self._context
        return lambda: get(FLAG_ON, False, make(context))

    def rollout(self) -> Callable[[str], bool]:
        """See :meth:`Peer.rollout`."""
        get, ctx = self._client.get_boolean_value, self._Ctx
        return lambda uid: get(FLAG_ROLLOUT, False, ctx(uid))

    def rule(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], bool]:
        """See :meth:`Peer.rule`."""
        get, ctx = self._client.get_boolean_value, self._context(context)
        return lambda: get(FLAG_RULE, False, ctx)

    def split(self) -> Callable[[str], str]:
        """See :meth:`Peer.split`."""
        get, ctx = self._client.get_string_value, self._Ctx
        fallback = SPLIT_VARIANTS[0]
        return lambda uid: get(FLAG_SPLIT, fallback, ctx(uid))

    def all_flags(self, context: Mapping[str, Any] = PREMIUM_EU) -> Callable[[], dict[str, object]]:
        """See :meth:`Peer.all_flags`."""
        gb, gs = self._client.get_boolean_value, self._client.get_string_value
        ctx = self._context(context)
        fallback = SPLIT_VARIANTS[0]
        items = tuple(self._boolean.items())
        return lambda: {
            name: gb(name, False, ctx) if boolean else gs(name, fallback, ctx)
            for name, boolean in items
        }


# --------------------------------------------------------------------------------------
# Registry.
# --------------------------------------------------------------------------------------

#: Every adapter, floor first; benchmarks keep this order for readable tables.
PEER_CLASSES: tuple[type[Peer], ...] = (
    FloorPeer,
    GrowthBookPeer,
    UnleashPeer,
    LaunchDarklyPeer,
    FlagsmithPeer,
    FlagdPeer,
    FlagdOpenFeaturePeer,
)


def available_peers() -> list[type[Peer]]:
    """Adapter classes whose SDK imports on this machine (instantiate, then setup)."""
    return [cls for cls in PEER_CLASSES if cls.unavailable_reason() is None]


def unavailable_peers() -> dict[str, str]:
    """``{peer name: reason}`` for every adapter whose SDK does not import."""
    reasons = {cls.name: cls.unavailable_reason() for cls in PEER_CLASSES}
    return {name: reason for name, reason in reasons.items() if reason is not None}


def describe_peers() -> str:
    """Markdown table of every adapter: version (or why it is unavailable) and what one
    call does in each scenario, for the caveats section of a benchmark report."""
    lines = ["| peer | version | scenario | what one call does |", "| --- | --- | --- | --- |"]
    for cls in PEER_CLASSES:
        reason = cls.unavailable_reason()
        version = cls.version() if reason is None else f"unavailable: {reason}"
        for scenario, note in cls.notes.items():
            lines.append(f"| {cls.name} | {version} | {scenario} | {note} |")
    return "\n".join(lines)
