"""The layered build against an independent reference model of the documented merge.

README ("Key paths", "What is refused") and docs/configuration.md state the rules: layers
base < environment < deployment profile < geographic profile < ``CFGCORE__`` variables <
runtime updates; maps merge key by key, lists and scalars replace, the value
``__delete__`` removes its key (``\\__delete__`` stores the text, one backslash fewer),
``__replace__: true`` replaces the map below instead of merging into it and is never a
key of the served tree, and an empty value over a section below is refused. The model
below implements those sentences on plain dicts, knowing nothing of cfgcore's merge, and
remembers which layer put each value where; the tests build real files (YAML written
here, one key a line, so the model knows every key's line) through a real
``ConfigurationManager`` and compare the served tree and ``explain`` with the model.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.tree import thaw
from cfgcore.errors import ConfigError
from tests.fuzz import examples

DELETE = "__delete__"
REPLACE = "__replace__"

# ------------------------------------------------------------------ the reference model


def unescape(text: str) -> str:
    """A text of backslashes followed by ``__delete__`` loses one backslash."""
    head = text[: len(text) - len(DELETE)]
    if text.endswith(DELETE) and head and set(head) == {"\\"}:
        return text[1:]
    return text


def served(value: Any) -> Any:
    """A value inserted where nothing merges with it, as it is served."""
    if isinstance(value, dict):
        return {k: served(v) for k, v in value.items() if k != REPLACE and v != DELETE}
    if isinstance(value, list):
        return [served(v) for v in value]
    if isinstance(value, str):
        return unescape(value)
    return value


class Model:
    """The served tree, and which layer (an index) last set each key path."""

    def __init__(self) -> None:
        self.tree: dict[str, Any] = {}
        self.origin: dict[tuple[Any, ...], int] = {}

    def _forget(self, path: tuple[Any, ...]) -> None:
        for p in [p for p in self.origin if p[: len(path)] == path]:
            del self.origin[p]

    def _mark(self, path: tuple[Any, ...], value: Any, layer: int) -> None:
        self.origin[path] = layer
        if isinstance(value, dict):
            for k, v in value.items():
                self._mark((*path, k), v, layer)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self._mark((*path, str(i)), v, layer)

    def merge(self, overlay: dict[str, Any], layer: int, *, file_layer: bool = True) -> None:
        """Merge one layer; raises ``Refused`` for an empty value over a section."""
        if file_layer:
            self._check_nulls(self.tree, overlay)
        self._merge(self.tree, overlay, (), layer)

    def _check_nulls(self, below: dict[str, Any], overlay: dict[str, Any]) -> None:
        for k, v in overlay.items():
            under = below.get(k)
            if isinstance(under, dict) and under:
                if v is None:
                    raise Refused(k)
                if isinstance(v, dict):
                    self._check_nulls(under, v)

    def _merge(
        self, node: dict[str, Any], overlay: dict[str, Any], at: tuple[Any, ...], layer: int
    ) -> None:
        for k, v in overlay.items():
            if k == REPLACE:
                continue
            path = (*at, k)
            if v == DELETE:
                node.pop(k, None)
                self._forget(path)
                continue
            below = node.get(k)
            if isinstance(v, dict) and isinstance(below, dict) and v.get(REPLACE) is not True:
                self.origin[path] = layer
                self._merge(below, v, path, layer)
            else:
                self._forget(path)
                node[k] = served(v)
                self._mark(path, node[k], layer)

    def set(self, path: tuple[str, ...], value: Any, layer: int) -> bool:
        """``update_config(path, value)``: exactly ``value`` at ``path``; False when an
        ancestor is a value that is no map."""
        node: Any = self.tree
        for seg in path[:-1]:
            node = node.get(seg) if isinstance(node, dict) else None
            if node is not None and not isinstance(node, dict):
                return False
        node = self.tree
        for i, seg in enumerate(path[:-1]):
            nxt = node.get(seg)
            if nxt is None:
                nxt = node[seg] = {}
                self._forget(path[: i + 1])
            self.origin[path[: i + 1]] = layer  # (the top layer naming a map: its winner)
            node = nxt
        last = path[-1]
        self._forget(path)
        if value == DELETE:
            node.pop(last, None)
        else:
            node[last] = served(value)
            self._mark(path, node[last], layer)
        return True

    def leaves(self) -> list[tuple[tuple[Any, ...], Any]]:
        out: list[tuple[tuple[Any, ...], Any]] = []

        def walk(value: Any, path: tuple[Any, ...]) -> None:
            if isinstance(value, dict) and value:
                for k, v in value.items():
                    walk(v, (*path, k))
            elif isinstance(value, list) and value:
                for i, v in enumerate(value):
                    walk(v, (*path, str(i)))
            else:
                out.append((path, value))

        walk(self.tree, ())
        return out


class Refused(Exception):
    pass


# ------------------------------------------------------------------ files with known lines


def emit(tree: dict[str, Any], indent: int = 0) -> tuple[list[str], dict[tuple[Any, ...], int]]:
    """Block YAML, one key a line, lists in flow style on their key's line; and the
    1-based line of every key path (a path into a list: its key's line)."""
    lines: list[str] = []
    where: dict[tuple[Any, ...], int] = {}

    def walk(node: dict[str, Any], depth: int, prefix: tuple[Any, ...]) -> None:
        for k, v in node.items():
            key = json.dumps(k, ensure_ascii=False)
            path = (*prefix, k)
            where[path] = len(lines) + 1
            pad = " " * (indent + 2 * depth)
            if isinstance(v, dict) and v:
                lines.append(f"{pad}{key}:")
                walk(v, depth + 1, path)
            else:
                lines.append(f"{pad}{key}: {json.dumps(v, ensure_ascii=False)}")

    walk(tree, 0, ())
    return lines, where


def line_of(where: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int:
    for end in range(len(path), 0, -1):
        if path[:end] in where:
            return where[path[:end]]
    raise AssertionError(path)


# ------------------------------------------------------------------ strategies

# Key names a platform's files hold: dots, unicode, empty, numeric-looking, upper case,
# the marker's text (an ordinary key), spaces. Non-string keys are refused by the reader.
_ODD_KEYS = ["a", "b", "A", "x.y", "", "0", "1", "01", "é", "日本", DELETE, "k k", "[0]"]
keys = st.one_of(
    st.sampled_from(["a", "b"]),  # shared by the layers: most keys merge with one below
    st.sampled_from(_ODD_KEYS),
    st.text(
        st.characters(
            blacklist_categories=("Cs", "Cc", "Co", "Cn", "Zl", "Zp"),
            blacklist_characters="\ufeff\ufffe\uffff<",
        ),
        max_size=3,
    ),
)
texts = st.one_of(
    st.sampled_from([DELETE, "\\" + DELETE, "\\\\" + DELETE, "x", "", "1", "true", "null"]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Co", "Cn")), max_size=4).filter(
        lambda t: "$" not in t and "\ufeff" not in t and "\ufffe" not in t and "\uffff" not in t
    ),
)
scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.none(),
    st.sampled_from([0.5, -1.25, 3.0]),
    texts,
)
list_items = st.one_of(scalars, st.dictionaries(st.sampled_from(["a", "b", DELETE]), scalars))
values = st.recursive(
    st.one_of(scalars, st.lists(list_items, max_size=3)),
    lambda inner: st.builds(
        lambda d, r: {**d, REPLACE: r} if r is not None else d,
        st.dictionaries(keys, inner, max_size=3),
        st.one_of(st.none(), st.booleans()),
    ),
    max_leaves=8,
)
layer_trees = st.dictionaries(keys, values, max_size=4)


# ------------------------------------------------------------------ the build

PROFILE_KINDS = {"deployment": "dep", "geographic": "geo"}


def write_layers(tmp: str, layers: list[dict[str, Any]]) -> list[dict[tuple[Any, ...], int]]:
    """base.yaml, development.yaml, profiles/dep.yaml, profiles/geo.yaml."""
    wheres = []
    os.makedirs(os.path.join(tmp, "profiles"), exist_ok=True)
    names = ["base.yaml", "development.yaml", "profiles/dep.yaml", "profiles/geo.yaml"]
    for i, (name, tree) in enumerate(zip(names, layers, strict=True)):
        if i < 2:
            body, where = emit(tree)
            text = "\n".join(body) + "\n" if body else "{}\n"
        else:
            kind = "deployment" if i == 2 else "geographic"
            body, where = emit(tree, indent=2)
            head = [f"kind: {kind}", "overrides:" if body else "overrides: {}"]
            where = {p: n + len(head) for p, n in where.items()}
            text = "\n".join(head + body) + "\n"
        with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
            f.write(text)
        wheres.append(where)
    return wheres


def manager(tmp: str, environ: dict[str, str] | None = None) -> ConfigurationManager:
    return ConfigurationManager(
        tmp,
        environ=environ or {},
        profile="dep",
        geographic_profile="geo",
        validate=False,
        flags_file=os.path.join(tmp, "no-flags.json"),
    )


KIND = ["base", "environment", "deployment_profile", "geographic_profile"]


def check_explain(m: ConfigurationManager, model: Model, wheres: list[Any], files: list[str]):
    for path, value in model.leaves():
        if not path:
            continue
        assert m.get(path) == value or (value != value), path
        got = m.explain(path)
        assert got.found, path
        layer = model.origin[path]
        winner = got.winner
        assert winner is not None, path
        assert winner.status == "set", (path, winner)
        assert winner.value == value, (path, winner, value)
        if layer == RUNTIME:
            assert winner.kind == "runtime", (path, winner)
            continue
        assert winner.kind == KIND[layer], (path, winner, layer)
        assert winner.file is not None and os.path.samefile(winner.file, files[layer])
        assert winner.line == line_of(wheres[layer], path), (path, winner)


RUNTIME = 99


@settings(max_examples=examples(60), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=st.lists(layer_trees, min_size=4, max_size=4))
def test_files_and_profiles_merge_as_documented(tmp_path_factory, layers):
    tmp = str(tmp_path_factory.mktemp("layers"))
    wheres = write_layers(tmp, layers)
    model = Model()
    refused = False
    try:
        for i, tree in enumerate(layers):
            model.merge(tree, i)
    except Refused:
        refused = True
    m = manager(tmp)
    try:
        if refused:
            with pytest.raises(ConfigError, match="empty, which would replace"):
                m.load_environment_config()
            return
        m.load_environment_config()
        assert thaw(m.config) == model.tree
        files = [
            os.path.join(tmp, n)
            for n in ("base.yaml", "development.yaml", "profiles/dep.yaml", "profiles/geo.yaml")
        ]
        check_explain(m, model, wheres, files)
    finally:
        m.close()


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, (*prefix, k))
    return out


@settings(max_examples=examples(40), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=st.lists(layer_trees, min_size=4, max_size=4), data=st.data())
def test_runtime_updates_sit_on_top_and_survive_a_reload(tmp_path_factory, layers, data):
    model = Model()
    try:
        for i, tree in enumerate(layers):
            model.merge(tree, i)
    except Refused:
        assume(False)
    tmp = str(tmp_path_factory.mktemp("runtime"))
    wheres = write_layers(tmp, layers)
    files = [
        os.path.join(tmp, n)
        for n in ("base.yaml", "development.yaml", "profiles/dep.yaml", "profiles/geo.yaml")
    ]
    m = manager(tmp)
    try:
        m.load_environment_config()
        updates = []
        for _ in range(data.draw(st.integers(1, 4))):
            existing = [p for p in _paths(model.tree) if "" not in p]
            some = st.sampled_from(existing) if existing else st.nothing()
            new_key = keys.filter(bool) | st.just(REPLACE)
            path = data.draw(
                st.one_of(
                    some,
                    st.tuples(some, new_key).map(lambda t: (*t[0], t[1])),
                    st.lists(keys.filter(bool), min_size=1, max_size=3).map(tuple),
                )
            )
            value = data.draw(values)
            # __replace__ is never a key: update_config refuses it as a segment.
            ok = REPLACE not in path and model.set(path, value, RUNTIME)
            if ok:
                updates.append((path, value))
            assert m.update_config(path, value) is ok, (path, value)
            assert thaw(m.config) == model.tree
        check_explain(m, model, wheres, files)
        # A hot reload of changed files keeps every runtime update on top.
        with open(files[0], encoding="utf-8") as f:
            text = f.read()
        text = "" if text == "{}\n" else text
        with open(files[0], "w", encoding="utf-8") as f:
            f.write(text + '"reload_marker_key": 1\n')
        wheres[0][("reload_marker_key",)] = text.count("\n") + 1
        assert m.reload()
        again = Model()
        for i, tree in enumerate(layers):
            again.merge(tree, i)
        again.merge({"reload_marker_key": 1}, 0)
        for path, value in updates:
            again.set(path, value, RUNTIME)
        assert thaw(m.config) == again.tree
        check_explain(m, again, wheres, files)
    finally:
        m.close()


# ------------------------------------------------------------------ CFGCORE__ variables

_YAML_INT = r"[-+]?(0|[1-9][0-9_]*)"
_YAML_FLOAT = (
    r"[-+]?(\.[0-9]+|[0-9][0-9_]*\.[0-9]*)([eE][-+]?[0-9]+)?|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+"
)


def coerce(text: str, current: Any) -> Any:
    """A variable's value as the docs state it ("CFGCORE__ variables"): YAML 1.2
    scalars and JSON lists and objects; over text, the text itself (null aside)."""
    import re

    t = text.strip()
    if t.lower() in ("null", "~"):
        return None
    if isinstance(current, str):
        return text
    if t.lower() in ("true", "false"):
        return t.lower() == "true"
    if re.fullmatch(_YAML_INT, t):
        return int(t.replace("_", ""))
    if re.fullmatch(_YAML_FLOAT, t):
        return float(t.replace("_", ""))
    if t[:1] in ("[", "{"):
        try:
            return json.loads(t)
        except ValueError:
            return text
    return text


def same_kind(current: Any, value: Any) -> bool:
    """Whether ``value`` may replace ``current`` (docs: ints where floats are, bool
    and int apart, maps for maps, lists for lists, text for text; nothing below: any)."""
    if current is None or value is None:
        return True
    if isinstance(current, bool) or isinstance(value, bool):
        return isinstance(current, bool) and isinstance(value, bool)
    if isinstance(current, float):
        return isinstance(value, int | float)
    for kind in (int, dict, list, str):
        if isinstance(current, kind):
            return isinstance(value, kind)
    return True


def clashes(current: Any, value: Any) -> bool:
    if not same_kind(current, value):
        return True
    if isinstance(current, dict) and isinstance(value, dict) and not value.get(REPLACE):
        return any(
            k in current and v != DELETE and clashes(current[k], v) for k, v in value.items()
        )
    return False


env_base_keys = st.sampled_from(["db", "Port", "host", "Mixed_Case", "tags", "x"])
env_scalars = st.one_of(
    st.integers(-1000, 1000),
    st.booleans(),
    st.none(),
    st.sampled_from([0.5, 2.0]),
    st.text("ab1", max_size=3),
)
env_trees = st.dictionaries(
    env_base_keys,
    st.recursive(
        env_scalars | st.lists(env_scalars, max_size=2),
        lambda inner: st.dictionaries(env_base_keys, inner, max_size=3),
        max_leaves=6,
    ),
    max_size=4,
)
env_texts = st.sampled_from(
    [
        "42", "-7", "+3", "1_000", "0755", "0.5", "1.", ".5", "1e3", "true", "FALSE",
        "null", "~", "yes", "hello", "", " 42 ", "0x10", "__delete__", "\\__delete__",
        '{"host": "h"}', '{"host": 5}', '{"Port": 1, "__replace__": true}', '{"x": [1]}',
        "[1, 2]", '["a"]', "[oops", "{oops",
    ]
)  # fmt: skip


def _recase(seg: str, how: int) -> str:
    return (seg, seg.upper(), seg.lower())[how % 3]


@settings(max_examples=examples(80), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=env_trees, data=st.data())
def test_cfgcore_variables_follow_the_documented_coercion(tmp_path_factory, tree, data):
    model = Model()
    model.merge(tree, 0)
    paths = [p for p in _paths(model.tree)]
    variables: dict[str, str] = {}
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(
            st.one_of(
                st.sampled_from(paths) if paths else st.nothing(),
                st.lists(st.sampled_from(["new", "Extra", "db"]), min_size=1, max_size=3).map(
                    tuple
                ),
            )
        )
        cased = [_recase(s, data.draw(st.integers(0, 2))) for s in path]
        variables["CFGCORE__" + "__".join(cased)] = data.draw(env_texts)

    # The model: resolve each name against the served tree, coerce, refuse or merge.
    refused: set[str] = set()
    owners: dict[tuple[Any, ...], str] = {}
    layer: dict[str, Any] = {}
    for name in sorted(variables):
        node: Any = model.tree
        path = []
        bad = False
        for i, part in enumerate(name[len("CFGCORE__") :].split("__")):
            if isinstance(node, list) or (i and node is not None and not isinstance(node, dict)):
                bad = True  # an element of a list, or a key below a value
                break
            if isinstance(node, dict):
                part = next((k for k in node if k.lower() == part.lower()), part.lower())
                node = node.get(part)
            else:
                part = part.lower()
            path.append(part)
        text = variables[name]
        value = DELETE if text == DELETE else coerce(text, node)
        if not bad and value != DELETE and clashes(node, value):
            bad = True
        at = tuple(path)
        if not bad and any(
            p[: len(at)] == at or at[: len(p)] == p for p in owners
        ):  # two variables for one key, or one below another's
            bad = True
        if bad:
            refused.add(name)
            continue
        owners[at] = name
        target = layer
        for seg in at[:-1]:
            target = target.setdefault(seg, {})
        target[at[-1]] = value

    tmp = str(tmp_path_factory.mktemp("environ"))
    body, where = emit(tree)
    with open(os.path.join(tmp, "base.yaml"), "w", encoding="utf-8") as f:
        f.write("\n".join(body) + "\n" if body else "{}\n")
    with open(os.path.join(tmp, "development.yaml"), "w", encoding="utf-8") as f:
        f.write("{}\n")
    m = ConfigurationManager(
        tmp, environ=variables, validate=False, flags_file=os.path.join(tmp, "none.json")
    )
    try:
        if refused:
            with pytest.raises(ConfigError) as err:
                m.load_environment_config()
            for name in refused:
                assert name in str(err.value)
            return
        m.load_environment_config()
        model.merge(layer, 1, file_layer=False)
        assert thaw(m.config) == model.tree, variables
        for path, value in model.leaves():
            if not path:
                continue
            winner = m.explain(path).winner
            assert winner is not None and winner.value == value, (path, winner)
            if model.origin[path] == 1:
                assert winner.kind == "environment_variables"
                # (a variable deleting a key below a section nothing else sets leaves
                # that section, empty: the variable's layer set it)
                named = {v for p, v in owners.items() if path[: len(p)] == p}
                named |= {v for p, v in owners.items() if p[: len(path)] == path}
                alone = named.pop() if len(named) == 1 else None
                assert winner.env_var == alone, (path, winner, named)
            else:
                assert winner.kind == "base" and winner.line == line_of(where, path)
    finally:
        m.close()


# ------------------------------------------------------------------ ${VAR} references

ref_names_ = st.sampled_from(["A", "B", "C_1"])
ref_values = st.one_of(st.none(), st.sampled_from(["", "v", "${B}", "$${", "}", "x y"]))
pieces = st.one_of(
    st.tuples(st.just("text"), st.text("ab }-:$x", max_size=3)),
    st.tuples(st.just("escape")),
    st.tuples(
        st.just("ref"),
        ref_names_,
        st.sampled_from(["", ":-", "-", ":?", "?"]),
        st.text("xy -:?", max_size=3),
    ),
)


def render(template: list[tuple[Any, ...]], env: dict[str, str]) -> tuple[str, Any]:
    """The text of a template and what the docs say it is served as: a text, or
    ``("error", what the error names)``."""
    text, out = "", ""
    for piece in template:
        if piece[0] == "text":
            lit = piece[1]
            if "${" in lit or lit.endswith("$") or "$$" in lit:
                lit = lit.replace("$", "")
            text += lit
            out += lit
        elif piece[0] == "escape":
            text += "$${"
            out += "${"
        else:
            _, name, op, arg = piece
            text += "${" + name + (op + arg if op else "") + "}"
            value = env.get(name)
            if op == ":-":
                out += value if value else arg
            elif op == "-":
                out += value if value is not None else arg
            elif op in (":?", "?"):
                if value is None or (op == ":?" and not value):
                    return text, ("error", name)
                out += value
            elif value is None:
                return text, ("error", name)
            else:
                out += value  # once: a value holding ${...} is not read again
    return text, out


@settings(max_examples=examples(100), suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    template=st.lists(pieces, min_size=1, max_size=4),
    env=st.dictionaries(ref_names_, ref_values).map(
        lambda d: {k: v for k, v in d.items() if v is not None}
    ),
)
def test_references_expand_once_with_the_documented_defaults(tmp_path_factory, template, env):
    text, expected = render(template, env)
    # A literal "$" run before an escape or reference reads differently (docs: $${ is
    # the escape); the model keeps to texts where each "$" starts one piece.
    assume("$$$" not in text and "$${file:" not in text)
    tmp = str(tmp_path_factory.mktemp("refs"))
    with open(os.path.join(tmp, "base.yaml"), "w", encoding="utf-8") as f:
        f.write("section:\n  key: " + json.dumps(text) + "\n")
    with open(os.path.join(tmp, "development.yaml"), "w", encoding="utf-8") as f:
        f.write("{}\n")
    m = ConfigurationManager(
        tmp, environ=env, validate=False, flags_file=os.path.join(tmp, "n.json")
    )
    try:
        if isinstance(expected, tuple):
            with pytest.raises(ConfigError) as err:
                m.load_environment_config()
            message = str(err.value)
            assert "base.yaml:2" in message and "section.key" in message, message
            assert f"environment variable {expected[1]}" in message, message
            return
        m.load_environment_config()
        assert m.get("section.key") == expected
    finally:
        m.close()
