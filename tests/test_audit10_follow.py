"""Defects reported by earlier reviews and confirmed here.

* The OpenFeature provider's configuration-changed events judged a flag by its source
  alone: a document given as Python data holds the caller's variant values, and one
  changed in place (then swapped in again) is the same object on both sides, so the
  event named no flag while the served value changed.
* ``cfgcore health`` and ``cfgcore eval`` created ``.flags.yaml.lock`` in the
  configuration directory: the start's look for A/B tests a guardrail stopped took the
  flag file's lock before judging a hand-written file (every file on a Kubernetes
  ConfigMap is one). A read-only mount then logged, at every start, an error saying the
  file "may serve again an A/B test its guardrail stopped".
"""

from __future__ import annotations

import copy
import logging
import os

import pytest

from tests.conftest import run_cli, scaffolded_config

# -- configuration-changed events for values changed in place ---------------------------


def _provider_events(engine):
    from cfgcore.openfeature import CfgcoreProvider

    provider = CfgcoreProvider(engine)
    emitted: list[list[str]] = []
    provider.attach(lambda prov, event, details: emitted.append(details.flags_changed))
    return provider, emitted


def test_a_variant_value_changed_in_place_is_announced(make):
    pytest.importorskip("openfeature", reason="openfeature-sdk is not installed")
    from openfeature.evaluation_context import EvaluationContext

    doc = {
        "flags": {
            "f": {"variants": {"a": {"k": 1}, "b": [1]}, "default": "a"},
            "g": {"variants": {"x": [1], "y": 0}, "default": "x"},
            "child": {
                "default": "off",
                "rules": [{"serve": "on"}],
                "prerequisites": [{"flag": "f", "variant": "a"}],
            },
            "other": {"default": "on"},
        }
    }
    engine = make(doc)
    provider, emitted = _provider_events(engine)
    ctx = EvaluationContext("u")

    doc["flags"]["f"]["variants"]["a"]["k"] = 2  # the same dict, swapped in again
    engine.swap(doc)
    assert provider.resolve_object_details("f", {}, ctx).value == {"k": 2}
    assert emitted[-1] == ["child", "f"]

    doc["flags"]["g"]["variants"]["x"].append(2)  # through the incremental compile
    engine.swap(engine.compile(doc, previous=engine.snapshot()))
    assert provider.resolve_object_details("g", {}, ctx).value == [1, 2]
    assert emitted[-1] == ["g"]

    # The served snapshot's own values changed, the new document a copy of them.
    doc["flags"]["f"]["variants"]["a"]["k"] = True  # (2 == True is False; 1 == True)
    engine.swap(copy.deepcopy(doc))
    assert provider.resolve_object_details("f", {}, ctx).value == {"k": True}
    assert emitted[-1] == ["child", "f"]

    # Nothing changed: nothing is named.
    engine.swap(copy.deepcopy(doc))
    assert emitted[-1] == []
    provider.detach()


def test_a_value_changed_to_an_equal_one_of_another_type_is_announced(make):
    doc = {"flags": {"f": {"variants": {"a": {"k": 1}, "b": 0}, "default": "a"}}}
    engine = make(doc)
    provider, emitted = _provider_events(engine)
    doc["flags"]["f"]["variants"]["a"]["k"] = 1.0  # == 1, yet served as a float
    engine.swap(doc)
    assert type(engine.value("f")["k"]) is float
    assert emitted[-1] == ["f"]
    provider.detach()


# -- read-only commands write nothing in the configuration directory -------------------


@pytest.fixture
def hand_written(tmp_path, monkeypatch):
    """``cfgcore setup``'s directory: its flags file written by hand (no sidecar), as
    every file on a ConfigMap is."""
    d = scaffolded_config(tmp_path, monkeypatch, select="staging")
    assert (d / "flags.yaml").exists()
    return d


@pytest.mark.parametrize(
    "argv",
    [
        ["health"],
        ["eval", "enhanced_anomaly_detection", "--ctx", "user_id=1", "tier=premium"],
    ],
)
def test_read_only_commands_write_nothing_beside_the_flags_file(hand_written, capsys, argv):
    before = sorted(os.listdir(hand_written))
    code, out, err = run_cli(capsys, *argv)
    assert code in (0, 1), err  # (health: staging's secrets are empty, not ready)
    assert out
    assert sorted(os.listdir(hand_written)) == before


def test_a_flags_file_on_a_directory_that_cannot_be_locked_is_served_quietly(
    hand_written, capsys, monkeypatch, caplog
):
    from cfgcore.errors import ConfigError
    from cfgcore.runtime.flagstore import FileFlagStore

    def refused(self):
        raise ConfigError("cannot lock flag file: Read-only file system", file=self.lock_path)

    monkeypatch.setattr(FileFlagStore, "locked", refused)
    with caplog.at_level(logging.ERROR):
        code, out, err = run_cli(
            capsys, "eval", "enhanced_anomaly_detection", "--ctx", "user_id=1", "tier=premium"
        )
    assert code == 0, err
    assert "on" in out
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert "guardrail" not in err


# -- cfgcore demo --flags takes what export --flags takes --------------------------------


def _flag_file(path):
    path.write_text("flags:\n  a:\n    default: on\n  b:\n    default: off\n")
    return path


def test_demo_takes_a_file_url_as_export_does(tmp_path, capsys):
    flags = _flag_file(tmp_path / "flags.yaml")
    for given in (str(flags), f"file://{flags}"):
        code, out, err = run_cli(capsys, "demo", "--flags", given, "--users", "10")
        assert code == 0, err
        assert out.startswith("cfgcore demo: 2 flags")
    code, out, err = run_cli(capsys, "export", "--format", "flagd", "--flags", f"file://{flags}")
    assert code == 0, err


def test_demo_says_what_flags_takes(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    code, out, err = run_cli(capsys, "demo", "--flags", f"file://{missing}")
    assert (code, out) == (1, "")
    assert f"{missing}: no such flag file" in err and "file:///PATH" in err
    code, out, err = run_cli(capsys, "demo", "--flags", "ftp://host/flags.yaml")
    assert (code, out) == (1, "")
    assert "unknown flag store URL scheme: 'ftp'" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("flags:\n  a:\n    default: on\n  b:\n    default: nope\n")
    code, out, err = run_cli(capsys, "demo", "--flags", f"file://{bad}")
    assert code == 1 and f"{bad}:5: flags.b.default: unknown variant 'nope'" in err


def test_demo_reads_a_redis_store(redis_server, stores, tmp_path, capsys, monkeypatch):
    from cfgcore.snapshot import snapshot_from_dict

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=demo10&cache=off"
    doc = snapshot_from_dict({"flags": {"x": {"default": "on"}}})
    stores(url).update(lambda _old: doc)
    code, out, err = run_cli(capsys, "demo", "--flags", url, "--users", "10")
    assert code == 0, err
    assert out.startswith("cfgcore demo: 1 flags")


# -- validate --format json: a report on stdout when the input cannot be read ----------


def _json_report(out):
    import json

    doc = json.loads(out)
    assert doc["overall_valid"] is False
    return doc["results"]


def test_validate_json_reports_a_file_it_cannot_read(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    code, out, err = run_cli(capsys, "validate", "--format", "json", str(missing))
    assert code == 1
    (result,) = _json_report(out)
    assert result["rule_id"] == "config.read" and result["severity"] == "critical"
    assert result["file"] == str(missing) and "cannot read" in result["message"]
    assert f"{missing}: cannot read" in err  # the error line on stderr, as ever


def test_validate_json_reports_a_broken_configuration_directory(tmp_path, capsys, monkeypatch):
    d = scaffolded_config(tmp_path, monkeypatch, select="staging")
    with open(d / "staging.yaml", "a", encoding="utf-8") as fh:
        fh.write("broken: [\n")
    capsys.readouterr()  # (setup's own lines)
    code, out, err = run_cli(capsys, "validate", "--format", "json")
    assert code == 1
    (result,) = _json_report(out)
    assert result["file"] == str(d / "staging.yaml") and isinstance(result["line"], int)
    assert "invalid YAML" in result["message"]
    code, out, err = run_cli(capsys, "validate", "--format", "json", "--config-dir",
                             str(tmp_path / "none"))  # fmt: skip
    assert code == 1 and "does not exist" in _json_report(out)[0]["message"]
    # The text format is as it was: the error on stderr, nothing on stdout.
    code, out, err = run_cli(capsys, "validate")
    assert (code, out) == (1, "") and "invalid YAML" in err


# -- a .env file created after the manager started ---------------------------------------


@pytest.fixture
def no_env_file_yet(tmp_path, monkeypatch):
    var = "AUDIT10_LATE_TOKEN"
    monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text(f"app:\n  name: ${{{var}:-unset}}\n")
    (config / "development.yaml").write_text("{}\n")
    from cfgcore.config.manager import ConfigurationManager

    m = ConfigurationManager(config, environment="development", record_usage=False)
    m.load_environment_config()
    assert m.get("app.name") == "unset"
    yield m, tmp_path / ".env", var
    m.close()


def _write_env(path, text):
    from cfgcore.runtime.atomicio import atomic_write_text

    atomic_write_text(path, text)
    os.chmod(path, 0o600)


def test_a_env_file_created_later_is_read_by_an_explicit_load(no_env_file_yet):
    m, env_file, var = no_env_file_yet
    _write_env(env_file, f"{var}=late\n")
    m.load_environment_config()
    assert m.get("app.name") == "late"
    # From then on it is an input as one found at start is: its removal is refused
    # by a reload, accepted by an explicit load.
    env_file.unlink()
    assert m.reload() is False and "disappeared" in str(m.last_error)
    assert m.get("app.name") == "late"
    m.load_environment_config()
    assert m.get("app.name") == "unset"


def test_a_env_file_created_later_goes_live_with_hot_reload(no_env_file_yet):
    from tests.waiting import wait_for

    m, env_file, var = no_env_file_yet
    m.enable_hot_reload(poll_interval=0.1)
    _write_env(env_file, f"{var}=hot\n")
    assert wait_for(lambda: m.get("app.name") == "hot")
    assert m.last_error is None


def test_a_env_file_created_later_that_anyone_may_write_is_ignored(no_env_file_yet, caplog):
    m, env_file, var = no_env_file_yet
    _write_env(env_file, f"{var}=theirs\n")
    env_file.chmod(0o666)
    with caplog.at_level(logging.WARNING):
        m.load_environment_config()
        m.reload()
    assert m.get("app.name") == "unset" and m.last_error is None
    warned = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ignoring")]
    assert len(warned) == 1 and "writable by every" in warned[0]
    env_file.chmod(0o600)  # made its owner's alone: read
    m.load_environment_config()
    assert m.get("app.name") == "theirs"


def test_a_virtualenv_named_env_beside_the_directory_is_passed_over(no_env_file_yet):
    m, env_file, var = no_env_file_yet
    env_file.mkdir()
    (env_file / "pyvenv.cfg").write_text("home = /usr/bin\n")
    assert m.reload() is True and m.last_error is None
    m.load_environment_config()
    assert m.get("app.name") == "unset"
