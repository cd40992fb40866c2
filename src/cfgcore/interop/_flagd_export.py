"""Export a cfgcore snapshot to a flagd flag definition document.

Only what evaluates the same in flagd is written: serve rules over conditions flagd
expresses exactly (``eq`` as ``===``, told apart from a boolean by ``cat`` where flagd's
Python evaluator would read ``true`` as ``1``; ``in``, ``starts_with``, ``ends_with``,
``all``/``any``/``not``, segments inlined) and rules bucketed by flagd's
own v3 hashing (imported ``fractional``), as one ``if`` chain. Anything else -- a
rollout or split on cfgcore's own bucketing, gates, prerequisites, schedules, number
comparisons (JSONLogic coerces a missing value to 0), ``ne``/``not_in`` (true on a
missing value in JSONLogic), ``contains`` (JSONLogic's ``in`` over a string is also
membership in an array), ``exists``, case-insensitive and regex tests, attribute
names holding a dot in a native snapshot (a path to JSONLogic's ``var``; in a snapshot
imported from flagd they are that path) -- is refused with the flag and the
construct named.

Attribute names are the OpenFeature context's as each side reads it. cfgcore's provider
(``default_context``) gives a native snapshot the OpenFeature targeting key as the
attribute ``targeting_key``, which flagd calls ``targetingKey``: a condition on
``targeting_key`` is written as ``{"var": "targetingKey"}``, and one on ``targetingKey``
or ``$flagd`` (which flagd fills itself, over any attribute of that name) is refused. A
snapshot imported from flagd already uses flagd's names (``flagd.context``): they are
kept. A switched-off flag is written as flagd serves what cfgcore serves:
ENABLED with its off variant as the default (flagd's DISABLED would serve the caller's
default), except a flag imported from flagd, which keeps flagd's DISABLED.
"""

from __future__ import annotations

from typing import Any

import msgspec

from cfgcore.errors import Problem, child_key_path
from cfgcore.interop import InteropError
from cfgcore.interop._escaped_names import split_derived, unescape_name
from cfgcore.snapshot import Condition, Flag, Rule, Snapshot

_RESERVED = ("#no-default", "#invalid", "#parse-error")
_FRACTION = "#fraction:"  # flagd.FRACTION: rules the importer adds for array entries

# A native snapshot's attribute -> flagd's variable for what cfgcore's OpenFeature
# provider puts there (cfgcore.openfeature.default_context).
_NATIVE_VARS = {"targeting_key": "targetingKey"}
# flagd sets these itself, over any context attribute of the same name.
_FLAGD_OWN = ("targetingKey", "$flagd")


class _Refuse(Exception):
    pass


def export(snapshot: Snapshot) -> dict[str, Any]:
    problems: list[Problem] = []
    flags: dict[str, Any] = {}
    for key, flag in snapshot.flags.items():
        try:
            flags[key] = _flag(key, flag, snapshot)
        except _Refuse as exc:
            problems.append(
                Problem(path=child_key_path("flags", key), message=f"does not fit flagd: {exc}")
            )
    if problems:
        raise InteropError(problems)
    doc: dict[str, Any] = {"flags": flags}
    flag_set = snapshot.metadata.get("flag_set")
    if isinstance(flag_set, dict) and flag_set:
        doc["metadata"] = dict(flag_set)
    return doc


def _flag(key: str, flag: Flag, snap: Snapshot) -> dict[str, Any]:
    refused = snap.metadata.get("refused")
    if isinstance(refused, dict) and key in refused:
        # kept by flagd.to_snapshot(on_error="keep") without its variants and targeting
        raise _Refuse("it was refused on import")
    if flag.prerequisites:
        raise _Refuse("prerequisites")
    if flag.schedule is not None:
        raise _Refuse("a schedule")
    variants = dict(flag.variants) if flag.variants is not None else {"on": True, "off": False}
    default = (
        flag.default if flag.default is not None else ("on" if flag.variants is None else None)
    )
    out: dict[str, Any] = {
        "state": "ENABLED" if flag.enabled else "DISABLED",
        "variants": {k: v for k, v in variants.items() if k not in _RESERVED},
    }
    if not flag.enabled and snap.metadata.get("imported_from") != "flagd":
        # A switched-off cfgcore flag serves its off variant to everyone (``off`` for a
        # boolean flag, else the default); flagd's DISABLED serves the caller's default
        # instead. Only a flag imported from flagd means flagd's DISABLED.
        off = flag.off_variant
        if off is None:
            off = "off" if flag.variants is None else default
        if off is None or off in _RESERVED or off not in out["variants"]:
            raise _Refuse("switched off without a variant to serve")
        out["state"] = "ENABLED"
        out["defaultVariant"] = off
        return out
    if default is not None and default not in _RESERVED:
        out["defaultVariant"] = default
    elif default == "#invalid":
        # imported from a defaultVariant naming no variant: one flagd does not know
        # either, so the default errs (GENERAL) there as it did
        out["defaultVariant"] = default
    elif default == "#parse-error":
        raise _Refuse("it was refused on import")
    native = snap.metadata.get("imported_from") != "flagd"
    branches: list[Any] = []
    rules = list(enumerate(flag.rules))
    if not native:
        # flagd's own fractional weighs an array bucketing value as an entry: the rules
        # the importer added to do so (flagd.array_entry_rules) are not written
        kept = [(i, r) for i, r in rules if not _mentions(r.when, _FRACTION)]
        if len(kept) < len(rules) and not any(r.hash is not None for _, r in kept):
            # only the array-entry rules are left of a fractional (its static weights
            # are all 0): without the fractional itself flagd would weigh no entry
            raise _Refuse("a fractional whose weights are all 0")
        rules = kept
    skip = set()
    for n, (i, rule) in enumerate(rules):
        if i in skip:
            continue
        try:
            cond, keyed = rule.when, False
            if not native and _is_shorthand(rule):
                # the importer's guard of a v3 shorthand fractional: flagd's own
                # fractional is null where the targeting key is no non-empty string
                cond, keyed = _without_key_guard(rule.when)
            when = _cond(cond, snap, native) if cond is not None else None
            result = _result(rule)
            joined = None
            if not native and n + 1 < len(rules):
                joined = _fractional_condition(rule, cond, rules[n + 1][1], result)
                if joined is not None:  # the importer's {"if": [fractional, A, B]}
                    result = joined  # (a null fractional reads as false there: B)
                    skip.add(rules[n + 1][0])
            if keyed and joined is None and n + 1 < len(rules):
                # flagd's null fractional ends the "if" chain (the default variant)
                # where cfgcore goes on to the next rule: keep the guard, as
                # JSONLogic's truthiness of flagd's targetingKey (a string or null)
                has_key = {"!!": [{"var": "targetingKey"}]}
                when = has_key if when is None else {"and": [when, has_key]}
        except _Refuse as exc:
            raise _Refuse(f"rules[{i}]: {exc}") from None
        if when is None:
            branches.append(result)
            break
        branches += [when, result]
    if branches:
        targeting = branches[0] if len(branches) == 1 else {"if": branches}
        # flagd reads targeting only as a JSONLogic object: a bare variant name (a rule
        # without a condition) is its PARSE_ERROR, and cfgcore's import refuses it too.
        # An unconditional rule is an "if" that always holds.
        out["targeting"] = targeting if isinstance(targeting, dict) else {"if": [True, targeting]}
    meta = flag.metadata.get("flagd")
    if isinstance(meta, dict) and meta:
        out["metadata"] = dict(meta)
    return out


def _mentions(c: Condition | None, prefix: str) -> bool:
    """Whether the condition ``c`` tests an attribute whose name starts with ``prefix``."""
    if c is None:
        return False
    if c.attr is not None and c.attr.startswith(prefix):
        return True
    subs = [*(c.all or []), *(c.any or []), *([c.not_] if c.not_ is not None else [])]
    return any(_mentions(x, prefix) for x in subs)


_KEY_GUARD = Condition(attr="targetingKey", ne="")


def _is_shorthand(rule: Rule) -> bool:
    """A rule the importer made of a v3 ``fractional`` without a bucketing value."""
    h = rule.hash
    return h is not None and h.scheme == "flagd_v3_pair" and h.by == ["targetingKey"]


def _without_key_guard(when: Condition | None) -> tuple[Condition | None, bool]:
    """``when`` without the importer's ``targetingKey ne ""`` conjunct, and whether it
    had one."""
    if when == _KEY_GUARD:
        return None, True
    if when is not None and when.all is not None and _KEY_GUARD in when.all:
        rest = [c for c in when.all if c != _KEY_GUARD]
        if not rest:
            return None, True
        return (rest[0] if len(rest) == 1 else Condition(all=rest)), True
    return when, False


def _fractional_condition(
    rule: Rule, when: Condition | None, after: Rule, result: Any
) -> Any | None:
    """An imported ``{"if": [{"fractional": ...}, A, B]}`` is a bucketed rule serving A or
    B (under ``when``, plus a non-empty targeting key for the v3 shorthand), then a rule
    under ``when`` serving B where the fractional is null (no bucketing value or
    targeting key): written back as that ``if`` over entries ``true`` (A) and ``false``
    (B), so flagd's null still reads as false. None for any other pair."""
    if not (isinstance(result, dict) and "fractional" in result and rule.buckets):
        return None
    if after.when != when or after.serve is None or after.hash is not None:
        return None
    if after.gates or after.split is not None or after.rollout is not None:
        return None
    other = after.serve
    names = {v for v, _ in rule.buckets}
    then = names - {other}
    if len(then) != 1:
        return None
    (then_name,) = then
    args = list(result["fractional"])
    entries = [[v != other, w] for v, w in rule.buckets]
    key = args[: len(args) - len(entries)]
    return {"if": [{"fractional": [*key, *entries]}, then_name, other]}


def _result(rule: Rule) -> Any:
    if rule.gates:
        raise _Refuse("gates (bucket ranges) have no flagd form")
    if rule.hash is not None and rule.buckets is not None:
        h = rule.hash
        total = sum(w for _, w in rule.buckets)
        if any(v is None for v, _ in rule.buckets) or total != h.space:
            raise _Refuse("bucket gaps (fall-through) have no flagd form")
        entries = [[v, w] for v, w in rule.buckets]
        if h.scheme == "flagd_v3_cbor" and len(h.by) == 1 and h.by[0].endswith("#cbor"):
            return {"fractional": [{"var": h.by[0][: -len("#cbor")]}, *entries]}
        if h.scheme == "flagd_v3_pair" and h.by == ["targetingKey"]:
            return {"fractional": entries}
        raise _Refuse(f"bucketing scheme {h.scheme!r} (flagd buckets with fractional v3)")
    if rule.split is not None or rule.rollout is not None:
        raise _Refuse("cfgcore's own rollout/split bucketing has no flagd form")
    return rule.serve


# What JSONLogic's ``cat`` writes for a boolean: Python's text in flagd's Python
# evaluator (json-logic), JSON's in its Go and JavaScript evaluators.
_BOOL_TEXTS = ["True", "False", "true", "false"]


def _bool_like(v: Any) -> bool:
    """Whether flagd's Python evaluator compares ``v`` equal to a value of the other
    kind: a boolean equals 1 or 0 there (Python's ``True == 1``), a number 0 or 1 equals
    a boolean; cfgcore's ``eq`` and ``in`` keep booleans and numbers apart."""
    return isinstance(v, bool) or (isinstance(v, (int, float)) and v in (0, 1))


def _twins_closed(values: list[Any]) -> bool:
    """Whether every boolean-like value in ``values`` has its twin of the other kind
    there too (``1`` and ``true``): then Python's ``==`` matches nothing more."""
    for v in values:
        if _bool_like(v) and not any(
            isinstance(w, bool) != isinstance(v, bool) and w == v for w in values
        ):
            return False
    return True


def _twin_pair(parts: list[Condition]) -> tuple[str, list[Any]] | None:
    """``[x eq 1, x eq true]`` (what flagd's import makes of ``===`` with a 0/1 or
    boolean literal): the attribute and the two values, else None."""
    if len(parts) != 2:
        return None
    a, b = parts
    if a.attr is None or a.eq is None or b.eq is None:
        return None
    if a != Condition(attr=a.attr, eq=a.eq) or b != Condition(attr=a.attr, eq=b.eq):
        return None
    values = [a.eq, b.eq]
    if not all(_bool_like(v) for v in values) or not _twins_closed(values):
        return None
    return a.attr, values


def _equals(var: dict[str, Any], v: Any) -> Any:
    """cfgcore's ``eq`` as JSONLogic that answers it in every flagd evaluator. flagd's
    Python evaluator reads ``===`` with Python's ``==``, where ``True == 1``: a boolean or
    a 0/1 literal is told apart from the other kind by the text ``cat`` makes of the
    value (``True``/``true`` only for a boolean)."""
    same = {"===": [var, v]}
    if not _bool_like(v):
        return same
    is_bool = {"in": [{"cat": [var]}, _BOOL_TEXTS]}
    return {"and": [same, is_bool if isinstance(v, bool) else {"!": [is_bool]}]}


def _cond(c: Condition, snap: Snapshot, native: bool, depth: int = 0) -> Any:
    if depth > 32:
        raise _Refuse("conditions nested too deeply")
    if c.all is not None:
        return {"and": [_cond(x, snap, native, depth + 1) for x in c.all]} if c.all else True
    if c.any is not None:
        pair = _twin_pair(c.any)
        if pair is not None:  # (x eq 1) or (x eq true): flagd's own === 1, as imported
            return _cond(Condition(attr=pair[0], in_=list(pair[1])), snap, native, depth + 1)
        return {"or": [_cond(x, snap, native, depth + 1) for x in c.any]} if c.any else False
    if c.not_ is not None:
        return {"!": [_cond(c.not_, snap, native, depth + 1)]}
    if c.segment is not None:
        seg = snap.segments.get(c.segment)
        if seg is None:
            raise _Refuse(f"unknown segment {c.segment!r}")
        return _cond(seg, snap, native, depth + 1)
    if c.prerequisite is not None:
        raise _Refuse("a condition on another flag's answer (prerequisite)")
    if c.ignore_case:
        raise _Refuse("case-insensitive tests")
    if native and c.attr is not None and "." in c.attr:
        # JSONLogic's var reads "a.b" as the path a -> b; a native attribute is the key
        # "a.b". In a snapshot imported from flagd it is that path (flagd.context).
        raise _Refuse(f"attribute {c.attr!r}: a dot is a path in JSONLogic")
    name = c.attr
    if not native and name is not None and "#" in name:
        if split_derived(name)[1]:
            # an attribute flagd.context() derives (a value's number, text, version,
            # ...): flagd's context has no such variable
            raise _Refuse(
                f"attribute {name!r}: derived by cfgcore's flagd import, not in flagd's context"
            )
        name = unescape_name(name)  # a name holding '#', escaped on import
    if native and name is not None:
        if name in _FLAGD_OWN:
            raise _Refuse(
                f"attribute {name!r}: flagd fills it itself (the targeting key is "
                "'targeting_key' in cfgcore's OpenFeature context)"
            )
        name = _NATIVE_VARS.get(name, name)
    var = {"var": name}
    if c.eq is not None:
        return _equals(var, c.eq)
    if c.in_ is not None:
        if _twins_closed(c.in_):  # Python's == finds only what cfgcore finds
            return {"in": [var, list(c.in_)]}
        plain = [v for v in c.in_ if not _bool_like(v)]
        tests = [_equals(var, v) for v in c.in_ if _bool_like(v)]
        if not tests:
            return {"in": [var, plain]}
        return {"or": ([{"in": [var, plain]}] if plain else []) + tests}
    if c.starts_with is not None:
        return {"starts_with": [var, c.starts_with]}
    if c.ends_with is not None:
        return {"ends_with": [var, c.ends_with]}
    # the operator the condition sets (fields at their default, ignore_case=False
    # among them, set nothing)
    set_ops = [f for f in msgspec.structs.fields(c) if getattr(c, f.name) != f.default]
    names = ", ".join(f.encode_name for f in set_ops if f.name != "attr")
    raise _Refuse(f"operator {names} has no exact JSONLogic form")
