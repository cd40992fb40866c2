"""The compiled tree read path (cfgcore._tree) against its pure-Python reference.

Both the read-only containers and the manager's ``[]``/``get`` read side exist twice:
C types in ``cfgcore._tree`` and the reference in ``cfgcore.config.tree`` /
``cfgcore.config.view``. Every test here runs on both and they must agree.
"""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore._compat import env_flag
from cfgcore.config import tree as tree_mod
from cfgcore.config import view as view_mod
from cfgcore.config.state import ConfigSnapshot
from tests.fuzz import examples
from tests.texts import any_text

_tree = pytest.importorskip("cfgcore._tree", reason="the compiled extension is not built")

CONTAINERS = {
    "c": (_tree.FrozenDict, _tree.FrozenList),
    "py": (tree_mod.PyFrozenDict, tree_mod.PyFrozenList),
}
READS = {"c": (_tree.LiveReads, _tree.ABSENT), "py": (view_mod.PyLiveReads, view_mod.ABSENT)}

TREE = {"a": {"b": {"c": {"d": 42, "password": "hunter2"}, "f": [1, {"g": 2}]}}, "h": True}


def frozen(impl: str, value: Any) -> Any:
    fd, fl = CONTAINERS[impl]
    if isinstance(value, dict):
        return fd({k: frozen(impl, v) for k, v in value.items()})
    if isinstance(value, list):
        return fl([frozen(impl, v) for v in value])
    return value


@pytest.fixture(params=sorted(CONTAINERS))
def impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_live_containers_are_the_compiled_ones() -> None:
    if env_flag("CFGCORE_NO_EXTENSIONS"):
        # The documented switch: the reference containers, even where these are built.
        assert tree_mod.FrozenDict is not _tree.FrozenDict
        assert type(tree_mod.freeze(TREE)["a"]["b"]["f"]) is not _tree.FrozenList
        return
    # CI builds the extension: the tree the manager serves must use the fast types.
    assert tree_mod.FrozenDict is _tree.FrozenDict
    assert type(tree_mod.freeze(TREE)["a"]["b"]["f"]) is _tree.FrozenList
    assert view_mod.LiveReads is _tree.LiveReads


DICT_MUTATIONS = [
    lambda d: d.__setitem__("x", 1),
    lambda d: d.__delitem__("h"),
    lambda d: d.clear(),
    lambda d: d.pop("h"),
    lambda d: d.pop("nope", None),
    lambda d: d.popitem(),
    lambda d: d.setdefault("x", 1),
    lambda d: d.update(x=1),
    lambda d: d.update({"x": 1}),
    lambda d: d.__ior__({"x": 1}),
]
LIST_MUTATIONS = [
    lambda s: s.__setitem__(0, 9),
    lambda s: s.__setitem__(slice(0, 1), [9]),
    lambda s: s.__delitem__(0),
    lambda s: s.append(3),
    lambda s: s.extend([3]),
    lambda s: s.insert(0, 3),
    lambda s: s.pop(),
    lambda s: s.remove(1),
    lambda s: s.clear(),
    lambda s: s.sort(),
    lambda s: s.reverse(),
    lambda s: s.__iadd__([3]),
    lambda s: s.__imul__(2),
]


@pytest.mark.parametrize("mutate", DICT_MUTATIONS)
def test_every_dict_mutation_raises_and_changes_nothing(impl: str, mutate: Any) -> None:
    d = frozen(impl, TREE)
    with pytest.raises(TypeError, match="read-only"):
        mutate(d)
    assert d == TREE


@pytest.mark.parametrize("mutate", LIST_MUTATIONS)
def test_every_list_mutation_raises_and_changes_nothing(impl: str, mutate: Any) -> None:
    s = frozen(impl, [1, 2])
    with pytest.raises(TypeError, match="read-only"):
        mutate(s)
    assert s == [1, 2]


def test_calling_init_again_changes_nothing(impl: str) -> None:
    # dict.__init__ updates and list.__init__ clears and refills an existing object: a
    # read-only container is filled when it is made, and a later __init__ is inert.
    d = frozen(impl, TREE)
    d.__init__({"h": False, "x": 1})
    d.__init__(h=False)
    assert d == TREE
    s = frozen(impl, [1, 2])
    s.__init__([9])
    s.__init__()
    assert s == [1, 2]
    fd, fl = CONTAINERS[impl]
    assert fd({"a": 1}, b=2) == {"a": 1, "b": 2} and fd() == {} and fd(a=1) == {"a": 1}
    assert fl((1, 2)) == [1, 2] and fl() == [] and fl(iter("ab")) == ["a", "b"]
    with pytest.raises(TypeError):
        fl(1, 2)


def test_reads_copies_and_serialisation_behave_like_plain_containers(impl: str) -> None:
    fd, fl = CONTAINERS[impl]
    d = frozen(impl, TREE)
    assert isinstance(d, dict) and isinstance(d["a"]["b"]["f"], list)
    assert d["a"]["b"]["c"]["d"] == 42 and d.get("nope", 7) == 7 and "h" in d
    assert d["a"]["b"]["f"][1]["g"] == 2 and d["a"]["b"]["f"][-1:] == [{"g": 2}]
    with pytest.raises(KeyError):
        d["nope"]
    assert json.loads(json.dumps(d)) == TREE
    back = pickle.loads(pickle.dumps(d))
    # Unpickling rebuilds the live type (what this process serves).
    assert back == TREE and type(back) is tree_mod.FrozenDict
    thawed = copy.deepcopy(d)
    assert type(thawed) is dict and type(thawed["a"]["b"]["f"]) is list and thawed == TREE
    thawed["a"]["b"]["c"]["d"] = 1  # a thawed copy is mutable and detached
    assert d["a"]["b"]["c"]["d"] == 42
    assert type(copy.copy(d)) is dict and type(copy.copy(d["a"]["b"]["f"])) is list
    assert "hunter2" not in repr(d) and "hunter2" not in repr(fl([d]))
    assert "'d': 42" in repr(d)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | any_text(max_size=5),
        lambda kids: (
            st.lists(kids, max_size=3) | st.dictionaries(any_text(max_size=3), kids, max_size=3)
        ),
        max_leaves=12,
    )
)
@settings(max_examples=examples(150), deadline=None)
def test_both_implementations_freeze_to_equal_trees(value: Any) -> None:
    c, py = frozen("c", value), frozen("py", value)
    assert c == py == value
    assert repr(c) == repr(py)
    assert pickle.loads(pickle.dumps(c)) == pickle.loads(pickle.dumps(py)) == value


# -- the manager's read side ------------------------------------------------------------------


def reader(impl: str, config: Any, version: int = 1) -> Any:
    """A minimal read side over ``config``: the manager's own slow path on either base."""
    base, absent = READS[impl]

    class Reader(base):  # type: ignore[misc, valid-type]
        loads = 0

        def _ensure_loaded(self) -> ConfigSnapshot:
            self.loads += 1
            self._snap = snapshot(config, 1)
            return self._snap

        def _get_slow(self, key: Any, default: Any) -> Any:
            try:
                snap = self._snap if self._snap.version else self._ensure_loaded()
                value = tree_mod.get_path(snap.config, tree_mod.split_path(key), absent)
                snap.flat[key] = value
            except Exception:
                return default
            return default if value is absent else value

    r = Reader()
    r._snap = snapshot(config, version)
    return r


def snapshot(config: Any, version: int) -> ConfigSnapshot:
    return ConfigSnapshot(
        config=tree_mod.freeze(config), layers=(), version=version, environment="test",
        profile=None, geographic_profile=None, files=(), flags_file=None, fingerprint=(),
        sources=(), loaded_at=0.0,
    )  # fmt: skip


KEYS = st.one_of(
    st.sampled_from(["a", "a.b", "a.b.c.d", "a.b.f.1.g", "a.b.f.9", "h", "", "nope", "a..b"]),
    any_text(max_size=6),
    st.integers(),
    st.lists(st.integers(), max_size=2),
    st.none(),
)


def outcome(fn: Any, *args: Any) -> Any:
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return ("raised", type(exc).__name__)


@given(st.lists(KEYS, max_size=8))
@settings(max_examples=examples(200), deadline=None)
def test_get_and_getitem_agree_between_implementations(keys: list[Any]) -> None:
    readers = {impl: reader(impl, TREE) for impl in READS}
    for key in keys + keys:  # the second pass reads the cache the first pass filled
        got = {impl: outcome(r.get, key, "dflt") for impl, r in readers.items()}
        assert got["c"] == got["py"]
        assert got["c"][0] == "ok"  # get never raises
        got = {impl: outcome(r.__getitem__, key) for impl, r in readers.items()}
        assert got["c"] == got["py"]


def test_reads_load_on_first_use_and_follow_each_published_snapshot(impl: str) -> None:
    r = reader(impl, {"x": 1}, version=0)  # nothing loaded yet
    assert r["x"] == 1 and r.loads == 1
    assert r.get("x") == 1 and r.loads == 1
    r._snap = snapshot({"x": 2, "y": {"z": 3}}, 2)
    assert r["x"] == 2 and r.get("y.z") == 3 and r.get("x") == 2
    assert r._snap.version == 2 and r.loads == 1


def test_a_snapshot_without_a_dict_read_cache_is_refused_by_the_compiled_base() -> None:
    r = reader("c", TREE)
    bad = snapshot(TREE, 3)
    object.__setattr__(bad, "flat", None)
    with pytest.raises(TypeError):
        r._snap = bad
    assert r._snap.version == 1 and r.get("h") is True  # the last good snapshot stays


def test_keys_read_from_files_are_interned(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A YAML file's keys are new string objects; interning them lets a lookup with a
    # literal match by identity. The values read are the same either way: this checks
    # that the tree the manager serves holds the interned objects.
    import sys

    from cfgcore import _names
    from cfgcore.config.manager import ConfigurationManager

    # Where interning is bounded (CPython 3.12), a budget this session has not spent.
    monkeypatch.setattr(_names, "_made", {})

    (tmp_path / "base.yaml").write_text("audio:\n  bitrate_kbps: 320\n  codec_x9: opus\n")
    (tmp_path / "staging.yaml").write_text("{}\n")
    config = ConfigurationManager(tmp_path, environ={}, validate=False)
    config.load_environment_config("staging")
    audio = config["audio"]
    for key in audio:
        assert key is sys.intern("".join(key)), key
    assert next(iter(config._snap.config)) is sys.intern("audio")
    built = "".join(["cod", "ec_y"])
    new_tree = tree_mod.assoc(config._snap.config, ("audio", built), 1)
    assert any(k is sys.intern("codec_y") for k in new_tree["audio"])
    assert tree_mod.freeze({built: {built: 1}}) == {"codec_y": {"codec_y": 1}}
    assert all(k is sys.intern("codec_y") for k in tree_mod.freeze({built: 1}))


def test_a_missing_top_level_key_raises_the_subclass_error_on_both_bases(impl: str) -> None:
    """``manager["nope"]`` asks the read side's ``_missing`` for its KeyError (the
    manager's names the key, the environment and near matches); other errors stay."""

    class Named(KeyError):
        pass

    r = reader(impl, {"server": {"port": 80}})
    r._missing = lambda key: Named(f"no {key!r}")  # type: ignore[method-assign]
    with pytest.raises(Named, match="no 'serverr'"):
        r["serverr"]
    with pytest.raises(TypeError):
        r[["unhashable"]]
    assert r["server"]["port"] == 80


def test_the_manager_names_a_missing_key_and_its_near_matches(tmp_path: Any) -> None:
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.errors import ConfigKeyError

    (tmp_path / "base.yaml").write_text("server:\n  port: 80\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environ={}, validate=False)
    with pytest.raises(ConfigKeyError) as err:
        m["serverr"]
    assert isinstance(err.value, KeyError)
    assert "serverr" in str(err.value) and "did you mean 'server'" in str(err.value)


# -- the read-only surface README documents, on values the public API serves ------------------


def _served(tmp_path: Any) -> list[Any]:
    """An object value and an array value served by a ConfigurationManager and by an
    Engine (the live containers, whichever implementation this process runs)."""
    from cfgcore import ConfigurationManager, Engine

    (tmp_path / "base.yaml").write_text("a: {b: [1, {c: 2}], h: true}\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={}, validate=False)
    m.load_environment_config()
    engine = Engine.from_bytes(
        b"flags:\n  obj: {default: a, variants: {a: {b: [1, {c: 2}], h: true}}}\n", format="yaml"
    )
    return [m.get("a"), engine.value("obj", {})]


@pytest.mark.parametrize("mutate", DICT_MUTATIONS + LIST_MUTATIONS)
def test_served_values_refuse_every_mutating_method(tmp_path: Any, mutate: Any) -> None:
    for value in _served(tmp_path):
        target = value if mutate in DICT_MUTATIONS else value["b"]
        with pytest.raises(TypeError, match="read-only"):
            mutate(target)
        assert value == {"b": [1, {"c": 2}], "h": True}


def test_copies_and_pickles_of_served_values_protect_the_served_one(tmp_path: Any) -> None:
    for value in _served(tmp_path):
        shallow = copy.copy(value)
        shallow["h"] = False  # a plain dict on top ...
        with pytest.raises(TypeError, match="read-only"):
            shallow["b"].append(3)  # ... whose nested objects are the served, read-only ones
        deep = copy.deepcopy(value)
        deep["b"][1]["c"] = 3  # plain all through, and detached
        loaded = pickle.loads(pickle.dumps(value))
        with pytest.raises(TypeError, match="read-only"):
            loaded["b"][1]["c"] = 3
        assert value == loaded == {"b": [1, {"c": 2}], "h": True}
