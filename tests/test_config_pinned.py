"""``ConfigurationManager.pinned()``: the configuration and the flags served with it, as
one pair, without waiting on a change under way.

It took the flag set's lock, which a change holds through far more than the swap: the
compile of a fleet document, a file's read, a Redis write recording dropped tests, and
every listener. A request calling it waited all that long. The pair is now set in one
assignment each time either half goes live; a swap listener on the changing thread
reads the pair that served before (it read the new flags with the old configuration).
Real files, real reloads, real threads."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import warnings
from collections.abc import Iterator

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.dynamic_config import DynamicConfigurationManager
from tests.races import readers_racing


def _write(config_dir, gen: int) -> None:
    (config_dir / "base.yaml").write_text(f"app: {{name: svc}}\nsvc: {{gen: {gen}}}\n")
    (config_dir / "flags.yaml").write_text(
        f"flags:\n  gen:\n    variants: {{g: {gen}}}\n    default: g\n"
    )


def _pair(m: ConfigurationManager) -> tuple[int, int]:
    snap, flags = m.pinned()
    return snap.config["svc"]["gen"], flags.evaluate("gen").value


@pytest.fixture
def manager(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "development.yaml").write_text("{}\n")
    _write(config_dir, 1)
    m = ConfigurationManager(str(config_dir), environ={})
    m.load_environment_config("development")
    yield m, config_dir
    m.close()


def test_a_reload_of_both_halves_is_one_pair(manager):
    m, config_dir = manager
    assert _pair(m) == (1, 1)
    _write(config_dir, 2)
    assert m.reload()
    assert _pair(m) == (2, 2)


def test_pinned_does_not_wait_while_the_flag_set_is_busy(manager):
    """The flag set's lock held (as a change holds it through a compile, a store read
    or write, and every listener): pinned() answers the live pair at once; it waited
    for the lock before."""
    m, _ = manager
    live = m._flags._live
    assert live is not None
    answers: list = []
    with _held_by_another_thread(live._lock):
        reader = threading.Thread(target=lambda: answers.append(_pair(m)))
        reader.start()
        reader.join(30)
        assert not reader.is_alive(), "pinned() waited on the flag set's lock"
    assert answers == [(1, 1)]


@contextlib.contextmanager
def _held_by_another_thread(lock) -> Iterator[None]:
    """``lock`` held by a thread of its own for the length of the block."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock:
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        yield
    finally:
        release.set()
        holder.join()


def test_a_swap_listener_on_the_changing_thread_reads_the_pair_that_served(manager):
    """Inside the flag engine's swap (the new flags live in the engine, the new
    configuration not yet assigned), pinned() on that very thread answered the new flags
    with the old configuration (the lock it took is re-entrant). It answers the pair
    that served until both halves are live."""
    m, config_dir = manager
    seen: list = []
    remove = m.flags.add_swap_listener(lambda old, new: seen.append(_pair(m)))
    try:
        _write(config_dir, 2)
        assert m.reload()
    finally:
        remove()
    assert seen == [(1, 1)]
    assert _pair(m) == (2, 2)


def test_a_flag_change_made_elsewhere_is_paired_before_the_call_returns(manager, tmp_path):
    """A flag document that goes live without a configuration (the dynamic-config API,
    a fleet follower, the flags file's own watcher) pairs with the live configuration
    before anyone hears of it: set_feature_flag returns with pinned() serving it."""
    m, config_dir = manager
    dyn = DynamicConfigurationManager(
        flags_file=str(config_dir / "flags.yaml"), state_dir=tmp_path / "state"
    )
    try:
        assert dyn.engine is m.flags  # (one flag set per store per process)
        heard: list = []
        m.register_change_listener(lambda event: heard.append(_pair_flag(m, "extra")))
        dyn.set_feature_flag("extra", True)
        snap, flags = m.pinned()
        assert snap.config["svc"]["gen"] == 1 and flags.is_enabled("extra", {})
        assert heard and all(heard)
    finally:
        dyn.close()


def _pair_flag(m: ConfigurationManager, name: str) -> bool:
    return bool(m.pinned()[1].is_enabled(name, {}))


def test_a_flags_file_that_appears_later_is_what_pinned_serves(tmp_path, monkeypatch):
    """A manager started without a flags file hands out an empty engine; a flags file
    that appears goes live in it with the next activation, and pinned() pairs it."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "base.yaml").write_text("app: {name: svc}\nsvc: {gen: 1}\n")
    (config_dir / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(str(config_dir), environ={})
    try:
        m.load_environment_config("development")
        snap, flags = m.pinned()
        assert flags.evaluate("gen").value is None  # no flags yet
        _write(config_dir, 2)
        assert m.reload()
        assert _pair(m) == (2, 2)
        assert m.pinned()[1] is m.flags.snapshot()
    finally:
        m.close()


def test_readers_racing_reloads_never_see_a_mixed_pair(manager):
    m, config_dir = manager
    mixed: list = []
    reads = [0]

    def read() -> None:
        gen, flag = _pair(m)
        reads[0] += 1
        if gen != flag:
            mixed.append((gen, flag))

    with readers_racing(read):
        for gen in range(2, 22):
            _write(config_dir, gen)
            assert m.reload()
    assert reads[0] > 0
    assert mixed == []
    assert _pair(m) == (21, 21)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_while_the_pair_is_being_set_pairs_its_own(manager):
    """The pair's lock held by a parent thread at the fork (as an activation holds it
    for a moment): that thread does not exist in the child, whose reloads pair their
    configuration and flags all the same instead of waiting forever."""
    m, config_dir = manager
    with _held_by_another_thread(m._pair_lock):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
            pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.alarm(20)  # (a deadlock ends the child, and fails the test)
                _write(config_dir, 5)
                code = 0 if m.reload() and _pair(m) == (5, 5) else 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert _pair(m) == (1, 1)  # the parent's, untouched by the child's reload
