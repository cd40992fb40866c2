"""Hot-reload control for the configuration manager: when to re-read the inputs.

:class:`ReloadController` owns the watchers (a watchfiles thread, or a task on the
caller's asyncio loop; both in :mod:`cfgcore.config.watcher`) and the poll that backs
them up. It decides *when* to reload; the manager decides *what* goes live (build,
validate, swap). The poll compares the inputs' fingerprints with the live snapshot's,
and remembers a rejected and a touched-but-unchanged input so it neither retries a bad
file on every tick nor re-reads every input forever after a ``touch``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from cfgcore._numbers import WholeSetting
from cfgcore.config.settle import (
    DEFAULT_MAX_SETTLE_WAIT_MS,
    DEFAULT_SETTLE_MS,
    WATCHER_STOP,
    is_settled,
    mid_truncation,
    wait_until_settled,
)
from cfgcore.config.state import ConfigSnapshot
from cfgcore.errors import ConfigError, printable_name
from cfgcore.observability import instruments
from cfgcore.observability.repeats import RepeatedRefusals
from cfgcore.runtime.events import ConfigChangeEvent

if TYPE_CHECKING:
    from cfgcore.config.manager import ConfigurationManager

__all__ = ["ReloadController"]

log = logging.getLogger("cfgcore.manager")

# How long enabling hot reload waits for the watch to be set up before it says so (and
# goes on: the watcher keeps retrying, and the poll covers the files meanwhile).
READY_TIMEOUT = 5.0


def _vanished(before: tuple[Any, ...], after: tuple[Any, ...]) -> bool:
    """True if a file fingerprinted in ``before`` is missing from ``after``."""
    return bool({entry[0] for entry in before} - {entry[0] for entry in after})


def _under(path: str, directory: str) -> bool:
    """True if ``path`` lies inside ``directory`` (which a recursive watch then covers)."""
    try:
        return os.path.commonpath([path, directory]) == directory
    except ValueError:  # different drives
        return False


class ReloadController:
    """Watchers and the poll for one :class:`~cfgcore.config.manager.ConfigurationManager`."""

    settle_ms = WholeSetting(0, "milliseconds")
    max_settle_wait_ms = WholeSetting(0, "milliseconds")

    def __init__(
        self,
        manager: ConfigurationManager,
        debounce_ms: int | None,
        settle_ms: int | None = None,
        max_settle_wait_ms: int | None = None,
    ) -> None:
        self.manager = manager
        self.debounce_ms = debounce_ms
        self._watcher: Any = None
        self._control = threading.Lock()  # enable/disable of the thread watcher
        self._async_watcher: Any = None
        self._async_task: asyncio.Task[None] | None = None
        self._async_stop: asyncio.Event | None = None
        # How long a watched input must stay unchanged before a watcher-triggered reload
        # reads it (see cfgcore.config.settle.wait_until_settled); 0 disables.
        self.settle_ms = DEFAULT_SETTLE_MS if settle_ms is None else settle_ms
        # How long inputs that never settle (a file rewritten continuously) may keep the
        # previous version live: past it, they are read as they are (and must still
        # parse and validate), then watched on. 0: wait for them to settle, however long.
        self.max_settle_wait_ms = (
            DEFAULT_MAX_SETTLE_WAIT_MS if max_settle_wait_ms is None else max_settle_wait_ms
        )
        # time.monotonic() when watcher reloads started finding the inputs unsettled
        # (None: the last one settled, or none ran): the start of the bounded wait,
        # across the reloads each write's event starts.
        self._unsettled_since: float | None = None
        self.rejected_fingerprint: tuple[Any, ...] | None = None
        self.unchanged_fingerprint: tuple[Any, ...] | None = None
        # The text of the last rejection logged: a reload that fails the same way again
        # (a file that stays missing, retried by the watcher) is logged once, and again
        # only when the reason changes or after a success (which clears it).
        self.reported_error: str | None = None
        self.reported_fingerprint: tuple[Any, ...] | None = None  # of the inputs it was about
        # The refusal of the inputs as a reload last read them, standing until a build
        # from the inputs goes live or they read back as what is live: a runtime update
        # reads no file, so what the files hold is still refused after it (health's
        # ``last_reload`` goes on saying so, as a refused flag document's ``flags``).
        self.refused: ConfigError | None = None
        # Refusals of inputs that flap between versions: the same text is logged at
        # ERROR once per window (every refusal is still counted, audited and told).
        self.refusals = RepeatedRefusals()
        # time.time() of the last poll that found the live snapshot current (health:
        # a watcher that stopped polling makes the configuration stale).
        self.confirmed_at = 0.0

    def fingerprint(self, env: str) -> tuple[Any, ...]:
        """The fingerprint of ``env``'s input files (``ConfigBuilder.fingerprint``), the
        ``.env`` file the manager reads among them: the same one every snapshot records
        (it used to be added here only, so the first load's snapshot lacked it and the
        poll never saw the file deleted)."""
        return self.manager.builder.fingerprint(env)  # type: ignore[no-any-return]

    def reload(self, source: str, *, background: bool) -> bool:
        """Re-read the inputs and activate them through the manager's change path; False
        when they were rejected (an error event is published)."""
        m = self.manager
        if not m._snap.version:
            try:
                m._ensure_loaded()
            except ConfigError:  # last_error and the audit log have it
                return False
            return True
        # None until the inputs were fingerprinted: () is a real fingerprint (every input
        # missing, as behind a dangling ConfigMap "..data" link) and must be remembered.
        taken: list[tuple[Any, ...] | None] = [None]
        settle_ms = self.settle_ms if background else 0
        # The fingerprint the last wait outside the lock found stable, and whether the
        # build found the inputs changed again since (then it waits again, unlocked).
        settled: list[tuple[Any, ...] | None] = [None]
        unsettled = [False]
        # The paths the live version was read from: one missing now was deleted or
        # renamed away (an editor's save, a directory moved away and back), a change
        # with no timestamp to settle on (see wait_until_settled).
        expected = {entry[0] for entry in m._snap.fingerprint}
        # Set when the watcher running this reload is stopped (close(), disable): the
        # wait ends at once and nothing more goes live.
        stop = WATCHER_STOP.get() if background else None
        # Set once the inputs kept changing past max_settle_wait_ms: read them as they
        # are (bounded staleness), not once they settle.
        forced = [False]
        # What the inputs were seen as before (refused, or live: last, so it wins where
        # they disagree): one caught in the middle of a truncation against these is no
        # input to read (mid_truncation).
        known = [
            fp for fp in (self.rejected_fingerprint, self.reported_fingerprint, m._snap.fingerprint)
            if fp
        ]  # fmt: skip

        def build(prev: ConfigSnapshot) -> tuple[ConfigSnapshot, Any]:
            env = prev.environment
            for attempt in range(3):
                # Taken before reading: if the input is rejected, the poll must retry
                # as soon as the files differ from the bytes that were read.
                stamp = self.fingerprint(env)
                if (
                    settled[0] is not None
                    and stamp != settled[0]
                    and (
                        not is_settled(stamp, settle_ms)
                        or _vanished(settled[0], stamp)
                        or mid_truncation(stamp, known)
                    )
                ):
                    # Written again since the wait, a file deleted or renamed away
                    # since, or one being truncated: a writer is still writing one file,
                    # or about to write the next, and must not be read in between.
                    # Wait again, but not here: this holds the lock.
                    unsettled[0] = True
                    return prev, None
                if not settle_ms and attempt < 2 and mid_truncation(stamp, known):
                    # (an explicit reload waits for no writer, but this is microseconds)
                    time.sleep(0.002)
                    continue
                taken[0] = stamp
                try:
                    snap, flags = m.builder.build(
                        env, prev.profile, prev.geographic_profile, prev.runtime,
                        prev, skip_if_unchanged=True, guard=True, fingerprint=stamp,
                        source=source,
                    )  # fmt: skip
                except ConfigError:
                    # Refused, but the inputs moved while being read: what was refused
                    # may be a half-written file, and is not what the files hold now.
                    # Read again, as for a build that succeeded, before reporting: a
                    # refusal reported against one fingerprint and read again under
                    # another was reported twice.
                    if (forced[0] and attempt == 2) or self.fingerprint(env) == stamp:
                        raise
                    continue
                if snap is prev:
                    # Touched, not changed: the poll must not re-read everything. The
                    # inputs read back as what is live (a broken file reverted, say):
                    # an earlier rejection no longer describes them.
                    self.unchanged_fingerprint = stamp
                    self.rejected_fingerprint = None
                    self.reported_error = None
                    self.refused = m.last_error = None
                    return prev, None
                # A file that changed while we read it may have been read half-written,
                # or with another file of a different version: never activate that.
                # Past the bound, the third read goes on to validation even so: a
                # writer that never stops must not keep the old version forever. Its
                # fingerprint is the one taken before the read, so the poll reads the
                # inputs again (settled, once the writes stop).
                if self.fingerprint(env) == stamp or (forced[0] and attempt == 2):
                    # A followed configuration's flags published with it (config/
                    # published.py): swapped in with it, never one before the other.
                    return snap, flags if flags is not None else m._paired_flags
            # Still changing: keep serving what is live. The poll sees inputs that differ
            # from the live snapshot's and tries again; an explicit reload says so.
            if not background:
                raise ConfigError(
                    f"inputs kept changing while being read; keeping version {prev.version}",
                    file=m.config_dir,
                    kind="incomplete",
                )
            log.info("inputs still changing; keeping version %d, retrying", prev.version)
            return prev, None

        def failed(exc: ConfigError, prev: ConfigSnapshot) -> ConfigChangeEvent | None:
            stamp = taken[0]
            if (
                stamp is not None
                and self.fingerprint(prev.environment) == stamp
                and (is_settled(stamp, DEFAULT_SETTLE_MS) or stamp == settled[0])
            ):
                # Refused as read: retry only once the files change again (neither the
                # poll nor a watcher event for another file, such as the audit log
                # next to them, re-reads it). Inputs still changing are retried as is.
                # Settled means old enough, or unchanged over the whole settle wait
                # (a timestamp in the future, from a skewed clock, is never old).
                self.rejected_fingerprint = stamp
            self.refused = exc
            text = str(exc)
            again = text == self.reported_error and stamp is not None
            again = again and stamp == self.reported_fingerprint
            tail = ""
            if text == self.reported_error:  # the same inputs read again: told already
                level = logging.DEBUG
            else:  # a flapping input: ERROR once per text and window (observability.repeats)
                at_error, unlogged = self.refusals.judge(text)
                level = logging.ERROR if at_error else logging.DEBUG
                tail = self.refusals.suffix(unlogged)
            self.reported_error, self.reported_fingerprint = text, stamp
            log.log(
                level,
                "configuration reload rejected; keeping version %d: %s%s",
                prev.version, text, tail,
            )  # fmt: skip
            if again and background:
                # The very input refused and reported last time (read again by a watcher
                # after an explicit reload refused it mid-write, say): the error event
                # and audit entry are not repeated; last_error still says it.
                return None
            return m._error_event(exc, source)

        bound = self.max_settle_wait_ms / 1000 if settle_ms else 0
        since = self._unsettled_since or time.monotonic()
        deadline = since + bound if bound > 0 else None
        for _round in range(3):
            if settle_ms and not forced[0]:
                # A watcher first waits for the inputs to settle, without the manager's
                # lock: update_config() and the other activations carry on meanwhile.
                # The build checks again under the lock (and comes back here if they
                # changed since), so what it reads is still a settled input.
                log.debug("waiting for the inputs to stay unchanged for %d ms", settle_ms)
                settled[0] = wait_until_settled(
                    lambda: self.fingerprint(m._snap.environment),
                    settle_ms,
                    expected=expected,
                    known=known,
                    stop=stop,
                    deadline=deadline,
                )
                if stop is not None and stop.is_set():
                    return True  # closed meanwhile: activate nothing more
                if settled[0] is None:
                    if deadline is None or time.monotonic() < deadline:
                        break
                    log.warning(
                        "inputs kept changing for %.1f s (more than the %d ms hot reload "
                        "waits for them to settle); reading them as they are",
                        time.monotonic() - since,
                        self.max_settle_wait_ms,
                    )
                    forced[0] = True
            unsettled[0] = False
            try:
                m._apply(source, build, failed=failed, background=background, operation="reload")
            except ConfigError:
                self._unsettled_since = None
                return False
            if not unsettled[0]:
                self._unsettled_since = None
                return True
        # Still changing: keep serving what is live; the poll (or the next event) retries,
        # and reads them as they are once they have kept changing past the bound.
        if background and settle_ms:
            self._unsettled_since = since
        log.info("inputs still changing; keeping version %d, retrying", m._snap.version)
        return True

    def enable(self, *, poll_interval: float = 0.5, stall_after: float | None = None) -> None:
        from cfgcore.config.watcher import (
            DEFAULT_DEBOUNCE_MS,
            DirectoryWatcher,
            check_poll_interval,
            check_stall_after,
        )

        # Checked before anything starts, and when a watcher already runs (which keeps
        # its interval): a bad number is refused whenever it is given.
        poll_interval = check_poll_interval(poll_interval)
        bound = None if stall_after is None else check_stall_after(stall_after)
        m = self.manager
        snap = m._current()
        # Created and started under one lock that disable() takes too: a disable between
        # the two would stop a watcher not yet started, which would then start with
        # nobody holding it (hot_reload_enabled False, close() unable to stop it). Not
        # the manager's lock: the watcher's first poll reloads, under that lock.
        with self._control:
            if self._watcher is None:
                self._watcher = DirectoryWatcher(
                    self._watch_paths(snap),
                    self._on_files_changed,
                    poll=self.poll,
                    debounce_ms=self._debounce(DEFAULT_DEBOUNCE_MS),
                    poll_interval=poll_interval,
                    on_fork=self.manager._after_fork_in_child,
                    stall_after=bound,
                )
                instruments.track_watcher(self._watcher, config_dir=m.config_dir)
            elif bound is not None:  # enabled again with another bound: it applies now
                self._watcher.stall_after = bound
            watcher = self._watcher
            watcher.start(wait=None)
        if not watcher.wait_ready(READY_TIMEOUT) and watcher is self._watcher:
            log.warning(
                "file watcher on %s did not become ready in time", printable_name(m.config_dir)
            )

    def disable(self) -> None:
        with self._control:
            watcher, self._watcher = self._watcher, None
            if watcher is not None:
                watcher.stop()

    @property
    def enabled(self) -> bool:
        w = self._watcher
        return bool(w is not None and w.running) or (
            self._async_task is not None and not self._async_task.done()
        )

    async def start_async(
        self, *, poll_interval: float = 0.5, stall_after: float | None = None
    ) -> None:
        from cfgcore.config.watcher import (
            DEFAULT_DEBOUNCE_MS,
            AsyncDirectoryWatcher,
            check_poll_interval,
            check_stall_after,
        )

        poll_interval = check_poll_interval(poll_interval)
        bound = None if stall_after is None else check_stall_after(stall_after)
        if self._async_task is not None and not self._async_task.done():
            if bound is not None and self._async_watcher is not None:
                self._async_watcher.stall_after = bound  # as enable(): the new bound applies
            return
        if self._async_watcher is not None:
            # Its task ended unstopped (its event loop gone, or cancelled): replaced now,
            # so no longer wanted (health and the liveness series forget it, rather than
            # report it stale beside the new one until it is garbage collected).
            self._async_watcher.request_stop()
        m = self.manager
        snap = await asyncio.to_thread(m._current)
        m.events.set_loop(asyncio.get_running_loop())
        watcher = AsyncDirectoryWatcher(
            self._watch_paths(snap),
            self._on_files_changed,
            poll=self.poll,
            debounce_ms=self._debounce(DEFAULT_DEBOUNCE_MS),
            poll_interval=poll_interval,
            stall_after=bound,
        )
        instruments.track_watcher(watcher, config_dir=m.config_dir)
        self._async_watcher = watcher
        ready = await watcher.start(wait=None)  # sets the task before we wait on it
        self._async_task, self._async_stop = watcher.task, watcher.stop_event
        # Not when stopped meanwhile (stop_file_watching, or close() from another
        # thread): the watch then ends before it is ready, and nothing is wrong.
        if not ready and not await watcher.start(READY_TIMEOUT) and not watcher.stopping:
            log.warning(
                "file watcher on %s did not become ready in time", printable_name(m.config_dir)
            )

    async def stop_async(self) -> None:
        watcher = self._async_watcher
        self._async_watcher = self._async_task = self._async_stop = None
        if watcher is not None:
            await watcher.stop()

    async def stop_async_here(self) -> None:
        """:meth:`stop_async` when the asyncio watcher runs on the calling loop (waits
        for its task, and so for a reload it is running); one on another loop is left to
        :meth:`close`, which asks it to stop."""
        watcher = self._async_watcher
        task = watcher.task if watcher is not None else None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            await self.stop_async()

    def follow_inputs(self, snap: ConfigSnapshot) -> None:
        """``snap`` went live: watch the directories its inputs live in now. A secret
        file a new ``${file:...}`` reference reads (or a flags file moved) was
        otherwise seen only by the poll, the watch's paths being fixed when it began."""
        for watcher in (self._watcher, self._async_watcher):
            if watcher is not None:
                watcher.set_paths(self._watch_paths(snap))

    def _debounce(self, default: int) -> int:
        if self.debounce_ms:
            return self.debounce_ms
        configured = self.manager.get("config_management.reload_debounce_ms")
        if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
            return configured
        return default

    def _watch_paths(self, snap: ConfigSnapshot) -> list[str]:
        paths = {self.manager.config_dir}
        if snap.flags_file:
            paths.add(os.path.dirname(snap.flags_file))
        dotenv = self.manager.builder.env_file()
        if dotenv is not None and not any(_under(dotenv.path, p) for p in paths):
            # The file itself, not its directory: a .env beside the configuration lives
            # in the directory above it (a project root, say), and a recursive watch of
            # that would take an inotify watch per directory of everything in it. The
            # watcher re-watches a path whose inode changes (a rename over it, a
            # ConfigMap-style link swap) and polls after; the poll covers the rest.
            paths.add(dotenv.path)
        for secret in self.manager.builder.secret_files.get(snap.environment, ()):
            # The directory, as for the configuration: a Secret volume's files are
            # links through "..data", which Kubernetes switches to rotate them.
            directory = os.path.dirname(os.path.abspath(secret))
            if os.path.isdir(directory) and not any(_under(directory, p) for p in paths):
                paths.add(directory)
        return sorted(paths)

    def _on_files_changed(self, changes: Any) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("file changes: %s", sorted(str(p) for _, p in changes))
        # An event for a file that is not an input (an audit log written next to the
        # configuration, say) must not re-read a refused input: that refusal writes
        # the audit log, whose event would re-read it again, forever.
        if self.manager._snap.version and self._refused_as_is():
            return
        self.reload("reload", background=True)

    def _refused_as_is(self) -> bool:
        m = self.manager
        rejected = self.rejected_fingerprint
        return rejected is not None and self.fingerprint(m._snap.environment) == rejected

    def poll(self) -> None:
        """Reload if an input differs from what is live (and from what was refused)."""
        m = self.manager
        snap = m._snap
        if not snap.version:
            return
        current = self.fingerprint(snap.environment)
        # Retry a rejected input only once it changes again, and skip a touched but
        # unchanged one, rather than re-reading every input on every poll.
        quiet = (snap.fingerprint, self.rejected_fingerprint, self.unchanged_fingerprint)
        if current not in quiet:
            self.reload("reload", background=True)
        else:  # what is live is what the inputs say (or what was refused of them)
            self.confirmed_at = time.time()
            self._unsettled_since = None  # no wait going on: the next one starts afresh

    def after_fork_in_child(self) -> None:
        self._control = threading.Lock()  # held by another thread at fork time, maybe
        # The parent's asyncio watcher belongs to a loop nobody runs here; forget it, so
        # `enabled` tells the truth and start_async starts a new one.
        self._async_watcher = self._async_task = self._async_stop = None

    def close(self) -> None:
        self.disable()
        if self._async_watcher is not None:
            self._async_watcher.request_stop()  # from any thread
