"""``manager.get(key)`` answers a key path the same whatever was read before it.

``get`` keeps a per-snapshot read cache of the key paths it resolved. The cache compares
keys with ``==``, for which ``("l", True)``, ``("l", 1.0)``, ``("l", Decimal(1))`` and
``("l", 1)`` are one key: ``("l", True)`` names no list item (the default), but once
``("l", 1)`` had been read and cached, ``get(("l", True))`` found that entry and was
served ``l[1]``. Only a ``str`` or a tuple of ``str`` segments is cached now (and only
such a key is looked up on the pure-Python read), so no cached key equals one of another
type. Both read implementations (the compiled ``cfgcore._tree.LiveReads`` and
``cfgcore.config.view.PyLiveReads``), through the manager's own slow path.
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz import examples
from tests.test_key_paths_dotted_keys import reader

CONFIG = {"l": [10, 20, 30], "m": {"0": "zero", "1": "one", "True": "yes"}}


class One(IntEnum):
    ONE = 1


# Segments equal (==, same hash) to one another but of different types: only exact
# str and int segments index (an int subclass by its value); a bool, a float, a
# Decimal or a Fraction names no list item and no key.
SEGMENTS = [0, 1, 2, True, False, 1.0, 0.0, -0.0, Decimal(1), Fraction(1), One.ONE, "0", "1"]

IMPLS = ["c", "py"]


def _fresh(impl: str, key: Any) -> Any:
    return reader(impl, CONFIG).get(key, "<default>")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    "first, then, want",
    [
        (("l", 1), ("l", True), "<default>"),
        (("l", 1), ("l", 1.0), "<default>"),
        (("l", 1), ("l", Decimal(1)), "<default>"),
        (("l", 0), ("l", False), "<default>"),
        (("l", 0), ("l", -0.0), "<default>"),
        (("l", 1), ("l", Fraction(1)), "<default>"),
    ],
)
def test_an_equal_key_of_another_type_is_not_served_the_cached_answer(impl, first, then, want):
    r = reader(impl, CONFIG)
    assert r.get(then, "<default>") == want  # before anything is cached
    assert r.get(first, "<default>") == CONFIG["l"][first[1]]  # cached now
    assert r.get(then, "<default>") == want


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=examples(60), deadline=None)
@given(
    keys=st.lists(
        st.tuples(st.sampled_from(["l", "m"]), st.sampled_from(SEGMENTS)), min_size=1, max_size=8
    )
)
def test_every_read_answers_as_it_does_on_a_fresh_snapshot(impl, keys):
    r = reader(impl, CONFIG)
    for key in keys:
        assert r.get(key, "<default>") == _fresh(impl, key), key


class _Liar(str):
    """A key that says it equals any key, with the hash of the one it imitates."""

    def __init__(self, text: str, imitates: str = "m.1") -> None:
        self.imitates = imitates

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash(self.imitates)


class _Raising(str):
    hashed = 0

    def __hash__(self) -> int:
        type(self).hashed += 1
        raise KeyboardInterrupt  # what an interrupt arriving inside it looks like


@pytest.mark.parametrize("impl", IMPLS)
def test_a_str_subclass_key_is_read_as_its_text_not_as_a_cached_key_it_claims_to_be(impl):
    manager = reader(impl, CONFIG)
    assert manager.get("m.1") == "one"  # now cached
    assert manager.get(_Liar("m.0")) == "zero"
    assert manager.get(_Liar("nope")) is None
    assert manager.get((_Liar("m"), "1")) == "one"
    assert manager.get((_Liar("m"), "2"), "<default>") == "<default>"


@pytest.mark.parametrize("impl", IMPLS)
def test_a_key_whose_hash_is_interrupted_is_not_looked_up_in_the_cache(impl):
    manager = reader(impl, CONFIG)
    assert manager.get("m.0") == "zero"
    # the cache is never asked: the key is read by its text, and its own hash, which
    # get() would have to swallow the interrupt of, never runs
    _Raising.hashed = 0
    assert manager.get(_Raising("m.0")) == "zero"
    assert _Raising.hashed == 0
