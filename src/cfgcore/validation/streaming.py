"""Music-streaming business rules.

* ``streaming.bitrate_order``: premium >= high >= normal >= low; premium >= standard bitrate.
* ``streaming.codec_limits``: each bitrate can be carried by at least one listed codec
  (:data:`CODEC_LIMITS_KBPS`).
* ``streaming.experiment_split``: an experiment's traffic split is numbers in 0..100 summing to 100.
* ``streaming.experiment_variants``: every variant in a split names an existing configuration.
* ``streaming.rollout_range``: ``rollout_percentage`` (anywhere) is a number in 0..100.
* ``streaming.premium_concurrent_streams``: ``user_limits.premium_concurrent_streams`` >= 5.
* ``streaming.auto_scaling``: min_replicas <= max_replicas; utilisation targets in 1..100
  (the range half is checked by the schema and reported under this id).
* ``streaming.cache_ttl_order``: l1 ttl <= l2 ttl <= l3 ttl (a warning in development/test).

Experiments live under the top-level ``ab_tests`` or ``experiments`` key, either a
mapping ``name -> test`` or a list of tests with ``test_name``/``name``; a test has
``traffic_split`` (variant -> percent) and ``configurations`` (variant -> settings),
the shape of the seed's ``ABTestConfiguration``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cfgcore.config.schema import parse_duration
from cfgcore.validation.core import ValidationResult, ValidationRule, join_path
from cfgcore.validation.walk import TreeRule

__all__ = ["CODEC_LIMITS_KBPS", "streaming_rules"]

# (min, max) kbit/s a codec can carry in a stereo stream. Lossless codecs have no
# practical ceiling below hi-res PCM (24 bit / 192 kHz ~ 9216 kbit/s).
CODEC_LIMITS_KBPS = {
    "mp3": (8, 320),
    "aac": (8, 512),
    "ogg": (32, 500),
    "vorbis": (32, 500),
    "opus": (6, 510),
    "flac": (8, 9216),
    "alac": (8, 9216),
    "wav": (64, 9216),
}
TIERS = ("premium", "high", "normal", "low")
_AQ = "music_streaming.audio_quality"


def _num(v: Any) -> float | None:
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _get(tree: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(tree, Mapping):
            return None
        tree = tree.get(k)
    return tree


class _StreamingRule(ValidationRule):
    pack = "streaming"

    def fail(self, path: str, detail: str, fix: str, ctx: Any = None) -> ValidationResult:
        env = ctx.get("environment") if isinstance(ctx, Mapping) else None
        return self.create_result(
            False,
            f"{path}: {detail}",
            suggested_fix=fix,
            key_path=path,
            severity=self.severity_for(env),
        )


class BitrateOrderRule(_StreamingRule):
    description = "bitrates ordered premium >= high >= normal >= low"

    def __init__(self) -> None:
        super().__init__("streaming.bitrate_order", "error")

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        audio = _get(config, "music_streaming", "audio_quality")
        if not isinstance(audio, Mapping):
            return []
        out = []
        bitrates = audio.get("bitrates")
        if isinstance(bitrates, Mapping):
            present: list[tuple[str, float]] = []
            for tier in TIERS:
                rate = _num(bitrates.get(tier))
                if rate is not None:
                    present.append((tier, rate))
            for (upper, a), (lower, b) in zip(present, present[1:], strict=False):
                if b > a:
                    out.append(
                        self.fail(
                            f"{_AQ}.bitrates.{lower}",
                            f"{lower} ({b:g} kbps) is above {upper} ({a:g} kbps); tiers must be "
                            "ordered premium >= high >= normal >= low",
                            f"Set {_AQ}.bitrates.{lower} to {a:g} or less",
                            context,
                        )
                    )
        premium, standard = _num(audio.get("premium_bitrate")), _num(audio.get("standard_bitrate"))
        if premium is not None and standard is not None and standard > premium:
            out.append(
                self.fail(
                    f"{_AQ}.standard_bitrate",
                    f"standard_bitrate ({standard:g} kbps) is above "
                    f"premium_bitrate ({premium:g} kbps)",
                    f"Set {_AQ}.standard_bitrate to {premium:g} or less",
                    context,
                )
            )
        return out


class CodecLimitsRule(_StreamingRule):
    description = "every bitrate can be carried by one of the listed codecs"

    def __init__(self) -> None:
        super().__init__("streaming.codec_limits", "error")

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        audio = _get(config, "music_streaming", "audio_quality")
        if not isinstance(audio, Mapping):
            return []
        codecs = audio.get("codecs")
        if not isinstance(codecs, (list, tuple)):
            return []
        limits = {
            c: CODEC_LIMITS_KBPS[c] for c in codecs if isinstance(c, str) and c in CODEC_LIMITS_KBPS
        }
        if not limits:
            return []
        values: list[tuple[str, float]] = []
        bitrates = audio.get("bitrates")
        if isinstance(bitrates, Mapping):
            for tier in TIERS:
                b = _num(bitrates.get(tier))
                if b is not None:
                    values.append((f"{_AQ}.bitrates.{tier}", b))
        for alias in ("premium_bitrate", "standard_bitrate"):
            b = _num(audio.get(alias))
            if b is not None:
                values.append((f"{_AQ}.{alias}", b))
        ceiling = max(hi for _, hi in limits.values())
        floor = min(lo for lo, _ in limits.values())
        listed = ", ".join(f"{c} {lo}-{hi}" for c, (lo, hi) in limits.items())
        out = []
        for path, b in values:
            if any(lo <= b <= hi for lo, hi in limits.values()):
                continue
            if b > ceiling:
                detail = f"{b:g} kbps is above what any listed codec carries ({listed} kbps)"
                fix = f"Lower it to {ceiling} or add a codec that carries {b:g} kbps (e.g. flac)"
            else:
                detail = f"{b:g} kbps is below what any listed codec carries ({listed} kbps)"
                fix = f"Raise it to {floor} or more, or add a codec such as opus"
            out.append(self.fail(path, detail, fix, context))
        return out


def _experiments(config: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for section in ("ab_tests", "experiments"):
        tests = config.get(section)
        if isinstance(tests, Mapping):
            for name, test in tests.items():
                if isinstance(test, Mapping):
                    yield join_path(section, name), test
        elif isinstance(tests, (list, tuple)):
            for i, test in enumerate(tests):
                if isinstance(test, Mapping):
                    yield f"{section}.{i}", test


class ExperimentSplitRule(_StreamingRule):
    description = "experiment traffic splits are numbers in 0..100 that sum to 100"

    def __init__(self) -> None:
        super().__init__("streaming.experiment_split", "error")

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        if not isinstance(config, Mapping):
            return []
        out = []
        for base, test in _experiments(config):
            split = test.get("traffic_split")
            if split is None:
                continue
            path = f"{base}.traffic_split"
            if not isinstance(split, Mapping) or not split:
                out.append(
                    self.fail(
                        path,
                        "must be a non-empty mapping of variant -> percent",
                        "Give each variant a percentage, e.g. {control: 50, variant_a: 50}",
                        context,
                    )
                )
                continue
            total, bad = 0.0, False
            for variant, pct in split.items():
                p = _num(pct)
                if p is None or not 0 <= p <= 100:
                    bad = True
                    vpath = join_path(path, variant)
                    shown = "not a number" if p is None else f"{p:g}"
                    out.append(
                        self.fail(
                            vpath,
                            f"{shown} is not a percentage between 0 and 100",
                            f"Set {vpath} to a number between 0 and 100",
                            context,
                        )
                    )
                else:
                    total += p
            if not bad and abs(total - 100.0) > 1e-6:
                out.append(
                    self.fail(
                        path,
                        f"percentages sum to {total:g}, not 100",
                        "Adjust the variants' percentages so they add up to exactly 100",
                        context,
                    )
                )
        return out


class ExperimentVariantsRule(_StreamingRule):
    description = "experiment split variants name existing configurations"

    def __init__(self) -> None:
        super().__init__("streaming.experiment_variants", "error")

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        if not isinstance(config, Mapping):
            return []
        out = []
        for base, test in _experiments(config):
            split, configs = test.get("traffic_split"), test.get("configurations")
            if not isinstance(split, Mapping) or not isinstance(configs, Mapping):
                continue
            for variant in split:
                if variant not in configs:
                    vpath = join_path(f"{base}.traffic_split", variant)
                    known = ", ".join(str(k) for k in configs) or "none"
                    out.append(
                        self.fail(
                            vpath,
                            f"variant {variant!r} has no entry in {base}.configurations",
                            f"Add {join_path(base + '.configurations', variant)} "
                            f"or use one of: {known}",
                            context,
                        )
                    )
        return out


class RolloutRangeRule(TreeRule):
    """``rollout_percentage`` or ``rollout_percent`` anywhere, and a numeric ``rollout``: 0..100."""

    pack = "streaming"
    description = "rollout percentages are numbers in 0..100"
    _KEYS = frozenset({"rollout_percentage", "rollout_percent", "rollout"})

    def __init__(self) -> None:
        super().__init__("streaming.rollout_range", "error")

    def wants_key(self, key: str) -> bool:
        return key in self._KEYS

    def visit(
        self,
        path: str,
        key: str,
        value: Any,
        parent: Mapping[Any, Any],
        parent_key: str,
        ctx: dict[str, Any],
        out: list[ValidationResult],
    ) -> None:
        p = _num(value)
        if p is None:
            # `rollout` may be a strategy block or name; only the percentage keys must be numbers.
            if (
                key.lower() == "rollout"
                or value is None
                or (isinstance(value, str) and value.startswith("${"))
            ):
                return
            detail = "is not a number"
        elif 0 <= p <= 100:
            return
        else:
            detail = f"{p:g} is outside 0..100"
        out.append(
            ValidationResult(
                self.rule_id,
                self.severity_for(ctx.get("environment")),
                f"{path}: rollout percentage {detail}",
                path,
                f"Set {path} to a number between 0 and 100",
            )
        )


class PremiumStreamsRule(_StreamingRule):
    description = "user_limits.premium_concurrent_streams >= 5"

    def __init__(self, minimum: int = 5) -> None:
        super().__init__("streaming.premium_concurrent_streams", "error")
        self.minimum = minimum

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        value = _num(_get(config, "user_limits", "premium_concurrent_streams"))
        if value is None or value >= self.minimum:
            return []
        path = "user_limits.premium_concurrent_streams"
        return [
            self.fail(
                path,
                f"premium users get {value:g} concurrent stream(s); "
                f"at least {self.minimum} are promised",
                f"Increase {path} to at least {self.minimum}",
                context,
            )
        ]


class AutoScalingRule(_StreamingRule):
    description = "auto_scaling: min_replicas <= max_replicas, utilisation targets in 1..100"

    def __init__(self) -> None:
        super().__init__("streaming.auto_scaling", "error")

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        scaling = _get(config, "auto_scaling")
        if not isinstance(scaling, Mapping):
            return []
        low, high = _num(scaling.get("min_replicas")), _num(scaling.get("max_replicas"))
        if low is None or high is None or low <= high:
            return []
        return [
            self.fail(
                "auto_scaling.min_replicas",
                f"min_replicas ({low:g}) is greater than max_replicas ({high:g})",
                f"Set auto_scaling.min_replicas to {high:g} or less, or raise max_replicas",
                context,
            )
        ]


class CacheTtlOrderRule(_StreamingRule):
    description = "cache TTLs grow outwards: l1 <= l2 <= l3"

    def __init__(self) -> None:
        super().__init__(
            "streaming.cache_ttl_order",
            "error",
            env_severity={"development": "warning", "test": "warning"},
        )

    def validate(self, config: Mapping[str, Any], context: Any = None) -> list[ValidationResult]:
        layers = _get(config, "caching_layers")
        if not isinstance(layers, Mapping):
            return []
        ttls = []
        for name in ("l1_cache", "l2_cache", "l3_cache"):
            seconds = parse_duration(_get(layers, name, "ttl"))
            if seconds is not None:
                ttls.append((name, seconds))
        out = []
        for (inner, a), (outer, b) in zip(ttls, ttls[1:], strict=False):
            if b < a:
                path = f"caching_layers.{outer}.ttl"
                out.append(
                    self.fail(
                        path,
                        f"{outer} ttl ({b:g}s) is shorter than {inner} ttl ({a:g}s); outer caches "
                        "must keep entries at least as long (l1 <= l2 <= l3)",
                        f"Set {path} to {a:g} seconds or more",
                        context,
                    )
                )
        return out


def streaming_rules() -> list[ValidationRule]:
    """The built-in music-streaming rules."""
    return [
        BitrateOrderRule(),
        CodecLimitsRule(),
        ExperimentSplitRule(),
        ExperimentVariantsRule(),
        RolloutRangeRule(),
        PremiumStreamsRule(),
        AutoScalingRule(),
        CacheTtlOrderRule(),
    ]
