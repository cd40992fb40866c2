"""`cfgcore import unleash|flagd|growthbook SRC --out FILE` and `cfgcore export --format flagd`."""

from __future__ import annotations

import json

import pytest

from cfgcore.cli import main
from cfgcore.engine import Engine
from cfgcore.interop import flagd, growthbook, unleash
from cfgcore.snapshot import load_snapshot
from tests.conftest import run_cli as run

FLAGD = {
    "flags": {
        "color": {
            "state": "ENABLED",
            "variants": {"red": "R", "blue": "B"},
            "defaultVariant": "red",
            "targeting": {"fractional": [{"var": "email"}, ["red", 50], ["blue", 50]]},
        },
        "calc": {  # JSONLogic arithmetic cannot be lowered: refused, never mis-imported
            "state": "ENABLED",
            "variants": {"a": 1, "b": 2},
            "defaultVariant": "a",
            "targeting": {"if": [{">": [{"+": [{"var": "x"}, 1]}, 3]}, "b"]},
        },
    }
}
UNLEASH = {
    "version": 1,
    "features": [
        {
            "name": "new-player",
            "enabled": True,
            "strategies": [
                {"name": "flexibleRollout", "parameters": {"rollout": "50", "groupId": "np"}}
            ],
        }
    ],
}
GROWTHBOOK = {
    "features": {
        "checkout": {
            "defaultValue": "old",
            "rules": [
                {
                    "key": "exp-checkout",
                    "variations": ["old", "new"],
                    "weights": [0.5, 0.5],
                    "hashAttribute": "id",
                }
            ],
        }
    }
}


def _write(tmp_path, name, doc):
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def test_import_flagd_writes_what_fits_and_reports_what_was_refused(tmp_path, capsys):
    src = _write(tmp_path, "flagd.json", FLAGD)
    out = tmp_path / "flags.yaml"
    code, stdout, stderr = run(capsys, "import", "flagd", src, "--out", str(out))
    assert code == 1  # something was refused
    assert "imported 1 flags from flagd" in stdout and "+ color" in stdout
    assert "- calc: refused:" in stderr and "'+'" in stderr
    written = Engine.from_file(out)
    direct = Engine.from_snapshot(flagd.to_snapshot(FLAGD, on_error="skip"))
    for i in range(50):  # same buckets as the importer's own snapshot
        ctx = flagd.context(None, {"email": f"user{i}@example.com"})
        assert written.evaluate("color", ctx).variant == direct.evaluate("color", ctx).variant
    assert "calc" not in load_snapshot(out).flags


def test_import_unleash_and_growthbook_keep_every_users_answer(tmp_path, capsys):
    src = _write(tmp_path, "unleash.json", UNLEASH)
    out = tmp_path / "unleash.json.out.json"
    code, stdout, _ = run(capsys, "import", "unleash", src, "--out", str(out))
    assert code == 0 and "+ new-player" in stdout
    written, direct = Engine.from_file(out), Engine.from_snapshot(unleash.to_snapshot(UNLEASH))
    answers = [
        written.is_enabled("new-player", unleash.context({"userId": str(i)})) for i in range(200)
    ]
    assert answers == [
        direct.is_enabled("new-player", unleash.context({"userId": str(i)})) for i in range(200)
    ]
    assert 40 < sum(answers) < 160  # a real 50% rollout, not all on or all off

    src = _write(tmp_path, "gb.json", GROWTHBOOK)
    out = tmp_path / "gb.msgpack"
    code, stdout, _ = run(capsys, "import", "growthbook", src, "--out", str(out))
    assert code == 0 and "+ checkout" in stdout
    written = Engine.from_file(out)
    direct = Engine.from_snapshot(growthbook.to_snapshot(GROWTHBOOK))
    for i in range(100):
        ctx = growthbook.context({"id": f"u{i}"})
        assert written.evaluate("checkout", ctx).value == direct.evaluate("checkout", ctx).value


def test_import_never_overwrites_without_force_and_reports_bad_input(tmp_path, capsys):
    src = _write(tmp_path, "flagd.json", {"flags": {"color": FLAGD["flags"]["color"]}})
    out = tmp_path / "flags.yaml"
    out.write_text("precious: true\n")
    code, _, stderr = run(capsys, "import", "flagd", src, "--out", str(out))
    assert code == 1 and "already exists" in stderr and "--force" in stderr
    assert out.read_text() == "precious: true\n"
    assert run(capsys, "import", "flagd", src, "--out", str(out), "--force")[0] == 0
    assert "color" in load_snapshot(out).flags

    broken = tmp_path / "broken.json"
    broken.write_text('{"features": [ {"name": ')
    code, _, stderr = run(
        capsys, "import", "unleash", str(broken), "--out", str(tmp_path / "x.yaml")
    )
    assert code == 1 and "broken.json" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "x.yaml").exists()


def test_export_flagd_round_trips_and_refuses_what_does_not_fit(tmp_path, capsys):
    src = _write(tmp_path, "flagd.json", {"flags": {"color": FLAGD["flags"]["color"]}})
    flags = tmp_path / "flags.yaml"
    assert run(capsys, "import", "flagd", src, "--out", str(flags))[0] == 0
    code, stdout, _ = run(capsys, "export", "--format", "flagd", "--flags", str(flags))
    assert code == 0
    exported = json.loads(stdout)
    again = Engine.from_snapshot(flagd.to_snapshot(exported))
    first = Engine.from_file(flags)
    for i in range(50):
        ctx = flagd.context(None, {"email": f"user{i}@example.com"})
        assert again.evaluate("color", ctx).variant == first.evaluate("color", ctx).variant

    native = tmp_path / "native.yaml"
    native.write_text("flags:\n  r:\n    default: 'off'\n    rules: [{rollout: 10, serve: 'on'}]\n")
    code, stdout, stderr = run(capsys, "export", "--format", "flagd", "--flags", str(native))
    assert code == 1 and stdout == "" and "flags.r" in stderr


@pytest.mark.parametrize("argv", [["import", "launchdarkly", "x", "--out", "y"], ["export"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_import_unleash_lists_refused_features_and_keeps_the_others(tmp_path, capsys):
    # a feature yggdrasil would turn off as a whole (a constraint value it cannot read)
    # is refused with its reason; the others are written, as for flagd and GrowthBook
    payload = {"version": 2, "features": [
        {"name": "good", "enabled": True, "strategies": [{"name": "default"}]},
        {"name": "bad", "enabled": True, "strategies": [{"name": "default", "constraints": [
            {"contextName": "x", "operator": "DATE_AFTER", "value": "2024-01-01"}]}]},
    ]}  # fmt: skip
    src = _write(tmp_path, "unleash.json", payload)
    out = tmp_path / "flags.yaml"
    code, stdout, stderr = run(capsys, "import", "unleash", src, "--out", str(out))
    assert code == 1
    assert "+ good" in stdout and "bad: refused" in stderr and "DATE_AFTER" in stderr
    # the summary names the file they were refused from and the file they are left out of
    assert f"{src}: 1 flags refused (listed above), left out of {out}\n" in stderr
    assert sorted(load_snapshot(out).flags) == ["good"]


@pytest.mark.parametrize(
    ("key", "path", "message"),
    [("null", "features.null", "key null is null, not a string (quote it)"),
     ("true", "features.true", "key true is a boolean, not a string (quote it)"),
     ("1.5", 'features["1.5"]', "key 1.5 is a number, not a string (quote it)"),
     ("? [1]\n  ", 'features["[1]"]', "key [1] is a list, not a string (quote it)")],
)  # fmt: skip
def test_import_names_a_yaml_key_that_is_not_text_as_the_config_loader_does(
    tmp_path, capsys, key, path, message
):
    # `cfgcore import` reads a YAML source with the configuration files' loader option:
    # the key as the file spells it, on its line (it was None or True, with no line)
    text = f"features:\n  checkout:\n    defaultValue: old\n  {key}: x\n"
    src = tmp_path / "growthbook.yaml"
    src.write_text(text)
    out = tmp_path / "flags.yaml"
    code, _, stderr = run(capsys, "import", "growthbook", str(src), "--out", str(out))
    assert code == 1 and not out.exists()
    assert f"{src}:4: {path}: {message}" in stderr
    for python in ("None", "True", "(bool)", "(float)", 'features[""]'):
        assert python not in stderr
    # the configuration loader says the same of the same text
    from cfgcore.config.files import parse_text
    from cfgcore.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        parse_text(text, "yaml", str(src))
    (problem,) = err.value.problems
    assert (problem.path, problem.line, problem.message) == (path, 4, message)
