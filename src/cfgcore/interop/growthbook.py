"""Import GrowthBook features into a cfgcore snapshot.

>>> from cfgcore import Engine
>>> from cfgcore.interop import growthbook
>>> features = {"dark-mode": {"defaultValue": False,
...     "rules": [{"condition": {"country": "NL"}, "force": True}]}}
>>> engine = Engine.from_snapshot(growthbook.to_snapshot(features))
>>> engine.is_enabled("dark-mode", growthbook.context({"id": "1", "country": "NL"}))
True

Each feature becomes a cfgcore flag whose variants are its values (``default``, one
per force rule, one per experiment variation); ``engine.is_enabled`` is GrowthBook's
``on`` (the value is truthy, JavaScript rules) and ``engine.evaluate(...).value`` its
value. Rollouts (``coverage``, ``range``), experiments (``weights``, ``coverage``,
``ranges``, ``namespace``, ``filters``, ``hashVersion`` 1 and 2, ``seed``,
``hashAttribute``/``fallbackAttribute``, passthrough variations) are bucketed with
GrowthBook's FNV-1a hashing (:class:`cfgcore.snapshot.Hashing` schemes
``growthbook_v1``/``growthbook_v2``); bucket boundaries are computed at import from
GrowthBook's own floating-point ranges, bucket by bucket, so they agree exactly.

Conditions: literal equality, ``$eq``, ``$ne``, ``$in``, ``$nin``, ``$ini``,
``$nini``, ``$gt``/``$gte``/``$lt``/``$lte`` (numbers, and strings in code point
order through an exact regular expression), the version operators ``$veq``, ``$vne``,
``$vgt``, ``$vgte``, ``$vlt``, ``$vlte`` (on GrowthBook's padded version strings, which
:func:`context` derives), ``$exists``, ``$regex``, ``$regexi``, ``$notRegex``, ``$size``,
``$type``, ``$and``/``$or``/``$nor``/``$not``, ``$inGroup``/``$notInGroup`` (saved
groups given as value lists) and dotted paths. Anything else (``$elemMatch``, ``$all``,
equality with objects, ``parentConditions``, ...) is an import error naming the feature
and the operator.
Forced variations (:func:`context` ``forced_variations``) are rules on reserved
``$forced:<experiment key>`` attributes, evaluated in place of the experiment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from cfgcore.errors import Problem
from cfgcore.interop import MALFORMED, InteropError, malformed, type_name
from cfgcore.snapshot import Snapshot, snapshot_from_dict

__all__ = ["context", "js_truthy", "padded_version", "string_order", "thaw", "to_snapshot"]

FORCED = "$forced:"
HASH = "#hash"  # suffix of an attribute's hash string (JavaScript String() of it)
SIZE = "#size"  # suffix of an array attribute's length
TYPE = "#type"  # suffix of an attribute's GrowthBook type name
VER_STR = "#vs"  # suffix: padded version string of a string attribute
VER_NUM = "#vn"  # suffix: padded version string of a number attribute
_NEVER: dict[str, Any] = {"any": []}
_ALWAYS: dict[str, Any] = {"all": []}


class _Refuse(Exception):
    pass


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness (GrowthBook's ``on``): empty objects and arrays are true."""
    if value is None or value is False:
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def thaw(value: Any) -> Any:
    """A served value as plain data (cfgcore serves objects read-only: dicts, lists here)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def js_number_text(x: float) -> str:
    """JavaScript ``String(number)`` (ECMAScript Number::toString), as GrowthBook hashes numbers."""
    x = float(x)
    if x == 0:
        return "0"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    text = repr(x)
    if "e" not in text:
        return text
    mant, exp = text.split("e")
    n = int(exp)
    if -7 < n < 21:  # JS writes these in fixed notation
        return format(x, "f").rstrip("0").rstrip(".")
    if mant.endswith(".0"):
        mant = mant[:-2]
    return f"{mant}e{'+' if n > 0 else '-'}{abs(n)}"


_VER_STRIP = re.compile(r"(^v|\+.*$)")
_VER_SPLIT = re.compile(r"[-.]")


def padded_version(value: Any) -> str:
    """GrowthBook's comparable version string: ``v`` and build metadata dropped, numeric
    parts left-padded to 5, ``~`` after a release (so it sorts after its pre-releases).

    Source: GrowthBook SDK docs, "paddedVersionString" (the version operators)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = js_number_text(value)
    if not value or not isinstance(value, str):
        value = "0"
    parts = _VER_SPLIT.split(_VER_STRIP.sub("", value))
    if len(parts) == 3:
        parts.append("~")
    return "-".join(p.rjust(5, " ") if p.isdigit() else p for p in parts)


_MAX_CHAR = "\U0010ffff"


def _cls(lo: str, hi: str) -> str:
    return "[" + re.escape(lo).replace("\x00", "\\x00") + "-" + re.escape(hi) + "]"


def _next_char(ch: str, step: int) -> str | None:
    o = ord(ch) + step
    if 0xD800 <= o <= 0xDFFF:  # skip the surrogates, which no string holds here
        o = 0xE000 if step > 0 else 0xD7FF
    return chr(o) if 0 <= o <= 0x10FFFF else None


def string_order(attr: str, op: str, c: str) -> dict[str, Any]:
    """``attr <op> c`` in code point order, for a string attribute, as cfgcore conditions:
    a string is greater than ``c`` where, after a common prefix, its next character is
    greater (or it continues past ``c``), and less where that character is less (or it is
    a proper prefix of ``c``) -- a regular language, so a regex decides it exactly."""
    greater, less = [], []
    for i, ch in enumerate(c):
        head = re.escape(c[:i])
        up, down = _next_char(ch, 1), _next_char(ch, -1)
        if up is not None:
            greater.append(head + _cls(up, _MAX_CHAR))
        if down is not None:
            less.append(head + "[\\x00-" + re.escape(down) + "]")
    greater.append(re.escape(c) + "[\\s\\S]")
    gt: dict[str, Any] = {"attr": attr, "matches": "^(?:" + "|".join(greater) + ")"}
    lt_parts: list[Any] = []
    if less:
        lt_parts.append({"attr": attr, "matches": "^(?:" + "|".join(less) + ")"})
    prefixes = [c[:i] for i in range(len(c))]
    if prefixes:
        lt_parts.append({"attr": attr, "in": prefixes})
    lt: dict[str, Any] = {"any": lt_parts}
    eq = {"attr": attr, "eq": c}
    return {
        "gt": gt,
        "ge": {"any": [gt, eq]},
        "lt": lt,
        "le": {"any": [lt, eq]},
    }[op]


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, Mapping):
        return "object"
    return "unknown"


def context(
    attributes: Mapping[str, Any] | None = None,
    *,
    forced_variations: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """Map GrowthBook attributes to cfgcore attributes.

    Nested objects are reachable by dotted path; each hashable value (a non-empty
    string, a finite non-zero number) gets its hash string ``<path>#hash``, arrays
    their length ``<path>#size``, every value its type ``<path>#type``.
    ``forced_variations`` ({experiment key: variation index}) become
    ``$forced:<key>`` attributes.
    """
    out: dict[str, Any] = {}

    def put(path: str, v: Any) -> None:
        if isinstance(v, Mapping):
            for k, sub in v.items():
                put(f"{path}.{k}" if path else str(k), sub)
            if path:
                out[path + TYPE] = "object"
            return
        if not path:
            return
        if isinstance(v, (list, tuple)):
            out[path + SIZE] = len(v)
            out[path + TYPE] = "array"
            return
        out[path] = v
        out[path + TYPE] = _type_name(v)
        if isinstance(v, str):
            out[path + VER_STR] = padded_version(v)
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[path + VER_NUM] = padded_version(v)
        if isinstance(v, str) and v:
            out[path + HASH] = v
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            if v != 0 and math.isfinite(v):
                out[path + HASH] = js_number_text(v)

    put("", dict(attributes or {}))
    for key, idx in (forced_variations or {}).items():
        out[FORCED + str(key)] = idx
    return out


# -- import -------------------------------------------------------------------------------
def to_snapshot(
    features: Mapping[str, Any],
    *,
    saved_groups: Mapping[str, Any] | None = None,
    on_error: Literal["raise", "skip"] = "raise",
    source: str | None = None,
) -> Snapshot:
    """Lower GrowthBook features (the ``features`` object of the SDK payload, or the whole
    payload) to a Snapshot.

    With ``on_error="raise"`` a feature that cannot be lowered raises
    :class:`~cfgcore.interop.InteropError` naming each feature and construct; with
    ``"skip"`` such features are left out and listed, with the reason, in the
    snapshot's ``metadata["refused"]`` (what a command-line import reports)."""
    if isinstance(features, Mapping) and isinstance(features.get("features"), Mapping):
        if saved_groups is None:
            saved_groups = features.get("savedGroups")
        features = features["features"]
    if not isinstance(features, Mapping):
        raise InteropError(
            f"GrowthBook features must be an object, got {type_name(features)}", file=source
        )
    if saved_groups is not None and not isinstance(saved_groups, Mapping):
        raise InteropError(
            [Problem("savedGroups", f"expected an object, got {type_name(saved_groups)}",
                     file=source)]
        )  # fmt: skip
    problems: list[Problem] = []
    flags: dict[str, Any] = {}
    for key, feat in features.items():
        try:
            flags[key] = _Feature(str(key), feat, saved_groups or {}).lower()
        except _Refuse as exc:
            problems.append(Problem(path=f"features.{key}", message=str(exc), file=source))
        except MALFORMED as exc:  # a value of the wrong type inside the feature
            problems.append(Problem(path=f"features.{key}", message=malformed(exc), file=source))
    meta: dict[str, Any] = {"imported_from": "growthbook"}
    if problems and on_error == "raise":
        raise InteropError(problems)
    if problems:
        meta["refused"] = {p.path.split(".", 1)[1]: p.message for p in problems}
    return snapshot_from_dict({"flags": flags, "metadata": meta}, file=source)


def _space(version: int) -> int:
    return 10000 if version == 2 else 1000


def _runs(space: int, pick: Any) -> list[tuple[Any, int]]:
    """Run-length encode ``pick(n)`` over GrowthBook's bucket values n = k/space.

    GrowthBook compares the float n = (hash % space) / space with float range
    bounds; evaluating that same comparison for every k at import turns it into
    integer bucket runs that agree exactly."""
    runs: list[tuple[Any, int]] = []
    for k in range(space):
        v = pick(k / space)
        if runs and runs[-1][0] == v:
            runs[-1] = (v, runs[-1][1] + 1)
        else:
            runs.append((v, 1))
    return runs


class _Feature:
    def __init__(self, key: str, feat: Any, saved_groups: Mapping[str, Any]) -> None:
        if not isinstance(feat, Mapping):
            raise _Refuse("a feature must be an object")
        self.key = key
        self.feat = feat
        self.groups = saved_groups
        self.variants: dict[str, Any] = {}
        self.on: list[str] = []

    def variant(self, name: str, value: Any) -> str:
        self.variants[name] = value
        if js_truthy(value):
            self.on.append(name)
        return name

    def lower(self) -> dict[str, Any]:
        self.variant("default", self.feat.get("defaultValue"))
        rules: list[dict[str, Any]] = []
        for i, rule in enumerate(self.feat.get("rules") or []):
            try:
                rules += self.rule(i, rule)
            except _Refuse as exc:
                raise _Refuse(f"rules[{i}]: {exc}") from None
        return {
            "variants": self.variants,
            "default": "default",
            "on_variants": self.on,
            "rules": rules,
        }

    # -- rules ----------------------------------------------------------------------------
    def hash_attrs(self, rule: Mapping[str, Any], fallback: bool) -> list[str]:
        attrs = [str(rule.get("hashAttribute") or "id") + HASH]
        if fallback and rule.get("fallbackAttribute"):
            attrs.append(str(rule["fallbackAttribute"]) + HASH)
        return attrs

    def gate(self, by: list[str], seed: str, version: int, suffix_seed: bool, test: Any):
        """Gates (one per contiguous run) for "hash n passes ``test``"."""
        if version not in (1, 2):
            return None
        space = _space(version)
        scheme = f"growthbook_v{version}"
        h: dict[str, Any] = {"scheme": scheme, "by": by, "space": space}
        if version == 1 or suffix_seed:
            h["suffix"] = seed
        else:
            h["salt"] = seed
        runs, pos, spans = _runs(space, test), 0, []
        for inside, width in runs:
            if inside:
                spans.append({"hash": h, "lo": pos, "hi": pos + width})
            pos += width
        return spans

    def filters(self, rule: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
        """Alternatives (each a list of gates) for ``filters`` or a ``namespace``."""
        alts: list[list[dict[str, Any]]] = [[]]
        for f in rule.get("filters") or []:
            ranges = f.get("ranges") or []
            by = [str(f.get("attribute") or "id") + HASH]
            version = int(f.get("hashVersion", 2))

            def test(n: float, ranges: Any = ranges) -> bool:
                return any(r[0] <= n < r[1] for r in ranges)

            spans = self.gate(by, str(f.get("seed", "")), version, False, test)
            if not spans:
                return []  # nobody passes this filter
            alts = [a + [s] for a in alts for s in spans]
        return alts

    def rule(self, i: int, rule: Any) -> list[dict[str, Any]]:
        if not isinstance(rule, Mapping):
            raise _Refuse("a rule must be an object")
        for unsupported in ("parentConditions", "contextualBanditRef", "tracks", "url"):
            if rule.get(unsupported):
                raise _Refuse(f"'{unsupported}' is not supported")
        when = self.condition(rule.get("condition")) if rule.get("condition") else _ALWAYS
        if rule.get("filters") and "force" in rule:
            alts = self.filters(rule)
        else:
            alts = [[]]
        if "force" in rule:
            name = self.variant(f"rules[{i}]", rule["force"])
            gates = self.rollout_gates(rule)
            out = []
            for alt in alts:
                for g in gates:
                    r: dict[str, Any] = {
                        "serve": name,
                        "name": str(rule.get("id") or f"rules[{i}]"),
                    }
                    if when != _ALWAYS:
                        r["when"] = when
                    if alt or g:
                        r["gates"] = alt + g
                    out.append(r)
            return out
        if rule.get("variations") is None:
            return []  # GrowthBook skips a rule with neither force nor variations
        return self.experiment(i, rule, when)

    def rollout_gates(self, rule: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
        coverage, rng = rule.get("coverage"), rule.get("range")
        if coverage is None and rng is None:
            return [[]]
        if coverage == 0 and rng is None:
            return []
        by = self.hash_attrs(rule, fallback=True)
        version = int(rule.get("hashVersion") or 1)
        seed = str(rule.get("seed") or self.key)
        if rng is not None:
            spans = self.gate(by, seed, version, False, lambda n: rng[0] <= n < rng[1])
        else:
            spans = self.gate(by, seed, version, False, lambda n: n < coverage)
        return [[s] for s in spans or []]

    def experiment(self, i: int, rule: Mapping[str, Any], when: Any) -> list[dict[str, Any]]:
        variations = list(rule["variations"])
        if len(variations) < 2:
            return []  # GrowthBook: fewer than two variations is never in the experiment
        exp_key = str(rule.get("key") or self.key)
        meta = list(rule.get("meta") or [])
        names = []
        for j, value in enumerate(variations):
            m = meta[j] if j < len(meta) and isinstance(meta[j], Mapping) else {}
            label = str(m.get("key", j))
            names.append(self.variant(f"{exp_key}:{label}", value))
        passthrough = [
            bool(meta[j].get("passthrough"))
            if j < len(meta) and isinstance(meta[j], Mapping)
            else False
            for j in range(len(variations))
        ]
        forced_attr = FORCED + exp_key
        out: list[dict[str, Any]] = []
        # filters are checked before the forced variation (the feature evaluation skips
        # a filtered-out rule first); a namespace only after it
        filter_alts = self.filters(rule) if rule.get("filters") else [[]]
        for j, name in enumerate(names):
            if passthrough[j]:
                continue
            test = {"attr": forced_attr, "eq": j}
            for alt in filter_alts:
                forced: dict[str, Any] = {
                    "when": _and(when, test),
                    "serve": name,
                    "name": f"{exp_key} forced",
                }
                if alt:
                    forced["gates"] = alt
                out.append(forced)
        if rule.get("active") is False or rule.get("status") == "draft":
            return out
        version = int(rule.get("hashVersion") or 1)
        if version not in (1, 2):
            return out
        seed = str(rule.get("seed") or exp_key)
        by = self.hash_attrs(rule, fallback=False)
        space = _space(version)
        ranges = rule.get("ranges")
        if not ranges:
            ranges = _bucket_ranges(len(variations), rule.get("coverage"), rule.get("weights"))

        def pick(n: float) -> int:
            for j, r in enumerate(ranges):
                if r[0] <= n < r[1]:
                    return j
            return -1

        pos, buckets = 0, []
        for j, width in _runs(space, pick):
            buckets.append([names[j] if j >= 0 and not passthrough[j] else None, width])
            pos += width
        h: dict[str, Any] = {"scheme": f"growthbook_v{version}", "by": by, "space": space}
        if version == 1:
            h["suffix"] = seed
        else:
            h["salt"] = seed
        alts = filter_alts
        ns = rule.get("namespace")
        if ns and not rule.get("filters"):
            ns_id, lo, hi = str(ns[0]), ns[1], ns[2]
            spans = self.gate(by, "__" + ns_id, 1, True, lambda n: lo <= n < hi) or []
            alts = [[s] for s in spans]
        base_when = _and(when, _not({"attr": forced_attr, "exists": True}))
        for alt in alts:
            r: dict[str, Any] = {"hash": h, "buckets": buckets, "name": exp_key}
            if base_when != _ALWAYS:
                r["when"] = base_when
            if alt:
                r["gates"] = alt
            out.append(r)
        return out

    # -- conditions ------------------------------------------------------------------------
    def condition(self, cond: Any) -> Any:
        if not isinstance(cond, Mapping):
            raise _Refuse(f"a condition must be an object, got {cond!r:.60}")
        parts = []
        for key, value in cond.items():
            if key == "$or":
                parts.append({"any": [self.condition(c) for c in value]} if value else _ALWAYS)
            elif key == "$nor":
                parts.append(_not({"any": [self.condition(c) for c in value]}) if value else _NEVER)
            elif key == "$and":
                parts.append(_and(*[self.condition(c) for c in value]))
            elif key == "$not":
                parts.append(_not(self.condition(value)))
            elif key.startswith("$"):
                raise _Refuse(f"condition operator {key!r}")
            else:
                parts.append(self.value_test(str(key), value))
        return _and(*parts)

    def value_test(self, attr: str, cv: Any) -> Any:
        if isinstance(cv, Mapping) and all(str(k).startswith("$") for k in cv):
            return _and(*[self.operator(attr, op, v) for op, v in cv.items()])
        if cv is None:
            return _not({"attr": attr, "exists": True})
        if isinstance(cv, (str, int, float, bool)):
            return {"attr": attr, "eq": cv}
        raise _Refuse(f"equality with an object or array at {attr!r}")

    def operator(self, attr: str, op: str, v: Any) -> Any:
        scalar = (str, int, float, bool)
        if op == "$eq" or op == "$ne":
            if v is None:
                test = _not({"attr": attr, "exists": True})
            elif isinstance(v, scalar):
                test = {"attr": attr, "eq": v}
            else:
                test = _NEVER  # containers are never === (GrowthBook SDK semantics)
            return test if op == "$eq" else _not(test)
        if op in ("$in", "$nin", "$ini", "$nini", "$inGroup", "$notInGroup"):
            if op in ("$inGroup", "$notInGroup"):
                values = self.groups.get(v) if isinstance(v, str) else None
                if values is None:
                    return _NEVER if op == "$inGroup" else _NEVER
                if not isinstance(values, list):
                    raise _Refuse(f"saved group {v!r} is not a list of values")
            else:
                if not isinstance(v, list):
                    return _NEVER
                values = v
            if not all(isinstance(x, scalar) for x in values):
                raise _Refuse(f"'{op}' with non-scalar values at {attr!r}")
            ci = op in ("$ini", "$nini")
            strs = [x for x in values if isinstance(x, str)]
            if ci:
                others = [x for x in values if not isinstance(x, str)]
                tests = []
                if strs:
                    tests.append({"attr": attr, "in": strs, "ignore_case": True})
                if others:
                    tests.append({"attr": attr, "in": others})
                test = {"any": tests}
            else:
                test = {"attr": attr, "in": values} if values else _NEVER
            positive = op in ("$in", "$ini", "$inGroup")
            return test if positive else _not(test)
        if op in ("$gt", "$gte", "$lt", "$lte"):
            name = {"$gt": "gt", "$gte": "ge", "$lt": "lt", "$lte": "le"}[op]
            if isinstance(v, str):  # strings order against strings only
                return string_order(attr, name, v)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return _NEVER  # GrowthBook: only two numbers or two strings are ordered
            return {"attr": attr, name: v}
        if op in ("$veq", "$vne", "$vgt", "$vgte", "$vlt", "$vlte"):
            if isinstance(v, str):
                vattr = attr + VER_STR
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                vattr = attr + VER_NUM
            else:
                return _ALWAYS if op == "$vne" else _NEVER
            padded = padded_version(v)
            eq = {"attr": vattr, "eq": padded}
            if op == "$veq":
                return eq
            if op == "$vne":
                return _not(eq)  # also true when not comparable, as in GrowthBook
            name = {"$vgt": "gt", "$vgte": "ge", "$vlt": "lt", "$vlte": "le"}[op]
            return string_order(vattr, name, padded)
        if op == "$exists":
            test = {"attr": attr, "exists": True}
            return test if v else _not(test)
        if op in ("$regex", "$regexi", "$notRegex", "$notRegexi"):
            if not isinstance(v, str):
                return _NEVER if not op.startswith("$not") else _ALWAYS
            try:
                re.compile(v)
            except re.error:
                return _NEVER if not op.startswith("$not") else _ALWAYS
            test = {"attr": attr, "matches": v}
            if op.endswith("i"):
                test["ignore_case"] = True
            return _not(test) if op.startswith("$not") else test
        if op == "$size":
            return self.value_test(attr + SIZE, v)
        if op == "$type":
            return {"attr": attr + TYPE, "eq": v} if isinstance(v, str) else _NEVER
        if op == "$not":
            return _not(self.value_test(attr, v))
        raise _Refuse(f"condition operator {op!r} (at {attr!r})")


def _bucket_ranges(n: int, coverage: Any, weights: Any) -> list[tuple[float, float]]:
    """GrowthBook's bucket ranges: variation i covers [start_i, start_i + coverage * w_i),
    start_i the sum of the weights before it; weights that are not a valid vector
    (one non-negative number per variation summing to about 1) become equal weights.

    Source: GrowthBook SDK docs, "getBucketRanges"."""
    c = 1.0 if coverage is None else float(coverage)
    c = min(max(c, 0.0), 1.0)
    valid = (
        isinstance(weights, list)
        and len(weights) == n
        and all(
            isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
            for w in weights
        )
        and 0.99 <= sum(weights) <= 1.01
    )
    ws = list(weights) if valid else [1 / n] * n
    out, cum = [], 0.0
    for w in ws:
        start = cum
        cum += w
        out.append((start, start + c * w))
    return out


def _and(*conds: Any) -> Any:
    items = [c for c in conds if c != _ALWAYS]
    if any(c == _NEVER for c in items):
        return _NEVER
    if not items:
        return _ALWAYS
    return items[0] if len(items) == 1 else {"all": items}


def _not(cond: Any) -> Any:
    if cond == _ALWAYS:
        return _NEVER
    if cond == _NEVER:
        return _ALWAYS
    return {"not": cond}
