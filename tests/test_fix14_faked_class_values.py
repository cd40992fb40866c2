"""A context value that fakes its ``__class__`` is unusable on both evaluators.

An object whose ``__class__`` property answers ``str``, ``int`` or ``float`` passes
``isinstance()`` without being one. The reference evaluator bound context values with
``isinstance()``, so such an object was read through its own ``encode``, ``casefold``,
``__hash__``, ``__eq__`` and ``__float__``: it matched ``eq``, ``in``, ``starts_with``,
``lt``... and was bucketed, as whatever its methods claimed. The compiled evaluator
checks the real type and reads it as an unusable value (no operator but ``exists``
matches it, no rollout buckets it), as the README says: a subclass of str, int or float
is evaluated as its base type's value and its overridden methods are never called;
anything else that is not a str, a number or a bool is unusable.
"""

from __future__ import annotations

import pytest

from cfgcore.engine import engine_class
from tests.conftest import IMPLS

CALLS: list[str] = []


class FakeStr:
    """``isinstance(FakeStr(), str)`` is True; every method claims "premium"."""

    __class__ = property(lambda self: str)  # type: ignore[assignment]

    def encode(self, *args, **kwargs):
        CALLS.append("encode")
        return b"premium"

    def casefold(self):
        CALLS.append("casefold")
        return "premium"

    def __hash__(self):
        CALLS.append("__hash__")
        return hash("premium")

    def __eq__(self, other):
        CALLS.append("__eq__")
        return other == "premium"

    def __len__(self):
        return 7


class FakeInt:
    __class__ = property(lambda self: int)  # type: ignore[assignment]

    def __float__(self):
        CALLS.append("__float__")
        return 5.0

    def __int__(self):
        CALLS.append("__int__")
        return 5

    __index__ = __int__

    def __hash__(self):
        CALLS.append("__hash__")
        return hash(5)

    def __eq__(self, other):
        CALLS.append("__eq__")
        return other == 5


class FakeFloat(FakeInt):
    __class__ = property(lambda self: float)  # type: ignore[assignment]


DOC = {
    "flags": {
        "eq": {
            "default": "off",
            "rules": [{"when": {"attr": "x", "eq": "premium"}, "serve": "on"}],
        },
        "in": {
            "default": "off",
            "rules": [{"when": {"attr": "x", "in": ["premium", 5]}, "serve": "on"}],
        },
        "eq_ci": {
            "default": "off",
            "rules": [{"when": {"attr": "x", "eq": "PREMIUM", "ignore_case": True}, "serve": "on"}],
        },
        "starts": {
            "default": "off",
            "rules": [{"when": {"attr": "x", "starts_with": "prem"}, "serve": "on"}],
        },
        "ne": {"default": "off", "rules": [{"when": {"attr": "x", "ne": "free"}, "serve": "on"}]},
        "not_in": {
            "default": "off",
            "rules": [{"when": {"attr": "x", "not_in": [1, 2]}, "serve": "on"}],
        },
        "eq5": {"default": "off", "rules": [{"when": {"attr": "x", "eq": 5}, "serve": "on"}]},
        "gt": {"default": "off", "rules": [{"when": {"attr": "x", "gt": 1}, "serve": "on"}]},
        "matches": {
            "default": "off",
            "rules": [{"when": {"attr": "x", "matches": "^p"}, "serve": "on"}],
        },
        "semver": {
            "default": "off",
            "rules": [{"when": {"attr": "x", "semver_gt": "0.0.1"}, "serve": "on"}],
        },
        "rollout": {"default": "off", "rules": [{"rollout": 100, "serve": "on"}], "bucket_by": "x"},
        "exists": {
            "default": "off",
            "rules": [{"when": {"attr": "x", "exists": True}, "serve": "on"}],
        },
    }
}
ONLY_EXISTS = {key: key == "exists" for key in DOC["flags"]}


@pytest.mark.parametrize("impl", sorted(IMPLS))
@pytest.mark.parametrize("fake", [FakeStr, FakeInt, FakeFloat], ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape", ["dict", "context", "evaluate_all"])
def test_a_faked_class_is_an_unusable_value(impl, fake, shape):
    engine = engine_class(IMPLS[impl]).from_snapshot(DOC)
    value = fake()
    assert isinstance(value, {FakeStr: str, FakeInt: int, FakeFloat: float}[fake])
    CALLS.clear()
    if shape == "evaluate_all":
        got = engine.evaluate_all(engine.context({"x": value}))
    else:
        ctx = {"x": value} if shape == "dict" else engine.context({"x": value})
        got = {key: engine.is_enabled(key, ctx) for key in DOC["flags"]}
    assert got == ONLY_EXISTS
    assert CALLS == []  # none of its own methods was called


@pytest.mark.parametrize("impl", sorted(IMPLS))
def test_a_faked_class_is_skipped_for_bucketing(impl):
    engine = engine_class(IMPLS[impl]).from_snapshot(
        {
            "flags": {
                "f": {
                    "variants": {"a": 1, "b": 2},
                    "default": "a",
                    "bucket_by": ["x", "user_id"],
                    "rules": [{"split": {"a": 50, "b": 50}}],
                }
            }
        }
    )
    for uid in ("u1", "u2", "u3", "u4", 7, 8):
        expected = engine.evaluate("f", {"user_id": uid})
        got = engine.evaluate("f", {"x": FakeStr(), "user_id": uid})
        assert (got.variant, got.reason) == (expected.variant, expected.reason)
