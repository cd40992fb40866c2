"""The examples of the operator pages (docs/*.md) run as written and show what cfgcore does.

Each test reads its example from the page, as tests/test_readme.py does for README's
blocks, so a page that drifts from the code fails here. (docs/flags.md's `prerequisite`
example and its rounding warning are run by tests/test_readme.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.dynamic_config import ABTestConfiguration
from cfgcore.engine import engine_class, snapshot_from_dict
from cfgcore.errors import ConfigError
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.observability.prometheus import exposition
from cfgcore.runtime.redis_url import parse_redis_url
from cfgcore.runtime.signing import FleetKeys
from tests.conftest import copy_bundled_config
from tests.test_obs3_watcher_stuck import _blocking_transform, _Hang, _stuck_reason, _write_marker
from tests.waiting import wait_for, wait_for_async

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _blocks(page: str, lang: str = "") -> list[str]:
    """The fenced blocks of ``page`` opened with ```` ```lang ```` exactly."""
    return re.findall(rf"^```{re.escape(lang)}\n(.*?)^```", page, re.S | re.M)


def _indented(page: str) -> list[str]:
    """The page's indented (four-space) example lines, outside fenced blocks."""
    return re.findall(r"^    (\S.*)$", re.sub(r"^```.*?^```", "", page, flags=re.S | re.M), re.M)


def _shown_as_pattern(shown: str, placeholders: dict[str, str]) -> re.Pattern[str]:
    """``shown`` as a pattern: each of ``placeholders`` (text the page shows -> a
    pattern) stands for what a run prints there, and `...` for any text."""
    pieces = [shown]
    for text, stands_for in [*placeholders.items(), ("...", ".*")]:
        assert text == "..." or any(text in piece for piece in pieces[::2]), (text, shown)
        split = [piece.split(text) if i % 2 == 0 else [piece] for i, piece in enumerate(pieces)]
        pieces = []
        for i, parts in enumerate(split):
            if i % 2:
                pieces += parts
                continue
            for j, part in enumerate(parts):
                pieces += [part, stands_for] if j < len(parts) - 1 else [part]
    return re.compile("".join(re.escape(p) if i % 2 == 0 else p for i, p in enumerate(pieces)))


def _section(page: str, heading: str) -> str:
    start = page.index(heading)
    end = page.find("\n## ", start + len(heading))
    return page[start : end if end != -1 else len(page)]


# -- docs/configuration.md ------------------------------------------------------------------


def test_configuration_environ_mapping_reads_no_env_file(tmp_path, monkeypatch):
    """ ".env files": a manager given `environ=` reads no `.env` file, neither the one
    beside the configuration directory nor one `CFGCORE_ENV_FILE` in the mapping names;
    without `environ=` the file beside it fills `${VAR}`."""
    page = _page("configuration.md")
    assert "A manager given `environ=` reads no `.env` file" in re.sub(r"\s+", " ", page)
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text("app:\n  region: ${DOCS_REGION:-nowhere}\n")
    (config / "staging.yaml").write_text("{}\n")
    (tmp_path / ".env").write_text("DOCS_REGION=eu-west\n")
    (tmp_path / ".env").chmod(0o600)
    named = {"CFGCORE_ENV_FILE": str(tmp_path / "missing.env")}
    for environ in ({}, named):
        manager = ConfigurationManager(config, environ=environ)
        try:
            assert manager.load_environment_config("staging")["app"]["region"] == "nowhere"
        finally:
            manager.close()
    monkeypatch.delenv("DOCS_REGION", raising=False)
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    manager = ConfigurationManager(config)
    try:
        assert manager.load_environment_config("staging")["app"]["region"] == "eu-west"
    finally:
        manager.close()


def test_configuration_lifespan_aclose_delivers_the_last_change(tmp_path):
    """ "Async change listeners and closing": the lifespan as written; a reload the
    watcher made just before shutdown reaches the async listener before the loop ends."""
    section = _section(_page("configuration.md"), "## Async change listeners and closing")
    (block,) = _blocks(section, "python")
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text("app:\n  region: eu\n")
    (config / "staging.yaml").write_text("{}\n")
    called: list[str] = []
    got: list[str] = []

    async def notify_monitoring(event):
        called.append(event.config_path)
        await asyncio.sleep(0.2)  # still running when the app shuts down
        got.append(event.config_path)

    namespace = {"contextlib": contextlib, "ConfigurationManager": ConfigurationManager,
                 "notify_monitoring": notify_monitoring}  # fmt: skip
    exec(block.replace('"config"', repr(str(config))), namespace)

    async def app_run():
        async with namespace["lifespan"](None):
            (config / "base.yaml").write_text("app:\n  region: us\n")
            assert await wait_for_async(lambda: called)

    asyncio.run(app_run())
    assert got == ["app.region"]


# -- docs/flags.md --------------------------------------------------------------------------


def test_flags_error_line_is_the_one_a_refused_file_gives(impl, tmp_path, monkeypatch):
    """ "Errors name the file, the line and the key path": the line shown is the error of
    a file whose rule serves a variant the flag does not have, on its 7th line."""
    section = _section(_page("flags.md"), "## Errors name the file")
    (shown,) = [b.strip() for b in _blocks(section)]
    found = re.fullmatch(
        r"flags\.yaml:7: flags\.(\w+)\.rules\[0\]\.serve: unknown variant '(\w+)' "
        r"\(variants: (\w+), (\w+)\)",
        shown,
    )
    assert found is not None, shown
    flag, missing, on, off = found.groups()
    monkeypatch.chdir(tmp_path)
    Path("flags.yaml").write_text(
        "version: 1\n"
        "flags:\n"
        f"  {flag}:\n"
        f'    variants: {{"{on}": true, "{off}": false}}\n'
        "    rules:\n"
        "      - when: {attr: beta, eq: true}\n"
        f"        serve: {missing}\n"  # line 7
        f'    default: "{off}"\n'
    )
    with pytest.raises(ConfigError) as info:
        engine_class(impl).from_file("flags.yaml")
    assert shown in str(info.value).splitlines()


# -- docs/observability.md ------------------------------------------------------------------


def test_observability_shortened_label_is_exported_as_the_page_shows(impl, fresh_evaluation_totals):
    """The exported line of a flag whose key is over the bound: its first bytes, then
    `...#` and 16 hex digits of the BLAKE2b hash of the whole key, 1024 bytes in all."""
    section = _section(_page("observability.md"), "## Label values")
    (shown,) = [b.strip() for b in _blocks(section)]
    found = re.fullmatch(
        r'(cfgcore_flag_evaluations_total\{flag=")<the key\'s first (\d+) bytes>'
        r'(\.\.\.#)[0-9a-f]{16}(",reason="STATIC",variant="on"\} 1\.0)',
        shown,
    )
    assert found is not None, shown
    head, first, mark, tail = found.groups()
    assert int(first) + len(mark) + 16 == 1024
    key = "checkout_" + "k" * 5000
    engine = engine_class(impl).from_snapshot(
        snapshot_from_dict({"version": 1, "flags": {key: {"default": "on"}}})
    )
    engine.evaluate(key, {})
    digest = hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
    expected = f"{head}{key[: int(first)]}{mark}{digest}{tail}"
    assert expected in exposition().decode().splitlines()


def test_observability_alerts_block_exports_the_ratio_the_page_gives(tmp_path, capsys):
    """The `alerts:` block, added to a configuration as written, is exported by
    `cfgcore alerts export` as the ratio of the page's PromQL example."""
    section = _section(_page("observability.md"), "## Alerting before readiness flips")
    (promql,) = [b.strip() for b in _blocks(section)]
    (block,) = _blocks(section, "yaml")
    ratio, threshold = promql.rsplit(" > ", 1)
    config = copy_bundled_config(tmp_path / "config")
    base = config / "base.yaml"
    tree = yaml.safe_load(base.read_text())
    tree["alerts"] = yaml.safe_load(block)["alerts"]
    base.write_text(yaml.safe_dump(tree, sort_keys=False))
    assert main(["alerts", "export", "--config-dir", str(config), "-e", "staging"]) == 0
    rules = yaml.safe_load(capsys.readouterr().out)
    (rule,) = [
        r for g in rules["groups"] for r in g["rules"] if r["alert"] == "file_watcher_stalling"
    ]
    assert ratio in rule["expr"] and rule["expr"].endswith(f" > {threshold}")
    assert rule["labels"]["severity"] == "warning"


def _stall_bounds() -> dict[str, float]:
    out = {}
    for line in exposition().decode().splitlines():
        if line.startswith("cfgcore_config_watcher_stall_bound_seconds{"):
            watcher = re.search(r'watcher="([^"]+)"', line)
            assert watcher is not None
            out[watcher.group(1)] = float(line.rsplit(" ", 1)[1])
    return out


def test_observability_stall_after_example_runs_as_written(tmp_path):
    """The two calls of the `stall_after` example, run as written on a configuration
    manager and a dynamic-config manager: each watcher exports the bound it was given."""
    section = _section(_page("observability.md"), "## File watchers that are alive but stuck")
    (block,) = _blocks(section, "python")
    lines = [line for line in block.splitlines() if line.strip()]
    assert len(lines) == 2 and lines[1].startswith("await dynamic.")
    config = copy_bundled_config(tmp_path / "config", flags=True)
    manager = ConfigurationManager(config, environ={})
    dynamic = DynamicConfigurationManager(config / "flags.yaml", state_dir=tmp_path / "state")

    async def run() -> None:
        # `await` is only valid in a coroutine: the block's lines run in one, as written
        scope = {"manager": manager, "dynamic": dynamic}
        exec(
            compile(f"async def _example():\n    {lines[0]}\n    {lines[1]}\n", "example", "exec"),
            scope,
        )
        await scope["_example"]()
        try:
            assert await wait_for_async(
                lambda: _stall_bounds().get("cfgcore-dynamic-flags") == 10.0
            ), _stall_bounds()
            assert _stall_bounds().get("cfgcore-hot-reload") == 120.0
        finally:
            await dynamic.stop_file_watching()

    try:
        manager.load_environment_config("staging")
        asyncio.run(run())
    finally:
        manager.close()
        dynamic.close()


def test_observability_stuck_watcher_line_is_the_one_health_gives(tmp_path):
    """ "File watchers that are alive but stuck": the `freshness` line the page shows is
    the reason `health()` gives for a hot-reload thread blocked past its `stall_after`
    (the directory and the seconds aside)."""
    section = _section(_page("observability.md"), "## File watchers that are alive but stuck")
    shown = _blocks(section)[0].strip()
    pattern = _shown_as_pattern(shown, {
        "/etc/app/config": "(?P<where>.+?)",
        "47 s ago": r"\d+ s ago",
        "bound 30 s": r"bound (?P<bound>[\d.]+) s",
    })  # fmt: skip
    config = copy_bundled_config(tmp_path / "config", flags=True)
    hang = _Hang("hang-" + uuid.uuid4().hex)
    manager = ConfigurationManager(str(config), environ={}, record_usage=False)
    try:
        manager.load_environment_config("staging")
        _blocking_transform(manager, hang)
        manager.enable_hot_reload(poll_interval=0.1, stall_after=1.5)
        _write_marker(config, hang.marker)
        assert hang.entered.wait(30), "the watcher never reloaded the file"
        assert wait_for(lambda: _stuck_reason(manager.health()) is not None, timeout=30)
        reason = _stuck_reason(manager.health())
        found = pattern.fullmatch(reason)
        assert found is not None, (shown, reason)
        assert str(config) in found.group("where") and found.group("bound") == "1.5"
    finally:
        hang.release.set()
        manager.close()


# -- docs/experiments.md --------------------------------------------------------------------


def test_experiments_ingesting_the_same_input_twice_prints_what_the_page_shows(
    tmp_path, monkeypatch, capsys, no_access_policy
):
    """ "Ingesting the same input twice", as the page tells it: a file whose unusable
    line was fixed in place and ingested whole again adds only that line (the summary
    shown); an event given again with other content is an unusable line naming both
    values; content without ids ingested again is refused as shown, exit status 3."""
    section = _section(_page("experiments.md"), "## Ingesting the same input twice")
    summary, again = _indented(section)
    other = re.search(
        r"`(batch\.jsonl:3: event_id e2: given before with other content[^`]*)`",
        re.sub(r"\s+", " ", section),
    )
    assert other is not None
    for var in list(os.environ):
        if var.startswith(("CFGCORE", "CONFIG_", "XDG_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    monkeypatch.chdir(tmp_path)
    state = ["--state-dir", str(tmp_path / "state")]

    def run(*argv: str) -> tuple[int, str]:
        code = main([*argv, *state])
        out = capsys.readouterr()
        return code, out.out + out.err

    assert run("experiment", "create", "checkout", "--split", "control=50,green=50",
               "--metric", "revenue", "--start")[0] == 0  # fmt: skip
    events = [{"test": "checkout", "user": f"u{i}", "metric": "revenue", "value": 1.0,
               "event_id": f"e{i}"} for i in range(1, 6)]  # fmt: skip
    broken = [*events[:4], {**events[4], "value": "n/a"}]
    batch = Path("batch.jsonl")
    batch.write_text("".join(json.dumps(e) + "\n" for e in broken))
    code, text = run("experiment", "ingest", str(batch))
    assert code == 1 and "batch.jsonl:5:" in text, text
    batch.write_text("".join(json.dumps(e) + "\n" for e in events))  # fixed in place
    code, text = run("experiment", "ingest", str(batch))
    assert code == 0, text
    (line,) = [ln for ln in text.splitlines() if ln.startswith("ingested ")]
    assert _shown_as_pattern(summary, {}).fullmatch(line), (summary, line)

    # the same event id with another value: the logs keep the first
    batch.write_text(
        "".join(json.dumps(e) + "\n" for e in [*events[:2], {**events[1], "value": 7.0}])
    )
    code, text = run("experiment", "ingest", str(batch))
    assert code == 1, text
    shown = other.group(1)
    assert shown.endswith("; ...")
    assert f"cfgcore: error: {shown[: -len(' ...')]}" in text, (shown, text)

    # lines without ids: the same content again is refused, exit status 3
    plain = Path("plain") / "batch.jsonl"
    plain.parent.mkdir()
    plain.write_text("".join(
        json.dumps({k: v for k, v in e.items() if k != "event_id"}) + "\n" for e in events
    ))  # fmt: skip
    assert run("experiment", "ingest", str(plain))[0] == 0
    code, text = run("experiment", "ingest", str(plain))
    assert code == 3, text
    pattern = _shown_as_pattern(again, {
        "2026-12-04T23:21:57Z": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ",
        "/jobs/batch.jsonl": re.escape(str(plain.resolve())),
        "120": r"\d+",
        "80": r"\d+",
        "batch.jsonl: already": re.escape(str(plain)) + ": already",
    })  # fmt: skip
    assert pattern.fullmatch(text.strip()), (again, text)


def test_experiments_log_lines_are_written_as_the_page_shows(tmp_path, no_access_policy):
    """The exposure line of "A test deleted and created again" and the metric event
    line of "Event ids: one event, counted once" are what a manager writes, byte for
    byte but for the variant the user gets and the times."""
    page = _page("experiments.md")
    (exposure,) = re.findall(r"`(\{\"test\":\"checkout\"[^`]*)`", page)
    (event,) = _indented(_section(page, "## Event ids"))
    varies = {
        '"ts":1764547200.5': r'"ts":[0-9.]+',
        '"variant":"green"': '"variant":"(?:control|green)"',
    }
    start = datetime.now(timezone.utc)
    dynamic = DynamicConfigurationManager(state_dir=tmp_path / "state", record_usage=False)
    try:
        test = ABTestConfiguration(
            test_name="checkout", description="", start_date=start,
            end_date=start + timedelta(days=14), traffic_split={"control": 50, "green": 50},
            configurations={"control": {}, "green": {}}, success_metrics=["revenue"],
        )  # fmt: skip
        assert dynamic.create_ab_test(test), dynamic.last_error
        assert dynamic.get_ab_test_variant("checkout", {"user_id": "u1"}) is not None
        assert dynamic.record_metric(
            "checkout", "revenue", 42.0, user_id="u1", event_id="order-8812"
        )
        dynamic.flush()
    finally:
        dynamic.close()
    (written,) = (tmp_path / "state" / "flags.exposures.jsonl").read_text().splitlines()
    shown = _shown_as_pattern(exposure, {**varies, '"run":1764540000.25': '"run":null'})
    assert shown.fullmatch(written), (exposure, written)
    (written,) = (tmp_path / "state" / "flags.metrics.jsonl").read_text().splitlines()
    assert _shown_as_pattern(event, varies).fullmatch(written), (event, written)


# -- docs/fleet.md --------------------------------------------------------------------------


def test_fleet_store_urls_of_the_page_are_accepted():
    """Every store URL the page gives in a block (password files, Sentinels, TLS) is a
    URL cfgcore takes: none is refused at start for its options."""
    urls = [
        line.strip()
        for block in _blocks(_page("fleet.md"))
        for line in block.splitlines()
        if "://" in line
    ]
    assert len(urls) >= 4
    for url in urls:
        parsed = parse_redis_url(url)
        assert parsed.namespace == "music", url


def test_fleet_keygen_example_prints_the_verification_key_followers_take(tmp_path, capsys):
    """ "Signed documents": `cfgcore fleet keygen --signing-key-file FILE --id 2026q4`
    prints `2026q4:...`, the value of CFGCORE_FLEET_VERIFY_KEYS, and writes the file
    CFGCORE_FLEET_SIGNING_KEY_FILE names."""
    section = _section(_page("fleet.md"), "## Signed documents")
    (console,) = _blocks(section, "console")
    commands = [line[2:].split("#")[0].strip() for line in console.splitlines() if line[:2] == "$ "]
    keygen, signing, verify = commands
    argv = keygen.split()
    assert argv[:3] == ["cfgcore", "fleet", "keygen"]
    at = argv.index("--signing-key-file") + 1
    # the writers' variable names the file keygen wrote
    assert signing == f"export CFGCORE_FLEET_SIGNING_KEY_FILE={argv[at]}"
    key_file = tmp_path / Path(argv[at]).name
    argv[at] = str(key_file)
    kid = argv[argv.index("--id") + 1]
    assert main(argv[1:]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith(f"{kid}:")
    shown = re.fullmatch(r"export (CFGCORE_FLEET_VERIFY_KEYS)=(\S+)", verify)
    assert shown is not None and shown.group(2).startswith(f"{kid}:")
    keys = FleetKeys.from_environ(
        {"CFGCORE_FLEET_SIGNING_KEY_FILE": str(key_file), shown.group(1): printed}
    )
    assert keys.signs and keys.verifies
