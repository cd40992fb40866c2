"""Eighth round: the exposure dedup was bounded by user count only, so long user ids
(8 KB each, say) made the million-user bound gigabytes. Each shard is now also
bounded by the bytes of its ids, counted on the writer thread (the request path,
compiled or reference, is unchanged), and cleared past its share like the count bound
clears it. Real loggers and managers, both evaluators."""

from __future__ import annotations

import sys

from cfgcore._layout import DEDUP_SHARDS
from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.experiments.exposures import ExposureLogger, MemorySink
from tests.test_experiments import NOW, Clock, seed_test

TEST = "recommendation_algorithm_v2"
BUDGET = 256 << 10  # 256 KiB of ids per test, 4 KiB per shard


def _held(shards) -> int:
    return sum(sys.getsizeof(u) for s in shards for u in s)


def test_the_logger_bounds_its_ids_by_bytes():
    sink = MemorySink()
    logger = ExposureLogger([sink], dedup_bytes=BUDGET, batch_size=16)
    try:
        peak = 0
        for i in range(3000):
            logger.log("t", "a", f"{i:08d}" + "x" * 2000)
            if i % 100 == 99:
                assert logger.flush(10)
                peak = max(peak, _held(logger.seen_shards("t")))
        # every shard within its share, plus at most one id over it
        assert peak <= BUDGET + DEDUP_SHARDS * 2100
        assert len(sink.exposures) == 3000  # each user once (none seen twice)
        # Short ids stay deduplicated under the same budget.
        before = len(sink.exposures)
        for _ in range(3):
            for i in range(500):
                logger.log("t", "a", f"u{i}")
        assert logger.flush(10)
        assert len(sink.exposures) - before == 500
    finally:
        logger.close()


def test_the_request_path_s_long_ids_are_bounded_too(tmp_path, impl):
    """The compiled SeedAPI adds the ids to the shards itself: the writer thread
    counts them as their exposures reach it."""
    m = DynamicConfigurationManager(
        state_dir=tmp_path, engine=engine_class(impl)(), clock=Clock(NOW), record_usage=False
    )
    try:
        assert m.create_ab_test(seed_test())
        # A small budget for the test (the default, 128 MiB, would take 16k such ids).
        m.exposures._shard_bytes = BUDGET // DEDUP_SHARDS
        peak = 0
        for i in range(3000):
            ctx = {"user_id": f"{i:08d}" + "y" * 2000}
            assert m.get_ab_test_variant(TEST, ctx) is not None
            if i % 100 == 99:
                assert m.exposures.flush(10)
                peak = max(peak, _held(m.exposures.seen_shards(TEST)))
        assert peak <= BUDGET + DEDUP_SHARDS * 2100
        assert m.exposures.flush(10) and m.exposures.written == 3000
        # Short ids stay deduplicated under the same budget.
        assert m.create_ab_test(seed_test("short"))
        for _ in range(3):
            for i in range(500):
                assert m.get_ab_test_variant("short", {"user_id": f"u{i}"}) is not None
        assert m.exposures.flush(10) and m.exposures.written == 3500
    finally:
        m.close()
