"""Fix 8: a list index in a key path is plain ASCII decimal digits, nothing else.

``get("l.-1")`` served the last item, and ``get("l.１")`` (a fullwidth digit), ``"l.+1"``,
``"l. 1"`` and ``"l.1_0"`` indexed the list too: the segment went through ``int()``, which
reads all of those as numbers. No key path of the configuration names them (its paths
spell indices ``0``, ``1``, ...), so they are missing keys: ``get`` gives the default,
``[]``-style lookups and ``explain`` find nothing, as for any other missing key.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from cfgcore.config.files import Layer
from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.tree import get_path, list_index
from tests.fuzz import examples
from tests.texts import any_text

NOT_INDICES = ["-1", "-3", "+1", " 1", "1 ", "1_0", "１", "٣", "01", "00", "", "0x1", "1.0", "²"]


@pytest.fixture
def manager(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "svc:\n  l: [a, b, c, d, e, f, g, h, i, j, k]\n  hosts:\n    - name: h0\n    - name: h1\n"
    )
    (tmp_path / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.disable_audit()
    m.load_environment_config()
    return m


@pytest.mark.parametrize("seg", NOT_INDICES)
def test_get_with_an_index_that_is_not_plain_digits_gives_the_default(manager, seg):
    assert manager.get(f"svc.l.{seg}", "DEFAULT") == "DEFAULT"
    assert manager.get(f"svc.hosts.{seg}.name", "DEFAULT") == "DEFAULT"
    # asked twice: the read cache serves the same answer
    assert manager.get(f"svc.l.{seg}", "DEFAULT") == "DEFAULT"


def test_plain_digit_indices_still_index(manager):
    assert manager.get("svc.l.0") == "a"
    assert manager.get("svc.l.10") == "k"
    assert manager.get("svc.l.11", "DEFAULT") == "DEFAULT"
    assert manager.get("svc.hosts.1.name") == "h1"


def test_get_path_and_a_layer_lookup_agree():
    tree = {"l": ["a", "b", "c"]}
    layer = Layer("base", "file", tree)
    for seg in NOT_INDICES:
        assert get_path(tree, ("l", seg), "DEFAULT") == "DEFAULT"
        assert layer.lookup(("l", seg))[0] == "replaced"
    assert get_path(tree, ("l", -1), "DEFAULT") == "DEFAULT"  # a tuple path too
    assert get_path(tree, ("l", True), "DEFAULT") == "DEFAULT"
    assert get_path(tree, ("l", 2)) == "c"
    assert layer.lookup(("l", "1")) == ("set", "b", ("l", "1"))


@settings(max_examples=examples(300), deadline=None)
@given(any_text(max_size=6))
def test_an_index_is_exactly_the_spelling_of_a_position(seg):
    positions = {str(i): i for i in range(12)}
    assert list_index(seg, 12) == positions.get(seg)
