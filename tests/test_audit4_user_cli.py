"""Round 4, the new user: wrong usage on a scaffolded project.

- An option a subcommand does not take (``cfgcore health --nope``) printed the
  top-level usage (``cfgcore [-h] ... COMMAND ...``), which lists none of the options
  the subcommand does take. It now prints that subcommand's usage and error, exit 2.
- ``cfgcore setup -q`` printed every "wrote ..." line and the "next:" hint: ``-q``
  now leaves only errors, as for every other command.
"""

from __future__ import annotations

import pytest

from cfgcore.cli import main
from tests.conftest import run_cli, scaffolded_config


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["health", "--nope"], "usage: cfgcore health "),
        (["schema", "--nope"], "usage: cfgcore schema "),
        (["show", "--nope", "-v"], "usage: cfgcore show "),
        (["experiment", "report", "x", "--nope"], "usage: cfgcore experiment report "),
        (["flags", "stale", "--nope"], "usage: cfgcore flags stale "),
        (["validate", "-q", "--nope=1"], "usage: cfgcore validate "),
    ],
)
def test_an_unknown_option_shows_the_usage_of_its_subcommand(
    tmp_path, monkeypatch, capsys, argv, usage
):
    scaffolded_config(tmp_path, monkeypatch, "staging")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(usage), err
    unknown = next(a for a in argv if a.startswith("--nope"))
    prog = usage.removeprefix("usage: ").strip()
    assert err.rstrip().endswith(f"{prog}: error: unrecognized arguments: {unknown}")


def test_a_known_command_line_still_runs(tmp_path, monkeypatch, capsys):
    scaffolded_config(tmp_path, monkeypatch, "staging")
    capsys.readouterr()
    code, out, err = run_cli(capsys, "-q", "get", "app.name", "-v")
    assert (code, out.strip()) == (0, "music-streaming-platform"), err


def test_setup_quiet_writes_the_files_and_says_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "setup", "-e", "staging", "-q")
    assert (code, out, err) == (0, "", "")
    assert sorted(p.name for p in (tmp_path / "config").iterdir()) == [
        "base.yaml",
        "flags.yaml",
        "staging.yaml",
    ]
    for var in ("POSTGRES_PASSWORD", "KAFKA_SASL_PASSWORD", "JWT_SIGNING_KEY"):
        monkeypatch.delenv(var, raising=False)
    code, out, err = run_cli(capsys, "setup", "-e", "production")
    assert "wrote config/production.yaml" in out
    # Production with its secrets unset is not ready (exit 1), whatever -q says.
    assert code == 1 and "production is not ready" in err


@pytest.mark.parametrize("argv", [[], ["show"], ["validate"]])
def test_help_says_where_the_configuration_directory_comes_from(capsys, argv):
    # It said "(default: bundled)": a project's ./config, which the commands use, was
    # not mentioned, so a new user thought the bundled demo set was being shown.
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "./config if it holds a base or environment file, else the bundled set" in text
    assert "(default: bundled)" not in text


def test_validate_compiles_a_flag_document_whatever_its_name(tmp_path, capsys):
    # Engine.from_file and --flags take any file name; validate judged a flag document
    # not named flags.* as a configuration: "valid" for flags that do not compile.
    doc = tmp_path / "feature-flags.yaml"
    doc.write_text("version: 1\nflags:\n  x:\n    rules:\n      - {rollout: 50, serve: maybe}\n")
    code, out, err = run_cli(capsys, "validate", str(doc))
    assert code == 1, (out, err)
    assert f"{doc}:3: flags.x.default: missing: every flag names its default variant" in out
    assert f"{doc}:5: flags.x.rules[0].serve: unknown variant 'maybe'" in out
    doc.write_text("version: 1\nflags:\n  x: {default: off}\n")
    code, out, err = run_cli(capsys, "validate", str(doc))
    assert code == 0 and "valid" in out, (out, err)


def test_a_configuration_with_a_flags_key_is_still_a_configuration(tmp_path, capsys):
    conf = tmp_path / "app.yaml"
    conf.write_text("flags:\n  x: 1\nserver:\n  port: eighty\n")
    code, out, err = run_cli(capsys, "validate", str(conf))
    assert code == 1
    assert "server.port: expected an integer" in out and "flags.compile" not in out
