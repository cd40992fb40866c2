"""Bad numbers and deep values are snapshot errors with paths; big ints compare
exactly (issue 10, item 3, flag side)."""

from __future__ import annotations

import pytest

from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError

HUGE = 10**400
BIG = 1234567890123456789  # above 2**53: a double cannot hold it


def _rule_flag(cond=None, **rule):
    rule.setdefault("serve", "on")
    if cond is not None:
        rule["when"] = cond
    return {"flags": {"f": {"default": "off", "rules": [rule]}}}


@pytest.mark.parametrize(
    ("snapshot", "path"),
    [
        (_rule_flag({"attr": "a", "eq": HUGE}), "flags.f.rules[0].when.eq"),
        (_rule_flag({"attr": "a", "ne": -HUGE}), "flags.f.rules[0].when.ne"),
        (_rule_flag({"attr": "a", "in": [1, HUGE]}), "flags.f.rules[0].when.in"),
        (_rule_flag({"attr": "a", "not_in": [HUGE]}), "flags.f.rules[0].when.not_in"),
        (_rule_flag({"attr": "a", "ge": HUGE}), "flags.f.rules[0].when.ge"),
        (_rule_flag(rollout=HUGE), "flags.f.rules[0].rollout"),
        (
            {"flags": {"f": {"variants": {"a": 1, "b": 2}, "default": "a",
                             "rules": [{"split": {"a": HUGE, "b": 0}}]}}},
            "flags.f.rules[0].split.a",
        ),
    ],
)  # fmt: skip
def test_huge_int_constants_and_weights_are_snapshot_errors(make, snapshot, path):
    with pytest.raises(SnapshotError) as err:
        make(snapshot)
    assert f"{path}: number out of range" in str(err.value)


def test_huge_int_in_a_json_flag_file_is_a_snapshot_error(impl):
    text = '{"flags": {"f": {"default": "off", "rules": [{"rollout": 1%s, "serve": "on"}]}}}'
    with pytest.raises(SnapshotError, match="flags.f.rules\\[0\\].rollout: number out of range"):
        engine_class(impl).from_bytes(text % ("0" * 400), "json", file="flags.json")
    with pytest.raises(SnapshotError, match="flags.json"):  # beyond Python's int-string limit
        engine_class(impl).from_bytes(text % ("0" * 5000), "json", file="flags.json")


@pytest.mark.parametrize("op", ["eq", "in"])
def test_ints_above_2_53_compare_exactly(make, op):
    value = BIG if op == "eq" else [BIG]
    engine = make(_rule_flag({"attr": "id", op: value}))
    assert engine.is_enabled("f", {"id": BIG}) is True
    assert engine.is_enabled("f", engine.context({"id": BIG})) is True
    for other in (BIG - 1, BIG + 1, float(BIG), str(BIG)):
        assert engine.is_enabled("f", {"id": other}) is False, other
        assert engine.is_enabled("f", engine.context({"id": other})) is False, other


def test_exact_ints_with_ne_and_not_in(make):
    engine = make(
        {
            "flags": {
                "ne": {"default": "off",
                       "rules": [{"when": {"attr": "id", "ne": BIG}, "serve": "on"}]},
                "nin": {"default": "off",
                        "rules": [{"when": {"attr": "id", "not_in": [BIG]}, "serve": "on"}]},
            }
        }
    )  # fmt: skip
    for key in ("ne", "nin"):
        assert engine.is_enabled(key, {"id": BIG}) is False
        assert engine.is_enabled(key, {"id": BIG + 1}) is True
        assert engine.is_enabled(key, {"id": float(BIG)}) is True  # a different number


def test_small_int_and_float_constants_still_share_an_id(make):
    engine = make(_rule_flag({"attr": "n", "in": [5, 2.5]}))
    assert engine.is_enabled("f", {"n": 5.0}) and engine.is_enabled("f", {"n": 5})
    assert engine.is_enabled("f", {"n": 2.5}) and not engine.is_enabled("f", {"n": 3})


def _deep(n, leaf=1, kind="list"):
    value = leaf
    for _ in range(n):
        value = [value] if kind == "list" else {"a": value}
    return value


def _deep_not(n):
    cond = {"attr": "a", "eq": 1}
    for _ in range(n):
        cond = {"not": cond}
    return cond


DEEP = [
    ({"flags": {"f": {"variants": {"a": _deep(10_000)}, "default": "a"}}}, "flags.f.variants.a"),
    (
        {"flags": {"f": {"variants": {"a": _deep(10_000, kind="dict")}, "default": "a"}}},
        "flags.f.variants.a",
    ),
    (_rule_flag(_deep_not(10_000)), "flags.f.rules[0].when.not"),
    ({"flags": {}, "segments": {"s": _deep_not(10_000)}}, "segments.s.not"),
    ({"flags": {}, "metadata": {"m": _deep(10_000)}}, "metadata.m"),
]


@pytest.mark.parametrize(("snapshot", "path"), DEEP)
def test_10000_deep_values_are_snapshot_errors_not_recursion_errors(make, snapshot, path):
    with pytest.raises(SnapshotError) as err:
        make(snapshot)
    assert "nested deeper than 100 levels" in str(err.value)
    assert path in str(err.value)


@pytest.mark.parametrize("fmt", ["json", "yaml", "msgpack"])
def test_10000_deep_flag_files_are_snapshot_errors(impl, fmt):
    depth = 10_000
    if fmt == "msgpack":
        body = b"\x91" * depth + b"\x01"  # fixarray(1) nested
        data = b"\x81\xa5flags\x81\xa1f\x82\xa7default\xa1a\xa8variants\x81\xa1a" + body
    else:
        data = (
            '{"flags": {"f": {"default": "a", "variants": {"a": '
            + "[" * depth
            + "1"
            + "]" * depth
            + "}}}}"
        ).encode()  # JSON is YAML too
    with pytest.raises(SnapshotError, match="flags.(json|yaml|msgpack)"):
        engine_class(impl).from_bytes(data, fmt, file=f"flags.{fmt}")


def test_deep_limit_allows_realistic_nesting(make):
    snapshot = {"flags": {"f": {"variants": {"a": _deep(60, kind="dict")}, "default": "a"}}}
    value = make(snapshot).value("f")
    for _ in range(60):
        value = value["a"]
    assert value == 1


def test_depth_limit_is_exact(make):
    """Containers count from the document root: the snapshot (0), flags (1), the flag
    (2), variants (3), the value (4); the first container at depth 100 is refused."""
    fits = {"flags": {"f": {"variants": {"a": _deep(96)}, "default": "a"}}}
    value = make(fits).value("f")
    for _ in range(96):
        value = value[0]
    assert value == 1
    with pytest.raises(SnapshotError, match="nested deeper than 100 levels"):
        make({"flags": {"f": {"variants": {"a": _deep(97)}, "default": "a"}}})
