"""Fix 8 (a neighbour of the list-index fix): numbers are spelled with ASCII digits.

Python's ``\\d`` matches every script's decimal digits, and ``int()``/``float()`` read
them: the ``type_conversion`` transform turned ``"１.５"`` (fullwidth) into 1.5 while
``"１"`` stayed text, ``size_parsing`` turned ``"３GB"`` into 3 GB, the public
``parse_duration`` read ``"１h"`` as an hour, the schema's duration, size and host:port
patterns accepted ``"５s"`` and ``"db:８０８０"``, and the legacy migrator typed
``port = ８０８０`` as the integer 8080. YAML 1.2, JSON and TOML read such text as
text; so do all of these now.
"""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config import schema
from cfgcore.config.migration import LegacyConfigMigrator
from cfgcore.config.transforms import ConfigurationTransformer, parse_duration, parse_size
from tests.fuzz import examples

STEPS = ["type_conversion", "duration_parsing", "size_parsing"]
# Decimal digits of other scripts: fullwidth, Arabic-Indic, Devanagari, Bengali.
OTHER_DIGITS = "１２３٣٤५৬"


@pytest.mark.parametrize(
    "text", ["１.５", "1.５", "１e3", "-２.0", "３GB", "1.５KiB", "２s", "1h３0m"]
)
def test_transforms_leave_text_with_other_digits_alone(text):
    t = ConfigurationTransformer(env={})
    assert t.transform({"v": text}, STEPS) == {"v": text}


def test_ascii_spellings_still_convert():
    t = ConfigurationTransformer(env={})
    got = t.transform({"f": "1.5", "s": "3GB", "d": "1h30m", "n": "-2.0"}, STEPS)
    assert got == {"f": 1.5, "s": 3_000_000_000, "d": 5400.0, "n": -2.0}


def test_the_public_parsers_refuse_other_digits():
    for text in ("１h", "1h３0m"):
        with pytest.raises(ValueError):
            parse_duration(text)
        assert schema.parse_duration(text) is None
    with pytest.raises(ValueError):
        parse_size("３GB")
    assert schema.parse_duration("1h30m") == 5400.0


@pytest.mark.parametrize(
    ("kind", "text"), [(schema.Duration, "５s"), (schema.HostPort, "db:８０８０")]
)
def test_schema_patterns_want_ascii_digits(kind, text):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(text, kind)
    msgspec.convert(text.replace("５", "5").replace("８０８０", "8080"), kind)


def test_the_legacy_migrator_keeps_other_digits_as_text(tmp_path):
    path = tmp_path / "legacy.properties"
    path.write_text("server.port=８０８０\n", encoding="utf-8")
    migration = LegacyConfigMigrator().migrate(path)
    assert migration.config == {"server": {"port": "８０８０"}}
    assert "'８０８０' is not int" in str(migration.report)
    path.write_text("server.port=8080\n", encoding="utf-8")
    assert LegacyConfigMigrator().migrate(path).config == {"server": {"port": 8080}}


@settings(max_examples=examples(150), deadline=None)
@given(
    st.text(st.sampled_from("0123456789.-+eE kKMGiBsmhdw"), min_size=1, max_size=8),
    st.data(),
)
def test_a_value_with_any_other_digit_is_never_converted(text, data):
    at = data.draw(st.integers(0, len(text)))
    value = text[:at] + data.draw(st.sampled_from(OTHER_DIGITS)) + text[at:]
    t = ConfigurationTransformer(env={})
    assert t.transform({"v": value}, STEPS) == {"v": value}
