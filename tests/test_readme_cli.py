"""The command lines README.md and docs/*.md show run as shown, in-process and offline.

Every fenced shell block (```bash, ```console, ```sh) of README.md and docs/*.md is
listed in SHELL_BLOCKS, by (file, heading above it, index under that heading), with the
test that runs it or the reason it is not run here; every inline `cfgcore ...` command
of those files is listed in INLINE the same way. test_every_shell_block_is_listed and
test_every_inline_command_is_listed fail when a page gains or changes one, so a new
command is never skipped silently.

The blocks run through a small shell (`export`, `echo -n X |`, `< FILE`, `echo $?`,
`#` comments, `\\` continuations, `$VAR`; a `...` in an exported value stands for what
an earlier command printed) that calls `cfgcore.cli.main` in this process, in a scratch
directory with HOME and the state directory inside it and no CFGCORE_*/CONFIG_*
variables: about 0.1 s a command instead of a new interpreter each. Console transcripts
are compared with what the commands print (`...` and numbers are placeholders).
test_inline_options_exist checks, for every inline command and the README's list of
subcommands, that each subcommand and option shown exists.

tests/test_audit_readme_examples.py runs README's blocks once more as subprocesses (the
demo, and the fleet blocks against a real redis-server).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import os
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = ("bash", "console", "sh", "shell")


# -- what the pages hold -------------------------------------------------------------------


def fenced_blocks(page: Path) -> dict[tuple[str, str, int], tuple[str, str]]:
    """``{(page name, heading, index): (language, text)}`` of the page's shell blocks."""
    out: dict[tuple[str, str, int], tuple[str, str]] = {}
    heading, lines, i = "", page.read_text().splitlines(keepends=True), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            lang, j = line[3:].strip(), i + 1
            while not lines[j].startswith("```"):
                j += 1
            if lang in SHELLS:
                n = sum(1 for (p, h, _) in out if (p, h) == (page.name, heading))
                out[(page.name, heading, n)] = (lang, "".join(lines[i + 1 : j]))
            i = j
        elif line.startswith("#"):
            heading = line.lstrip("#").strip()
        i += 1
    return out


def all_blocks() -> dict[tuple[str, str, int], tuple[str, str]]:
    blocks: dict[tuple[str, str, int], tuple[str, str]] = {}
    for page in PAGES:
        blocks.update(fenced_blocks(page))
    return blocks


def prose(page: Path) -> str:
    return re.sub(r"```.*?```", "", page.read_text(), flags=re.S)


def inline_commands() -> dict[str, list[str]]:
    """``{command: [pages]}`` of every inline `cfgcore ...` (or `python -m cfgcore...`)
    span outside the fenced blocks, whitespace collapsed."""
    found: dict[str, list[str]] = {}
    for page in PAGES:
        for span in re.findall(r"`((?:python -m )?cfgcore(?:\.setup)?\s[^`]*)`", prose(page)):
            found.setdefault(" ".join(span.split()), []).append(page.name)
    return found


def subcommand_list() -> list[str]:
    """The README's list of subcommands ("Its subcommands:"), as `cfgcore ...` spans."""
    text = prose(ROOT / "README.md")
    part = text[text.index("Its subcommands:") : text.index("It is made for scripts:")]
    spans = [" ".join(s.split()) for s in re.findall(r"`([^`]+)`", part)]
    return [f"cfgcore {s}" for s in spans if not s.startswith(("python ", "cfgcore", "-"))]


def section(page: str, heading: str) -> str:
    text = prose(ROOT / page)
    start = re.search(rf"^#+ {re.escape(heading)}\n", text, re.M)
    assert start is not None, heading
    end = re.search(r"^#", text[start.end() :], re.M)
    return text[start.end() : start.end() + end.start()] if end else text[start.end() :]


# -- a small shell that runs cfgcore in this process --------------------------------------


@dataclass
class Ran:
    command: str
    code: int
    out: str
    err: str
    shown: list[str] = field(default_factory=list)  # a transcript's lines for it

    @property
    def text(self) -> str:
        return self.out + self.err


class Shell:
    """Runs a page's command lines in ``cwd`` (see the module docstring)."""

    def __init__(self, cwd: Path, monkeypatch, capsys) -> None:
        self.cwd, self.mp, self.capsys = cwd, monkeypatch, capsys
        self.last = 0
        self.outputs: list[str] = []
        self.paths: dict[str, str] = {}  # a path the page shows -> the scratch one

    def real(self, text: str) -> str:
        for shown, real in self.paths.items():
            text = text.replace(shown, real)
        return text

    def shown(self, text: str) -> str:
        for shown, real in self.paths.items():
            text = text.replace(real, shown)
        return text

    def run(self, line: str) -> Ran:
        from cfgcore.cli import main

        words = shlex.split(self.real(line), comments=True)
        stdin = b""
        if "|" in words:  # only `echo -n TEXT | cfgcore ...`
            i = words.index("|")
            assert words[:2] == ["echo", "-n"] and i == 3, line
            stdin, words = words[2].encode(), words[i + 1 :]
        if "<" in words:
            i = words.index("<")
            stdin = (self.cwd / words[i + 1]).read_bytes()
            words = words[:i] + words[i + 2 :]
        words = [os.path.expandvars(w) if w.startswith("$") else w for w in words]
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            if value.endswith("..."):  # what an earlier command printed (`2026q4:Xq3...`)
                start = re.sub(r"[\w+/=-]*\.\.\.$", "", value)
                value = next(o for o in reversed(self.outputs) if o.startswith(start))
            self.mp.setenv(name, value)
            return Ran(line, 0, "", "")
        if words == ["echo", "$?"]:
            return Ran(line, 0, f"{self.last}\n", "")
        if words[:3] == ["python", "-m", "cfgcore"]:
            argv = words[3:]
        elif words[:3] == ["python", "-m", "cfgcore.setup"]:
            argv = ["setup", *words[3:]]
        else:
            assert words[0] == "cfgcore", f"not a cfgcore command: {line}"
            argv = words[1:]
        self.mp.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
        self.capsys.readouterr()
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's --version and usage errors
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = self.capsys.readouterr()
        self.last = code
        self.outputs.append(out.strip())
        return Ran(line, code, out, err)

    def block(self, text: str, lang: str) -> list[Ran]:
        """Run a block's commands; a console transcript's output lines go with them."""
        text = text.replace("\\\n", " ")
        if lang != "console":
            return [self.run(c) for c in text.splitlines() if c.strip()]
        ran: list[Ran] = []
        for line in text.splitlines():
            if line.startswith("$ "):
                ran.append(self.run(line[2:]))
            elif ran and line.strip() and not line.startswith("#"):
                ran[-1].shown.append(line.split("  #")[0].rstrip())
        return ran


def matches_transcript(shown: str, printed: str) -> bool:
    """A transcript line against a printed one: `...` ends an example value (its word
    up to the `...` is an example too), numbers are examples."""
    pattern = ""
    for part in re.split(r"([\w+/=-]*\.\.\.)", shown):
        if part.endswith("..."):
            pattern += ".*"
        else:
            pattern += re.sub(r"\\?\d+", r"\\d+", re.escape(part).replace(r"\-", "-"))
    return re.fullmatch(pattern, printed) is not None


def assert_transcript(sh: Shell, ran: list[Ran]) -> None:
    for r in ran:
        printed = sh.shown(r.text).splitlines()
        for line in r.shown:
            assert any(matches_transcript(line, p) for p in printed), (r.command, line, printed)


@pytest.fixture
def sh(tmp_path, monkeypatch, capsys, no_access_policy) -> Shell:
    """A new user's scratch directory: HOME and the state directory in it, no
    CFGCORE_*/CONFIG_* variables, `cfgcore` as the command."""
    for var in list(os.environ):
        if var.startswith(("CFGCORE", "CONFIG_", "XDG_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_USAGE", "0")  # no recorder thread per command
    monkeypatch.setenv("COLUMNS", "200")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return Shell(work, monkeypatch, capsys)


def ok(ran: Ran, *needles: str) -> None:
    assert ran.code == 0, (ran.command, ran.out, ran.err)
    for needle in needles:
        assert needle in ran.text, (ran.command, needle, ran.text)


# -- the fenced blocks ---------------------------------------------------------------------


def run_ab_tests(sh: Shell, lang: str, text: str) -> None:
    # events.jsonl: the two event lines the section gives right below the block
    events = re.findall(
        r'`(\{"test": "checkout".*?\})`', section("README.md", "A/B tests from the command line")
    )
    assert len(events) == 2
    (sh.cwd / "events.jsonl").write_text("\n".join(events) + "\n")
    create, start, layered, ramp, ingest, report, stop, listing, delete = sh.block(text, lang)
    ok(create, "created A/B test checkout", "not started")
    ok(start, "started A/B test checkout")
    ok(layered, "created A/B test search", "(started)")
    ok(ramp, "updated A/B test search", "layer_percentage (running)")
    state = Path(os.environ["CFGCORE_STATE_DIR"])
    ok(ingest, "ingested 1 exposure(s) and 1 metric event(s)", f"into {state} (")
    ok(report, "A/B test checkout (status: active", "sample ratio check")
    assert re.search(r"^green\s+50\s+1$", report.out, re.M), report.out
    assert (sh.cwd / "checkout.png").read_bytes().startswith(b"\x89PNG")
    ok(stop, "every user gets the control")
    ok(listing)
    assert re.search(r"^checkout\s+\[stopped\]\s+control 50%, green 50%", listing.out, re.M)
    assert re.search(r"^search\s+\[active\]\s+control 50%, new 50%.*layer search 30%$",
                     listing.out, re.M)  # fmt: skip
    search = json.loads((state / "flags.json").read_text())["experiments"]["search"]
    assert (search["layer_percentage"], search["success_metrics"]) == (30.0, ["clicks"])
    ok(delete, "deleted A/B test checkout and its flag", "stay in the logs")
    document = json.loads((state / "flags.json").read_text())
    assert "checkout" not in document.get("experiments", {}) and "checkout" not in document["flags"]
    # the logs are where the section says: the state directory; the delete kept them
    for name in ("flags.json", "flags.exposures.jsonl", "flags.metrics.jsonl", "flags.audit.jsonl"):
        assert (state / name).is_file(), name
    assert '"checkout"' in (state / "flags.exposures.jsonl").read_text()
    assert '"delete_ab_test"' in (state / "flags.audit.jsonl").read_text()


def setup_project(sh: Shell, *args: str) -> Ran:
    """`cfgcore setup` as the README gives it: ./config from the embedded defaults."""
    ran = sh.run(" ".join(("cfgcore setup", *args)))
    assert "wrote config/" in ran.text, ran.text
    return ran


def run_flag_lifecycle(sh: Shell, lang: str, text: str) -> None:
    heading = "Flag lifecycle: deleting and finding stale flags"
    assert "On the flags `cfgcore setup` writes" in section("README.md", heading)
    ok(setup_project(sh))
    delete, stale, stale_json = sh.block(text, lang)
    ok(delete, "deleted flag campus_trending_analysis")
    assert "campus_trending_analysis" not in (sh.cwd / "config" / "flags.yaml").read_text()
    ok(stale, "(window 30 days)")
    ok(stale_json, '"days": 14')
    assert f'"store": "{sh.cwd / "config" / "flags.yaml"}"' in stale_json.out


def run_flag_delete_refused(sh: Shell, lang: str, text: str) -> None:
    ok(setup_project(sh))
    before = (sh.cwd / "config" / "flags.yaml").read_bytes()
    sh.paths["/srv/music"] = str(sh.cwd)  # where the transcript was taken
    [ran] = sh.block(text, lang)
    assert ran.code == 1  # "the command exits 1"
    assert sh.shown(ran.err).splitlines() == ran.shown
    assert (sh.cwd / "config" / "flags.yaml").read_bytes() == before  # nothing written


def run_migrate(sh: Shell, lang: str, text: str) -> None:
    page = (ROOT / "README.md").read_text()
    heading = page.index("## Migrating a legacy configuration")
    mapping = re.search(r"```yaml\n(.*?)```", page[heading:], re.S)
    assert mapping is not None
    (sh.cwd / "map.yaml").write_text(mapping.group(1))
    (sh.cwd / "legacy").mkdir()
    (sh.cwd / "legacy" / "streaming.ini").write_text(
        "[streaming]\nhq_kbps = 320\n[obsolete]\nflag = yes\n[audio]\nstandard_bitrate = 160\n"
    )
    [ran] = sh.block(text, lang)
    ok(ran, "wrote config/base.yaml and config/migration-report.json", "2 mapped")
    # "It never replaces an existing file unless you pass --force."
    assert sh.run(sh_line(text) + "").code == 1
    ok(sh.run(sh_line(text) + " --force"))
    # "add an environment file ... before loading the directory"
    assert sh.run("cfgcore get music_streaming.audio_quality.bitrates.premium").code == 1
    (sh.cwd / "config" / "development.yaml").write_text("{}\n")
    assert sh.run("cfgcore get music_streaming.audio_quality.bitrates.premium").out == "320\n"


def sh_line(text: str) -> str:
    [line] = [c for c in text.replace("\\\n", " ").splitlines() if c.strip()]
    return line


def run_secrets_console(sh: Shell, lang: str, text: str) -> None:
    pytest.importorskip("cryptography")
    (sh.cwd / "db-url.txt").write_text("postgres://music:s3cret@db.internal/catalog")
    ran = sh.block(text, lang)
    assert [r.code for r in ran] == [0] * len(ran), [(r.command, r.err) for r in ran]
    assert_transcript(sh, ran)
    keygen, _, fernet, aes = ran
    assert re.fullmatch(r"2026q4:[\w=-]+\n", keygen.out), keygen.out
    assert os.environ["CFGCORE_SECRET_KEYS"] == keygen.out.strip()  # the `...` exported
    for r, path, plain in (
        (fernet, "db.password", "hunter2"),
        (aes, "db.url", "postgres://music:s3cret@db.internal/catalog"),
    ):
        value = r.out.strip()
        decrypted = sh.run(f"cfgcore secrets decrypt '{value}' --path {path}")
        assert decrypted.out == f"{plain}\n"
        assert sh.run(f"cfgcore secrets decrypt '{value}' --path other.key").code == 1


def run_audit_console(sh: Shell, lang: str, text: str) -> None:
    from cfgcore.runtime.audit import AuditLog

    log = sh.cwd / "log" / "config-audit.jsonl"
    log.parent.mkdir()
    sh.paths["/var/log/music"] = str(log.parent)
    audit = AuditLog(log, max_bytes=2000, backups=5)
    for i in range(20):
        audit.append({"kind": "update", "path": "anomaly_detection.threshold", "new": i})
    audit.flush()
    rotated = Path(f"{log}.1")
    lines = rotated.read_text().splitlines()
    lines[2] = lines[2].replace('"new":', '"new":1', 1)  # an edit
    rotated.write_text("\n".join(lines) + "\n")
    verify, status = sh.block(text, lang)
    assert verify.code == 1
    assert_transcript(sh, [verify, status])
    assert status.out == "1\n"


def run_fleet_keygen_console(sh: Shell, lang: str, text: str) -> None:
    pytest.importorskip("cryptography")
    from cfgcore.runtime.signing import FleetKeys, public_key_line

    secrets_dir = sh.cwd / "run-secrets"
    secrets_dir.mkdir()
    sh.paths["/run/secrets"] = str(secrets_dir)
    ran = sh.block(text, lang)
    assert [r.code for r in ran] == [0, 0, 0], [(r.command, r.err) for r in ran]
    assert_transcript(sh, ran)
    key_file = secrets_dir / "fleet-signing.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    # what the writers and the followers were given belong together
    keys = FleetKeys.from_environ()
    assert keys.signing_kid == "2026q4" and keys.verify_kids == ("2026q4",)
    signing = [ln for ln in key_file.read_text().splitlines() if ln and not ln.startswith("#")]
    assert public_key_line(signing[0]) == os.environ["CFGCORE_FLEET_VERIFY_KEYS"]


REDIS = "skip: needs a Redis server (tests/test_audit_readme_examples.py runs it against one)"

# (page, heading, index) -> the function that runs the block, or why it is not run here.
SHELL_BLOCKS = {
    ("README.md", "Two commands", 0): "skip: an install; the demo runs in "
    "tests/test_audit_readme_examples.py (it times the hot path: seconds)",
    ("README.md", "Two commands", 1): "skip: the test suite itself",
    ("README.md", "Installing", 0): "skip: an install from PyPI",
    ("README.md", "Installing", 1): "skip: an install from a local wheelhouse",
    ("README.md", "Building wheels", 0): "skip: builds and tests a wheel per CPython (minutes)",
    ("README.md", "A/B tests from the command line", 0): run_ab_tests,
    ("README.md", "Flag lifecycle: deleting and finding stale flags", 0): run_flag_lifecycle,
    ("README.md", "Flag lifecycle: deleting and finding stale flags", 1): run_flag_delete_refused,
    ("README.md", "Running a fleet", 0): REDIS,
    ("README.md", "Running a fleet", 1): REDIS,
    ("README.md", "Migrating a legacy configuration", 0): run_migrate,
    ("README.md", "Encrypted values and secret files", 0): run_secrets_console,
    ("README.md", "A tamper-evident, bounded audit log", 0): run_audit_console,
    ("fleet.md", "Signed documents", 0): run_fleet_keygen_console,
}


def test_every_shell_block_is_listed():
    assert set(all_blocks()) == set(SHELL_BLOCKS)


@pytest.mark.parametrize(
    "key",
    [k for k, v in SHELL_BLOCKS.items() if callable(v)],
    ids=lambda k: f"{k[0]}:{k[1]}:{k[2]}",
)
def test_shell_block(key, sh):
    lang, text = all_blocks()[key]
    SHELL_BLOCKS[key](sh, lang, text)  # type: ignore[operator]


# -- inline commands -----------------------------------------------------------------------


def flagd_document() -> dict:
    """The flagd document of README's OpenFeature example."""
    page = (ROOT / "README.md").read_text()
    found = re.search(r"^flagd_document = (\{.*?^\})", page, re.M | re.S)
    assert found is not None
    literal = re.sub(r"#.*$", "", found.group(1), flags=re.M)
    return ast.literal_eval(literal)


def prepare(sh: Shell, need: str) -> None:
    """What a command needs that the pages told the reader to have before it."""
    if need in ("project", "production", "loggers", "unbound"):
        setup_project(sh)
    if need == "production":
        assert sh.run("cfgcore setup -e production").code == 1  # secrets left empty
    if need == "loggers":  # "files load it": a key holding a dot
        with open(sh.cwd / "config" / "development.yaml", "a") as f:
            f.write('loggers:\n  "uvicorn.access": {level: INFO}\n')
    if need == "unbound":  # a value encrypted without --path
        pytest.importorskip("cryptography")
        keygen = sh.run("cfgcore secrets keygen --id k1")
        sh.mp.setenv("CFGCORE_SECRET_KEYS", keygen.out.strip())
        value = sh.run("echo -n hunter2 | cfgcore secrets encrypt").out.strip()
        assert value.startswith("ENC[fernet:"), value
        with open(sh.cwd / "config" / "development.yaml", "a") as f:
            f.write(f'payments:\n  api_password: "{value}"\n')
    if need == "flagd":
        import json

        (sh.cwd / "flags.json").write_text(json.dumps(flagd_document()))
    if need == "audit":  # a log some changes wrote
        from cfgcore.runtime.audit import AuditLog

        (sh.cwd / "LOG").parent.mkdir(exist_ok=True)
        audit = AuditLog(sh.cwd / "LOG")
        audit.append({"kind": "update", "path": "a", "new": 1})
        audit.flush()
        sh.paths["/var/lib/cfgcore-verifier"] = str(sh.cwd / "verifier")
        (sh.cwd / "verifier").mkdir()
    if need == "test":
        ok(sh.run("cfgcore experiment create checkout --split control=50,green=50"))


@dataclass(frozen=True)
class Run:
    """Run the command (``as_run``: with its placeholders filled) after ``need``, and
    expect ``code`` and each of ``shows`` in what it prints."""

    need: str = ""
    code: int = 0
    shows: tuple[str, ...] = ()
    as_run: str = ""
    then: tuple[tuple[str, int, str], ...] = ()  # more commands: (line, code, shows)


FRAGMENT = "fragment: names a command or option in a sentence; test_inline_options_exist checks it"

# Every inline command of README.md and docs/*.md -> how it is run here, or why not.
INLINE: dict[str, Run | str] = {
    "cfgcore experiment report --plot": FRAGMENT,
    "cfgcore secrets": FRAGMENT,
    "cfgcore import --force": FRAGMENT,
    "cfgcore experiment delete": FRAGMENT,
    "cfgcore experiment update": FRAGMENT,
    "cfgcore alerts export": FRAGMENT,
    "python -m cfgcore.setup --environment staging": Run(
        shows=("wrote config/staging.yaml", "wrote config/flags.yaml"),
    ),
    "cfgcore --version": Run(shows=("cfgcore ", "(evaluator: ", "Python ")),
    "python -m cfgcore --version": Run(shows=("cfgcore ", "(evaluator: ", "Python ")),
    "cfgcore flags": FRAGMENT,
    "cfgcore get 'loggers[\"uvicorn.access\"].level'": Run("loggers", shows=("INFO",)),
    "cfgcore publish --flags": FRAGMENT,
    "cfgcore experiment start NAME": Run(
        "test", shows=("started A/B test checkout",), as_run="cfgcore experiment start checkout"
    ),
    "cfgcore experiment delete NAME": Run(
        "test",
        shows=("deleted A/B test checkout and its flag",),
        as_run="cfgcore experiment delete checkout",
        then=(("cfgcore experiment delete checkout", 1, "checkout: no such A/B test in "),),
    ),
    "cfgcore setup": Run(shows=("wrote config/base.yaml", "wrote config/flags.yaml")),
    "cfgcore flags delete": FRAGMENT,
    "cfgcore eval": FRAGMENT,
    "cfgcore flags stale": Run("project", shows=("stale flags and experiments",)),
    "cfgcore validate": Run(shows=("valid",)),
    "cfgcore fleet keygen": FRAGMENT,
    "cfgcore show": Run(shows=("music_streaming:", "# development from ")),
    "cfgcore demo": "skip: it times the hot path (seconds); tests/test_audit_readme_examples.py "
    "runs it",
    "cfgcore setup -e production": Run(
        code=1,
        shows=("wrote config/production.yaml", "production is not ready", "POSTGRES_PASSWORD"),
    ),
    "cfgcore publish --store URL -e ENV --flags FILE": REDIS,
    "cfgcore publish": FRAGMENT,
    "cfgcore fleet keygen --signing-key-file PATH": Run(
        shows=("signing key written to",),
        as_run="cfgcore fleet keygen --signing-key-file fleet.key",
    ),
    "cfgcore import flagd flags.json --out flags.yaml": Run(
        "flagd",
        shows=("imported 1 flags from flagd into flags.yaml", "+ new-welcome-banner"),
        then=(
            ("cfgcore export --format flagd --flags flags.yaml", 0, '"new-welcome-banner"'),
            ("cfgcore import flagd flags.json --out flags.yaml", 1, "use --force"),
        ),
    ),
    "cfgcore export --format flagd --flags flags.yaml": Run(
        "project",
        code=1,  # the bundled catalog has flags flagd cannot express: each is named
        shows=("flags.lossless_audio_eu: does not fit flagd",),
        as_run="cfgcore export --format flagd --flags config/flags.yaml",
        # and without --flags, the flags the services serve: config/flags.yaml
        then=(("cfgcore export --format flagd", 1, "config/flags.yaml: flags.lossless_audio_eu"),),
    ),
    "cfgcore schema": Run(shows=('"$schema"',)),
    "cfgcore secrets check config/": Run(
        "unbound",
        code=1,
        shows=("payments.api_password: unbound ENC[...] value", "1 unbound value(s)"),
        then=(
            ("cfgcore secrets rotate --bind config/", 0, "1 of them newly bound"),
            ("cfgcore secrets check config/", 0, "1 bound value(s), 0 unbound value(s)"),
            ("cfgcore get payments.api_password", 0, "***"),
        ),
    ),
    "cfgcore secrets rotate --bind config/": Run(
        "unbound", shows=("re-encrypted 1 value(s) in development.yaml, 1 of them newly bound",)
    ),
    "cfgcore secrets rotate config/": Run(
        "unbound",
        shows=("re-encrypted 1 value(s) in development.yaml", "with key k1"),
        then=(("cfgcore secrets rotate config/ --dry-run", 0, "dry run: nothing written"),),
    ),
    "cfgcore secrets encrypt": FRAGMENT,
    "cfgcore experiment create --config": FRAGMENT,
    # run by tests/test_json_error_paths_env_cli.py (the option's JSON refused with its key path)
    "cfgcore experiment create --config VARIANT=JSON": FRAGMENT,
    # run against a real Redis by tests/test_fleet_own_write_stops.py
    "cfgcore experiment create --start": FRAGMENT,
    "cfgcore experiment create": FRAGMENT,
    "cfgcore experiment update NAME --layer-percentage PCT": FRAGMENT,
    "cfgcore experiment list": Run("test", shows=("checkout  [not started]  control 50%",)),
    "cfgcore experiment start": FRAGMENT,
    "cfgcore show/get/explain/watch/eval": FRAGMENT,
    "cfgcore import": FRAGMENT,
    "cfgcore audit verify": FRAGMENT,
    "cfgcore import ... --out FILE": FRAGMENT,
    "cfgcore secrets keygen": Run(shows=(":",)),
    "cfgcore audit verify --checkpoint /var/lib/cfgcore-verifier/audit.cp LOG": Run(
        "audit", shows=("ok: 1 entries in 1 file(s), chain intact",)
    ),
    "cfgcore health [--json] [--url URL]": Run(
        shows=("live:  yes", "ready: yes"),
        as_run="cfgcore health",
        then=(("cfgcore health --json", 0, '"ready": true'),),
    ),
    "cfgcore health --url": FRAGMENT,
    "cfgcore alerts export -e production --out cfgcore.rules.yml": Run(
        "production", shows=("alerting rules to cfgcore.rules.yml",)
    ),
    "cfgcore experiment stop": FRAGMENT,
    "cfgcore experiment ingest": FRAGMENT,
    "cfgcore experiment report": FRAGMENT,
    "cfgcore publish --store URL -e ENV --flags ...": REDIS,
    "cfgcore publish --expect-version N": REDIS,
    # run against a real Redis by tests/test_fleet_version_end_processes.py
    "cfgcore retire --store URL": REDIS,
    "cfgcore publish --store URL -e ENV --flags-from-cache CACHE_FILE": REDIS,
    "cfgcore watch --store": REDIS,
    # run against a real Redis by tests/test_fleet_watch_refused_current.py
    "cfgcore watch --store URL": REDIS,
    # the repair command a process prints, with its URL's max_items= (run against a real
    # Redis by tests/test_fleet_max_items.py, as is the next)
    "cfgcore publish --store URL ...": REDIS,
    "cfgcore publish --flags FILE.msgpack": REDIS,
}


def test_every_inline_command_is_listed():
    assert set(inline_commands()) == set(INLINE)


@pytest.mark.parametrize("command", [c for c, v in INLINE.items() if isinstance(v, Run)])
def test_inline_command(command, sh):
    spec = INLINE[command]
    assert isinstance(spec, Run)
    prepare(sh, spec.need)
    for line, code, shows in ((spec.as_run or command, spec.code, spec.shows), *spec.then):
        ran = sh.run(line)
        assert ran.code == code, (line, ran.out, ran.err)
        for needle in (shows,) if isinstance(shows, str) else shows:
            assert needle in sh.shown(ran.text), (line, needle, ran.text)


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name)
    return None


def _has_subcommands(parser: argparse.ArgumentParser) -> bool:
    return any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)


def test_inline_options_exist():
    """Each subcommand and option an inline command (or the README's list of
    subcommands) shows exists: `cfgcore health [--json] [--url URL]`, `experiment
    create|start|...`, `show/get/explain/watch`."""
    from cfgcore.cli import build_parser

    top = build_parser()
    wrong = []
    for command in [*inline_commands(), *subcommand_list()]:
        words = command.replace("[", " ").replace("]", " ").split()
        if words[:3] == ["python", "-m", "cfgcore.setup"]:
            words = ["cfgcore", "setup", *words[3:]]
        words = words[2:] if words[:2] == ["python", "-m"] else words
        assert words[0] == "cfgcore", command
        parsers = [top]
        for word in words[1:]:
            if word.startswith("-"):
                option = word.split("=")[0]
                if not all(option in p._option_string_actions for p in parsers):
                    wrong.append(f"{command}: no option {option}")
            elif all(_has_subcommands(p) for p in parsers) and not word.isupper():
                names = re.split(r"[|/]", word)
                subs = [_subparser(p, n) for p in parsers for n in names]
                if None in subs:
                    wrong.append(f"{command}: no subcommand {word}")
                    break
                parsers = [s for s in subs if s is not None]
    assert not wrong, wrong
