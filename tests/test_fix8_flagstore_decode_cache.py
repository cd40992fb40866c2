"""A file flag store decodes each document once.

Every change reads the file under the lock before applying itself, and the file then
holds the bytes this store just wrote: decoding them again (stdlib JSON's duplicate-key
pass, msgspec, assembling 1,000 flags) cost most of a persisted ``set_feature_flag``
(issue 5's target: <= 5 ms on 1,000 flags). The store keeps the last document it
decoded or wrote, keyed by the whole content. These tests check that what it hands
back is what decoding the file gives, and that any other content is decoded.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.runtime.flagstore import FileFlagStore
from cfgcore.snapshot import decode_snapshot

_ENC = msgspec.msgpack.Encoder()


def _as_stored(snapshot):
    return _ENC.encode(snapshot)


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_a_written_document_reads_back_as_decoding_its_bytes_gives(tmp_path, fmt):
    path = tmp_path / f"flags.{fmt}"
    m = DynamicConfigurationManager(str(path), persist=True, log_exposures=False)
    try:
        now = datetime.now(timezone.utc)
        changes = [
            lambda: m.set_feature_flag("new_player", True, 37.5),
            lambda: m.set_feature_flag("new_player", False),
            lambda: m.create_ab_test(
                ABTestConfiguration(
                    "cache_test", "d", now - timedelta(days=1), now + timedelta(days=9),
                    {"control": 60, "b": 40}, {"control": {"x": 1}, "b": {"x": 2.5}},
                    ["ctr"],
                )
            ),
            lambda: m.set_feature_flag("other_flag", True, 12.345),
        ]  # fmt: skip
        store = FileFlagStore(str(path))
        for change in changes:
            assert change() is not False
            live = m._live.store.read()  # the manager's own store: the cached snapshot
            data = path.read_bytes()
            assert live.data == data
            fresh = decode_snapshot(data, fmt, file=str(path))
            assert _as_stored(live.snapshot) == _as_stored(fresh)
            # a second store of the same file decodes it itself: the same document
            assert _as_stored(store.read().snapshot) == _as_stored(fresh)
    finally:
        m.close()


def test_another_writers_bytes_are_decoded(tmp_path):
    path = tmp_path / "flags.json"
    m = DynamicConfigurationManager(str(path), persist=True, log_exposures=False)
    try:
        m.set_feature_flag("new_player", True, 50.0)
        store = m._live.store
        first = store.read()
        assert store.read().snapshot is first.snapshot  # same bytes: not decoded again
        # another process rewrites the file: one byte differs, same length
        data = path.read_bytes()
        changed = data.replace(b'"rollout": 50', b'"rollout": 51')
        assert changed != data and len(changed) == len(data)
        atomic_write(str(path), changed)
        again = store.read()
        assert again.snapshot is not first.snapshot
        assert _as_stored(again.snapshot) == _as_stored(decode_snapshot(changed, "json"))
        rules = again.snapshot.flags["new_player"].rules
        assert any(getattr(r, "rollout", None) == 51 for r in rules)
    finally:
        m.close()


def test_refused_bytes_are_never_served_from_the_cache(tmp_path):
    path = tmp_path / "flags.json"
    m = DynamicConfigurationManager(str(path), persist=True, log_exposures=False)
    try:
        m.set_feature_flag("new_player", True, 50.0)
        store = m._live.store
        good = store.read()
        atomic_write(str(path), good.data + b"{")  # damaged: not JSON
        with pytest.raises(Exception, match="JSON"):
            store.read()
        atomic_write(str(path), good.data)  # back: served again
        assert _as_stored(store.read().snapshot) == _as_stored(good.snapshot)
    finally:
        m.close()
