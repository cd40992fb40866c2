"""Reading a log while its writer rotates it, third audit. ``read_log`` (what
``cfgcore experiment report`` and ``MetricsStore.load`` read the logs with) listed the
rotated files by name first and opened them one after the other: a rotation in
between shifted every name by one, so the reader skipped a whole rotated file (up to
50 MB of events, silently) or read one twice. It now follows the files as the
guardrails' tail does. Real rotating logs (JsonLinesSink), rotated between reads."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.experiments.exposures import (
    ExposureRecord,
    JsonLinesSink,
    SkippedLines,
    read_log,
)
from tests.fuzz import examples


def _record(i: int) -> dict:
    return {"test": "t", "variant": "v", "user": f"u{i}", "ts": float(i)}


@settings(max_examples=examples(50), deadline=None)
@given(
    before=st.integers(1, 60),
    pulls=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12)), max_size=12),
)
def test_a_log_rotated_while_it_is_read_is_read_whole_once_in_order(
    tmp_path_factory, before, pulls
):
    """``before`` records written (several rotated files), then the reader takes a few
    records at a time while the writer appends more (rotating), as a report of a live
    service's logs does: every record written before the read started comes once, in
    order, followed by some of the later ones, in order."""
    path = tmp_path_factory.mktemp("log") / "x.jsonl"
    sink = JsonLinesSink(path, max_bytes=250, backups=1000)
    written = 0
    for i in range(before):
        sink.write([_record(i)])
        written += 1
    skipped = SkippedLines()
    reader = read_log(path, ExposureRecord, skipped)
    got: list[int] = []
    for take, add in pulls:
        for _ in range(take):
            r = next(reader, None)
            if r is None:
                break
            got.append(int(r.user[1:]))
        for _ in range(add):
            sink.write([_record(written)])
            written += 1
    got.extend(int(r.user[1:]) for r in reader)
    assert got == list(range(len(got)))  # in order, none skipped, none twice
    assert len(got) >= before and skipped.count == 0


def test_a_last_line_cut_short_is_counted(tmp_path):
    path = tmp_path / "x.jsonl"
    sink = JsonLinesSink(path, max_bytes=250, backups=10)
    for i in range(10):
        sink.write([_record(i)])
    with open(path, "ab") as fh:
        fh.write(b'{"test": "t", "vari')
    skipped = SkippedLines()
    got = [r.user for r in read_log(path, ExposureRecord, skipped)]
    assert got == [f"u{i}" for i in range(10)]
    assert skipped.count == 1 and "cut short" in skipped.first[0]
