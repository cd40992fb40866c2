"""Flag records: one flag's variants, rules, rollouts, splits and schedule.

Part of the compiler (:mod:`cfgcore.compiler` assembles the pieces): it writes the
flag record (``FW`` ints), its rule records (``RW`` ints) and the cumulative split
thresholds; conditions are lowered by :class:`~cfgcore._lower.ConditionLowering`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from cfgcore._frozen import FrozenDict, FrozenList
from cfgcore._layout import (
    BUCKETS,
    F_BOOL,
    F_BUCKET_COUNT,
    F_BUCKET_START,
    F_DEFAULT,
    F_ENABLED,
    F_OFF,
    F_RULE_COUNT,
    F_RULE_START,
    F_SALT_LEN,
    F_SALT_OFF,
    F_SCHED,
    F_SCHEME,
    F_VAR_BASE,
    F_VAR_COUNT,
    FW,
    H_HI,
    H_LO,
    HW,
    R_BUCKET_COUNT,
    R_BUCKET_START,
    R_COND,
    R_GATE_COUNT,
    R_GATE_START,
    R_HASH,
    R_ROLLOUT,
    R_SERVE,
    R_SPLIT_COUNT,
    R_SPLIT_START,
    RW,
    SCHEME_FLAGD_V2,
    SCHEME_FLAGD_V3,
    SCHEME_FLAGD_V3_CBOR,
    SCHEME_FLAGD_V3_PAIR,
    SCHEME_GROWTHBOOK_V1,
    SCHEME_GROWTHBOOK_V2,
    SCHEME_MURMUR3,
    V_ARRAY,
    V_BOOL,
    V_MIXED,
    V_NULL,
    V_NUM,
    V_OBJECT,
    V_STR,
)
from cfgcore._lower import ConditionLowering
from cfgcore._numbers import REAL_TYPES
from cfgcore.details import context_value, exact_value
from cfgcore.errors import child_key_path, key_segment, python_key
from cfgcore.snapshot import Flag, Hashing, Rule, non_text_key

DEFAULT_BUCKET_BY = ("user_id", "targeting_key")
BUCKETING_SCHEMES = {"murmur3": SCHEME_MURMUR3}
# Rule-level schemes of imported flags (snapshot.Hashing).
HASH_SCHEMES = {
    "murmur3": SCHEME_MURMUR3,
    "flagd_v2": SCHEME_FLAGD_V2,
    "flagd_v3": SCHEME_FLAGD_V3,
    "flagd_v3_pair": SCHEME_FLAGD_V3_PAIR,
    "flagd_v3_cbor": SCHEME_FLAGD_V3_CBOR,
    "growthbook_v1": SCHEME_GROWTHBOOK_V1,
    "growthbook_v2": SCHEME_GROWTHBOOK_V2,
}
MAX_SPACE = 2**31 - 1  # bucket spaces and widths are int32 in the tables


def value_kind(value: Any) -> int:
    """The value kind used for type checks (bool is not a number here). A caller's
    default is a number by the one rule of :mod:`cfgcore._numbers` (a NumPy scalar, a
    ``Fraction``, a ``Decimal``), a bool when it is NumPy's ``bool_`` (as a context value
    is), and an object when it is any mapping."""
    try:
        return _value_kind(value)
    except Exception:  # an object faking its __class__: of no known kind
        return V_MIXED


def _value_kind(value: Any) -> int:
    if value is None:
        return V_NULL
    if value is True or value is False:
        return V_BOOL
    if isinstance(value, str):
        return V_STR
    if isinstance(value, (int, float)):
        return V_NUM
    if isinstance(value, dict):
        return V_OBJECT
    if isinstance(value, (list, tuple)):
        return V_ARRAY
    # The rarer types last: a plain default never pays for these checks.
    if isinstance(value, REAL_TYPES):  # (numpy.bool_ is none: no number, as a bool is)
        return V_NUM
    if type(context_value(value)) is bool:  # numpy.bool_: the bool a context value is too
        return V_BOOL
    if isinstance(value, Mapping):
        return V_OBJECT
    return V_MIXED


def freeze(value: Any) -> Any:
    """Make a variant value immutable: served objects are shared by every caller.

    Objects and arrays are served as the configuration tree's read-only ``dict`` and
    ``list`` subclasses (:data:`~cfgcore.config.tree.FrozenDict`,
    :data:`~cfgcore.config.tree.FrozenList`): a payload reads, compares, pickles and
    encodes (``json.dumps``, msgspec) as the JSON it came from, and every mutating
    method raises ``TypeError``.

    Every part is served as its base type's value: a str, int or float subclass
    instance (an application's ``StrEnum`` or ``IntEnum`` member, a ``numpy.float64``)
    as the text or number it holds, keys included, and a dict, list or tuple subclass
    as the items it stores (:func:`cfgcore.details.exact_value`), read without the
    value's own methods. The subclass itself, served, answered every comparison,
    ``str()`` and hash its caller made with its own methods, and kept the caller's
    object alive in every request. For a value :func:`unservable` accepted."""
    kind = type(value)  # not isinstance: that would consult a faked __class__
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if issubclass(kind, dict):
        return FrozenDict({exact_value(k): freeze(v) for k, v in dict.items(value)})
    if issubclass(kind, list):
        return FrozenList([freeze(v) for v in list.__iter__(value)])
    if issubclass(kind, tuple):
        return FrozenList([freeze(v) for v in tuple.__iter__(value)])
    return exact_value(value)


# bool is an int. Not bytes (YAML !!binary, MessagePack bin): a JSON store would write
# them as base64 text, so a variant's type would change with the store it was read from;
# configuration files refuse them too.
_SERVABLE = (str, int, float, type(None))


def _exact_text(name: Any) -> Any:
    """``name`` as an exact str when it is a str subclass; anything else as it is."""
    return str.__str__(name) if type(name) is not str and isinstance(name, str) else name


# The integers a stored flag document holds: MessagePack's range (the fleet store's
# format, and how the compiler compares a flag with its previous version).
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def unservable(value: Any) -> tuple[str, str] | None:
    """``(path suffix, message)`` of the first part of a variant value that cannot be
    served read-only, else None. Files only hold JSON-like values; a snapshot built
    from Python data may hold a set, a bytearray or any object, which would be shared,
    mutable, by every caller (and by the data it came from). An integer past 64 bits
    is refused too: a JSON file reads one, but no later version of its document could
    be compiled against it or stored (every change raised OverflowError)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        kind = type(node)  # and the base types' own methods: a subclass's may raise
        if issubclass(kind, dict):
            seen: set[str] = set()
            children = []
            for k, v in dict.items(node):
                if not issubclass(type(k), str):
                    # JSON objects (and every client of a served object: OpenFeature
                    # structures, `cfgcore export`, a JSON store) have text keys only; a
                    # YAML `1:` or a MessagePack int or bin key would change type with
                    # the store, or stop the document being written as JSON at all.
                    # Named in Python's spelling in brackets (a[None], a[1.5]),
                    # never as the text key of the same letters (a.None).
                    return path + key_segment(k), (
                        f"key {python_key(k)} ({type(k).__name__}) is not a string "
                        "(object keys are text: quote it)"
                    )
                text = str.__str__(k)  # served so (freeze): two keys may spell one text
                if text in seen:
                    return path + key_segment(text), (
                        "the same key written twice (a key given as a str subclass "
                        "is the text it holds)"
                    )
                seen.add(text)
                children.append((v, path + key_segment(text)))
            stack += children
        elif issubclass(kind, list | tuple):
            items = list.__iter__(node) if issubclass(kind, list) else tuple.__iter__(node)
            stack += [(v, f"{path}[{i}]") for i, v in enumerate(items)]
        elif not issubclass(kind, _SERVABLE):
            return path, (
                f"a {kind.__name__} cannot be served (values are strings, numbers, "
                "booleans, null, lists and objects)"
            )
        elif issubclass(kind, int) and not _INT_MIN <= int.__int__(node) <= _INT_MAX:
            return path, (
                f"integer out of range ({int.bit_length(node)} bits; variant values must "
                "fit in 64 bits)"
            )
    return None


def _epoch(dt: datetime | None, default: float) -> float:
    if dt is None:
        return default
    # A schedule is part of a document that hosts in every time zone compile: a naive
    # time in it is UTC for all of them (the A/B test API resolves a naive datetime as
    # local time before it writes one; see cfgcore.experiments.abtest).
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def split_ends(weights: list[float]) -> list[int]:
    """Where each variant's range of the bucket space ends: a split's variants take
    consecutive ranges in the order written, each its weight (a percentage) x 1000
    buckets of the cumulative total, rounded; the last ends at BUCKETS, so rounding
    never leaves a bucket unassigned. (The compiled split tables and the A/B tests'
    check that a split change moves nobody both read it.) A cumulative total past 100
    ends at BUCKETS: a split that sums to 100 gets there anyway, and one of a weight
    no bucket count can hold (``1e306``, refused for its sum) has ends all the same."""
    ends, total = [], 0.0
    for w in weights:
        total += w
        ends.append(round(min(total, 100.0) * (BUCKETS // 100)))
    if ends:
        ends[-1] = BUCKETS
    return ends


def _put(items: list[Any], i: int, value: Any) -> None:
    if i == len(items):
        items.append(value)
    else:
        items[i] = value


def _names(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


class FlagRecords(ConditionLowering):
    """Writes flag, rule and split records."""

    def flag(self, fi: int, key: str, flag: Flag) -> None:
        """Compile one flag into record ``fi`` (appended when ``fi`` is a new index)."""
        t = self.t
        path = child_key_path("flags", key)
        rec = [0] * FW
        variants = flag.variants
        default, off = flag.default, flag.off_variant
        if variants is None:
            variants = {"on": True, "off": False}
            # A disabled boolean flag is off: that is what switching it off means.
            off = "off" if off is None else off
        if not variants:
            self.problem(f"{path}.variants", "a flag needs at least one variant")
            variants = {"_": None}
        # A variant name given as a str subclass (a StrEnum member) is served as its
        # exact text, as flag keys and attribute names are: callers compare it with
        # plain strings and serialise it.
        pairs = [(_exact_text(n), v) for n, v in dict.items(variants)]
        names = [n for n, _ in pairs]
        base = len(t.values)
        local = {name: base + i for i, name in enumerate(names)}
        if len(local) < len(names):  # a str subclass name and the text it holds
            seen: set[str] = set()
            for name in names:
                if name in seen:
                    self.problem(
                        f"{path}.variants{key_segment(name)}", "the same variant written twice"
                    )
                seen.add(name)
        kinds = set()
        for name, value in pairs:
            bad = unservable(value)
            if bad is not None:
                self.problem(f"{path}.variants{key_segment(name)}{bad[0]}", bad[1])
                value = None
            value = freeze(value)  # what is served: base types only
            t.values.append(value)
            t.variant_names.append(name)
            kinds.add(value_kind(value))
            t.value_kinds.append(value_kind(value))
            t.is_true.append(value is True)
        _put(t.flag_kinds, fi, kinds.pop() if len(kinds) == 1 else V_MIXED)
        bad = non_text_key(flag.metadata)
        if bad is not None:
            self.problem(f"{path}.metadata{bad[0]}", bad[1])
        rec[F_VAR_BASE], rec[F_VAR_COUNT] = base, len(names)
        rec[F_BOOL] = int(all(v is True or v is False for v in dict.values(variants)))
        if flag.on_variants is not None:
            # Imported flags name the variants their source calls on (Unleash's
            # isEnabled, GrowthBook's truthy value): is_enabled reads is_true.
            rec[F_BOOL] = 1
            on = {_exact_text(name) for name in flag.on_variants}
            for i, name in enumerate(flag.on_variants):
                if _exact_text(name) not in local:
                    self.problem(f"{path}.on_variants[{i}]", f"unknown variant {name!r}")
            for name in names:
                t.is_true[local[name]] = name in on

        def variant(name: str | None, where: str) -> int:
            if name is None:
                self.problem(where, "missing variant name")
                return base
            # By its exact text, as the names are held: a str subclass with a hash or
            # equality of its own would otherwise not find the name it spells.
            idx = local.get(_exact_text(name))
            if idx is None:
                known = ", ".join(names)
                self.problem(where, f"unknown variant {name!r} (variants: {known})")
                return base
            return idx

        if default is None:
            # No implicit default: a definition cut off before its default (a truncated
            # or half-written file) must be refused, not served as a different flag.
            self.problem(f"{path}.default", "missing: every flag names its default variant")
            rec[F_DEFAULT] = base
        else:
            rec[F_DEFAULT] = variant(default, f"{path}.default")
        rec[F_OFF] = rec[F_DEFAULT] if off is None else variant(off, f"{path}.off_variant")
        rec[F_ENABLED] = int(flag.enabled)

        if flag.bucketing not in BUCKETING_SCHEMES:  # pragma: no cover - decoder restricts it
            self.problem(f"{path}.bucketing", f"unknown bucketing scheme {flag.bucketing!r}")
        rec[F_SCHEME] = BUCKETING_SCHEMES.get(flag.bucketing, 0)
        bucket_names = _names(flag.bucket_by) or list(DEFAULT_BUCKET_BY)
        used_before = set(self.used_slots)
        rec[F_BUCKET_START] = self.pool([self.slot(n) for n in bucket_names])
        rec[F_BUCKET_COUNT] = len(bucket_names)
        flag_bucket_slots = self.used_slots - used_before
        self.used_slots = used_before  # bucket slots count only if a rule buckets
        buckets_by_flag_attrs = False
        # str.encode: a str subclass salt hashes as its text, never through its own encode
        salt = str.encode(flag.salt if flag.salt is not None else key, "utf-8", "surrogatepass")
        rec[F_SALT_OFF], rec[F_SALT_LEN] = len(t.sbytes), len(salt) + 1
        t.sbytes += salt + b":"

        if flag.schedule is not None:
            start = _epoch(flag.schedule.start, -math.inf)
            end = _epoch(flag.schedule.end, math.inf)
            if not start < end:
                self.problem(f"{path}.schedule", "end must be after start")
            rec[F_SCHED] = 1
        else:
            start, end = -math.inf, math.inf
        _put(t.sched_start, fi, start)
        _put(t.sched_end, fi, end)

        rec[F_RULE_START] = len(t.rules) // RW
        rec[F_RULE_COUNT] = len(flag.rules)
        for i, rule in enumerate(flag.rules):
            rpath = f"{path}.rules[{i}]"
            rr = [-1, -1, -1, 0, 0, 0, 0, -1, 0, 0]
            if rule.when is not None:
                rr[R_COND] = self.root_condition(rule.when, f"{rpath}.when")
            if rule.gates:
                rr[R_GATE_START] = len(t.hashes) // HW
                rr[R_GATE_COUNT] = len(rule.gates)
                for g, gate in enumerate(rule.gates):
                    self.hashing(gate.hash, f"{rpath}.gates[{g}]", gate.lo, gate.hi)
            if rule.hash is not None or rule.buckets is not None:
                self.hashed_rule(rule, rr, variant, rpath)
            elif rule.split is not None:
                if rule.serve is not None or rule.rollout is not None:
                    self.problem(
                        rpath, "a rule has either split or serve (with an optional rollout)"
                    )
                rr[R_SPLIT_START], rr[R_SPLIT_COUNT] = self.split(rule.split, variant, rpath)
            else:
                rr[R_SERVE] = variant(rule.serve, f"{rpath}.serve")
                if rule.rollout is not None:
                    pct = self.number(rule.rollout, f"{rpath}.rollout")
                    if pct is None:
                        pct = 0.0
                    if not 0.0 <= pct <= 100.0:  # NaN fails this too
                        self.problem(
                            f"{rpath}.rollout", f"must be within 0..100, got {rule.rollout}"
                        )
                        pct = 0.0
                    rr[R_ROLLOUT] = round(pct * (BUCKETS // 100))
            names_override = _names(rule.bucket_by)
            if names_override:
                # the slots as slot() found them: a str subclass name by its exact text
                override_slots = [self.slot(n) for n in names_override]
                rr[R_BUCKET_START] = self.pool(override_slots)
                rr[R_BUCKET_COUNT] = len(names_override)
                for s in override_slots:
                    t.bucket_slots[s] = True
            elif rule.split is not None or rule.rollout is not None:
                buckets_by_flag_attrs = True
            t.rules.extend(rr)
        if buckets_by_flag_attrs:
            self.used_slots |= flag_bucket_slots
            for s in flag_bucket_slots:
                t.bucket_slots[s] = True

        if fi * FW == len(t.flags):
            t.flags.extend(rec)
        else:
            t.flags[fi * FW : (fi + 1) * FW] = rec

    def hashing(self, h: Hashing, where: str, lo: int = 0, hi: int = 0) -> int:
        """Write one hashing record; return its index."""
        t = self.t
        if not 1 <= h.space <= MAX_SPACE:
            self.problem(f"{where}.space", f"must be within 1..{MAX_SPACE}, got {h.space}")
        if not 0 <= h.seed <= 0xFFFFFFFF:
            self.problem(f"{where}.seed", f"must be a 32-bit unsigned int, got {h.seed}")
        if not h.by:
            self.problem(f"{where}.by", "name at least one attribute to hash")
        if not 0 <= lo <= hi <= MAX_SPACE:
            self.problem(where, f"bucket range [{lo}, {hi}) is not within 0..{MAX_SPACE}")
        by = [self.slot(n) for n in h.by]
        for s in by:
            t.bucket_slots[s] = True
        salt = str.encode(h.salt, "utf-8", "surrogatepass")
        suffix = str.encode(h.suffix, "utf-8", "surrogatepass")
        rec = [0] * HW
        rec[0] = HASH_SCHEMES[h.scheme]
        # seeds above 2^31 are stored as their int32 bit pattern
        rec[1] = h.seed - 2**32 if h.seed >= 2**31 else h.seed
        rec[2], rec[3] = len(t.sbytes), len(salt)
        t.sbytes += salt
        rec[4], rec[5] = len(t.sbytes), len(suffix)
        t.sbytes += suffix
        rec[6] = min(max(h.space, 1), MAX_SPACE)
        rec[7], rec[8] = self.pool(by), len(by)
        rec[H_LO], rec[H_HI] = lo, hi
        t.hashes.extend(rec)
        return len(t.hashes) // HW - 1

    def hashed_rule(self, rule: Rule, rr: list[int], variant: Any, rpath: str) -> None:
        """A rule bucketed by its own hashing: ``buckets`` widths over ``hash.space``."""
        t = self.t
        if rule.hash is None or rule.buckets is None:
            self.problem(rpath, "'hash' and 'buckets' go together")
            return
        if rule.split is not None or rule.serve is not None or rule.rollout is not None:
            self.problem(rpath, "a rule with 'buckets' has no serve, split or rollout")
        rr[R_HASH] = self.hashing(rule.hash, f"{rpath}.hash")
        start = len(t.splits) // 2
        total = 0
        for j, (name, width) in enumerate(rule.buckets):
            if width < 0:
                self.problem(f"{rpath}.buckets[{j}]", f"width must be >= 0, got {width}")
                width = 0
            total += width
            var = -1 if name is None else variant(name, f"{rpath}.buckets[{j}]")
            t.splits.extend((total, var))  # variant -1: fall through to the next rule
        if total > rule.hash.space:
            self.problem(
                f"{rpath}.buckets", f"widths sum to {total}, past the space {rule.hash.space}"
            )
        rr[R_SPLIT_START], rr[R_SPLIT_COUNT] = start, len(rule.buckets)

    def split(self, weights: dict[str, Any], variant: Any, rpath: str) -> tuple[int, int]:
        t = self.t
        start = len(t.splits) // 2
        ws: list[float] = []
        bad = False
        for name, weight in weights.items():
            at = f"{rpath}.split{key_segment(name)}"
            w = self.number(weight, at)
            if w is None:
                w = 0.0
            if not (w >= 0.0 and math.isfinite(w)):
                self.problem(at, f"weight must be a finite number >= 0, got {weight}")
                w = 0.0
                bad = True
            ws.append(w)
        # A sum that only misses 100 because a bad weight read as 0 says nothing more.
        if not bad and abs(sum(ws) - 100.0) > 1e-6:
            self.problem(f"{rpath}.split", f"weights sum to {sum(ws):g}, not 100")
        for end, name in zip(split_ends(ws), weights, strict=True):
            t.splits.extend((end, variant(name, f"{rpath}.split{key_segment(name)}")))
        return start, len(weights)
