"""Second audit, runtime updates with hostile key paths.

update_config() promises True or False; a key path of thousands of segments raised
RecursionError out of it instead (and one of 101 built a tree deeper than any file
may be).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.fuzz import examples
from tests.texts import any_text


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    d = tmp_path_factory.mktemp("updates")
    (d / "development.yaml").write_text("app:\n  name: svc\n  tags: [a]\n")
    m = ConfigurationManager(d, environment="development", environ={})
    m.load_environment_config()
    yield m
    m.close()


@pytest.mark.parametrize("levels", [101, 5000])
def test_a_key_path_deeper_than_a_file_may_nest_is_refused(manager, levels):
    before = manager.snapshot
    assert manager.update_config(".".join(["k"] * levels), 1) is False
    assert "nests more than 100 levels deep" in str(manager.last_error)
    assert manager.snapshot is before


def test_a_key_path_at_the_limit_is_applied(manager):
    path = ".".join(["k"] * 100)
    assert manager.update_config(path, 1) is True and manager.get(path) == 1
    assert manager.update_config(path, "__delete__") is True


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), any_text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(any_text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
_segment = st.one_of(st.sampled_from(["app", "name", "tags", "0", "", "k"]), any_text(max_size=4))


@settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    segments=st.one_of(
        st.lists(_segment, min_size=1, max_size=6),
        st.integers(95, 2000).map(lambda n: ["k"] * n),
    ),
    value=_json,
)
def test_update_config_returns_a_bool_for_any_key_path(manager, segments, value):
    key_path = ".".join(segments)
    applied = manager.update_config(key_path, value)
    assert applied in (True, False)
    if applied:
        assert manager.last_error is None
    else:
        assert isinstance(manager.last_error, ConfigError)
