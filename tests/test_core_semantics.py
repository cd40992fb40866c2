"""Flag semantics: reasons, rule order, rollouts, splits, prerequisites, schedules,
details, bulk evaluation and the hot path's refusal to raise. Both implementations."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from cfgcore import Reason
from cfgcore.details import ErrorCode

BOOL_PREMIUM = {
    "flags": {
        "f": {
            "default": "off",
            "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "on"}],
        }
    }
}


def test_boolean_flag_defaults(make):
    engine = make(
        {
            "flags": {
                "on_for_all": {"default": "on"},
                "off_for_all": {"default": "off"},
                "killed": {"enabled": False, "default": "on"},
            }
        }
    )
    assert engine.is_enabled("on_for_all") is True
    assert engine.evaluate("on_for_all").reason == Reason.STATIC
    assert engine.is_enabled("off_for_all") is False
    details = engine.evaluate("killed")
    assert (details.value, details.variant, details.reason) == (False, "off", Reason.DISABLED)


def test_reasons_and_rule_index(make):
    engine = make(
        {
            "flags": {
                "f": {
                    "variants": {"a": "A", "b": "B", "c": "C"},
                    "default": "c",
                    "rules": [
                        {"when": {"attr": "x", "eq": 1}, "serve": "a"},
                        {"when": {"attr": "x", "eq": 2}, "serve": "b"},
                        {"when": {"attr": "x", "eq": 2}, "serve": "a"},
                    ],
                }
            }
        }
    )
    d = engine.evaluate("f", {"x": 2})
    assert (d.value, d.variant, d.reason, d.rule_index) == ("B", "b", Reason.TARGETING_MATCH, 1)
    d = engine.evaluate("f", {"x": 9})
    assert (d.value, d.variant, d.reason, d.rule_index) == ("C", "c", Reason.DEFAULT, None)


def test_disabled_flag_serves_off_variant(make):
    engine = make(
        {
            "flags": {
                "f": {
                    "variants": {"big": 320, "small": 96},
                    "default": "big",
                    "off_variant": "small",
                    "enabled": False,
                }
            }
        }
    )
    assert engine.value("f") == 96
    assert engine.evaluate("f").reason == Reason.DISABLED


def test_value_types_and_frozen_objects(make):
    engine = make(
        {
            "flags": {
                "cfg": {
                    "variants": {"v": {"bitrates": [320, 256], "codec": "aac"}},
                    "default": "v",
                },
                "n": {"variants": {"v": 0.8}, "default": "v"},
                "s": {"variants": {"v": "hybrid"}, "default": "v"},
            }
        }
    )
    cfg = engine.value("cfg")
    assert cfg["bitrates"] == [320, 256] and cfg["codec"] == "aac"
    with pytest.raises(TypeError):
        cfg["codec"] = "mp3"  # served objects are shared: they are read-only
    with pytest.raises(TypeError):
        cfg["bitrates"].append(128)
    assert engine.value("n") == 0.8
    assert engine.value("n", default=1) == 0.8  # int and float are both numbers
    assert engine.value("s", default="x") == "hybrid"


def test_type_mismatch_returns_default(make):
    engine = make({"flags": {"s": {"variants": {"v": "hybrid"}, "default": "v"}}})
    assert engine.value("s", default=False) is False
    d = engine.evaluate("s", default=3)
    assert (d.value, d.reason, d.error_code) == (3, Reason.ERROR, ErrorCode.TYPE_MISMATCH)
    assert engine.is_enabled("s") is False  # not a boolean flag


def test_unknown_flag(make):
    engine = make(BOOL_PREMIUM)
    assert engine.is_enabled("nope") is False
    assert engine.variant("nope") is None
    assert engine.value("nope", default="dflt") == "dflt"
    d = engine.evaluate("nope", default=7)
    assert (d.value, d.reason, d.error_code) == (7, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)


@pytest.mark.parametrize(
    "ctx",
    [
        None,
        {},
        {"seg": None},
        {"seg": 3},
        {"seg": float("nan")},
        {"seg": "x" * 1_000_000},
        {1: "premium", (2, 3): "x"},
        {"seg": ["premium"]},
        {"seg": {"nested": 1}},
        {"seg": b"premium"},
        {"seg": "\ud800"},  # lone surrogate
        "not a mapping",
        12,
        ["seg", "premium"],
    ],
    ids=lambda c: type(c).__name__ + str(len(str(c)))[:4],
)
def test_bad_context_never_raises_and_does_not_match(make, ctx):
    engine = make(BOOL_PREMIUM)
    assert engine.is_enabled("f", ctx) is False
    assert engine.evaluate("f", ctx).reason == Reason.DEFAULT
    assert engine.evaluate_all(ctx) == {"f": False}
    bound = engine.context(ctx if isinstance(ctx, dict) else None)
    assert engine.is_enabled("f", bound) is False


def test_bad_keys_never_raise(make):
    engine = make(BOOL_PREMIUM)
    assert engine.is_enabled(["unhashable"], {"seg": "premium"}) is False
    assert engine.value(None, default=1) == 1
    assert engine.evaluate({"x": 1}).error_code == ErrorCode.FLAG_NOT_FOUND


def test_hostile_mapping_is_treated_as_missing(make):
    class Hostile(dict):
        def get(self, key, default=None):
            raise RuntimeError("boom")

    engine = make(BOOL_PREMIUM)
    assert engine.is_enabled("f", Hostile(seg="premium")) is False


def test_rollout_is_partial_rule_and_falls_through(make):
    engine = make(
        {
            "flags": {
                "f": {
                    "variants": {"new": "n", "old": "o", "fallback": "f"},
                    "default": "fallback",
                    "rules": [{"rollout": 30, "serve": "new"}, {"serve": "old"}],
                }
            }
        }
    )
    seen = {engine.variant("f", {"user_id": f"u{i}"}) for i in range(2000)}
    assert seen == {"new", "old"}
    assert engine.evaluate("f", {"user_id": "u1"}).reason in (Reason.SPLIT, Reason.TARGETING_MATCH)
    # without any id to bucket by, the rollout rule cannot apply
    d = engine.evaluate("f", {})
    assert (d.variant, d.reason, d.rule_index) == ("old", Reason.TARGETING_MATCH, 1)


def test_bucket_by_fallback_and_custom_attribute(make):
    engine = make(
        {
            "flags": {
                "dflt": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]},
                "dev": {
                    "default": "off",
                    "bucket_by": "device_id",
                    "rules": [{"rollout": 50, "serve": "on"}],
                },
            }
        }
    )
    by_user = [engine.is_enabled("dflt", {"user_id": f"k{i}"}) for i in range(300)]
    by_key = [engine.is_enabled("dflt", {"targeting_key": f"k{i}"}) for i in range(300)]
    assert by_user == by_key  # targeting_key is the fallback, same hash input
    assert any(by_user) and not all(by_user)
    assert engine.is_enabled("dev", {"user_id": "x"}) is False  # device_id absent
    by_dev = [engine.is_enabled("dev", {"device_id": f"k{i}"}) for i in range(300)]
    assert by_dev != by_user  # salt is the flag key, so buckets differ between flags


def test_bucket_formula_is_the_documented_one(make, impl):
    import mmh3

    engine = make(
        {
            "flags": {
                "exp": {"default": "off", "salt": "s1", "rules": [{"rollout": 25, "serve": "on"}]}
            }
        }
    )
    for i in range(500):
        uid = f"user-{i}"
        bucket = mmh3.hash(f"s1:{uid}".encode(), 0, signed=False) % 100_000
        assert engine.is_enabled("exp", {"user_id": uid}) is (bucket < 25_000)
        assert impl.bucket_of("s1", uid) == bucket


def test_prerequisites(make):
    engine = make(
        {
            "flags": {
                "base": {
                    "default": "off",
                    "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "on"}],
                },
                "algo": {
                    "variants": {"a": 1, "b": 2},
                    "default": "a",
                    "rules": [{"when": {"attr": "region", "eq": "EU"}, "serve": "b"}],
                },
                "child": {
                    "default": "on",
                    "prerequisites": ["base", {"flag": "algo", "variant": "b"}],
                },
            }
        }
    )
    assert engine.is_enabled("child", {"seg": "premium", "region": "EU"}) is True
    d = engine.evaluate("child", {"seg": "premium", "region": "US"})
    assert (d.value, d.reason) == (False, Reason.PREREQUISITE_FAILED)
    assert (
        engine.evaluate("child", {"seg": "free", "region": "EU"}).reason
        == Reason.PREREQUISITE_FAILED
    )
    ctx = engine.context({"seg": "premium", "region": "EU"})
    assert engine.is_enabled("child", ctx) is True


def test_schedule_window_uses_the_engine_clock(make):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    end = datetime(2026, 1, 15, tzinfo=timezone.utc)
    engine = make(
        {
            "flags": {
                "t": {
                    "variants": {"control": "c", "treat": "t", "none": None},
                    "default": "treat",
                    "off_variant": "none",
                    "schedule": {"start": start.isoformat(), "end": end.isoformat()},
                }
            }
        }
    )
    now = [start.timestamp() - 1]
    engine.set_clock(lambda: now[0])
    assert engine.evaluate("t").reason == Reason.DISABLED
    assert engine.value("t") is None
    now[0] = start.timestamp()
    assert engine.value("t") == "t"
    now[0] = end.timestamp() - 0.001
    assert engine.variant("t") == "treat"
    now[0] = end.timestamp()
    assert engine.variant("t") == "none"


def test_broken_clock_does_not_raise(make):
    engine = make(
        {"flags": {"t": {"default": "on", "schedule": {"start": "2020-01-01T00:00:00Z"}}}}
    )

    def clock():
        raise OSError("no time")

    engine.set_clock(clock)
    assert engine.is_enabled("t") is False  # out of window when the time is unknown


def test_evaluate_all(make):
    engine = make(
        {
            "flags": {
                "a": {
                    "default": "off",
                    "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "on"}],
                },
                "b": {"variants": {"x": "X", "y": "Y"}, "default": "y"},
                "c": {"enabled": False, "default": "on"},
            }
        }
    )
    expected = {"a": True, "b": "Y", "c": False}
    assert engine.evaluate_all({"seg": "premium"}) == expected
    assert engine.evaluate_all(engine.context({"seg": "premium"})) == expected
    assert engine.evaluate_all() == {"a": False, "b": "Y", "c": False}


def test_swap_and_context_rebinding(make):
    engine = make(BOOL_PREMIUM)
    ctx = engine.context({"seg": "premium", "tier": "gold"})
    assert engine.is_enabled("f", ctx)
    old = engine.swap(
        {
            "flags": {
                "f": {
                    "default": "off",
                    "rules": [{"when": {"attr": "tier", "eq": "gold"}, "serve": "on"}],
                }
            }
        }
    )
    assert old.version == 1 and engine.version == 2
    # the context was bound to the old snapshot's slots; it must re-bind, not misread
    assert engine.is_enabled("f", ctx)
    assert engine.is_enabled("f", engine.context({"seg": "premium"})) is False


def test_pinned_snapshot_survives_swap(make):
    engine = make(BOOL_PREMIUM)
    pinned = engine.snapshot()
    engine.swap({"flags": {"f": {"default": "off"}}})
    assert pinned.is_enabled("f", {"seg": "premium"}) is True
    assert engine.is_enabled("f", {"seg": "premium"}) is False
    assert pinned.evaluate("f").snapshot_version == 1


def test_compile_error_keeps_previous_snapshot(make):
    from cfgcore.errors import SnapshotError

    engine = make(BOOL_PREMIUM)
    with pytest.raises(SnapshotError):
        engine.swap({"flags": {"f": {"rules": [{"when": {"segment": "missing"}, "serve": "on"}]}}})
    assert engine.version == 1
    assert engine.is_enabled("f", {"seg": "premium"}) is True


def test_many_slots_use_heap_binding(make):
    # more attributes than the evaluator's on-stack binding holds
    conds = [{"attr": f"a{i}", "eq": i} for i in range(80)]
    engine = make(
        {"flags": {"f": {"default": "off", "rules": [{"when": {"all": conds}, "serve": "on"}]}}}
    )
    ctx = {f"a{i}": i for i in range(80)}
    assert engine.is_enabled("f", ctx) is True
    ctx["a79"] = -1
    assert engine.is_enabled("f", ctx) is False


def test_long_bucket_values_hash_like_short_ones(make, impl):
    engine = make({"flags": {"f": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]}}})
    uid = "u" * 1000
    assert engine.is_enabled("f", {"user_id": uid}) is (impl.bucket_of("f", uid) < 50_000)


def test_bucket_exact_for_every_salt_and_value_alignment(make):
    """Pin the exact bucket (rollout at b/1000 % is off, at (b+1)/1000 % is on) for
    salts and values of every length mod 4: the compiled evaluator hashes the salt
    once and continues over a block straddling salt and value."""
    import mmh3

    for salt_len in range(0, 8):
        salt = "s" * salt_len
        for value_len in range(0, 10):
            uid = "u" * value_len
            if not uid:
                continue  # an empty id is still an id, but keep the loop about lengths
            b = mmh3.hash(f"{salt}:{uid}".encode(), 0, signed=False) % 100_000
            engine = make(
                {
                    "flags": {
                        "below": {
                            "default": "off",
                            "salt": salt,
                            "rules": [{"rollout": b / 1000, "serve": "on"}],
                        },
                        "above": {
                            "default": "off",
                            "salt": salt,
                            "rules": [{"rollout": (b + 1) / 1000, "serve": "on"}],
                        },
                    }
                }
            )
            assert not engine.is_enabled("below", {"user_id": uid}), (salt, uid, b)
            assert engine.is_enabled("above", {"user_id": uid}), (salt, uid, b)


def test_empty_string_id_is_bucketed(make, impl):
    engine = make({"flags": {"f": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]}}})
    assert engine.is_enabled("f", {"user_id": ""}) is (impl.bucket_of("f", "") < 50_000)


def test_context_reads_like_the_mapping_it_came_from(make, impl):
    from collections.abc import Mapping

    engine = make(BOOL_PREMIUM)
    ctx = engine.context({"seg": "premium", "user_id": "u1"})
    assert isinstance(ctx, Mapping)
    assert ctx["user_id"] == "u1" and ctx.get("missing", 3) == 3
    assert "seg" in ctx and len(ctx) == 2 and set(ctx) == {"seg", "user_id"}
    with pytest.raises(KeyError):
        ctx["missing"]
    # a context of the other implementation is still read as a mapping
    other = [m for m in (engine.context({}),)][0]
    assert engine.is_enabled("f", type(other)({"seg": "premium"})) is True


def test_system_clock_schedules(make):
    """Without a test clock the wall clock decides (both evaluators read the same one)."""
    import time

    now = time.time()
    engine = make(
        {
            "flags": {
                "live": {
                    "default": "on",
                    "schedule": {
                        "start": datetime.fromtimestamp(now - 60, timezone.utc).isoformat()
                    },
                },
                "later": {
                    "default": "on",
                    "schedule": {
                        "start": datetime.fromtimestamp(now + 3600, timezone.utc).isoformat()
                    },
                },
                "over": {
                    "default": "on",
                    "schedule": {"end": datetime.fromtimestamp(now - 60, timezone.utc).isoformat()},
                },
            }
        }
    )
    assert engine.is_enabled("live") is True
    assert engine.is_enabled("later") is False
    assert engine.is_enabled("over") is False


def test_hostile_str_subclass_never_raises(make):
    class Nasty(str):
        def casefold(self):
            raise RuntimeError("no")

        def __hash__(self):
            raise RuntimeError("no hash")

    engine = make(
        {
            "flags": {
                "f": {
                    "default": "off",
                    "rules": [
                        {
                            "when": {"attr": "seg", "eq": "premium", "ignore_case": True},
                            "serve": "on",
                        }
                    ],
                },
                "g": {
                    "default": "off",
                    "rules": [{"when": {"attr": "seg", "in": ["premium"]}, "serve": "on"}],
                },
                "h": {
                    "default": "off",
                    "rules": [{"when": {"attr": "seg", "ne": "free"}, "serve": "on"}],
                },
            }
        }
    )
    # a str subclass is evaluated as its exact str value; its overrides are never called
    for key in ("f", "g", "h"):
        assert engine.is_enabled(key, {"seg": Nasty("premium")}) is True
    assert engine.evaluate_all({"seg": Nasty("premium")}) == {"f": True, "g": True, "h": True}
    assert engine.evaluate_all({"seg": Nasty("free")}) == {"f": False, "g": False, "h": False}
