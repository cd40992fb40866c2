"""Round 5 (security, follow-up): a YAML document nested past the parser's limit names
the key path where it goes deep, not only the file and line.

Nesting beyond 1,000 levels is refused from the parse events before the document is
built (the composer recurses); the refusal said ``file:line`` only, and a line says
little in a one-line flow document. The same events give the path to the collection
that goes too deep.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.errors import ConfigError
from cfgcore.yamlio import load_yaml
from tests.fuzz import examples

DEEP = 2500


def _problem(text: str):
    with pytest.raises(ConfigError) as err:
        load_yaml(text, file="svc.yaml")
    (problem,) = err.value.problems
    assert problem.file == "svc.yaml"
    assert "nested more than 1,000 levels deep" in problem.message
    return problem


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("app:\n  deep: " + "[" * DEEP + "]" * DEEP + "\n", "app.deep.0.0.0.0.0.0.…"),
        (
            "app:\n  n: 1\n  list:\n    - a\n    - " + "[" * DEEP + "]" * DEEP,
            "app.list.1.0.0.0.0.0.…",
        ),
        ("- {a: 1}\n- " + "{k: " * DEEP + "1" + "}" * DEEP, "1.k.k.k.k.k.k.k.…"),
        ("app:\n  ? [" + "[" * DEEP + "]" * DEEP + "]\n  : v\n", "app.?.0.0.0.0.0.0.…"),
    ],
    ids=["flow-list", "in-a-list", "flow-map", "complex-key"],
)
def test_too_deep_names_the_key_path(text, path):
    assert _problem(text).path == path


_KEY = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)


@settings(max_examples=examples(25), deadline=None)
@given(keys=st.lists(_KEY, min_size=1, max_size=4, unique=True), before=st.integers(0, 3))
def test_the_path_is_the_one_leading_to_the_deep_value(keys, before):
    # Block mappings with siblings ahead of the deep one, then a list with `before`
    # items ahead of it: the path counts keys and positions as the parser reads them.
    lines, indent = [], ""
    for key in keys:
        lines.append(f"{indent}zz_sibling: 1")
        lines.append(f"{indent}{key}:")
        indent += "  "
    lines += [f"{indent}- x{i}" for i in range(before)]
    lines.append(f"{indent}- " + "[" * DEEP + "]" * DEEP)
    want = [*keys, str(before)] + ["0"] * 8
    assert _problem("\n".join(lines) + "\n").path == ".".join(want[:8]) + ".…"
