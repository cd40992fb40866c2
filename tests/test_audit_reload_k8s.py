"""Hot reload of directories that are replaced rather than edited, with the real watcher.

Kubernetes ConfigMap and Secret volumes (visible names are symlinks through ``..data``,
which kubelet swaps to a new timestamped directory before deleting the old one), a
configuration directory that is itself a symlink switched to another release, and a
directory deleted and created again. The periodic poll is turned off
(``poll_interval=3600``) wherever the point is that the watcher itself follows the
change: the poll is a safety net, not the way a change should arrive.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading

import pytest

from cfgcore.config.manager import ConfigurationManager, default_config_dir
from tests.waiting import wait_for

DEFAULTS = default_config_dir()
WATCHER_ONLY = 3600.0  # poll_interval: the periodic poll never runs during a test
OLD = 1_500_000_000 * 10**9  # a 2017 mtime: kubelet's files need not look new
_stamps = itertools.count(1)


def _files(generation: int) -> dict[str, str]:
    """The bundled set, with one generation number in base.yaml and another copy in
    staging.yaml: a snapshot mixing two versions shows two different numbers."""
    out = {}
    for name in os.listdir(DEFAULTS):
        with open(os.path.join(DEFAULTS, name), encoding="utf-8") as f:
            out[name] = f.read()
    out["base.yaml"] += f"\naudit_gen:\n  base: {generation}\n"
    out["staging.yaml"] += f"\naudit_gen:\n  env: {generation}\n"
    return out


def _configmap_update(root, files: dict[str, str], *, keep_mtimes: bool = False) -> None:
    """What kubelet's atomic writer does: a new timestamped directory, ``..data_tmp``
    renamed over ``..data``, visible links for new names, then the old directory goes."""
    old = os.readlink(root / "..data") if os.path.lexists(root / "..data") else None
    stamp = root / f"..2026_12_01_10_00_00.{next(_stamps):09d}"
    stamp.mkdir()
    for name, text in files.items():
        (stamp / name).write_text(text)
        if keep_mtimes:
            os.utime(stamp / name, ns=(OLD, OLD))
    os.symlink(stamp.name, root / "..data_tmp")
    os.replace(root / "..data_tmp", root / "..data")
    for name in files:
        if not os.path.lexists(root / name):
            os.symlink(os.path.join("..data", name), root / name)
    if old is not None:
        shutil.rmtree(root / old)


def _follow(manager) -> None:
    """Hot reload with the watcher alone, once its first poll is behind it (that poll,
    run as the watch starts, would otherwise pick up a change made right after)."""
    manager.enable_hot_reload(poll_interval=WATCHER_ONLY)
    assert wait_for(lambda: manager.reloader.confirmed_at)


def _consistent(manager) -> bool:
    gen = manager["audit_gen"]  # one read: one snapshot
    return gen["base"] == gen["env"]


@pytest.mark.parametrize("keep_mtimes", [False, True], ids=["new-mtimes", "kept-mtimes"])
def test_configmap_swaps_go_live_one_version_each_and_never_mixed(tmp_path, keep_mtimes):
    root = tmp_path / "configmap"
    root.mkdir()
    _configmap_update(root, _files(0), keep_mtimes=keep_mtimes)
    m = ConfigurationManager(root, environ={})
    m.load_environment_config("staging")
    seen: list[tuple[int, int, int]] = []

    def listener(event):
        if not event.is_error:
            snap = m.snapshot
            gen = snap.config["audit_gen"]
            seen.append((event.version, gen["base"], gen["env"]))

    m.register_change_listener(listener)
    _follow(m)
    try:
        start = m.version
        for generation in (1, 2, 3):
            _configmap_update(root, _files(generation), keep_mtimes=keep_mtimes)
            assert wait_for(lambda g=generation: m.get("audit_gen.env") == g)
            assert _consistent(m)
            assert m.version == start + generation  # one activation per update, no storm
        assert wait_for(lambda: len(seen) == 6)  # two changed leaves per update
        assert all(base == env for _, base, env in seen)
        assert [v for v, _, _ in seen] == sorted(v for v, _, _ in seen)
        assert m.last_error is None
        assert m.health().ready
    finally:
        m.close()


def test_readers_never_see_a_mix_during_configmap_swaps(tmp_path):
    root = tmp_path / "configmap"
    root.mkdir()
    _configmap_update(root, _files(0))
    m = ConfigurationManager(root, environ={})
    m.load_environment_config("staging")
    _follow(m)
    stop = threading.Event()
    problems: list[object] = []
    reads = [0]

    def reader():
        while not stop.is_set():
            try:
                if not _consistent(m) or m.get("music_streaming") is None:
                    problems.append(("mixed", m["audit_gen"]))
                reads[0] += 1
            except Exception as exc:  # a read must never raise
                problems.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for generation in range(1, 6):
            _configmap_update(root, _files(generation))
            assert wait_for(lambda g=generation: m.get("audit_gen.env") == g)
    finally:
        stop.set()
        for t in threads:
            t.join()
        m.close()
    assert reads[0] > 0
    assert problems == []


def _release(root, name: str, generation: int) -> None:
    d = root / "releases" / name
    d.mkdir(parents=True)
    for file, text in _files(generation).items():
        (d / file).write_text(text)


def _point(link, target: str) -> None:
    tmp = link.parent / (link.name + ".tmp")
    os.symlink(target, tmp)
    os.replace(tmp, link)  # atomic, as `ln -sfn` through a rename


def test_config_dir_symlink_switched_to_another_release_is_followed(tmp_path):
    """``current -> releases/v1`` switched to ``releases/v2`` (a Capistrano-style deploy):
    the switch goes live, and so do later edits inside v2, after v1 is deleted."""
    _release(tmp_path, "v1", 1)
    _release(tmp_path, "v2", 2)
    current = tmp_path / "current"
    os.symlink("releases/v1", current)
    m = ConfigurationManager(current, environ={})
    m.load_environment_config("staging")
    _follow(m)
    try:
        assert m.get("audit_gen.env") == 1
        _point(current, "releases/v2")
        assert wait_for(lambda: m.get("audit_gen.env") == 2)
        shutil.rmtree(tmp_path / "releases" / "v1")
        staging = tmp_path / "releases" / "v2" / "staging.yaml"
        tmp = staging.with_name("staging.yaml.new")
        tmp.write_text(_files(3)["staging.yaml"])
        os.replace(tmp, staging)
        assert wait_for(lambda: m.get("audit_gen.env") == 3)
        assert m.hot_reload_enabled
    finally:
        m.close()


def test_config_dir_deleted_and_recreated_keeps_serving_then_follows(tmp_path):
    d, m = _gen1(tmp_path)
    errors = []
    m.register_change_listener(lambda e: errors.append(e) if e.is_error else None)
    _follow(m)
    try:
        version = m.version
        shutil.rmtree(d)
        assert wait_for(lambda: errors)  # the missing files are refused...
        assert m.get("audit_gen.env") == 1 and m.version == version  # ...and v1 serves
        _bring_back(tmp_path, d)  # the directory comes back, complete
        assert wait_for(lambda: m.get("audit_gen.env") == 2)
        assert m.last_error is None
        # and the watcher follows the new directory, not the deleted one
        staging = d / "staging.yaml"
        tmp = d / ".staging.yaml.tmp"
        tmp.write_text(_files(3)["staging.yaml"])
        os.replace(tmp, staging)
        assert wait_for(lambda: m.get("audit_gen.env") == 3)
    finally:
        m.close()


def test_asyncio_watcher_follows_a_switched_config_dir_symlink(tmp_path):
    import asyncio

    from tests.waiting import wait_for_async

    _release(tmp_path, "v1", 1)
    _release(tmp_path, "v2", 2)
    current = tmp_path / "current"
    os.symlink("releases/v1", current)
    m = ConfigurationManager(current, environ={})
    m.load_environment_config("staging")

    async def main():
        await m.start_file_watching(poll_interval=WATCHER_ONLY)
        try:
            assert await wait_for_async(lambda: m.reloader.confirmed_at)
            _point(current, "releases/v2")
            assert await wait_for_async(lambda: m.get("audit_gen.env") == 2)
            shutil.rmtree(tmp_path / "releases" / "v1")
            (tmp_path / "releases" / "v2" / "staging.yaml").write_text(_files(3)["staging.yaml"])
            assert await wait_for_async(lambda: m.get("audit_gen.env") == 3)
        finally:
            await m.stop_file_watching()

    try:
        asyncio.run(main())
    finally:
        m.close()


def _write_after_the_poll_that_reads_gen_2(m, d, watcher) -> threading.Event:
    """Make ``watcher``'s poll write gen 3 right after a poll that read gen 2, once the
    returned event is set (cleared when it wrote): as a deploy writing right after the
    config directory came back, before the watcher's new watch is on."""
    real_poll = watcher.poll
    armed = threading.Event()

    def poll_then_write() -> None:
        real_poll()
        if armed.is_set() and m.get("audit_gen.env") == 2:
            armed.clear()
            tmp = d / ".staging.yaml.tmp"
            tmp.write_text(_files(3)["staging.yaml"])
            os.replace(tmp, d / "staging.yaml")

    watcher.poll = poll_then_write
    return armed


def _bring_back(tmp_path, d) -> None:
    staging_dir = tmp_path / "staging-area"
    staging_dir.mkdir()
    for name, text in _files(2).items():
        (staging_dir / name).write_text(text)
    os.rename(staging_dir, d)  # the directory comes back, complete


def _gen1(tmp_path):
    d = tmp_path / "config"
    d.mkdir()
    for name, text in _files(1).items():
        (d / name).write_text(text)
    m = ConfigurationManager(d, environ={})
    m.load_environment_config("staging")
    return d, m


def test_a_write_between_the_returning_directory_and_its_new_watch_is_read(tmp_path):
    # Once a deleted config directory is back, the watcher polls (gen 2) and then sets a
    # watch on the new directory. A write landing between the two reports no event to
    # that watch: the watcher polls again once the watch is on, so it is still read
    # (here with the periodic poll off: before, gen 3 was never served).
    d, m = _gen1(tmp_path)
    _follow(m)
    armed = _write_after_the_poll_that_reads_gen_2(m, d, m.reloader._watcher)
    try:
        shutil.rmtree(d)
        assert wait_for(lambda: m.last_error is not None)
        armed.set()
        _bring_back(tmp_path, d)
        assert wait_for(lambda: not armed.is_set() and m.get("audit_gen.env") == 3)
        assert m.last_error is None
    finally:
        m.close()


def test_the_asyncio_watcher_reads_a_write_before_its_new_watch_too(tmp_path):
    import asyncio

    from tests.waiting import wait_for_async

    d, m = _gen1(tmp_path)

    async def main():
        await m.start_file_watching(poll_interval=WATCHER_ONLY)
        try:
            assert await wait_for_async(lambda: m.reloader.confirmed_at)
            watcher = m.reloader._async_watcher
            armed = _write_after_the_poll_that_reads_gen_2(m, d, watcher)
            shutil.rmtree(d)
            assert await wait_for_async(lambda: m.last_error is not None)
            armed.set()
            _bring_back(tmp_path, d)
            assert await wait_for_async(lambda: not armed.is_set() and m.get("audit_gen.env") == 3)
            assert m.last_error is None
        finally:
            await m.stop_file_watching()

    try:
        asyncio.run(main())
    finally:
        m.close()
