"""Small fixes after the fifth evaluator round: a Redis document's snapshot counts as
decoded (the compiler does not check its flags' types again), and msgspec's messages
keep an acronym's case ("JSON is malformed", not "jSON is malformed")."""

from __future__ import annotations

import msgspec

from cfgcore._msgspec_errors import msgspec_problem
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.snapshot import Flag, Snapshot, encode_snapshot, is_decoded


def test_a_redis_document_is_marked_decoded(redis_server):
    url = redis_server.url + "?namespace=decoded&cache=off"
    with RedisFlagStore(url) as store:
        store.update(lambda s: Snapshot(flags={"a": Flag(default="on")}))
        doc = store.read()
    assert is_decoded(doc.snapshot)
    assert not is_decoded(Snapshot(flags={"a": Flag(default="on")}))  # built in Python


def test_a_decoded_document_reuses_unchanged_flags_and_stays_marked():
    store = RedisFlagStore.__new__(RedisFlagStore)  # only its decoding stage
    store._decoded = ({}, None)
    one = store._decode(encode_snapshot(Snapshot(flags={"a": Flag(default="on")}), "msgpack"), "x")
    two = store._decode(
        encode_snapshot(Snapshot(flags={"a": Flag(default="on"), "b": Flag()}), "msgpack"), "x"
    )
    assert two.flags["a"] is one.flags["a"] and is_decoded(two)


def test_messages_keep_an_acronyms_case():
    try:
        msgspec.json.decode(b'{"a": \xff}')
    except msgspec.DecodeError as exc:
        assert msgspec_problem(exc, "f.json").message.startswith("JSON is malformed")
    try:
        msgspec.json.decode(b"[1]", type=dict)
    except msgspec.ValidationError as exc:
        assert msgspec_problem(exc, "f.json").message == "expected object, got array"
