"""``manager[...]`` given a key path that is set says what to do (audit 8).

``manager.get("a.b.c")`` reads a key path; ``manager["a.b.c"]`` reads one top-level key,
so a new user's first try answered ``a.b.c: not set in environment 'staging' (did you
mean 'a.b.c', ...?)``: the key said missing while set, with itself as the suggestion."""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigKeyError
from tests.conftest import scaffolded_config

BITRATE = "music_streaming.audio_quality.premium_bitrate"


@pytest.fixture
def manager(tmp_path, monkeypatch):
    m = ConfigurationManager(scaffolded_config(tmp_path, monkeypatch), record_usage=False)
    yield m
    m.close()


@pytest.mark.parametrize(
    "key, shown",
    [
        (BITRATE, BITRATE),
        ("music_streaming.audio_quality.codecs.0", "music_streaming.audio_quality.codecs.0"),
        (("music_streaming", "audio_quality"), "music_streaming.audio_quality"),
    ],
)
def test_a_key_path_that_is_set_is_named_as_one(manager, key, shown):
    assert manager.get(key) is not None
    with pytest.raises(ConfigKeyError) as err:
        manager[key]
    message = str(err.value)
    assert message.endswith(
        f"{shown}: a key path, and manager[...] reads one top-level key: "
        f"use get({shown!r}), or one [...] per key"
    )
    assert "not set" not in message and "did you mean" not in message
    assert "staging.yaml" in message  # the file, as every key error names
    # A key path that is not set, or a top-level key, is answered as before.
    with pytest.raises(ConfigKeyError) as err:
        manager[BITRATE[:-1]]
    assert f"not set in environment 'staging' (did you mean '{BITRATE}'" in str(err.value)
    for missing in ("nope", "", "music_streaming.nope"):
        with pytest.raises(ConfigKeyError, match="not set in environment 'staging'"):
            manager[missing]
