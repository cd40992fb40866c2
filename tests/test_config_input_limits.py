"""Issue 10, items 3 and 4: bad numbers, deep values, duplicate keys and empty files
are refused with the file and key path, an error event and an audit record."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.config.files import INT_MAX, INT_MIN, MAX_DEPTH, parse_text, tree_problem
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import MAX_READ_BYTES, atomic_write
from cfgcore.runtime.audit import AuditLog
from cfgcore.yamlio import _depth_bound
from tests.fuzz import examples
from tests.texts import any_text
from tests.waiting import wait_for

HUGE = "9" * 5000

# The same document in each format, with {n} where the integer goes.
DOCS = {
    "yaml": "app:\n  name: svc\n  limits:\n    n: {n}\n",
    "json": '{{"app": {{"name": "svc", "limits": {{"n": {n}}}}}}}',
    "toml": '[app]\nname = "svc"\n[app.limits]\nn = {n}\n',
}


def _manager(tmp_path, **kw):
    return ConfigurationManager(
        tmp_path, environment="development", environ={}, audit_log=tmp_path / "audit.jsonl", **kw
    )


# --- item 3: numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(DOCS))
def test_a_5000_digit_int_on_first_load_is_a_config_error_with_its_path(tmp_path, fmt):
    path = tmp_path / f"development.{fmt}"
    path.write_text(DOCS[fmt].format(n=HUGE))
    m = _manager(tmp_path)
    seen = []
    m.register_change_listener(seen.append)
    with pytest.raises(ConfigError) as err:
        m.load_environment_config()
    (problem,) = err.value.problems
    assert problem.file == str(path) and problem.path == "app.limits.n"
    assert problem.line == (4 if fmt != "json" else 1)
    assert "64 bits" in problem.message
    assert m.last_error is err.value
    assert [e.kind for e in seen] == ["error"]
    assert [e["kind"] for e in AuditLog.read(tmp_path / "audit.jsonl")] == ["error"]


@pytest.mark.parametrize("fmt", sorted(DOCS))
@pytest.mark.parametrize(
    ("n", "ok"),
    [
        (INT_MAX, True),
        (INT_MAX + 1, False),
        (INT_MIN, True),
        (INT_MIN - 1, False),
        (10**400, False),
    ],
)
def test_integers_must_fit_in_64_bits_in_every_format(tmp_path, fmt, n, ok):
    text = DOCS[fmt].format(n=n)
    if ok:
        assert parse_text(text, fmt, "f")["app"]["limits"]["n"] == n
    else:
        with pytest.raises(ConfigError, match=r"app\.limits\.n: integer out of range"):
            parse_text(text, fmt, "f")


def test_a_huge_int_written_while_hot_reloading_is_refused_once_without_tracebacks(
    tmp_path, caplog
):
    path = tmp_path / "development.yaml"
    path.write_text(DOCS["yaml"].format(n=1))
    m = _manager(tmp_path)
    m.load_environment_config()
    polls = []
    real_poll = m.reloader.poll

    def counting_poll():
        polls.append(1)
        real_poll()

    m.reloader.poll = counting_poll  # before enable: the watcher binds it then
    errors = []
    m.register_change_listener(lambda e: errors.append(e) if e.kind == "error" else None)
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    m.enable_hot_reload(poll_interval=0.02)
    try:
        # Replaced in one step: write_text truncates first, and a writer descheduled for
        # 100 ms on a loaded machine leaves an empty file long enough to be refused on
        # its own (a second, correct refusal this test is not about).
        atomic_write(path, DOCS["yaml"].format(n=HUGE).encode())
        assert wait_for(lambda: errors)
        seen_polls = len(polls)
        assert wait_for(lambda: len(polls) >= seen_polls + 5)  # several polls later...
    finally:
        m.close()
    assert len(errors) == 1  # ...still one refusal, not one per poll
    assert m.get("app.limits.n") == 1 and "app.limits.n" in str(m.last_error)
    assert not [r for r in caplog.records if r.exc_info]  # no traceback logged
    audit = [e["kind"] for e in AuditLog.read(tmp_path / "audit.jsonl")]
    assert audit == ["load", "error"]


def test_reload_returns_false_for_a_huge_int(tmp_path):
    path = tmp_path / "development.toml"
    path.write_text(DOCS["toml"].format(n=7))
    m = _manager(tmp_path)
    m.load_environment_config()
    path.write_text(DOCS["toml"].format(n=HUGE))
    assert m.reload() is False
    assert m.get("app.limits.n") == 7
    assert m.last_error.problems[0].path == "app.limits.n"


def _deep(levels):
    root = node = {}
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return root


@pytest.mark.parametrize(
    "value",
    [_deep(10_000), [_deep(MAX_DEPTH)], int(HUGE[:4000]), -(2**70)],
    ids=["10000-deep", "deep-in-list", "4000-digits", "70-bit-negative"],
)
def test_update_config_refuses_unusable_values_with_event_and_audit(tmp_path, value):
    (tmp_path / "development.yaml").write_text("app:\n  name: svc\n")
    m = _manager(tmp_path)
    m.load_environment_config()
    seen = []
    m.register_change_listener(seen.append)
    before = m.snapshot
    assert m.update_config("app.extra", value) is False
    assert m.snapshot is before
    assert m.last_error.problems[0].path.startswith("app.extra")
    assert [e.kind for e in seen] == ["error"]
    audit = AuditLog.read(tmp_path / "audit.jsonl")
    assert audit[-1]["kind"] == "error" and audit[-1]["path"] == "app.extra"
    assert audit[-1]["new"].startswith("<refused")


def test_update_config_refuses_a_self_referencing_value(tmp_path):
    (tmp_path / "development.yaml").write_text("app:\n  name: svc\n")
    m = _manager(tmp_path)
    m.load_environment_config()
    loop: list = []
    loop.append(loop)
    assert m.update_config("app.loop", loop) is False
    assert "nested more than" in str(m.last_error)


def test_set_active_config_refuses_a_10000_deep_value(tmp_path):
    (tmp_path / "development.yaml").write_text("app:\n  name: svc\n")
    m = _manager(tmp_path)
    m.load_environment_config()
    seen = []
    m.register_change_listener(seen.append)
    before = m.snapshot
    with pytest.raises(ConfigError, match="nested more than 100 levels") as err:
        m.set_active_config({"app": {"name": "svc", "deep": _deep(10_000)}})
    assert err.value.problems[0].path.startswith("app.deep.a")
    assert m.snapshot is before and m.last_error is err.value
    assert [e.kind for e in seen] == ["error"]
    assert AuditLog.read(tmp_path / "audit.jsonl")[-1]["kind"] == "error"
    # The limit counts from the root, as for files.
    with pytest.raises(ConfigError):
        m.set_active_config({"app": _deep(MAX_DEPTH)})
    m.set_active_config({"app": _deep(MAX_DEPTH - 2)})


def test_tree_problem_never_recurses():
    assert tree_problem(_deep(100_000)) is not None
    assert tree_problem({"a": [1, {"b": True}], "c": 2**63}) is None
    assert tree_problem({"a": [1, {"b": 2**64}]}) == (
        "a.1.b",
        "integer out of range (65 bits; configuration integers must fit in 64 bits)",
    )
    assert tree_problem({"flag": True}) is None  # bool is an int, but never out of range


# --- item 4: duplicate JSON keys, empty files -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        ('{"app": 1,\n "app": 2}', "app", 2),
        ('{"app": {"name": "a",\n\n  "name": "b"}}', "app.name", 3),
        ('{"list": [{"k": 1}, {"k": 2,\n "k": 3}]}', "list.1.k", 2),
    ],
)
def test_duplicate_json_keys_are_refused_with_path_and_line(tmp_path, text, path, line):
    (tmp_path / "development.json").write_text(text)
    m = _manager(tmp_path)
    with pytest.raises(ConfigError, match="duplicate key") as err:
        m.load_environment_config()
    (problem,) = err.value.problems
    assert (problem.path, problem.line) == (path, line)
    assert problem.file == str(tmp_path / "development.json")


def test_duplicate_json_keys_are_refused_on_reload_and_by_validate(tmp_path, capsys):
    path = tmp_path / "development.json"
    path.write_text('{"app": {"name": "a"}}')
    m = _manager(tmp_path)
    m.load_environment_config()
    path.write_text('{"app": {"name": "a", "name": "b"}}')
    assert m.reload() is False and m.get("app.name") == "a"
    assert main(["validate", str(path)]) == 1
    assert "duplicate key 'name'" in capsys.readouterr().err


def test_json_without_duplicates_still_loads_nan_does_not(tmp_path):
    assert parse_text('{"a": {"b": [1, 2.5, "x", null, true]}}', "json", "f") == {
        "a": {"b": [1, 2.5, "x", None, True]}
    }
    with pytest.raises(ConfigError, match="NaN is not JSON"):
        parse_text('{"a": NaN}', "json", "f")
    with pytest.raises(ConfigError, match="invalid JSON"):
        parse_text('{"a": 1,}', "json", "f")


@pytest.mark.parametrize("fmt", ["yaml", "json", "toml"])
@pytest.mark.parametrize("stem", ["base", "development"])
@pytest.mark.parametrize("text", ["", " \n\t\r\n"], ids=["zero-byte", "whitespace"])
def test_empty_file_is_refused_on_first_load(tmp_path, fmt, stem, text):
    other = "development" if stem == "base" else "base"
    (tmp_path / f"{other}.yaml").write_text("app:\n  name: svc\n")
    (tmp_path / f"{stem}.{fmt}").write_text(text)
    m = _manager(tmp_path)
    with pytest.raises(ConfigError, match="file is empty") as err:
        m.load_environment_config()
    assert err.value.problems[0].file == str(tmp_path / f"{stem}.{fmt}")
    assert m.version == 0
    # An intentionally empty layer says so ('{}', or for TOML a comment).
    (tmp_path / f"{stem}.{fmt}").write_text("{}" if fmt != "toml" else "# nothing\n")
    m.load_environment_config()
    assert m.get("app.name") == "svc"


def test_empty_custom_profile_file_is_refused(tmp_path):
    (tmp_path / "development.yaml").write_text("app:\n  name: svc\n")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "fast.yaml").write_text("")
    m = ConfigurationManager(tmp_path, environment="development", profile="fast", environ={})
    with pytest.raises(ConfigError, match="empty"):
        m.load_environment_config()


def test_concurrent_readers_never_see_a_refused_value(tmp_path):
    """While refused inputs arrive, readers keep getting the last good value."""
    path = tmp_path / "development.json"
    path.write_text('{"app": {"n": 1}}')
    m = _manager(tmp_path)
    m.load_environment_config()
    seen = set()
    stop = threading.Event()

    def read():
        while not stop.is_set():
            seen.add(m.get("app.n"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for bad in ['{"app": {"n": 2, "n": 3}}', "", "  ", '{"app": {"n": ' + HUGE + "}}"]:
            path.write_text(bad)
            assert m.reload() is False
    finally:
        stop.set()
        reader.join()
    assert seen == {1}
    assert json.loads(json.dumps(AuditLog.read(tmp_path / "audit.jsonl")))[-1]["kind"] == "error"


@pytest.mark.parametrize(
    ("tree", "path"),
    [
        ({"server": {"port": 10**5000}}, "server.port"),
        (
            {"gdpr_compliance": {"data_retention": {"logs_days": 10**400}}},
            "gdpr_compliance.data_retention.logs_days",
        ),
        (
            {"auto_scaling": {"min_replicas": -(2**64), "max_replicas": 1}},
            "auto_scaling.min_replicas",
        ),
        ({"app": [_deep(150), {"n": 2**64}]}, "app.1.n"),
    ],
)
def test_the_validator_reports_unusable_trees_once_instead_of_crashing_rules(tree, path):
    from cfgcore.validation_engine import validate_configuration

    report = validate_configuration(tree, "production")
    assert [(r.rule_id, r.key_path, r.severity) for r in report.failures] == [
        ("structure.limits", path, "critical")
    ]
    assert not report.overall_valid


# --- nesting the YAML composer cannot survive ------------------------------------------------
# PyYAML's C composer recurses on the C stack: 30,000 levels crashed the process (and a
# reload thread's 8 MB stack crashes sooner). Each case runs in a child process, so a
# regression fails the test instead of killing the test run.

DEEP = {
    "flow": "a: " + "[" * 40_000 + "]" * 40_000 + "\n",
    "block sequence": "a:\n" + "- " * 40_000 + "x\n",
    "flow mapping": "a: " + "{b: " * 40_000 + "1" + "}" * 40_000 + "\n",
}


def _in_child(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("kind", sorted(DEEP))
def test_yaml_nested_beyond_the_parse_limit_is_an_error_on_any_thread(tmp_path, kind):
    path = tmp_path / "deep.yaml"
    path.write_text(DEEP[kind])
    code = f"""
import threading
from cfgcore.config.files import read_config_file
from cfgcore.errors import ConfigError
from cfgcore.snapshot import load_snapshot
def main():
    for load in (read_config_file, load_snapshot):
        try:
            load({str(path)!r})
        except ConfigError as exc:
            print(exc)
t = threading.Thread(target=main)
t.start(); t.join()
"""
    done = _in_child(code)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert f"{path}:" in line and "nested more than 1,000 levels deep" in line


def test_json_with_a_duplicate_key_and_deep_nesting_is_refused_without_a_crash(tmp_path):
    text = '{"x": {"a": 1, "a": 2}, "b": ' + "[" * 30_000 + "]" * 30_000 + "}"
    done = _in_child(
        "from cfgcore.config.files import parse_text\n"
        "from cfgcore.errors import ConfigError\n"
        "try:\n"
        f"    parse_text({text!r}, 'json', 'x.json')\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "x.json" in done.stdout and "duplicate key 'a'" in done.stdout


def test_deep_yaml_written_while_hot_reloading_keeps_the_last_good_config(tmp_path):
    path = tmp_path / "development.yaml"
    path.write_text(DOCS["yaml"].format(n=1))
    m = _manager(tmp_path)
    m.load_environment_config()
    errors = []
    m.register_change_listener(lambda e: errors.append(e) if e.kind == "error" else None)
    m.enable_hot_reload(poll_interval=0.02)
    try:
        path.write_text(DEEP["flow"])
        # write_text truncates first: a writer stalled past the settle window on a busy
        # machine shows the empty file first, refused as such; the deep one follows.
        assert wait_for(lambda: any("levels deep" in str(e.error) for e in errors))
        assert m.get("app.limits.n") == 1
        assert "levels deep" in str(m.last_error) and str(path) in str(m.last_error)
        path.write_text(DOCS["yaml"].format(n=2))
        assert wait_for(lambda: m.get("app.limits.n") == 2)
    finally:
        m.close()


def _nested():
    return st.recursive(
        st.one_of(st.integers(), any_text(max_size=3), st.none()),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(any_text(max_size=3), inner, max_size=3)
        ),
        max_leaves=40,
    )


def _depth(node) -> int:
    if isinstance(node, dict):
        return 1 + max(map(_depth, node.values()), default=0)
    if isinstance(node, list):
        return 1 + max(map(_depth, node), default=0)
    return 0


@settings(max_examples=examples(200), deadline=None)
@given(doc=_nested(), style=st.sampled_from([None, True, False]))
def test_the_nesting_bound_never_underestimates(doc, style):
    """The cheap pre-check decides whether the event scan runs: it must bound the depth
    of every document from above, in block, flow and mixed styles."""
    text = yaml.safe_dump({"root": doc}, default_flow_style=style)
    assert _depth_bound(text) >= _depth({"root": doc})
    assert _depth_bound(text.encode()) == _depth_bound(text)


# --- files that are not files ---------------------------------------------------------------


def _not_a_file(tmp_path, kind, name):
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)  # an open for reading would wait for a writer forever
    elif kind == "device":
        path.symlink_to("/dev/zero")  # endless
    else:  # over the size limit (sparse: no disk used)
        with open(path, "wb") as fh:
            fh.truncate(MAX_READ_BYTES + 1)
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs and /dev/zero are POSIX")
@pytest.mark.parametrize("kind", ["fifo", "device", "huge"])
def test_config_and_flag_files_that_are_not_bounded_regular_files_are_refused(tmp_path, kind):
    from cfgcore.config.files import read_config_file
    from cfgcore.engine import Engine
    from cfgcore.runtime.flagstore import FileFlagStore

    why = "over the 64 MiB limit" if kind == "huge" else "not a regular file"
    config = _not_a_file(tmp_path, kind, "development.yaml")
    with pytest.raises(ConfigError, match=why) as err:
        read_config_file(str(config))
    assert str(config) in str(err.value)
    flags = _not_a_file(tmp_path, kind, "flags.yaml")
    with pytest.raises(ConfigError, match=why):
        Engine.from_file(str(flags))
    with pytest.raises(ConfigError, match=why):
        FileFlagStore(flags).read()


# --- values JSON cannot hold ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "text", "path", "message"),
    [
        ("yaml", "app:\n  1: x\n  '1': y\n", "app.1", "key 1 is an integer, not a string"),
        ("yaml", "app:\n  null: x\n", "app.null", "key null is null, not a string"),
        ("yaml", "app:\n  1.5: x\n", 'app["1.5"]', "key 1.5 is a number, not a string"),
        ("yaml", "app:\n  b: !!binary aGVsbG8=\n", "app.b", "a bytes is not a configuration"),
        ("yaml", "app:\n  s: !!set {x, y}\n", "app.s", "a set is not a configuration"),
        ("yaml", "app:\n  - .nan\n", "app.0", "nan is not a finite number"),
        ("yaml", "app:\n  t: -.inf\n", "app.t", "-inf is not a finite number"),
        ("toml", "[app]\na = nan\n", "app.a", "nan is not a finite number"),
        ("toml", "[app]\nb = inf\n", "app.b", "inf is not a finite number"),
    ],
)
def test_keys_and_values_json_cannot_hold_are_refused_with_their_path(fmt, text, path, message):
    with pytest.raises(ConfigError) as err:
        parse_text(text, fmt, f"development.{fmt}")
    (problem,) = err.value.problems
    assert (problem.path, problem.file) == (path, f"development.{fmt}")
    assert message in problem.message


def test_dates_and_finite_numbers_still_load():
    data = parse_text("app:\n  day: 2024-01-01\n  x: 1.5e+300\n  n: -3\n", "yaml", "d.yaml")
    assert str(data["app"]["day"]) == "2024-01-01" and data["app"]["x"] == 1.5e300
