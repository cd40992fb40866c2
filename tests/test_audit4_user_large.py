"""Round 4, the new user: a configuration with millions of keys.

Validating a 37 MB YAML file with 2M keys took about 100 s. Most of that is PyYAML
building the tree (see the round's report), but two costs were ours:

- ``cfgcore validate`` in directory mode built the configuration twice (once to
  validate it, once more for the findings on ``${VAR}`` values): every file was read and
  parsed twice. It now builds it once.
- ``tree_problem`` (the limits check every file read goes through) put every leaf on
  its stack with a fresh key-path tuple. Scalars are now judged where they are met and a
  path is built only for a container or a refused value.
"""

from __future__ import annotations

import math
import tracemalloc
from datetime import date, time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import cfgcore.yamlio
from cfgcore.config.files import INT_MAX, INT_MIN, MAX_DEPTH, tree_problem
from cfgcore.errors import format_key_path
from tests.conftest import run_cli, scaffolded_config
from tests.fuzz import examples


def test_validate_reads_each_file_once_in_directory_mode(tmp_path, monkeypatch, capsys):
    d = scaffolded_config(tmp_path, monkeypatch, "staging")
    (d / "staging.yaml").write_text(
        (d / "staging.yaml").read_text() + "\nextra_data:\n  token_ref: ${CFGCORE_T_TOKEN-abc}\n"
    )
    real = cfgcore.yamlio.load_yaml
    read: list[str] = []

    def counting(text: str, *args: Any, **kwargs: Any) -> Any:
        read.append(str(kwargs.get("file", args[0] if args else "")))
        return real(text, *args, **kwargs)

    monkeypatch.setattr(cfgcore.yamlio, "load_yaml", counting)
    code, out, err = run_cli(capsys, "validate", "--config-dir", str(d), "-e", "staging")
    assert code == 0, (out, err)
    staging = [f for f in read if f.endswith("staging.yaml")]
    assert len(staging) == 1, read


def test_the_limits_check_keeps_no_path_per_leaf():
    tree = {"custom_data": {f"k{i}": i for i in range(50_000)}}
    tree["custom_data"]["names"] = [f"v{i}" for i in range(50_000)]
    tracemalloc.start()
    try:
        assert tree_problem(tree) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A (node, path) pair and a path tuple per leaf came to several MB here.
    assert peak < 200_000, peak


def _all_problems(node: Any, path: tuple[Any, ...], depth: bool, out: set[tuple[str, str]]):
    """Every refusal ``tree_problem`` may report, by plain recursion (a reference)."""
    dotted = format_key_path(path)
    if isinstance(node, dict | list | tuple):
        if len(path) >= MAX_DEPTH:
            if depth:
                shown = format_key_path(path[:6]) + (".…" if len(path) > 6 else "")
                out.add((shown, f"nested more than {MAX_DEPTH} levels deep"))
            return
        items = node.items() if isinstance(node, dict) else enumerate(node)
        if isinstance(node, dict) and depth:
            for k in node:
                if not isinstance(k, str):
                    out.add(
                        (
                            # Python's spelling in brackets: never the text key's path
                            format_key_path(path) + f"[{k!r}]",
                            f"key {k!r} ({type(k).__name__}) is not a string (quote it)",
                        )
                    )
        for k, v in items:
            _all_problems(v, (*path, k), depth, out)
    elif isinstance(node, int) and not isinstance(node, bool):
        if not INT_MIN <= node <= INT_MAX:
            out.add(
                (
                    dotted,
                    f"integer out of range ({node.bit_length()} bits; "
                    "configuration integers must fit in 64 bits)",
                )
            )
    elif depth and isinstance(node, float) and not math.isfinite(node):
        out.add((dotted, f"{node!r} is not a finite number"))
    elif depth and not isinstance(node, type(None) | bool | int | float | str | date | time):
        out.add(
            (
                dotted,
                f"a {type(node).__name__} is not a configuration value (strings, "
                "numbers, booleans, null, dates and times, lists and mappings are)",
            )
        )


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=3),
    st.binary(max_size=2),
    st.just(complex(1, 2)),
    st.frozensets(st.integers(0, 3), max_size=2),
)
_trees = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3) | st.integers(0, 3), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=examples(300))
@given(tree=_trees, depth=st.booleans(), prefix=st.lists(st.text("ab", max_size=2), max_size=2))
def test_the_limits_check_reports_a_real_problem_or_none(tree, depth, prefix):
    expected: set[tuple[str, str]] = set()
    _all_problems(tree, tuple(prefix), depth, expected)
    found = tree_problem(tree, tuple(prefix), depth=depth)
    if expected:
        assert found in expected
    else:
        assert found is None


def test_the_limits_check_still_stops_at_the_depth_limit():
    deep: list[Any] = []
    node = deep
    for _ in range(MAX_DEPTH + 5):
        node.append([])
        node = node[0]
    assert tree_problem({"a": deep}) == (
        "a.0.0.0.0.0.…",
        f"nested more than {MAX_DEPTH} levels deep",
    )
    assert tree_problem({"a": deep}, depth=False) is None
    assert tree_problem(2**80, ("x", "y"))[0] == "x.y"
