"""Structure pack: the typed schema compiled into a one-pass checker, plus references.

:class:`SchemaRule` walks the known sections once and reports every problem under
these ids (each can be disabled or re-levelled on its own):

``structure.type``            a value of the wrong type
``structure.required``        a required key is missing
``structure.range``           a number outside the schema's bounds
``structure.allowed_values``  a value outside a fixed set (codecs, eviction policies, ...)
``structure.format``          a string that does not match its format (sizes, durations, host:port)
``structure.unknown_key``     an unknown key inside a known section (warning, with "did you mean")

:class:`ReferenceRule` (``structure.reference``) checks names that must point at
something that exists elsewhere in the tree.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

import msgspec.inspect as mi

from cfgcore.config.schema import ENV_REF_PATTERN, ConfigSchema
from cfgcore.config.tree import SUGGESTION_LIMIT
from cfgcore.runtime.secrets import mask_text
from cfgcore.validation.core import ValidationResult, ValidationRule, join_path
from cfgcore.validation.keys import is_secret_key

__all__ = ["ReferenceRule", "SchemaRule", "STRUCTURE_RULE_IDS", "describe"]

TYPE = "structure.type"
REQUIRED = "structure.required"
RANGE = "structure.range"
ALLOWED = "structure.allowed_values"
FORMAT = "structure.format"
UNKNOWN = "structure.unknown_key"

STRUCTURE_RULE_IDS = {
    TYPE: ("error", "values have the type the schema declares"),
    REQUIRED: ("error", "required keys of known sections are present"),
    RANGE: ("error", "numbers are within the schema's bounds"),
    ALLOWED: ("error", "values come from the allowed set (codecs, policies, severities)"),
    FORMAT: ("error", "sizes, durations and host:port strings are well formed"),
    UNKNOWN: ("warning", "no unknown keys inside known sections (with a did-you-mean hint)"),
}

_ENV_REF = re.compile(ENV_REF_PATTERN)


def _is_env_ref(value: Any) -> bool:
    # Any str (a subclass too, read with str's own methods), as the transforms substitute.
    return (
        isinstance(value, str) and str.startswith(value, "${") and _ENV_REF.match(value) is not None
    )


def describe(value: Any, *, secret: bool = False) -> str:
    """Short, safe description of a value for messages (never the value of a secret)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean" if secret else f"boolean {str(value).lower()}"
    if isinstance(value, int):
        if secret:
            return "an integer"
        # (an integer past a float, as JSON and MessagePack carry: its digits may be more
        # than Python converts to text)
        return (
            f"integer {value}"
            if value.bit_length() <= 256
            else (f"an integer of {value.bit_length()} bits")
        )
    if isinstance(value, float):
        return "a number" if secret else f"number {value!r}"
    if isinstance(value, str):
        if secret:
            return "a string"
        # Mask resolved secrets BEFORE cutting: a cut secret is a prefix no mask matches.
        text = mask_text(value)
        shown = text if len(text) <= 40 else text[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# SUGGESTION_LIMIT: unknown keys per validation run compared with the known keys for a
# "did you mean". Past it an unknown key in a closed section is reported without a
# suggestion and counted in one more warning; a key of an open section is still checked
# for a near-typo, after a test that rules most keys out without difflib.


class _Ctx:
    """Per-run state: where findings go, the rule's severities, and how many unknown
    keys were compared with the known keys (``SUGGESTION_LIMIT``)."""

    __slots__ = ("out", "severity", "suggested", "unsuggested", "first_unsuggested")

    def __init__(self, out: list[ValidationResult], severity: dict[str, str]) -> None:
        self.out = out
        self.severity = severity
        self.suggested = 0
        self.unsuggested = 0
        self.first_unsuggested = ""

    def emit(self, rule_id: str, path: str, detail: str, fix: str | None) -> None:
        self.out.append(
            ValidationResult(
                rule_id=rule_id,
                severity=self.severity.get(rule_id, "error"),
                message=f"{path}: {detail}" if path else detail,
                key_path=path,
                suggested_fix=fix,
            )
        )


class _Node:
    __slots__ = ("expected",)
    expected: str

    def matches(self, value: Any) -> bool:
        raise NotImplementedError

    def quick_ok(self, value: Any) -> bool:
        """True when ``value`` certainly yields no finding (lets callers skip building a path)."""
        return False

    def check(self, value: Any, path: str, ctx: _Ctx, secret: bool) -> None:
        """Report problems of a value that ``matches`` (type already right)."""

    def run(self, value: Any, path: str, ctx: _Ctx, secret: bool = False) -> None:
        if self.matches(value):
            self.check(value, path, ctx, secret)
        elif not _is_env_ref(value):
            self.type_error(value, path, ctx, secret)

    def type_error(self, value: Any, path: str, ctx: _Ctx, secret: bool) -> None:
        fix = f"Set {path} to {self.expected}"
        if self.expected.startswith("a boolean") and isinstance(value, str):
            fix += " (YAML 1.2 reads yes/no/on/off as strings)"
        ctx.emit(TYPE, path, f"expected {self.expected}, got {describe(value, secret=secret)}", fix)


class _Any(_Node):
    __slots__ = ()

    def __init__(self) -> None:
        self.expected = "any value"

    def matches(self, value: Any) -> bool:
        return True


class _Bool(_Node):
    __slots__ = ()

    def __init__(self) -> None:
        self.expected = "a boolean (true or false)"

    def matches(self, value: Any) -> bool:
        return isinstance(value, bool)

    def quick_ok(self, value: Any) -> bool:
        return isinstance(value, bool)


class _Number(_Node):
    __slots__ = ("integer", "ge", "gt", "le", "lt", "rule")

    def __init__(self, info: Any, integer: bool, rule: str | None) -> None:
        self.integer = integer
        self.expected = "an integer" if integer else "a number"
        self.ge, self.gt, self.le, self.lt = info.ge, info.gt, info.le, info.lt
        self.rule = rule or RANGE

    def matches(self, value: Any) -> bool:
        return _is_int(value) if self.integer else _is_number(value)

    def quick_ok(self, value: Any) -> bool:
        t = type(value)
        if not (t is int or (t is float and not self.integer)):
            return False
        ge, le = self.ge, self.le
        return (
            self.gt is None
            and self.lt is None
            and (ge is None or value >= ge)
            and (le is None or value <= le)
        )

    def check(self, value: Any, path: str, ctx: _Ctx, secret: bool) -> None:
        ge, gt, le, lt = self.ge, self.gt, self.le, self.lt
        if ge is None and gt is None and le is None and lt is None:
            return
        shown = "the value" if secret else str(value)
        if isinstance(value, float) and math.isnan(value):
            problem = "NaN is not a usable number"
        elif ge is not None and not value >= ge:
            problem = f"{shown} is below the minimum of {ge}"
        elif gt is not None and not value > gt:
            problem = f"{shown} must be greater than {gt}"
        elif le is not None and not value <= le:
            problem = f"{shown} is above the maximum of {le}"
        elif lt is not None and not value < lt:
            problem = f"{shown} must be less than {lt}"
        else:
            return
        low = f">= {ge}" if ge is not None else (f"> {gt}" if gt is not None else None)
        high = f"<= {le}" if le is not None else (f"< {lt}" if lt is not None else None)
        bounds = " and ".join(b for b in (low, high) if b)
        ctx.emit(self.rule, path, problem, f"Set {path} to a value {bounds}")


class _Str(_Node):
    __slots__ = ("pattern", "min_length", "max_length", "what")

    def __init__(self, info: Any, description: str | None) -> None:
        self.expected = "a string"
        self.pattern = re.compile(info.pattern) if info.pattern else None
        self.min_length, self.max_length = info.min_length, info.max_length
        self.what = description or (f"the pattern {info.pattern}" if info.pattern else "")

    def matches(self, value: Any) -> bool:
        return isinstance(value, str)

    def quick_ok(self, value: Any) -> bool:
        return (
            type(value) is str
            and self.pattern is None
            and self.min_length is None
            and self.max_length is None
        )

    def check(self, value: Any, path: str, ctx: _Ctx, secret: bool) -> None:
        if (
            self.pattern is not None
            and self.pattern.search(value) is None
            and not _is_env_ref(value)
        ):
            ctx.emit(
                FORMAT,
                path,
                f"{describe(value, secret=secret)} is not {_article(self.what)}",
                f"Write {path} as {_article(self.what)}",
            )
        if self.min_length is not None and len(value) < self.min_length:
            ctx.emit(RANGE, path, f"shorter than {self.min_length} characters", None)
        if self.max_length is not None and len(value) > self.max_length:
            ctx.emit(RANGE, path, f"longer than {self.max_length} characters", None)


def _article(what: str) -> str:
    if not what:
        return "well formed"
    if what.split(" ", 1)[0].lower() in {"a", "an", "the"}:
        return what
    return ("an " if what[0].lower() in "aeiou" else "a ") + what[0].lower() + what[1:]


class _Literal(_Node):
    __slots__ = ("values", "by_lower")

    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = frozenset(values)
        self.by_lower = {str(v).lower(): v for v in values}
        self.expected = "one of " + ", ".join(repr(v) for v in values)

    def matches(self, value: Any) -> bool:
        # Same scalar kind as the allowed values: a wrong value is "not allowed",
        # a wrong kind (a list where a codec name goes) is a type error.
        return isinstance(value, str)

    def quick_ok(self, value: Any) -> bool:
        return type(value) is str and value in self.values

    def check(self, value: Any, path: str, ctx: _Ctx, secret: bool) -> None:
        # A ${VAR} reference (a CFGCORE__ override is judged as one) is resolved at run
        # time: like a reference where a number goes, it is not a wrong value.
        if value in self.values or _is_env_ref(value):
            return
        hint = self.by_lower.get(value.lower())
        if hint is None:
            close = difflib.get_close_matches(value, [str(v) for v in self.values], n=1)
            hint = close[0] if close else None
        detail = f"{describe(value, secret=secret)} is not allowed; expected {self.expected}"
        if hint is not None:
            detail += f" (did you mean {hint!r}?)"
            fix = f"Set {path} to {hint!r}"
        else:
            fix = f"Set {path} to {self.expected}"
        ctx.emit(ALLOWED, path, detail, fix)


class _List(_Node):
    __slots__ = ("item", "min_length", "max_length")

    def __init__(self, item: _Node, info: Any) -> None:
        self.item = item
        self.min_length, self.max_length = info.min_length, info.max_length
        self.expected = "a list"

    def matches(self, value: Any) -> bool:
        return isinstance(value, (list, tuple))

    def check(self, value: Any, path: str, ctx: _Ctx, secret: bool) -> None:
        n = len(value)
        if self.min_length is not None and n < self.min_length:
            ctx.emit(
                RANGE,
                path,
                f"needs at least {self.min_length} item(s), has {n}",
                f"Add at least {self.min_length} item(s) to {path}",
            )
        if self.max_length is not None and n > self.max_length:
            ctx.emit(RANGE, path, f"allows at most {self.max_length} item(s), has {n}", None)
        item = self.item
        for i, v in enumerate(value):
            if item.quick_ok(v):
                continue
            if v is None:
                item.type_error(v, f"{path}.{i}", ctx, secret)
            else:
                item.run(v, f"{path}.{i}", ctx, secret)


class _Dict(_Node):
    __slots__ = ("value",)

    def __init__(self, value: _Node) -> None:
        self.value = value
        self.expected = "a mapping"

    def matches(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def check(self, value: Any, path: str, ctx: _Ctx, secret: bool) -> None:
        node = self.value
        for k, v in value.items():
            if v is not None and not node.quick_ok(v):
                node.run(v, join_path(path, k), ctx, secret or is_secret_key(k))


class _Struct(_Node):
    __slots__ = ("name", "fields", "required", "open", "_suggest_cache", "_known_text",
                 "_shapes_of")  # fmt: skip

    def __init__(self, cls: type) -> None:
        self.name = cls.__name__
        self.expected = "a mapping"
        self.fields: dict[str, _Node] = {}
        self.required: tuple[str, ...] = ()
        self.open = bool(getattr(cls, "open_section", False))
        self._suggest_cache: dict[str, str | None] = {}
        self._known_text = ""
        self._shapes_of: list[tuple[int, frozenset[str]]] | None = None

    def _shapes(self) -> list[tuple[int, frozenset[str]]]:
        """Each known key's length and letters (built once)."""
        if self._shapes_of is None:
            self._shapes_of = [(len(f), frozenset(f)) for f in self.fields]
        return self._shapes_of

    def _known(self) -> str:
        """The known keys, sorted, for a fix (built once)."""
        if not self._known_text:
            self._known_text = ", ".join(sorted(self.fields))
        return self._known_text

    def matches(self, value: Any) -> bool:
        return isinstance(value, Mapping)

    def check(self, value: Any, path: str, ctx: _Ctx, secret: bool) -> None:
        for name in self.required:
            if value.get(name) is None:
                full = join_path(path, name)
                ctx.emit(
                    REQUIRED,
                    full,
                    f"required key {name!r} is missing",
                    f"Add {full} to the configuration",
                )
        fields = self.fields
        for k, v in value.items():
            node = fields.get(k) if type(k) is str else None
            if node is None:
                self._unknown(k, path, ctx)
            elif v is not None and not node.quick_ok(v):  # null means "unset"
                node.run(v, join_path(path, k), ctx, is_secret_key(k))

    def _unknown(self, key: Any, path: str, ctx: _Ctx) -> None:
        text = key if type(key) is str else str(key)
        cache = self._suggest_cache
        compared = True
        if text in cache:
            hint = cache[text]
        elif self.open:
            # Open sections hold the user's own keys: only a near-typo earns a warning
            # (pdpa_compliance is a sibling of gdpr_compliance, not a misspelling). A
            # key two edits or more from every known key is none (the cheap test first:
            # within one character of the length, at most two letters the other lacks).
            hint = None
            letters = set(text)
            if any(
                abs(size - len(text)) <= 1 and len(letters - chars) <= 2
                for size, chars in self._shapes()
            ):
                close = difflib.get_close_matches(text, list(self.fields), n=1, cutoff=0.8)
                hint = close[0] if close and _typo(text, close[0]) else None
            if len(cache) < 4096:
                cache[text] = hint
        elif ctx.suggested < SUGGESTION_LIMIT:
            ctx.suggested += 1
            close = difflib.get_close_matches(text, list(self.fields), n=1, cutoff=0.6)
            hint = close[0] if close else None
            if len(cache) < 4096:
                cache[text] = hint
        else:
            hint, compared = None, False
        if self.open and hint is None:
            return
        where = path or "the top level"
        full = join_path(path, key)
        if not compared:
            ctx.unsuggested += 1
            if not ctx.first_unsuggested:
                ctx.first_unsuggested = full
        if hint is not None:
            detail = f"unknown key {text!r} in {where} (did you mean {hint!r}?)"
            fix = f"Rename {full} to {join_path(path, hint)}"
        else:
            detail = f"unknown key {text!r} in {where}"
            fix = f"Remove {full} or check its spelling (known keys: {self._known()})"
        ctx.emit(UNKNOWN, full, detail, fix)


def _typo(a: str, b: str) -> bool:
    """One edit apart, or two swapped letters (``pdpa`` is not a typo of ``gdpr``)."""
    d = _distance(a, b, 2)
    return d <= 1 or (d == 2 and len(a) == len(b) and sorted(a) == sorted(b))


def _distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of two short strings, capped at ``limit + 1``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return limit + 1
        prev = cur
    return prev[-1]


class _Union(_Node):
    __slots__ = ("options",)

    def __init__(self, options: list[_Node]) -> None:
        self.options = options
        self.expected = " or ".join(dict.fromkeys(o.expected for o in options))

    def matches(self, value: Any) -> bool:
        return any(o.matches(value) for o in self.options)

    def quick_ok(self, value: Any) -> bool:
        return any(o.quick_ok(value) for o in self.options)

    def check(self, value: Any, path: str, ctx: _Ctx, secret: bool) -> None:
        for option in self.options:
            if option.matches(value):
                option.check(value, path, ctx, secret)
                return


def _compile(t: Any, structs: dict[type, _Struct], rule: str | None = None) -> _Node:
    """Turn a msgspec type description into a checker node (structs are shared)."""
    description = None
    if isinstance(t, mi.Metadata):
        extra = t.extra or {}
        rule = extra.get("rule", rule)
        description = (t.extra_json_schema or {}).get("description")
        t = t.type
    if isinstance(t, mi.StructType):
        node = structs.get(t.cls)
        if node is None:
            node = structs[t.cls] = _Struct(t.cls)
            node.fields = {f.encode_name: _compile(f.type, structs) for f in t.fields}
            node.required = tuple(f.encode_name for f in t.fields if f.required)
        return node
    if isinstance(t, mi.UnionType):
        options = [_compile(o, structs, rule) for o in t.types if not isinstance(o, mi.NoneType)]
        return options[0] if len(options) == 1 else _Union(options)
    if isinstance(t, mi.BoolType):
        return _Bool()
    if isinstance(t, mi.IntType):
        return _Number(t, True, rule)
    if isinstance(t, mi.FloatType):
        return _Number(t, False, rule)
    if isinstance(t, mi.StrType):
        return _Str(t, description)
    if isinstance(t, mi.LiteralType):
        return _Literal(t.values)
    if isinstance(t, (mi.ListType, mi.VarTupleType, mi.SetType, mi.FrozenSetType)):
        return _List(_compile(t.item_type, structs), t)
    # A fixed-length tuple has per-position types (item_types), no single item_type;
    # the schema has none today, so such a field is accepted as is rather than crash.
    if isinstance(t, mi.DictType):
        return _Dict(_compile(t.value_type, structs))
    return _Any()


_ROOT: _Node | None = None


def schema_checker() -> _Node:
    """The compiled checker for :class:`cfgcore.schema.ConfigSchema` (built once)."""
    global _ROOT
    if _ROOT is None:
        _ROOT = _compile(mi.type_info(ConfigSchema), {})
    return _ROOT


class SchemaRule(ValidationRule):
    """Type, required-key, range, allowed-value, format and unknown-key checks."""

    pack = "structure"
    description = "the known sections match the typed schema (cfgcore.schema)"

    def __init__(self) -> None:
        super().__init__("structure.schema", "error")
        self._root = schema_checker()
        self._severity = {rid: sev for rid, (sev, _) in STRUCTURE_RULE_IDS.items()}

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        out: list[ValidationResult] = []
        ctx = _Ctx(out, self._severity)
        if not isinstance(config, Mapping):
            ctx.emit(
                TYPE,
                "",
                f"a configuration must be a mapping of sections, got {describe(config)}",
                "Make the top level of the file a mapping (key: value)",
            )
            return out
        self._root.check(config, "", ctx, False)
        if ctx.unsuggested:
            ctx.emit(
                UNKNOWN,
                ctx.first_unsuggested,
                f"{ctx.unsuggested} unknown keys (from this one on) are reported without a "
                f"'did you mean': at most {SUGGESTION_LIMIT} unknown keys are compared "
                "with the known keys per validation",
                "Fix the unknown keys reported above, then validate again for suggestions",
            )
        return out


def _get(tree: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(tree, Mapping):
            return None
        tree = tree.get(k)
    return tree


class ReferenceRule(ValidationRule):
    """Names that must exist elsewhere in the tree.

    * every segment in ``user_segments.segment_specific_features`` has a priority level;
    * ``audio_quality.default_codec`` is one of ``audio_quality.codecs``;
    * ``audio_quality.default_quality`` is one of the ``audio_quality.bitrates`` tiers;
    * ``feature_flags.<flag>.dependencies`` / ``depends_on`` name existing flags.
    """

    pack = "structure"
    description = "references (segments, default codec/quality, flag dependencies) exist"

    def __init__(self) -> None:
        super().__init__("structure.reference", "error")

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        out: list[ValidationResult] = []
        if not isinstance(config, Mapping):
            return out
        levels = _get(config, "user_segments", "priority_levels")
        features = _get(config, "user_segments", "segment_specific_features")
        if isinstance(levels, Mapping) and isinstance(features, Mapping):
            for segment in features:
                if segment not in levels:
                    path = join_path("user_segments.segment_specific_features", segment)
                    out.append(
                        self._missing(
                            path,
                            f"segment {segment!r}",
                            "user_segments.priority_levels",
                            list(levels),
                        )
                    )
        audio = _get(config, "music_streaming", "audio_quality")
        if isinstance(audio, Mapping):
            codecs = audio.get("codecs")
            default_codec = audio.get("default_codec")
            if isinstance(codecs, (list, tuple)) and isinstance(default_codec, str):
                if default_codec not in codecs:
                    out.append(
                        self._missing(
                            "music_streaming.audio_quality.default_codec",
                            f"codec {default_codec!r}",
                            "music_streaming.audio_quality.codecs",
                            list(codecs),
                        )
                    )
            tiers = audio.get("bitrates")
            quality = audio.get("default_quality")
            if isinstance(tiers, Mapping) and isinstance(quality, str) and quality not in tiers:
                out.append(
                    self._missing(
                        "music_streaming.audio_quality.default_quality",
                        f"quality {quality!r}",
                        "music_streaming.audio_quality.bitrates",
                        list(tiers),
                    )
                )
        flags = config.get("feature_flags")
        if isinstance(flags, Mapping):
            for name, flag in flags.items():
                if not isinstance(flag, Mapping):
                    continue
                for field in ("dependencies", "depends_on"):
                    deps = flag.get(field)
                    if isinstance(deps, str):
                        deps = [deps]
                    if not isinstance(deps, (list, tuple)):
                        continue
                    for i, dep in enumerate(deps):
                        if isinstance(dep, str) and dep not in flags:
                            path = f"{join_path(join_path('feature_flags', name), field)}.{i}"
                            out.append(
                                self._missing(path, f"flag {dep!r}", "feature_flags", list(flags))
                            )
        return out

    def _missing(self, path: str, what: str, where: str, known: list[Any]) -> ValidationResult:
        names = [str(k) for k in known]
        close = difflib.get_close_matches(what.split("'")[1] if "'" in what else what, names, n=1)
        detail = f"{path}: {what} does not exist in {where}"
        if close:
            detail += f" (did you mean {close[0]!r}?)"
        shown = ", ".join(names[:12]) or "nothing defined"
        return self.create_result(
            False, detail, suggested_fix=f"Use one of: {shown}; or add it to {where}", key_path=path
        )
