"""One flag store per process: both managers serve the same flags; the file store is
safe for many writer processes; configuration directory discovery."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from pathlib import Path

import pytest

from cfgcore.config.manager import (
    EMBEDDED,
    ConfigurationManager,
    default_config_dir,
    discover_config_dir,
)
from cfgcore.errors import ConfigError
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.runtime.atomicio import atomic_write_text
from cfgcore.runtime.flagstore import FileFlagStore, MemoryFlagStore, open_store
from cfgcore.snapshot import Flag, Snapshot

DEFAULTS = default_config_dir()
FLAGS = os.path.join(os.path.dirname(DEFAULTS), "flags.yaml")
PREMIUM = {"user_id": "12345", "user_segment": "premium", "region": "EU"}


@pytest.fixture
def config_dir(tmp_path):
    d = tmp_path / "config"
    shutil.copytree(DEFAULTS, d)
    shutil.copy(FLAGS, d / "flags.yaml")
    return d


def _switched_off(text: str) -> str:
    return text.replace('serve: "on"', 'serve: "off"', 1)


def test_the_new_users_scenario_both_managers_agree(config_dir, monkeypatch, tmp_path):
    """The issue as a new user met it: flags.yaml in the config directory switches a flag
    off; get_config_manager().flags and get_dynamic_config_manager() must both say off."""
    import cfgcore.config.manager as manager_module
    from cfgcore.experiments.dynamic import get_dynamic_config_manager, reset_dynamic_config_manager

    flags = config_dir / "flags.yaml"
    flags.write_text(_switched_off(flags.read_text()))
    monkeypatch.setenv("CFGCORE_CONFIG_DIR", str(config_dir))
    monkeypatch.setattr(manager_module, "_default", None)
    reset_dynamic_config_manager()
    try:
        config = manager_module.get_config_manager()
        config.load_environment_config("staging")
        dynamic = get_dynamic_config_manager(log_exposures=False)
        assert config.flags.is_enabled("enhanced_anomaly_detection", PREMIUM) is False
        assert dynamic.is_feature_enabled("enhanced_anomaly_detection", PREMIUM) is False
        assert dynamic.engine is config.flags  # one live set, one engine
        assert dynamic.flags_file == str(flags)
    finally:
        reset_dynamic_config_manager()


def test_a_flag_set_through_either_api_is_seen_by_both_at_once(config_dir):
    config = ConfigurationManager(config_dir, environ={})
    config.load_environment_config("staging")
    dynamic = DynamicConfigurationManager(config_dir / "flags.yaml", log_exposures=False)
    seen = []
    config.register_change_listener(seen.append)

    dynamic.set_feature_flag("enhanced_anomaly_detection", False)
    assert config.flags.is_enabled("enhanced_anomaly_detection", PREMIUM) is False
    assert [e.kind for e in seen] == ["flags"]  # the config manager's listeners hear it

    dynamic.set_feature_flag("enhanced_anomaly_detection", True)
    assert config.flags.is_enabled("enhanced_anomaly_detection", PREMIUM) is True
    # ... and what the dynamic API wrote is what the next config reload reads: no event.
    seen.clear()
    assert config.reload() is True
    assert seen == []


def test_a_file_edit_reloads_both(config_dir):
    config = ConfigurationManager(config_dir, environ={})
    config.load_environment_config("staging")
    dynamic = DynamicConfigurationManager(config_dir / "flags.yaml", log_exposures=False)
    events = []
    dynamic.register_change_listener(events.append)
    flags = config_dir / "flags.yaml"
    atomic_write_text(flags, _switched_off(flags.read_text()))

    assert config.reload() is True
    assert config.flags.is_enabled("enhanced_anomaly_detection", PREMIUM) is False
    assert dynamic.is_feature_enabled("enhanced_anomaly_detection", PREMIUM) is False
    assert [e.config_path for e in events] == ["flags.enhanced_anomaly_detection"]
    assert events[0].source == "reload"


def test_embedded_set_and_dynamic_default_share_the_state_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)  # no ./config here
    config = ConfigurationManager(environ={"CFGCORE_CONFIG_DIR": "embedded"})
    config.load_environment_config("staging")
    dynamic = DynamicConfigurationManager(log_exposures=False)
    assert config.flag_store_url() == dynamic.flags_file == str(tmp_path / "state" / "flags.json")
    dynamic.set_feature_flag("beta_social_features", True)
    assert config.flags.is_enabled("beta_social_features", {"user_id": "1"}) is True
    assert not os.path.exists(default_config_dir() + "/flags.json")  # package never written


def test_a_custom_directory_without_flags_serves_none(tmp_path):
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "staging.yaml").write_text("environment: staging\n")
    m = ConfigurationManager(d, environ={}, validate=False)
    m.load_environment_config("staging")
    assert m.flag_store_url() is None
    assert m.flags.is_enabled("enhanced_anomaly_detection", PREMIUM) is False


# ------------------------------------------------------------------ discovery


def test_discovery_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert discover_config_dir({}) == (DEFAULTS, EMBEDDED)
    (tmp_path / "config").mkdir()
    assert discover_config_dir({})[1] == EMBEDDED  # an empty ./config is not a config dir
    (tmp_path / "config" / "production.toml").write_text('environment = "production"\n')
    assert discover_config_dir({}) == (str(tmp_path / "config"), "./config")
    named = tmp_path / "elsewhere"
    assert discover_config_dir({"CFGCORE_CONFIG_DIR": str(named)}) == (
        str(named),
        "CFGCORE_CONFIG_DIR",
    )
    assert discover_config_dir({"CFGCORE_CONFIG_DIR": "embedded"})[0] == DEFAULTS


def test_production_refuses_the_embedded_demo_set_unless_asked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m = ConfigurationManager(environ={})
    with pytest.raises(ConfigError, match="production refuses the embedded demo"):
        m.load_environment_config("production")
    assert m.version == 0 and "CFGCORE_CONFIG_DIR" in str(m.last_error)
    m.load_environment_config("staging")  # other environments may use the demo set
    assert m.debug_info()["config_dir_source"] == EMBEDDED
    asked = ConfigurationManager(environ={"CFGCORE_CONFIG_DIR": "embedded"})
    assert asked.load_environment_config("production")["environment"] == "production"
    explicit = ConfigurationManager(DEFAULTS, environ={})
    assert explicit.load_environment_config("production")["environment"] == "production"
    assert explicit.debug_info()["config_dir_source"] == "argument"


def test_the_chosen_directory_is_logged_once_at_info(tmp_path, caplog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level("INFO", logger="cfgcore.manager"):
        ConfigurationManager(environ={})
    lines = [r.getMessage() for r in caplog.records if "configuration directory" in r.message]
    assert lines == [f"configuration directory: {DEFAULTS} ({EMBEDDED})"]


# ------------------------------------------------------------------ the file store


def _writer(path: str, worker: int, n: int) -> None:
    store = FileFlagStore(path, seed=FLAGS)
    for i in range(n):
        key = f"w{worker}_{i}"
        store.update(lambda s, key=key: Snapshot(flags={**s.flags, key: Flag(default="on")}))


def test_many_writer_processes_lose_nothing(tmp_path):
    path = str(tmp_path / "flags.json")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    doc = FileFlagStore(path).read()
    written = {k for k in doc.snapshot.flags if k.startswith("w")}
    assert written == {f"w{w}_{i}" for w in range(4) for i in range(25)}
    assert doc.version == 100  # every write saw the one before it
    assert doc.writer["pid"] in {p.pid for p in procs}


def test_update_applies_to_the_newest_document_not_a_stale_copy(tmp_path):
    a = FileFlagStore(tmp_path / "flags.json", seed=FLAGS)
    b = FileFlagStore(tmp_path / "flags.json", seed=FLAGS)
    a.update(lambda s: Snapshot(flags={**s.flags, "from_a": Flag()}))
    old, new = b.update(lambda s: Snapshot(flags={**s.flags, "from_b": Flag()}))
    assert "from_a" in old.snapshot.flags and {"from_a", "from_b"} <= set(new.snapshot.flags)
    assert (old.version, new.version) == (1, 2)


def test_a_refused_change_writes_nothing(tmp_path):
    store = FileFlagStore(tmp_path / "flags.json", seed=FLAGS)

    def refuse(_snapshot):
        raise ConfigError("does not compile")

    with pytest.raises(ConfigError):
        store.update(lambda s: Snapshot(), check=refuse)
    assert not (tmp_path / "flags.json").exists()
    assert store.read().origin == FLAGS  # still the seed


def test_temp_files_of_a_killed_writer_are_cleaned_up(tmp_path):
    path = tmp_path / "flags.json"
    stale = [tmp_path / ".flags.json.deadbeef0001.tmp", tmp_path / "..flags.json.version.0a.tmp"]
    for f in stale:
        f.write_bytes(b"half")
    unrelated = tmp_path / ".other.yaml.deadbeef0001.tmp"
    unrelated.write_bytes(b"not ours")
    FileFlagStore(path, seed=FLAGS).update(lambda s: s)
    assert not any(f.exists() for f in stale)
    assert unrelated.exists()
    assert json.loads((tmp_path / ".flags.json.version").read_text())["version"] == 1


def test_a_hand_edit_gets_a_newer_version(tmp_path):
    path = tmp_path / "flags.json"
    store = FileFlagStore(path, seed=FLAGS)
    store.update(lambda s: s)
    assert store.read().version == 1
    data = json.loads(path.read_text())
    data["flags"]["hand_made"] = {"default": "on"}
    path.write_text(json.dumps(data))
    doc = store.read()
    assert doc.version == 2 and doc.writer == {} and "hand_made" in doc.snapshot.flags


def test_open_store_picks_the_implementation(tmp_path, monkeypatch):
    assert isinstance(open_store(tmp_path / "f.yaml"), FileFlagStore)
    store = open_store(f"file://{tmp_path}/g.json")
    assert isinstance(store, FileFlagStore) and store.path == str(tmp_path / "g.json")
    monkeypatch.setenv("CFGCORE_FLAG_STORE", str(tmp_path / "env.json"))
    assert open_store(None, default_path="ignored").path == str(tmp_path / "env.json")
    with pytest.raises(ConfigError, match="unknown flag store URL scheme"):
        open_store("ftp://example/flags")


def test_memory_store_keeps_changes_in_process(tmp_path):
    store = MemoryFlagStore(Snapshot(flags={"a": Flag()}))
    old, new = store.update(lambda s: Snapshot(flags={**s.flags, "b": Flag()}))
    assert set(new.snapshot.flags) == {"a", "b"} and new.version == old.version + 1
    assert store.read() is new
    assert list(Path(tmp_path).iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_child_forked_while_another_thread_writes_flags_can_write(tmp_path):
    """A thread of the parent held the store's thread lock at the fork: the child's
    copy of that lock must not stay held (no thread of the child would release it)."""
    import threading
    import time

    from cfgcore.runtime.flagstore import FileFlagStore

    store = FileFlagStore(tmp_path / "flags.json")
    holding, release = threading.Event(), threading.Event()

    def writer():
        with store.locked():
            holding.set()
            release.wait(30)

    threading.Thread(target=writer, daemon=True).start()
    assert holding.wait(10)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: one write through the store's lock
        try:
            with store.locked():
                pass
        finally:
            os._exit(0)
    release.set()  # the parent's thread lets go; the child may then take the file lock
    deadline = time.monotonic() + 20
    status = None
    while time.monotonic() < deadline:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(raw)
            break
        time.sleep(0.01)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    assert status == 0, "the child waited forever on the lock a parent thread held"
