"""Fix 10: the text ``__delete__`` can be stored, written ``\\__delete__``.

The value ``"__delete__"`` removes its key, in every layer (files, profiles, ``CFGCORE__``
variables, ``update_config``): there was no way to store that text in a mapping. A text
of one or more backslashes followed by ``__delete__`` is now served with one backslash
fewer, in maps and lists alike (``tree.unescape_marker``). ``set_active_config`` takes a
complete tree as it is served (its ``"__delete__"`` is text, and ``set_active_config(
dict(manager.config))`` changes nothing); the runtime layer it records, and the JSON copy
a follower of a published configuration builds from (``files.typed_json``), spell such
texts escaped, so every rebuild serves them again. A *key* named ``__delete__`` is an
ordinary key; ``__replace__`` is never a key (it is the marker).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.files import parse_text, typed_json
from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.tree import freeze
from cfgcore.errors import ConfigError
from tests.fuzz import examples
from tests.texts import any_text, holds_lone_surrogate

B = "\\"


@pytest.fixture
def directory(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "app:\n"
        f"  a: '{B}__delete__'\n"
        f"  b: '{B}{B}__delete__'\n"
        f"  c: ['__delete__', '{B}__delete__']\n"
        "  d: __delete__\n"
        "  __delete__: a key like any other\n"
        "  keep: 1\n"
    )
    (tmp_path / "production.yaml").write_text("{}\n")
    return tmp_path


def _manager(directory, environ=None):
    m = ConfigurationManager(str(directory), environ=environ or {}, validate=False)
    m.load_environment_config("production")
    return m


def test_an_escaped_marker_in_a_file_serves_the_text(directory):
    m = _manager(directory)
    assert dict(m.get("app")) == {
        "a": "__delete__",
        "b": B + "__delete__",
        "c": ["__delete__", "__delete__"],
        "__delete__": "a key like any other",
        "keep": 1,
    }


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("production.json", json.dumps({"app": {"keep": B + "__delete__", "a": "__delete__"}})),
        ("production.toml", f"[app]\nkeep = '{B}__delete__'\na = \"__delete__\"\n"),
        ("production.yaml", f"app:\n  keep: {B}__delete__\n  a: __delete__\n"),
    ],
)
def test_every_format_escapes_alike(directory, name, text):
    (directory / "production.yaml").unlink()
    (directory / name).write_text(text)
    m = _manager(directory)
    assert m.get("app.keep") == "__delete__"
    assert m.get("app.a", "gone") == "gone"


def test_an_environment_variable_escapes_alike(directory):
    m = _manager(
        directory, {"CFGCORE__APP__NAME": B + "__delete__", "CFGCORE__APP__A": "__delete__"}
    )
    assert m.get("app.name") == "__delete__"
    assert m.get("app.a", "gone") == "gone"


def test_update_config_stores_the_text_and_it_survives_rebuilds(directory):
    m = _manager(directory)
    assert m.update_config("app.note", B + "__delete__")
    assert m.get("app.note") == "__delete__"
    assert m.update_config("app.more", {"x": B + B + "__delete__", "y": "__delete__"})
    assert dict(m.get("app.more")) == {"x": B + "__delete__"}
    m.update_config("app.keep", 2)
    assert m.reload() or True
    assert m.get("app.note") == "__delete__"
    assert dict(m.get("app.more")) == {"x": B + "__delete__"}
    assert m.update_config("app.note", "__delete__")  # the marker still removes
    assert m.get("app.note", "gone") == "gone"


def test_set_active_config_takes_a_served_tree_as_it_is(directory):
    m = _manager(directory)
    served = m.get("app")
    m.set_active_config({**dict(m.config), "extra": {"z": "__delete__", "w": B + "__delete__"}})
    assert dict(m.get("app")) == dict(served)
    assert dict(m.get("extra")) == {"z": "__delete__", "w": B + "__delete__"}
    m.set_active_config(dict(m.config))  # changes nothing
    m.update_config("app.keep", 3)  # a rebuild from the layers
    assert m.get("app.a") == "__delete__" and m.get("app.b") == B + "__delete__"
    assert dict(m.get("extra")) == {"z": "__delete__", "w": B + "__delete__"}


def test_a_published_json_copy_reads_back_as_served(directory):
    import datetime

    m = _manager(directory)
    for tree in (
        dict(m.config),
        {"k": "__delete__", "l": ["__delete__"]},
        {"k": "__delete__", "day": datetime.date(2024, 5, 1)},  # the typed wrapper
    ):
        copy = typed_json(tree)
        assert freeze(parse_text(copy.decode(), "json", "production.json")) == tree


_MARKERISH = st.builds(
    lambda n, tail: B * n + tail,
    st.integers(0, 4),
    st.sampled_from(["__delete__", "__delete_", "x__delete__", "__delete__x", ""]),
)


@settings(max_examples=examples(100), deadline=None)
@given(value=st.one_of(_MARKERISH, any_text(max_size=12)))
def test_any_text_written_escaped_is_served_as_it_was(value):
    from cfgcore.config.tree import escape_markers, unescape_marker

    written = escape_markers(value)
    assert unescape_marker(written) == value
    text = json.dumps({"k": written, "l": [written]})
    # (the file holds "\ud800\udc00" escaped: JSON reads that pair as one character)
    value = json.loads(json.dumps(value))
    if holds_lone_surrogate(value):
        # A lone surrogate (a \ud800 escape in the file) is no text: refused, named.
        with pytest.raises(ConfigError, match=r"^f\.json: k: text is not valid Unicode"):
            parse_text(text, "json", "f.json")
        return
    doc = parse_text(text, "json", "f.json")
    assert freeze(doc) == {"k": value, "l": [value]}
    if value != "__delete__":
        assert escape_markers(value) == value or value.endswith("__delete__")
