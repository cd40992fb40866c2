"""A condition's constant that is a ``str`` subclass (a flag document built in Python
with an application's own string type) compares as the text it holds, on both
evaluators, as a context value of such a type does: its own ``__hash__``, ``__eq__``,
``casefold`` and ``encode`` are never called.

A case-insensitive string type (``__hash__``/``__eq__`` over ``lower()``) as an ``eq``
constant was kept as the lookup key of the constants table with its own hash, so the
text it holds never found it: ``eq: CIStr("Premium")`` matched no context value,
``"Premium"`` included, and ``ne`` matched that value. An overridden ``casefold`` made
the ``ignore_case`` constant whatever it returned, and an overridden ``encode`` the
bytes ``starts_with`` compared.
"""

from __future__ import annotations

import pytest


class CIStr(str):
    """A case-insensitive string type, as applications write them."""

    def __hash__(self):
        return hash(self.lower())

    def __eq__(self, other):
        return isinstance(other, str) and self.lower() == other.lower()

    def __ne__(self, other):
        return not self.__eq__(other)


class Lying(str):
    """A string type whose text methods answer something else."""

    def casefold(self):
        return "zzz"

    def encode(self, *args, **kwargs):
        return b"zzz"

    def lower(self):
        return "zzz"


def _engine(make, cond):
    rule = {"when": {"attr": "plan", **cond}, "serve": "on"}
    return make({"flags": {"f": {"default": "off", "rules": [rule]}}})


CASES = [
    ({"eq": CIStr("Premium")}, {"Premium": True, "premium": False, "free": False}),
    ({"ne": CIStr("Premium")}, {"Premium": False, "premium": True, "free": True}),
    ({"in": [CIStr("Premium"), "gold"]}, {"Premium": True, "premium": False, "gold": True}),
    ({"not_in": [CIStr("Premium")]}, {"Premium": False, "premium": True}),
    ({"eq": Lying("Premium"), "ignore_case": True}, {"premium": True, "zzz": False}),
    ({"in": [Lying("Premium")], "ignore_case": True}, {"PREMIUM": True, "zzz": False}),
    ({"starts_with": Lying("Pre")}, {"Premium": True, "zzz": False}),
    ({"ends_with": Lying("MIUM"), "ignore_case": True}, {"Premium": True, "zzz": False}),
    ({"contains": Lying("emi")}, {"Premium": True, "zzz": False}),
]


@pytest.mark.parametrize("cond, answers", CASES)
def test_a_str_subclass_constant_compares_as_its_text(make, cond, answers):
    engine = _engine(make, cond)
    for value, want in answers.items():
        assert engine.is_enabled("f", {"plan": value}) is want, (cond, value)
        assert engine.is_enabled("f", engine.context({"plan": value})) is want, (cond, value)


def test_has_any_with_a_str_subclass_constant(make):
    engine = _engine(make, {"has_any": [CIStr("Premium")]})
    assert engine.is_enabled("f", {"plan": ["x", "Premium"]}) is True
    assert engine.is_enabled("f", {"plan": ["premium"]}) is False


def test_a_str_subclass_salt_buckets_as_its_text(make):
    def flag(salt):
        rules = [{"split": {"a": 50, "b": 50}}]
        return {"variants": {"a": 1, "b": 2}, "default": "a", "salt": salt, "rules": rules}

    engine = make({"flags": {"plain": flag("salty"), "typed": flag(Lying("salty"))}})
    users = [{"user_id": f"u{i}"} for i in range(40)]
    plain = [engine.variant("plain", u) for u in users]
    assert [engine.variant("typed", u) for u in users] == plain
    assert set(plain) == {"a", "b"}
