"""The files cfgcore writes in its state directory and reads back (``flags.json``, the
fleet cache, the usage file, a followed ``ENV.json``):

- in a state directory every user may write without the sticky bit (a Kubernetes
  ``emptyDir`` volume is mode 0777, 2777 with an ``fsGroup``; docs/fleet.md offers one
  for ``CFGCORE_STATE_DIR``), this service's own files were refused as replaceable by
  anyone: a restarted container refused the ``flags.json`` it wrote itself, and its
  manager did not start. Judged by owner now, as in a sticky directory;
- the file read is the file judged: another user's file renamed in for the read and
  out for the judgment (a directory others may write lets them) was read as this
  service's.
"""

from __future__ import annotations

import os

import pytest

from cfgcore.runtime import atomicio
from cfgcore.runtime.atomicio import ForeignStateFile, foreign_state_file, read_state_file
from cfgcore.runtime.usage import merge_usage, read_usage
from tests.planted import OTHER, as_root


@pytest.fixture(params=[0o777, 0o2777], ids=["emptyDir", "emptyDir-fsGroup"])
def empty_dir(request, tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    os.chmod(d, request.param)
    return d


def _manager(state_dir):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    return DynamicConfigurationManager(state_dir=state_dir, record_usage=False)


def test_a_restarted_service_reads_its_own_flags_from_an_empty_dir_volume(empty_dir):
    m = _manager(empty_dir)
    try:
        m.set_feature_flag("mine", True)
    finally:
        m.close()
    assert foreign_state_file(empty_dir / "flags.json") == ""
    restarted = _manager(empty_dir)  # (raised ConfigError: "flag file refused")
    try:
        assert restarted.is_feature_enabled("mine") is True
    finally:
        restarted.close()


def test_the_usage_file_in_an_empty_dir_volume_is_read_back(empty_dir):
    path = empty_dir / "flag-usage.json"
    merge_usage(str(path), {"mine": 1_700_000_000.0})
    assert read_usage(str(path), state=True).flags == {"mine": 1_700_000_000.0}


@as_root
def test_another_users_file_in_an_empty_dir_volume_is_still_refused(empty_dir):
    path = empty_dir / "flags.json"
    path.write_bytes(b"{}")
    os.chown(path, OTHER, OTHER)
    assert "belongs to uid 4321" in foreign_state_file(path)
    with pytest.raises(ForeignStateFile) as info:
        read_state_file(path)
    assert info.value.filename == str(path)


def _swapping_lstat(monkeypatch, path, ours):
    """Another user who may rename in ``path``'s directory: ``ours`` (this service's
    file or link) is at ``path`` only while cfgcore lstat's it (or reads the link);
    their file is there otherwise."""
    theirs = path.parent / ".theirs"

    def swapped(real):
        def call(p, *args, **kwargs):
            if os.fspath(p) != str(path):
                return real(p, *args, **kwargs)
            os.rename(path, theirs)
            os.rename(ours, path)
            try:
                return real(p, *args, **kwargs)
            finally:
                os.rename(path, ours)
                os.rename(theirs, path)

        return call

    monkeypatch.setattr(os, "lstat", swapped(os.lstat))
    monkeypatch.setattr(os, "readlink", swapped(os.readlink))


@as_root
@pytest.mark.parametrize("mode", [0o2775, 0o777])
def test_a_file_renamed_in_around_the_judgment_is_not_read(monkeypatch, tmp_path, mode):
    d = tmp_path / "state"
    d.mkdir()
    os.chmod(d, mode)
    path, ours = d / "flags.json", d / ".ours"
    ours.write_bytes(b"this service's")
    path.write_bytes(b"planted")
    os.chown(path, OTHER, OTHER)
    _swapping_lstat(monkeypatch, path, ours)
    with pytest.raises(OSError) as info:  # (replaced again and again)
        data = read_state_file(path)
        pytest.fail(f"read {data!r}")
    assert not isinstance(info.value, ForeignStateFile) or "4321" in str(info.value)
    monkeypatch.undo()
    assert path.read_bytes() == b"planted" and ours.read_bytes() == b"this service's"


@as_root
def test_a_file_renamed_over_this_services_symlink_around_the_judgment_is_not_read(
    monkeypatch, tmp_path
):
    d = tmp_path / "state"
    d.mkdir()
    os.chmod(d, 0o2775)
    target = tmp_path / "kept" / "flags.json"
    target.parent.mkdir()
    target.write_bytes(b"this service's")
    path, ours = d / "flags.json", d / ".ours"
    os.symlink(target, ours)  # (this service's link, as a deployment keeps one)
    path.write_bytes(b"planted")
    os.chown(path, OTHER, OTHER)
    _swapping_lstat(monkeypatch, path, ours)
    with pytest.raises(OSError):
        data = read_state_file(path)
        pytest.fail(f"read {data!r}")


def test_this_services_symlink_leads_to_its_file(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    os.chmod(d, 0o2775)
    target = tmp_path / "kept" / "flags.json"
    target.parent.mkdir()
    target.write_bytes(b"this service's")
    os.symlink(target, d / "flags.json")
    assert read_state_file(d / "flags.json") == b"this service's"


def test_the_judgment_names_the_lstat_it_judged(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"x")
    why, judged = atomicio._judge_state_file(path)
    assert why == "" and judged is not None and judged.st_ino == os.stat(path).st_ino
