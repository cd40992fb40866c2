"""Example tests at the compiler's edges, each one killing a realistic single-point
mutation that the differential tests cannot see (both evaluators read the same
tables): boundaries, thresholds, cycles, limits, encodings and durable writes."""

from __future__ import annotations

import os
import stat

import pytest

from cfgcore.compiler import MAX_CONDITION_DEPTH, MAX_PREREQUISITE_DEPTH
from cfgcore.details import Reason
from cfgcore.errors import SnapshotError
from cfgcore.runtime import atomicio
from cfgcore.snapshot import decode_snapshot, encode_snapshot, snapshot_from_dict


def _when(cond):
    return {"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}}


U1004, U1005 = "u90424", "u108673"  # buckets 1004 and 1005 of salt "f" (bucket_of)


def test_rollout_threshold_is_rounded_not_truncated(make, impl):
    """rollout 1.005 covers round(1005.0) = 1005 buckets: bucket 1004 is in, 1005 out
    (int() would give 1004 buckets and drop the user at bucket 1004)."""
    assert impl.bucket_of("f", U1004) == 1004 and impl.bucket_of("f", U1005) == 1005
    engine = make(
        {"flags": {"f": {"default": "off", "rules": [{"rollout": 1.005, "serve": "on"}]}}}
    )
    assert engine.is_enabled("f", {"user_id": U1004}) is True
    assert engine.is_enabled("f", {"user_id": U1005}) is False


def test_split_ranges_are_consecutive_and_rounded(make, impl):
    engine = make(
        {"flags": {"f": {"variants": {"a": 1, "b": 2}, "default": "a",
                         "rules": [{"split": {"a": 1.005, "b": 98.995}}]}}}
    )  # fmt: skip
    assert engine.variant("f", {"user_id": U1004}) == "a"
    assert engine.variant("f", {"user_id": U1005}) == "b"


@pytest.mark.parametrize(
    ("weights", "at_1004", "at_1005"),
    [({"a": 1.005, "b": 0, "c": 98.995}, "a", "c"),  # three variants (unrolled in C)
     ({"a": 0, "b": 1.005, "c": 0, "d": 98.995}, "b", "d"),  # four (the loop)
     ({"a": 0, "b": 1.005, "c": 0, "d": 0, "e": 98.995}, "b", "e"),
     ({"a": 0, "b": 100}, "b", "b")],
)  # fmt: skip
def test_split_boundaries_skip_zero_weight_variants(make, weights, at_1004, at_1005):
    """Buckets 1004 and 1005 sit on each side of a threshold at 1005 (1.005%): a
    zero-weight variant there is never served, whatever the number of variants."""
    variants = {name: name for name in weights}
    engine = make(
        {"flags": {"f": {"variants": variants, "default": next(iter(weights)),
                         "rules": [{"split": weights}]}}}
    )  # fmt: skip
    assert engine.variant("f", {"user_id": U1004}) == at_1004
    assert engine.variant("f", {"user_id": U1005}) == at_1005


@pytest.mark.parametrize(
    ("op", "below", "equal", "above"),
    [("lt", True, False, False), ("le", True, True, False),
     ("gt", False, False, True), ("ge", False, True, True)],
)  # fmt: skip
def test_ordering_operators_at_their_boundary(make, op, below, equal, above):
    engine = make(_when({"attr": "n", op: 10}))
    got = [engine.is_enabled("f", {"n": n}) for n in (9.999, 10, 10.0, 10.001)]
    assert got == [below, equal, equal, above]


def test_prerequisite_cycle_not_through_the_first_flag_is_found():
    snap = {"flags": {"a": {"default": "on"},
                      "b": {"default": "on", "prerequisites": ["c"]},
                      "c": {"default": "on", "prerequisites": ["b"]}}}  # fmt: skip
    with pytest.raises(SnapshotError, match="prerequisite cycle: (b -> c -> b|c -> b -> c)"):
        _compile(snap)


def test_a_schedule_must_have_end_after_start():
    same = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}
    with pytest.raises(SnapshotError, match="flags.f.schedule: end must be after start"):
        _compile({"flags": {"f": {"default": "on", "schedule": same}}})
    ok = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:01Z"}
    _compile({"flags": {"f": {"default": "on", "schedule": ok}}})


def _nested_not(levels):
    cond = {"attr": "a", "eq": 1}
    for _ in range(levels):
        cond = {"not": cond}
    return cond


def test_condition_depth_limit_is_exact(make):
    deepest = MAX_CONDITION_DEPTH
    engine = make(_when(_nested_not(deepest)))
    assert engine.is_enabled("f", {"a": 1}) is True  # an even number of nots
    with pytest.raises(SnapshotError, match="nested deeper than 32"):
        make(_when(_nested_not(deepest + 1)))


def _chain(n):
    flags = {"f0": {"default": "on"}}
    for i in range(1, n):
        flags[f"f{i}"] = {"default": "on", "prerequisites": [f"f{i - 1}"]}
    return {"flags": flags}


def test_prerequisite_depth_limit_is_exact(make):
    engine = make(_chain(MAX_PREREQUISITE_DEPTH))
    assert engine.is_enabled(f"f{MAX_PREREQUISITE_DEPTH - 1}") is True
    with pytest.raises(SnapshotError, match="prerequisite chain deeper than 32"):
        make(_chain(MAX_PREREQUISITE_DEPTH + 1))


@pytest.mark.parametrize("fmt", ["yaml", "json", "msgpack"])
def test_encoding_keeps_the_written_order_of_a_split(make, fmt):
    """A split assigns ranges in the order written: re-encoding with sorted keys would
    reassign users while Snapshot == still says equal."""
    source = {"flags": {"f": {"variants": {"a": "A", "b": "B"}, "default": "a",
                              "rules": [{"split": {"b": 30, "a": 70}}]}}}  # fmt: skip
    snap = snapshot_from_dict(source)
    again = decode_snapshot(encode_snapshot(snap, fmt), fmt)
    assert list(again.flags["f"].rules[0].split) == ["b", "a"]
    assert list(again.flags) == list(snap.flags)
    before, after = make(source), make(again)
    users = [{"user_id": f"u{i}"} for i in range(300)]
    assert [before.variant("f", u) for u in users] == [after.variant("f", u) for u in users]
    assert sum(before.variant("f", u) == "b" for u in users) < 150  # b holds the first 30%


def test_encoding_keeps_variant_and_flag_order(make):
    source = {"flags": {"z": {"variants": {"y": 1, "x": 2}, "default": "y"},
                        "a": {"default": "off"}}}  # fmt: skip
    for fmt in ("yaml", "json", "msgpack"):
        again = decode_snapshot(encode_snapshot(snapshot_from_dict(source), fmt), fmt)
        assert list(again.flags) == ["z", "a"]
        assert list(again.flags["z"].variants) == ["y", "x"]


def test_atomic_write_fsyncs_the_file_and_then_the_directory(
    tmp_path, monkeypatch, python_atomic_write
):
    synced: list[str] = []
    real_fsync = os.fsync

    def counting_fsync(fd):
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            # the data must have reached the file before it is synced (flushed first)
            synced.append(f"file:{info.st_size}")
        else:
            synced.append("dir" if stat.S_ISDIR(info.st_mode) else "?")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    target = tmp_path / "flags.yaml"
    atomicio.atomic_write(target, b"flags: {}\n")
    assert target.read_bytes() == b"flags: {}\n"
    if os.name == "nt":  # pragma: no cover - directories cannot be fsynced there
        assert synced == ["file:10"]
    else:
        assert synced == ["file:10", "dir"]


def test_atomic_write_leaves_no_temp_file_and_keeps_the_mode(tmp_path):
    target = tmp_path / "flags.yaml"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    atomicio.atomic_write(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flags.yaml"]
    atomicio.atomic_write(target, b"newer", mode=0o640)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640


def test_reasons_static_vs_default(make):
    engine = make({"flags": {"s": {"default": "on"},
                             "d": {"default": "on", "rules": [{"when": {"attr": "x", "eq": 1},
                                                               "serve": "off"}]}}})  # fmt: skip
    assert engine.evaluate("s").reason == Reason.STATIC
    assert engine.evaluate("d").reason == Reason.DEFAULT
    assert engine.evaluate("d", {"x": 1}).reason == Reason.TARGETING_MATCH


def _compile(snap):
    from cfgcore.compiler import compile_snapshot

    return compile_snapshot(snapshot_from_dict(snap))


@pytest.mark.parametrize(("a", "b", "ok"), [(50, 49.5, False), (50, 50.5, False),
                                           (50, 49.999, False), (33.333, 66.667, True),
                                           (50, 50.0000001, True)])  # fmt: skip
def test_split_weights_must_sum_to_100_within_a_millionth(a, b, ok):
    snap = {"flags": {"f": {"variants": {"a": 1, "b": 2}, "default": "a",
                            "rules": [{"split": {"a": a, "b": b}}]}}}  # fmt: skip
    if ok:
        _compile(snap)
    else:
        with pytest.raises(SnapshotError, match="flags.f.rules\\[0\\].split: weights sum to"):
            _compile(snap)


def test_bucketing_features_match_the_readme_interpreter(make):
    """Three-way splits, rule-level and flag-level bucket_by, salts: every user gets what
    the README's semantics (tests/spec_interpreter.py, no tables) give."""
    from tests.spec_interpreter import Interpreter, comparable

    source = {
        "flags": {
            "three": {"variants": {"a": 1, "b": 2, "c": 3}, "default": "a",
                      "rules": [{"split": {"c": 20, "a": 30.5, "b": 49.5}}]},
            "by_account": {"default": "off",
                           "rules": [{"rollout": 40, "serve": "on", "bucket_by": "account"}]},
            "flag_by": {"default": "off", "bucket_by": ["account", "user_id"], "salt": "s-1",
                        "rules": [{"rollout": 60, "serve": "on"}]},
        }
    }  # fmt: skip
    engine, spec = make(source), Interpreter(snapshot_from_dict(source))
    for i in range(400):
        ctx = {"user_id": f"u{i}", "account": f"acct-{i % 97}"} if i % 3 else {"user_id": i}
        for key in source["flags"]:
            assert comparable(engine.evaluate(key, ctx)) == comparable(spec.evaluate(key, ctx)), (
                key,
                ctx,
            )


@pytest.mark.parametrize(("pct", "share"), [(0, 0), (100, 200), (0.0, 0), (100.0, 200)])
def test_rollout_bounds_0_and_100_are_valid_and_exact(make, pct, share):
    engine = make({"flags": {"f": {"default": "off", "rules": [{"rollout": pct, "serve": "on"}]}}})
    assert sum(engine.is_enabled("f", {"user_id": f"u{i}"}) for i in range(200)) == share


@pytest.mark.parametrize("pct", [-0.001, 100.001])
def test_rollout_outside_0_100_is_refused(pct):
    with pytest.raises(SnapshotError, match="flags.f.rules\\[0\\].rollout: must be within 0..100"):
        _compile({"flags": {"f": {"default": "off", "rules": [{"rollout": pct, "serve": "on"}]}}})


def test_a_flag_is_boolean_only_if_every_variant_is_a_bool(make):
    mixed = {"variants": {"yes": True, "no": "nope"}, "default": "yes"}
    pure = {"variants": {"yes": True, "no": False}, "default": "yes"}
    engine = make({"flags": {"mixed": mixed, "pure": pure}})
    assert engine.is_enabled("mixed") is False  # serves True, but is not a boolean flag
    assert engine.is_enabled("pure") is True
    with pytest.raises(SnapshotError, match="flag 'mixed' is not boolean"):
        _compile({"flags": {"mixed": {"variants": {"yes": True, "no": "nope"}, "default": "yes"},
                            "dep": {"default": "on", "prerequisites": ["mixed"]}}})  # fmt: skip


def test_ne_and_not_in_need_a_value_of_the_constants_type(make):
    nin = {"attr": "b", "not_in": [True]}
    engine = make({"flags": {
        "nin": {"default": "off", "rules": [{"when": nin, "serve": "on"}]},
        "ne": {"default": "off", "rules": [{"when": {"attr": "b", "ne": True}, "serve": "on"}]},
    }})  # fmt: skip
    for key in ("nin", "ne"):
        assert engine.is_enabled(key, {"b": False}) is True
        assert engine.is_enabled(key, {"b": True}) is False
        assert engine.is_enabled(key, {"b": 0}) is False  # a number is not a bool
        assert engine.is_enabled(key, {"b": "x"}) is False


# -- variant values built from Python data ----------------------------------------------------


def test_a_tuple_variant_value_is_served_read_only_all_the_way_down(make):
    data = ["p"]
    engine = make({"flags": {"t": {"variants": {"a": ("x", data, {"k": [1]})}, "default": "a"}}})
    served = engine.value("t", {})
    assert served == ["x", ["p"], {"k": [1]}]  # arrays are served as read-only lists
    with pytest.raises(TypeError):
        served[1].append("INJECTED")  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        served.append("INJECTED")  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        served[2]["k"] = 2
    data.append("changed")  # the snapshot's source data: not what is served
    assert engine.value("t", {}) == ["x", ["p"], {"k": [1]}]
    assert engine.evaluate_all({}) == {"t": served}


class _Thing:
    pass


@pytest.mark.parametrize(
    ("value", "where", "kind"),
    [
        ({"k": {1, 2}}, "flags.t.variants.b.k", "set"),
        (bytearray(b"z"), "flags.t.variants.b", "bytearray"),
        ([1, [2, _Thing()]], "flags.t.variants.b[1][1]", "_Thing"),
        (("x", frozenset()), "flags.t.variants.b[1]", "frozenset"),
    ],
)
def test_a_variant_value_that_cannot_be_served_read_only_is_refused(make, value, where, kind):
    with pytest.raises(SnapshotError) as err:
        make({"flags": {"t": {"variants": {"a": 1, "b": value}, "default": "a"}}})
    assert f"{where}: a {kind} cannot be served" in str(err.value)
