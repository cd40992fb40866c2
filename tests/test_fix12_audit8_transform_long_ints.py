"""``type_conversion`` of a digit string past Python's digit limit (audit 8).

``int()`` refuses a literal of more than ``sys.get_int_max_str_digits()`` digits (4,300),
and the transform passed that on: ``a: cannot transform: ValueError: Exceeds the limit
(4300 digits) for integer string conversion ...; use sys.set_int_max_str_digits() to
increase the limit``. It is an integer out of range, said as the size and duration
steps say theirs."""

from __future__ import annotations

import sys

import pytest

from cfgcore.config_utils import ConfigurationTransformer
from cfgcore.errors import ConfigError

LONG = "7" * (sys.get_int_max_str_digits() + 1)


@pytest.mark.parametrize("text", [LONG, f"-{LONG}", f"  +{LONG} "])
def test_a_long_digit_string_is_an_integer_out_of_range(text):
    tree = {"limits": {"ok": "12", "big": text}}
    with pytest.raises(ConfigError) as err:
        ConfigurationTransformer().transform(tree, ["env_var_substitution", "type_conversion"])
    message = str(err.value)
    assert message.startswith("limits.big: cannot transform: OverflowError: integer '")
    assert message.endswith("...' is out of range (configuration integers must fit in 64 bits)")
    assert "set_int_max_str_digits" not in message
