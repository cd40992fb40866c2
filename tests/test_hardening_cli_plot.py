"""``cfgcore experiment report --plot OUT``: the file written is exactly the one printed,
written atomically; a directory is refused."""

from __future__ import annotations

import os

import pytest

from tests.conftest import run_cli as run

pytest.importorskip("matplotlib")


def test_a_directory_is_refused_and_nothing_is_written_beside_it(checkout_test, tmp_path, capsys):
    target = tmp_path / "plots"
    target.mkdir()
    code, out, err = run(capsys, "experiment", "report", "checkout", "--plot", str(target))
    assert code == 1
    assert "plot written" not in out
    assert err == (
        f"cfgcore: error: {target}: is a directory: give the plot's file name "
        "(e.g. DIR/report.png)\n"
    )
    assert sorted(os.listdir(tmp_path)) == ["plots", "state"]  # no plots.png
    assert os.listdir(target) == []


@pytest.mark.parametrize(
    "name, magic", [("result", b"\x89PNG"), ("result.png", b"\x89PNG"), ("r.pdf", b"%PDF")]
)
def test_the_path_printed_is_the_file_written(checkout_test, tmp_path, capsys, name, magic):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / name
    code, out, err = run(capsys, "experiment", "report", "checkout", "--plot", str(target))
    assert code == 0, err
    assert out.endswith(f"plot written to {target}\n")
    assert os.listdir(out_dir) == [name]  # no result.png beside "result", no temp file
    assert target.read_bytes().startswith(magic)


def test_an_unknown_extension_is_refused_naming_the_file(checkout_test, tmp_path, capsys):
    target = tmp_path / "plot.bogus"
    code, _, err = run(capsys, "experiment", "report", "checkout", "--plot", str(target))
    assert code == 1
    assert err.startswith(f"cfgcore: error: {target}: cannot write the plot: unknown format .bogus")
    assert not target.exists()


def test_a_failed_plot_leaves_the_previous_file_whole(
    checkout_test, tmp_path, capsys, monkeypatch, python_atomic_write
):
    from cfgcore.runtime import atomicio

    target = tmp_path / "plot.png"
    assert run(capsys, "experiment", "report", "checkout", "--plot", str(target))[0] == 0
    before = target.read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    # The disk fills while the new plot is flushed: the old one must stay whole.
    monkeypatch.setattr(atomicio.os, "fsync", full_disk)
    code, _, err = run(capsys, "experiment", "report", "checkout", "--plot", str(target))
    assert code == 1 and "No space left on device" in err
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["plot.png", "state"]  # the temp file is gone
