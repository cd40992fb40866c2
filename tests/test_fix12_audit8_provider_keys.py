"""The OpenFeature provider never raises on a hostile flag key or failure (audit 8).

The engine reads a str subclass flag key by its value, but the provider wrote the key
into its error messages with an f-string (the key's own ``__str__``) and looked up the
flag's metadata by it (the key's own ``__hash__``), so a key whose methods raise made
``resolve_*_details`` raise; so did a context mapper failing with an exception whose
message cannot be made."""

from __future__ import annotations

import pytest

pytest.importorskip("openfeature")

from openfeature.evaluation_context import EvaluationContext  # noqa: E402
from openfeature.exception import ErrorCode  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402

SNAPSHOT = {
    "flags": {
        "checkout": {
            "default": "off",
            "rules": [{"when": {"attr": "tier", "eq": "gold"}, "serve": "on"}],
            "metadata": {"owner": "payments"},
        }
    }
}


class Boom(Exception):
    def __str__(self):
        raise Boom()


class Key(str):
    def __str__(self):
        raise Boom()

    __repr__ = __format__ = __str__

    def __hash__(self):
        raise Boom()

    def __eq__(self, other):
        raise Boom()


class NoText:
    def __str__(self):
        raise Boom()

    __repr__ = __format__ = __str__

    def __hash__(self):
        raise Boom()


def _fail(targeting_key, attributes):
    raise Boom()


CTX = EvaluationContext("u-1", {"tier": "gold"})
METHODS = [
    ("resolve_boolean_details", False),
    ("resolve_string_details", "x"),
    ("resolve_object_details", {}),
]


@pytest.mark.parametrize("method, default", METHODS)
def test_a_str_subclass_key_resolves_as_its_value(make, method, default):
    provider = CfgcoreProvider(make(SNAPSHOT))
    plain = getattr(provider, method)("checkout", default, CTX)
    hostile = getattr(provider, method)(Key("checkout"), default, CTX)
    assert (hostile.value, hostile.variant, hostile.reason, hostile.error_code) == (
        plain.value, plain.variant, plain.reason, plain.error_code,
    )  # fmt: skip
    assert dict(hostile.flag_metadata) == dict(plain.flag_metadata)
    missing = getattr(provider, method)(Key("nope"), default, CTX)
    assert (missing.value, missing.error_code) == (default, ErrorCode.FLAG_NOT_FOUND)
    assert missing.error_message.startswith("nope: ")


@pytest.mark.parametrize("method, default", METHODS)
def test_a_key_or_failure_without_text_is_an_error_answer(make, method, default):
    engine = make(SNAPSHOT)
    r = getattr(CfgcoreProvider(engine), method)(NoText(), default, CTX)
    assert (r.value, r.error_code) == (default, ErrorCode.FLAG_NOT_FOUND)
    assert r.error_message == "<unrepresentable NoText>: flag not found"
    r = getattr(CfgcoreProvider(engine, context=_fail), method)("checkout", default, CTX)
    assert (r.value, r.error_code) == (default, ErrorCode.GENERAL)
    assert r.error_message == "checkout: Boom"


class Text(str):
    """A string type whose own equality, hash and text say something else."""

    def __eq__(self, other):
        return True

    def __hash__(self):
        return 0

    def __str__(self):
        return "lie"


def test_flag_metadata_of_str_subclasses_is_served_as_plain_values(make):
    # A document built in Python with an application's string types in its metadata:
    # the provider served those objects as the flag metadata of every resolution.
    import enum

    from cfgcore.snapshot import Flag, Snapshot

    class Team(enum.StrEnum):
        PAYMENTS = "payments"

    class Level(enum.IntEnum):
        HIGH = 3

    metadata = {Text("owner"): Team.PAYMENTS, "note": Text("n"), "level": Level.HIGH, "on": True}
    for snapshot in (
        {"flags": {"f": {"variants": {"a": 1}, "default": "a", "metadata": metadata}}},
        Snapshot(flags={"f": Flag(variants={"a": 1}, default="a", metadata=metadata)}),
    ):
        provider = CfgcoreProvider(make(snapshot))
        details = provider.resolve_integer_details("f", 0, CTX)
        meta = dict(details.flag_metadata)
        assert meta == {"owner": "payments", "note": "n", "level": 3, "on": True}
        assert [type(k) for k in meta] == [str] * 4
        assert [type(v) for v in meta.values()] == [str, str, int, bool]
