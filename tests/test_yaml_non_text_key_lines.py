"""A key that is not text (a number, a boolean, null, a date: ``1.5:`` unquoted) is
refused naming its own line and its key path with the key as the file spells it, quoted
where it holds a dot: ``app["1.5"]``. A float key was shown ``app.1.5`` (key ``1`` of
``app``, then ``5``) and its error named the line of ``app``; ``null:`` and ``true:``
were shown ``None`` and ``True``, and a list used as a key (``? [1]``) ``app[""]``.
A flag file refuses the same keys with the same error."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.files import parse_text, read_config_file
from cfgcore.errors import ConfigError, format_key_path
from cfgcore.snapshot import SnapshotError, load_snapshot
from tests.fuzz import examples

LEADING = "app:\n  name: x\n  other: y\n"


@pytest.mark.parametrize(
    ("key", "shown"),
    [("1.5", 'app["1.5"]'), ("-0.25", 'app["-0.25"]'), ("1e3", "app.1e3"),
     ("7", "app.7"), ("true", "app.true"), ("2024-01-01", "app.2024-01-01")],
)  # fmt: skip
def test_a_key_that_is_not_text_is_named_on_its_own_line(key, shown):
    with pytest.raises(ConfigError) as err:
        parse_text(LEADING + f"  {key}: z\n", "yaml", "d.yaml")
    (problem,) = err.value.problems
    assert (problem.path, problem.line) == (shown, 4)
    assert "not a string (quote it)" in problem.message


# (the key as the file writes it, the key path shown, what the message calls it)
SPELT = [
    ("null", "null", "app.null", "null"),
    ("~", "~", "app.~", "null"),
    ("true", "true", "app.true", "a boolean"),
    ("FALSE", "FALSE", "app.FALSE", "a boolean"),
    ("1.5", "1.5", 'app["1.5"]', "a number"),
    ("? [1]\n  ", "[1]", 'app["[1]"]', "a list"),
    ("? [a, [b]]\n  ", "[a, [b]]", 'app["[a, [b]]"]', "a list"),
    ("? {b: 1}\n  ", "{b: 1}", "app.{b: 1}", "a mapping"),
    ("? - 1\n    - 2\n  ", "[1, 2]", 'app["[1, 2]"]', "a list"),
]


def _written(key: str, top: str) -> str:
    # the key on line 4, below two keys of the same mapping
    return f"{top}:\n  name: x\n  other: y\n  {key}: z\n"


@pytest.mark.parametrize(("written", "spelt", "path", "kind"), SPELT, ids=[s[1] for s in SPELT])
def test_a_config_file_names_a_non_text_key_as_the_file_spells_it(
    tmp_path, written, spelt, path, kind
):
    f = tmp_path / "d.yaml"
    f.write_text(_written(written, "app"))
    with pytest.raises(ConfigError) as err:
        read_config_file(str(f))
    (problem,) = err.value.problems
    assert (problem.path, problem.line, problem.file) == (path, 4, str(f))
    assert problem.message == f"key {spelt} is {kind}, not a string (quote it)"
    for python in ("None", "True", "False", "(bool)", 'app[""]'):
        assert python not in str(err.value)


@pytest.mark.parametrize(("written", "spelt", "path", "kind"), SPELT, ids=[s[1] for s in SPELT])
def test_a_flag_file_names_a_non_text_key_as_a_config_file_does(
    tmp_path, written, spelt, path, kind
):
    config, flags = tmp_path / "d.yaml", tmp_path / "flags.yaml"
    config.write_text(_written(written, "app"))
    flags.write_text(_written(written, "flags"))
    with pytest.raises(ConfigError) as from_config:
        read_config_file(str(config))
    with pytest.raises(SnapshotError) as from_flags:
        load_snapshot(str(flags))
    (want,) = from_config.value.problems
    (problem,) = from_flags.value.problems
    assert problem.path == "flags" + path[len("app") :]
    assert (problem.line, problem.file, problem.message) == (want.line, str(flags), want.message)


def test_a_non_text_key_deep_in_a_flag_is_named_on_its_line(tmp_path):
    f = tmp_path / "flags.yaml"
    f.write_text("flags:\n  f:\n    enabled: true\n    variants:\n      on: 1\n      null: 2\n")
    with pytest.raises(SnapshotError) as err:
        load_snapshot(str(f))
    (problem,) = err.value.problems
    assert (problem.path, problem.line) == ("flags.f.variants.null", 6)
    assert problem.message == "key null is null, not a string (quote it)"


def test_a_long_key_that_is_not_text_is_shortened_on_one_line(tmp_path):
    f = tmp_path / "d.yaml"
    f.write_text("app:\n  ? [" + ", ".join(f"item{i}" for i in range(100)) + "]\n  : z\n")
    with pytest.raises(ConfigError) as err:
        read_config_file(str(f))
    (problem,) = err.value.problems
    assert problem.line == 2
    assert problem.path.startswith('app["[item0, item1, ') and problem.path.endswith('…"]')
    assert len(problem.path) < 100 and "\n" not in str(err.value)


def test_a_key_that_is_a_list_is_refused_where_other_keys_are_read(tmp_path):
    # Readers that take numbers as keys (an old flat file: "8080: web") still cannot
    # take a list: refused the same way, not as PyYAML's "found unhashable key".
    from cfgcore.yamlio import load_yaml

    assert load_yaml("a:\n  8080: web\n") == {"a": {8080: "web"}}
    with pytest.raises(ConfigError) as err:
        load_yaml("a:\n  ? [1]\n  : x\n", file="old.yaml")
    (problem,) = err.value.problems
    assert (problem.path, problem.line) == ('a["[1]"]', 2)
    assert problem.message == "key [1] is a list, not a string (quote it)"


@settings(max_examples=examples(40), deadline=None)
@given(
    key=st.floats(allow_nan=False, allow_infinity=False, width=64),
    depth=st.integers(0, 3),
)
def test_any_float_key_is_named_on_its_line_at_any_depth(key, depth):
    parents = [f"s{i}" for i in range(depth)]
    text = "".join(f"{'  ' * i}{p}:\n{'  ' * (i + 1)}pad: 1\n" for i, p in enumerate(parents))
    text += f"{'  ' * depth}{key!r}: z\n"
    with pytest.raises(ConfigError) as err:
        parse_text(text, "yaml", "d.yaml")
    (problem,) = err.value.problems
    assert problem.line == 2 * depth + 1
    assert problem.path == format_key_path((*parents, str(key)))
