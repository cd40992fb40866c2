"""A file, directory or store option given as empty text is a usage error (exit 2).

README and docs/experiments.md: a wrong command line (an option's value malformed,
empty or out of range) is a usage error, exit status 2, one ``cfgcore: error:`` line
naming the option, nothing written, on every ``experiment`` subcommand and ``flags
stale``. An empty path (``--metrics "$METRICS"`` with the variable unset) was taken
as "not given": ``report --metrics ''`` read the state directory's logs instead and
exited 0, ``--plot ''`` drew nothing and said nothing, ``flags stale --usage ''`` read
the default usage file; ``--flags ''`` failed exit 1 naming the working directory
("unknown flag file extension"), ``--store ''`` and ``--state-dir ''`` exit 1 with
"no dynamic-config flags file". And ``report --mde nan`` (or ``inf``) was not judged
as ``--mde 0`` is: exit 0 without data, exit 1 with. Real CLI, real flag files."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli
from tests.test_experiment_cli_update import (
    _cli,
    _error_line,
    _full,
    _quiet_state,  # noqa: F401  (autouse: no stray state from the environment)
)


@pytest.mark.parametrize(
    "argv",
    [
        ("report", "checkout", "--metrics", ""),
        ("report", "checkout", "--exposures", ""),
        ("report", "checkout", "--plot", ""),
        ("report", "checkout", "--mde", "nan"),
        ("report", "checkout", "--mde", "inf"),
        ("list", "--store", ""),
        ("list", "--state-dir", ""),
        ("update", "checkout", "--description", "x", "--store", ""),
        ("stop", "checkout", "--state-dir", ""),
        ("ingest", ""),
    ],
    ids=lambda a: " ".join(repr(x) if not x else x for x in a),
)
def test_an_empty_or_non_finite_option_is_a_usage_error(tmp_path, capsys, argv):
    flags = tmp_path / "flags.json"
    before = _full(capsys, flags, "--start")
    code, _, err = _cli(capsys, flags, *argv)
    line = _error_line(err)
    assert code == 2, err
    option = next((a for a in reversed(argv) if a.startswith("--")), "FILE")
    assert option in line and "internal error" not in line
    assert flags.read_bytes() == before


def test_an_empty_flags_file_is_a_usage_error_naming_the_option(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "experiment", "list", "--flags", "")
    assert code == 2, err
    assert "--flags" in _error_line(err)
    code, _, err = run_cli(
        capsys, "experiment", "create", "t", "--split", "control=50,green=50", "--flags", ""
    )
    assert code == 2 and "--flags" in _error_line(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "argv",
    [
        ("stale", "--usage", ""),
        ("stale", "--audit", ""),
        ("stale", "--store", ""),
        ("stale", "--state-dir", ""),
        ("delete", "nope", "--store", ""),
    ],
)
def test_flags_commands_refuse_an_empty_path(tmp_path, capsys, argv):
    extra = () if "--state-dir" in argv else ("--state-dir", str(tmp_path / "state"))
    code, _, err = run_cli(capsys, "flags", *argv, *extra)
    assert code == 2, err
    option = next(a for a in reversed(argv) if a.startswith("--"))
    assert option in _error_line(err)
    assert not (tmp_path / "state").exists()
