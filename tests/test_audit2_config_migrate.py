"""Second audit, ``cfgcore migrate``: the configuration and its report change together.

Each file used to be written atomically on its own, the configuration first: a failure
between the two writes (here: a directory where the report goes) left the new
configuration beside the old report, and two runs into one directory both passed the
"already exists" check before either wrote. Real files, real directories, real
concurrent runs, and a real process that dies half-way through.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest
import yaml

from cfgcore.cli import main as cli_main
from cfgcore.cli.migrate import STAGE_PREFIX, _cmd_migrate, recover, write_together
from cfgcore.errors import ConfigError

OLD_CONFIG = "# the old one\nmusic_streaming: {}\n"
OLD_REPORT = '{"old": true}\n'


def _source(tmp_path, name="app.ini", bitrate=320):
    path = tmp_path / name
    path.write_text(f"[music_streaming]\npremium_bitrate = {bitrate}\n")
    return str(path)


def _pair_matches(out, name="base"):
    config = (out / f"{name}.yaml").read_bytes()
    report = json.loads((out / "migration-report.json").read_text())
    return report["config_sha256"] == hashlib.sha256(config).hexdigest()


def _staging_left(out):
    return [n for n in os.listdir(out) if n.startswith(STAGE_PREFIX)]


def test_a_report_that_cannot_be_written_leaves_the_old_configuration(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "base.yaml").write_text(OLD_CONFIG)
    # A directory (not empty) where the report goes: its rename can only fail.
    (out / "migration-report.json").mkdir()
    (out / "migration-report.json" / "keep").write_text("x")
    assert cli_main(["migrate", _source(tmp_path), "--out", str(out), "--force"]) == 1
    err = capsys.readouterr().err
    assert "migration-report.json" in err and "nothing was changed" in err
    # The old code had already replaced base.yaml: a configuration without its report.
    assert (out / "base.yaml").read_text() == OLD_CONFIG
    assert (out / "migration-report.json" / "keep").read_text() == "x"
    assert _staging_left(out) == []


def test_a_configuration_that_cannot_be_written_leaves_no_report(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "base.yaml").mkdir()
    assert cli_main(["migrate", _source(tmp_path), "--out", str(out), "--force"]) == 1
    assert "base.yaml" in capsys.readouterr().err
    assert not (out / "migration-report.json").exists()
    assert _staging_left(out) == []


def test_force_replaces_both_and_the_report_names_the_configuration(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "base.yaml").write_text(OLD_CONFIG)
    (out / "migration-report.json").write_text(OLD_REPORT)
    assert cli_main(["migrate", _source(tmp_path), "--out", str(out), "--force"]) == 0
    assert _pair_matches(out)
    written = yaml.safe_load((out / "base.yaml").read_text())
    assert written["music_streaming"]["audio_quality"]["premium_bitrate"] == 320
    assert _staging_left(out) == []


def test_concurrent_runs_into_one_directory_only_one_writes(tmp_path):
    """Both runs used to pass the "already exists" check before either wrote; the
    second then replaced the first's files without --force."""
    for round_ in range(4):
        out = tmp_path / f"out{round_}"
        sources = [_source(tmp_path, f"a{round_}-{i}.ini", 320 + i) for i in range(2)]
        barrier = threading.Barrier(2)
        codes = [None, None]
        refusals = []

        def run(i, sources=sources, out=out, barrier=barrier, codes=codes, refusals=refusals):
            # The command itself: cli_main's logging set-up is per process, not per thread.
            args = argparse.Namespace(
                source=sources[i], map=None, out=str(out), name="base",
                keep_unmapped=False, force=False,
            )  # fmt: skip
            barrier.wait()
            try:
                codes[i] = _cmd_migrate(args)
            except ConfigError as exc:
                codes[i] = 1
                refusals.append(str(exc))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(codes) == [0, 1], codes
        assert _pair_matches(out)
        winner = codes.index(0)
        written = yaml.safe_load((out / "base.yaml").read_text())
        bitrate = written["music_streaming"]["audio_quality"]["premium_bitrate"]
        assert bitrate == 320 + winner
        assert len(refusals) == 1 and "already exists" in refusals[0]


def test_a_run_that_dies_half_way_is_rolled_back_by_the_next(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "base.yaml").write_text(OLD_CONFIG)
    (out / "migration-report.json").write_text(OLD_REPORT)
    # A process that dies (os._exit: no cleanup, as a kill -9 or a power cut) right
    # after the first of the two renames.
    child = textwrap.dedent(
        f"""
        import os
        from cfgcore.cli import migrate
        real = os.replace
        def replace_then_die(src, dst):
            real(src, dst)
            os._exit(9)
        os.replace = replace_then_die
        out = {str(out)!r}
        migrate.write_together(out, [
            (os.path.join(out, "migration-report.json"), b'{{"new": true}}\\n'),
            (os.path.join(out, "base.yaml"), b"new: true\\n"),
        ], replace=True)
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=120)
    assert proc.returncode == 9, proc.stderr.decode()
    # What it left: the new report with the old configuration (never the reverse).
    assert (out / "base.yaml").read_text() == OLD_CONFIG
    assert (out / "migration-report.json").read_text() == '{"new": true}\n'
    assert len(_staging_left(out)) == 1
    recover(str(out))  # what the next run does first, under the lock
    assert (out / "base.yaml").read_text() == OLD_CONFIG
    assert (out / "migration-report.json").read_text() == OLD_REPORT
    assert _staging_left(out) == []
    # And the next run itself completes.
    assert cli_main(["migrate", _source(tmp_path), "--out", str(out), "--force"]) == 0
    assert _pair_matches(out)


def test_a_file_that_appears_before_the_second_rename_undoes_the_first(tmp_path):
    """Without --force a target that exists by the time its rename comes (another
    program's file, created after the check) is kept, and the report already renamed
    into place is taken away again: both files or neither."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "base.yaml").write_text("theirs: true\n")
    with pytest.raises(FileExistsError):
        write_together(
            str(out),
            [(str(out / "migration-report.json"), b"{}\n"), (str(out / "base.yaml"), b"a: 1\n")],
            replace=False,
        )
    assert (out / "base.yaml").read_text() == "theirs: true\n"
    assert not (out / "migration-report.json").exists()
    assert _staging_left(out) == []
    # (Putting an old file back is what recover() does after a crash: tested above.)
    (out / "migration-report.json").write_text(OLD_REPORT)
    with pytest.raises(OSError):
        write_together(
            str(out),
            [(str(out / "migration-report.json"), b"{}\n"), (str(out / "base.yaml"), b"a: 1\n")],
            replace=False,
        )
    assert (out / "migration-report.json").read_text() == OLD_REPORT
    assert (out / "base.yaml").read_text() == "theirs: true\n"


def test_out_naming_a_file_and_hidden_names_are_clear_errors(tmp_path, capsys):
    src = _source(tmp_path)
    (tmp_path / "afile").write_text("x")
    assert cli_main(["migrate", src, "--out", str(tmp_path / "afile")]) == 1
    assert "--out must name a directory" in capsys.readouterr().err  # was "[Errno 17]"
    assert (tmp_path / "afile").read_text() == "x"
    # A hidden name: the manager reads no such file, and it could pass for staging.
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:  # a usage error since round 3: exit 2
        cli_main(["migrate", src, "--out", str(out), "--name", ".cfgcore-migrate-x"])
    assert exc.value.code == 2
    assert "expected a plain file name" in capsys.readouterr().err
    assert not out.exists()
