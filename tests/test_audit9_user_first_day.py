"""A new user's first day: the README's commands run in a project directory.

Found by running README.md and docs/*.md as written in a scratch project:

- `cfgcore demo` ("Set up and run the demo on the bundled defaults") loaded `staging`
  from whatever configuration directory discovery chose: in a project made by
  `cfgcore setup` (development only) it failed, `no configuration file for environment
  'staging'`, and in one of the user's own keys it was `internal error: KeyError:
  'music_streaming'`. It also started `flag-usage.json` in the state directory.
- The `experiment` commands and `publish` started `flag-usage.json` too. A usage file
  says since when usage was recorded; once the window had passed, `cfgcore flags stale`
  judged every flag "not evaluated in the last 30 days" and suggested deleting it, where
  without the file it says usage was never recorded and judges none (the services
  recording elsewhere, or not at all).
- `cfgcore export --format flagd` named `ignore_case` among the operators of every
  refused condition (`operator ge, ignore_case has no exact JSONLogic form`): the field
  is always there, False.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.user_env import new_user_env

TIMEOUT = 120


def _env(tmp_path: Path) -> dict[str, str]:
    return new_user_env(tmp_path)


def _cfgcore(cwd: Path, env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cfgcore", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def _own_project(project: Path) -> None:
    """A configuration of the user's own: a staging file, none of the demo's keys."""
    (project / "config").mkdir()
    (project / "config" / "base.yaml").write_text("app: {name: mine}\n")
    (project / "config" / "staging.yaml").write_text("{}\n")


@pytest.mark.parametrize("project_kind", ["setup", "own", "named", "production"])
def test_demo_runs_on_the_embedded_defaults_in_a_project_and_writes_nothing(tmp_path, project_kind):
    env = _env(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    if project_kind == "setup":  # `cfgcore setup` writes development only
        assert _cfgcore(project, env, "-q", "setup").returncode == 0
        assert not (project / "config" / "staging.yaml").exists()
    elif project_kind == "production":  # a production shell: the demo still loads staging
        assert _cfgcore(project, env, "-q", "setup", "-e", "production").returncode == 1
        env.update(CONFIG_ENVIRONMENT="production", CFGCORE_CONFIG_DIR="config")
    else:
        _own_project(project)
    if project_kind == "named":  # the directory named, as a service names it
        env["CFGCORE_CONFIG_DIR"] = str(project / "config")
        env["CONFIG_PROFILE"] = "peak"  # a custom profile of the project (no such file)
    before = sorted(p.name for p in (tmp_path / "state").glob("*"))
    proc = _cfgcore(project, env, "demo", "--users", "200")
    assert proc.returncode == 0, proc.stderr
    assert "(embedded defaults) loaded, validated and active" in proc.stdout
    assert "premium bitrate 320 kbps" in proc.stdout
    assert "cfgcore demo: 13 flags" in proc.stdout
    assert "error" not in proc.stderr
    # nothing written: no usage file (nor anything else) in the state directory
    assert sorted(p.name for p in (tmp_path / "state").glob("*")) == before
    assert not (tmp_path / "state" / "flag-usage.json").exists()


def _stale_unused(capsys, state: Path, store: str | None = None) -> list[str]:
    """`cfgcore flags stale --json` 60 days from now: the flags it judges unused."""
    as_of = (datetime.now(timezone.utc) + timedelta(days=60)).strftime("%Y-%m-%dT%H:%MZ")
    where = ["--store", store] if store else []
    code, out, err = run_cli(capsys, "flags", "stale", "--json", "--as-of", as_of, *where)
    assert code == 0, err
    report = json.loads(out)
    assert report["usage_file"] == str(state / "flag-usage.json")
    return [e["name"] for e in report["entries"] if e["category"] == "unused"]


def test_experiment_commands_record_no_flag_usage(tmp_path, monkeypatch, capsys, no_access_policy):
    state = tmp_path / "state"
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(state))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    monkeypatch.delenv("CFGCORE_USAGE", raising=False)
    monkeypatch.chdir(tmp_path)
    events = tmp_path / "events.jsonl"
    events.write_text('{"test": "checkout", "user": "u1", "metric": "conversion", "value": 1}\n')
    for argv in (
        ["experiment", "create", "checkout", "--split", "control=50,green=50",
         "--metric", "conversion", "--start"],
        ["experiment", "list"],
        ["experiment", "update", "checkout", "--days", "20"],
        ["experiment", "ingest", str(events)],
        ["experiment", "report", "checkout"],
        ["experiment", "stop", "checkout"],
        ["experiment", "start", "checkout"],
    ):  # fmt: skip
        code, _, err = run_cli(capsys, "-q", *argv)
        assert code == 0, (argv, err)
    assert (state / "flags.json").is_file()  # the commands did write the store
    assert not (state / "flag-usage.json").exists()
    # So the stale report still says usage was never recorded, and judges no flag unused
    assert _stale_unused(capsys, state) == []


def test_publish_records_no_flag_usage(redis_server, tmp_path, monkeypatch, capsys):
    state = tmp_path / "state"
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(state))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    monkeypatch.delenv("CFGCORE_USAGE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_cli(capsys, "-q", "setup")[0] == 0
    url = f"{redis_server.url}?namespace=firstday"
    code, _, err = run_cli(capsys, "-q", "publish", "--store", url, "-e", "development", "--flags")
    assert code == 0, err
    assert not (state / "flag-usage.json").exists()
    assert _stale_unused(capsys, state, url) == []


def test_flagd_export_names_the_operator_a_condition_sets(tmp_path, capsys):
    flags = tmp_path / "flags.yaml"
    flags.write_text(
        "flags:\n"
        "  adults:\n"
        "    rules: [{when: {attr: age, ge: 18}, serve: 'on'}]\n"
        "    default: 'off'\n"
        "  staff:\n"
        "    rules: [{when: {attr: email, contains: '@example.com'}, serve: 'on'}]\n"
        "    default: 'off'\n"
    )
    code, out, err = run_cli(capsys, "export", "--format", "flagd", "--flags", str(flags))
    assert code == 1 and out == ""
    assert "flags.adults: does not fit flagd: rules[0]: operator ge has no exact" in err
    assert "flags.staff: does not fit flagd: rules[0]: operator contains has no exact" in err
    assert "ignore_case" not in err


def test_setup_help_names_both_environment_variables_it_reads(tmp_path, monkeypatch, capsys):
    """`cfgcore setup --help` said the default was `$CONFIG_ENVIRONMENT or development`,
    while setup reads `CFGCORE_ENVIRONMENT` too (the alias every other command's help
    names): with only that one set, it wrote that environment's file."""
    from cfgcore.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["setup", "--help"])
    assert exc.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "default: $CONFIG_ENVIRONMENT or $CFGCORE_ENVIRONMENT, else development" in shown
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CONFIG_ENVIRONMENT", raising=False)
    monkeypatch.setenv("CFGCORE_ENVIRONMENT", "staging")
    assert run_cli(capsys, "-q", "setup")[0] == 0
    assert sorted(p.name for p in (tmp_path / "config").glob("*.yaml")) == [
        "base.yaml",
        "flags.yaml",
        "staging.yaml",
    ]


def test_setup_production_then_validate_once_the_secrets_are_set(tmp_path):
    """README, "Where configuration and flags come from": `cfgcore setup -e production`
    exits 1 naming each empty secret and its variable; once they are set, the
    `cfgcore validate` it prints passes, and setup run again writes nothing (exit 1)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    said = " ".join(readme.split())
    assert "setup run again finds its files there, writes nothing and exits 1" in said
    env = _env(tmp_path)
    project = tmp_path / "project"
    project.mkdir()
    first = _cfgcore(project, env, "setup", "-e", "production")
    assert first.returncode == 1
    variables = first.stderr.split("  export ")[1].split(" (or set them")[0].split()
    assert "POSTGRES_PASSWORD" in variables and "JWT_SIGNING_KEY" in variables
    check = first.stderr.split("then check: ")[1].strip()
    assert check == "CFGCORE_CONFIG_DIR=config CONFIG_ENVIRONMENT=production cfgcore validate"
    env.update({name: f"{name.lower()}-0123456789abcdef0123456789abcdef" for name in variables})
    env.update(CFGCORE_CONFIG_DIR="config", CONFIG_ENVIRONMENT="production")
    validated = _cfgcore(project, env, "validate")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    again = _cfgcore(project, env, "setup", "-e", "production")
    assert again.returncode == 1
    assert "nothing to write" in again.stderr


TARGETINGS = [
    ({"attr": "region", "in": "EU"}, "targeting.in: expected array, got str"),
    (
        {"all": [{"attr": "a", "eq": 1}, {"attr": "b", "inn": [1]}]},
        "targeting.all[1].inn: unknown field (did you mean 'in'?)",
    ),
    ({"any": [{"attr": "a", "gt": "x"}]}, "targeting.any[0].gt: expected int | float, got str"),
]


@pytest.mark.parametrize(("targeting", "said"), TARGETINGS)
def test_a_refused_targeting_names_its_key_path_as_a_flag_file_does(
    targeting, said, tmp_path, monkeypatch, capsys, no_access_policy
):
    """A test's targeting is a condition in the flag-file syntax: refused, it is named by
    its key path as a flag file's condition is (`flags.f.rules[0].when.any[0].gt:
    expected int | float, got str`), not by msgspec's own message and `$.any[0].gt`."""
    from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(
        capsys, "experiment", "create", "t", "--split", "control=50,b=50",
        "--targeting", json.dumps(targeting),
    )  # fmt: skip
    assert code == 2  # an option value the command line judges: a usage error
    assert err.strip() == f"cfgcore: error: --targeting: not a condition: {said}"
    manager = DynamicConfigurationManager(record_usage=False)
    try:
        now = datetime.now()
        test = ABTestConfiguration(
            test_name="t",
            description="",
            start_date=now,
            end_date=now + timedelta(days=3),
            traffic_split={"control": 50, "b": 50},
            configurations={"control": {}, "b": {}},
            success_metrics=["m"],
            targeting=targeting,
        )
        assert test.validate() == [f"t: {said}"]
        assert manager.create_ab_test(test) is False
        assert manager.last_error == f"{manager.flags_file}: t: {said}"
    finally:
        manager.close()


def test_an_unusable_log_line_names_its_field_by_key_path(checkout_test, capsys):
    """README: a log line that cannot be used (a value that is not a number) is left
    out, counted and named with its file and line. The reason named its field as msgspec
    does (`Expected `float`, got `str` - at `$.value``); it is the key path now, as in
    every other message (`value: expected float, got str`)."""
    metrics = checkout_test / "flags.metrics.jsonl"
    exposures = checkout_test / "flags.exposures.jsonl"
    line = {"test": "checkout", "variant": "green", "user": "u1", "run": None}
    with exposures.open("a") as f:
        f.write(json.dumps({**line, "ts": "yesterday"}) + "\n")
    with metrics.open("a") as f:
        f.write(json.dumps({**line, "metric": "conversion", "value": "x", "ts": 1.0}) + "\n")
    code, out, err = run_cli(capsys, "experiment", "report", "checkout", "--json")
    assert code == 0, err
    first = json.loads(out)["unusable_lines"]["first"]
    assert first == [
        f"{exposures}:1: ts: expected float, got str",
        f"{metrics}:1: value: expected float, got str",
    ]
    assert "$." not in err and "Expected `" not in err


def test_command_line_reads_a_key_path_text_as_the_python_api_does(tmp_path, monkeypatch, capsys):
    """README, "Key paths": every key path cfgcore takes reads a text the same way, the
    command line's `get`, `explain` and `show KEY` included; a text not quoted as cfgcore
    shows paths splits on every dot (`"x[0].level"` is key `x[0]`). The command line read
    `x[0]` as item 0 of a list `x`, so `cfgcore get` answered another key than
    `manager.get()` for the same text."""
    from cfgcore.config.manager import ConfigurationManager

    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text('"x[0]": {level: one}\nx: [{level: two}]\n')
    (config / "development.yaml").write_text("{}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    for var in ("CFGCORE_CONFIG_DIR", "CONFIG_ENVIRONMENT", "CFGCORE_ENVIRONMENT"):
        monkeypatch.delenv(var, raising=False)
    manager = ConfigurationManager(config, environ={})
    try:
        manager.load_environment_config("development")
        api = {text: manager.get(text) for text in ("x[0].level", "x.0.level", '["x[0]"].level')}
    finally:
        manager.close()
    assert api == {"x[0].level": "one", "x.0.level": "two", '["x[0]"].level': "one"}
    for text, value in api.items():
        code, out, err = run_cli(capsys, "-q", "get", text)
        assert (code, out.strip()) == (0, value), (text, err)
        code, out, err = run_cli(capsys, "-q", "explain", text)
        assert code == 0, err
        assert out.splitlines()[0].split(" = ")[1].split()[0] == value, out
        assert ("base.yaml:1 " if value == "one" else "base.yaml:2 ") in out, out
    code, out, _ = run_cli(capsys, "-q", "show", "x[0]")
    assert (code, out.strip()) == (0, "level: one")


def test_report_relative_without_mde_is_a_usage_error(checkout_test, capsys):
    """`--relative` says how to read `--mde`; given alone, the report ignored it without
    a word (exit 0), as if the sample sizes asked for had been printed."""
    code, out, err = run_cli(capsys, "experiment", "report", "checkout", "--relative")
    assert (code, out) == (2, "")
    assert (
        err.strip()
        == "cfgcore: error: --relative: give it with --mde (e.g. --mde 0.05 --relative: +5 %)"
    )
    code, out, err = run_cli(
        capsys, "experiment", "report", "checkout", "--mde", "0.05", "--relative"
    )
    assert code == 0, err
    assert "users per variant to detect a relative change of 0.05" in out


@pytest.mark.parametrize("option", ["--audit", "--usage"])
def test_flags_stale_refuses_a_named_file_that_is_not_there(option, tmp_path, monkeypatch, capsys):
    """`cfgcore flags stale --audit FILE` / `--usage FILE` with a path that does not exist
    (a typo, another host's path) reported on as if nothing had been recorded, exit 0: no
    history for "unchanged for N days", no usage. It is an error naming the option and
    the path, as `experiment report --metrics` makes it."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    typo = str(tmp_path / "flags.audti.jsonl")
    code, out, err = run_cli(capsys, "flags", "stale", option, typo)
    assert (code, out) == (1, "")
    assert err.strip() == f"cfgcore: error: {option} {typo}: no such file"
    if option == "--audit":  # a log rotated away but for its older files is still read
        (tmp_path / "flags.audti.jsonl.1").write_text("")
        assert run_cli(capsys, "flags", "stale", option, typo)[0] == 0
