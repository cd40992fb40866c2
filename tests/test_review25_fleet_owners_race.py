"""A Redis flag store asks the managers that serve it (``add_owner``) which environment
its printed repair commands publish for. Managers open and close on other threads
while its follower formats a refusal: the question must be answered, not raise
(``RuntimeError: Set changed size during iteration`` escaped the store's read while a
second manager registered on a shared store). No server is needed: the owners are
asked without a read.
"""

from __future__ import annotations

import sys
import threading

from cfgcore.runtime.redis_store import RedisFlagStore


class Owner:
    def __init__(self, env: str | None) -> None:
        self.env = env

    def serving_environment(self) -> str | None:
        return self.env


def test_owners_registering_while_the_store_asks_them_never_break_the_answer():
    store = RedisFlagStore("redis://127.0.0.1:1/0?cache=off")
    kept = [Owner("staging") for _ in range(2000)]
    for owner in kept:
        store.add_owner(owner)
    stop = threading.Event()
    errors: list[BaseException] = []
    answers: set[str | None] = set()

    def churn() -> None:
        others = [Owner("staging") for _ in range(200)]
        while not stop.is_set():
            for owner in others:
                store.add_owner(owner)
            for owner in others:
                store.remove_owner(owner)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    thread = threading.Thread(target=churn)
    thread.start()
    try:
        for _ in range(200):
            try:
                answers.add(store._owner_environment())
            except Exception as exc:  # what escaped into the follower's read
                errors.append(exc)
                break
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
        store.close()
    assert errors == []
    assert answers == {"staging"}  # every owner serves staging, whatever the churn
    # Owners that went away are forgotten; the others still answer.
    del kept
    store2 = RedisFlagStore("redis://127.0.0.1:1/0?cache=off")
    try:
        a, b = Owner("prod"), Owner("prod")
        store2.add_owner(a)
        store2.add_owner(b)
        store2.add_owner(a)  # twice: once
        assert store2._owner_environment() == "prod"
        store2.remove_owner(a)
        assert store2._owner_environment() == "prod"
        del b
        assert store2._owner_environment() is None
    finally:
        store2.close()
