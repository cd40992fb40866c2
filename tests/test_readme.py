"""The README's usage example runs as written (in a scratch directory)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_runs(tmp_path):
    from cfgcore.engine import bundled_flags_path

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    shutil.copy(bundled_flags_path(), tmp_path / "flags.yaml")
    script = tmp_path / "example.py"
    script.write_text(blocks[0])  # as written: it needs nothing but flags.yaml
    env = {**os.environ, "HOME": str(tmp_path), "CFGCORE_STATE_DIR": str(tmp_path / "state")}
    env.pop("CONFIG_ENVIRONMENT", None)
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "music_streaming.audio_quality.bitrates.premium = 320" in proc.stdout


def test_every_readme_python_block_runs_in_a_scratch_directory():
    """Every ```python block of README.md is run, in a new interpreter in a scratch
    directory, by a test that asserts what it prints or returns: the two here, the others
    in tests/test_audit_readme_examples.py (its COVERED table maps each block to its
    test; test_every_readme_block_is_covered keeps that table equal to the README)."""
    from tests import test_audit_readme_examples as examples

    python_blocks = [key for key in examples.readme_blocks() if key[1] == "python"]
    assert len(python_blocks) == len(re.findall(r"^```python$", README.read_text(), re.M))
    for key in python_blocks:
        runner = examples.COVERED[key]
        if runner.startswith("skip: tests/test_readme.py runs it"):
            assert key[0] == "Metrics and health", key  # test_readme_metrics_and_health_...
            continue
        assert not runner.startswith("skip"), (key, runner)  # no python block is skipped
        test = getattr(examples, runner)
        assert callable(test), key
        # run as a script in a scratch directory (user_dir), not exec'd in this process
        assert "user_dir" in test.__code__.co_varnames[: test.__code__.co_argcount], key


def test_readme_gives_exactly_the_two_commands_ci_runs():
    text = README.read_text()
    shell_blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert shell_blocks[:2] == [
        "pip install -e '.[dev]' && python -m cfgcore demo\n",
        "python -m pytest -q -n auto\n",
    ]
    ci = (README.parent / ".ci" / "run").read_text()
    assert "\npython -m pytest -q -n auto\n" in ci


def test_readme_metrics_and_health_example_runs(tmp_path):
    text = README.read_text()
    section = text[text.index("## Metrics and health") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    script = tmp_path / "health_example.py"
    script.write_text(block.group(1))
    import cfgcore

    env = {**os.environ, "HOME": str(tmp_path), "CFGCORE_STATE_DIR": str(tmp_path / "state")}
    env.pop("CFGCORE_CONFIG_DIR", None)
    # the cfgcore under test, wherever it is imported from (a relative PYTHONPATH included)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(cfgcore.__file__)))
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
        timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "ready: True []" in proc.stdout
    assert '"operation": "load", "result": "ok", "reason": "none"' in proc.stdout


# -- docs/flags.md ------------------------------------------------------------------------

FLAGS_PAGE = README.parent / "docs" / "flags.md"


def test_docs_flags_prerequisite_example_compiles_and_answers_as_written(impl, tmp_path):
    """The `prerequisite` conditions example, copied as it stands: it named a flag
    (`beta_program`) the example did not define, so it failed to compile."""
    from cfgcore.engine import engine_class

    blocks = re.findall(r"```yaml\n(.*?)```", FLAGS_PAGE.read_text(), re.S)
    (block,) = [b for b in blocks if "prerequisite:" in b]
    (tmp_path / "flags.yaml").write_text(block)
    engine = engine_class(impl).from_file(tmp_path / "flags.yaml")

    def banner(**ctx):
        details = engine.evaluate("banner", ctx)
        return details.value, details.reason

    # rule 0: plan serves gold; rule 1: beta_program on and country NL; else the default
    assert banner(plan="gold") == ("G", "TARGETING_MATCH")
    assert banner(plan="gold", beta=True, country="NL") == ("G", "TARGETING_MATCH")
    # where the prerequisite test is false the rule is skipped and the next one tried
    assert banner(plan="silver", beta=True, country="NL") == ("B", "TARGETING_MATCH")
    assert banner(plan="silver", beta=True, country="DE") == ("O", "DEFAULT")
    assert banner(beta=False, country="NL") == ("O", "DEFAULT")


def test_docs_flags_rounding_warning_is_what_the_compiler_logs(tmp_path, monkeypatch, caplog):
    """The warning the page shows for the weights it names is the one compiling logs."""
    import logging

    from cfgcore.engine import Engine

    page = FLAGS_PAGE.read_text()
    weights = re.search(r"\(`(a: [\d.]+, b: [\d.]+, c: [\d.]+)` serves", page)
    shown = re.search(r"```\n(flags\.yaml: flags\.checkout\..*?)\n```", page, re.S)
    assert weights is not None and shown is not None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flags.yaml").write_text(
        "flags:\n  checkout:\n    variants: {a: 1, b: 2, c: 3}\n"
        f"    rules:\n      - split: {{{weights.group(1)}}}\n    default: a\n"
    )
    with caplog.at_level(logging.WARNING, logger="cfgcore.compiler"):
        Engine.from_file("flags.yaml")
    assert shown.group(1) in [r.getMessage() for r in caplog.records]


def test_readme_layout_names_every_docs_page_and_package_folder():
    """README's "Layout" lists the operator pages and the package's folders: a newcomer
    reads it to find where things are. It left out docs/configuration.md, interop/ and
    observability/."""
    text = README.read_text()
    layout = text[text.index("## Layout") :]
    pages = sorted(p.name for p in (README.parent / "docs").glob("*.md"))
    assert pages, "no docs pages found beside README.md"
    missing = [p for p in pages if f"`docs/{p}`" not in layout]
    import cfgcore

    package = Path(cfgcore.__file__).parent  # the installed one too (wheel tests)
    folders = sorted(
        d.name for d in package.iterdir() if (d / "__init__.py").is_file()
    )  # the subpackages; defaults/ holds data, not code
    assert "config" in folders and "cli" in folders, folders
    missing += [f for f in folders if f"`src/cfgcore/{f}/`" not in layout]
    assert not missing, missing
