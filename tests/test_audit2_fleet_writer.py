"""Fleet and file stores, second audit: the writer record read back from a store comes
from outside the process (anyone who can write the Redis hash or the file's sidecar).
It reaches audit records, listeners, terminals and ``cfgcore flags stale``, so only
what cfgcore writes, with the types it writes, is kept; a damaged sidecar version is
treated as a hand edit instead of raising."""

from __future__ import annotations

import json
import math

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.runtime.flagstore import FileFlagStore, clean_writer
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag
from tests.fuzz import examples

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=300), st.binary()
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=examples(300), deadline=None)
@given(
    st.one_of(
        _values,
        st.fixed_dictionaries(
            {},
            optional={k: _values for k in ("host", "actor", "id", "pid", "time", "extra")},
        ),
    )
)
def test_clean_writer_keeps_only_cfgcore_fields_with_their_types(raw):
    out = clean_writer(raw)
    assert set(out) <= {"host", "actor", "id", "pid", "time"}
    for key in ("host", "actor", "id"):
        if key in out:
            assert isinstance(out[key], str) and len(out[key]) <= 256
    if "pid" in out:
        assert type(out["pid"]) is int and out["pid"] >= 0
    if "time" in out:
        assert type(out["time"]) is float and math.isfinite(out["time"]) and out["time"] >= 0
    json.dumps(out)  # plain data: fit for an audit record


def test_what_cfgcore_writes_is_kept_as_is():
    from cfgcore.runtime.flagstore import writer_identity

    w = {**writer_identity("alice"), "id": "0123abcd"}
    assert clean_writer(w) == w


@pytest.mark.parametrize("when", [float("inf"), float("nan"), 1e300, -1e300, "yesterday"])
def test_a_hostile_writer_time_does_not_break_flags_stale(redis_server, capsys, when):
    """A writer record with an impossible time made ``cfgcore flags stale --store``
    fail with an internal OverflowError (or "Invalid value NaN")."""
    from cfgcore.cli import main

    url = redis_server.url + "?namespace=wt&cache=off"
    with RedisFlagStore(url) as writer:
        writer.update(lambda s: msgspec.structs.replace(s, flags={"a": Flag(default="on")}))
    r = redis_server.client()
    junk = {"actor": "mallory" * 1000, "host": "h", "pid": -3, "time": when, "x": {"y": [1]}}
    r.hset("{wt}:flags", "writer", msgspec.msgpack.encode(junk))
    with RedisFlagStore(url) as store:
        doc = store.read()
    assert "time" not in doc.writer and "x" not in doc.writer and "pid" not in doc.writer
    assert doc.writer["actor"] == ("mallory" * 1000)[:256]
    capsys.readouterr()
    assert main(["flags", "stale", "--store", url]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    "meta",
    [
        '{"version": "abc"}',
        '{"version": 1e400}',
        '{"version": [1]}',
        '{"version": -4}',
        '{"version": 3, "writer": ["not", "a", "map"]}',
        '{"version": 3, "writer": {"time": 1e400, "actor": 7}}',
    ],
)
def test_a_damaged_sidecar_reads_as_a_hand_edit(tmp_path, meta):
    """The sidecar's checksum matches the file, its version or writer is damaged: the
    store reads (as for a hand edit) instead of raising ValueError or OverflowError,
    and the writer it reports is plain data."""
    from cfgcore.runtime.flagstore import checksum

    path = tmp_path / "flags.json"
    data = json.dumps({"flags": {"a": {"default": "on"}}}).encode()
    path.write_bytes(data)
    fields = meta[1:-1]  # the damaged fields, as JSON text (1e400 reads as infinity)
    (tmp_path / ".flags.json.version").write_text(f'{{"checksum": "{checksum(data)}", {fields}}}')
    doc = FileFlagStore(str(path)).read()
    assert set(doc.snapshot.flags) == {"a"}
    assert type(doc.version) is int and doc.version >= 0
    assert set(doc.writer) <= {"host", "actor", "id", "pid", "time"}
    assert all(isinstance(v, (str, int, float)) for v in doc.writer.values())
    json.dumps(dict(doc.writer), allow_nan=False)
