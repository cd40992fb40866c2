"""``cfgcore migrate --out DIR`` where other users may create files in DIR (a shared,
sticky directory): a staging directory another user planted there is not ours to roll
back.

A run first rolls back what a crashed run left half done: each ``.cfgcore-migrate-*``
directory holding a plan, whose "backups" it renamed over the files the plan names (and
whose targets without a backup it removed). Another user's such directory made the run
replace any file of DIR with one of theirs (``production.yaml``, owned by the service's
user, in a directory where the sticky bit kept them from touching it), or remove it. Only
a staging directory of this user that no one else may write in is rolled back now. Real
files and owners: the ``chown`` needs root.
"""

from __future__ import annotations

import json
import os

import pytest

from cfgcore.cli import main as cli_main

pytestmark = pytest.mark.skipif(
    os.name == "nt" or not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="POSIX owners; chown needs root",
)

OTHER = 12345  # another local user


def _plant(stage, plan: list[str], backups: dict[int, str]) -> None:
    stage.mkdir()
    (stage / "plan.json").write_text(json.dumps(plan))
    for i, text in backups.items():
        (stage / f"old-{i}").write_text(text)
    for p in (stage, *stage.iterdir()):
        os.chown(p, OTHER, OTHER)
    stage.chmod(0o777)


@pytest.mark.parametrize("force", [True, False])
def test_another_users_staging_directory_changes_no_file(tmp_path, capsys, force):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "production.yaml").write_text("server: {host: ours}\n")
    (shared / "staging.yaml").write_text("server: {host: ours}\n")
    planted = shared / ".cfgcore-migrate-planted"
    _plant(planted, ["production.yaml", "staging.yaml"], {0: "server: {host: theirs}\n"})
    src = tmp_path / "legacy.properties"
    src.write_text("music_streaming.audio_quality.premium_bitrate=320\n")
    args = ["migrate", str(src), "--out", str(shared)] + (["--force"] if force else [])
    assert cli_main(args) == 0
    capsys.readouterr()
    assert (shared / "production.yaml").read_text() == "server: {host: ours}\n"
    assert (shared / "staging.yaml").exists()  # (a target without a backup was removed)
    assert "premium_bitrate: 320" in (shared / "base.yaml").read_text()
    assert planted.is_dir()  # theirs: left alone, not removed either


def test_our_own_staging_directory_others_may_write_in_is_not_rolled_back(tmp_path, capsys):
    # (mkdtemp makes it 0700: one that others may write in holds what they put there)
    out = tmp_path / "out"
    out.mkdir()
    (out / "production.yaml").write_text("server: {host: ours}\n")
    stage = out / ".cfgcore-migrate-open"
    stage.mkdir()
    (stage / "plan.json").write_text(json.dumps(["production.yaml"]))
    (stage / "old-0").write_text("server: {host: theirs}\n")
    stage.chmod(0o777)
    src = tmp_path / "legacy.properties"
    src.write_text("music_streaming.audio_quality.premium_bitrate=320\n")
    assert cli_main(["migrate", str(src), "--out", str(out)]) == 0
    capsys.readouterr()
    assert (out / "production.yaml").read_text() == "server: {host: ours}\n"
