"""A mapping key given in Python that is not text (``None``, ``True``, ``1``, ``1.5``,
``b"k"``) is refused naming the key in Python's spelling inside brackets, and its type:
``a[None]: key None (NoneType) is not a string``. It was shown ``a.None``, the path of
the text key ``"None"``, and a float key ``a["1.5"]``, the path of the text key ``"1.5"``.
``update_config``, ``set_active_config``, validation and A/B test configurations all
name it so."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.files import tree_problem
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import ABTestConfiguration
from tests.fuzz import examples


@pytest.fixture(scope="module")
def manager(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    (d / "development.yaml").write_text("environment: development\napp:\n  name: svc\n")
    m = ConfigurationManager(d, environment="development", environ={})
    m.disable_audit()
    m.load_environment_config()
    yield m
    m.close()


def _refused(manager, key_path, value):
    assert manager.update_config(key_path, value) is False
    (problem,) = manager.last_error.problems
    return problem


@pytest.mark.parametrize(
    ("key", "path", "kind"),
    [(None, "a[None]", "NoneType"), (True, "a[True]", "bool"), (1, "a[1]", "int"),
     (1.5, "a[1.5]", "float"), (b"k", "a[b'k']", "bytes"), (("t",), "a[('t',)]", "tuple")],
)  # fmt: skip
def test_update_config_names_a_python_key_in_brackets_with_its_type(manager, key, path, kind):
    problem = _refused(manager, "a", {key: 1})
    assert problem.path == path
    assert problem.message == f"key {key!r} ({kind}) is not a string (quote it)"


def test_a_none_key_and_the_text_key_none_have_different_paths(manager):
    assert _refused(manager, "a", {None: 1}).path == "a[None]"
    # the text key "None" is a key like any other: refused only for its value, at a.None
    assert _refused(manager, "a", {"None": math.nan}).path == "a.None"
    assert (
        _refused(manager, "a", {True: 1}).path != _refused(manager, "a", {"True": [math.inf]}).path
    )
    # and a float key is not the text key "1.5" (which is quoted for its dot)
    assert _refused(manager, "a", {"1.5": math.nan}).path == 'a["1.5"]'
    assert _refused(manager, "a", {1.5: 1}).path == "a[1.5]"


def test_set_active_config_names_a_top_level_and_a_nested_python_key(manager):
    with pytest.raises(ConfigError) as err:
        manager.set_active_config({None: 1, "app": {"name": "svc"}})
    assert [(p.path, p.message) for p in err.value.problems] == [
        ("[None]", "key None (NoneType) is not a string (quote it)")
    ]
    with pytest.raises(ConfigError) as err:
        manager.set_active_config({"app": {"tiers": [{False: "x"}]}})
    assert err.value.problems[0].path == "app.tiers.0[False]"


def test_a_long_python_key_is_cut_on_one_line():
    key = tuple(range(1000))
    path, message = tree_problem({"a": {key: 1}})
    assert path.startswith("a[(0, 1, 2, ") and path.endswith("…]") and len(path) < 100
    assert "(tuple) is not a string" in message and len(message) < 200


def test_a_key_whose_repr_raises_is_still_named_by_its_type():
    class Odd:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    path, message = tree_problem({"a": {Odd(): 1}})
    assert path == "a[<Odd>]"
    assert message == "key <Odd> (Odd) is not a string (quote it)"


def test_an_int_key_past_the_digit_limit_is_named_not_raised():
    path, message = tree_problem({"a": {10**5000: 1}})
    assert path == "a[<int>]" and "(int) is not a string" in message


def test_ab_test_configurations_name_a_python_key_in_brackets():
    now = datetime.now(timezone.utc)
    test = ABTestConfiguration(
        "t", "", now - timedelta(days=1), now + timedelta(days=9),
        {"control": 50.0, "b": 50.0}, {"control": {None: 1}, "b": {"None": 2}}, ["buy"],
        metric_types={None: "binary"},
    )  # fmt: skip
    found = test.validate()
    assert (
        "t: configurations.control[None]: key None (NoneType) is not a string (quote it)" in found
    )
    assert any(line.startswith("t: metric_types[None]: ") for line in found), found
    assert not any("configurations.b" in line for line in found)


@pytest.mark.parametrize(
    ("key", "shown", "text_shown"),
    [(None, "[None]", ".None"), (1, "[1]", ".1"), (1.5, "[1.5]", '["1.5"]'),
     (True, "[True]", ".True")],
)  # fmt: skip
def test_ab_test_traffic_split_names_a_python_key_in_brackets(key, shown, text_shown):
    now = datetime.now(timezone.utc)
    test = ABTestConfiguration(
        "t", "", now - timedelta(days=1), now + timedelta(days=9),
        {key: "x", "b": 50.0}, {"b": {}}, ["buy"],
    )  # fmt: skip
    found = test.validate()
    assert f"t: traffic_split{shown}: not a usable variant name" in found
    assert f"t: traffic_split{shown}: weight must be a number, got 'x'" in found
    assert f"t: configurations{shown}: missing: every variant needs a configuration" in found
    # the text key of the same letters is a usable name, named apart
    text = ABTestConfiguration(
        "t", "", now - timedelta(days=1), now + timedelta(days=9),
        {str(key): "x", "b": 50.0}, {"b": {}}, ["buy"],
    )  # fmt: skip
    assert f"t: traffic_split{text_shown}: weight must be a number, got 'x'" in text.validate()


_python_keys = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
)


@settings(max_examples=examples(60), deadline=None)
@given(key=_python_keys, depth=st.integers(0, 3))
def test_any_python_key_is_named_apart_from_its_text(key, depth):
    parents = tuple(f"s{i}" for i in range(depth))
    value: object = {key: 1}
    text: object = {str(key): math.nan}  # the text key, refused for its value
    for p in reversed(parents):
        value, text = {p: value}, {p: text}
    path, message = tree_problem(value)
    assert path == "".join(f".{p}" for p in parents).lstrip(".") + f"[{key!r}]"
    assert f"({type(key).__name__}) is not a string" in message
    other, _ = tree_problem(text)
    assert other != path
