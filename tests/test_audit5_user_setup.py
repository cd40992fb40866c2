"""``cfgcore setup`` that fails part-way (a full disk, a read-only directory, a
``flags.yaml`` that is a directory): it used to leave ``base.yaml`` and the
environment files behind without ``flags.yaml`` and named only the directory. The files
this run created are removed again, the error names the file that could not be
written and what to do, and files ``--force`` had already replaced are named."""

from __future__ import annotations

import errno

import pytest

from cfgcore.cli import main
from cfgcore.cli.scaffold import scaffold
from cfgcore.errors import ConfigError


def test_a_failed_setup_leaves_no_partial_project(tmp_path, capsys):
    target = tmp_path / "config"
    (target / "flags.yaml").mkdir(parents=True)  # a mistaken mkdir in its place
    code = main(["setup", "-o", str(target), "--all-environments", "--force"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{target / 'flags.yaml'}: cannot write" in err
    assert "nothing was written" in err
    assert sorted(p.name for p in target.iterdir()) == ["flags.yaml"]
    assert "Traceback" not in err


def test_files_force_replaced_before_the_failure_are_named(tmp_path):
    target = tmp_path / "config"
    target.mkdir()
    (target / "base.yaml").write_text("app: {name: mine}\n")
    (target / "flags.yaml").mkdir()
    with pytest.raises(ConfigError) as info:
        scaffold(target, ["staging"], force=True)
    text = str(info.value)
    assert "already written: base.yaml" in text
    assert not (target / "staging.yaml").exists()  # created by this run: removed
    assert "app:" in (target / "base.yaml").read_text()  # whole, the new version


def test_a_full_disk_says_to_free_space(tmp_path, monkeypatch):
    # The disk filling up is simulated at the one write call; the clean-up and the
    # message are what is under test.
    import cfgcore.cli.scaffold as mod

    real = mod.atomic_write

    def write(path, data, *a, **k):
        if str(path).endswith("flags.yaml"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data, *a, **k)

    monkeypatch.setattr(mod, "atomic_write", write)
    target = tmp_path / "new" / "config"
    with pytest.raises(ConfigError) as info:
        scaffold(target, ["development"])
    assert "free some space" in str(info.value)
    assert not target.exists()  # the directory this run made is gone too


def test_a_successful_setup_is_unchanged(tmp_path, capsys):
    target = tmp_path / "config"
    assert main(["setup", "-o", str(target)]) == 0
    assert sorted(p.name for p in target.iterdir()) == [
        "base.yaml",
        "development.yaml",
        "flags.yaml",
    ]
