"""JSON the command line reads (`experiment create --config`, `experiment ingest`
lines, `import` sources) is refused when an object repeats a key, as every
configuration and flag file is: json kept the last value, so `--config 'green={"size":
1, "size": 2}'` stored 2 without a word, and an ingest line naming two tests was
filed under the second."""

from __future__ import annotations

import json

import pytest

from cfgcore.cli import load_json
from tests.conftest import run_cli


@pytest.mark.parametrize(
    "text",
    ['{"a": 1, "a": 2}', '[{"x": {"k": 1, "k": 1}}]', '{"a": {}, "b": 1, "\\u0061": 3}'],
)
def test_load_json_refuses_a_repeated_key(text):
    with pytest.raises(ValueError, match="duplicate key '(a|k)'"):
        load_json(text)


def test_load_json_reads_objects_without_repeats():
    assert load_json('{"a": {"a": 1}, "b": [{"a": 2}]}') == {"a": {"a": 1}, "b": [{"a": 2}]}


def test_experiment_config_with_a_repeated_key_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    code, _out, err = run_cli(
        capsys, "experiment", "create", "checkout", "--split", "control=50,green=50",
        "--metric", "conversion", "--config", 'green={"size": 1, "size": 2}',
    )  # fmt: skip
    assert code == 2  # the command line is wrong: a usage error
    assert "--config green" in err and "duplicate key 'size'" in err
    assert not (tmp_path / "state" / "flags.json").exists()


def test_an_ingest_line_with_a_repeated_key_is_unusable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    assert run_cli(capsys, "experiment", "create", "checkout", "--split", "control=50,green=50",
                   "--metric", "conversion")[0] == 0  # fmt: skip
    assert run_cli(capsys, "experiment", "start", "checkout")[0] == 0
    events = tmp_path / "events.jsonl"
    good = {"test": "checkout", "user": "u1", "variant": "green", "ts": 1764547200}
    events.write_text(
        json.dumps(good)
        + "\n"
        + '{"test": "checkout", "user": "u2", "variant": "green", "variant": "control"}\n'
    )
    code, _out, err = run_cli(capsys, "experiment", "ingest", str(events))
    assert code == 1
    assert f"{events.name}:2: not JSON: duplicate key 'variant'" in err
    assert "ingested 1 exposure(s)" in err
