"""Debug mode renders a bounded view of the context on each line: a huge context costs
what a small one does, and the attributes the evaluated flag reads are shown in full (up
to the stated caps) before a preview of the others and a ``... N more`` count.

Every engine test runs on both evaluators (the ``make`` fixture).
"""

from __future__ import annotations

import logging
import string
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cfgcore
from cfgcore.observability import debug

FLAGS = {
    "flags": {
        "tenant_only": {
            "default": "off",
            "rules": [{"when": {"attr": "tenant", "eq": "acme"}, "serve": "on"}],
        },
        "grouped": {
            "default": "off",
            "rules": [{"when": {"attr": "groups", "contains": "beta"}, "serve": "on"}],
        },
    }
}


@pytest.fixture
def debug_mode():
    cfgcore.enable_debug_mode()
    try:
        yield
    finally:
        cfgcore.disable_debug_mode()


def lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "cfgcore.evaluation"]


class CountingMapping(Mapping):
    """A context mapping that counts the keys iterated and the values read."""

    def __init__(self, data: dict) -> None:
        self.data = data
        self.touched = 0

    def __getitem__(self, key):
        self.touched += 1
        return self.data[key]

    def __iter__(self):
        for key in self.data:
            self.touched += 1
            yield key

    def __len__(self) -> int:
        return len(self.data)


def test_a_huge_context_gives_a_bounded_line_with_the_read_attribute_in_full(
    make, caplog, debug_mode
):
    e = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    tenant = "t" * 900 + "-acme"  # longer than the preview of other attributes
    ctx = {f"attr{i}": "v" * 100 for i in range(50_000)}  # 5 MB of other attributes
    ctx["blob"] = list(range(1_000_000))
    ctx["tenant"] = tenant
    assert e.is_enabled("tenant_only", ctx) is False
    [line] = lines(caplog)
    assert f"'tenant': {tenant!r}" in line  # the attribute the rule reads, whole
    shown = debug.OTHER_ATTRIBUTES + 1
    assert line.endswith(f"... {len(ctx) - shown} more}}")  # the others counted
    assert len(line) < 10_000  # a bound on the text, not on the clock


def test_a_read_container_is_shown_up_to_its_cap(make, caplog, debug_mode):
    e = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    groups = [f"g{i}" for i in range(debug.READ_ITEMS - 1)] + ["beta"]
    e.is_enabled("grouped", {"groups": groups, "other": list(range(50))})
    e.is_enabled("grouped", {"groups": groups + ["x"] * 500})
    first, second = lines(caplog)
    assert f"'groups': {groups!r}" in first  # read (it matches no rule: a list)
    assert "'other': [0, 1, 2, 3, 4, 5, ... 44 more]" in first  # a preview
    assert f"'groups': {groups[:-1]!r}"[:-1] + ", 'beta', ... 500 more]" in second


def test_only_a_bounded_part_of_the_context_is_read(make, caplog, debug_mode):
    e = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    ctx = CountingMapping({f"attr{i}": i for i in range(100_000)} | {"tenant": "acme"})
    for _ in range(10):
        assert e.is_enabled("tenant_only", ctx) is True
    assert len(lines(caplog)) == 10
    # Each line reads the read attribute and at most OTHER_ATTRIBUTES others (the
    # evaluation itself reads the one attribute); before, every line copied all 100,001.
    assert ctx.touched <= 10 * (2 * debug.OTHER_ATTRIBUTES + 10)
    assert f"... {100_001 - debug.OTHER_ATTRIBUTES - 1} more" in lines(caplog)[-1]


def test_evaluate_all_puts_the_attributes_flags_read_first(make, caplog, debug_mode):
    e = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    ctx = {f"attr{i}": i for i in range(1_000)} | {"groups": ["beta"], "tenant": "acme"}
    e.evaluate_all(ctx)
    [line] = lines(caplog)
    assert "'tenant': 'acme'" in line and "'groups': ['beta']" in line
    assert f"... {len(ctx) - debug.OTHER_ATTRIBUTES - 2} more}}" in line


def test_a_long_secret_stays_masked_when_cut(make, caplog, debug_mode):
    e = make(FLAGS)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    url = "https://example.com/" + "p" * 70 + "?a=1&token=abcsecretvalue123&" + "q" * 5000
    e.is_enabled("tenant_only", {"tenant": "x", "note": url, "api_key": "k" * 10_000})
    [line] = lines(caplog)
    assert "abcsecretvalue123" not in line and "kkkk" not in line
    assert "'note': 'https://example.com/" in line and "more chars" in line


_safe_text = st.text(alphabet=string.ascii_lowercase, max_size=1_500)
_values = st.recursive(
    st.none() | st.integers() | _safe_text,
    lambda inner: st.lists(inner, max_size=150) | st.dictionaries(_safe_text, inner, max_size=8),
    max_leaves=400,
)


@given(
    other=st.dictionaries(st.sampled_from([f"k{i}" for i in range(60)]), _values),
    read=st.dictionaries(st.sampled_from(["tenant", "region", "plan"]), _safe_text, min_size=1),
)
def test_context_text_is_bounded_and_shows_read_text_in_full(other, read):
    ctx = other | read
    text = debug.context_text(ctx, list(read))
    assert len(text) <= debug.LINE_CHARS + 2 * debug.READ_TEXT + 200
    for name, value in read.items():
        if len(value) <= debug.READ_TEXT:
            assert f"{name!r}: {value!r}" in text
        else:
            cut = value[: debug.READ_TEXT]
            assert f"{name!r}: {cut!r}... {len(value) - debug.READ_TEXT} more chars" in text
    if len(ctx) > len(read) + debug.OTHER_ATTRIBUTES:  # some attributes are counted
        assert text.endswith(" more}")
        counted = int(text.rsplit("... ", 1)[1].split()[0])
        # At least those past the cap: fewer are shown once the line's budget is spent.
        assert len(ctx) - len(read) - debug.OTHER_ATTRIBUTES <= counted <= len(other)
