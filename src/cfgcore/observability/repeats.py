"""Refusals logged at ERROR a few times per text and minute: a flapping input floods no log.

A configuration directory or flags file that flaps (two deploy tools writing it in
turn, an editor saving a broken and a good version over and over, a bad and a worse
version alternating) makes a refusal at every flip. Each is counted
(``cfgcore_config_loads_total{result="rejected"}``,
``cfgcore_flag_documents_total{result="rejected"}``), audited and reported to
listeners, but logging each one at ERROR filled the log with the same few lines, as
often as the watcher reads the file. :class:`RepeatedRefusals` decides the level: a
refusal text is logged at ERROR at most :data:`BURST` times in :data:`WINDOW` seconds
(so a file broken, repaired and broken again is still reported twice); more of the
same text in that time go to DEBUG, and the next ERROR of that text says how many did.

>>> clock = iter([0.0, 1.0, 2.0, 3.0, 4.0, 90.0]).__next__
>>> refusals = RepeatedRefusals(burst=2, clock=clock)
>>> [refusals.judge(t) for t in ("a: bad", "b: worse", "a: bad", "a: bad", "a: bad", "a: bad")]
[(True, 0), (True, 0), (True, 0), (False, 0), (False, 0), (True, 2)]
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable

from cfgcore.runtime.forks import after_fork_in_child

__all__ = ["BURST", "KEPT", "WINDOW", "RepeatedRefusals"]

#: Seconds over which the ERRORs of one refusal text are counted.
WINDOW = 60.0

#: ERRORs of one refusal text per :data:`WINDOW`; more go to DEBUG.
BURST = 3

#: Distinct refusal texts remembered (the least recently logged are forgotten first).
KEPT = 32


class RepeatedRefusals:
    """Per source (one configuration manager's reloads, one flag set): for a refusal's
    text, whether to log it at ERROR now, and how many of it were not since its last
    ERROR. Thread-safe; remembers at most ``kept`` texts (the least recent forgotten)."""

    def __init__(
        self,
        *,
        window: float = WINDOW,
        burst: int = BURST,
        kept: int = KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.burst = burst
        self.kept = kept
        self._clock = clock
        self._lock = threading.Lock()
        # text -> (clock of its ERRORs in the window, at most burst of them; [refusals
        # logged at DEBUG since the last ERROR])
        self._seen: OrderedDict[str, tuple[deque[float], list[int]]] = OrderedDict()
        _ALL.add(self)

    def judge(self, text: str) -> tuple[bool, int]:
        """``(at_error, unlogged)``: log ``text`` at ERROR now or at DEBUG; ``unlogged``
        is how many refusals with this text went to DEBUG since its last ERROR (given
        with the ERROR that ends them, else 0)."""
        now = self._clock()
        with self._lock:
            seen = self._seen.get(text)
            if seen is None:
                seen = self._seen[text] = (deque(maxlen=self.burst), [0])
            self._seen.move_to_end(text)
            times, unlogged = seen
            while times and not 0 <= now - times[0] < self.window:  # (a clock set back too)
                times.popleft()
            if len(times) >= self.burst:
                unlogged[0] += 1
                at_error, told = False, 0
            else:
                times.append(now)
                at_error, told, unlogged[0] = True, unlogged[0], 0
            while len(self._seen) > self.kept:
                self._seen.popitem(last=False)
            return at_error, told

    def suffix(self, unlogged: int) -> str:
        """The tail of an ERROR that follows ``unlogged`` repeats logged at DEBUG (empty
        for none)."""
        if not unlogged:
            return ""
        return (
            f" (the same refusal came {unlogged} more time(s) since it was last logged at "
            f"ERROR; more than {self.burst} in {self.window:g} s are logged at DEBUG)"
        )


_ALL: weakref.WeakSet[RepeatedRefusals] = weakref.WeakSet()


@after_fork_in_child
def _after_fork_in_child() -> None:
    # A thread of the parent may have been judging a refusal at fork time: its lock
    # would stay held in the child, and the child's next refusal would hang (under the
    # manager's or the flag set's lock).
    for refusals in list(_ALL):
        refusals._lock = threading.Lock()
