"""The MessagePack item bound as an operator's setting (``max_items=``), per store: a
Redis store's URL parameter or argument, a ``.msgpack`` file store's ``file://`` URL
parameter. Against a real redis-server and real files.

Before the setting, a writer (``update()``, ``set_feature_flag``, ``cfgcore publish``)
wrote a document over the bound without a word and served it itself, while every
follower refused it and the writer's own next read did too: a writer now measures the
document with the scan the readers count with and refuses it first, naming the count,
the bound and the URL parameter, nothing written. Test documents are kept small by
lowering the bound (the floor is 1,000 items); one test is near the real default (a
variant of a million small ints, which decodes in milliseconds)."""

from __future__ import annotations

import os

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cfgcore._compat as compat
import cfgcore.snapshot as snapshot_module
from cfgcore.errors import ConfigError, SnapshotError
from cfgcore.runtime.flagstore import FileFlagStore, open_store
from cfgcore.runtime.redis_store import RedisConfigStore, RedisFlagStore
from cfgcore.runtime.redis_url import parse_redis_url
from cfgcore.snapshot import (
    MAX_MSGPACK_ITEMS,
    MAX_MSGPACK_ITEMS_BOUND,
    MIN_MSGPACK_ITEMS_BOUND,
    Flag,
    Snapshot,
    decode_snapshot,
    encode_snapshot,
    msgpack_items_bound,
)
from tests.conftest import IMPLS, IN_CI, run_cli
from tests.fleet_helpers import add, quiet_fleet  # noqa: F401  (quiet_fleet: an autouse fixture)
from tests.fuzz import examples
from tests.redis_server import wait_for


def _with_list(n: int):
    """A store change making the document one flag ``a`` whose variant ``on`` is a list
    of ``n`` zeros (an item each)."""
    flag = Flag(default="on", variants={"on": [0] * n, "off": 0})
    return lambda s: msgspec.structs.replace(s, flags={"a": flag})


def _items(snapshot: Snapshot) -> int:
    """The items of ``snapshot`` as a store writes it (the readers' count)."""
    return int(compat.impl.msgpack_scan(encode_snapshot(snapshot, "msgpack"))[1])


def _list_items(n: int) -> int:
    return _items(_with_list(n)(Snapshot()))


def _follow(store):
    got: list = []
    errors: list = []
    store.read()
    store.watch(got.append, on_error=errors.append)
    return got, errors


def _stored_version(redis_server, namespace: str) -> bytes | None:
    return redis_server.client().hget(f"{{{namespace}}}:flags", "version")


# -- what a writer did with a document over the bound ------------------------------------


def test_a_write_over_the_default_bound_is_refused_before_anything_is_written(redis_server, stores):
    # Before: written (version 2), served by the writer, refused by every follower and by
    # the writer's own next read. The default bound, a document of 1,000,113 items.
    url = redis_server.url + "?namespace=over&poll=0.1&cache=off"
    writer = stores(url)
    writer.update(add("a"))
    follower = stores(url)
    got, errors = _follow(follower)
    items = _list_items(MAX_MSGPACK_ITEMS + 100)
    assert items > MAX_MSGPACK_ITEMS
    with pytest.raises(ConfigError) as refused:
        writer.update(_with_list(MAX_MSGPACK_ITEMS + 100))
    said = str(refused.value)
    assert "not written" in said
    assert f"{items:,} items" in said and f"bound of {MAX_MSGPACK_ITEMS:,}" in said
    assert "max_items=" in said and "store URL" in said
    assert _stored_version(redis_server, "over") == b"1"  # nothing written
    assert writer.read().version == 1 and set(writer.read().snapshot.flags) == {"a"}
    writer.update(add("b"))  # the store goes on taking writes
    assert wait_for(lambda: got and got[-1].version == 2)
    assert errors == [] and follower.stats["rejected"] == 0


def test_a_raised_bound_serves_what_the_default_refuses(redis_server, stores, tmp_path):
    # Near the real default: a document of just over 1,000,000 items, written and read by
    # stores whose URL raises the bound, refused (last good kept) by one at the default.
    base = redis_server.url + "?namespace=big&poll=0.1"
    raised = base + f"&max_items=1200000&cache={tmp_path / 'raised.msgpack'}"
    plain = base + f"&cache={tmp_path / 'plain.msgpack'}"
    writer = stores(raised)
    assert writer.max_items == 1_200_000
    writer.update(add("a"))
    high = stores(raised)
    low = stores(plain)
    assert low.max_items == MAX_MSGPACK_ITEMS
    high_got, high_errors = _follow(high)
    low_got, low_errors = _follow(low)
    _, new = writer.update(_with_list(MAX_MSGPACK_ITEMS + 100))
    items = _list_items(MAX_MSGPACK_ITEMS + 100)
    assert new.version == 2 and MAX_MSGPACK_ITEMS < items <= 1_200_000
    assert wait_for(lambda: high_got and high_got[-1].version == 2)
    assert len(high_got[-1].snapshot.flags["a"].variants["on"]) == MAX_MSGPACK_ITEMS + 100
    assert high_errors == []
    assert wait_for(lambda: low_errors)
    said = str(low_errors[0])
    assert f"holds {items:,} items" in said and f"bound of {MAX_MSGPACK_ITEMS:,}" in said
    assert "max_items=" in said
    assert wait_for(lambda: low.stats["rejected"] == 1)
    assert low.version == 1 and low_got == []  # its last good document serves on
    assert "max_items=" in str(low.last_error)
    with pytest.raises(ConfigError, match=f"holds {items:,} items"):
        stores(plain).read()
    # the raised store's cache file holds the large document; read back within its bound
    assert len(stores(raised).read_cache().snapshot.flags["a"].variants["on"]) > MAX_MSGPACK_ITEMS


def test_followers_with_a_lower_bound_keep_their_last_good_flags_and_health_says_why(
    redis_server, stores, tmp_path, impl
):
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    base = redis_server.url + "?namespace=mixed&poll=0.1"
    writer = stores(base + "&cache=off&max_items=5000")
    writer.update(add("a"))
    follower_url = base + f"&max_items=1000&cache={tmp_path / 'c.msgpack'}"
    manager = DynamicConfigurationManager(
        store=follower_url, state_dir=tmp_path / "state", engine=engine_class(impl)()
    )
    try:
        assert manager.is_feature_enabled("a")
        items = _list_items(2000)
        assert 1000 < items <= 5000
        _, new = writer.update(_with_list(2000))  # within the writer's own bound
        assert wait_for(lambda: manager._live.last_error is not None)
        said = str(manager._live.last_error)
        assert f"holds {items:,} items" in said and "bound of 1,000" in said
        assert manager.is_feature_enabled("a")  # the last good flags serve
        assert manager._live.store.version == 1
        report = manager.health()
        flags = next(c for c in report.readiness if c.name == "flags")
        assert flags.status == "warn" and f"{items:,} items" in flags.detail
        # a document within every bound again is taken, and the refusal is over
        writer.update(lambda s: msgspec.structs.replace(s, flags={"b": Flag(default="on")}))
        assert wait_for(lambda: manager.is_feature_enabled("b"))
        assert wait_for(lambda: manager._live.last_error is None)
    finally:
        manager.close()
    assert new.version == 2


def test_a_lowered_bound_refuses_the_write_and_keeps_the_last_good_document(redis_server, stores):
    url = redis_server.url + "?namespace=low&cache=off&max_items=1000"
    writer = stores(url)
    writer.update(add("a"))
    items = _list_items(1500)
    with pytest.raises(ConfigError) as refused:
        writer.update(_with_list(1500))
    said = str(refused.value)
    assert f"would hold {items:,} items" in said and "bound of 1,000 (max_items=1000;" in said
    assert "namespace=low" in said  # the store, named
    assert _stored_version(redis_server, "low") == b"1"
    assert set(writer.read().snapshot.flags) == {"a"}
    # the same store opened with a higher bound writes it
    _, new = stores(url.replace("max_items=1000", "max_items=2000")).update(_with_list(1500))
    assert new.version == 2


def test_a_document_past_the_ceiling_is_refused_saying_no_bound_reaches_it(tmp_path):
    path = tmp_path / "f.msgpack"
    path.write_bytes(encode_snapshot(Snapshot(), "msgpack"))
    store = FileFlagStore(path, max_items=MAX_MSGPACK_ITEMS_BOUND)
    with pytest.raises(ConfigError) as refused:
        store.update(_with_list(MAX_MSGPACK_ITEMS_BOUND))
    assert "split the flags into namespaces" in str(refused.value)
    assert path.read_bytes() == encode_snapshot(Snapshot(), "msgpack")


def test_the_argument_and_the_url_give_one_bound(redis_server):
    url = redis_server.url + "?namespace=arg&cache=off"
    with RedisFlagStore(url, max_items=3000) as store:
        assert store.max_items == 3000
    with RedisFlagStore(url + "&max_items=3000", max_items=3000) as store:
        assert store.max_items == 3000
    with pytest.raises(ConfigError, match="max_items: the URL gives 3,000 and max_items= 4,000"):
        RedisFlagStore(url + "&max_items=3000", max_items=4000)
    for bad in (999, 10_000_001, True, 2000.0, "2000"):
        with pytest.raises(ConfigError, match="max_items: expected a whole number"):
            RedisFlagStore(url, max_items=bad)  # type: ignore[arg-type]


def test_a_published_configuration_is_held_to_the_same_bound(redis_server, stores):
    from cfgcore.runtime.redis_store import PublishedConfig

    url = redis_server.url + "?namespace=pc&cache=off&max_items=1000"
    flags = stores(url)
    flags.update(add("a"))
    config = RedisConfigStore(url, "staging")
    try:
        assert config.max_items == 1000
        big = PublishedConfig(environment="staging", config={"k": list(range(1500))})
        with pytest.raises(ConfigError, match="published configuration of staging would hold"):
            config.update(lambda _: big, force=True)
        with pytest.raises(ConfigError, match=r"nothing published.*max_items="):
            config.publish_with_flags(big, flags, lambda s: s)
        small = PublishedConfig(environment="staging", config={"k": 1})
        with pytest.raises(ConfigError, match=r"the flag document would hold [\d,]+ items"):
            config.publish_with_flags(small, flags, _with_list(1500))
        assert flags.read().version == 1 and config.read().version == 0  # nothing written
        cnew, fnew = config.publish_with_flags(small, flags, add("b"))
        assert (cnew.version, set(fnew.snapshot.flags)) == (1, {"a", "b"})
    finally:
        config.close()


def test_cfgcore_publish_reads_and_writes_within_the_store_urls_bound(
    redis_server, tmp_path, capsys, operator_shell
):
    flags_file = tmp_path / "big.msgpack"
    flags_file.write_bytes(encode_snapshot(_with_list(1500)(Snapshot()), "msgpack"))
    items = _list_items(1500)
    base = redis_server.url + "?namespace=cli&cache=off"
    code, _, err = run_cli(
        capsys, "publish", "--store", base + "&max_items=1000", "-e", "development",
        "--flags", str(flags_file),
    )  # fmt: skip
    assert code == 1
    assert f"holds {items:,} items" in err and "bound of 1,000" in err, err
    assert _stored_version(redis_server, "cli") is None  # nothing written
    # a bound that holds the flags and the configuration beside them
    code, out, err = run_cli(
        capsys, "publish", "--store", base + "&max_items=20000", "-e", "development",
        "--flags", str(flags_file),
    )  # fmt: skip
    assert code == 0, err
    with RedisFlagStore(base + "&max_items=20000") as store:
        assert len(store.read().snapshot.flags["a"].variants["on"]) == 1500
    with RedisFlagStore(base + "&max_items=1000") as store:  # a follower below it
        with pytest.raises(ConfigError, match=f"holds {items:,} items"):
            store.read()


def test_a_repair_command_reaches_the_store_with_its_bound():
    # A command an operator is told to run (cfgcore publish --store URL) writes within
    # the bound the fleet reads with.
    url = "redis://h:6379/0?namespace=cmd&cache=off&max_items=4000"
    assert "max_items=4000" in parse_redis_url(url).for_command()
    assert "max_items" not in parse_redis_url("redis://h:6379/0?namespace=cmd").for_command()


# -- URL parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("1000", 1000), ("2000", 2000), ("1_000_000", 1_000_000), ("10000000", 10_000_000),
     ("0002000", 2000)],
)  # fmt: skip
def test_the_url_parameter_is_read(text, value):
    for url in (f"redis://h:6379/0?max_items={text}", f"unix:///run/r.sock?max_items={text}",
                f"redis+sentinel://s1:26379,s2:26379/main?max_items={text}"):  # fmt: skip
        assert parse_redis_url(url).options["max_items"] == value


@pytest.mark.parametrize(
    "text",
    ["", "abc", "1e6", "-5", "2000.0", " 2000", "2000 ", "+2000", "٣٠٠٠", "0x1000", "2_",
     "_2000", "2__000", "1,000,000"],
)  # fmt: skip
def test_a_url_parameter_that_is_no_whole_number_is_refused_naming_it(text):
    from urllib.parse import quote

    url = f"redis://:hunter2@h:6379/0?namespace=n&max_items={quote(text)}"
    with pytest.raises(ConfigError) as refused:
        parse_redis_url(url)
    said = str(refused.value)
    expected = "max_items: expected a whole number of MessagePack items from 1,000 to 10,000,000"
    assert expected in said
    assert repr(text) in said and "hunter2" not in said


@pytest.mark.parametrize("text", ["0", "999", "10000001", "99999999999999999999"])
def test_a_url_parameter_out_of_range_is_refused_naming_the_range(text):
    with pytest.raises(ConfigError) as refused:
        parse_redis_url(f"redis://h/0?max_items={text}")
    said = str(refused.value)
    assert "from 1,000 to 10,000,000" in said and f"got {text!r}" in said


@settings(max_examples=examples(300))
@given(st.text(max_size=30))
def test_any_url_parameter_text_is_read_or_refused_naming_it(text):
    from urllib.parse import quote

    try:
        parsed = parse_redis_url(f"redis://h/0?max_items={quote(text)}")
    except ConfigError as exc:
        assert "max_items: expected a whole number" in str(exc)
        return
    digits = text.replace("_", "")
    assert digits.isascii() and digits.isdigit()
    assert MIN_MSGPACK_ITEMS_BOUND <= parsed.options["max_items"] == int(digits)
    assert parsed.options["max_items"] <= MAX_MSGPACK_ITEMS_BOUND


@settings(max_examples=examples(300))
@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_any_integer_bound_is_taken_within_the_range_and_refused_outside_it(n):
    inside = MIN_MSGPACK_ITEMS_BOUND <= n <= MAX_MSGPACK_ITEMS_BOUND
    for given_, text in ((n, False), (str(n), True)):
        if inside:
            assert msgpack_items_bound(given_, text=text) == n
        else:
            with pytest.raises(ConfigError, match=r"max_items: expected .* got"):
                msgpack_items_bound(given_, text=text)
    if inside:  # text only where it is a URL's
        with pytest.raises(ConfigError, match=r"max_items: expected .* got '"):
            msgpack_items_bound(str(n))


# -- a .msgpack file store -----------------------------------------------------------------


def test_a_msgpack_file_store_takes_the_bound_from_its_url(tmp_path):
    path = tmp_path / "flags.msgpack"
    path.write_bytes(encode_snapshot(_with_list(1500)(Snapshot()), "msgpack"))
    items = _list_items(1500)
    raised = open_store(f"file://{path}?max_items=2000")
    assert isinstance(raised, FileFlagStore) and raised.max_items == 2000
    assert len(raised.read().snapshot.flags["a"].variants["on"]) == 1500
    lowered = open_store(f"file://{path}?max_items=1000")
    with pytest.raises(SnapshotError) as refused:
        lowered.read()
    assert f"holds {items:,} items" in str(refused.value) and str(path) in str(refused.value)
    assert open_store(str(path)).max_items == MAX_MSGPACK_ITEMS  # a path: the default


def test_a_msgpack_file_store_refuses_a_write_over_its_bound_and_leaves_the_file(tmp_path):
    path = tmp_path / "flags.msgpack"
    path.write_bytes(encode_snapshot(Snapshot(), "msgpack"))
    store = open_store(f"file://{path}?max_items=1000")
    _, first = store.update(add("a"))
    before = (path.read_bytes(), (tmp_path / ".flags.msgpack.version").read_bytes())
    items = _list_items(1500)
    with pytest.raises(ConfigError) as refused:
        store.update(_with_list(1500))
    said = str(refused.value)
    assert f"not written: the flag document would hold {items:,} items" in said
    assert "file:///PATH.msgpack?max_items=N" in said and str(path) in said
    after = (path.read_bytes(), (tmp_path / ".flags.msgpack.version").read_bytes())
    assert after == before
    assert set(store.read().snapshot.flags) == {"a"} and store.read().version == first.version
    no_leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert no_leftovers == []


def test_a_reader_of_a_msgpack_file_with_a_lower_bound_keeps_its_last_good_flags(tmp_path, impl):
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.engine import engine_class

    path = tmp_path / "flags.msgpack"
    path.write_bytes(encode_snapshot(Snapshot(), "msgpack"))
    writer = open_store(f"file://{path}?max_items=5000")
    writer.update(add("a"))
    manager = DynamicConfigurationManager(
        store=f"file://{path}?max_items=1000",
        state_dir=tmp_path / "state",
        engine=engine_class(impl)(),
    )
    try:
        assert manager.is_feature_enabled("a")
        writer.update(_with_list(2000))  # within the writer's bound, not the reader's
        items = _list_items(2000)
        assert manager._live.refresh("reload") is False
        said = str(manager._live.last_error)
        assert f"holds {items:,} items" in said and "bound of 1,000" in said
        assert manager.is_feature_enabled("a")
        flags = next(c for c in manager.health().readiness if c.name == "flags")
        assert flags.status == "warn" and f"{items:,} items" in flags.detail
        writer.update(lambda s: msgspec.structs.replace(s, flags={"b": Flag(default="on")}))
        assert manager._live.refresh("reload") is True
        assert manager.is_feature_enabled("b") and manager._live.last_error is None
    finally:
        manager.close()


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("file://{dir}/f.msgpack?max_items=abc", "max_items: expected a whole number"),
        ("file://{dir}/f.msgpack?max_items=10", "from 1,000 to 10,000,000 (the default"),
        ("file://{dir}/f.msgpack?max_itmes=2000", "unknown query parameter 'max_itmes'"),
        ("file://{dir}/f.msgpack?cache=off", "unknown query parameter 'cache'"),
        ("file://{dir}/f.yaml?max_items=2000", "max_items=2000: a bound of MessagePack"),
        ("file://{dir}/f.json?max_items=2000", "this one is json"),
    ],
)
def test_a_file_store_url_refuses_what_it_cannot_use(tmp_path, url, said):
    with pytest.raises(ConfigError) as refused:
        open_store(url.format(dir=tmp_path))
    assert said in str(refused.value), str(refused.value)


# -- the decoders: the bound as a parameter, both scans, split or whole ----------------------


def _scans():
    if "c" not in IMPLS and IN_CI:
        pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
    return [("c" if name == "c" else "py", mod) for name, mod in IMPLS.items()]


@settings(max_examples=examples(60))
@given(n=st.integers(min_value=0, max_value=3000), split=st.booleans())
def test_decoding_takes_a_document_at_its_bound_and_refuses_it_one_below(n, split):
    data = encode_snapshot(_with_list(n)(Snapshot()), "msgpack")
    for name, mod in _scans():
        with pytest.MonkeyPatch.context() as m:
            m.setattr(compat, "IMPLEMENTATION", name)
            m.setattr(compat, "impl", mod)
            m.setattr(snapshot_module, "MSGPACK_SPLIT", split)
            items = mod.msgpack_scan(data)[1]
            snap = decode_snapshot(data, "msgpack", file="d.msgpack", max_items=items)
            assert len(snap.flags["a"].variants["on"]) == n
            with pytest.raises(SnapshotError) as refused:
                decode_snapshot(data, "msgpack", file="d.msgpack", max_items=items - 1)
            assert f"holds {items:,} items" in str(refused.value)
            assert f"bound of {items - 1:,}" in str(refused.value)
            with pytest.raises(SnapshotError, match=f"holds {items:,} items"):
                snapshot_module.refuse_msgpack_duplicates(data, "d", items - 1)
            snapshot_module.refuse_msgpack_duplicates(data, "d", items)


def test_the_module_default_is_the_bound_when_none_is_given():
    data = encode_snapshot(_with_list(MAX_MSGPACK_ITEMS + 100)(Snapshot()), "msgpack")
    with pytest.raises(SnapshotError, match=f"bound of {MAX_MSGPACK_ITEMS:,} \\(the default\\)"):
        decode_snapshot(data, "msgpack")
    raised = decode_snapshot(data, "msgpack", max_items=MAX_MSGPACK_ITEMS + 200)
    assert len(raised.flags["a"].variants["on"]) == MAX_MSGPACK_ITEMS + 100


def test_managers_of_one_store_in_a_process_take_one_bound(tmp_path):
    # One live flag set per store URL serves every manager of the process: a second
    # bound would have been the first's without a word. Refused, naming both.
    from cfgcore.dynamic_config import DynamicConfigurationManager

    path = tmp_path / "flags.msgpack"
    path.write_bytes(encode_snapshot(_with_list(1500)(Snapshot()), "msgpack"))
    first = DynamicConfigurationManager(
        store=f"file://{path}?max_items=2000", state_dir=tmp_path / "a"
    )
    try:
        with pytest.raises(ConfigError) as refused:
            DynamicConfigurationManager(store=str(path), state_dir=tmp_path / "b")
        said = str(refused.value)
        assert "max_items=1,000,000" in said and "max_items=2,000" in said and str(path) in said
        same = DynamicConfigurationManager(
            store=f"file://{path}?max_items=2000", state_dir=tmp_path / "c"
        )
        try:
            assert same._live is first._live
            assert same.is_feature_enabled("a") == first.is_feature_enabled("a")
        finally:
            same.close()
        assert len(first.snapshot.flags["a"].variants["on"]) == 1500  # still serving
    finally:
        first.close()
