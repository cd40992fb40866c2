"""Engine.add_swap_listener: the hook adapters (the OpenFeature provider) use to
announce snapshot swaps."""

from __future__ import annotations

import logging

import pytest

from cfgcore.errors import SnapshotError

A = {"flags": {"f": {"default": "on"}}}
B = {"flags": {"f": {"default": "off"}}}


def test_listener_sees_old_and_new_after_the_swap(make):
    engine = make(A)
    calls = []

    def listener(old, new):
        # Called after the swap: the engine already serves the new snapshot.
        calls.append((old.version, new.version, engine.is_enabled("f")))

    remove = engine.add_swap_listener(listener)
    first = engine.version
    engine.swap(B)
    assert calls == [(first, first + 1, False)]
    remove()
    engine.swap(A)
    assert len(calls) == 1


def test_rejected_snapshot_calls_no_listener(make):
    engine = make(A)
    calls = []
    engine.add_swap_listener(lambda old, new: calls.append(new))
    with pytest.raises(SnapshotError):
        engine.swap({"flags": {"f": {"default": "nope"}}})
    assert calls == [] and engine.is_enabled("f")


def test_a_failing_listener_neither_blocks_the_swap_nor_the_others(make, caplog):
    engine = make(A)
    calls = []

    def broken(old, new):
        raise RuntimeError("listener bug")

    engine.add_swap_listener(broken)
    engine.add_swap_listener(lambda old, new: calls.append(new.version))
    with caplog.at_level(logging.ERROR, logger="cfgcore.engine"):
        engine.swap(B)
    assert not engine.is_enabled("f")
    assert calls == [engine.version]
    assert "listener bug" in caplog.text
