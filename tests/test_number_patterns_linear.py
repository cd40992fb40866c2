"""The patterns that read a number out of text a user or an imported file supplies read
a long run of digits in linear time.

``\\d+\\.?\\d*`` splits a run of digits that ends in no number (``"1" * 20000 + "x"``) in
as many ways as it is long before it fails: quadratic time, 15 s for 20,000 digits. It
stood in three places: Unleash's ``context()`` (every request), the Unleash import's
``Number()`` of a rollout percentage or constraint value, and an alert's condition.
Each now reads ``\\d+(?:\\.\\d*)?``: these tests hold that the texts each reads are the
texts it read before, and that long runs of digits get their answers."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.interop import unleash
from cfgcore.observability import alerts
from tests.fuzz import examples

# The patterns as they were (the languages to keep).
OLD = {
    "context": re.compile(
        r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity)", re.I | re.ASCII
    ),
    "import": re.compile(r"[+-]?(?:Infinity|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", re.ASCII),
    "alert": re.compile(
        r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?P<op><=|>=|==|!=|<|>)\s*"
        r"(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
    ),
}
NEW = {"context": unleash._CTX_NUMBER, "import": unleash._JS_DECIMAL, "alert": alerts._CONDITION}

# The characters the patterns care about, and a few they refuse.
texts = st.text(alphabet="0123456789..eE+-infINFtyY x\t٣", max_size=12)


@settings(max_examples=examples(3000))
@given(text=texts)
def test_each_pattern_reads_the_texts_it_read_before(text):
    for name in ("context", "import"):
        assert bool(NEW[name].fullmatch(text)) == bool(OLD[name].fullmatch(text)), name
    line = "feature_flag_error_rate > " + text
    new, old = NEW["alert"].match(line), OLD["alert"].match(line)
    assert (new and new.groupdict()) == (old and old.groupdict())


@pytest.mark.parametrize("tail", ["x", ".x", "e", "e+", ".5e-"])
def test_a_long_run_of_digits_that_is_no_number(tail):
    digits = "1" * 20_000
    assert NEW["context"].fullmatch(digits + tail) is None
    assert math.isnan(unleash._js_number(digits + tail))
    assert unleash._percent(digits + tail, "p") == 0  # (every SDK: no bucket on)
    with pytest.raises(ValueError, match="malformed condition"):
        alerts.parse_condition("feature_flag_error_rate > " + digits + tail)


def test_a_long_run_of_digits_that_is_a_number():
    digits = "1" * 20_000
    assert unleash._js_number(digits) == math.inf  # (past a double, as JavaScript reads it)
    assert unleash._js_number("0" * 20_000 + ".5") == 0.5
    assert unleash._percent("0" * 20_000 + "50", "p") == 50
    condition = alerts.parse_condition("feature_flag_error_rate > " + "0" * 20_000 + "1")
    assert condition.threshold == 1.0
    assert NEW["context"].fullmatch(digits + ".25e-3") is not None
