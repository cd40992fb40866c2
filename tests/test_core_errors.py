"""Bad snapshots: one exception type, every problem listed with its path; the engine
keeps serving the previous snapshot."""

from __future__ import annotations

import pytest

from cfgcore.engine import Engine
from cfgcore.errors import ConfigError, SnapshotError


def problems_of(snapshot) -> list[str]:
    with pytest.raises(SnapshotError) as info:
        Engine.from_snapshot(snapshot)
    assert isinstance(info.value, ConfigError)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


def test_every_problem_is_listed_with_its_path():
    found = problems_of(
        {
            "segments": {"loop_a": {"segment": "loop_b"}, "loop_b": {"segment": "loop_a"}},
            "flags": {
                "a": {"rules": [{"when": {"segment": "nope"}, "serve": "on"}]},
                "b": {
                    "variants": {"x": 1, "y": 2},
                    "default": "x",
                    "rules": [{"split": {"x": 60, "y": 30}}],
                },
                "c": {"rules": [{"when": {"attr": "id", "matches": "("}, "serve": "on"}]},
                "d": {"prerequisites": ["e"]},
                "e": {"prerequisites": ["d"]},
                "f": {"prerequisites": ["ghost"]},
                "g": {"variants": {"x": 1}, "default": "missing"},
                "h": {"rules": [{"serve": "maybe"}]},
                "i": {"rules": [{"rollout": 120, "serve": "on"}]},
                "j": {"rules": [{"when": {"attr": "v", "semver_gt": "one"}, "serve": "on"}]},
                "k": {"rules": [{"when": {"attr": "v", "eq": 1, "in": [1]}, "serve": "on"}]},
                "l": {"rules": [{"when": {}, "serve": "on"}]},
                "m": {"variants": {"a": "A"}},
                "n": {"prerequisites": [{"flag": "b", "variant": "zz"}]},
                "o": {"prerequisites": ["b"]},
            },
        }
    )
    text = "\n".join(found)
    expected = [
        "segments.loop_a: segment reference cycle",
        "flags.a.rules[0].when.segment: unknown segment 'nope'",
        "flags.b.rules[0].split: weights sum to 90, not 100",
        "flags.c.rules[0].when.matches: invalid regular expression",
        "prerequisite cycle: d -> e -> d",
        "flags.f.prerequisites[0].flag: unknown flag 'ghost'",
        "flags.g.default: unknown variant 'missing'",
        "flags.h.rules[0].serve: unknown variant 'maybe'",
        "flags.i.rules[0].rollout: must be within 0..100",
        "flags.j.rules[0].when.semver_gt: not a semantic version",
        "flags.k.rules[0].when: condition has more than one operator (eq, in)",
        "flags.l.rules[0].when: condition has no operator",
        "flags.m.default: missing: every flag names its default variant",
        "flags.d.default: missing: every flag names its default variant",
        "flags.n.prerequisites[0].variant: flag 'b' has no variant 'zz'",
        "flags.o.prerequisites[0]: flag 'b' is not boolean",
    ]
    for fragment in expected:
        assert fragment in text, f"{fragment!r} not in\n{text}"


def test_prerequisite_cycle_alone_is_reported():
    found = problems_of({"flags": {"a": {"prerequisites": ["a"]}}})
    assert any("prerequisite cycle: a -> a" in f for f in found)


@pytest.mark.parametrize(
    ("data", "fmt", "fragment"),
    [
        ("flags:\n  checkout_v2:\n    rules:\n      - serve: 'on'\n"
         "      - when: {attr: x, in: EU}\n", "yaml",
         "flags.checkout_v2.rules[1].when.in: expected array, got str"),
        ("flags:\n  a: {}\n  a: {}\n", "yaml", "duplicate key"),
        ('{"flags": {"a": {}, "a": {}}}', "json", "a: duplicate key"),
        ('{"flags": {"a": {"rules": [{"when": {"attr": "x", "between": [1, 2]}}]}}}', "json",
         "flags.a.rules[0].when.between: unknown field"),
        ("flags:\n  a: {rollot: 5}\n", "yaml", "flags.a.rollot: unknown field"),
        ("flags:\n  a: {variantz: {}}\n", "yaml",
         "flags.a.variantz: unknown field (did you mean 'variants'"),
        ("flags: [1, 2]\n", "yaml", "flags: expected object, got array"),
        ("flags:\n  a: {enabled: 'yes'}\n", "yaml", "flags.a.enabled: expected bool, got str"),
        ("flags: {a: [\n", "yaml", "invalid YAML"),
        ("{", "json", "invalid JSON"),
        (b"\xc1", "msgpack", "msgpack"),
    ],
)  # fmt: skip
def test_decode_errors_name_the_path(data, fmt, fragment):
    from cfgcore.snapshot import decode_snapshot

    with pytest.raises(SnapshotError) as info:
        decode_snapshot(data if fmt != "msgpack" else data, fmt, file=f"flags.{fmt}")
    assert fragment.lower() in str(info.value).lower()
    assert f"flags.{fmt}" in str(info.value)


def test_yaml_errors_name_the_line():
    from cfgcore.snapshot import decode_snapshot

    with pytest.raises(SnapshotError) as info:
        decode_snapshot("flags:\n  a: {}\n  b: {}\n  a: {}\n", "yaml", file="flags.yaml")
    assert "flags.yaml:4" in str(info.value)


def test_bad_file_keeps_previous_snapshot(tmp_path):
    good = tmp_path / "flags.yaml"
    good.write_text("flags:\n  f: {default: 'on'}\n")
    engine = Engine.from_file(good)
    assert engine.is_enabled("f")
    bad = tmp_path / "bad.yaml"
    bad.write_text("flags:\n  f: {default: 'on', rules: [{serve: nope}]}\n")
    with pytest.raises(SnapshotError, match=r"bad.yaml:2: flags.f.rules"):
        engine.load_file(bad)
    assert engine.is_enabled("f") and engine.version == 1
    with pytest.raises(SnapshotError, match="cannot read"):
        engine.load_file(tmp_path / "absent.yaml")
    with pytest.raises(SnapshotError, match="extension"):
        engine.load_file(tmp_path / "flags.txt")


def test_deep_nesting_is_rejected_not_crashing():
    cond = {"attr": "a", "eq": 1}
    for _ in range(40):
        cond = {"not": cond}
    found = problems_of({"flags": {"f": {"rules": [{"when": cond, "serve": "on"}]}}})
    assert any("nested deeper" in f for f in found)


def test_nan_constant_is_rejected():
    found = problems_of(
        {"flags": {"f": {"rules": [{"when": {"attr": "a", "eq": float("nan")}, "serve": "on"}]}}}
    )
    assert any("NaN" in f for f in found)


@pytest.mark.parametrize(
    ("data", "said"),
    [
        (b"", "empty flag file"),
        (b"   \n", "empty flag file"),
        (b"# only a comment\n", "empty flag file"),
        (b"\xef\xbb\xbf", "empty flag file"),  # a UTF-8 byte-order mark alone
        # A UTF-16 mark alone: UTF-16 text, refused as such (cfgcore._encoding)
        (b"\xff\xfe", "flags.yaml:1: UTF-16 text .*save it as UTF-8"),
    ],
)
def test_empty_yaml_flag_file_is_an_error_not_an_empty_flag_set(data, said, tmp_path):
    """A truncated file must not switch every flag off on reload."""
    from cfgcore.snapshot import decode_snapshot

    with pytest.raises(SnapshotError, match=said):
        decode_snapshot(data, "yaml", file="flags.yaml")
    path = tmp_path / "flags.yaml"
    path.write_text("flags:\n  f: {default: 'on'}\n")
    engine = Engine.from_file(path)
    path.write_bytes(data)
    with pytest.raises(SnapshotError):
        engine.load_file(path)
    assert engine.is_enabled("f")
    assert len(Engine.from_bytes(b"flags: {}\n").snapshot()) == 0


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "100.0001", "-1"])
def test_non_finite_or_out_of_range_rollout_is_a_problem_not_a_crash(value):
    from cfgcore.snapshot import decode_snapshot

    text = f"flags:\n  f:\n    rules: [{{rollout: {value}, serve: 'on'}}]\n"
    snap = decode_snapshot(text, "yaml")
    with pytest.raises(SnapshotError, match=r"flags.f.rules\[0\].rollout: must be within 0..100"):
        Engine.from_snapshot(snap)
