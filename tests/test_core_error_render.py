"""``str(err)`` of a ConfigError lists at most MAX_RENDERED_PROBLEMS problems.

A flag file with one mistake repeated on 5,000 flags made a 300 KB message, which a
refused reload logs, audits and reports through health every time. The message now
shows the first problems and counts the rest; ``err.problems`` keeps every one (what
``cfgcore validate`` prints).
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import MAX_RENDERED_PROBLEMS, ConfigError, Problem, SnapshotError
from cfgcore.snapshot import decode_snapshot
from tests.fuzz import examples


@settings(max_examples=examples(60), deadline=None)
@given(st.integers(2, 3 * MAX_RENDERED_PROBLEMS))
def test_the_message_shows_the_first_problems_and_counts_the_rest(n):
    problems = [Problem(path=f"flags.f{i}.default", message="not a variant") for i in range(n)]
    err = ConfigError(problems)
    lines = str(err).splitlines()
    assert lines[0] == f"{n:,} problems:"
    shown = min(n, MAX_RENDERED_PROBLEMS)
    assert lines[1 : shown + 1] == [f"  - flags.f{i}.default: not a variant" for i in range(shown)]
    if n > MAX_RENDERED_PROBLEMS:
        assert lines[shown + 1 :] == [f"  ... and {n - shown:,} more"]
    else:
        assert len(lines) == n + 1
    assert err.problems == problems  # nothing dropped from the list itself


def test_a_file_with_thousands_of_bad_flags_gives_a_bounded_message():
    flags = {f"flag_{i}": {"default": "off", "rules": [{"rollout": "lots", "serve": "on"}]}
             for i in range(5_000)}  # fmt: skip
    with pytest.raises(SnapshotError) as err:
        decode_snapshot(msgspec.msgpack.encode({"flags": flags}), "msgpack", file="flags.mp")
    assert len(err.value.problems) == 5_000
    text = str(err.value)
    assert text.startswith("5,000 problems:\n  - flags.mp: flags.flag_0.rules[0].rollout")
    assert text.endswith("  ... and 4,900 more")
    assert len(text) < 100 * 200  # was ~300 KB
