"""``cfgcore audit verify`` on hostile logs: duplicate keys wherever they sit, values the
writer cannot have written, deep nesting, directories and missing files are each a
one-line verdict (exit 1), never "chain intact" and never an internal error."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.runtime.audit import AuditLog, verify
from cfgcore.runtime.events import ConfigChangeEvent
from tests.conftest import run_cli as run
from tests.fuzz import examples
from tests.texts import any_text


def _event(i: int) -> ConfigChangeEvent:
    return ConfigChangeEvent(f"a.k{i}", i, i + 1, "update_config", i, 1.7e9 + i, actor="alice")


@pytest.fixture
def lines(tmp_path):
    log = AuditLog(tmp_path / "good.jsonl")
    for i in range(3):
        log.record(_event(i))
    return (tmp_path / "good.jsonl").read_text().splitlines()


def write(tmp_path, lines):
    path = tmp_path / "audit.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_duplicate_key_fails_verification_wherever_it_sits(tmp_path, lines, capsys, where):
    line = lines[1]
    lines[1] = '{"actor":"evil",' + line[1:] if where == "before" else line[:-1] + ',"actor":"x"}'
    path = write(tmp_path, lines)
    code, out, _ = run(capsys, "audit", "verify", str(path))
    assert code == 1
    assert out == f"{path}:2: duplicate key 'actor' (edited: readers disagree on its value)\n"


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda s: s.replace('"seq":2', '"seq":1e999'), "seq inf: not a whole number"),
        (lambda s: s.replace('"seq":2', '"seq":NaN'), "NaN is not JSON"),
        (lambda s: s.replace('"seq":2', '"seq":2.0'), "seq 2.0: not a whole number"),
        (lambda s: s.replace('"seq":2', f'"seq":{2**64}'), f"seq {2**64}: not a whole number"),
        (lambda s: s.replace('"old":1', f'"old":{10**30}'), "entry seq 2 was edited"),
        (lambda s: '{"x":' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        (lambda s: "[1, 2]", "not a chained audit entry"),
    ],
)
def test_values_the_writer_cannot_have_written_fail_verification(
    tmp_path, lines, capsys, edit, problem
):
    lines[1] = edit(lines[1])
    path = write(tmp_path, lines)
    code, out, err = run(capsys, "audit", "verify", str(path))
    assert (code, err) == (1, "")
    assert out.startswith(f"{path}:2: ") and problem in out


def test_a_directory_and_a_missing_file_are_one_line_verdicts(tmp_path, capsys):
    code, out, err = run(capsys, "audit", "verify", str(tmp_path))
    assert (code, out, err) == (1, f"{tmp_path}: cannot read: Is a directory\n", "")
    code, out, _ = run(capsys, "audit", "verify", str(tmp_path / "nope.jsonl"))
    assert (code, out) == (1, f"{tmp_path / 'nope.jsonl'}: no such audit log\n")


def test_appending_after_a_tampered_last_line_still_works(tmp_path, lines):
    lines[-1] = lines[-1].replace('"seq":3', '"seq":1e999')
    path = write(tmp_path, lines)
    entry = AuditLog(path).record(_event(9))  # raised OverflowError before
    assert entry["seq"] == 3  # chained after the last usable entry (seq 2)
    assert not verify(path).ok  # and verify still reports the tampered line
    assert verify(path).line == 3


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(any_text(max_size=6), kids),
    max_leaves=10,
)


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    replacement=st.one_of(
        st.binary(max_size=40).filter(lambda b: b"\n" not in b),
        _json.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.sampled_from(["seq", "prev", "hash", "kind"]), _json).map(
            lambda v: json.dumps(v).encode()
        ),
    )
)
def test_any_replaced_line_is_reported_never_raised(tmp_path, lines, replacement):
    original = lines[1].encode()
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"\n".join([lines[0].encode(), replacement, lines[2].encode()]) + b"\n")
    result = verify(path)
    assert result.ok == (replacement == original)
    if not result.ok:
        assert result.file == str(path) and result.line in (2, 3) and result.problem
