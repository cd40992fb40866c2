"""Hostile numbers given to the numbers rule's identifier and setting checks.

``integer_within`` (a port) refuses what is no integer in range with a ValueError
naming the argument; an ``int`` subclass whose ``__int__`` raises or answers no int
(or a class registered as :class:`numbers.Integral` that cannot be read) escaped as
its own TypeError or RuntimeError. A :class:`~cfgcore._numbers.WholeSetting` read
before it is set raised KeyError, which ``getattr(obj, name, default)`` and
``hasattr`` do not expect; it is an AttributeError now.
"""

from __future__ import annotations

import numbers

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore._numbers import WholeSetting, integer_within
from cfgcore.observability.http import serve


class TextInt(int):
    def __int__(self):
        return "80"


class RaisingInt(int):
    def __int__(self):
        raise RuntimeError("no")


class Unreadable:
    def __int__(self):
        raise RuntimeError("no")


numbers.Integral.register(Unreadable)


@pytest.mark.parametrize(
    "port", [TextInt(80), RaisingInt(80), Unreadable()], ids=["text", "raises", "registered"]
)
def test_an_integer_that_cannot_be_read_is_refused_naming_the_argument(port):
    with pytest.raises(ValueError, match=r"^port must be an integer from 0 to 65535, got "):
        integer_within("port", port, 0, 65535)
    with pytest.raises(ValueError, match=r"^port must be an integer"):
        serve(None, port=port)


@given(st.integers(-(2**70), 2**70))
def test_an_integer_is_taken_exactly_when_in_range(n):
    for value in (n, *([np.int64(n)] if -(2**63) <= n < 2**63 else [])):
        if 0 <= n <= 65535:
            assert integer_within("port", value, 0, 65535) == n
        else:
            with pytest.raises(ValueError, match="port must be an integer"):
                integer_within("port", value, 0, 65535)


class Settings:
    wait_ms = WholeSetting(0, "milliseconds")


def test_a_whole_setting_not_set_yet_is_an_attribute_error():
    settings = Settings()
    assert getattr(settings, "wait_ms", None) is None
    assert not hasattr(settings, "wait_ms")
    settings.wait_ms = 5.0
    assert settings.wait_ms == 5 and type(settings.wait_ms) is int
