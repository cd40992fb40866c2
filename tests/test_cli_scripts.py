"""The command line as scripts use it: version, verbosity, exit codes, one-line errors,
and the A/B test lifecycle (create, start, stop, list, ingest, report) end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import cfgcore
from cfgcore.cli import main
from tests.conftest import run_cli as run

# The directory cfgcore was imported from, so subprocesses import the same tree.
SRC = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))


def cli(*argv, env=None, stdin=None):
    env = {**(os.environ if env is None else env), "PYTHONPATH": SRC}
    return subprocess.run(
        [sys.executable, "-m", "cfgcore", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        input=stdin,
    )


def test_version_names_package_evaluator_and_python():
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith(f"cfgcore {cfgcore.__version__} (evaluator: ")
    assert cfgcore.IMPLEMENTATION in proc.stdout


def test_usage_errors_exit_2_and_command_errors_exit_1(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["get"])  # missing KEY
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["--log-level", "LOUD", "show"])
    assert exc.value.code == 2
    capsys.readouterr()
    assert run(capsys, "experiment")[0] == 2  # a group without its subcommand


def test_output_options_work_before_and_after_the_command(capsys):
    import logging

    from cfgcore.cli import _log_level, build_parser

    parser = build_parser()
    for argv, level in (
        (["-q", "schema"], logging.ERROR),
        (["schema", "-q"], logging.ERROR),
        (["schema", "--log-level", "error"], logging.ERROR),
        (["schema", "-vv"], logging.DEBUG),
        (["-v", "schema"], logging.INFO),
        (["-q", "schema", "--log-level", "debug"], logging.DEBUG),  # explicit level wins
        (["schema"], logging.WARNING),
    ):
        assert _log_level(parser.parse_args(argv)) == level, argv
    before = logging.getLogger("cfgcore")
    state = (before.handlers[:], before.level, before.propagate)
    code, out, err = run(capsys, "show", "app", "-v")
    assert code == 0 and out
    assert "cfgcore: INFO: cfgcore.manager: configuration directory: " in err
    code, out, err = run(capsys, "show", "app")
    assert code == 0 and "INFO" not in err
    # main() leaves logging as it found it (it also runs in-process)
    assert (before.handlers, before.level, before.propagate) == state


def test_mde_out_of_range_is_one_line_not_a_traceback(tmp_path):
    state = tmp_path / "state"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CFGCORE_STATE_DIR": str(state)}
    proc = cli("experiment", "create", "t", "--split", "control=50,b=50", "--start", env=env)
    assert proc.returncode == 0, proc.stderr
    events = "".join(
        json.dumps({"test": "t", "user": f"u{i}", "variant": "control" if i % 2 else "b"}) + "\n"
        + json.dumps({"test": "t", "user": f"u{i}", "metric": "ctr", "value": int(i % 5 == 0)})
        + "\n"
        for i in range(200)
    )  # fmt: skip
    assert cli("experiment", "ingest", "-", env=env, stdin=events).returncode == 0
    proc = cli("experiment", "report", "t", "--mde", "0.95", env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("cfgcore: error: --mde 0.95 for ctr: rates must be within")
    assert len(proc.stderr.splitlines()) == 1


def test_unexpected_exception_is_one_line_with_a_hint(capsys, monkeypatch):
    import cfgcore.cli.config as cc

    def boom(args):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cc, "_cmd_get", boom)
    code, out, err = run(capsys, "get", "x")
    assert (code, out) == (1, "")
    assert err == (
        "cfgcore: error: internal error: RuntimeError: kaboom (run with -vv for the traceback)\n"
    )
    code, _, err = run(capsys, "get", "x", "-vv")
    assert code == 1 and "Traceback" in err and "kaboom" in err


def test_experiment_lifecycle_from_the_command_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    code, _, err = run(
        capsys, "experiment", "create", "checkout", "--split", "control=50,green=50",
        "--metric", "conversion", "--config", 'green={"button": "green"}',
    )  # fmt: skip
    assert code == 0 and "not started" in err
    code, out, _ = run(capsys, "experiment", "list")
    assert out.startswith("checkout  [not started]  control 50%, green 50%")
    from cfgcore.dynamic_config import DynamicConfigurationManager

    def variants():
        m = DynamicConfigurationManager(state_dir=tmp_path, log_exposures=False)
        try:
            return {m.get_ab_test_variant("checkout", {"user_id": f"u{i}"}) for i in range(200)}
        finally:
            m.close()

    assert variants() == {"control"}  # not started: everyone gets the control
    assert run(capsys, "experiment", "start", "checkout")[0] == 0
    assert variants() == {"control", "green"}
    m = DynamicConfigurationManager(state_dir=tmp_path, log_exposures=False)
    assert m.get_ab_test_config("checkout", "green") == {"button": "green"}
    assigned = {
        f"u{i}": m.get_ab_test_variant("checkout", {"user_id": f"u{i}"}) for i in range(400)
    }
    m.close()

    # ingest: exposures without a variant get the test's own assignment
    lines = [json.dumps({"test": "checkout", "user": u}) for u in assigned]
    lines += [
        json.dumps({"type": "metric", "test": "checkout", "user": u, "metric": "conversion"})
        for u, v in assigned.items()
        if v == "green" and int(u[1:]) % 3 == 0
    ]
    metric = '{"type": "metric", "test": "checkout", "user": "u3", "metric": "conversion", '
    lines += [metric + '"value": NaN}', metric + '"value": 1' + "0" * 400 + "}"]
    lines += ['{"test": "checkout", "user": "x", "variant": "blue"}', "not json", ""]
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")
    code, _, err = run(capsys, "experiment", "ingest", str(events))
    assert code == 1  # four unusable lines, reported with file:line
    # A NaN would poison the variant's mean; an int past a float's range would not convert.
    assert f"{events}:{len(lines) - 4}: value: expected a finite number, got nan" in err
    assert f"{events}:{len(lines) - 3}: value: expected a finite number, got 1000" in err
    assert f"{events}:{len(lines) - 2}: variant 'blue': not a variant of checkout" in err
    assert f"{events}:{len(lines) - 1}: not JSON" in err
    assert "ingested 400 exposure(s)" in err

    code, out, _ = run(capsys, "experiment", "report", "checkout", "--json")
    data = json.loads(out)
    expected = {v: sum(1 for x in assigned.values() if x == v) for v in ("control", "green")}
    assert data["exposures"] == expected
    assert data["srm"]["threshold"] == 0.001
    conv = {r["variant"]: r for r in data["results"] if r["metric"] == "conversion"}
    assert conv["control"]["value"] == 0
    assert conv["green"]["successes"] == sum(
        1 for u, v in assigned.items() if v == "green" and int(u[1:]) % 3 == 0
    )
    code, out, _ = run(capsys, "experiment", "report", "checkout")
    assert "sample ratio check (mismatch if p < 0.001): chi2=" in out

    assert run(capsys, "experiment", "stop", "checkout", "--reason", "done")[0] == 0
    assert variants() == {"control"}
    code, out, _ = run(capsys, "experiment", "list", "--json")
    assert json.loads(out)["checkout"]["stopped_reason"] == "done"


def test_experiment_errors_name_the_state_and_suggest(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    code, _, err = run(capsys, "experiment", "list")
    assert code == 1 and str(tmp_path / "flags.json") in err and "create a test first" in err
    run(capsys, "experiment", "create", "checkout", "--split", "control=50,b=50")
    for argv in (["start", "chekout"], ["stop", "chekout"], ["report", "chekout"]):
        code, out, err = run(capsys, "experiment", *argv)
        assert (code, out) == (1, "")
        assert err.startswith("cfgcore: error: chekout: no such A/B test in ")
        assert err.endswith("(did you mean 'checkout'?)\n")
    code, _, err = run(capsys, "experiment", "create", "x", "--split", "a=70,b=20")
    assert code == 1 and "weights sum to 90, not 100" in err
    code, _, err = run(capsys, "experiment", "create", "x", "--split", "a=50,b")
    # a malformed option value is a usage error (exit 2), as for the other options
    assert (code, err) == (2, "cfgcore: error: --split 'b': expected NAME=VALUE\n")


def test_help_says_where_state_lives():
    out = cli("experiment", "--help").stdout
    assert "CFGCORE_STATE_DIR" in out and "XDG_STATE_HOME" in out
    top = cli("--help").stdout
    for name in ("CFGCORE_STATE_DIR", "CONFIG_ENVIRONMENT", "CFGCORE_ENVIRONMENT", "exit status"):
        assert name in top, name


def test_loading_events_reports_progress(tmp_path):
    from cfgcore.experiments.metrics import MetricsStore

    exposures = tmp_path / "e.jsonl"
    metrics = tmp_path / "m.jsonl"
    exposures.write_text(
        "".join(json.dumps({"test": "t", "variant": "a", "user": f"u{i}", "ts": 1}) + "\n"
                for i in range(3))
    )  # fmt: skip
    metrics.write_text(
        "".join(json.dumps({"test": "t", "variant": "a", "user": f"u{i}", "metric": "m",
                            "value": 1}) + "\n" for i in range(2))
    )  # fmt: skip
    seen: list[int] = []
    store = MetricsStore.load(metrics, exposures, progress=seen.append)
    assert seen == [3, 4, 5]  # exposures in one batch, then each metric event
    assert store.exposed("t", "a") == 3 and store.conversions("t", "a", "m") == 2
