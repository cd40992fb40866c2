"""What README.md states in its prose holds: the lists it calls complete are complete, the
numbers it gives are the code's, and the short examples inside sentences run as written.

The fenced blocks and inline `cfgcore ...` commands are run by tests/test_readme.py,
tests/test_audit_readme_examples.py and tests/test_readme_cli.py; this file covers what
the sentences around them say.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import typing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest

import cfgcore

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def text() -> str:
    return README.read_text(encoding="utf-8")


def between(start: str, end: str) -> str:
    page = text()
    i = page.index(start)
    return page[i : page.index(end, i)]


def prose() -> str:
    """The README without its fenced blocks, whitespace collapsed."""
    return " ".join(re.sub(r"```.*?```", "", text(), flags=re.S).split())


# -- the lists README calls complete --------------------------------------------------------


def test_the_list_of_subcommands_names_every_subcommand():
    """ "Its subcommands:" lists the command line; it left out `retire` (docs/fleet.md's
    way to delete a namespace no process serves)."""
    from cfgcore.cli import build_parser

    part = between("Its subcommands:", "It is made for scripts:")
    named = {re.split(r"[\s|]", span)[0] for span in re.findall(r"`([^`]+)`", part)}
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert sorted(set(sub.choices) - named) == []


def variables_read_by_cfgcore() -> set[str]:
    """Every ``CFGCORE_*`` setting the package's source names as a literal."""
    package = Path(cfgcore.__file__).parent
    found: set[str] = set()
    for path in package.rglob("*.py"):
        source = path.read_text("utf-8")
        found |= set(re.findall(r"[\"'](CFGCORE_[A-Z0-9][A-Z0-9_]*[A-Z0-9])[\"']", source))
    return found


def test_the_environment_variable_table_names_every_variable_cfgcore_reads():
    """`cfgcore --help` sends readers to "the full table" of README.md; it lacked the
    secret, access-policy and audit settings that later sections describe."""
    table = between("### Environment variables", "\n\nValues for")
    rows = set(re.findall(r"^\| `?([^|]*)\|", table, re.M))
    listed = {name for row in rows for name in re.findall(r"CFGCORE_[A-Z0-9_]*[A-Z0-9]", row)}
    read = variables_read_by_cfgcore()
    assert len(read) > 20, read  # the scan found the package's settings
    assert sorted(read - listed) == []


# -- numbers the prose gives ----------------------------------------------------------------


def test_the_context_key_bound_stated_is_each_importers():
    """The keys `context()` derives up front before it returns a mapping that derives
    the rest: GrowthBook's bound and flagd's differ, and the text gave one number."""
    from cfgcore.interop import flagd, growthbook

    found = re.search(
        r"For a context whose nested objects would derive more than ([\d,]+) keys \(([\d,]+) for"
        r" flagd;",
        prose(),
    )
    assert found is not None
    assert int(found.group(1).replace(",", "")) == growthbook.MAX_CONTEXT_KEYS
    assert int(found.group(2).replace(",", "")) == flagd.MAX_CONTEXT_KEYS


def test_track_metric_takes_the_event_ids_the_readme_gives(tmp_path, impl):
    """`track` passes the details' `event_id`, "text or an integer of 1 to 256
    characters, as for `record_metric(..., event_id=)`", to `track_metric`: its
    signature said `str | None`, so a type checker refused the integer it takes."""
    from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
    from cfgcore.engine import engine_class

    assert "text or an integer of 1 to 256 characters" in prose()
    hints = typing.get_type_hints(DynamicConfigurationManager.track_metric)
    assert (
        hints["event_id"]
        == typing.get_type_hints(DynamicConfigurationManager.record_metric)["event_id"]
    )
    assert int in typing.get_args(hints["event_id"])

    now = datetime.now(timezone.utc)
    engine = engine_class(impl).from_snapshot({"flags": {}})
    manager = DynamicConfigurationManager(state_dir=tmp_path / "state", engine=engine)
    try:
        assert manager.create_ab_test(
            ABTestConfiguration(
                test_name="exp", description="t", start_date=now - timedelta(days=1),
                end_date=now + timedelta(days=1), traffic_split={"control": 50.0, "b": 50.0},
                configurations={"control": {}, "b": {}}, success_metrics=["ctr"],
            )
        )  # fmt: skip
        user = {"user_id": "u1"}
        manager.get_ab_test_variant("exp", user)
        assert manager.track_metric("exp", "ctr", 1.0, user_context=user, event_id=8812)
        assert not manager.track_metric("exp", "ctr", 1.0, user_context=user, event_id=10**300)
        manager.metrics.flush()
        logged = Path(manager.metrics.path).read_bytes().split()
        lines = [msgspec.json.decode(line) for line in logged]
        assert [line["event_id"] for line in lines] == ["8812"]
    finally:
        manager.close()


# -- examples inside sentences --------------------------------------------------------------


def test_format_path_example_gives_what_the_text_says():
    from cfgcore.config.tree import format_path, parse_path

    found = re.search(r"`format_path\(\(\"a\", '(.*?)'\)\)` is `(.*?)`", prose())
    assert found is not None
    segment, shown = found.group(1), found.group(2)
    assert format_path(("a", segment)) == shown
    assert parse_path(shown) == ("a", segment)


def test_messagepack_duplicate_key_message_is_the_one_shown(tmp_path, impl):
    """The duplicate key the text quotes, in the document it describes: a variant `on`
    written twice in flag `checkout` of `flags.msgpack`."""
    from cfgcore.engine import engine_class

    shown = r"\(`(flags\.msgpack: flags\.checkout\.variants\.on: duplicate key .*?)`\)"
    found = re.search(shown, prose())
    assert found is not None
    enc = msgspec.msgpack.encode
    variants = b"\x82" + enc("on") + enc(True) + enc("on") + enc(False)
    flag = b"\x82" + enc("variants") + variants + enc("default") + enc("on")
    document = b"\x81" + enc("flags") + b"\x81" + enc("checkout") + flag
    (tmp_path / "flags.msgpack").write_bytes(document)
    with pytest.raises(cfgcore.SnapshotError) as caught:
        engine_class(impl).from_file(tmp_path / "flags.msgpack")
    assert str(caught.value).replace(str(tmp_path) + "/", "") == found.group(1)


def test_yaml_scalars_read_as_the_text_says(tmp_path, monkeypatch):
    """ "`12:30`, `0644`, `01234` and `1_000` are strings ...; `0o17`, `0x1F` and `1e3`
    are numbers. This applies to configuration files as well." """
    from cfgcore import ConfigurationManager
    from cfgcore.engine import Engine

    found = re.search(
        r"`12:30`, `0644`, `01234` and `1_000` are strings \(YAML 1\.1 reads 750, 420, 668 and"
        r" 1000\); `0o17`, `0x1F` and `1e3` are numbers\. This applies to configuration files as"
        r" well\.",
        prose(),
    )
    assert found is not None
    scalars = ["12:30", "0644", "01234", "1_000", "0o17", "0x1F", "1e3"]
    expected = ["12:30", "0644", "01234", "1_000", 15, 31, 1000.0]
    flag = "  f{}:\n    variants:\n      a: {}\n    default: a\n"
    doc = "".join(flag.format(i, s) for i, s in enumerate(scalars))
    (tmp_path / "flags.yaml").write_text(f"flags:\n{doc}")
    engine = Engine.from_file(tmp_path / "flags.yaml")
    served = [engine.value(f"f{i}", {}) for i in range(len(scalars))]
    assert served == expected and [type(v) for v in served] == [type(v) for v in expected]

    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text(
        "y:\n" + "".join(f"  k{i}: {s}\n" for i, s in enumerate(scalars))
    )
    (config / "development.yaml").write_text("{}\n")
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    for name in ("CONFIG_ENVIRONMENT", "CFGCORE_ENVIRONMENT", "CFGCORE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    manager = ConfigurationManager(str(config))
    try:
        got = [manager.get(f"y.k{i}") for i in range(len(scalars))]
    finally:
        manager.close()
    assert got == expected and [type(v) for v in got] == [type(v) for v in expected]


@pytest.mark.parametrize("bad", [True, 0, -3, 2.5, "100", float("nan")])
def test_max_tracked_users_refused_naming_the_argument_given(tmp_path, bad):
    """`max_tracked_users=N` on the manager, as README names it: a value it refuses is
    a ValueError naming `max_tracked_users`, raised before anything is opened. It named
    `max_users`, an argument of an internal class the caller never wrote."""
    from cfgcore.dynamic_config import DynamicConfigurationManager

    assert "`max_tracked_users=N` on the manager" in prose()
    with pytest.raises(ValueError, match=r"^max_tracked_users must be") as caught:
        DynamicConfigurationManager(state_dir=tmp_path / "state", max_tracked_users=bad)
    assert "max_users" not in str(caught.value).replace("max_tracked_users", "")
    assert not (tmp_path / "state").exists()  # refused before the store was opened


def test_max_tracked_users_takes_a_whole_number_by_its_value(tmp_path):
    from cfgcore.dynamic_config import DynamicConfigurationManager

    manager = DynamicConfigurationManager(state_dir=tmp_path / "state", max_tracked_users=5.0)
    try:
        assert manager.metrics.max_users == 5
    finally:
        manager.close()


def test_the_manager_flushes_its_writers_as_per_request_says(tmp_path, impl):
    """README: "Exposures and `record_metric` events go to a background writer (`flush()`/
    `close()` write everything": the manager had `close()` but no `flush()`, so the
    logs could be written only by closing it (or through its internal writers)."""
    from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
    from cfgcore.engine import engine_class

    assert "(`flush()`/`close()` write everything;" in prose()
    now = datetime.now(timezone.utc)
    engine = engine_class(impl).from_snapshot({"flags": {}})
    manager = DynamicConfigurationManager(state_dir=tmp_path / "state", engine=engine)
    try:
        assert manager.create_ab_test(
            ABTestConfiguration(
                test_name="exp", description="t", start_date=now - timedelta(days=1),
                end_date=now + timedelta(days=1), traffic_split={"control": 50.0, "b": 50.0},
                configurations={"control": {}, "b": {}}, success_metrics=["ctr"],
            )
        )  # fmt: skip
        for n in range(3):
            user = {"user_id": f"u{n}"}
            manager.get_ab_test_variant("exp", user)
            assert manager.record_metric("exp", "ctr", 1.0, user_context=user)
        assert manager.flush() is True
        exposures = (tmp_path / "state" / "flags.exposures.jsonl").read_bytes().split()
        metrics = (tmp_path / "state" / "flags.metrics.jsonl").read_bytes().split()
        assert len(exposures) == 3 and len(metrics) == 3
        # and it goes on recording, unlike close()
        assert manager.record_metric("exp", "ctr", 1.0, user_context={"user_id": "u0"})
        assert manager.flush(timeout=5)
        assert len((tmp_path / "state" / "flags.metrics.jsonl").read_bytes().split()) == 4
        with pytest.raises(ValueError, match="timeout"):
            manager.flush(timeout=float("nan"))
    finally:
        manager.close()


def test_the_extras_table_names_each_extras_packages():
    """ "Optional extras add features": each row names what its extra installs (the
    peer SDKs of `bench` by their products' names). The `test` row left out
    pytest-xdist, which the README's own test command (`-n auto`) needs."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    pyproject = ROOT / "pyproject.toml"
    if not pyproject.is_file():
        pytest.skip("pyproject.toml is not beside README.md (an installed copy)")
    extras = tomllib.loads(pyproject.read_text("utf-8"))["project"]["optional-dependencies"]
    table = between("| extra | installs | enables |", "\n\n")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(\w+)` \| ([^|]*) \|", table, re.M)}
    assert set(rows) == set(extras)
    missing = []
    for extra, requirements in extras.items():
        if extra == "bench":
            continue
        for requirement in requirements:
            name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
            if name == "cfgcore":  # other extras, named by their own names
                inner = re.search(r"\[(.*)\]", requirement).group(1).split(",")
                missing += [f"{extra}: {e}" for e in inner if f"`{e}`" not in rows[extra]]
            elif not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", rows[extra], re.I):
                missing.append(f"{extra}: {name}")
    assert missing == []


def _calls_shown() -> dict[str, typing.Any]:
    """Calls the prose shows with their arguments -> what they call."""
    from cfgcore.config.tree import format_path
    from cfgcore.dynamic_config import DynamicConfigurationManager
    from cfgcore.experiments.analysis import ExperimentReport
    from cfgcore.interop import flagd, growthbook, unleash
    from cfgcore.migration import LegacyConfigMigrator
    from cfgcore.observability.evaluations import EvaluationTotals
    from cfgcore.runtime import policy

    calls: dict[str, typing.Any] = {
        "ExperimentReport.plot(path)": ExperimentReport.plot,
        "flagd.resolve(engine, key, ctx, default)": flagd.resolve,
        "flagd.context(targeting_key, attributes)": flagd.context,
        "flagd.context(..., bucketing=engine)": flagd.context,
        'flagd.to_snapshot(..., on_error="keep")': flagd.to_snapshot,
        "flagd.bucketing_attributes(snapshot)": flagd.bucketing_attributes,
        "flagd.from_snapshot(snapshot)": flagd.from_snapshot,
        'cfgcore.interop.flagd.to_snapshot(doc, fractional="v3")': flagd.to_snapshot,
        "growthbook.context(attributes, forced_variations={key: index})": growthbook.context,
        "growthbook.context(..., elements=engine)": growthbook.context,
        "growthbook.element_attributes(snapshot)": growthbook.element_attributes,
        "cfgcore.interop.growthbook.to_snapshot(features, saved_groups=...)": (
            growthbook.to_snapshot
        ),
        "cfgcore.interop.unleash.to_snapshot(payload)": unleash.to_snapshot,
        'unleash.to_snapshot(..., on_error="skip")': unleash.to_snapshot,
        "unleash.context(ctx, engine=engine)": unleash.context,
        "LegacyConfigMigrator(base=config_manager.config)": LegacyConfigMigrator,
        "EvaluationTotals(retain=...)": EvaluationTotals,
        "cfgcore.runtime.policy.set_policy(path)": policy.set_policy,
        "record_metric(..., event_id=)": DynamicConfigurationManager.record_metric,
        "delete_feature_flag(name)": DynamicConfigurationManager.delete_feature_flag,
        "enable_hot_reload(stall_after=...)": cfgcore.ConfigurationManager.enable_hot_reload,
        "start_file_watching(stall_after=...)": DynamicConfigurationManager.start_file_watching,
        "get_dynamic_config_manager(store=...)": DynamicConfigurationManager,
        "ConfigurationManager(..., flag_store=...)": cfgcore.ConfigurationManager,
        "ConfigurationManager(config_source=URL)": cfgcore.ConfigurationManager,
        'format_path(("a", \'b["c\'))': format_path,
    }
    if importlib.util.find_spec("openfeature") is not None:
        from cfgcore.openfeature import CfgcoreProvider

        calls["CfgcoreProvider(engine, context=fn)"] = CfgcoreProvider
        calls["CfgcoreProvider(engine, experiments=manager)"] = CfgcoreProvider
    return calls


def test_calls_shown_in_the_prose_match_the_signatures():
    """Each call the text shows names its positional arguments in the order the
    function takes them and only keywords it takes (`ExperimentReport.plot()` was
    shown without the path it requires)."""
    import ast
    import inspect

    spans = set(re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text(), flags=re.S)))
    wrong = []
    for shown, target in _calls_shown().items():
        assert shown in spans, shown  # still in the README as written here
        call = ast.parse(re.sub(r"=\)$", "=_)", shown.replace("...", "_")), mode="eval").body
        assert isinstance(call, ast.Call), shown
        params = inspect.signature(target).parameters
        if "kwargs" in params:  # get_dynamic_config_manager(**kwargs): the manager's
            continue
        names = [p for p in params if p != "self"]
        positional = [a.id if isinstance(a, ast.Name) else None for a in call.args]
        for i, name in enumerate(positional):
            if name not in (None, "_") and i < len(names) and name != names[i]:
                # a name standing for a value (the README's `doc`, `payload`) is fine
                # where the parameter has no other spelling in the text
                if name in params:
                    wrong.append(f"{shown}: argument {i} is {names[i]}, not {name}")
        required = [
            p.name for p in params.values()
            if p.name != "self" and p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]  # fmt: skip
        if "_" not in positional and len(call.args) < len(required):
            wrong.append(f"{shown}: needs {required}")
        wrong += [f"{shown}: no keyword {k.arg}" for k in call.keywords if k.arg not in params]
    assert wrong == []


def test_what_the_text_awaits_is_a_coroutine_and_what_it_calls_is_not():
    """Hot reload's methods as the text writes them: `await start_file_watching()` on
    both managers (the dynamic-config manager's was shown without `await`, and called
    so it only made a coroutine that never ran), `enable_hot_reload()` called."""
    import inspect

    from cfgcore.dynamic_config import DynamicConfigurationManager

    found = re.search(r"Hot reload \((.*?)\) reads the files", prose())
    assert found is not None
    spans = re.findall(r"`([^`]+)`", found.group(1))
    assert spans == [
        "enable_hot_reload()",
        "await start_file_watching()",
        "await start_file_watching()",
    ]
    assert not inspect.iscoroutinefunction(cfgcore.ConfigurationManager.enable_hot_reload)
    assert inspect.iscoroutinefunction(cfgcore.ConfigurationManager.start_file_watching)
    assert inspect.iscoroutinefunction(DynamicConfigurationManager.start_file_watching)


def test_the_flagd_testbed_scenario_count_is_the_number_run():
    """ "All N provider evaluation scenarios of the flagd testbed pass": N is what
    tests/test_openfeature_flagd_testbed.py runs. It said 243 after the suite had
    taken in selector.feature's scenarios too."""
    found = re.search(r"All ([\d,]+) provider evaluation scenarios of the flagd testbed", prose())
    assert found is not None
    testbed = pytest.importorskip("tests.test_openfeature_flagd_testbed")
    if not testbed.PICKLES:
        pytest.skip("../shared/conformance/flagd-testbed is not present")
    assert int(found.group(1).replace(",", "")) == len(testbed.PICKLES)
