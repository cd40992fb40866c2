"""A published configuration keeps its dates and times on fleet followers (ninth round).

``cfgcore publish`` flattened the configuration to text (``msgspec.to_builtins``), so a
TOML ``d = 2024-05-01`` or a YAML ``ts: 2024-05-01T10:00:00Z`` reached every follower
as a string: the publisher's ``get("when.d")`` returned a date, the follower's
"2024-05-01". The follower's copy in its state directory (``ENV.json``) was plain JSON,
which has no dates either. Now both keep the types; a document (or a copy) of an earlier
release keeps its text. Real redis-server, real CLI, real follower, real files.
"""

from __future__ import annotations

import datetime as dt
import json
import os

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.config.files import TYPED_JSON, parse_text, typed_json
from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.published import decode_temporal, encode_temporal
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import PublishedConfig, RedisConfigStore
from tests.fuzz import examples
from tests.waiting import wait_for

BASE_TOML = """\
[app]
name = "svc"

[when]
d = 2024-05-01
local_time = 07:30:00.250
local_dt = 2024-05-01T10:00:00
offset_dt = 2024-05-01T10:00:00+02:00
zulu_dt = 2024-05-01T10:00:00Z
text = "2024-05-01"
"""

DEV_YAML = """\
when:
  ts: 2024-05-01T10:00:00Z
  naive: 2024-05-01 10:00:00
  west: 2024-05-01T10:00:00-05:30
  day: 2024-12-31
  list: [2024-01-02, "2024-01-03", 5]
"""

KEYS = [
    "when.d", "when.local_time", "when.local_dt", "when.offset_dt", "when.zulu_dt",
    "when.text", "when.ts", "when.naive", "when.west", "when.day", "when.list",
]  # fmt: skip


def _same(a, b):
    """Equal values of the same type; for datetimes and times the same offset too (two
    aware datetimes of one instant compare equal whatever their offsets)."""
    assert type(a) is type(b), (a, b)
    assert a == b
    if isinstance(a, dt.datetime | dt.time):
        assert a.utcoffset() == b.utcoffset(), (a, b)
    if isinstance(a, list):
        for x, y in zip(a, b, strict=True):
            _same(x, y)


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.toml").write_text(BASE_TOML)
    (d / "development.yaml").write_text(DEV_YAML)
    return d


def _publish(url, config_dir, capsys):
    code = main(["publish", "--store", url, "--config-dir", str(config_dir), "-e", "development"])
    assert code == 0, capsys.readouterr().err


def _leader(config_dir):
    m = ConfigurationManager(str(config_dir), environment="development", environ={})
    m.load_environment_config()
    return m


def _follower(url):
    m = ConfigurationManager(config_source=url, environment="development", environ={})
    m.load_environment_config()
    return m


def test_a_follower_serves_the_types_and_values_the_publisher_serves(
    redis_server, config_dir, capsys
):
    url = redis_server.url + "?namespace=fix9dates&poll=0.2"
    _publish(url, config_dir, capsys)
    leader, follower = _leader(config_dir), _follower(url)
    try:
        assert isinstance(leader.get("when.d"), dt.date)  # what the files hold
        for key in KEYS:
            _same(leader.get(key), follower.get(key))
        assert follower.get("when.text") == "2024-05-01"  # quoted text stays text
        # the copy in the state directory keeps them too
        copy = follower._published.path("development")
        with open(copy, "rb") as f:
            raw = f.read()
        tree = parse_text(raw.decode(), "json", copy)
        assert tree["when"]["local_time"] == dt.time(7, 30, 0, 250000)
    finally:
        follower.close()
    # Restarted while Redis is down, it serves its copy: the same types.
    redis_server.stop()
    again = ConfigurationManager(
        config_source=url + "&socket_connect_timeout=0.5", environment="development", environ={}
    )
    try:
        # (another URL is another directory: serve this follower's copy from it)
        os.makedirs(again._published.dir, exist_ok=True)
        with open(again._published.path("development"), "wb") as f:
            f.write(raw)
        again.load_environment_config()
        for key in KEYS:
            _same(leader.get(key), again.get(key))
    finally:
        again.close()
        leader.close()


def test_a_new_published_version_goes_live_with_its_types(redis_server, config_dir, capsys):
    url = redis_server.url + "?namespace=fix9hot&poll=0.2"
    _publish(url, config_dir, capsys)
    follower = _follower(url)
    try:
        (config_dir / "development.yaml").write_text(DEV_YAML.replace("2024-12-31", "2025-01-15"))
        _publish(url, config_dir, capsys)
        assert wait_for(lambda: follower.get("when.day") == dt.date(2025, 1, 15), timeout=30)
        _same(follower.get("when.west"), dt.datetime.fromisoformat("2024-05-01T10:00:00-05:30"))
    finally:
        follower.close()


def _store_tree(url, tree):
    with RedisConfigStore(url, "development") as store:
        store.update(lambda _: PublishedConfig(environment="development", config=tree), force=True)


def test_a_document_of_the_previous_release_keeps_its_text(redis_server, tmp_path, monkeypatch):
    # What an earlier release published: dates already text. Served as text, as before.
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=fix9old&poll=0.2"
    tree = {"app": {"name": "svc"}, "when": {"d": "2024-05-01", "ts": "2024-05-01T10:00:00Z"}}
    _store_tree(url, tree)
    follower = _follower(url)
    try:
        assert follower.get("when.d") == "2024-05-01"
        assert follower.get("when.ts") == "2024-05-01T10:00:00Z"
        # and the copy it writes for such a tree is the plain JSON it always was
        with open(follower._published.path("development"), "rb") as f:
            assert json.loads(f.read()) == tree
    finally:
        follower.close()


def test_a_copy_written_by_the_previous_release_is_read_as_before(tmp_path):
    # plain JSON (dates as text), even one whose keys look like a typed copy's
    for tree in (
        {"when": {"d": "2024-05-01"}},
        {TYPED_JSON: 1, "other": {"d": "x"}},
        {TYPED_JSON: 2, "tree": {"d": "x"}},
    ):
        assert parse_text(json.dumps(tree), "json", "development.json") == tree


def test_a_date_value_the_follower_cannot_read_is_refused_naming_its_key(
    redis_server, tmp_path, monkeypatch
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=fix9bad&poll=0.2"
    good = {"app": {"name": "svc"}, "when": {"d": msgspec.msgpack.Ext(1, b"2024-05-01")}}
    bad = {"app": {"name": "svc"}, "when": {"d": msgspec.msgpack.Ext(9, b"2024-05-02")}}
    _store_tree(url, bad)
    with pytest.raises(ConfigError) as info:  # nothing followed yet: nothing to serve
        _follower(url)
    assert "when.d" in str(info.value) and "extension code 9" in str(info.value)
    _store_tree(url, good)
    follower = _follower(url)
    try:
        assert follower.get("when.d") == dt.date(2024, 5, 1)
        _store_tree(url, {"app": {"name": "svc"}, "when": {"d": msgspec.msgpack.Ext(1, b"May")}})
        errors = lambda: [e for e in follower.audit.entries() if e.get("kind") == "error"]  # noqa: E731
        assert wait_for(lambda: errors(), timeout=30)
        assert "when.d" in json.dumps(errors()[-1])
        assert follower.get("when.d") == dt.date(2024, 5, 1)  # the last good one serves
        _store_tree(url, {"app": {"name": "svc"}, "when": {"d": msgspec.msgpack.Ext(3, b"09:00")}})
        assert wait_for(lambda: follower.get("when.d") == dt.time(9, 0), timeout=30)
    finally:
        follower.close()


# ---------------------------------------------------------------- open-ended trees

_offsets = st.one_of(
    st.none(),
    st.integers(-23 * 60, 23 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m))),
)
_temporal = st.one_of(
    st.dates(),
    st.times(),
    st.datetimes(timezones=_offsets),
)
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=8), _temporal
)
_keys = st.one_of(st.text(max_size=6), st.just(TYPED_JSON), st.just("tree"))
_leaves = st.one_of(_leaves, st.just(1), st.just(["date", "2024-05-01"]))
_trees = st.dictionaries(
    _keys,
    st.recursive(
        _leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
        max_leaves=12,
    ),
    max_size=4,
)


def _deep_same(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _deep_same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _deep_same(x, y)
    else:
        _same(a, b)


@pytest.mark.parametrize(
    "tree",
    [
        {TYPED_JSON: 1, "tree": {"a": "b"}},  # a tree that looks like a typed copy
        {"a": {TYPED_JSON: ["date", "2024-05-01"]}},  # a mapping that looks like a date
        {"a": [{TYPED_JSON: ["mapping", {}]}], "d": dt.date(2024, 5, 1)},
    ],
)
def test_a_tree_that_looks_like_the_encoding_is_kept_as_it_is(tree):
    back = parse_text(typed_json(tree).decode(), "json", "development.json")
    _deep_same(tree, back)


@settings(max_examples=examples(150), deadline=None)
@given(_trees)
def test_any_tree_survives_the_wire_and_the_copy(tree):
    # publisher -> Redis document -> follower -> its copy on disk -> the build
    wire = msgspec.msgpack.encode(
        PublishedConfig(environment="development", config=encode_temporal(tree))
    )
    received = msgspec.msgpack.decode(wire, type=PublishedConfig).config
    back = decode_temporal(received, "redis://x")
    _deep_same(tree, back)
    _deep_same(tree, parse_text(typed_json(back).decode(), "json", "development.json"))


@settings(max_examples=examples(200), deadline=None)
@given(st.integers(-128, 127), st.binary(max_size=40) | st.sampled_from([b"2024-05-01", b"09:00"]))
def test_any_extension_value_is_a_date_or_time_or_refused_naming_its_key(code, payload):
    tree = {"a": [{"b": msgspec.msgpack.Ext(code, payload)}]}
    try:
        value = decode_temporal(tree, "redis://x")["a"][0]["b"]
    except ConfigError as exc:
        assert "a.0.b" in str(exc) and "redis://x" in str(exc)
    else:
        assert type(value) in (dt.date, dt.datetime, dt.time)


def test_a_configuration_written_through_the_store_api_keeps_its_types(
    redis_server, tmp_path, monkeypatch
):
    # Not only `cfgcore publish`: code writing a PublishedConfig with date objects
    # through RedisConfigStore.update reaches followers with the same types.
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    url = redis_server.url + "?namespace=fix9api&poll=0.2"
    when = {
        "d": dt.date(2024, 5, 1),
        "ts": dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "t": dt.time(12, 30),
    }
    config = {"app": {"name": "svc"}, "when": when}
    with RedisConfigStore(url, "development") as store:
        store.update(lambda _: PublishedConfig(environment="development", config=config))
    follower = _follower(url)
    try:
        for key, value in when.items():
            _same(follower.get(f"when.{key}"), value)
    finally:
        follower.close()
