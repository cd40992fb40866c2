"""Files cfgcore writes in its state directory (the persisting manager's ``flags.json``
and its version sidecar, the fleet cache file, the usage file) are read as this
service's only when this service's user, root or the directory's owner made them, where
other users may create files there (a shared sticky directory such as ``/tmp``, or a
group-writable one): a file another user planted (or a symlink of theirs) was read as
this service's flags, and a planted fleet cache file served its version at start and
raised the store's floor to it. Refused now, naming the file and the fix, the last
good state kept; a file in a private directory reads as before. Real files owned by
another uid (root gives them away), real redis-server."""

from __future__ import annotations

import json
import os
import pathlib

import msgspec
import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import ForeignStateFile, foreign_state_file, read_state_file
from cfgcore.runtime.usage import merge_usage, read_usage
from cfgcore.snapshot import Flag, Snapshot
from tests.planted import OTHER, as_root, plant, shared_dir

pytestmark = as_root


def _give(path, uid: int = OTHER) -> None:
    os.lchown(path, uid, uid)


@pytest.fixture
def shared(tmp_path):
    """A state directory every user may create files in (sticky, as ``/tmp``)."""
    return shared_dir(tmp_path, "sticky")


@pytest.fixture
def group_dir(tmp_path):
    """A state directory its group may create files in."""
    return shared_dir(tmp_path, "group")


def _manager(state_dir):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    return DynamicConfigurationManager(state_dir=state_dir, record_usage=False)


@pytest.fixture
def planted_flags(tmp_path, private_state):
    """A valid flag document turning ``planted`` on (as another user would write it)."""
    m = _manager(tmp_path / "maker")
    try:
        m.set_feature_flag("planted", True)
    finally:
        m.close()
    return (tmp_path / "maker" / "flags.json").read_bytes()


@pytest.mark.parametrize("where", ["shared", "group_dir"])
def test_a_planted_flags_json_is_refused_naming_it(where, request, planted_flags):
    state = request.getfixturevalue(where)
    plant(state / "flags.json", planted_flags)
    with pytest.raises(ConfigError) as err:
        m = _manager(state)  # (before: served, 'planted' on for everyone)
        m.close()
    text = str(err.value)
    assert str(state / "flags.json") in text
    assert "flag file refused" in text and f"uid {OTHER}" in text
    assert "CFGCORE_STATE_DIR" in text  # the fix


@pytest.mark.parametrize("where", ["shared", "group_dir"])
def test_a_file_planted_over_the_served_one_keeps_the_last_good_flags(
    where, request, planted_flags
):
    state = request.getfixturevalue(where)
    m = _manager(state)
    try:
        m.set_feature_flag("mine", True)  # this service's own file (root's)
        plant(state / "flags.json", planted_flags)
        assert m.reload() is False  # refused, reported as an error event; never raised
        assert m.is_feature_enabled("mine", {"user_id": "u"}) is True
        assert m.is_feature_enabled("planted", {"user_id": "u"}) is False
        with pytest.raises(ConfigError, match="flag file refused"):
            m.set_feature_flag("other", True)  # a change reads the file first
    finally:
        m.close()


def test_a_symlink_another_user_planted_is_refused(shared, tmp_path, planted_flags):
    theirs = tmp_path / "theirs.json"
    theirs.write_bytes(planted_flags)
    os.symlink(theirs, shared / "flags.json")
    _give(shared / "flags.json")
    assert "a symlink belongs to uid 4321" in foreign_state_file(shared / "flags.json")
    with pytest.raises(ConfigError, match="flag file refused"):
        _manager(shared)


def test_a_planted_version_sidecar_is_not_this_stores_record(group_dir, private_state):
    m = _manager(group_dir)
    try:
        m.set_feature_flag("mine", True)
        version = m.store.read().version
        meta = group_dir / ".flags.json.version"
        record = json.loads(meta.read_text())
        plant(meta, json.dumps({**record, "version": 2**52}).encode())
        assert version == 1 and m.store.read().version == 1  # as a hand edit (0 + 1), not 2**52
        m.set_feature_flag("more", True)  # the sidecar is written again, as this user's
        assert os.stat(meta).st_uid == os.geteuid() and m.store.read().version == 2
    finally:
        m.close()


def test_a_private_directory_reads_as_before(tmp_path, planted_flags):
    """Another user's file (root gave it away, say a restore) in a directory only its
    owner may write, and a symlink of this user's to another user's file, are read."""
    private = tmp_path / "private"
    private.mkdir(mode=0o755)
    (private / "flags.json").write_bytes(planted_flags)
    _give(private / "flags.json")
    assert foreign_state_file(private / "flags.json") == ""
    m = _manager(private)
    try:
        assert m.is_feature_enabled("planted", {"user_id": "u"}) is True
        m.set_feature_flag("mine", True)  # written and read back as before
        assert m.is_feature_enabled("mine", {"user_id": "u"}) is True
    finally:
        m.close()
    # A symlink this user made in a shared directory, to another user's file: followed.
    elsewhere = tmp_path / "theirs.json"
    elsewhere.write_bytes(planted_flags)
    _give(elsewhere)
    d = tmp_path / "linked"
    d.mkdir()
    os.chmod(d, 0o2775)
    os.symlink(elsewhere, d / "flags.json")
    assert read_state_file(d / "flags.json") == planted_flags


def test_the_state_directory_owners_file_is_read(tmp_path):
    """Root (a command run with sudo) reading the service's own files in the service's
    group-writable state directory: the directory owner's files are this service's."""
    d = tmp_path / "svc"
    d.mkdir()
    os.chmod(d, 0o2775)
    _give(d)
    (d / "flags.json").write_bytes(b"{}")
    _give(d / "flags.json")
    assert foreign_state_file(d / "flags.json") == ""
    (d / "x").write_bytes(b"{}")
    _give(d / "x", OTHER + 1)
    assert "uid 4322" in foreign_state_file(d / "x")


def test_an_explicit_flags_file_is_the_deployments(shared, planted_flags, private_state):
    """A flag file named explicitly (flags_file=, --flags) is read whoever owns it."""
    from cfgcore.dynamic_config import DynamicConfigurationManager

    path = shared / "team-flags.json"
    plant(path, planted_flags)
    m = DynamicConfigurationManager(flags_file=path, record_usage=False)
    try:
        assert m.is_feature_enabled("planted", {"user_id": "u"}) is True
    finally:
        m.close()


def test_a_planted_usage_file_is_refused_and_replaced(shared):
    path = shared / "flag-usage.json"
    plant(path, json.dumps({"flags": {"old-flag": 4e9}}).encode())
    with pytest.raises(ConfigError, match="usage file refused") as err:
        read_usage(path, state=True)
    assert str(path) in str(err.value)
    assert read_usage(path).flags == {"old-flag": 4e9}  # (--usage FILE: as given)
    merged = merge_usage(path, {"mine": 1000.0})
    assert merged.flags == {"mine": 1000.0}  # its times not merged in
    assert os.stat(path).st_uid == os.geteuid()  # replaced by this user's file


def add(name):
    def change(snap):
        return Snapshot(flags={**snap.flags, name: Flag(default="on")})

    return change


@pytest.mark.parametrize("where", ["shared", "group_dir"])
def test_a_planted_fleet_cache_file_is_not_served_and_raises_no_floor(
    where, request, redis_server, stores, tmp_path
):
    state = request.getfixturevalue(where)
    ns = f"planted{where}"
    base = redis_server.url + f"?namespace={ns}&poll=0.2"
    # A cache file this host could have written for the store, at a version far ahead
    # (the version of an unsigned document's cache file is covered by no checksum).
    maker = stores(base + f"&cache={tmp_path}/maker.msgpack")
    maker.update(add("a"))
    blob = msgspec.msgpack.decode((tmp_path / "maker.msgpack").read_bytes())
    maker.update(add("b"))  # the store is at version 2
    blob["version"] = 2**53 - 1
    cache = state / "flags.msgpack"
    plant(cache, msgspec.msgpack.encode(blob))
    store = stores(base + f"&cache={cache}")
    doc = store.read()
    assert doc.version == 2 and "b" in doc.snapshot.flags  # the store's, not the file's
    floor = redis_server.client().get(f"{{{ns}}}:flags:floor")
    assert floor is None or int(floor) < 2**53 - 1  # (before: raised to 2**53 - 1)
    with pytest.raises(ConfigError) as err:
        store.read_cache()
    assert "cache file refused" in str(err.value) and str(cache) in str(err.value)
    # Writes go on, and the follower replaces the planted file with its own.
    _, new = store.update(add("c"))
    assert new.version == 3
    assert os.stat(cache).st_uid == os.geteuid()
    assert store.read_cache().version == 3


def test_read_state_file_refuses_with_the_file_named(shared):
    path = shared / "f"
    plant(path, b"x")
    with pytest.raises(ForeignStateFile) as err:
        read_state_file(path)
    assert err.value.filename == str(path) and "another user may have put it there" in str(
        err.value
    )


def test_a_directory_another_user_made_on_the_way_is_refused(group_dir, tmp_path):
    """The directory owner's file is this service's only if the directory is: one
    another user made in the group-writable state directory (``fleet``, before this
    service did) holds files of theirs, or replaceable by them."""
    fleet = group_dir / "fleet"
    fleet.mkdir()
    _give(fleet)
    cache = fleet / "ns-flags-0123.msgpack"
    plant(cache, b"\x80")
    why = foreign_state_file(cache)
    assert "the directory fleet on its way belongs to uid 4321" in why
    # Made by this user (or root): read as before.
    os.chown(fleet, 0, 0)
    os.chown(cache, 0, 0)
    assert foreign_state_file(cache) == ""


def test_a_planted_published_configuration_is_not_served_offline(
    redis_server, group_dir, monkeypatch, tmp_path, caplog
):
    """``config_source=``: the ``ENV.json`` the manager followed last is what a start with
    Redis unreachable serves; another user's file put in its place is not."""
    from cfgcore.cli import main
    from cfgcore.config.manager import ConfigurationManager
    from tests.test_fleet_cli import _config_dir

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(group_dir))
    monkeypatch.setenv("JWT_SIGNING_KEY", "local-secret-0123456789abcdef0123456789")
    config = _config_dir(tmp_path)
    # (no cache file: the directory is what a start with Redis unreachable serves)
    url = redis_server.url + "?namespace=plantedcfg&poll=0.2&cache=off"
    assert main(["publish", "--store", url, "--config-dir", str(config), "-e", "staging"]) == 0
    key = "music_streaming.streaming.prefetch_tracks"
    manager = ConfigurationManager(config_source=url, environment="staging")
    try:
        manager.load_environment_config()
        assert manager.get(key) == 2
        path = manager._published.path("staging")
    finally:
        manager.close()
    redis_server.kill()
    tree = json.loads(pathlib.Path(path).read_text())
    tree["music_streaming"]["streaming"]["prefetch_tracks"] = 7
    os.chmod(os.path.dirname(path), 0o2775)  # (the group may create files there)
    plant(pathlib.Path(path), json.dumps(tree).encode())
    offline = ConfigurationManager(config_source=url, environment="staging")
    try:
        with pytest.raises(ConfigError):
            offline.load_environment_config()  # (before: served 7, the planted value)
    finally:
        offline.close()
    assert "last followed configuration refused" in caplog.text and path in caplog.text
