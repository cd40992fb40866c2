"""Review of the third audit round: defects the round's own changes brought in, each
shown failing on the code as the round left it."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import warnings

import pytest

from cfgcore.cli import main as cli_main
from cfgcore.errors import ConfigError

# -- cfgcore flags stale (FlagHistory): the audit log's files are opened together ----------


def test_flag_history_closes_every_log_file_when_one_holds_a_bad_line(tmp_path):
    # The round opens every file of the log (under the writers' lock) before reading
    # any; a line that is no audit entry in an older file raised with the newer files
    # still open (a leaked descriptor per file and per call in a service).
    log = tmp_path / "audit.log"
    (tmp_path / "audit.log.2").write_text("not an audit entry\n")
    (tmp_path / "audit.log.1").write_text('{"ts": "2026-01-01T00:00:00+00:00"}\n')
    log.write_text(
        '{"ts": "2026-01-02T00:00:00+00:00", "kind": "change", "path": "flags.x", '
        '"old": null, "new": true}\n'
    )
    from cfgcore.experiments.history import FlagHistory

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(ConfigError, match=r"audit\.log\.2:1: not an audit entry"):
            FlagHistory.from_logs([str(log)])
        gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []


# -- cfgcore migrate --name: a name no environment can be loaded from ----------------------

INI = "[music_streaming]\npremium_bitrate = 320\n"


def test_a_migrated_lower_case_environment_loads(tmp_path, capsys):
    src = tmp_path / "streaming.ini"
    src.write_text(INI)
    out = tmp_path / "config"
    assert cli_main(["migrate", str(src), "--out", str(out), "--name", "prod-eu_1.x"]) == 0
    (out / "base.yaml").write_text("{}\n")
    capsys.readouterr()
    args = ["get", "music_streaming.audio_quality.premium_bitrate", "--config-dir", str(out)]
    assert cli_main([*args, "-e", "prod-eu_1.x"]) == 0
    assert capsys.readouterr().out == "320\n"


# -- cfgcore secrets rotate --bind: a value at a key path no binding can name ----------------


def test_rotate_bind_names_the_file_and_line_of_a_value_it_cannot_bind(tmp_path, capsys):
    # A value under a key with an empty name ("": ENC[...]) has no key path a bound
    # envelope can carry: rotate --bind raised the bare ValueError of key_path() out of
    # its rewrite ("cfgcore: error: key path ('app', ''): ..."), naming no file. It is
    # now one of the problems rotate lists (file, line, key path), and nothing is written.
    from cfgcore.cli.secrets import rotate_directory
    from cfgcore.runtime.secrets import Keyring, encrypt_value, generate_key

    key_file = tmp_path / "keys"
    key_file.write_text(generate_key() + "\n")
    ring = Keyring.from_file(str(key_file))
    conf = tmp_path / "config"
    conf.mkdir()
    base = conf / "base.yaml"
    text = f"app:\n  name: x\n  '': {encrypt_value('s3cret-Pw', ring)}\n"
    base.write_text(text)
    with pytest.raises(ConfigError) as exc:
        rotate_directory(str(conf), ring, bind=True)
    assert str(exc.value).startswith(f'{base}:3: app[""]: key path')  # the empty name quoted
    assert base.read_text() == text
    code = cli_main(["secrets", "rotate", "--bind", "--key-file", str(key_file), str(conf)])
    assert code == 1
    assert f"{base}:3: " in capsys.readouterr().err
    assert base.read_text() == text
    # Without --bind it stays an unbound value and is rotated as before.
    assert rotate_directory(str(conf), ring) == {str(base): 1}


# -- exposure and metric logs at a full disk: the failure names the file ------------------

needs_dev_full = pytest.mark.skipif(
    not os.path.exists("/dev/full"), reason="needs /dev/full (a device every write fills)"
)


def _full_log(tmp_path, name):
    path = tmp_path / name
    os.symlink("/dev/full", path)  # every append fails with ENOSPC, as on a full disk
    return str(path)


@needs_dev_full
def test_a_failing_exposure_log_is_named_in_the_error(tmp_path, caplog):
    # The round replaced "exposure sink %r failed" by the writer's summary, which named
    # only the writer ("cfgcore-exposures: 1 records could not be written"), and a full
    # disk's OSError names no file: with several sinks, nothing said which one failed.
    from cfgcore.experiments.exposures import ExposureLogger, JsonLinesSink, MemorySink

    path = _full_log(tmp_path, "exposures.jsonl")
    memory = MemorySink()
    logger = ExposureLogger([JsonLinesSink(path), memory])
    try:
        with caplog.at_level(logging.ERROR, logger="cfgcore.experiments"):
            logger.log("t", "control", "u1")
            assert logger.flush()
    finally:
        logger.close()
    assert len(memory.exposures) == 1  # the other sink still got it
    failures = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert len(failures) == 1
    assert f"could not be written to {path};" in failures[0].getMessage()


@needs_dev_full
def test_a_failing_metric_log_is_named_in_the_error(tmp_path, caplog):
    from cfgcore.experiments.metrics import MetricsStore

    path = _full_log(tmp_path, "metrics.jsonl")
    store = MetricsStore(path)
    try:
        with caplog.at_level(logging.ERROR, logger="cfgcore.experiments"):
            assert store.record("t", "control", "clicks", 1.0, user="u1")
            assert store.flush()
    finally:
        store.close()
    failures = [r for r in caplog.records if "could not be written" in r.getMessage()]
    assert len(failures) == 1
    assert f"could not be written to {path};" in failures[0].getMessage()


# -- register_custom_feature_flag: enabled="false" is no switch either ---------------------


@pytest.mark.parametrize("enabled", ["false", "off", "0", None, 2, 0.0, [False]])
def test_register_custom_feature_flag_refuses_an_enabled_that_is_not_a_switch(tmp_path, enabled):
    # The round made set_feature_flag refuse enabled="false" (bool("false") is True: a
    # flag switched off from a form went on for everyone); its sibling that creates a
    # flag kept the bug: register_custom_feature_flag("beta_ui", enabled="false")
    # created beta_ui on for every user.
    from cfgcore.experiments.dynamic import DynamicConfigurationManager

    m = DynamicConfigurationManager(state_dir=str(tmp_path))
    try:
        with pytest.raises(ConfigError, match=r"flags\.beta_ui\.enabled: must be true or false"):
            m.register_custom_feature_flag("beta_ui", enabled=enabled)
        assert "beta_ui" not in m.get_feature_flags_status()
        assert m.register_custom_feature_flag("beta_ui", enabled=False)
        assert not m.is_feature_enabled("beta_ui", {"user_id": "u1"})
        assert m.register_custom_feature_flag("beta_on", enabled=1)
        assert m.is_feature_enabled("beta_on", {"user_id": "u1"})
    finally:
        m.close()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_flag_history_refuses_a_fifo_among_the_log_files_instead_of_hanging(tmp_path):
    # The round opens the log's files with open() under the writers' lock: a FIFO
    # planted as a rotated file (the audit log itself refuses those) blocked the
    # reader forever, holding the lock every audited change needs. It is refused at
    # once now, named. (Run in a child process: on the old code it never returns.)
    log = tmp_path / "audit.log"
    log.write_text(
        '{"ts": "2026-01-02T00:00:00+00:00", "kind": "change", "path": "flags.x", '
        '"old": null, "new": true}\n'
    )
    os.mkfifo(tmp_path / "audit.log.1")
    said = _read_in_child(
        "from cfgcore.experiments.history import FlagHistory",
        "FlagHistory.from_logs([sys.argv[1]])",
        log,
    )
    assert said == f"{log}.1: cannot read audit log: not a regular file (a FIFO or a device)"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_reading_an_exposure_log_refuses_a_fifo_among_its_rotated_files(tmp_path):
    # read_log (the report, MetricsStore.load) now follows rotated logs as LogTail does,
    # opening them with open() under the log's lock: a FIFO named like a rotated file
    # blocked the reader for ever, holding the lock the exposure writers need. Refused
    # at once now, named. (A child process: on the old code it never returns.)
    log = tmp_path / "exposures.jsonl"
    log.write_text('{"test": "t", "variant": "a", "user": "u1", "ts": 1.0}\n')
    os.mkfifo(tmp_path / "exposures.jsonl.1")
    said = _read_in_child(
        "from cfgcore.experiments.exposures import ExposureRecord, read_log",
        "list(read_log(sys.argv[1], ExposureRecord))",
        log,
    )
    assert said == f"{log}.1: cannot read: not a regular file (a FIFO or a device)"


def _read_in_child(imports: str, call: str, log) -> str:
    """Run ``call`` on ``log`` in a child process (on the old code it never returned)
    and return the ConfigError it printed."""
    code = f"import sys\nfrom cfgcore.errors import ConfigError\n{imports}\ntry:\n    {call}\n"
    code += "except ConfigError as exc:\n    print(exc)\n"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(log)], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{call} blocked on a FIFO named like a rotated log file")
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


# -- flagd export: an unconditional rule is written as JSONLogic, not a bare variant -------


def _flagd_core_value(doc, key, targeting_key="u1"):
    import copy

    core_mod = pytest.importorskip("openfeature.contrib.tools.flagd.core")
    from openfeature.evaluation_context import EvaluationContext

    core = core_mod.FlagdCore()
    core.set_flags(copy.deepcopy(doc))
    return core.resolve_string_value(key, "FB", EvaluationContext(targeting_key, {}))


@pytest.mark.parametrize(
    "flag",
    [
        # a native flag whose last rule has no condition (a catch-all)
        {"variants": {"a": "A", "b": "B"}, "default": "a", "rules": [{"serve": "b"}]},
        {
            "variants": {"a": "A", "b": "B", "c": "C"},
            "default": "a",
            "rules": [
                {"when": {"attr": "tier", "eq": "gold"}, "serve": "c"},
                {"serve": "b"},
            ],
        },
    ],
)
def test_flagd_export_of_an_unconditional_rule_is_read_by_flagd_and_by_import(flag):
    # The exporter wrote a flag whose only rule has no condition as "targeting": "b":
    # flagd refuses that ("Invalid 'targeting' value", PARSE_ERROR: the caller's
    # default), and since this round cfgcore's own import refuses it too ("targeting
    # must be a JSONLogic object"): cfgcore export | import no longer round-tripped.
    from cfgcore.engine import Engine
    from cfgcore.interop import flagd
    from cfgcore.interop._flagd_export import export
    from cfgcore.snapshot import snapshot_from_dict

    snap = snapshot_from_dict({"version": 1, "flags": {"f": flag}})
    doc = export(snap)
    assert isinstance(doc["flags"]["f"]["targeting"], dict)
    mine = Engine.from_snapshot(snap).evaluate("f", {"user_id": "u1"}).value
    assert mine == "B"
    assert _flagd_core_value(doc, "f").value == mine
    again = Engine.from_snapshot(flagd.to_snapshot(doc))
    assert flagd.resolve(again, "f", flagd.context("u1", {}), "FB").value == mine
