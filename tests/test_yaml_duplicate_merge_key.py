"""A mapping holding two merge keys (``<<``) is refused as a duplicate key, naming the
file, line and key path: PyYAML merged both, the later one's entries winning over the
earlier's (the opposite of ``<<: [*a, *b]``), and other YAML readers keep one of them or
refuse the file. The list form is the one way to merge several mappings."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager, default_config_dir
from cfgcore.errors import ConfigError
from cfgcore.yamlio import load_yaml
from tests.fuzz import examples

TWO = "a: &a {x: 1, y: 1}\nb: &b {x: 2}\nsvc:\n  inner:\n    <<: *a\n    z: 0\n    <<: *b\n"


def test_two_merge_keys_are_refused_with_file_line_and_path():
    with pytest.raises(ConfigError) as err:
        load_yaml(TWO, file="f.yaml")
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.path) == ("f.yaml", 7, "svc.inner.<<")
    assert "duplicate merge key (first defined on line 5)" in problem.message
    assert "<<: [*a, *b]" in problem.message


def test_two_merge_keys_in_a_flow_mapping_are_refused():
    with pytest.raises(ConfigError, match="duplicate merge key"):
        load_yaml("a: &a {x: 1}\nb: &b {x: 2}\nsvc: {<<: *a, <<: *b}\n")


def test_one_merge_key_of_a_list_still_reads():
    doc = load_yaml("a: &a {x: 1, y: 1}\nb: &b {x: 2}\nsvc:\n  <<: [*a, *b]\n  z: 0\n")
    assert doc["svc"] == {"x": 1, "y": 1, "z": 0}


MAPS = st.dictionaries(st.sampled_from(["p", "q", "alpha"]), st.integers(0, 9), max_size=3)


@settings(max_examples=examples(50), deadline=None)
@given(first=MAPS, second=MAPS, between=MAPS)
def test_any_mapping_with_two_merge_keys_is_refused(first, second, between):
    own = "".join(f"  k{k}: {v}\n" for k, v in between.items())
    text = f"a: &a {first}\nb: &b {second}\nsvc:\n  <<: *a\n{own}  <<: *b\n".replace("'", '"')
    with pytest.raises(ConfigError, match="duplicate merge key"):
        load_yaml(text, file="f.yaml")


def test_a_reload_meeting_two_merge_keys_keeps_the_last_good_version(tmp_path):
    d = tmp_path / "config"
    shutil.copytree(default_config_dir(), d)
    m = ConfigurationManager(str(d), environ={})
    m.load_environment_config("staging")
    port = m.get("server.port")
    staging = d / "staging.yaml"
    staging.write_text(
        staging.read_text()
        + "\nanchors:\n  one: &one {port: 1}\n  two: &two {port: 2}\n"
        + "server_override:\n  <<: *one\n  <<: *two\n"
    )
    assert m.reload() is False
    assert m.get("server.port") == port
    assert "staging.yaml" in str(m.last_error)
    assert "server_override.<<: duplicate merge key" in str(m.last_error)
    m.close()
