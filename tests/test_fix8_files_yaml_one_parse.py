"""Fix 8: a YAML document is parsed once; nesting past 1,000 levels is refused as before.

``load_yaml`` read a document's parse events once to refuse nesting deeper than
``MAX_PARSE_DEPTH`` (PyYAML's C composer recurses on the C stack), then parsed it again
to build it: a large file paid for two parses. The depth is now counted while the
document is composed (the composer asks ``descend_resolver`` before each node), and a
too-deep document gets the same error as before: the file, the line of the collection
that goes too deep and the key path to it. A small document nested past the bound is
refused too (the event scan ran only on documents with more than 2,000 structural
characters, so a short ``[[[...]]]`` 1,500 levels deep was accepted).
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import yamlio
from cfgcore.config.files import read_config_file
from cfgcore.errors import ConfigError
from tests.fuzz import examples

LIMIT = yamlio.MAX_PARSE_DEPTH

pytestmark = pytest.mark.skipif(
    not hasattr(yaml, "CSafeLoader"), reason="PyYAML without libyaml reads the parse events first"
)


def _outcome(load, text):
    try:
        load(text)
    except ConfigError as exc:
        (problem,) = exc.problems
        assert problem.file == "svc.yaml"
        assert problem.message == f"nested more than {LIMIT:,} levels deep"
        return problem.path, problem.line
    return None


def _scan(text):
    yamlio._check_depth(text, "svc.yaml")  # the event scan: the reference


def _load(text):
    yamlio.load_yaml(text, file="svc.yaml")


def _big_config(sections: int) -> str:
    return yaml.safe_dump(
        {
            f"service_{i}": {"host": f"h{i}", "port": 8000 + i, "tags": ["a", "b"], "on": True}
            for i in range(sections)
        }
    )


def test_a_large_document_is_parsed_once(monkeypatch):
    text = _big_config(2000)
    assert yamlio._depth_bound(text) > yamlio._SCAN_ABOVE  # the scan used to run
    scans = []
    real = yaml.parse
    monkeypatch.setattr(yaml, "parse", lambda *a, **k: scans.append(1) or real(*a, **k))
    doc = yamlio.load_yaml(text, file="svc.yaml")
    assert doc["service_1999"]["port"] == 9999
    assert scans == []


def test_a_large_config_file_nested_too_deep_is_refused_with_file_line_and_path(tmp_path):
    path = tmp_path / "base.yaml"
    deep = "[" * (LIMIT + 5) + "]" * (LIMIT + 5)
    path.write_text(_big_config(300) + f"app:\n  list:\n    - x\n    - {deep}\n")
    with pytest.raises(ConfigError) as info:
        read_config_file(str(path))
    (problem,) = info.value.problems
    assert problem.file == str(path)
    assert problem.path == "app.list.1.0.0.0.0.0.…"
    assert problem.line == _big_config(300).count("\n") + 4
    assert "nested more than 1,000 levels deep" in problem.message


@pytest.mark.parametrize("depth", [LIMIT + 1, 1500])
def test_a_small_document_past_the_bound_is_refused_too(depth):
    assert _outcome(_load, "[" * depth + "]" * depth) == ("0.0.0.0.0.0.0.0.…", 1)
    assert _outcome(_load, "[" * depth + "1" + "]" * depth) == ("0.0.0.0.0.0.0.0.…", 1)


def test_the_deepest_document_allowed_still_loads():
    doc = yamlio.load_yaml("a: " + "[" * (LIMIT - 1) + "1" + "]" * (LIMIT - 1), file="svc.yaml")
    for _ in range(LIMIT):
        doc = doc["a"] if isinstance(doc, dict) else doc[0]
    assert doc == 1


_OPENS = ["[", "{k: ", "[x, ", "{a: 1, b: ", "{? [", "!!seq ["]
_CLOSES = {"[": "]", "{k: ": "}", "[x, ": "]", "{a: 1, b: ": "}", "{? [": "]: v}", "!!seq [": "]"}


@settings(max_examples=examples(40), deadline=None)
@given(
    keys=st.lists(st.sampled_from(["a", "b", "svc", "list"]), max_size=3),
    pattern=st.lists(st.sampled_from(_OPENS), min_size=1, max_size=4),
    depth=st.integers(LIMIT - 4, LIMIT + 4),
    inner=st.sampled_from(["1", "[]", "{}", "*top", "[*top]"]),
    newline=st.booleans(),
)
def test_refusals_match_the_event_scan(keys, pattern, depth, inner, newline):
    """The same documents are refused, at the same line and key path, as by the scan
    of parse events (padded so the scan reads them)."""
    opens = (pattern * depth)[:depth]
    body = "".join(o + ("\n" if newline else "") for o in opens)
    body += inner + "".join(_CLOSES[o] for o in reversed(opens))
    head = "top: &top [1]\npad: [" + ", ".join(["[1]"] * 1100) + "]\n"
    indent = ""
    for key in keys:
        head += f"{indent}{key}:\n"
        indent += "  "
    text = head + indent + "deep: " + body + "\n"
    assert yamlio._depth_bound(text) > yamlio._SCAN_ABOVE
    assert _outcome(_load, text) == _outcome(_scan, text)


def test_a_wide_list_at_the_deepest_level_costs_no_copy_of_the_path_per_item():
    """Each item of a list with 1,000 collections around it is noted (a collection there
    goes too deep); noting it copied the whole stack of the path, 1,000 entries per
    item. Bounded here as a count of work, not time: the keys kept per item are the
    first few, shared by the items of one list."""
    n = LIMIT
    loader = yamlio.StrictLoader("[" * n + ", ".join(["1"] * 2000) + "]" * n)
    try:
        loader.compose_guarded()
        edge = loader.cfgcore_edge
    finally:
        loader.dispose()
    assert len(edge) == 2000
    assert len({id(keys) for *_, keys in edge}) == 1
    assert len(edge[0][3]) == yamlio._DEEP_PATH_SHOWN + 1
