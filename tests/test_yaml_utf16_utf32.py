"""A YAML flags or configuration file saved as UTF-32, or as UTF-16 without its
byte-order mark, is refused saying so and to save it as UTF-8, as JSON files and
configuration files with a byte-order mark are; it was refused as "character U+0000 is
not allowed", which did not say the encoding was the trouble. UTF-16 with its mark is
refused too, as a flags file as well as a configuration file (cfgcore._encoding: the
one policy for every text file). Real files in tmp_path."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.files import read_config_file
from cfgcore.errors import ConfigError
from cfgcore.snapshot import load_snapshot
from cfgcore.yamlio import load_yaml
from tests.fuzz import examples

FLAGS = 'flags:\n  checkout:\n    default: "off"\n'

REFUSED = {
    "utf-32": "UTF-32 text (it starts with a UTF-32 byte-order mark)",
    "utf-32-le": "UTF-32 text (it starts with NUL bytes around each character)",
    "utf-32-be": "UTF-32 text (it starts with NUL bytes around each character)",
    "utf-16-le": "UTF-16 text (it starts with NUL bytes between its characters)",
    "utf-16-be": "UTF-16 text (it starts with NUL bytes between its characters)",
}


@pytest.mark.parametrize("encoding", REFUSED)
@pytest.mark.parametrize("read", [load_snapshot, read_config_file], ids=["flags", "config"])
def test_a_wide_file_is_refused_saying_to_save_it_as_utf8(tmp_path, encoding, read):
    path = tmp_path / "flags.yaml"
    path.write_bytes(FLAGS.encode(encoding))
    with pytest.raises(ConfigError) as caught:
        read(str(path))
    assert str(caught.value) == f"{path}:1: {REFUSED[encoding]}; save it as UTF-8"
    assert caught.value.reason == "parse"


def test_utf16_with_its_mark_is_refused_as_a_flags_file_too(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_bytes(FLAGS.encode("utf-16"))
    with pytest.raises(ConfigError) as caught:
        load_snapshot(str(path))
    assert str(caught.value) == (
        f"{path}:1: UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"
    )


@settings(max_examples=examples(200), deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x7F), min_size=2))
def test_nul_free_utf8_is_never_taken_for_a_wide_encoding(text):
    """Only text holding a NUL near its start (which YAML refuses anyway) is judged."""
    try:
        load_yaml(text)
    except ConfigError as exc:
        assert "save it as UTF-8" not in str(exc)
