"""Many unknown configuration keys are reported at a bounded cost per key: at most
``SUGGESTION_LIMIT`` of them per validation are compared with the known keys for a "did
you mean" (difflib, tens of microseconds each), the rest are reported without one and
counted; keys of open sections are ruled out as typos before difflib is asked. Costs are
counted (difflib calls), never timed."""

from __future__ import annotations

import difflib
import logging
import string

from hypothesis import given
from hypothesis import strategies as st

from cfgcore.config import profiles
from cfgcore.config.tree import SUGGESTION_LIMIT
from cfgcore.validation import structure
from cfgcore.validation.structure import UNKNOWN, SchemaRule, _typo
from cfgcore.yamlio import LineMarks, load_yaml
from tests.conftest import copy_bundled_config


class CountingDifflib:
    """Counts get_close_matches calls made through a module's ``difflib``."""

    def __init__(self) -> None:
        self.calls = 0

    def get_close_matches(self, *args, **kwargs):
        self.calls += 1
        return difflib.get_close_matches(*args, **kwargs)


def _unknown(results):
    return [r for r in results if r.rule_id == UNKNOWN and not r.is_valid]


def test_a_closed_section_with_many_unknown_keys_gets_capped_suggestions(monkeypatch):
    counter = CountingDifflib()
    monkeypatch.setattr(structure, "difflib", counter)
    section = {"min_replica": 2} | {f"custom_{i:05d}": i for i in range(2_000)}
    found = _unknown(SchemaRule().validate({"auto_scaling": section}))
    assert counter.calls <= SUGGESTION_LIMIT  # was one per unknown key: 2,001
    first, *rest, summary = found
    assert len(rest) == 2_000  # every unknown key is still reported, with its path
    assert first.key_path == "auto_scaling.min_replica"
    assert "did you mean 'min_replicas'?" in first.message  # the first ones get hints
    assert rest[-1].key_path == "auto_scaling.custom_01999"
    assert "did you mean" not in rest[-1].message
    assert "known keys: enabled, max_replicas" in rest[-1].suggested_fix
    skipped = 2_001 - SUGGESTION_LIMIT
    assert summary.key_path == f"auto_scaling.custom_{SUGGESTION_LIMIT - 1:05d}"
    assert summary.message.startswith(f"{summary.key_path}: {skipped} unknown keys")
    assert summary.severity == "warning"


def test_an_open_section_asks_difflib_only_for_possible_typos(monkeypatch):
    counter = CountingDifflib()
    monkeypatch.setattr(structure, "difflib", counter)
    config = {f"my_own_section_{i}": {} for i in range(3_000)} | {"auto_scalling": {}}
    found = _unknown(SchemaRule().validate(config))
    assert [r.key_path for r in found] == ["auto_scalling"]  # the typo, not the 3,000
    assert "did you mean 'auto_scaling'?" in found[0].message
    assert counter.calls <= 5  # was one per unknown top-level key


_KNOWN = list(structure.schema_checker().fields)


def _mutated(draw_key: str, edits: list[tuple[int, str, int]]) -> str:
    chars = list(draw_key)
    for kind, letter, where in edits:
        i = where % (len(chars) + 1)
        if kind == 0:
            chars.insert(i, letter)
        elif kind == 1 and chars:
            del chars[min(i, len(chars) - 1)]
        elif chars:
            chars[min(i, len(chars) - 1)] = letter
    return "".join(chars)


@given(
    base=st.sampled_from(_KNOWN),
    edits=st.lists(
        st.tuples(
            st.integers(0, 2), st.sampled_from(string.ascii_lowercase + "_"), st.integers(0, 40)
        ),
        max_size=3,
    ),
)
def test_the_open_section_shortcut_finds_what_difflib_alone_found(base, edits):
    key = _mutated(base, edits)
    if key in _KNOWN or not key:
        return
    close = difflib.get_close_matches(key, _KNOWN, n=1, cutoff=0.8)
    expected = close[0] if close and _typo(key, close[0]) else None  # the rule before
    found = _unknown(SchemaRule().validate({key: {}}))
    if expected is None:
        assert found == []
    else:
        assert [r.key_path for r in found] == [key]
        assert f"did you mean {expected!r}?" in found[0].message


def test_a_profile_file_with_many_unknown_fields_compares_the_first_ones(monkeypatch):
    calls = []
    monkeypatch.setattr(profiles, "did_you_mean", lambda *a, **k: calls.append(a) or "")
    message = profiles._unknown_fields([f"field_{i}" for i in range(1_000)])
    assert len(calls) == SUGGESTION_LIMIT
    assert f"({1_000 - SUGGESTION_LIMIT} more unknown fields, not compared)" in message


def test_line_of_a_large_mapping_names_every_key_line():
    marks = LineMarks()
    text = "top:\n" + "".join(f"  key_{i}: {i}\n" for i in range(500))
    load_yaml(text, marks=marks)
    for i in (0, 1, 31, 32, 250, 499):
        assert marks.line_of(("top", f"key_{i}")) == i + 2
    assert marks.line_of(("top", "nope")) == 1


def test_a_file_with_many_unknown_keys_names_file_line_and_path(tmp_path, caplog):
    from cfgcore.config.manager import ConfigurationManager

    cfg = copy_bundled_config(tmp_path / "config")
    staging = cfg / "staging.yaml"
    text = staging.read_text()
    extra = "".join(f"  custom_{i:04d}: {i}\n" for i in range(1_000))
    staging.write_text(text.replace("auto_scaling:\n", "auto_scaling:\n" + extra, 1))
    line = text.splitlines().index("auto_scaling:") + 1
    caplog.set_level(logging.WARNING, logger="cfgcore")
    m = ConfigurationManager(str(cfg), record_usage=False, environ={})
    try:
        m.load_environment_config("staging")
    finally:
        m.close()
    warned = [r.getMessage() for r in caplog.records if "unknown key" in r.getMessage()]
    assert len(warned) == 1_001  # each key, and the count of those without a suggestion
    assert f"{staging}:{line + 1000}: auto_scaling.custom_0999: unknown key" in "\n".join(warned)
    assert any(f"{1_000 - SUGGESTION_LIMIT} unknown keys (from this one on)" in w for w in warned)


def test_did_you_mean_over_a_huge_key_list_compares_a_bounded_few(monkeypatch):
    from cfgcore.config import tree

    sizes: list[int] = []
    real = difflib.get_close_matches

    def counting(word, possibilities, *args, **kwargs):
        sizes.append(len(possibilities))
        return real(word, possibilities, *args, **kwargs)

    monkeypatch.setattr(difflib, "get_close_matches", counting)
    paths = [f"section_{i // 100}.key_{i:06d}" for i in range(100_000)]
    hint = tree.did_you_mean("section_5.kye_000512", paths)  # a typo in the leaf
    assert hint.startswith(" (did you mean 'section_5.key_000512'")
    hint = tree.did_you_mean("sectoin_999.key_099950", paths)  # a typo in the parent
    assert "'section_999.key_099950'" in hint
    assert sizes and max(sizes) <= tree.MAX_CANDIDATES  # was all 100,000 each time
    assert tree.did_you_mean("server.prot", ["server.port", "app.name"]) == (
        " (did you mean 'server.port'?)"
    )
