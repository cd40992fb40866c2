"""Fix 8: a ``str`` subclass holding a lone surrogate is refused like a ``str``.

The one judge of values (``files.tree_problem``) looked for lone surrogates (half of a
JSON ``\\u`` pair, undecodable bytes of an environment variable) only in exact ``str``
values: a subclass of ``str`` (an enum's ``StrEnum`` member, a library's marked-up
string type) went through unchecked, and every writer of it (JSON, UTF-8 output, the
audit log, Redis) then failed. It is judged as the text it holds, with str's own
methods (a subclass may override ``isascii`` or ``encode``), and refused naming the key
path as a ``str`` is. Likewise an ``int`` subclass is judged by its value, not by its
own comparisons.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.files import tree_problem
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.fuzz import examples


class Text(str):
    """A plain subclass."""


class Liar(str):
    """A subclass whose own methods say it is fine."""

    def isascii(self) -> bool:
        return True

    def encode(self, *args: object, **kwargs: object) -> bytes:
        return b"fine"


class BigLiar(int):
    def __ge__(self, other: object) -> bool:
        return True

    def __le__(self, other: object) -> bool:
        return True


@pytest.mark.parametrize("cls", [str, Text, Liar])
def test_a_lone_surrogate_is_refused_naming_the_key_path(cls):
    for tree, path in (
        ({"svc": {"name": cls("db\ud800")}}, "svc.name"),
        ({"svc": {"names": ["ok", cls("\udcff")]}}, "svc.names.1"),
        ({"svc": {cls("k\ud800"): 1}}, "svc.k\\ud800"),
    ):
        found = tree_problem(tree)
        assert found is not None, tree
        assert found[0] == path
        assert "not valid Unicode" in found[1]


@pytest.mark.parametrize("cls", [Text, Liar])
def test_valid_text_of_a_subclass_is_accepted(cls):
    assert tree_problem({"svc": {"name": cls("café"), cls("clé"): [cls("ok")]}}) is None


def test_an_int_subclass_is_judged_by_its_value():
    found = tree_problem({"svc": {"n": BigLiar(2**70)}})
    assert found is not None and found[0] == "svc.n" and "out of range" in found[1]
    assert tree_problem({"svc": {"n": BigLiar(7)}}) is None


@pytest.fixture
def manager(tmp_path):
    (tmp_path / "base.yaml").write_text("svc:\n  name: db\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.disable_audit()
    m.load_environment_config()
    return m


@pytest.mark.parametrize("cls", [Text, Liar])
def test_update_config_and_set_active_config_refuse_it_and_keep_the_configuration(manager, cls):
    assert manager.update_config("svc.name", cls("x\ud800")) is False
    assert "svc.name" in str(manager.last_error)
    assert "not valid Unicode" in str(manager.last_error)
    with pytest.raises(ConfigError) as info:
        manager.set_active_config({"svc": {"name": [cls("\udc80")]}})
    (problem,) = info.value.problems
    assert problem.path == "svc.name.0"
    assert manager.get("svc.name") == "db"


@settings(max_examples=examples(200), deadline=None)
@given(st.text(st.characters() | st.integers(0xD800, 0xDFFF).map(chr), max_size=8))
def test_a_subclass_gets_the_answer_its_text_gets(text):
    assert tree_problem({"a": Text(text)}) == tree_problem({"a": text})
    assert tree_problem({"a": Liar(text)}) == tree_problem({"a": text})
