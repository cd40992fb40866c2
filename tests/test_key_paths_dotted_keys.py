"""Keys that hold a dot are reachable by a key path of segments, and shown quoted.

A configuration key may hold a dot (a Python logging ``dictConfig`` logger name
``uvicorn.access``, a hostname, a Java-style property name): YAML, TOML and JSON load
it, and ``cfg["loggers"]["uvicorn.access"]`` reads it, but a dotted key path splits on
every dot, so ``get("loggers.uvicorn.access.level")`` names another path. Key paths now
also take a tuple (or list) of segments, on both read implementations (the compiled
``cfgcore._tree.LiveReads`` and ``cfgcore.config.view.PyLiveReads``); a dotted text
keeps its meaning (``update_config("c.d", v)`` nests). Where cfgcore shows a key path
(errors, ``explain``, change events, the audit log) such a segment is quoted:
``loggers["uvicorn.access"].level``. A ``CFGCORE__`` variable whose name holds a dot is
refused, naming the spelling meant. Real files in ``tmp_path``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config import checks
from cfgcore.config import tree as tree_mod
from cfgcore.config import view as view_mod
from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.state import ConfigSnapshot
from cfgcore.errors import ConfigError, ConfigKeyError
from cfgcore.runtime.audit import AuditLog
from cfgcore.validation.core import ValidationRule, join_path
from tests.fuzz import examples

_tree = pytest.importorskip("cfgcore._tree", reason="the compiled extension is not built")

READS = {"c": _tree.LiveReads, "py": view_mod.PyLiveReads}


def reader(impl: str, config: Any) -> Any:
    """The manager's read side over ``config`` on either base: its own slow path
    (``ConfigView._get_slow``, which resolves a key and fills the read cache)."""

    class Reader(READS[impl]):  # type: ignore[misc, valid-type]
        _get_slow = view_mod.ConfigView.__dict__["_get_slow"]

        def _ensure_loaded(self) -> ConfigSnapshot:
            return self._snap

    r = Reader()
    r._snap = ConfigSnapshot(
        config=tree_mod.freeze(config), layers=(), version=1, environment="test",
        profile=None, geographic_profile=None, files=(), flags_file=None, fingerprint=(),
        sources=(), loaded_at=0.0,
    )  # fmt: skip
    return r


def leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...], Any]]:
    """Every (segments, value) below ``node``: list items by their int index."""
    if isinstance(node, dict) and node:
        return [pair for k, v in node.items() for pair in leaves(v, (*path, k))]
    if isinstance(node, list) and node:
        return [pair for i, v in enumerate(node) for pair in leaves(v, (*path, i))]
    return [(path, node)]


def chain(tree: Any, path: tuple[Any, ...]) -> Any:
    node = tree
    for seg in path:
        node = node[seg]
    return node


# Keys as files hold them: dots, brackets, quotes, digits, empty, plain words.
KEYS = st.one_of(
    st.sampled_from(["a", "b", "uvicorn.access", "a.b.c", ".", "", "0", "x[0]", 'q"', "1.5"]),
    st.text(alphabet='ab.[]"\\0', max_size=5),
)
TREES = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(KEYS, kids, max_size=4),
    max_leaves=16,
).filter(lambda t: isinstance(t, dict))


@given(TREES)
@settings(max_examples=examples(200), deadline=None)
def test_every_leaf_is_reachable_by_its_segments_on_both_implementations(config: Any) -> None:
    readers = {impl: reader(impl, config) for impl in READS}
    served = readers["c"]._snap.config
    for _pass in range(2):  # the second pass reads what the first put in the cache
        for path, value in leaves(config):
            want = chain(served, path)
            assert want == value
            texts = tuple(str(seg) for seg in path)  # list indices as digits, as in "a.0"
            for impl, r in readers.items():
                for key in (path, list(path), texts, list(texts)):
                    got = r.get(key, "<default>")
                    assert got == want and type(got) is type(want), (impl, key)
    # and a path that is not there answers the default on both
    for r in readers.values():
        assert r.get(("<nope>", "x"), "d") == "d" and r.get(["<nope>"], "d") == "d"


@given(st.lists(st.one_of(KEYS, st.integers(0, 20)), max_size=6))
@settings(max_examples=examples(300), deadline=None)
def test_a_rendered_key_path_reads_back_as_its_segments(path: list[Any]) -> None:
    shown = tree_mod.format_path(path)
    assert tree_mod.parse_path(shown) == tuple(str(seg) for seg in path)
    if all(isinstance(s, int) or (s and "." not in s and "[" not in s) for s in path):
        assert shown == ".".join(map(str, path))  # a plain path is shown as before


@pytest.mark.parametrize("impl", sorted(READS))
def test_equal_but_different_segments_do_not_share_a_cached_answer(impl: str) -> None:
    # The read cache compares keys with ==: ("l", True) == ("l", 1) == ("l", 1.0).
    # True and 1.0 index no list; the answer cached for them was served for 1.
    r = reader(impl, {"l": [10, 20], "m": {"1": "one"}})
    assert r.get(("l", True), "d") == "d" and r.get(("l", 1.0), "d") == "d"
    assert r.get(("l", 1)) == 20 and r.get(("l", "1")) == 20
    assert r.get(("m", 1), "d") == "d" and r.get(("m", "1")) == "one"


@pytest.mark.parametrize("impl", sorted(READS))
def test_a_path_of_hostile_segments_answers_the_default(impl: str) -> None:
    class Unhashable(str):
        __hash__ = None  # type: ignore[assignment]

    class Raises:
        def __hash__(self) -> int:
            raise ValueError("no")

    r = reader(impl, {"a": {"b": 1}})
    assert r.get(("a", [1]), "d") == "d"
    assert r.get(("a", Raises()), "d") == "d"
    assert r.get(["a", Unhashable("b")]) == 1  # a str subclass is read as its text
    assert r.get("a.b") == 1  # the dotted text path is unchanged


# -- the manager, from real files -------------------------------------------------------------

YAML = """\
loggers:
  root: {level: WARNING}
  "uvicorn.access":
    level: INFO
    handlers: [console]
hosts:
  db.internal: {port: 5432}
"""
TOML = """\
[tool]
"a.b" = 1
plain = 2
"""
JSON = '{"props": {"spring.datasource.url": "jdbc:x", "list": [{"k.v": 7}]}}'


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text(YAML)
    (d / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(
        str(d), environment="development", environ={}, validate=False, record_usage=False,
        audit_log=str(tmp_path / "audit.jsonl"),
    )  # fmt: skip
    m.load_environment_config()
    yield m
    m.close()


@pytest.mark.parametrize(
    ("name", "text", "path", "want"),
    [
        ("base.yaml", YAML, ("loggers", "uvicorn.access", "level"), "INFO"),
        ("base.yaml", YAML, ["loggers", "uvicorn.access", "handlers", 0], "console"),
        ("base.yaml", YAML, ("hosts", "db.internal", "port"), 5432),
        ("base.toml", TOML, ("tool", "a.b"), 1),
        ("base.json", JSON, ("props", "spring.datasource.url"), "jdbc:x"),
        ("base.json", JSON, ("props", "list", "0", "k.v"), 7),
    ],
)
def test_keys_holding_dots_are_read_by_segments_from_every_format(
    tmp_path, monkeypatch, name, text, path, want
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / name).write_text(text)
    (d / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(str(d), environment="development", environ={}, validate=False)
    try:
        m.load_environment_config()
        assert m.get(path) == want and m.get(tuple(path)) == want
        assert m.get(".".join(map(str, path))) is None  # a dotted text splits on every dot
        assert m.section(path[:-1])[path[-1]] == want
        prov = m.explain(path)
        assert prov.found and prov.value == want
        assert prov.winner is not None and prov.winner.file == str(d / name)
        assert prov.winner.line is not None
        assert prov.key == tree_mod.format_path(path)
        assert '["' in prov.key  # the dotted segment is shown quoted
    finally:
        m.close()


def test_explain_shows_the_dotted_key_quoted_with_its_line(manager):
    prov = manager.explain(("loggers", "uvicorn.access", "level"))
    assert prov.key == 'loggers["uvicorn.access"].level'
    assert prov.winner.line == 4
    assert str(prov).startswith("loggers[\"uvicorn.access\"].level = 'INFO'")


def test_a_missing_path_of_segments_is_named_quoted(manager):
    with pytest.raises(ConfigKeyError) as err:
        manager.section(("loggers", "uvicorn.acces"))
    assert 'loggers["uvicorn.acces"]: not set' in str(err.value)
    assert "did you mean 'loggers[\"uvicorn.access\"]'" in str(err.value)


def test_update_config_by_segments_sets_the_dotted_key(manager):
    events: list = []
    manager.register_change_listener(events.append)
    assert manager.update_config(("loggers", "uvicorn.access", "level"), "DEBUG") is True
    assert manager["loggers"]["uvicorn.access"]["level"] == "DEBUG"
    assert manager.get(["loggers", "uvicorn.access", "level"]) == "DEBUG"
    assert "uvicorn" not in manager["loggers"]  # not nested under "uvicorn"
    assert [(e.config_path, e.old_value, e.new_value) for e in events] == [
        ('loggers["uvicorn.access"].level', "INFO", "DEBUG")
    ]
    entry = [e for e in AuditLog.read(manager.audit.path) if e.get("kind") == "change"][-1]
    assert entry["path"] == 'loggers["uvicorn.access"].level'
    # explain names the runtime update, and the update survives a reload
    assert manager.explain(("loggers", "uvicorn.access", "level")).winner.kind == "runtime"
    assert manager.reload() is True
    assert manager["loggers"]["uvicorn.access"]["level"] == "DEBUG"


def test_a_dotted_text_key_path_still_nests(manager):
    assert manager.update_config("c.d", 1) is True
    assert manager["c"] == {"d": 1} and "c.d" not in manager
    assert manager.update_config(["e.f"], 2) is True  # one segment holding a dot
    assert manager["e.f"] == 2 and "e" not in manager


@pytest.mark.parametrize(
    "bad",
    [(), [], ("loggers", 0), ("loggers", None), ("a", ""), {"a": 1}, ("a", b"b")],
    ids=repr,
)
def test_update_config_refuses_a_path_that_is_not_text_segments(manager, bad):
    version = manager.version
    assert manager.update_config(bad, 1) is False
    assert isinstance(manager.last_error, ConfigError)
    assert "key path" in str(manager.last_error)
    assert manager.version == version


def test_the_access_policy_judges_a_path_of_segments_as_its_dotted_text(tmp_path, manager):
    from cfgcore.runtime import policy

    path = tmp_path / "policy.yaml"
    path.write_text(
        "roles:\n  loggers:\n    config.update: ['loggers.*']\nactors:\n  ops: [loggers]\n"
    )
    policy.set_policy(path)
    try:
        assert manager.update_config(("loggers", "uvicorn.access", "level"), "DEBUG", actor="ops")
        with pytest.raises(PermissionError):
            manager.update_config(("hosts", "db.internal", "port"), 1, actor="ops")
    finally:
        policy.set_policy(None)
    assert manager["hosts"]["db.internal"]["port"] == 5432


def test_a_refused_value_names_the_dotted_key_quoted(manager):
    assert manager.update_config(("hosts", "db.internal", "port"), float("nan")) is False
    assert 'hosts["db.internal"].port' in str(manager.last_error)


def test_validation_problems_under_a_dotted_key_name_its_line(manager):
    snap = manager.snapshot
    shown = join_path(join_path("loggers", "uvicorn.access"), "level")
    assert shown == 'loggers["uvicorn.access"].level'
    found = checks.problem(shown, "bad level", snap.layers, snap.config)
    assert found.file is not None and found.file.endswith("base.yaml")
    assert found.line == 4
    rule = ValidationRule("custom.level", key_path=("loggers", "uvicorn.access", "level"))
    assert rule.create_result(False, "x").key_path == shown
    assert rule.create_result(False, "x", key_path=["hosts", "db.internal"]).key_path == (
        'hosts["db.internal"]'
    )


# -- CFGCORE__ variables ------------------------------------------------------------------------


def test_a_cfgcore_variable_with_a_dot_in_its_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("server: {port: 80}\n")
    (d / "development.yaml").write_text("{}\n")
    environ = {"CFGCORE__SERVER.PORT": "1"}
    m = ConfigurationManager(str(d), environment="development", environ=environ, validate=False)
    try:
        with pytest.raises(ConfigError) as err:
            m.load_environment_config()
        text = str(err.value)
        assert "CFGCORE__SERVER.PORT" in text and "CFGCORE__SERVER__PORT" in text
        assert m.version == 0
        environ["CFGCORE__SERVER__PORT"] = environ.pop("CFGCORE__SERVER.PORT")
        assert m.load_environment_config()["server"]["port"] == 1
    finally:
        m.close()


def test_a_dotted_variable_deeper_down_names_its_spelling_too(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "development.yaml").write_text(json.dumps({"loggers": {"uvicorn.access": {"l": 1}}}))
    environ = {"CFGCORE__LOGGERS__UVICORN.ACCESS__L": "2"}
    m = ConfigurationManager(str(d), environment="development", environ=environ, validate=False)
    try:
        with pytest.raises(ConfigError, match="CFGCORE__LOGGERS__UVICORN__ACCESS__L"):
            m.load_environment_config()
    finally:
        m.close()


# -- the command line ---------------------------------------------------------------------------


def test_the_cli_reads_a_dotted_key_written_as_errors_show_it(tmp_path, monkeypatch, capsys):
    from tests.conftest import run_cli

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text(YAML + "db:\n  conn.password: hunter2\n")
    (d / "staging.yaml").write_text("{}\n")
    common = ("--config-dir", str(d), "-e", "staging", "--no-validate")
    code, out, _ = run_cli(capsys, "get", 'loggers["uvicorn.access"].level', *common)
    assert (code, out) == (0, "INFO\n")
    code, out, _ = run_cli(capsys, "get", 'loggers["uvicorn.access"]', *common)
    assert code == 0 and json.loads(out) == {"level": "INFO", "handlers": ["console"]}
    code, out, _ = run_cli(capsys, "explain", 'hosts["db.internal"].port', *common)
    assert code == 0 and out.startswith('hosts["db.internal"].port = 5432')
    code, out, _ = run_cli(capsys, "get", 'db["conn.password"]', *common)
    assert code == 0 and "hunter2" not in out  # still redacted
    code, out, _ = run_cli(capsys, "get", "loggers.root.level", *common)  # plain paths as before
    assert (code, out) == (0, "WARNING\n")
    code, _, err = run_cli(capsys, "get", "loggers.uvicorn.access.level", *common)
    assert code == 1 and "did you mean 'loggers[\"uvicorn.access\"].level'" in err


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ('loggers:\n  "uvicorn.access":\n    level: INFO\n    level: DEBUG\n',
         'loggers["uvicorn.access"].level'),
        ('hosts:\n  "db.internal": !!int abc\n', 'hosts["db.internal"]'),
        ('"a.b":\n  - x\n  - {"": 1, "": 2}\n', '["a.b"].1[""]'),
    ],
)  # fmt: skip
def test_yaml_reader_errors_quote_a_key_holding_a_dot(text, path):
    # The YAML reader's own refusals (a repeated key, a value its tag refuses) name
    # the key path as every other error does, not "loggers.uvicorn.access.level".
    from cfgcore.yamlio import load_yaml

    with pytest.raises(ConfigError) as err:
        load_yaml(text, file="c.yaml")
    assert [p.path for p in err.value.problems] == [path]
