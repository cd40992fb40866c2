"""Round 4, hostile YAML: a value its tag's constructor refuses, and merge-key chains.

PyYAML's constructors raised bare ValueError/KeyError/AttributeError for ``!!int abc``,
a date ``2024-02-30`` or ``!!bool maybe``: no file, line or key path, and
``ConfigurationManager.reload()`` raised instead of returning False with
``last_error`` set. Merge keys (``<<``) copy entries, so a file of N lines each merging
the previous one and adding a key copied N²/2 entries (200 KB: 30 s of CPU, 700 MB).
"""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.audit import AuditLog
from cfgcore.yamlio import MAX_MERGED, load_yaml


@pytest.mark.parametrize(
    ("text", "line", "path", "says"),
    [
        ("db:\n  password: !!int hunter2\n", 2, "db.password", "not an integer"),
        ("db:\n  password: !!float hunter2\n", 2, "db.password", "not a number"),
        ("db:\n  password: !!bool hunter2\n", 2, "db.password", "not a boolean"),
        ("db:\n  password: !!timestamp hunter2\n", 2, "db.password", "not a date or time"),
        ("a:\n  - x\n  - 2024-02-30\n", 3, "a.1", "day is out of range for month"),
        ("a:\n  b: 2001-13-45\n", 2, "a.b", "month must be in 1..12"),
        ("a:\n  n: " + "7" * 5000 + "\n", 2, "a.n", "integer out of range"),
        ("a:\n  n: !!int " + "7" * 5000 + "\n", 2, "a.n", "integer out of range"),
        ("a:\n  ? !!int hunter2\n  : 1\n", 2, "a", "not an integer"),
    ],
    ids=["int", "float", "bool", "timestamp", "feb-30", "month-13", "digits", "tag-digits", "key"],
)
def test_a_value_its_tag_refuses_is_a_config_error_naming_file_line_and_path(
    text, line, path, says
):
    with pytest.raises(ConfigError) as err:
        load_yaml(text, file="svc.yaml")
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.path) == ("svc.yaml", line, path)
    assert says in problem.message
    assert "hunter2" not in str(err.value)  # the value may be a password: never echoed


def test_a_huge_integer_is_a_limits_problem():
    with pytest.raises(ConfigError) as err:
        load_yaml("n: " + "1" * 4400 + "\n", file="f.yaml")
    assert err.value.problems[0].kind == "limits"


def test_reload_of_a_file_with_an_impossible_date_keeps_the_last_good_version(tmp_path):
    path = tmp_path / "development.yaml"
    path.write_text("app:\n  name: svc\n")
    m = ConfigurationManager(
        tmp_path, environment="development", environ={}, audit_log=tmp_path / "audit.jsonl"
    )
    m.load_environment_config()
    path.write_text("app:\n  name: other\n  version: 2024-02-30\n")
    assert m.reload() is False
    assert m.get("app.name") == "svc"
    assert m.last_error.problems[0].path == "app.version"
    assert m.last_error.problems[0].line == 3
    assert [e["kind"] for e in AuditLog.read(tmp_path / "audit.jsonl")] == ["load", "error"]


def _merge_chain(n):
    lines = ["l0: &l0 {k0: 1}"]
    lines += [f"l{i}: &l{i} {{<<: *l{i - 1}, k{i}: 1}}" for i in range(1, n)]
    return "\n".join(lines) + "\n"


def test_a_chain_of_merge_keys_is_refused_where_it_passes_the_bound():
    # 2,000 lines copy 2 million entries: past MAX_MERGED at the 1,415th line.
    with pytest.raises(ConfigError) as err:
        load_yaml(_merge_chain(2000), file="m.yaml")
    (problem,) = err.value.problems
    assert problem.kind == "limits" and "merge keys" in problem.message
    copied = 0
    for i in range(2000):
        copied += i  # line i+1 merges the i entries of the line before
        if copied > MAX_MERGED:
            break
    assert (problem.file, problem.line, problem.path) == ("m.yaml", i + 1, f"l{i}")


def test_merge_keys_within_the_bound_keep_their_meaning():
    doc = load_yaml(
        "base: &base {a: 1, b: 2}\n"
        "more: &more {c: 3}\n"
        "svc:\n  <<: [*base, *more]\n  d: 4\n"
        "one:\n  <<: *more\n"
        "chain: " + "{<<: " * 20 + "{z: 1}" + "}" * 20 + "\n"
    )
    assert doc["svc"] == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert list(doc["svc"]) == ["c", "a", "b", "d"]  # PyYAML's order: the last merged first
    assert doc["one"] == {"c": 3}
    assert doc["chain"] == {"z": 1}
    assert load_yaml(_merge_chain(300))["l299"] == {f"k{i}": 1 for i in range(300)}


@pytest.mark.parametrize(
    "text",
    [
        "a: {<<: 1}\n",
        "a: {<<: [1]}\n",
        "x: &x [1]\na: {<<: *x}\n",
    ],
)
def test_a_merge_of_something_not_a_mapping_is_a_syntax_error(text):
    with pytest.raises(ConfigError, match="invalid YAML: expected a mapping"):
        load_yaml(text, file="f.yaml")


def test_a_long_string_aliased_many_times_is_refused():
    # 1 MB of file, written out in full per reference by `cfgcore show`/`get`, JSON or
    # a published copy: 100 MB. Only values were counted (101 of them), so it loaded.
    big = "x" * (1 << 20)
    text = f'blob: &a "{big}"\nlist: [{", ".join(["*a"] * 100)}]\n'
    with pytest.raises(ConfigError) as err:
        load_yaml(text, file="big.yaml")
    (problem,) = err.value.problems
    assert problem.kind == "limits" and problem.file == "big.yaml"
    assert "characters of text" in problem.message


def test_aliases_within_the_text_bound_load():
    text = f'blob: &a "{"y" * 1000}"\nlist: [{", ".join(["*a"] * 1000)}]\n'
    doc = load_yaml(text)
    assert len(doc["list"]) == 1000 and doc["list"][-1] == "y" * 1000


@pytest.mark.parametrize("levels", [300, 990])
def test_mappings_nested_as_keys_are_a_config_error_not_a_recursion_error(levels):
    text = "chain: " + "{? " * levels + "x" + ": 1}" * levels + "\n"
    with pytest.raises(ConfigError) as err:
        load_yaml(text, file="keys.yaml")
    assert err.value.problems[0].file == "keys.yaml"
