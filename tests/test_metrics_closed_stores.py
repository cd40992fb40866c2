"""A closed flag store leaves no metric series behind.

A process that opens and closes stores (tests, reconfiguration, one store per tenant)
must not grow its scrape output with every store it ever opened: a closed store's
series go, while a store still open under the same labels keeps its own. Real stores
(a real Redis server, real files), read through ``cfgcore.metrics.snapshot()`` and the
Prometheus text exposition."""

from __future__ import annotations

import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cfgcore.metrics
from cfgcore.errors import ConfigError
from cfgcore.runtime.flags import LiveFlags
from cfgcore.runtime.flagstore import FileFlagStore, MemoryFlagStore
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot
from tests.fuzz import examples
from tests.waiting import wait_for


def _series_of(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample (family, labels) whose ``store`` label is ``url``."""
    out = {}
    for name, family in cfgcore.metrics.snapshot()["metrics"].items():
        for sample in family["samples"]:
            if sample["labels"].get("store") == url:
                key = (name, tuple(sorted(sample["labels"].items())))
                out[key] = sample.get("value", sample.get("count"))
    return out


def _documents(url: str, result: str) -> float:
    return sum(
        v for (name, labels), v in _series_of(url).items()
        if name == "cfgcore_flag_documents_total" and ("result", result) in labels
    )  # fmt: skip


def _good(live: LiveFlags, n: int) -> None:
    live.update(lambda s: Snapshot(flags={"f": Flag(variants={"v": n}, default="v")}), source="t")


def _bad(live: LiveFlags) -> None:
    # a default naming no variant does not compile: refused, counted as rejected
    broken = Snapshot(flags={"f": Flag(variants={"v": 1}, default="x")})
    with pytest.raises(ConfigError):
        live.update(lambda s: broken, source="t")


def test_closed_redis_and_file_stores_leave_no_series(redis_server, tmp_path):
    urls = []
    for i in range(3):
        url = redis_server.url + f"?namespace=tenant{i}&cache={tmp_path / f'c{i}.msgpack'}"
        (tmp_path / f"flags{i}.json").write_text('{"version": 1, "flags": {}}')
        for store in (RedisFlagStore(url), FileFlagStore(tmp_path / f"flags{i}.json")):
            live = LiveFlags(store)
            _good(live, i)
            _bad(live)
            assert _documents(store.url, "ok") >= 1
            assert _documents(store.url, "rejected") == 1
            assert ("cfgcore_flags_version", (("store", store.url),)) in _series_of(store.url)
            live.close()
            urls.append(store.url)
            # gone as soon as it is closed, though this test still holds the object
            assert _series_of(store.url) == {}
    text = _exposition()
    if text is not None:
        assert not any(url in text for url in urls)


def test_a_store_still_open_under_the_same_labels_keeps_its_series(redis_server, tmp_path):
    url = redis_server.url + f"?namespace=shared&cache={tmp_path / 'c.msgpack'}"
    first, second = LiveFlags(RedisFlagStore(url)), LiveFlags(RedisFlagStore(url))
    try:
        assert first.store.url == second.store.url
        url = first.store.url  # (as labels show it: the cache path left out)
        _good(first, 1)
        _bad(second)
        _good(second, 2)
        # The first set's follower takes the second's document too (an "ok" of its
        # own, counted when it arrives): the counts are compared once it has.
        assert wait_for(lambda: first.document.version == second.document.version)
        ok_before = _documents(url, "ok")
        first.close()
        # the closed set's counts stay in the series while the other is open: the counter
        # does not go down (Prometheus would read a reset and count the rest again)
        assert _documents(url, "rejected") == 1
        assert _documents(url, "ok") == ok_before
        series = _series_of(url)
        assert series[("cfgcore_flags_version", (("store", url),))] == second.document.version
        _bad(second)
        assert _documents(url, "rejected") == 2
    finally:
        first.close()
        second.close()
    assert _series_of(url) == {}


@settings(max_examples=examples(40), deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["open", "close", "good", "bad"]), st.integers(0, 2)),
        max_size=25,
    )
)
def test_series_follow_the_open_sets_whatever_the_order(steps):
    """Three file paths (so three store URLs, each possibly opened twice): after every
    step, a URL with no open set has no series at all, and one with an open set counts
    every document its sets took or refused, closed sets' too (well within ``retain``):
    the counter never goes down, whatever opens and closes in between."""
    with tempfile.TemporaryDirectory() as d:
        paths = [f"{d}/flags{i}.json" for i in range(3)]
        for path in paths:
            with open(path, "w") as f:
                f.write('{"version": 1, "flags": {}}')
        open_sets: list[list[LiveFlags]] = [[], [], []]
        counts: list[dict[str, int]] = [{"ok": 0, "rejected": 0} for _ in paths]
        seen = [{"ok": 0.0, "rejected": 0.0} for _ in paths]  # last value scraped per URL
        try:
            for n, (action, i) in enumerate(steps):
                if action == "open" and len(open_sets[i]) < 2:
                    live = LiveFlags(FileFlagStore(paths[i]))
                    open_sets[i].append(live)
                    counts[i]["ok"] += 1  # its first document
                elif action == "close" and open_sets[i]:
                    open_sets[i].pop(0).close()
                elif action == "good" and open_sets[i]:
                    _good(open_sets[i][-1], n)  # (a new document each time)
                    counts[i]["ok"] += 1
                elif action == "bad" and open_sets[i]:
                    _bad(open_sets[i][-1])
                    counts[i]["rejected"] += 1
                for j, path in enumerate(paths):
                    url = "file://" + path
                    if not open_sets[j]:
                        assert _series_of(url) == {}
                        continue
                    for result in ("ok", "rejected"):
                        got = _documents(url, result)
                        assert got == counts[j][result]
                        assert got >= seen[j][result]
                        seen[j][result] = got
        finally:
            for sets in open_sets:
                for live in sets:
                    live.close()


def test_memory_stores_opened_and_closed_in_a_loop_do_not_grow_the_scrape():
    before = len(_all_samples())
    for _ in range(50):
        live = LiveFlags(MemoryFlagStore(Snapshot()))
        _good(live, 1)
        live.close()
    assert len(_all_samples()) == before


def _all_samples() -> list[tuple[str, tuple[tuple[str, str], ...]]]:
    return [
        (name, tuple(sorted(s["labels"].items())))
        for name, family in cfgcore.metrics.snapshot()["metrics"].items()
        for s in family["samples"]
        if "store" in s["labels"]
    ]


def _exposition() -> str | None:
    try:
        from prometheus_client import CollectorRegistry
    except ImportError:
        return None
    from cfgcore.observability.prometheus import exposition

    return exposition(CollectorRegistry()).decode()
