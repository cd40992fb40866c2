"""The examples of the operator pages (docs/*.md) run as written and show what cfgcore does.

Each test reads its example from the page, as tests/test_readme.py does for README's
blocks, so a page that drifts from the code fails here. (docs/flags.md's `prerequisite`
example and its rounding warning are run by tests/test_readme.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import pytest
import yaml

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.engine import engine_class, snapshot_from_dict
from cfgcore.errors import ConfigError
from cfgcore.experiments.dynamic import DynamicConfigurationManager
from cfgcore.observability.prometheus import exposition
from cfgcore.runtime.redis_url import parse_redis_url
from cfgcore.runtime.signing import FleetKeys
from tests.conftest import copy_bundled_config
from tests.waiting import wait_for_async

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _blocks(page: str, lang: str = "") -> list[str]:
    """The fenced blocks of ``page`` opened with ```` ```lang ```` exactly."""
    return re.findall(rf"^```{re.escape(lang)}\n(.*?)^```", page, re.S | re.M)


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
