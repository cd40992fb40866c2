"""``cfgcore import`` reads a source named ``*.json`` as JSON only. It used to fall back
to YAML on any JSON error, so broken JSON that YAML reads as another document was
imported silently (``{"on": true 1}`` is ``{"on": "true 1"}`` to YAML) and a real JSON
error was reported as "invalid YAML". Sources with other names (flagd also writes YAML)
are still read as JSON, else YAML.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli as run

FLAG = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"}
GOOD = json.dumps({"flags": {"f": FLAG}})
# Broken JSON that YAML reads as a document: the flag's state becomes "ENABLED 1".
BROKEN = GOOD.replace('"ENABLED"', '"ENABLED" 1')


def test_broken_json_that_yaml_reads_is_refused_naming_line_and_key_path(tmp_path, capsys):
    src = tmp_path / "flagd.json"
    src.write_text(BROKEN.replace('{"f": ', '{\n "f": '))
    out = tmp_path / "flags.yaml"
    code, _, stderr = run(capsys, "import", "flagd", str(src), "--out", str(out))
    assert code == 1
    assert "flagd.json:2: flags.f.state: invalid JSON" in stderr, stderr
    assert "YAML" not in stderr
    assert not out.exists()


@pytest.mark.parametrize("name", ["flagd.yaml", "flagd.yml", "flagd"])
def test_a_source_of_another_name_is_still_read_as_yaml(tmp_path, capsys, name):
    import yaml

    src = tmp_path / name
    src.write_text(yaml.safe_dump({"flags": {"f": FLAG}}))
    out = tmp_path / "flags.yaml"
    code, stdout, stderr = run(capsys, "import", "flagd", str(src), "--out", str(out))
    assert code == 0, stderr
    assert out.exists() and "f" in stdout


def test_a_json_source_with_a_repeated_key_is_refused_by_name(tmp_path, capsys):
    src = tmp_path / "flagd.JSON"
    flag = json.dumps(FLAG)
    src.write_text('{"flags": {"f": ' + flag + ', "f": ' + flag + "}}")
    out = tmp_path / "flags.yaml"
    code, _, stderr = run(capsys, "import", "flagd", str(src), "--out", str(out))
    assert code == 1 and "flagd.JSON" in stderr and "duplicate key 'f'" in stderr
    assert not out.exists()


def test_a_good_json_source_imports(tmp_path, capsys):
    src = tmp_path / "flagd.json"
    src.write_text(GOOD)
    out = tmp_path / "flags.yaml"
    code, _, stderr = run(capsys, "import", "flagd", str(src), "--out", str(out))
    assert code == 0, stderr
    assert out.exists()
