"""The audit log's memory copy (``AuditLog.entries()``) is bounded by size as well as by
count: ``keep_bytes`` / ``CFGCORE_AUDIT_KEEP_BYTES`` (default 8 MiB of JSON), the oldest
dropped first, the newest always kept. The file and its hash chain are not affected.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.runtime import audit as audit_mod
from cfgcore.runtime.audit import AuditLog, log_files, verify
from tests.fuzz import examples

CHAIN = ("seq", "prev", "hash", "alg", "kid")


def weight(entry: dict) -> int:
    """What an entry weighs for the budget, computed independently of cfgcore: the
    length of its JSON text without the chain fields (ASCII payloads here, so the
    compact ``json.dumps`` text is the encoder's)."""
    body = {k: v for k, v in entry.items() if k not in CHAIN}
    return len(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())


def change(n: int, i: int = 0) -> dict:
    return {"kind": "update", "source": "test", "path": f"subtree.{i}", "new": "x" * n}


def test_entries_stay_within_the_budget_with_large_entries():
    budget = 64 * 1024
    log = AuditLog(keep=1000, keep_bytes=budget, keys=())
    written = [log.append(change(10_000, i)) for i in range(50)]
    kept = log.entries()
    assert sum(map(weight, kept)) <= budget
    assert 1 < len(kept) < 50
    # the newest ones, in order, as appended
    assert [e["hash"] for e in kept] == [e["hash"] for e in written[-len(kept) :]]
    # and no more could have been kept
    assert sum(map(weight, written[-len(kept) - 1 :])) > budget


def test_the_newest_entry_is_kept_even_alone_over_the_budget():
    log = AuditLog(keep_bytes=1000, keys=())
    small = log.append(change(10))
    big = log.append(change(5000))
    assert weight(big) > 1000
    assert log.entries() == [big]  # the older entry went, the newest stays
    after = log.append(change(10, 1))
    assert log.entries() == [after]  # the big one does not fit beside it
    assert small["seq"] == 1 and after["seq"] == 3  # the chain is unaffected

    nothing = AuditLog(keep_bytes=0, keys=())
    last = [nothing.append(change(1, i)) for i in range(3)][-1]
    assert nothing.entries() == [last]


def test_entries_weighing_exactly_the_budget_are_all_kept():
    probe = AuditLog(keys=())
    budget = sum(weight(probe.append(change(500, i))) for i in range(3))
    log = AuditLog(keep_bytes=budget, keys=())
    written = [log.append(change(500, i)) for i in range(3)]
    assert log.entries() == written
    log.append(change(0, 3))
    assert log.entries() == [*written[1:], log.entries()[-1]]


def test_the_count_limit_still_applies():
    log = AuditLog(keep=3, keep_bytes=10**9, keys=())
    written = [log.append(change(10, i)) for i in range(10)]
    assert log.entries() == written[-3:]
    none = AuditLog(keep=0, keys=())
    none.append(change(10))
    assert none.entries() == []


def test_a_batch_is_bounded_as_its_entries_would_be_one_by_one():
    log = AuditLog(keep_bytes=3000, keys=())
    out = log.append_all([change(1000, i) for i in range(5)])
    assert log.entries() == out[-2:]  # two weigh ~2,080 bytes, three ~3,120


def test_the_environment_sets_the_budget_and_an_argument_wins(monkeypatch):
    monkeypatch.setenv("CFGCORE_AUDIT_KEEP_BYTES", "4096")
    log = AuditLog(keys=())
    assert log.keep_bytes == 4096
    written = [log.append(change(1500, i)) for i in range(4)]
    assert log.entries() == written[-2:]
    assert AuditLog(keep_bytes=100, keys=()).keep_bytes == 100
    monkeypatch.delenv("CFGCORE_AUDIT_KEEP_BYTES")
    assert AuditLog(keys=()).keep_bytes == audit_mod.DEFAULT_KEEP_BYTES == 8 * 1024 * 1024


@pytest.mark.parametrize("raw", ["8MB", "1.5", "-1", "lots"])
def test_an_unusable_budget_in_the_environment_is_named_and_the_default_used(
    monkeypatch, caplog, raw
):
    # As the module's other settings: a deployment typo is said, never stops the log.
    monkeypatch.setenv("CFGCORE_AUDIT_KEEP_BYTES", raw)
    with caplog.at_level("WARNING", logger="cfgcore"):
        log = AuditLog(keys=())
    assert log.keep_bytes == audit_mod.DEFAULT_KEEP_BYTES
    assert any(
        "CFGCORE_AUDIT_KEEP_BYTES" in r.getMessage() and repr(raw) in r.getMessage()
        for r in caplog.records
    )


def test_an_empty_environment_value_is_the_default(monkeypatch, caplog):
    monkeypatch.setenv("CFGCORE_AUDIT_KEEP_BYTES", "")
    with caplog.at_level("WARNING", logger="cfgcore"):
        assert AuditLog(keys=()).keep_bytes == audit_mod.DEFAULT_KEEP_BYTES
    assert not caplog.records


def test_a_negative_argument_is_refused():
    with pytest.raises(ValueError, match="keep_bytes"):
        AuditLog(keep_bytes=-1, keys=())


def test_every_entry_still_reaches_the_file_and_the_chain_verifies(tmp_path):
    path = tmp_path / "audit.jsonl"
    # A small file size too, so rotations run while the memory copy is evicting.
    log = AuditLog(path, keep_bytes=20_000, max_bytes=200_000, backups=20, keys=())
    written = [log.append(change(8_000 + i, i)) for i in range(60)]
    assert len(log.entries()) == 2
    assert len(log_files(path)) > 1  # rotated
    on_disk = [e for f in log_files(path) for e in AuditLog.read(f) if e["kind"] == "update"]
    assert [e["hash"] for e in on_disk] == [e["hash"] for e in written]
    assert [e["new"] for e in on_disk] == [e["new"] for e in written]
    result = verify(path)
    assert result.ok and result.tail, result
    # the memory copy is the file's last entries, as written
    assert [e["hash"] for e in log.entries()] == [e["hash"] for e in on_disk[-2:]]


# Payload lengths, batches of them (append_all), and the two limits.
_BATCHES = st.lists(st.lists(st.integers(0, 3000), min_size=1, max_size=4), max_size=25)


@given(batches=_BATCHES, keep=st.integers(1, 8), budget=st.integers(0, 10_000))
def test_the_kept_entries_are_the_longest_suffix_within_both_limits(batches, keep, budget):
    log = AuditLog(keep=keep, keep_bytes=budget, keys=())
    appended: list[dict] = []
    for i, batch in enumerate(batches):
        appended += log.append_all([change(n, i) for n in batch])
        kept = log.entries()
        sizes = [weight(e) for e in appended]
        n = len(kept)
        # a suffix of what was appended, never empty once something was
        assert 1 <= n <= keep
        assert [e["hash"] for e in kept] == [e["hash"] for e in appended[-n:]]
        # within the budget unless the newest alone is kept
        assert sum(sizes[-n:]) <= budget or n == 1
        # the longest such suffix: one more entry would break a limit
        if n < len(appended):
            assert n == keep or sum(sizes[-n - 1 :]) > budget


def test_entries_waiting_for_a_held_lock_are_bounded_by_size_too(tmp_path, monkeypatch):
    # The writers' lock held elsewhere: entries wait in memory for the next append, at
    # most MAX_PENDING of them and MAX_PENDING_BYTES together; the oldest go first (the
    # log then records how many, which verify reports), never the newest.
    monkeypatch.setattr(audit_mod, "MAX_PENDING_BYTES", 10_000)
    path = tmp_path / "flags.audit.jsonl"
    log = AuditLog(path, lock_timeout=0.01)
    log.append({"kind": "update", "path": "first", "new": 1})
    held = os.open(f"{path}.lock", os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)  # another open file description: the log's waits
    try:
        for i in range(10):
            log.append({"kind": "update", "path": f"k{i}", "new": "x" * 3000})
        assert log.pending() == 3  # three of ~3,050 bytes fit in 10,000; four do not
        log.append({"kind": "update", "path": "big", "new": "y" * 20_000})
        assert log.pending() == 1  # the newest stays, alone over the budget
    finally:
        fcntl.flock(held, fcntl.LOCK_UN)
        os.close(held)
    assert log.flush() and log.pending() == 0
    written = AuditLog.read(path)
    note = written[1]
    assert [e["path"] for e in written] == ["first", note["path"], "big"]
    assert note["kind"] == "tamper" and note["error"].startswith("10 entries were never written")
    assert "MiB" in note["error"]
    assert not verify(path).ok  # the dropped entries are reported, not hidden


@settings(max_examples=examples(40))
@given(batches=_BATCHES, count=st.integers(1, 6), budget=st.integers(0, 10_000))
def test_entries_waiting_for_the_lock_are_the_longest_suffix_within_both_limits(
    batches, count, budget
):
    # The same property for the entries waiting for a held writers' lock (MAX_PENDING,
    # MAX_PENDING_BYTES); once the lock is free the file holds what was written before
    # it was held, a note of how many were dropped, then exactly the waiting suffix.
    with (
        tempfile.TemporaryDirectory() as d,
        mock.patch.object(audit_mod, "MAX_PENDING", count),
        mock.patch.object(audit_mod, "MAX_PENDING_BYTES", budget),
    ):
        path = os.path.join(d, "a.jsonl")
        log = AuditLog(path, lock_timeout=0.001, keys=())
        log.append(change(1, -1))
        held = os.open(f"{path}.lock", os.O_RDONLY)
        fcntl.flock(held, fcntl.LOCK_EX)
        appended: list[dict] = []
        n = 0
        try:
            for i, batch in enumerate(batches):
                appended += log.append_all([change(size, i) for size in batch])
                n = log.pending()
                sizes = [weight(e) for e in appended]
                assert 1 <= n <= count
                assert sum(sizes[-n:]) <= budget or n == 1
                if n < len(appended):  # the longest: one more would break a limit
                    assert n == count or sum(sizes[-n - 1 :]) > budget
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
            os.close(held)
        assert log.flush() and log.pending() == 0
        written = AuditLog.read(path)
        dropped = len(appended) - n
        assert written[0]["path"] == "subtree.-1"
        if dropped:
            note = written[1]
            assert note["kind"] == "tamper"
            assert note["error"].startswith(f"{dropped} entries were never written")
        rest = written[2:] if dropped else written[1:]
        assert [e["new"] for e in rest] == [e["new"] for e in appended[len(appended) - n :]]
        assert [e["path"] for e in rest] == [e["path"] for e in appended[len(appended) - n :]]
