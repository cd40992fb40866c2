"""A flags file a configuration manager's reload refuses marks the shared flag set
refused, as the set's own reader does.

The manager reads its directory's flags file with its configuration files and swaps
both in at once. A flags file that did not decode or compile was refused by the
manager alone (its ``last_error``, error event and audit entry), and the live flag set
never knew: an OpenFeature provider on it stayed READY, the set's ``last_error``, its
``rejected`` count and health's ``flags`` check said nothing, and a dynamic-config
manager sharing the set heard nothing. Now the set stands refused on those bytes (the
provider is STALE) until a good document goes live or the file is back to the live
one; each manager audits the refusal once, whichever reader met it first.

The same holds for a flags file the reload refuses before decoding it: emptied, deleted
(or moved away, or a link left dangling) or replaced by something that cannot be read
(a directory). The manager refused it alone, and the provider stayed READY while the
file on disk no longer held what served. Real files, real managers and watchers, the
real openfeature-sdk registry and handlers."""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import cfgcore.metrics
from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.atomicio import atomic_write_text
from cfgcore.runtime.audit import AuditLog
from tests.conftest import minimal_config_dir
from tests.fuzz import examples
from tests.waiting import wait_for, wait_for_async

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.event import ProviderEvent  # noqa: E402
from openfeature.provider import ProviderStatus  # noqa: E402
from openfeature.provider.in_memory_provider import InMemoryProvider  # noqa: E402

from cfgcore.openfeature import CfgcoreProvider  # noqa: E402

FLAGS = """\
version: 1
flags:
  beta:
    rules:
      - serve: {serve}
    default: off
"""
GOOD = FLAGS.format(serve="on")
OTHER_GOOD = FLAGS.format(serve="off")
BAD = FLAGS.format(serve="maybe")  # a variant the flag does not have: does not compile
KEY_PATH = "flags.beta.rules[0].serve"
USER = {"user_id": "u1"}
_domains = itertools.count()


@pytest.fixture(autouse=True)
def _quiet_logs():
    # Refusals are logged at ERROR by design; the SDK logs a raising handler's traceback.
    logging.getLogger("openfeature").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("openfeature").setLevel(logging.NOTSET)


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    d = minimal_config_dir(tmp_path, monkeypatch)
    (d / "flags.yaml").write_text(GOOD)
    return d


@pytest.fixture
def managers(config_dir, config_manager_factory):
    return functools.partial(config_manager_factory, config_dir, hot=False)


@pytest.fixture
def dynamic(config_dir):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    made = []

    def make():
        d = DynamicConfigurationManager(flags_file=config_dir / "flags.yaml", record_usage=False)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


@pytest.fixture
def provider():
    """Register a CfgcoreProvider on an engine through the real SDK; its client and
    the events its handlers received (those after registration)."""
    domains = []

    def register(engine):
        p = CfgcoreProvider(engine)
        domain = f"cfgcore-config-flags-refusal-{next(_domains)}"
        domains.append(domain)
        api.set_provider_and_wait(p, domain=domain)
        client = api.get_client(domain)
        events = []
        for ev in ProviderEvent:
            client.add_handler(ev, lambda d, ev=ev: events.append((ev, d)))
        assert wait_for(lambda: events)  # the handler for the current state runs at once
        events.clear()
        return client, events

    yield register
    for domain in domains:
        api.set_provider(InMemoryProvider({}), domain=domain)


def _kinds(events):
    return [e for e, _ in events]


def _audited(path, kind):
    if not os.path.exists(path):  # (written with the first entry)
        return []
    return [e for e in AuditLog.read(path) if e.get("kind") == kind]


def _rejected_metric(url):
    total = 0.0
    for name, family in cfgcore.metrics.snapshot()["metrics"].items():
        if name != "cfgcore_flag_documents_total":
            continue
        for sample in family["samples"]:
            labels = sample["labels"]
            if labels.get("store") == url and labels.get("result") == "rejected":
                total += sample["value"]
    return total


def _flags_check(manager):
    return next(c for c in manager.health().readiness if c.name == "flags")


def test_a_flags_edit_hot_reload_refuses_makes_the_provider_stale_until_a_good_one(
    managers, provider, config_dir, tmp_path
):
    m = managers(hot=True)
    live = m._flags.live()
    path = str(config_dir / "flags.yaml")
    client, events = provider(m.flags)
    assert client.get_provider_status() is ProviderStatus.READY
    ctx = m.flags.context(USER)

    atomic_write_text(config_dir / "flags.yaml", BAD)

    assert wait_for(lambda: ProviderEvent.PROVIDER_STALE in _kinds(events))
    assert client.get_provider_status() is ProviderStatus.STALE
    stale = next(d for e, d in events if e is ProviderEvent.PROVIDER_STALE)
    assert path in stale.message and KEY_PATH in stale.message
    assert wait_for(lambda: m.last_error is not None)
    # The set stands refused, as when its own reader refuses the file.
    assert live.last_error is not None and KEY_PATH in str(live.last_error)
    assert live.documents["rejected"] == 1
    assert _rejected_metric(live.store.url) == 1
    check = _flags_check(m)
    assert check.status == "warn" and KEY_PATH in check.detail
    # The last good flags keep serving; the manager audited the refusal once.
    assert m.flags.is_enabled("beta", ctx) is True
    assert len(_audited(tmp_path / "audit0.jsonl", "error")) == 1

    atomic_write_text(config_dir / "flags.yaml", OTHER_GOOD)

    assert wait_for(lambda: ProviderEvent.PROVIDER_READY in _kinds(events))
    assert client.get_provider_status() is ProviderStatus.READY
    assert ProviderEvent.PROVIDER_CONFIGURATION_CHANGED in _kinds(events)
    assert m.flags.is_enabled("beta", ctx) is False
    assert live.last_error is None and _flags_check(m).status == "ok"
    assert live.documents["rejected"] == 1
    assert len(_audited(tmp_path / "audit0.jsonl", "error")) == 1


def test_the_flags_file_put_back_as_it_was_ends_the_refusal(
    managers, provider, config_dir, tmp_path
):
    """Back to the live document's bytes nothing is swapped, and the refusal must end
    all the same, or the provider stays STALE for good: through hot reload (the inputs
    read back as what serves), and through an explicit reload that activates another
    change with it, or that a configuration file broken meanwhile refuses."""
    m = managers(hot=True)
    live = m._flags.live()
    client, events = provider(m.flags)

    atomic_write_text(config_dir / "flags.yaml", BAD)
    assert wait_for(lambda: ProviderEvent.PROVIDER_STALE in _kinds(events))
    atomic_write_text(config_dir / "flags.yaml", GOOD)
    assert wait_for(lambda: ProviderEvent.PROVIDER_READY in _kinds(events))
    assert client.get_provider_status() is ProviderStatus.READY
    assert live.last_error is None and _flags_check(m).status == "ok"
    assert ProviderEvent.PROVIDER_CONFIGURATION_CHANGED not in _kinds(events)
    m.disable_hot_reload()

    # Put back together with a configuration change: that change goes live alone.
    events.clear()
    (config_dir / "flags.yaml").write_text(BAD)
    assert m.reload() is False
    assert wait_for(lambda: ProviderEvent.PROVIDER_STALE in _kinds(events))
    (config_dir / "flags.yaml").write_text(GOOD)
    (config_dir / "development.yaml").write_text("environment: development\nteam: a\n")
    assert m.reload() is True
    assert m.get("team") == "a"
    assert wait_for(lambda: ProviderEvent.PROVIDER_READY in _kinds(events))
    assert live.last_error is None
    assert ProviderEvent.PROVIDER_CONFIGURATION_CHANGED not in _kinds(events)

    # Put back while a configuration file is broken: the reload is refused for that
    # file, and the flags file holds what serves again all the same.
    events.clear()
    (config_dir / "flags.yaml").write_text(BAD)
    assert m.reload() is False
    assert wait_for(lambda: ProviderEvent.PROVIDER_STALE in _kinds(events))
    (config_dir / "flags.yaml").write_text(GOOD)
    (config_dir / "development.yaml").write_text("environment: development\nteam: [a\n")
    assert m.reload() is False
    assert "development.yaml" in str(m.last_error)
    assert wait_for(lambda: ProviderEvent.PROVIDER_READY in _kinds(events))
    assert client.get_provider_status() is ProviderStatus.READY
    assert live.last_error is None and live.documents["rejected"] == 3


def test_only_a_flags_file_that_is_refused_marks_the_set(managers, provider, config_dir):
    """A reload refused for its configuration (validation) while its flags file
    compiles leaves the flag set unrefused: the new flags simply did not go live with
    it. The same refused reload with a flags file that does not compile marks it."""
    m = managers()
    live = m._flags.live()
    client, events = provider(m.flags)
    invalid = "environment: development\napp: {name: 5}\n"  # app.name must be a string

    (config_dir / "development.yaml").write_text(invalid)
    (config_dir / "flags.yaml").write_text(OTHER_GOOD)
    assert m.reload() is False
    assert "app.name" in str(m.last_error)
    assert live.last_error is None and live.documents["rejected"] == 0
    assert m.flags.is_enabled("beta", USER) is True  # (not swapped in without its config)
    assert client.get_provider_status() is ProviderStatus.READY

    (config_dir / "flags.yaml").write_text(BAD)
    assert m.reload() is False
    assert KEY_PATH in str(m.last_error)
    assert live.last_error is not None and live.documents["rejected"] == 1
    assert wait_for(lambda: ProviderEvent.PROVIDER_STALE in _kinds(events))
    assert client.get_provider_status() is ProviderStatus.STALE


def test_a_dynamic_manager_sharing_the_set_hears_the_refusal_once(
    managers, dynamic, config_dir, tmp_path
):
    """The configuration manager's reload refuses the file: it reports that itself
    (one audit entry, one error event), not again as the set's subscriber; the
    dynamic-config manager hears it once, and its own read of the same bytes later
    reports nothing more."""
    m = managers()
    d = dynamic()
    assert d._live is m._flags.live()
    mine, theirs = [], []
    m.register_change_listener(lambda e: mine.append(e) if e.is_error else None)
    d.events.register(lambda e: theirs.append(e) if e.is_error else None)

    (config_dir / "flags.yaml").write_text(BAD)
    assert m.reload() is False
    assert d.reload() is False  # the second reader of the file: refused already

    assert len(mine) == 1 and len(theirs) == 1
    assert KEY_PATH in str(theirs[0].error)
    assert len(_audited(tmp_path / "audit0.jsonl", "error")) == 1
    assert len(_audited(d.audit.path, "error")) == 1
    assert d._live.documents["rejected"] == 1
    assert d.health().readiness[0].status == "warn"


def test_a_refusal_the_dynamic_manager_read_first_is_audited_once_by_the_config_manager(
    managers, dynamic, config_dir, tmp_path
):
    m = managers()
    d = dynamic()
    mine, theirs = [], []
    m.register_change_listener(lambda e: mine.append(e) if e.is_error else None)
    d.events.register(lambda e: theirs.append(e) if e.is_error else None)

    (config_dir / "flags.yaml").write_text(BAD)
    assert d.reload() is False
    assert m.reload() is False

    assert KEY_PATH in str(m.last_error)
    assert len(_audited(tmp_path / "audit0.jsonl", "error")) == 1
    assert len(mine) == 1 and len(theirs) == 1
    assert len(_audited(d.audit.path, "error")) == 1
    assert d._live.documents["rejected"] == 1


def test_both_watchers_of_the_file_report_a_refusal_once(
    managers, dynamic, provider, config_dir, tmp_path
):
    """Hot reload and the dynamic-config manager's watcher both follow the file:
    whichever reads the bad bytes first, each manager audits the refusal once, the set
    counts it once and the provider goes STALE once."""
    m = managers(hot=True)
    d = dynamic()
    client, events = provider(m.flags)

    async def scenario():
        await d.start_file_watching(debounce_ms=20, poll_interval=0.2)
        try:
            atomic_write_text(config_dir / "flags.yaml", BAD)
            assert await wait_for_async(
                lambda: (
                    ProviderEvent.PROVIDER_STALE in _kinds(events)
                    and m.last_error is not None
                    and _audited(tmp_path / "audit0.jsonl", "error")
                    and _audited(d.audit.path, "error")
                )
            )
            atomic_write_text(config_dir / "flags.yaml", OTHER_GOOD)
            assert await wait_for_async(
                lambda: (
                    ProviderEvent.PROVIDER_READY in _kinds(events)
                    and m.last_error is None
                    and _audited(tmp_path / "audit0.jsonl", "flags")
                    and _audited(d.audit.path, "change")
                )
            )
        finally:
            await d.stop_file_watching()

    asyncio.run(scenario())
    assert len(_audited(tmp_path / "audit0.jsonl", "error")) == 1
    assert len(_audited(d.audit.path, "error")) == 1
    assert d._live.documents == {"ok": 2, "rejected": 1}
    assert _kinds(events).count(ProviderEvent.PROVIDER_STALE) == 1
    assert m.flags.is_enabled("beta", USER) is False


# -- the flags file emptied, deleted or replaced -------------------------------------------


def _remove(path):
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    elif os.path.lexists(path):
        path.unlink()


def _empty(path):
    path.write_text("")  # truncated in place, as open(path, "w") does before it writes


def _blank(path):
    atomic_write_text(path, "  \n\t\n")


def _dangling(path):
    path.unlink()
    os.symlink(path.parent / "release-2" / "flags.yaml", path)


def _directory(path):
    path.unlink()
    path.mkdir()


# how the file goes, and the reason the refusal gives (beside the file's path)
_GOING = {
    "emptied": (_empty, "flags file is empty"),
    "whitespace only": (_blank, "flags file is empty"),
    "deleted": (Path.unlink, "flags file disappeared"),
    "dangling link": (_dangling, "flags file disappeared (a link to"),
    "a directory": (_directory, "not a regular file"),
}


@pytest.mark.parametrize("back", ["as it was", "new flags"])
@pytest.mark.parametrize("going", list(_GOING))
def test_a_flags_file_gone_or_emptied_under_hot_reload_makes_the_provider_stale(
    managers, provider, config_dir, tmp_path, going, back
):
    """The last good flags keep serving, and the set stands refused, naming the file
    and why, until the file is back: as it was (no swap, the provider READY again) or
    with new flags (they go live)."""
    m = managers(hot=True)
    live = m._flags.live()
    path = config_dir / "flags.yaml"
    client, events = provider(m.flags)
    go, reason = _GOING[going]

    go(path)

    assert wait_for(lambda: ProviderEvent.PROVIDER_STALE in _kinds(events))
    assert client.get_provider_status() is ProviderStatus.STALE
    stale = next(d for e, d in events if e is ProviderEvent.PROVIDER_STALE)
    assert str(path) in stale.message and reason in stale.message
    assert wait_for(lambda: m.last_error is not None)
    assert reason in str(m.last_error)
    assert live.last_error is not None and reason in str(live.last_error)
    assert live.documents["rejected"] == 1
    assert _rejected_metric(live.store.url) == 1
    check = _flags_check(m)
    assert check.status == "warn" and reason in check.detail and str(path) in check.detail
    assert m.flags.is_enabled("beta", USER) is True  # never dropped to no flags
    assert len(_audited(tmp_path / "audit0.jsonl", "error")) == 1

    _remove(path)
    atomic_write_text(path, GOOD if back == "as it was" else OTHER_GOOD)

    assert wait_for(lambda: ProviderEvent.PROVIDER_READY in _kinds(events))
    assert wait_for(lambda: m.last_error is None)
    assert client.get_provider_status() is ProviderStatus.READY
    assert live.last_error is None and _flags_check(m).status == "ok"
    # (the change event is delivered on its own thread: READY may come first)
    if back == "new flags":
        assert wait_for(lambda: ProviderEvent.PROVIDER_CONFIGURATION_CHANGED in _kinds(events))
    else:
        assert ProviderEvent.PROVIDER_CONFIGURATION_CHANGED not in _kinds(events)
    assert m.flags.is_enabled("beta", USER) is (back == "as it was")
    assert live.documents["rejected"] == 1
    assert len(_audited(tmp_path / "audit0.jsonl", "error")) == 1


@pytest.mark.parametrize("first", ["config", "dynamic"])
@pytest.mark.parametrize("going", ["emptied", "deleted", "a directory"])
def test_a_flags_file_gone_is_refused_once_whichever_manager_reads_it_first(
    managers, dynamic, config_dir, tmp_path, going, first
):
    """Both managers' reads of one removal are one refusal: the set counts it once and
    each manager audits it once (the configuration manager's own refusal, or the one
    the set told it of), though each reader words it its own way."""
    m = managers()
    d = dynamic()
    live = m._flags.live()
    assert d._live is live
    _GOING[going][0](config_dir / "flags.yaml")
    readers = [m.reload, d.reload] if first == "config" else [d.reload, m.reload]

    for reader in readers + readers:  # (each reads it twice)
        assert reader() is False

    assert live.last_error is not None and live.documents["rejected"] == 1
    assert str(config_dir / "flags.yaml") in str(live.last_error)
    # An explicit reload() is reported each time, a refusal it was told of once.
    own = 2 if first == "config" else 1
    assert len(_audited(tmp_path / "audit0.jsonl", "error")) == own
    assert len(_audited(d.audit.path, "error")) == 1
    assert m.flags.is_enabled("beta", USER) is True

    _remove(config_dir / "flags.yaml")
    (config_dir / "flags.yaml").write_text(GOOD)
    assert m.reload() is True
    assert live.last_error is None and d.reload() is False  # (nothing new to serve)
    assert live.last_error is None and live.documents["rejected"] == 1


def test_an_explicit_load_accepts_the_removal_and_the_set_stays_refused(
    managers, provider, config_dir
):
    """``load_environment_config`` accepts the removal for the configuration; the flags
    it last held keep serving from no file, which the set goes on saying (a restart
    would serve none) until a flags file is back."""
    m = managers()
    live = m._flags.live()
    client, events = provider(m.flags)
    (config_dir / "flags.yaml").unlink()
    assert m.reload() is False
    assert wait_for(lambda: client.get_provider_status() is ProviderStatus.STALE)

    m.load_environment_config("development")
    assert m.last_error is None and m.debug_info()["flags_file"] is None
    assert live.last_error is not None and "flags file disappeared" in str(live.last_error)
    assert client.get_provider_status() is ProviderStatus.STALE
    assert m.flags.is_enabled("beta", USER) is True

    (config_dir / "flags.yaml").write_text(GOOD)
    assert m.reload() is True
    assert wait_for(lambda: client.get_provider_status() is ProviderStatus.READY)
    assert live.last_error is None and live.documents["rejected"] == 1


# -- every order of edits and readers ----------------------------------------------------

_STEPS = st.lists(
    st.tuples(
        st.sampled_from(["bad_a", "bad_b", "good", "back", "empty", "gone", "dir"]),
        st.sampled_from([("config",), ("dynamic",), ("config", "dynamic"), ("dynamic", "config")]),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(steps=_STEPS)
@example(steps=[("bad_a", ("dynamic", "config")), ("back", ("config",))])
@example(steps=[("bad_a", ("config", "dynamic")), ("bad_a", ("config",)), ("good", ("config",))])
@example(steps=[("gone", ("dynamic", "config")), ("gone", ("config",)), ("back", ("dynamic",))])
@example(
    steps=[("empty", ("config", "dynamic")), ("dir", ("dynamic", "config")), ("good", ("config",))]
)
def test_the_set_stands_refused_exactly_while_the_file_holds_refused_bytes(tmp_path, steps):
    """Any sequence of flags file edits (two bad documents, the file emptied, deleted
    or replaced by a directory, a new good one, the live one put back), each read by
    the configuration manager's ``reload()``, the dynamic-config manager's, or both in
    either order: the set stands refused, and the provider is STALE, exactly while the
    file holds bytes that do not compile, none, or is not there to read;
    the set counts each refusal once, the dynamic-config manager audits each once, and
    the configuration manager audits each refused reload of its own (an explicit
    ``reload()`` is reported each time) and each refusal it was told of first once."""
    from cfgcore.dynamic_config import DynamicConfigurationManager

    run = tmp_path / f"run{next(_domains)}"
    config = run / "config"
    config.mkdir(parents=True)
    (config / "base.yaml").write_text("app: {name: demo}\n")
    (config / "development.yaml").write_text("environment: development\n")
    (config / "flags.yaml").write_text(GOOD)
    audit = run / "audit.jsonl"
    m = ConfigurationManager(str(config), environ={}, record_usage=False, audit_log=str(audit))
    m.load_environment_config("development")
    d = DynamicConfigurationManager(flags_file=config / "flags.yaml", record_usage=False)
    live = m._flags.live()
    assert d._live is live
    domain = f"cfgcore-config-flags-model-{next(_domains)}"
    api.set_provider_and_wait(CfgcoreProvider(m.flags), domain=domain)
    client = api.get_client(domain)
    readers = {"config": m.reload, "dynamic": d.reload}
    bad = {
        "bad_a": BAD,
        "bad_b": FLAGS.format(serve="perhaps"),
        "empty": "",
        "gone": "<gone>",
        "dir": "<dir>",
    }
    model = {"live": GOOD, "refused": None, "first": None, "rejected": 0, "config": 0}
    goods = itertools.count()
    try:
        for edit, order in steps:
            path = config / "flags.yaml"
            _remove(path)
            if edit == "gone":
                text = "<gone>"
            elif edit == "dir":
                text = "<dir>"
                path.mkdir()
            else:
                if edit == "good":
                    text = GOOD + f"# good {next(goods)}\n"
                else:
                    text = model["live"] if edit == "back" else bad[edit]
                path.write_text(text)
            for reader in order:
                readers[reader]()
                if text == model["live"]:
                    model["refused"] = None
                elif text in bad.values():
                    if model["refused"] != text:
                        model.update(refused=text, first=reader, rejected=model["rejected"] + 1)
                        model["config"] += 1  # (its own refusal, or told by the set)
                    elif reader == "config" and model["first"] == "config":
                        model["config"] += 1  # an explicit reload() refused again
                else:
                    model.update(live=text, refused=None)
            refused = model["refused"] is not None
            assert (live.last_error is not None) is refused
            want = ProviderStatus.STALE if refused else ProviderStatus.READY
            assert wait_for(lambda want=want: client.get_provider_status() is want)
            assert live.documents["rejected"] == model["rejected"]
            assert len(_audited(d.audit.path, "error")) == model["rejected"]
            assert len(_audited(audit, "error")) == model["config"]
    finally:
        api.set_provider(InMemoryProvider({}), domain=domain)
        d.close()
        m.close()
