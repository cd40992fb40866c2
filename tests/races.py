"""Real reader threads racing the changes a test makes on its own thread."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def readers_racing(read: Callable[[], None], readers: int = 2) -> Iterator[None]:
    """Run ``read()`` over and over on ``readers`` threads for the length of the block,
    with the switch interval at 10 us so threads change hands often (many
    interleavings); on leaving, stop and join them and put the interval back. An
    exception ``read()`` raises ends its thread and is raised again here."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.is_set():
                read()
        except BaseException as exc:  # (re-raised on the test's thread)
            errors.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(readers)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join()
        sys.setswitchinterval(interval)
    if errors:
        raise errors[0]
