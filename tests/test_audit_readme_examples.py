"""Every example in README.md runs as written, as a new user runs it.

Each ```python, ```bash and ```console block (and the YAML documents the text tells the
reader to use) is taken from README.md by the heading it sits under and its index there,
and run in a subprocess in a scratch directory: HOME and CFGCORE_STATE_DIR inside it, no
CONFIG_*/CFGCORE_* variables, and `cfgcore`/`python` on PATH meaning the cfgcore under
test. A block that depends on an earlier one (a flags.yaml, a config directory) gets what
the README tells the reader to have, by the README's own commands where it gives them.
The outputs the README shows (`# -> ...`, console transcripts) are asserted.

test_every_readme_block_is_covered keeps the list below equal to the README's blocks, so
a new example needs a test here (or a stated reason to skip it).
"""

from __future__ import annotations

import ast
import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.user_env import new_user_env

README = Path(__file__).resolve().parent.parent / "README.md"
TIMEOUT = 60

# (heading, language, index under that heading) -> the test that runs it, or why not.
COVERED = {
    (
        "Two commands",
        "bash",
        0,
    ): "test_two_commands_demo (the demo; the install is the suite's own)",
    ("Two commands", "bash", 1): "skip: the test suite itself (tests/test_readme.py checks it)",
    ("Installing", "bash", 0): "skip: an install from PyPI",
    ("Installing", "bash", 1): "skip: an install from a local wheelhouse",
    ("Building wheels", "bash", 0): "skip: builds and tests a wheel per CPython (minutes)",
    ("Using it", "python", 0): "test_using_it",
    ("Key paths, and keys that hold a dot", "yaml", 0): "test_key_paths_of_segments",
    ("Key paths, and keys that hold a dot", "python", 0): "test_key_paths_of_segments",
    ("A/B tests from the command line", "bash", 0): "test_ab_tests_from_the_command_line",
    ("Flag lifecycle: deleting and finding stale flags", "bash", 0): "test_flag_lifecycle",
    ("Flag lifecycle: deleting and finding stale flags", "console", 0): "test_flag_delete_refused",
    ("Running a fleet", "bash", 0): "test_fleet_watch_and_publish",
    ("Running a fleet", "bash", 1): "test_fleet_watch_and_publish",
    ("Flag files", "yaml", 0): "test_flag_file_example",
    ("Bucketing (reproducible in any language)", "", 0): "test_bucketing_formula",
    ("Importing flags from Unleash, flagd and GrowthBook", "python", 0): "test_unleash_import",
    ("OpenFeature", "python", 0): "test_openfeature_provider",
    ("OpenFeature", "python", 1): "test_openfeature_flagd_provider",
    ("Migrating a legacy configuration", "python", 0): "test_migration_api",
    ("Migrating a legacy configuration", "yaml", 0): "test_migrate_command",
    ("Migrating a legacy configuration", "bash", 0): "test_migrate_command",
    ("Observability: counters, hooks and debug mode", "python", 0): "test_counters_and_hooks",
    ("Observability: counters, hooks and debug mode", "python", 1): "test_counters_and_hooks",
    ("Encrypted values and secret files", "console", 0): "test_secrets_console",
    ("Who changed what, and who may", "yaml", 0): "test_access_policy_example",
    ("Who changed what, and who may", "yaml", 1): "test_actor_assume_example",
    ("A tamper-evident, bounded audit log", "console", 0): "test_audit_verify_console",
    ("Metrics and health", "python", 0): "skip: tests/test_readme.py runs it",
}


def readme_blocks() -> dict[tuple[str, str, int], str]:
    """Every fenced block, keyed by (nearest heading above it, language, index)."""
    blocks: dict[tuple[str, str, int], str] = {}
    heading = ""
    lines = README.read_text().splitlines(keepends=True)
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        elif line.startswith("```"):
            lang = line[3:].strip()
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            n = sum(1 for (h, g, _) in blocks if (h, g) == (heading, lang))
            blocks[(heading, lang, n)] = "".join(lines[i + 1 : j])
            i = j
        i += 1
    return blocks


def block(heading: str, lang: str, index: int = 0) -> str:
    return readme_blocks()[(heading, lang, index)]


def section(heading: str) -> str:
    """The README's text from a heading to the next heading of any level."""
    text = README.read_text()
    start = re.search(rf"^#+ {re.escape(heading)}\n", text, re.M)
    assert start is not None, heading
    end = re.search(r"^#", text[start.end() :], re.M)
    return text[start.end() : start.end() + end.start()] if end else text[start.end() :]


@pytest.fixture
def user_dir(tmp_path):
    """(cwd, env): a scratch directory and the environment of a new user in it."""
    bindir = tmp_path / ".bin"
    bindir.mkdir()
    for name, cmd in (("cfgcore", "-m cfgcore"), ("python", "")):
        shim = bindir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {cmd} "$@"\n')
        shim.chmod(0o755)
    env = new_user_env(tmp_path, COLUMNS="200")
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    work = tmp_path / "work"
    work.mkdir()
    return work, env


def sh(cwd, env, script: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["bash", "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, f"{script}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def py(cwd, env, code: str) -> subprocess.CompletedProcess[str]:
    script = Path(cwd) / f"example_{time.monotonic_ns()}.py"
    script.write_text(code)
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, f"{code}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc


def commands(bash_block: str) -> list[str]:
    """The block's commands, one per logical line (backslash continuations joined)."""
    return [c for c in bash_block.replace("\\\n", " ").splitlines() if c.strip()]


def arrows_to_asserts(code: str) -> str:
    """`EXPR  # -> LITERAL` lines (or `# -> LITERAL: a remark`) become
    `assert (EXPR) == LITERAL`."""
    out = []
    for line in code.splitlines():
        m = re.match(r"^(\S.*?)\s+# -> (.+)$", line)
        if m:
            shown = m.group(2)
            for text in (shown, shown.split(": ", 1)[0]):
                try:
                    expected = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    continue
                line = f"assert ({m.group(1)}) == {expected!r}, ({m.group(1)})"
                break
        out.append(line)
    return "\n".join(out) + "\n"


# What a README command wrote the first time a test ran it, for the later tests that
# need the same files before their own example: {command: {path under cwd: (bytes, mode)}}.
# The command is run (and what it says checked) once per worker; it writes the same
# files in every new user's directory.
_WRITTEN: dict[str, dict[str, tuple[bytes, int]]] = {}


def _files(cwd: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(f.relative_to(cwd)): (f.read_bytes(), f.stat().st_mode)
        for f in sorted(cwd.rglob("*"))
        if f.is_file()
    }


def _run_once(cwd, env, command: str) -> subprocess.CompletedProcess[str] | None:
    """Run ``command`` in ``cwd`` the first time; later, write the files it wrote then
    (every file it added or changed under ``cwd``). Returns the run, None for a copy."""
    cwd = Path(cwd)
    if command in _WRITTEN:
        for name, (data, mode) in _WRITTEN[command].items():
            (cwd / name).parent.mkdir(parents=True, exist_ok=True)
            (cwd / name).write_bytes(data)
            (cwd / name).chmod(mode)
        return None
    before = _files(cwd)
    proc = sh(cwd, env, command)
    _WRITTEN[command] = {n: f for n, f in _files(cwd).items() if before.get(n) != f}
    return proc


def bundled_flags_yaml(cwd, env) -> None:
    """Run the command "Using it" gives for a flags.yaml from the bundled catalog."""
    cp = re.search(r'`(cp "\$\(python -c .*?\)" flags\.yaml)`', section("Using it"), re.S)
    assert cp is not None, "Using it: no command for getting a flags.yaml"
    _run_once(cwd, env, cp.group(1).replace("\n", " "))
    from cfgcore.engine import bundled_flags_path

    assert (Path(cwd) / "flags.yaml").read_bytes() == Path(bundled_flags_path()).read_bytes()


def test_every_readme_block_is_covered():
    assert set(readme_blocks()) == set(COVERED)


def test_key_paths_of_segments(user_dir):
    """Run as the README gives it: its config/base.yaml, an empty development.yaml, the
    block in a new interpreter; each `# -> VALUE` it shows is asserted."""
    cwd, env = user_dir
    heading = "Key paths, and keys that hold a dot"
    assert "a `config/development.yaml` holding `{}`" in " ".join(section(heading).split())
    (cwd / "config").mkdir()
    (cwd / "config" / "base.yaml").write_text(block(heading, "yaml"))
    (cwd / "config" / "development.yaml").write_text("{}\n")
    code = arrows_to_asserts(block(heading, "python"))
    assert code.count("assert (manager.") == 4, code  # get, get, section, update_config
    checks = (
        "print(manager.explain(('loggers', 'uvicorn.access', 'level')))\n"
        "print(manager.get('loggers[\"uvicorn.access\"].level'))\n"  # the quoted form
        "print(rule.key_path)\n"
    )
    code = code.replace("\nValidationRule(", "\nrule = ValidationRule(")
    out = py(cwd, env, code + checks).stdout.splitlines()
    # explain names the file and line that set it (the block's own call printed nothing)
    assert out[0] == "loggers[\"uvicorn.access\"].level = 'DEBUG'", out
    assert any(re.search(r"base\.yaml:2 = 'INFO'", line) for line in out), out
    assert out[-2] == "DEBUG"
    assert out[-1] == 'loggers["uvicorn.access"].level'  # the rule's path, as messages show it


def test_two_commands_demo(user_dir):
    cwd, env = user_dir
    first = block("Two commands", "bash", 0)
    demo = first.split("&&", 1)[1].strip()
    assert demo == "python -m cfgcore demo"
    proc = sh(cwd, env, demo)
    # "evaluates the bundled music-streaming flags and times the hot path"
    assert re.search(r"cfgcore demo: \d+ flags, evaluator=(c|py)", proc.stdout), proc.stdout
    assert "recommendation_algorithm_v2 over 100,000 users" in proc.stdout
    assert re.search(
        r"is_enabled\('enhanced_anomaly_detection', bound context\)\s+\d+ ns", proc.stdout
    )


def test_using_it(user_dir):
    cwd, env = user_dir
    bundled_flags_yaml(cwd, env)
    code = block("Using it", "python")
    variants = re.search(r'# -> ("\w+"(?: / "\w+")*)$', code, re.M)
    assert variants is not None
    checks = (
        f"variants = ({variants.group(1).replace(' / ', ', ')},)\n"
        + """
assert bitrate == 320, bitrate
assert manager.get("anomaly_detection.threshold") == 0.85
assert dynamic.is_feature_enabled(FeatureFlag.ENHANCED_ANOMALY_DETECTION, user) is True
assert engine.variant("recommendation_algorithm_v2", ctx) in variants
seen = {engine.variant("recommendation_algorithm_v2", {"user_id": str(i)}) for i in range(50)}
assert seen == set(variants), seen
d = engine.evaluate("recommendation_algorithm_v2", ctx)
assert (d.variant, d.reason, d.rule_index, d.error_code) == ("control", "SPLIT", 0, None), d
assert dict(d.value) == {"algorithm": "matrix_factorization"}
assert set(engine.evaluate_all(ctx)) >= {"enhanced_anomaly_detection", "lossless_audio_eu"}
# "An unknown flag returns the caller's default, with FLAG_NOT_FOUND in the details."
assert engine.value("no_such_flag", ctx, default=7) == 7
assert engine.evaluate("no_such_flag", ctx).error_code == "FLAG_NOT_FOUND"
# "A context holding None, NaN, ... or no attributes at all simply does not match."
for bad in ({"user_segment": None}, {"region": float("nan")}, {1: 2}, {}, {"user_segment": 5}):
    assert engine.is_enabled("enhanced_anomaly_detection", bad) is False, bad
print("checked")
"""
    )
    proc = py(cwd, env, code + checks)
    assert "music_streaming.audio_quality.bitrates.premium = 320" in proc.stdout
    assert re.search(r"base\.yaml:\d+ = 320", proc.stdout), proc.stdout  # file:line
    assert proc.stdout.rstrip().endswith("checked")


def test_ab_tests_from_the_command_line(user_dir):
    cwd, env = user_dir
    # events.jsonl: the two event lines the README gives right below the block
    events = re.findall(
        r'`(\{"test": "checkout".*?\})`', section("A/B tests from the command line")
    )
    assert len(events) == 2
    (cwd / "events.jsonl").write_text("\n".join(events) + "\n")
    out = [sh(cwd, env, c) for c in commands(block("A/B tests from the command line", "bash"))]
    create, start, layered, ramp, ingest, report, stop, listing, delete = out
    assert "not started" in create.stdout + create.stderr
    assert "started A/B test checkout" in start.stdout + start.stderr
    assert layered.returncode == 0, layered.stderr
    assert "updated A/B test search in " in ramp.stderr, ramp.stderr
    assert ramp.stderr.rstrip().endswith(": layer_percentage (running)"), ramp.stderr
    assert re.search(r"^search\s+\[active\]\s+control 50%, new 50%", listing.stdout, re.M)
    assert "ingested 1 exposure(s) and 1 metric event(s)" in ingest.stdout + ingest.stderr
    assert "A/B test checkout (status: active" in report.stdout
    assert re.search(r"^green\s+50\s+1$", report.stdout, re.M), report.stdout
    assert "sample ratio check (mismatch if p < 0.001)" in report.stdout
    assert (cwd / "checkout.png").read_bytes().startswith(b"\x89PNG")
    assert "every user gets the control" in stop.stdout + stop.stderr
    assert re.search(r"^checkout\s+\[stopped\]\s+control 50%, green 50%", listing.stdout, re.M)
    assert delete.returncode == 0, delete.stderr
    assert "deleted A/B test checkout and its flag" in delete.stdout + delete.stderr
    # the state directory holds the files the README lists (the delete kept the logs)
    state = Path(env["CFGCORE_STATE_DIR"])
    for name in ("flags.json", "flags.exposures.jsonl", "flags.metrics.jsonl", "flags.audit.jsonl"):
        assert (state / name).is_file(), name
    document = json.loads((state / "flags.json").read_text())
    assert "checkout" not in document["flags"] and "checkout" not in document.get("experiments", {})
    search = document["experiments"]["search"]  # in its layer, with the share ramped up to
    assert (search.get("layer"), search.get("layer_percentage")) == ("search", 30), search
    assert search["success_metrics"] == ["clicks"]  # (kept by the ramp)


def setup_config(cwd, env, *args: str) -> None:
    """`cfgcore setup` as the README gives it: ./config from the embedded defaults (the
    plain command run once, its files copied for the next test that needs them)."""
    command = " ".join(("cfgcore setup", *args))
    if args:
        proc = sh(cwd, env, command)
    else:
        proc = _run_once(cwd, env, command)
        if proc is None:
            return
    assert "wrote config/flags.yaml" in proc.stdout + proc.stderr


def test_flag_lifecycle(user_dir):
    cwd, env = user_dir
    heading = "Flag lifecycle: deleting and finding stale flags"
    assert "`cfgcore setup` writes" in section(heading)
    setup_config(cwd, env)
    delete, stale, stale_json = (sh(cwd, env, c) for c in commands(block(heading, "bash")))
    assert "deleted flag campus_trending_analysis" in delete.stdout + delete.stderr
    assert "campus_trending_analysis" not in (cwd / "config" / "flags.yaml").read_text()
    audit = (Path(env["CFGCORE_STATE_DIR"]) / "flags.audit.jsonl").read_text().splitlines()
    assert any(
        json.loads(e).get("actor") == "alice" and "campus_trending_analysis" in e for e in audit
    )
    assert "(window 30 days)" in stale.stdout
    report = json.loads(stale_json.stdout)
    assert report["days"] == 14
    assert report["store"] == str(cwd / "config" / "flags.yaml")


def console(text: str) -> list[tuple[str, list[str]]]:
    """A transcript as [(command, output lines)]."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            steps[-1][1].append(line)
    return steps


def test_flag_delete_refused(user_dir):
    cwd, env = user_dir
    setup_config(cwd, env)
    flags = (cwd / "config" / "flags.yaml").read_bytes()
    [(cmd, shown)] = console(block("Flag lifecycle: deleting and finding stale flags", "console"))
    proc = sh(cwd, env, cmd, check=False)
    assert proc.returncode == 1  # "the command exits 1"
    # the transcript was taken in /srv/music
    assert proc.stderr.replace(str(cwd), "/srv/music").splitlines() == shown
    assert (cwd / "config" / "flags.yaml").read_bytes() == flags  # nothing written


def test_fleet_watch_and_publish(user_dir, redis_server):
    cwd, env = user_dir
    # The README's Redis host is a placeholder: the test's redis-server stands in for it.
    [export] = commands(block("Running a fleet", "bash", 0))
    url = re.fullmatch(r"export CFGCORE_FLAG_STORE='(.*)'", export).group(1)
    assert url.startswith("redis://flags.internal:6379/0?")
    env["CFGCORE_FLAG_STORE"] = url.replace("flags.internal:6379", f"127.0.0.1:{redis_server.port}")
    # publish -e production needs a configuration directory of one's own: production
    # refuses the embedded demo set ("Where configuration and flags come from"); and
    # `cfgcore setup -e production` calls it ready only with its secrets exported.
    for var in (
        "CFGCORE_ENCRYPTION_KEY", "JWT_SIGNING_KEY", "SPOTIFY_API_SECRET",
        "KAFKA_SASL_PASSWORD", "POSTGRES_PASSWORD", "ELASTICSEARCH_PASSWORD",
    ):  # fmt: skip
        env[var] = f"readme-{var.lower()}-0123456789"
    setup_config(cwd, env, "-e", "production")
    watch_cmd, publish_cmd = commands(block("Running a fleet", "bash", 1))
    watch = subprocess.Popen(
        ["bash", "-c", f"exec {watch_cmd}"], cwd=cwd, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    killer = threading.Timer(TIMEOUT, watch.kill)  # a hung watch ends the reads below (EOF)
    killer.start()
    try:
        started = watch.stderr.readline()  # "URL: version 0 (0 flags) ...; Ctrl-C to stop"
        assert "Ctrl-C to stop" in started, started
        publish = sh(cwd, env, publish_cmd)
        assert re.search(r"published production as version \d+", publish.stdout), publish.stdout
        assert re.search(r"published \d+ flags as version \d+", publish.stdout)
        seen = watch.stdout.readline()  # every version, who wrote it, what changed
        # a publish begins a store epoch, which the line names
        assert re.search(
            r" v1 \S+ pid \d+ \[new epoch [0-9a-f]+ by a forced write\]: "
            r".*enhanced_anomaly_detection",
            seen,
        ), seen
    finally:
        killer.cancel()
        watch.terminate()
        watch.wait(10)
        watch.stdout.close()
        watch.stderr.close()


def test_flag_file_example(user_dir):
    cwd, env = user_dir
    (cwd / "flags.yaml").write_text(block("Flag files", "yaml"))
    code = """
import cfgcore
engine = cfgcore.Engine.from_file("flags.yaml")
engine.set_clock(lambda: 1796083200.0)  # 2026-12-01T00:00Z: start is inclusive
eu = {"user_id": "1", "user_segment": "premium", "region": "EU"}
us = {"user_id": "1", "user_segment": "premium", "region": "US"}
assert engine.is_enabled("enhanced_anomaly_detection", eu) is True
assert engine.variant("enhanced_anomaly_detection", us) == "off"
uk = {"user_segment": "premium", "region": "UK"}
assert engine.evaluate("enhanced_anomaly_detection", uk).reason == "TARGETING_MATCH"
share = sum(engine.is_enabled("experimental_ml_models", {"user_id": str(i)}) for i in range(4000))
assert 800 < share < 1200, share  # 25%
assert engine.evaluate("recommendation_algorithm_v2", eu).reason == "SPLIT"
# prerequisite failed: the US user lacks enhanced_anomaly_detection
assert engine.evaluate("recommendation_algorithm_v2", us).reason == "PREREQUISITE_FAILED"
for outside in (1796083199.0, 1797292800.0):  # before the start; 2026-12-15T00:00Z, the end
    engine.set_clock(lambda: outside)
    assert engine.evaluate("recommendation_algorithm_v2", eu).reason == "DISABLED", outside
print("ok")
"""
    assert py(cwd, env, code).stdout == "ok\n"


def test_bucketing_formula(user_dir):
    cwd, env = user_dir
    formula = block("Bucketing (reproducible in any language)", "").strip()
    assert formula == ('bucket = murmur3_x86_32(utf8(salt + ":" + value), seed=0) mod 100000')
    pytest.importorskip("mmh3")
    (cwd / "flags.yaml").write_text(block("Flag files", "yaml"))  # the example above it
    code = """
import mmh3, cfgcore
engine = cfgcore.Engine.from_file("flags.yaml")
engine.set_clock(lambda: 1796126400.0)  # inside recommendation_algorithm_v2's schedule
eu = {"user_segment": "premium", "region": "EU"}  # its prerequisite's segment
def bucket(salt, value):
    return mmh3.hash(f"{salt}:{value}".encode(), 0, signed=False) % 100000
for i in range(2000):
    b = bucket("experimental_ml_models", str(i))  # 25% rollout: buckets below 25000
    want = b < 25000
    assert engine.is_enabled("experimental_ml_models", {"user_id": str(i)}) is want, i
    assert engine.is_enabled("experimental_ml_models", {"user_id": i}) is want, i  # ints as decimal
    b = bucket("recommendation_algorithm_v2", str(i))  # 50/30/20, ranges in written order
    want = "control" if b < 50000 else "variant_a" if b < 80000 else "variant_b"
    assert engine.variant("recommendation_algorithm_v2", {**eu, "user_id": str(i)}) == want, i
print("ok")
"""
    assert py(cwd, env, code).stdout == "ok\n"


def test_unleash_import(user_dir):
    cwd, env = user_dir
    code = block("Importing flags from Unleash, flagd and GrowthBook", "python")
    shown = re.findall(r"# Unleash (?:isEnabled|getVariant): (.*)$", code, re.M)
    assert shown == ["False (user 42 is not in the 50%)", "{'name': 'disabled', ...}"]
    enabled, variant = py(cwd, env, code).stdout.splitlines()
    assert enabled == shown[0].split()[0]
    assert variant.startswith(shown[1].removesuffix("...}")), variant
    # the README's claim: "user 42 is not in the 50%", by Unleash's own hash
    mmh3 = pytest.importorskip("mmh3")
    assert mmh3.hash("new-player:42", 0, signed=False) % 100 + 1 > 50


def test_openfeature_provider(user_dir):
    cwd, env = user_dir
    pytest.importorskip("openfeature")
    bundled_flags_yaml(cwd, env)
    code = block("OpenFeature", "python", 0)
    shown = re.search(r"^# -> (\(.*\)): a plain, mutable dict$", code, re.M)
    assert shown is not None
    check = (
        "assert (details.value, details.variant, details.reason) == "
        f"{shown.group(1)}, details\n"
        "assert type(details.value) is dict\n"
        "details.value['mutable'] = True\n"
        "assert client.get_boolean_value('enhanced_anomaly_detection', False, ctx) is True\n"
        "print('ok')\n"
    )
    assert py(cwd, env, code + check).stdout == "ok\n"


def test_openfeature_flagd_provider(user_dir):
    cwd, env = user_dir
    pytest.importorskip("openfeature")
    bundled_flags_yaml(cwd, env)
    # "continuing the example above"
    code = block("OpenFeature", "python", 0) + arrows_to_asserts(block("OpenFeature", "python", 1))
    assert "assert (client.get_boolean_value(" in code
    other = (
        "ctx = EvaluationContext('user-8', {'email': 'bo@other.org'})\n"
        "assert client.get_boolean_value('new-welcome-banner', True, ctx) is False\n"
        "print('ok')\n"
    )
    assert py(cwd, env, code + other).stdout.endswith("ok\n")


def test_migration_api(user_dir):
    cwd, env = user_dir
    # the legacy file of the text: `premium_bitrate = 320` in `[music_streaming]`
    (cwd / "legacy").mkdir()
    (cwd / "legacy" / "streaming.ini").write_text("[music_streaming]\npremium_bitrate = 320\n")
    code = block("Migrating a legacy configuration", "python") + (
        "value = config_manager.get('music_streaming.audio_quality.premium_bitrate')\n"
        "assert value == 320 and type(value) is int, value\n"
        "print('ok')\n"
    )
    out = py(cwd, env, code).stdout
    assert "1 mapped, 0 unmapped, 0 conflicting" in out
    assert re.search(
        r"music_streaming\.premium_bitrate -> music_streaming\.audio_quality\.premium_bitrate", out
    )
    assert out.endswith("ok\n")


def test_migrate_command(user_dir):
    cwd, env = user_dir
    (cwd / "map.yaml").write_text(block("Migrating a legacy configuration", "yaml"))
    (cwd / "legacy").mkdir()
    (cwd / "legacy" / "streaming.ini").write_text(
        "[streaming]\nhq_kbps = 320\n[obsolete]\nflag = yes\n[audio]\nstandard_bitrate = 160\n"
    )
    [cmd] = commands(block("Migrating a legacy configuration", "bash"))
    sh(cwd, env, cmd)
    assert (cwd / "config" / "migration-report.json").is_file()
    import yaml

    tree = yaml.safe_load((cwd / "config" / "base.yaml").read_text())
    audio = tree["music_streaming"]["audio_quality"]
    assert audio["bitrates"]["premium"] == 320  # keys:
    assert audio["standard_bitrate"] == 160  # prefixes:
    assert audio["default_codec"] == "aac"  # defaults:
    assert "obsolete" not in tree  # null drops the key
    # "It never replaces an existing file unless you pass --force."
    before = (cwd / "config" / "base.yaml").read_bytes()
    assert sh(cwd, env, cmd, check=False).returncode != 0
    assert (cwd / "config" / "base.yaml").read_bytes() == before
    sh(cwd, env, cmd + " --force")


def test_counters_and_hooks(user_dir):
    cwd, env = user_dir
    bundled_flags_yaml(cwd, env)
    heading = "Observability: counters, hooks and debug mode"
    # "After the checks of "Using it" above": one script, as in one session
    totals = block(heading, "python", 0)
    lines = totals.splitlines()
    totals = "\n".join(
        f"print(repr({ln.split('  #')[0]}))"
        if ln.startswith(("totals[", "evaluation_totals()"))
        else ln
        for ln in lines
    )
    hooks = block(heading, "python", 1)
    code = block("Using it", "python") + "print('---')\n" + totals + "\nprint('---')\n" + hooks
    out = py(cwd, env, code).stdout.split("---\n")
    how_often, not_found, last = out[1].splitlines()
    assert int(how_often) >= 1
    assert int(not_found) == 0
    assert abs(float(last) - time.time()) < 60  # epoch seconds
    shown = re.findall(r'"([^"]+)"', hooks.split("# prints", 1)[1])
    assert out[2].splitlines() == shown


def test_secrets_console(user_dir):
    pytest.importorskip("cryptography")
    cwd, env = user_dir
    steps = console(block("Encrypted values and secret files", "console"))
    assert [c.split("#")[0].strip() for c, _ in steps] == [
        "cfgcore secrets keygen --id 2026q4",
        "export CFGCORE_SECRET_KEYS=2026q4:...",
        "echo -n 'hunter2' | cfgcore secrets encrypt --path db.password",
        "cfgcore secrets encrypt --scheme aesgcm --path db.url < db-url.txt",
    ]
    keygen = sh(cwd, env, steps[0][0]).stdout.strip()
    assert re.fullmatch(r"2026q4:[A-Za-z0-9_=+/-]+", keygen), keygen
    assert len(base64.urlsafe_b64decode(keygen.split(":", 1)[1])) == 32  # "32 bytes"
    env["CFGCORE_SECRET_KEYS"] = keygen  # the "..." of the export
    (cwd / "db-url.txt").write_text("postgres://music:s3cret@db.internal/catalog")
    fernet = sh(cwd, env, steps[2][0]).stdout.strip()
    shown = steps[2][1][0]
    prefix = "ENC[v2:fernet:gAAAAAB"
    assert shown.startswith(prefix) and fernet.startswith(prefix)
    assert re.fullmatch(r"ENC\[v2:fernet:[A-Za-z0-9_=-]+\]", fernet), fernet
    aes = sh(cwd, env, steps[3][0]).stdout.strip()
    assert steps[3][1][0].startswith("ENC[v2:aesgcm:2026q4:")
    assert re.fullmatch(r"ENC\[v2:aesgcm:2026q4:[A-Za-z0-9_=+/-]+\]", aes), aes
    for value, path, plain in (
        (fernet, "db.password", "hunter2"),
        (aes, "db.url", "postgres://music:s3cret@db.internal/catalog"),
    ):
        cmd = f"cfgcore secrets decrypt '{value}' --path"
        assert sh(cwd, env, f"{cmd} {path}").stdout.strip() == plain
        # "they decrypt only at that key"
        moved = sh(cwd, env, f"{cmd} feature.banner_text", check=False)
        assert moved.returncode != 0 and plain not in moved.stdout


def test_access_policy_example(user_dir):
    cwd, env = user_dir
    (cwd / "policy.yaml").write_text(block("Who changed what, and who may", "yaml"))
    code = """
from cfgcore import get_config_manager
from cfgcore.runtime.policy import set_policy
set_policy("policy.yaml")
m = get_config_manager()
m.load_environment_config("staging")
m.update_config("music_streaming.audio_quality.premium_bitrate", 256, actor="alice@laptop")
try:
    m.update_config("anomaly_detection.threshold", 0.9, actor="alice@laptop")
except PermissionError as e:
    print("denied:", e)
try:
    m.update_config("music_streaming.audio_quality.premium_bitrate", 128, actor="mallory")
except PermissionError as e:
    print("denied:", e)
print(m.get("music_streaming.audio_quality.premium_bitrate"), m.get("anomaly_detection.threshold"))
"""
    out = py(cwd, env, code).stdout.splitlines()
    assert out[0].startswith("denied: alice@laptop may not config.update anomaly_detection")
    assert out[1].startswith("denied: mallory")
    assert out[2] == "256 0.8"


def test_actor_assume_example():
    """The --actor example is a valid policy that lets the runner act for people of
    example.com and for nobody else, and lets nobody else act for anyone."""
    import yaml

    from cfgcore.runtime.policy import AccessPolicy

    policy = AccessPolicy.from_mapping(
        yaml.safe_load(block("Who changed what, and who may", "yaml", 1))
    )
    assert policy.allows("ci@build-01", "actor.assume", "alice@example.com")
    assert not policy.allows("ci@build-01", "actor.assume", "alice@evil.example.org")
    assert not policy.allows("ci@build-02", "actor.assume", "alice@example.com")
    assert not policy.allows("ci@build-01", "flag.delete", "catalog_x")


def test_audit_verify_console(user_dir):
    cwd, env = user_dir
    logdir = cwd / "log"
    logdir.mkdir()
    log = logdir / "config-audit.jsonl"
    # a rotated log: small files, a few changes
    env.update(CFGCORE_AUDIT_LOG=str(log), CFGCORE_AUDIT_MAX_BYTES="4000")
    py(cwd, env, (
        "from cfgcore import get_config_manager\n"
        "m = get_config_manager()\n"
        "m.load_environment_config('staging')\n"
        "for i in range(12):\n"
        "    m.update_config('anomaly_detection.threshold', 0.5 + i / 100)\n"
    ))  # fmt: skip
    rotated = Path(f"{log}.1")
    entries = rotated.read_text().splitlines()
    assert len(entries) >= 3
    entries[1] = entries[1].replace('"new":0.5', '"new":0.9')  # an edit
    rotated.write_text("\n".join(entries) + "\n")
    transcript = block("A tamper-evident, bounded audit log", "console")
    transcript = transcript.replace("/var/log/music/config-audit.jsonl", str(log))
    steps = console(transcript)
    proc = sh(cwd, env, "\n".join(cmd for cmd, _ in steps), check=False)
    shown = [line for _, out in steps for line in out]
    pattern = re.escape(shown[0])
    pattern = re.sub(r"\\\.1:118:", r"\\.1:\\d+:", pattern).replace("4211", r"\d+")
    got = proc.stdout.splitlines()
    assert len(got) == 2 and got[1] == shown[1] == "1", proc
    assert re.fullmatch(pattern, got[0]), (got[0], shown[0])


def test_inline_command_outputs(user_dir):
    """The outputs the text quotes inline: the compiled evaluator, an unknown key's error."""
    cwd, env = user_dir
    text = README.read_text()
    impl = re.search(
        r'`(python -c "import cfgcore; print\(cfgcore\.IMPLEMENTATION\)")` prints\s+`c`', text
    )
    assert impl is not None
    # The user's environment holds no CFGCORE_NO_EXTENSIONS (this run's may): the child
    # uses the compiled evaluator wherever it is built.
    built = importlib.util.find_spec("cfgcore._eval") is not None
    assert sh(cwd, env, impl.group(1)).stdout == ("c\n" if built else "py\n")
    shown = re.search(
        r"`(cfgcore: error: music_streaming\.audio_quality\.premium_bitrat: .*?)`", text, re.S
    )
    assert shown is not None
    shown_line = " ".join(shown.group(1).split())
    key = "music_streaming.audio_quality.premium_bitrat"
    proc = sh(cwd, env, f"cfgcore get {key} -e staging", check=False)
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()  # one line, no traceback
    assert line.startswith(shown_line.removesuffix(", ...?)")), (line, shown_line)
