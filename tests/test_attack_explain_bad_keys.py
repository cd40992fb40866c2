"""``manager.explain(key)`` answers "not set" for a key that names no key path, as
``get`` answers the default: the configuration's reads never raise on a bad key. A key
that is no text nor sequence of segments (``5``, ``None``, ``True``, an object) raised
``TypeError: 'int' object is not iterable``, and a path holding an unhashable segment
(``[[]]``, ``("a", {})``) raised ``TypeError: unhashable type``. Real files.
"""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("a:\n  b: 1\nl: [10, 20]\n")
    (d / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(str(d), environment="development", environ={}, validate=False)
    m.load_environment_config()
    yield m
    m.close()


class Opaque:
    """A key of no path form whose own methods all raise."""

    def __repr__(self):
        raise RuntimeError("repr")

    def __hash__(self):
        raise RuntimeError("hash")

    def __eq__(self, other):
        raise RuntimeError("eq")

    def __iter__(self):
        raise RuntimeError("iter")


@pytest.mark.parametrize(
    "key",
    [5, None, True, 1.5, object(), [[]], ("a", {}), ["l", [0]], Opaque(), ("a", Opaque())],
    ids=[
        "int",
        "None",
        "bool",
        "float",
        "object",
        "list-in-list",
        "dict-seg",
        "list-seg",
        "opaque",
        "opaque-seg",
    ],  # fmt: skip
)
def test_explain_of_a_bad_key_says_not_set(manager, key):
    prov = manager.explain(key)
    assert prov.found is False and prov.value is None and prov.chain == ()
    assert "is not set" in str(prov)
    assert manager.get(key, "<default>") == "<default>"  # as get answers it


def test_explain_of_good_keys_is_unchanged(manager):
    assert manager.explain("a.b").found and manager.explain(("l", 1)).value == 20
    assert not manager.explain("a.nope").found
