"""Deep merge rules, frozen trees, provenance and file formats (cfgcore.layering)."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.environ import env_layer, parse_env_value
from cfgcore.config.files import Layer, read_config_file
from cfgcore.config.provenance import explain
from cfgcore.config.tree import (
    DELETE,
    REPLACE,
    FrozenDict,
    FrozenList,
    deep_merge,
    diff_trees,
    freeze,
    get_path,
    iter_leaves,
    thaw,
)
from cfgcore.errors import ConfigError
from tests.fuzz import examples

keys = st.sampled_from(["a", "b", "c", "d", "e"])
scalars = st.one_of(
    st.integers(), st.booleans(), st.text(max_size=5), st.none(), st.floats(allow_nan=False)
)
trees = st.recursive(
    scalars | st.lists(scalars, max_size=3),
    lambda children: st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)
maps = st.dictionaries(keys, trees, max_size=4)


def _reference_lookup(base, overlay, path):
    """What the documented rules say the value at ``path`` is (no markers involved)."""
    o = get_path(overlay, path, KeyError)
    b = get_path(base, path, KeyError)
    if o is not KeyError and not isinstance(o, dict):
        return o
    # the overlay is silent or has a map here: a non-map overlay prefix would have hidden it
    for end in range(1, len(path)):
        p = get_path(overlay, path[:end], KeyError)
        if p is not KeyError and not isinstance(p, dict):
            return KeyError
    return b if o is KeyError else o


@settings(max_examples=examples(200), deadline=None)
@given(maps, maps)
def test_merge_follows_the_documented_rules_on_every_leaf(base, overlay):
    merged = deep_merge(base, overlay)
    for path, value in iter_leaves(merged):
        if not path:
            continue
        if isinstance(value, dict):  # empty map leaf
            continue
        expected = _reference_lookup(base, overlay, path)
        assert expected is not KeyError
        assert value == expected or (value is expected)
    # every overlay leaf that is not a map survives exactly
    for path, value in iter_leaves(overlay):
        if path and not isinstance(value, dict):
            assert get_path(merged, path) == value


@settings(max_examples=examples(100), deadline=None)
@given(maps, maps)
def test_merge_does_not_modify_its_inputs(base, overlay):
    b, o = copy.deepcopy(base), copy.deepcopy(overlay)
    deep_merge(base, overlay)
    assert base == b and overlay == o


@settings(max_examples=examples(100), deadline=None)
@given(maps)
def test_freeze_thaw_round_trip_and_independence(tree):
    frozen = freeze(tree)
    assert frozen == tree and thaw(frozen) == tree
    plain = thaw(frozen)
    for path, _ in iter_leaves(plain):
        if len(path) > 1:
            get_path(plain, path[:-1])[path[-1]] = "changed"
            assert get_path(frozen, path) != "changed" or get_path(tree, path) == "changed"
            break


def test_lists_replace_maps_merge_and_delete_removes():
    base = {"a": {"x": 1, "y": [1, 2, 3], "z": {"k": 1}}, "gone": 1}
    overlay = {"a": {"y": [9], "z": {"j": 2}}, "gone": DELETE}
    assert deep_merge(base, overlay) == {"a": {"x": 1, "y": [9], "z": {"k": 1, "j": 2}}}


def test_replace_marker_replaces_a_whole_map():
    base = {"cache": {"ttl": 1, "size": 2}}
    overlay = {"cache": {REPLACE: True, "ttl": 5}}
    assert freeze(deep_merge(base, overlay)) == {"cache": {"ttl": 5}}


def test_markers_with_nothing_below_them_disappear():
    assert freeze(deep_merge({}, {"a": {"b": DELETE, REPLACE: True, "c": 1}})) == {"a": {"c": 1}}


def test_frozen_tree_reads_like_a_dict_and_refuses_mutation():
    tree = freeze({"a": {"b": [1, {"c": 2}]}})
    assert isinstance(tree, dict) and isinstance(tree["a"]["b"], list)
    assert tree["a"]["b"][1]["c"] == 2
    assert json.loads(json.dumps(tree)) == {"a": {"b": [1, {"c": 2}]}}
    with pytest.raises(TypeError):
        tree["a"]["x"] = 1
    with pytest.raises(TypeError):
        tree["a"]["b"].append(3)
    with pytest.raises(TypeError):
        tree.update({"z": 1})
    mutable = copy.deepcopy(tree)
    mutable["a"]["b"].append(3)
    assert type(mutable["a"]) is dict and tree["a"]["b"] == [1, {"c": 2}]
    assert pickle.loads(pickle.dumps(tree)) == tree
    assert type(thaw(tree)["a"]) is dict


def test_diff_reports_changed_added_and_removed_leaves():
    old = freeze({"a": {"x": 1, "y": 2}, "l": [1], "flag": 1})
    new = {"a": {"x": 1, "z": 3}, "l": [1, 2], "flag": True}
    changes = {path: (o, n) for path, o, n in diff_trees(old, new)}
    assert changes == {"a.y": (2, None), "a.z": (None, 3), "l": ([1], [1, 2]), "flag": (1, True)}
    assert diff_trees(old, thaw(old)) == []


def _layers(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "audio:\n  bitrates:\n    premium: 256\n    free: 96\n  codecs: [aac]\nkeep: 1\n"
    )
    (tmp_path / "staging.json").write_text(
        '{\n  "audio": {\n    "bitrates": {\n      "premium": 320\n    }\n  },\n'
        '  "keep": "__delete__"\n}\n'
    )
    (tmp_path / "extra.toml").write_text('[audio.bitrates]\nfree = 128\n\n[other]\nname = "x"\n')
    return [
        read_config_file(str(tmp_path / n)) for n in ("base.yaml", "staging.json", "extra.toml")
    ]


def test_provenance_names_layer_file_and_line_in_every_format(tmp_path):
    layers = _layers(tmp_path)
    merged = freeze(deep_merge(deep_merge(layers[0].data, layers[1].data), layers[2].data))

    prem = explain(layers, "audio.bitrates.premium", merged)
    assert prem.found and prem.value == 320
    assert prem.winner.file.endswith("staging.json") and prem.winner.line == 4
    assert [o.value for o in prem.chain] == [320, 256]
    assert prem.chain[1].file.endswith("base.yaml") and prem.chain[1].line == 3

    free = explain(layers, "audio.bitrates.free", merged)
    assert free.value == 128 and free.winner.file.endswith("extra.toml") and free.winner.line == 2

    gone = explain(layers, "keep", merged)
    assert not gone.found and gone.winner.status == "deleted"
    assert gone.winner.file.endswith("staging.json") and gone.winner.line == 7
    assert "deleted by" in str(gone)

    missing = explain(layers, "nope.nothing", merged)
    assert not missing.found and missing.winner is None


def test_environment_layer_nests_matches_case_and_names_the_variable():
    below = {"music_streaming": {"audio_quality": {"bitrates": {"premium": 320}}}, "debug": False}
    environ = {
        "CFGCORE__MUSIC_STREAMING__AUDIO_QUALITY__BITRATES__PREMIUM": "256",
        "CFGCORE__DEBUG": "true",
        "CFGCORE__NEW__KEY": "[1, 2]",
        "OTHER": "x",
    }
    layer = env_layer(environ, "CFGCORE", below)
    merged = deep_merge(below, layer.data)
    assert merged["music_streaming"]["audio_quality"]["bitrates"]["premium"] == 256
    assert merged["debug"] is True and merged["new"]["key"] == [1, 2]
    prov = explain(
        [Layer("base", "base", below), layer],
        "music_streaming.audio_quality.bitrates.premium",
        merged,
    )
    assert prov.winner.env_var == "CFGCORE__MUSIC_STREAMING__AUDIO_QUALITY__BITRATES__PREMIUM"


def test_environment_layer_can_delete_a_key():
    below = {"cache": {"l2": {"url": "redis://x"}, "l1": {"ttl": 1}}}
    layer = env_layer({"CFGCORE__CACHE__L2": "__delete__"}, "CFGCORE", below)
    assert freeze(deep_merge(below, layer.data)) == {"cache": {"l1": {"ttl": 1}}}


def test_environment_layer_rejects_a_wrong_type_without_showing_the_value():
    below = {"db": {"port": 5432}}
    with pytest.raises(ConfigError) as err:
        env_layer({"CFGCORE__DB__PORT": "s3cr3t-value"}, "CFGCORE", below)
    text = str(err.value)
    assert "CFGCORE__DB__PORT" in text and "db.port" in text and "s3cr3t-value" not in text


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("320", 320),
        ("0.85", 0.85),
        ("true", True),
        ("null", None),
        ("on", "on"),
        ("0755", "0755"),
        ('{"a": 1}', {"a": 1}),
        ("[oops", "[oops"),
        ("hello", "hello"),
    ],
)
def test_environment_values_parse_like_yaml_1_2_scalars(raw, value):
    assert parse_env_value(raw) == value
    assert type(parse_env_value(raw)) is type(value)


def test_bad_files_name_the_file_and_line(tmp_path):
    bad_yaml = tmp_path / "base.yaml"
    bad_yaml.write_text("a:\n  b: 1\n  b: 2\n")
    with pytest.raises(ConfigError, match=r"base\.yaml:3"):
        read_config_file(str(bad_yaml))
    bad_json = tmp_path / "x.json"
    bad_json.write_text('{\n  "a": 1,\n  "b": \n}\n')
    with pytest.raises(ConfigError, match=r"x\.json:\d"):
        read_config_file(str(bad_json))
    bad_toml = tmp_path / "x.toml"
    bad_toml.write_text("a = 1\nb = = 2\n")
    with pytest.raises(ConfigError, match=r"x\.toml:2"):
        read_config_file(str(bad_toml))
    top_list = tmp_path / "list.yaml"
    top_list.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        read_config_file(str(top_list))
    with pytest.raises(ConfigError, match="unsupported"):
        read_config_file(str(tmp_path / "x.ini"))


def test_yaml_1_2_booleans_in_config_files(tmp_path):
    f = tmp_path / "base.yaml"
    f.write_text("variant: on\ncountry: NO\nenabled: true\n")
    assert read_config_file(str(f)).data == {"variant": "on", "country": "NO", "enabled": True}


def test_frozen_types_are_exported_subclasses():
    assert issubclass(FrozenDict, dict) and issubclass(FrozenList, list)


def test_environment_layer_keeps_numeric_looking_text_for_string_keys():
    # A version, a numeric password or an account id is text when the key below is text.
    below = {"app": {"version": "2.0.0", "name": "x"}, "db": {"password": "", "port": 5432}}
    environ = {
        "CFGCORE__APP__VERSION": "2.1",
        "CFGCORE__APP__NAME": "007",
        "CFGCORE__DB__PASSWORD": "123456",
        "CFGCORE__DB__PORT": "6432",
    }
    merged = deep_merge(below, env_layer(environ, "CFGCORE", below).data)
    assert merged["app"] == {"version": "2.1", "name": "007"}
    assert merged["db"] == {"password": "123456", "port": 6432}
    assert type(merged["db"]["port"]) is int


def test_environment_layer_refuses_to_turn_a_list_into_a_map():
    below = {"alerts": [{"name": "a", "severity": "critical"}, {"name": "b", "severity": "low"}]}
    with pytest.raises(ConfigError) as err:
        env_layer({"CFGCORE__ALERTS__0__SEVERITY": "warning"}, "CFGCORE", below)
    text = str(err.value)
    assert "CFGCORE__ALERTS__0__SEVERITY" in text and "alerts" in text and "list" in text


@pytest.mark.parametrize("levels", [500, 3000])
@pytest.mark.parametrize("ext", ["yaml", "json"])
def test_absurdly_deep_nesting_is_a_config_error_naming_the_file(tmp_path, ext, levels):
    f = tmp_path / f"base.{ext}"
    nested = "[" * levels + "]" * levels
    f.write_text(f"deep: {nested}\n" if ext == "yaml" else f'{{"deep": {nested}}}')
    with pytest.raises(ConfigError, match=r"base\.(yaml|json).*nest"):
        read_config_file(str(f))
