"""Runtime updates take only what a configuration file could hold, under a string key path;
a section that is not set is a KeyError that names the path and the nearest keys."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError, ConfigKeyError
from tests.conftest import copy_bundled_config
from tests.fuzz import examples
from tests.texts import any_text, holds_lone_surrogate


@pytest.fixture
def manager(tmp_path):
    d = tmp_path / "config"
    copy_bundled_config(d)
    m = ConfigurationManager(d, environ={}, audit_log=str(tmp_path / "audit.jsonl"))
    m.load_environment_config("development")
    yield m
    m.close()


def _audit(manager):
    with open(manager.audit.path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.mark.parametrize(
    "value",
    [
        {1: "a", "1": "b"},
        {"ok": {2: "x"}},
        {1, 2},
        b"bytes",
        float("nan"),
        [1.0, float("inf")],
        object(),
        {"when": complex(1, 2)},
    ],
    ids=["int-key", "nested-int-key", "set", "bytes", "nan", "inf-in-list", "object", "complex"],
)
def test_update_refuses_values_a_file_could_not_hold(manager, value):
    version = manager.version
    before = len(_audit(manager))
    assert manager.update_config("app.k", value) is False
    assert manager.version == version
    assert manager.get("app.k") is None
    assert "app.k" in str(manager.last_error)
    entries = _audit(manager)[before:]
    assert [e["kind"] for e in entries] == ["error"]  # one entry, JSON-writable
    json.dumps(dict(manager.get("app")))


@pytest.mark.parametrize("key_path", [None, "", 5, ("app", 5), b"app.k"])
def test_update_refuses_a_key_path_that_is_not_a_nonempty_str(manager, key_path):
    assert manager.update_config(key_path, 1) is False
    assert "key path" in str(manager.last_error)
    assert isinstance(manager.last_error, ConfigError)


json_like = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | any_text(max_size=10).filter(lambda s: s != "__delete__"),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            any_text(min_size=1, max_size=6).filter(lambda s: "." not in s and s != "__replace__"),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(value=json_like)
def test_json_like_values_are_taken_and_read_back_as_json(manager, value):
    if holds_lone_surrogate(value):
        # no JSON text holds it (nor any file): refused, naming where, as printable text
        before = manager.config
        assert manager.update_config("app.extra", value) is False
        error = manager.last_error
        assert isinstance(error, ConfigError) and "not valid Unicode" in str(error)
        assert str(error).startswith("<update_config>: app.extra")
        str(error).encode("utf-8")
        assert manager.config == before
        return
    assert manager.update_config("app.extra", value) is True, manager.last_error
    back = json.loads(json.dumps(manager.config["app"]["extra"]))
    expected = json.loads(json.dumps(value))

    def same(a, b):
        if isinstance(a, float) and isinstance(b, float):
            return a == b or (math.isnan(a) and math.isnan(b))
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        return a == b

    assert same(back, expected)


def test_missing_section_names_the_path_and_suggests(manager):
    with pytest.raises(ConfigKeyError) as err:
        manager.section("app.nmae")
    assert isinstance(err.value, KeyError)  # `except KeyError` still catches it
    text = str(err.value)
    assert "app.nmae" in text
    assert "development" in text
    assert "did you mean 'app.name'" in text


def test_missing_top_level_section_is_a_config_key_error(manager):
    with pytest.raises(ConfigKeyError, match="nope: not set"):
        manager.section("nope")
    with pytest.raises(KeyError):
        manager.section("app.name.deeper")
