"""Fix 10: an error in a YAML configuration costs no second parse of the file.

A build that failed (a value out of range, a validation finding, a section left empty)
named the line of the key by composing the whole file again (``files._line_index``):
two parses of every file with an error, tens of seconds for a file of a few megabytes,
in every build a hot-reload loop makes of a broken file. Custom profile files were
composed twice on every build that used profiles, successful ones included (the line
of ``extends:`` was looked up for each). The lines are now kept from the one parse that
builds the document (``yamlio.LineMarks``, ``Layer.marks``); the messages name the same
file, key path and line as before.
"""

from __future__ import annotations

import os

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore import yamlio
from cfgcore.config.files import _line_index, read_config_file
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.fuzz import examples


@pytest.fixture
def composes(monkeypatch):
    """The documents composed, each by its first key ("{}" for an empty mapping): every
    parse of a YAML or JSON text goes through ``compose_guarded``, loading it and
    indexing its lines alike."""
    seen: list[str] = []
    real = yamlio._DepthGuard.compose_guarded

    def counted(self):
        node = real(self)
        first = (
            node.value[0][0].value if isinstance(node, yaml.MappingNode) and node.value else "{}"
        )
        seen.append(first)
        return node

    monkeypatch.setattr(yamlio._DepthGuard, "compose_guarded", counted)
    return seen


def _sections(n: int) -> str:
    return "".join(
        f"svc_{i}:\n  host: h{i}\n  port: {8000 + i}\n  tags: [a, b]\n  deep:\n    v: {i}\n"
        for i in range(n)
    )


def _write(tmp_path, base: str, env: str = "{}\n"):
    (tmp_path / "base.yaml").write_text(base)
    (tmp_path / "production.yaml").write_text(env)
    return tmp_path


def _refused(directory, **kwargs):
    m = ConfigurationManager(str(directory), environ={}, **kwargs)
    with pytest.raises(ConfigError) as info:
        m.load_environment_config("production")
    return info.value.problems


def test_an_integer_out_of_range_deep_in_a_file_is_named_without_a_second_parse(tmp_path, composes):
    body = _sections(300)
    base = body + "svc_300:\n  deep:\n    v: 99999999999999999999999\n"
    directory = _write(tmp_path, base)
    (problem,) = _refused(directory, validate=False)
    assert problem.file == str(directory / "base.yaml")
    assert problem.path == "svc_300.deep.v"
    assert problem.line == body.count("\n") + 3
    assert "integer out of range" in problem.message
    assert sorted(composes) == ["svc_0", "{}"]  # each file once


def test_a_validation_finding_names_the_line_without_a_second_parse(tmp_path, composes):
    body = _sections(200)
    base = body + "music_streaming:\n  audio_quality:\n    bitrates:\n      premium: high\n"
    directory = _write(tmp_path, base)
    problems = _refused(directory)
    (problem,) = [p for p in problems if p.path == "music_streaming.audio_quality.bitrates.premium"]
    assert problem.file == str(directory / "base.yaml")
    assert problem.line == body.count("\n") + 4
    assert sorted(composes) == ["svc_0", "{}"]  # each file once


def test_an_empty_section_in_the_environment_file_names_its_line_once(tmp_path, composes):
    directory = _write(tmp_path, _sections(50), "# half saved\nsvc_7:\n  deep:\n")
    (problem,) = _refused(directory, validate=False)
    assert (problem.file, problem.path, problem.line) == (
        str(directory / "production.yaml"),
        "svc_7.deep",
        3,
    )
    assert sorted(composes) == ["svc_0", "svc_7"]


def test_a_hot_reload_of_a_broken_file_parses_it_once_and_keeps_the_last_good(tmp_path, composes):
    directory = _write(tmp_path, _sections(20))
    m = ConfigurationManager(str(directory), environ={}, validate=False)
    m.load_environment_config("production")
    (directory / "base.yaml").write_text(_sections(20) + "svc_20:\n  v: 1e999999999x\n  n: 2\n")
    (directory / "production.yaml").write_text(
        "svc_3:\n  deep:\n    v: [1, {x: 18446744073709551616}]\n"
    )
    composes.clear()
    assert m.reload() is False
    (problem,) = m.last_error.problems
    assert (problem.path, problem.line) == ("svc_3.deep.v.1.x", 3)
    assert sorted(composes) == ["svc_0", "svc_3"]
    assert m.get("svc_3.deep.v") == 3  # the last good configuration stays


def test_profile_files_are_parsed_once_per_build(tmp_path, composes):
    directory = _write(tmp_path, _sections(5))
    profiles = directory / "profiles"
    profiles.mkdir()
    (profiles / "peak.yaml").write_text(
        "name: peak\nkind: deployment\nextends: HIGH_VOLUME\noverrides:\n  svc_1:\n    port: 1\n"
    )
    m = ConfigurationManager(str(directory), environ={}, validate=False)
    composes.clear()
    m.load_environment_config("production", profile="peak")
    assert m.get("svc_1.port") == 1
    assert sorted(composes) == ["name", "svc_0", "{}"]


def test_an_error_in_a_profile_value_names_the_profile_file_line_from_one_parse(tmp_path, composes):
    directory = _write(tmp_path, _sections(3))
    profiles = directory / "profiles"
    profiles.mkdir()
    (profiles / "peak.yaml").write_text(
        "name: peak\nkind: deployment\noverrides:\n  svc_1:\n    tags: [a, '${NOT_SET_X}']\n"
    )
    m = ConfigurationManager(str(directory), environ={}, validate=False)
    with pytest.raises(ConfigError) as info:
        m.load_environment_config("production", profile="peak")
    (problem,) = info.value.problems
    assert (problem.file, problem.path, problem.line) == (
        str(profiles / "peak.yaml"),
        "svc_1.tags.1",
        5,
    )
    assert sorted(composes) == ["name", "svc_0", "{}"]


# ------------------------------------------------------------------ the same lines as before

_KEYS = st.sampled_from(["a", "b", "svc", "1", "x.y", "on", "k k"])
_LEAVES = st.one_of(st.integers(-5, 5), st.sampled_from(["t", "", "multi\nline", None, True]))
_TREES = st.recursive(
    _LEAVES,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(_KEYS, kids, min_size=1, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=examples(150), deadline=None)
@given(
    tree=st.dictionaries(_KEYS, _TREES, min_size=1, max_size=5),
    flow=st.sampled_from([False, None, True]),
    extra=st.lists(_KEYS, max_size=3),
)
def test_the_kept_lines_are_the_lines_a_second_parse_found(tree, flow, extra):
    """Every key path (and a path that goes past what the file holds) gets the line the
    composed text's index gives, the deepest known prefix's."""
    text = yaml.safe_dump(tree, default_flow_style=flow, width=30)
    marks = yamlio.LineMarks()
    yamlio.load_yaml(text, file="svc.yaml", marks=marks)
    index = _line_index(text, "yaml")
    for path in [*index, *((*p, *extra) for p in index), tuple(extra)]:
        expected = next(
            (index[path[:n]] for n in range(len(path), 0, -1) if path[:n] in index), None
        )
        assert marks.line_of(path) == expected, (text, path)


def test_merged_aliased_and_non_text_keys_are_found():
    text = (
        "base: &b\n  x: 1\n  y: [1, 2]\n"
        "svc:\n  <<: *b\n  y:\n    - 3\n"
        "copy: *b\n"
        "2: one\n"
        "true: yes\n"
    )
    marks = yamlio.LineMarks()
    yamlio.load_yaml(text, marks=marks)
    assert marks.line_of(("svc", "x")) == 4  # merged in: the mapping's own line
    assert marks.line_of(("svc", "y", "0")) == 7
    assert marks.line_of(("copy", "y", "1")) == 3  # an alias: where its anchor says
    assert marks.line_of(("2",)) == 9
    assert marks.line_of(("True",)) == 10
    assert marks.line_of(("svc", "y", "5")) == 6  # no such item: the list's key


def test_a_read_config_file_layer_keeps_its_marks():
    path = os.path.join(os.path.dirname(yamlio.__file__), "defaults", "config", "base.yaml")
    layer = read_config_file(path)
    assert layer.marks is not None
    line = layer.text.splitlines().index("music_streaming:") + 1
    assert layer.line_of(("music_streaming",)) == line
