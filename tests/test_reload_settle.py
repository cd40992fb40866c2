"""Issue 10, items 1 and 5: hot reload never activates a half-written or mixed input.

Real files, real watchers (watchfiles thread and asyncio task, the poll behind them):
a writer writes in place in chunks, or one file after another a few milliseconds
apart, and every state that ever went live must be one the writer finished.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import pathlib
import random
import threading
import time

import pytest

from cfgcore.config import settle
from cfgcore.config.manager import ConfigurationManager, bundled_flags
from cfgcore.config.settle import file_fingerprint, wait_until_settled
from cfgcore.errors import ConfigError
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.runtime.flags import shared_flags
from cfgcore.runtime.flagstore import open_store
from tests.waiting import wait_for

ROUNDS = 6
# The writers below pause 1-30 ms between writes; a loaded CI machine can stretch such a
# sleep well beyond it, so the tests give the settle window a wide margin over the gaps
# (the contract: writes closer together than the window are never read in between).
SETTLE_MS = 250
BUNDLED = pathlib.Path(bundled_flags())


def write_in_place(path, parts, pause):
    """Truncate ``path`` and write ``parts`` one after another, ``pause`` s apart
    (``open(path, "w")`` as naive writers do: the file is briefly each prefix)."""
    with open(path, "wb") as fh:
        for i, part in enumerate(parts):
            if i:
                time.sleep(pause)
            fh.write(part)
            fh.flush()


class Recorder:
    """A flag subscriber recording every flag snapshot that went live."""

    def __init__(self):
        self.live = []
        self.lock = threading.Lock()

    def flags_changed(self, old, new, source, doc, initiator):
        with self.lock:
            self.live.append((new, doc.checksum))

    def flags_rejected(self, error, source, origin):
        pass


def _visible(snapshot):
    # Derived experiment-layer flags (names starting "__") are not part of the file.
    return {k: v for k, v in snapshot.flags.items() if not k.startswith("__")}


def _flag_cuts(text: str) -> list[int]:
    """Byte offsets to cut the bundled catalog at: between two flags (the prefix is a
    complete, valid catalog with fewer flags) and inside recommendation_algorithm_v2
    right after its description (the truncation issue 10 saw go live as a boolean)."""
    lines = text.splitlines(keepends=True)
    starts = [sum(map(len, lines[:i])) for i in range(len(lines))]
    flag_starts = [
        starts[i] for i, line in enumerate(lines) if line.startswith("  ") and line[2] != " "
    ]
    inside = text.index("recommendation_algorithm_v2:")
    inside = text.index("\n", text.index("description:", inside)) + 1
    return [flag_starts[len(flag_starts) // 2], flag_starts[-1], inside]


# ------------------------------------------------------------------------------- item 1


def _round_texts():
    full = BUNDLED.read_text(encoding="utf-8")
    cuts = _flag_cuts(full)
    for k in range(ROUNDS):
        # A comment makes each round a new document with the same flags.
        text = f"# round {k}\n{full}".encode()
        cut = cuts[k % len(cuts)] + len(f"# round {k}\n")
        yield text, cut


def _assert_only_complete_documents_went_live(recorder, reference):
    assert recorder.live, "no round went live"
    for snapshot, _checksum in recorder.live:
        assert _visible(snapshot) == reference


@pytest.mark.parametrize("mode", ["thread", "async"])
def test_flags_yaml_written_in_two_chunks_never_serves_the_first(tmp_path, mode):
    (tmp_path / "development.yaml").write_text("app:\n  name: svc\n")
    flags = tmp_path / "flags.yaml"
    flags.write_bytes(BUNDLED.read_bytes())
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.load_environment_config()
    m.reloader.settle_ms = SETTLE_MS
    live = shared_flags(open_store(str(flags)))
    reference = _visible(live.source)
    recorder = Recorder()
    live.subscribe(recorder)

    def rounds():
        for text, cut in _round_texts():
            write_in_place(flags, [text[:cut], text[cut:]], pause=0.02)
            digest = hashlib.sha256(text).hexdigest()
            assert wait_for(lambda d=digest: live.document.checksum == d)

    if mode == "thread":
        m.enable_hot_reload(poll_interval=0.05)
        try:
            rounds()
        finally:
            m.close()
    else:

        async def scenario():
            await m.start_file_watching(poll_interval=0.05)
            try:
                await asyncio.to_thread(rounds)
            finally:
                await m.stop_file_watching()

        asyncio.run(scenario())
        m.close()
    _assert_only_complete_documents_went_live(recorder, reference)
    assert len({c for _, c in recorder.live}) >= ROUNDS  # every round went live once done


def test_dynamic_manager_watcher_never_serves_a_first_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(settle, "DEFAULT_SETTLE_MS", SETTLE_MS)
    flags = tmp_path / "flags.yaml"
    flags.write_bytes(BUNDLED.read_bytes())
    m = DynamicConfigurationManager(flags)
    reference = _visible(m._live.source)
    recorder = Recorder()
    m._live.subscribe(recorder)

    async def scenario():
        await m.start_file_watching(debounce_ms=20, poll_interval=0.05)
        try:
            for text, cut in _round_texts():
                await asyncio.to_thread(write_in_place, flags, [text[:cut], text[cut:]], pause=0.02)
                digest = hashlib.sha256(text).hexdigest()
                assert await asyncio.to_thread(
                    wait_for, lambda d=digest: m._live.document.checksum == d
                )
        finally:
            await m.stop_file_watching()
            m.close()

    asyncio.run(scenario())
    _assert_only_complete_documents_went_live(recorder, reference)


def test_refresh_with_settle_skips_a_file_that_changed_while_read(tmp_path, monkeypatch):
    flags = tmp_path / "flags.yaml"
    flags.write_bytes(BUNDLED.read_bytes())
    live = shared_flags(open_store(str(flags)))
    before = live.document
    store = live.store
    real_read = store.read_bytes

    def read_then_append():
        read = real_read()
        with open(flags, "ab") as fh:  # a writer still writing while we read
            fh.write(b"\n# more\n")
        return read

    text = flags.read_bytes()
    flags.write_bytes(text + b"\n# changed\n")
    os.utime(flags, ns=(0, 0))  # long settled
    monkeypatch.setattr(store, "read_bytes", read_then_append)
    assert live.refresh("reload", settle_ms=20) is False
    assert live.document is before
    monkeypatch.setattr(store, "read_bytes", real_read)
    os.utime(flags, ns=(0, 0))
    assert live.refresh("reload", settle_ms=20) is True  # settled now: goes live


# ------------------------------------------------------------------------------- item 5


def _write_generation(directory, n, rng, pause_range):
    """base.yaml then development.yaml of generation ``n``, 1-30 ms apart, in place."""
    (directory / "base.yaml").write_text(f"app:\n  generation: {n}\n  name: svc\n")
    time.sleep(rng.uniform(*pause_range))
    (directory / "development.yaml").write_text(f"server:\n  generation: {n}\n  port: 8080\n")


@pytest.mark.parametrize("mode", ["thread", "async"])
def test_two_files_changed_ms_apart_never_go_live_mixed(tmp_path, mode):
    rng = random.Random(10)
    _write_generation(tmp_path, 0, rng, (0, 0))
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.reloader.settle_ms = SETTLE_MS
    m.load_environment_config()
    seen = []  # (base generation, development generation) of every live snapshot
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            config = m.snapshot.config
            seen.append((config["app"]["generation"], config["server"]["generation"]))
            time.sleep(0.0005)

    def rounds():
        for n in range(1, ROUNDS + 1):
            _write_generation(tmp_path, n, rng, (0.001, 0.030))
            assert wait_for(lambda n=n: m.get("server.generation") == n == m.get("app.generation"))
        assert wait_for(lambda: seen[-1] == (ROUNDS, ROUNDS))  # the sampler saw the end

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        if mode == "thread":
            m.enable_hot_reload(poll_interval=0.05)
            rounds()
        else:

            async def scenario():
                await m.start_file_watching(poll_interval=0.05)
                try:
                    await asyncio.to_thread(rounds)
                finally:
                    await m.stop_file_watching()

            asyncio.run(scenario())
    finally:
        stop.set()
        sampler.join()
        m.close()
    mixed = sorted({pair for pair in seen if pair[0] != pair[1]})
    assert mixed == []
    assert {b for b, _ in seen} >= {0, ROUNDS}


def test_background_reload_of_ever_changing_inputs_keeps_the_live_version(tmp_path, monkeypatch):
    """The old code activated the last build after three unstable reads."""
    (tmp_path / "development.yaml").write_text("app:\n  name: one\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.load_environment_config()
    m.reloader.settle_ms = 0  # the reads below are what changes, not the clock
    events = []
    m.register_change_listener(events.append)
    (tmp_path / "development.yaml").write_text("app:\n  name: two\n")
    ticks = iter(range(10**6))
    real = m.builder.fingerprint
    monkeypatch.setattr(m.builder, "fingerprint", lambda env: (*real(env), next(ticks)))
    before = m.snapshot
    assert m._reload("reload", background=True) is True  # nothing refused...
    assert m.snapshot is before and events == []  # ...and nothing activated
    assert m.reloader.rejected_fingerprint is None  # the poll retries
    # An explicit reload says why nothing happened.
    assert m.reload() is False and "kept changing" in str(m.last_error)
    assert m.snapshot is before
    monkeypatch.setattr(m.builder, "fingerprint", real)
    assert m.reload() is True and m.get("app.name") == "two"


def test_wait_until_settled_gives_up_on_files_that_keep_changing():
    ticks = iter(range(10**6))
    changing = lambda: (("f", 1, 1, time.time_ns() + 10**12 + next(ticks)),)  # noqa: E731
    assert wait_until_settled(changing, 1, windows=3) is None
    steady = (("f", 1, 1, time.time_ns() + 10**12),)  # a timestamp in the future: skew
    assert wait_until_settled(lambda: steady, 1) == steady
    old = (("f", 1, 1, 0),)
    assert wait_until_settled(lambda: old, 10**6) == old  # long settled: no wait at all


def test_file_fingerprint_skips_missing_files(tmp_path):
    (tmp_path / "a").write_text("x")
    found = file_fingerprint([str(tmp_path / "a"), str(tmp_path / "missing")])
    assert [p for p, *_ in found] == [str(tmp_path / "a")] and found[0][2] == 1


def test_unstable_explicit_reload_is_an_error_event_not_a_rejection(tmp_path, monkeypatch):
    (tmp_path / "development.yaml").write_text("app:\n  name: one\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.load_environment_config()
    (tmp_path / "development.yaml").write_text("app:\n  name: two\n")
    events = []
    m.register_change_listener(events.append)
    ticks = iter(range(10**6))
    real = m.builder.fingerprint
    monkeypatch.setattr(m.builder, "fingerprint", lambda env: (*real(env), next(ticks)))
    assert m.reload() is False
    assert isinstance(m.last_error, ConfigError)
    assert [e.kind for e in events] == ["error"]
    assert m.reloader.rejected_fingerprint is None


@pytest.mark.parametrize("settle_ms", [10**13, 10**30])
def test_a_settle_window_longer_than_any_sleep_is_waited_for_not_an_overflow(tmp_path, settle_ms):
    # settle_ms is any whole number of ms (manager.reloader.settle_ms = ...): one past
    # what Event.wait takes (~292 years) raised OverflowError on the watcher thread.
    path = tmp_path / "flags.yaml"
    path.write_text("flags: {}\n")  # modified just now: the window is waited for
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    got = wait_until_settled(lambda: file_fingerprint([str(path)]), settle_ms, stop=stop)
    assert got is None and stop.is_set()  # it waited until stopped, as in any window
