"""``cfgcore experiment ingest`` of a file with a line longer than any event (audit 8).

Lines were read with the file's own iteration, so a file without newlines (a binary
given by mistake, a damaged export) was read whole into memory as one line before it
was found unusable. Now a line past the logs' ``MAX_LINE`` is passed over to its
newline in pieces and reported as an unusable line with its file and line."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from cfgcore.cli import main
from cfgcore.cli.experiment import _lines
from cfgcore.experiments import exposures
from cfgcore.experiments.exposures import read_exposures

BOUND = 1 << 20  # MAX_LINE for this test, so that a line past it stays small on disk


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["experiment", "create", "st", "--split", "control=50,b=50", "--start"]) == 0
    monkeypatch.setattr(exposures, "MAX_LINE", BOUND, raising=False)
    return tmp_path


def test_a_line_past_the_bound_is_an_unusable_line_never_held_whole(state, capsys):
    path = state / "events.jsonl"
    with open(path, "wb") as fh:
        fh.write(json.dumps({"test": "st", "user": "u1", "variant": "b"}).encode() + b"\n")
        fh.write(b"\x00" * (24 << 20) + b"\n")  # line 2
        fh.write(json.dumps({"test": "st", "user": "u2", "variant": "b"}).encode() + b"\n")
        fh.write(b"x" * (3 * BOUND))  # line 4: the end of the file, no newline
    capsys.readouterr()
    assert main(["experiment", "ingest", str(path)]) == 1  # unusable lines
    err = capsys.readouterr().err
    for line in (2, 4):
        assert f"cfgcore: error: {path}:{line}: line longer than " in err
    users = [e.user for e in read_exposures(str(state / "flags.exposures.jsonl"))]
    assert users == ["u1", "u2"]
    tracemalloc.start()
    try:
        lines = [len(line or b"") for _, line in _lines(str(path))]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(lines) == 4 and peak < 8 * BOUND  # never the 24 MiB line, whole
