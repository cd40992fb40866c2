"""delete_feature_flag and ``cfgcore flags delete``: through the one flag store (file and
Redis), refused while anything depends on the flag, audited, announced, seen by both
managers."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.engine import Engine, engine_class
from cfgcore.errors import ConfigError
from cfgcore.experiments.abtest import ABTestConfiguration
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.experiments.features import FlagInUseError, delete_change, flag_dependents
from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.flagstore import FileFlagStore
from cfgcore.runtime.policy import AccessPolicy, set_policy
from cfgcore.snapshot import Flag, Prerequisite, Snapshot
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.redis_server import wait_for

USER = {"user_id": "u1"}
FLAGS_YAML = """\
flags:
  checkout_v2: {default: "on"}
  old_banner: {default: "off"}
  fast_path: {default: "on", prerequisites: [checkout_v2]}
  dark_mode: {default: "on", prerequisites: [{flag: checkout_v2, variant: "on"}]}
"""


@pytest.fixture
def flags_dir(tmp_path):
    d = tmp_path / "config"
    d.mkdir()
    (d / "flags.yaml").write_text(FLAGS_YAML)
    (d / "development.yaml").write_text("service: {name: shop}\n")
    return d


def _manager(path, **kw):
    return DynamicConfigurationManager(path, log_exposures=False, record_usage=False, **kw)


def _audit(manager):
    if not os.path.exists(manager.audit.path):
        return []
    return [e for e in AuditLog.read(manager.audit.path) if e["path"].startswith("flags.")]


def test_delete_removes_the_flag_bumps_the_version_audits_and_announces(flags_dir):
    path = flags_dir / "flags.yaml"
    manager = _manager(path)
    events = []
    manager.register_change_listener(events.append)
    before = FileFlagStore(path).read().version

    assert manager.delete_feature_flag("old_banner", actor="alice") is True

    doc = FileFlagStore(path).read()
    assert "old_banner" not in doc.snapshot.flags and doc.version == before + 1
    assert doc.writer["actor"] == "alice"
    assert "old_banner" not in manager.engine.snapshot().keys
    assert manager.is_feature_enabled("old_banner", USER) is False
    [event] = events
    assert (event.config_path, event.new_value, event.source, event.actor) == (
        "flags.old_banner", None, "delete_feature_flag", "alice",
    )  # fmt: skip
    assert event.old_value["default"] == "off" and event.store_version == doc.version
    [entry] = _audit(manager)
    assert (entry["path"], entry["new"], entry["actor"]) == ("flags.old_banner", None, "alice")


def test_both_managers_see_the_deletion(flags_dir):
    config = ConfigurationManager(flags_dir, environ={}, validate=False, record_usage=False)
    config.load_environment_config("development")
    heard = []
    config.register_change_listener(heard.append)
    dynamic = _manager(flags_dir / "flags.yaml")
    assert config.flags.is_enabled("old_banner", USER) is False
    assert "old_banner" in config.flags.snapshot().keys

    dynamic.delete_feature_flag("old_banner")
    assert "old_banner" not in config.flags.snapshot().keys
    assert [e.kind for e in heard] == ["flags"]  # the config manager's listeners hear it
    # What was written is what the next configuration reload reads: no second change.
    heard.clear()
    config.reload()
    assert heard == [] and "old_banner" not in config.flags.snapshot().keys


def test_refused_while_flags_depend_on_it_and_nothing_is_written(flags_dir):
    victim = "checkout_v2"
    dependents = ["flag fast_path (prerequisite)", "flag dark_mode (prerequisite)"]
    path = flags_dir / "flags.yaml"
    manager = _manager(path)
    events = []
    manager.register_change_listener(events.append)
    data, meta = path.read_bytes(), FileFlagStore(path).read().version

    with pytest.raises(FlagInUseError) as err:
        manager.delete_feature_flag(victim)

    assert err.value.dependents == dependents
    for dep in dependents:
        assert dep in str(err.value)
    assert str(path) in str(err.value) and f"flags.{victim}" in str(err.value)
    assert path.read_bytes() == data and FileFlagStore(path).read().version == meta
    assert events == [] and _audit(manager) == []
    assert manager.is_feature_enabled(victim, USER) is True


def test_refused_for_an_ab_test_flag_and_a_prerequisite_of_a_test(tmp_path):
    manager = _manager(tmp_path / "flags.json")
    now = datetime.now(timezone.utc)
    test = ABTestConfiguration(
        "pricing", "", now - timedelta(days=1), now + timedelta(days=9),
        {"control": 50, "cheap": 50}, {"control": {}, "cheap": {}},
    )  # fmt: skip
    assert manager.create_ab_test(test), manager.last_error
    manager.register_custom_feature_flag("paywall", enabled=True)
    manager.set_flag_dependencies("pricing", ["paywall"])

    with pytest.raises(FlagInUseError) as err:
        manager.delete_feature_flag("pricing")
    assert err.value.dependents == [
        "A/B test pricing (the flag serves it: delete the test instead, with cfgcore "
        "experiment delete pricing or delete_ab_test)"
    ]
    with pytest.raises(FlagInUseError) as err:
        manager.delete_feature_flag("paywall")
    assert err.value.dependents == ["A/B test pricing (prerequisite)"]

    assert manager.delete_ab_test("pricing") is True
    assert manager.delete_feature_flag("paywall") is True


def test_a_dependent_written_by_another_process_since_is_seen(flags_dir):
    """The check runs on the newest stored document, not on the manager's copy."""
    path = flags_dir / "flags.yaml"
    manager = _manager(path)
    other = FileFlagStore(path)  # another writer: this manager has not reloaded
    other.update(
        lambda s: msgspec.structs.replace(
            s, flags={**s.flags, "promo": Flag(default="on", prerequisites=["old_banner"])}
        )
    )
    assert "promo" not in manager.snapshot.flags
    with pytest.raises(FlagInUseError) as err:
        manager.delete_feature_flag("old_banner")
    assert err.value.dependents == ["flag promo (prerequisite)"]


def test_unknown_reserved_and_bad_names(flags_dir):
    path = flags_dir / "flags.yaml"
    manager = _manager(path)
    data = path.read_bytes()
    assert manager.delete_feature_flag("no_such_flag") is False
    assert path.read_bytes() == data
    with pytest.raises(ConfigError, match="reserved for experiment layers"):
        manager.delete_feature_flag("__layer__.checkout")
    with pytest.raises(ConfigError, match="non-empty string"):
        manager.delete_feature_flag("")


def test_the_access_policy_guards_flag_delete(flags_dir):
    path = flags_dir / "flags.yaml"
    manager = _manager(path)
    set_policy(
        AccessPolicy(
            {"editor": {"flag.set": ["*"]}, "cleaner": {"flag.delete": ["old_*"]}},
            {"bob": ["editor"], "carol": ["cleaner"]},
        )
    )
    try:
        with pytest.raises(PermissionError, match="bob may not flag.delete old_banner"):
            manager.delete_feature_flag("old_banner", actor="bob")
        assert "old_banner" in FileFlagStore(path).read().snapshot.flags
        denied = [e for e in AuditLog.read(manager.audit.path) if e["kind"] == "denied"]
        assert [(e["actor"], e["source"], e["path"]) for e in denied] == [
            ("bob", "flag.delete", "old_banner")
        ]
        assert manager.delete_feature_flag("old_banner", actor="carol") is True
    finally:
        set_policy(None)


# -- the Redis store -------------------------------------------------------------------


def test_redis_store_deletion_reaches_another_live_set(redis_server, tmp_path):
    url = redis_server.url + f"?namespace=del&cache={tmp_path / 'cache.msgpack'}"
    impls = list(IMPLS.values())
    writer = DynamicConfigurationManager(
        store=url, state_dir=tmp_path / "a", log_exposures=False, record_usage=False,
        engine=engine_class(impls[0])(),
    )  # fmt: skip
    # An explicit engine of its own: a separate live set with its own store and follower,
    # as another process would have.
    follower = DynamicConfigurationManager(
        store=url, state_dir=tmp_path / "b", log_exposures=False, record_usage=False,
        engine=engine_class(impls[-1])(),
    )  # fmt: skip
    assert follower._live is not writer._live
    writer.register_custom_feature_flag("legacy_search", enabled=True)
    writer.register_custom_feature_flag("search_v2", enabled=True)
    writer.set_flag_dependencies("search_v2", ["legacy_search"])
    wait_for(lambda: "search_v2" in follower.snapshot.flags)
    version = writer.store.read().version

    with pytest.raises(FlagInUseError, match="flag search_v2 \\(prerequisite\\)"):
        writer.delete_feature_flag("legacy_search")
    assert writer.store.read().version == version  # nothing written

    heard = []
    follower.register_change_listener(heard.append)
    writer.set_flag_dependencies("search_v2", [])
    assert writer.delete_feature_flag("legacy_search") is True
    assert writer.store.read().version == version + 2
    wait_for(lambda: "legacy_search" not in follower.snapshot.flags)
    assert follower.is_feature_enabled("legacy_search", USER) is False

    # Listeners hear events on the manager's event thread: under load the event of the
    # flag's creation (an earlier document) may still arrive after the listener was
    # added, so the deletion's event is picked by its document version.
    def deletion() -> list[Any]:
        return [
            e for e in heard
            if e.config_path == "flags.legacy_search" and e.store_version == version + 2
        ]  # fmt: skip

    wait_for(deletion)
    [gone] = deletion()
    assert gone.new_value is None and gone.old_value is not None
    audited = [e for e in AuditLog.read(follower.audit.path) if e["path"] == "flags.legacy_search"]
    assert audited[-1]["new"] is None
    for manager in (writer, follower):
        manager.close()
        manager.store.close()  # the follower threads: the server stops with the test


# -- the command line ------------------------------------------------------------------


def test_cli_delete_refused_lists_the_dependents_and_exits_1(flags_dir, capsys):
    path = flags_dir / "flags.yaml"
    data = path.read_bytes()
    code = main(["flags", "delete", "checkout_v2", "--store", str(path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot delete flag checkout_v2: still used by" in err
    assert "flag fast_path (prerequisite)" in err and "flag dark_mode (prerequisite)" in err
    assert path.read_bytes() == data


def test_cli_delete_deletes_and_audits(flags_dir, tmp_path, capsys):
    path = flags_dir / "flags.yaml"
    state = tmp_path / "state"
    code = main(["flags", "delete", "old_banner", "--store", str(path), "--state-dir",
                 str(state), "--actor", "ci-bot"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "old_banner" not in FileFlagStore(path).read().snapshot.flags
    entries = AuditLog.read(state / "flags.audit.jsonl")
    assert [(e["path"], e["new"], e["actor"]) for e in entries] == [
        ("flags.old_banner", None, "ci-bot")
    ]
    assert main(["flags", "delete", "old_banner", "--store", str(path)]) == 1
    assert "old_banner: no such flag" in capsys.readouterr().err


def test_cli_delete_of_a_misspelt_flag_suggests_the_flag_meant(flags_dir, capsys):
    path = flags_dir / "flags.yaml"
    data = path.read_bytes()
    assert main(["flags", "delete", "old_baner", "--store", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"old_baner: no such flag in {path} (did you mean 'old_banner'?)" in err
    assert path.read_bytes() == data


@pytest.mark.parametrize("command", [["flags", "delete", "old_banner"], ["flags", "stale"]])
def test_cli_a_store_path_naming_no_file_is_refused(flags_dir, tmp_path, capsys, command):
    """A --store path with a typo served the bundled demo flags in its place: `flags
    delete` wrote a new file of them there (exit 0, "deleted") and `flags stale` judged
    them, while the real store stayed as it was."""
    typo = flags_dir / "flgs.yaml"
    before = sorted(p.name for p in flags_dir.iterdir())
    state = tmp_path / "state"
    code = main([*command, "--store", str(typo), "--state-dir", str(state)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{typo}: flag file does not exist (check --store" in err
    assert sorted(p.name for p in flags_dir.iterdir()) == before
    assert not state.exists()


def test_cli_delete_on_redis(redis_server, tmp_path, capsys):
    url = redis_server.url + "?namespace=clidel&cache=off"
    from cfgcore.runtime.redis_store import RedisFlagStore

    with RedisFlagStore(url) as store:
        store.update(
            lambda s: msgspec.structs.replace(
                s, flags={"a": Flag(default="on"), "b": Flag(default="on", prerequisites=["a"])}
            ),
            check=Engine().compile,
        )
    assert main(["flags", "delete", "a", "--store", url, "--state-dir", str(tmp_path)]) == 1
    assert "flag b (prerequisite)" in capsys.readouterr().err
    assert main(["flags", "delete", "b", "--store", url, "--state-dir", str(tmp_path)]) == 0
    with RedisFlagStore(url) as store:
        doc = store.read()
    assert set(doc.snapshot.flags) == {"a"} and doc.version == 2


# -- the dependency rule, for any prerequisite graph -------------------------------------

NAMES = [f"f{i}" for i in range(6)]


@st.composite
def graphs(draw):
    """A prerequisite DAG over NAMES (each flag may require earlier ones), some flags
    serving A/B tests."""
    flags = {}
    for i, name in enumerate(NAMES):
        edges = draw(st.lists(st.booleans(), min_size=i, max_size=i))
        pres = [NAMES[j] for j, on in enumerate(edges) if on]
        as_struct = draw(st.booleans())
        flags[name] = Flag(
            default="on",
            prerequisites=[Prerequisite(flag=p) if as_struct else p for p in pres],
        )
    serve_tests = draw(st.lists(st.booleans(), min_size=len(NAMES), max_size=len(NAMES)))
    tests = [n for n, on in zip(NAMES, serve_tests, strict=True) if on]
    return Snapshot(flags=flags, experiments={t: {"status": "active"} for t in tests})


@settings(max_examples=examples(150), deadline=None)
@given(snap=graphs(), victim=st.sampled_from(NAMES))
def test_delete_is_refused_exactly_when_something_depends_on_the_flag(snap, victim):
    users = {
        k for k, f in snap.flags.items()
        if any((p if isinstance(p, str) else p.flag) == victim for p in f.prerequisites)
    }  # fmt: skip
    change = delete_change(victim, "flags.yaml")
    if not users and victim not in snap.experiments:
        after = change(snap)
        assert set(after.flags) == set(snap.flags) - {victim}
        Engine().compile(after)  # what is left still compiles: nothing dangles
        return
    with pytest.raises(FlagInUseError) as err:
        change(snap)
    named = {d.split()[-2] for d in err.value.dependents if d.endswith("(prerequisite)")}
    assert named == users
    assert (victim in snap.experiments) == any("serves it" in d for d in err.value.dependents)
    assert err.value.dependents == flag_dependents(snap, victim)


def test_cli_flags_without_subcommand_prints_help(capsys):
    assert main(["flags"]) == 2
    assert "delete" in capsys.readouterr().err


def test_the_refusal_names_the_file_and_the_key_path(flags_dir):
    manager = _manager(flags_dir / "flags.yaml")
    with pytest.raises(FlagInUseError) as err:
        manager.delete_feature_flag("checkout_v2")
    [problem] = err.value.problems
    assert problem.file == os.fspath(flags_dir / "flags.yaml")
    assert problem.path == "flags.checkout_v2"
