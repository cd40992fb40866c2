"""Ninth audit: ``flagd.resolve`` answers whatever key and default it is given, as the
checks it wraps do, on both evaluators.

It evaluated the flag (which never raises), then looked the caller's key up again in
the snapshot's flags for their metadata and read the default's type with
``isinstance()``: a key that is no dict key (a list, a dict), a ``str`` subclass whose
own ``__hash__`` raises (the check had found the flag by its text) and a default whose
``__class__`` raises made the request raise.
"""

from __future__ import annotations

import pytest

from cfgcore.interop import flagd

DOC = {
    "flags": {
        "f": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
            "metadata": {"team": "a"},
        },
        "o": {"state": "ENABLED", "variants": {"x": {"k": 1}}, "defaultVariant": "x"},
    }
}


class HostileKey(str):
    def __hash__(self):
        raise RuntimeError("hash")

    def __eq__(self, other):
        raise RuntimeError("eq")


class FakedClass:
    @property
    def __class__(self):
        raise RuntimeError("class")


@pytest.fixture
def engine(make):
    return make(flagd.to_snapshot(DOC))


@pytest.mark.parametrize("key", [["f"], {"f": 1}, {1, 2}])
def test_a_key_that_is_no_dict_key_is_not_found(engine, key):
    r = flagd.resolve(engine, key, {}, "FB")
    assert (r.value, r.variant, r.reason, r.error_code) == ("FB", None, "ERROR", "FLAG_NOT_FOUND")


def test_a_str_subclass_key_names_the_flag_its_text_names(engine):
    plain = flagd.resolve(engine, "f", {}, False)
    assert flagd.resolve(engine, HostileKey("f"), {}, False) == plain
    assert plain.metadata == {"team": "a"} and plain.value is True


@pytest.mark.parametrize("key", ["f", "o", "missing"])
def test_a_default_whose_type_cannot_be_read_is_a_type_mismatch(engine, key):
    default = FakedClass()
    r = flagd.resolve(engine, key, {}, default)
    assert r.value is default and r.variant is None and r.reason == "ERROR"
    assert r.error_code == ("FLAG_NOT_FOUND" if key == "missing" else "TYPE_MISMATCH")
