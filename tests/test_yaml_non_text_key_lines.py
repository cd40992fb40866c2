"""A key that is not text (a number, a boolean, null, a date: ``1.5:`` unquoted) is
refused naming its own line and its key path with the key as text, quoted where it holds
a dot: ``app["1.5"]``. A float key was shown ``app.1.5`` (key ``1`` of ``app``, then
``5``) and its error named the line of ``app``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.files import parse_text
from cfgcore.errors import ConfigError, format_key_path

LEADING = "app:\n  name: x\n  other: y\n"


@pytest.mark.parametrize(
    ("key", "shown"),
    [("1.5", 'app["1.5"]'), ("-0.25", 'app["-0.25"]'), ("1e3", 'app["1000.0"]'),
     ("7", "app.7"), ("true", "app.True"), ("2024-01-01", "app.2024-01-01")],
)  # fmt: skip
def test_a_key_that_is_not_text_is_named_on_its_own_line(key, shown):
    with pytest.raises(ConfigError) as err:
        parse_text(LEADING + f"  {key}: z\n", "yaml", "d.yaml")
    (problem,) = err.value.problems
    assert (problem.path, problem.line) == (shown, 4)
    assert "is not a string (quote it)" in problem.message


@settings(max_examples=40, deadline=None)
@given(
    key=st.floats(allow_nan=False, allow_infinity=False, width=64),
    depth=st.integers(0, 3),
)
def test_any_float_key_is_named_on_its_line_at_any_depth(key, depth):
    parents = [f"s{i}" for i in range(depth)]
    text = "".join(f"{'  ' * i}{p}:\n{'  ' * (i + 1)}pad: 1\n" for i, p in enumerate(parents))
    text += f"{'  ' * depth}{key!r}: z\n"
    with pytest.raises(ConfigError) as err:
        parse_text(text, "yaml", "d.yaml")
    (problem,) = err.value.problems
    assert problem.line == 2 * depth + 1
    assert problem.path == format_key_path((*parents, str(key)))
