"""Arguments of the seed's flag-change methods that a file cannot hold as given.

- ``register_custom_feature_flag(flag, description=...)``: a str subclass was refused
  with msgspec's "Encoding objects of type ... is unsupported" and a lone surrogate
  raised a bare ``UnicodeEncodeError`` from the write. The description is now stored
  as the text it holds; one that is no text is a ConfigError naming
  ``flags.<key>.description``.
- ``set_flag_dependencies(flag, depends_on)``: a ``(flag,)`` tuple raised
  ``IndexError``, ``depends_on=None`` (or a number) a bare ``TypeError``, a tuple of
  three silently dropped its third item, and the variant of a pair was taken as
  ``str(v)``: an Enum member became ``"Variant.GOLD"``, None ``"None"``. Each is now a
  ConfigError naming ``flags.<key>.prerequisites`` (and the entry), and an Enum member
  names the variant its value names, as it names a flag; nothing is written."""

from __future__ import annotations

import enum
import json

import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError


class Text(str):
    def __str__(self):
        return "Text(...)"


class Variant(enum.Enum):
    ON = "on"


class Plan(enum.StrEnum):
    ON = "on"


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    assert m.register_custom_feature_flag("gate", enabled=True)
    assert m.register_custom_feature_flag("dep", enabled=True)
    yield m
    m.close()


def _stored(tmp_path):
    return json.loads((tmp_path / "flags.json").read_text())["flags"]


@pytest.mark.parametrize("description", [Text("for the beta"), Plan.ON])
def test_a_str_subclass_description_is_stored_as_its_text(manager, tmp_path, description):
    assert manager.register_custom_feature_flag("beta", description=description) is True
    assert _stored(tmp_path)["beta"]["description"] == str.__str__(description)
    assert manager.get_feature_flags_status()["beta"]["description"] == str.__str__(description)


@pytest.mark.parametrize("description", ["\ud800", "beta \udfff"])
def test_a_description_that_is_no_text_is_refused_naming_the_key(manager, tmp_path, description):
    before = _stored(tmp_path)
    with pytest.raises(ConfigError, match=r"flags\.beta\.description"):
        manager.register_custom_feature_flag("beta", description=description)
    assert _stored(tmp_path) == before


@pytest.mark.parametrize("variant", [Variant.ON, Plan.ON, Text("on")])
def test_a_variant_given_as_an_enum_or_str_subclass_names_its_value(manager, tmp_path, variant):
    manager.set_flag_dependencies("gate", [("dep", variant)])
    assert _stored(tmp_path)["gate"]["prerequisites"] == [{"flag": "dep", "variant": "on"}]
    assert manager.is_feature_enabled("gate", {"user_id": "u1"}) is True


@pytest.mark.parametrize(
    ("depends_on", "where"),
    [
        (None, "flags.gate.prerequisites"),
        (5, "flags.gate.prerequisites"),
        ([("dep",)], r"flags.gate.prerequisites\[0\]"),
        ([("dep", "on", "extra")], r"flags.gate.prerequisites\[0\]"),
        (["dep", ("dep", None)], r"flags.gate.prerequisites\[1\].variant"),
        ([("dep", 1)], r"flags.gate.prerequisites\[0\].variant"),
        ([("dep", "\ud800")], r"flags.gate.prerequisites\[0\].variant"),
    ],
)
def test_dependencies_that_name_no_flag_or_variant_are_refused(
    manager, tmp_path, depends_on, where
):
    before = _stored(tmp_path)
    with pytest.raises(ConfigError, match=where):
        manager.set_flag_dependencies("gate", depends_on)
    assert _stored(tmp_path) == before
    assert manager.is_feature_enabled("gate", {"user_id": "u1"}) is True
