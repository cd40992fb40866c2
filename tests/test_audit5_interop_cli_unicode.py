"""``cfgcore import``, fifth audit: a flag whose name holds a lone surrogate (JSON's
``"\\ud800"``, which the source's JSON reader accepts). The import
wrote the flag file, then failed recording it in the audit log with a bare
"'utf-8' codec can't encode" and no file named: a change without its audit record.
Now it is refused before anything is written, naming the source and the flag.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli as run

FLAG = {"state": "ENABLED", "variants": {"a": "A"}, "defaultVariant": "a"}


def test_import_refuses_a_flag_name_that_is_no_text_before_writing(tmp_path, capsys):
    src = tmp_path / "flagd.json"
    flag = json.dumps(FLAG)
    src.write_text('{"flags": {"ok": ' + flag + ', "\\ud800x": ' + flag + "}}")
    out = tmp_path / "flags.yaml"
    code, stdout, stderr = run(capsys, "import", "flagd", str(src), "--out", str(out))
    assert code == 1
    assert "flagd.json" in stderr and "ud800x" in stderr and "not valid Unicode" in stderr
    assert not out.exists()  # nothing written, so nothing left unaudited
    assert not list(tmp_path.glob("*.audit.jsonl*")) or all(
        "import" not in line
        for p in tmp_path.glob("*.audit.jsonl*")
        for line in p.read_text().splitlines()
    )


def test_import_of_ordinary_unicode_names_still_works(tmp_path, capsys):
    src = tmp_path / "flagd.json"
    src.write_text(json.dumps({"flags": {"fête-🎉": FLAG}}, ensure_ascii=True))
    out = tmp_path / "flags.yaml"
    code, stdout, _ = run(capsys, "import", "flagd", str(src), "--out", str(out))
    assert code == 0 and "fête-🎉" in stdout and out.exists()


@pytest.mark.parametrize("ext", ["yaml", "json", "msgpack"])
def test_a_value_that_is_no_text_is_refused_naming_the_key_path(tmp_path, capsys, ext):
    # the YAML file was written (exit 0) and then could not be loaded; JSON and
    # MessagePack failed with a bare codec error after the checks
    src = tmp_path / "flagd.json"
    src.write_text('{"flags": {"f": {"state": "ENABLED", "variants": {"a": "\\ud800"},'
                   ' "defaultVariant": "a"}}}')  # fmt: skip
    out = tmp_path / f"flags.{ext}"
    code, _, stderr = run(capsys, "import", "flagd", str(src), "--out", str(out))
    assert code == 1 and "flagd.json" in stderr and "flags.f.variants.a" in stderr
    assert not out.exists()
