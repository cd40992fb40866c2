"""``cfgcore import ... --out`` and ``cfgcore export --out`` naming a directory, or a
file that cannot be written: an error naming the path given. Both failed naming the
temporary file the atomic write goes through (``[Errno 21] Is a directory:
'/srv/.flags.json.37345636200d.tmp' -> 'flags.json'``), even with ``--force``, and
export only after reading and judging the flags."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli as run

FLAGD = {"flags": {"a": {"state": "ENABLED", "variants": {"on": True, "off": False},
                         "defaultVariant": "on"}}}  # fmt: skip


@pytest.fixture
def flags_file(tmp_path, capsys):
    src = tmp_path / "flagd.json"
    src.write_text(json.dumps(FLAGD))
    out = tmp_path / "flags.yaml"
    code, _, err = run(capsys, "import", "flagd", str(src), "--out", str(out))
    assert code == 0, err
    return src, out


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_export_to_a_directory_names_it(tmp_path, capsys, flags_file, force):
    _, flags = flags_file
    target = tmp_path / "out.json"
    target.mkdir()
    code, out, err = run(capsys, "export", "--format", "flagd", "--flags", str(flags),
                         "--out", str(target), *force)  # fmt: skip
    assert code != 0
    assert f"{target}: is a directory" in err
    assert ".tmp" not in err
    assert list(target.iterdir()) == [] and list(tmp_path.glob(".*.tmp")) == []


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_import_to_a_directory_names_it(tmp_path, capsys, flags_file, force):
    src, _ = flags_file
    target = tmp_path / "again.json"
    target.mkdir()
    code, _, err = run(capsys, "import", "flagd", str(src), "--out", str(target), *force)
    assert code != 0
    assert f"{target}: is a directory" in err
    assert ".tmp" not in err and list(target.iterdir()) == []


def test_a_file_that_cannot_be_written_is_named(tmp_path, capsys, flags_file):
    _, flags = flags_file
    target = tmp_path / "missing-dir" / "x.json"
    code, _, err = run(capsys, "export", "--format", "flagd", "--flags", str(flags),
                       "--out", str(target))  # fmt: skip
    assert code != 0
    assert f"{target}: cannot write: " in err and ".tmp" not in err
    assert not target.exists()


def test_export_through_a_link_to_a_directory_replaces_the_link(tmp_path, capsys, flags_file):
    # atomic_write replaces a link at the path (it never writes where a link points)
    _, flags = flags_file
    (tmp_path / "dir").mkdir()
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "dir")
    code, _, err = run(capsys, "export", "--format", "flagd", "--flags", str(flags),
                       "--out", str(link), "--force")  # fmt: skip
    assert code == 0, err
    assert not link.is_symlink() and json.loads(link.read_text())["flags"]["a"]
    assert list((tmp_path / "dir").iterdir()) == []
