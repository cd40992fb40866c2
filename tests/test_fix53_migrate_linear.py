"""``cfgcore migrate`` stays linear in the legacy file's keys, with the same output.

A key whose path already held a section (``log4j.logger.com.acme.mod17`` after
``log4j.logger.com.acme.mod17.sub``, as logging configurations write them) looked
through every placed key for the first one under it, and each default of a mapping
file through every placed key: 20,000 such keys took 40 s. An INI value continued over
many lines was one string extended by each line (80,000 lines: 14 s). Every key was also
compared with every path the schema knows, and each ``.properties`` key and value
unescaped character by character. The placement now finds the first key under a
section where the section was made, the defaults by bisection, a key's candidates in
its own section, a continued value is joined once, and a ``.properties`` text without
a backslash is taken as it is.

No clock for the placement (the suite runs on shared, noisy machines): its work is
counted as the lines the migration module runs, which grow with the keys, not with
their square. The output is held to the former placement and unescaping, copied here
as they were, on generated input."""

from __future__ import annotations

import re
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cfgcore.config.migration as migration
from cfgcore.config.legacy_formats import _PROP_KEY, _unescape_properties, read_legacy
from cfgcore.config.migration import Conflict, LegacyConfigMigrator, MigrationReport
from cfgcore.errors import Problem
from tests.fuzz import examples


def _lines_run(fn) -> int:
    """Lines of :mod:`cfgcore.config.migration` run by ``fn()`` (its generator
    expressions and comprehensions included)."""
    count = 0
    here = migration.__file__

    def trace(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename != here:
            return None
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def _pairs_file(tmp_path, pairs: int):
    path = tmp_path / f"log{pairs}.properties"
    path.write_text(
        "".join(
            f"log4j.logger.com.acme.mod{i}.sub = INFO\nlog4j.logger.com.acme.mod{i} = DEBUG\n"
            for i in range(pairs)
        )
    )
    return path


def _migrator(pairs: int) -> LegacyConfigMigrator:
    """Keeping the keys no section of the schema holds, with a default for each pair."""
    defaults = {f"log4j.logger.com.acme.extra{i}": i for i in range(pairs)}
    return LegacyConfigMigrator({"defaults": defaults}, keep_unmapped=True)


def test_a_value_and_a_section_on_one_path_is_placed_in_linear_work(tmp_path):
    small, large = _pairs_file(tmp_path, 300), _pairs_file(tmp_path, 1200)
    _migrator(10).migrate(small)  # (the schema's tables, built once)
    few = _lines_run(lambda: _migrator(300).migrate(small))
    migrator = _migrator(1200)
    many = _lines_run(lambda: migrator.migrate(large))
    # 4 times the keys and defaults: about 4 times the lines (it was 10 times).
    assert many < 6 * few, (few, many)  # (4.0 now; 7.1 before)
    report = migrator.report
    assert len(report.conflicts) == 1200
    first = report.conflicts[0]
    assert first == Conflict(
        "log4j.logger.com.acme.mod0",
        ("log4j.logger.com.acme.mod0.sub", "log4j.logger.com.acme.mod0"),
        "log4j.logger.com.acme.mod0.sub",
        "a value and a section on one path",
    )
    assert len(report.defaulted) == 1200


def test_a_value_continued_over_many_lines_is_read_whole(tmp_path):
    # (Its lines are joined once: 300,000 lines took about 26 s of CPU when each line
    # extended the value, 0.2 s now; benchmarks/migrate_keys.py --ini-continued times it.)
    lines = 300_000
    path = tmp_path / "legacy.ini"
    path.write_text("[app]\nnames = first\n" + "".join(f"  line_{i}\n" for i in range(lines)))
    (entry,) = read_legacy(path)
    assert entry.value == "\n".join(["first", *(f"line_{i}" for i in range(lines))])
    assert (entry.key, entry.line) == ("app.names", 2)


# -- the former placement and unescaping, as they were ----------------------------------


def _former_place(placed, defaults, report):
    config: dict = {}
    for target, (key, value) in placed.items():
        clash = migration._set(config, target, value)
        if clash is None:
            continue
        if clash != target:
            other = placed[clash][0] if clash in placed else clash
        else:
            other = next((k for t, (k, _) in placed.items() if t.startswith(target + ".")), target)
        report.conflicts.append(
            Conflict(clash, (other, key), other, "a value and a section on one path")
        )
        report.mapped.pop(key, None)
        report.unmapped[key] = f"{clash} is both a value and a section"
    for path, value in defaults.items():
        if path not in placed and not any(t.startswith(path + ".") for t in placed):
            typed, _ = migration._convert(value, migration._leaf_for(path))
            if migration._set(config, path, typed) is None:
                report.defaulted[path] = typed
    return config


_PARTS = st.sampled_from(["a", "b", "c", "security", "api_keys", "server", "port", "x.y"])
_PATHS = st.lists(_PARTS, min_size=1, max_size=4).map(".".join)
_VALUES = st.one_of(
    st.integers(0, 3),
    st.sampled_from(["v", "{}"]),
    st.just({}),
    st.fixed_dictionaries({"c": st.just({"d": 1})}),
)


@settings(
    max_examples=examples(2000),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(
    placed=st.dictionaries(_PATHS, _VALUES, max_size=12),
    defaults=st.dictionaries(_PATHS, st.sampled_from([1, "x", "320"]), max_size=4),
)
def test_the_placement_is_the_former_one(placed, defaults):
    import copy

    def fresh():  # (each value its own object, as a legacy file's are)
        return {t: (f"k{i}:{t}", copy.deepcopy(v)) for i, (t, v) in enumerate(placed.items())}

    reports = [MigrationReport("f", "properties") for _ in range(2)]
    for report in reports:
        report.mapped = {k: t for t, (k, _) in fresh().items()}
    new = migration._place(fresh(), defaults, reports[0])
    old = _former_place(fresh(), defaults, reports[1])
    assert new == old
    assert reports[0] == reports[1]


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def _former_unescape(s, path, n, problems):
    out = []
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\" or i + 1 == len(s):
            out.append(c)
            i += 1
            continue
        nxt = s[i + 1]
        if nxt == "u":
            digits = s[i + 2 : i + 6]
            if len(digits) == 4 and all(ch in "0123456789abcdefABCDEF" for ch in digits):
                out.append(chr(int(digits, 16)))
                i += 6
                continue
            problems.append(
                Problem("", f"malformed \\u escape: {migration._excerpt(s)}", file=path, line=n)
            )
            i += 2
            continue
        out.append(_ESCAPES.get(nxt, nxt))
        i += 2
    text = "".join(out)
    if text.isascii():
        return text
    try:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    except UnicodeDecodeError:
        half = "\\u escape of half a character (a lone UTF-16 surrogate)"
        message = f"{half}: {migration._excerpt(s)}"
        problems.append(Problem("", message, file=path, line=n))
        return text


def _former_key_end(line):
    i = 0
    while i < len(line) and line[i] not in "=: \t\f":
        i += 2 if line[i] == "\\" else 1
    return line[:i]


_TEXT = st.lists(
    st.sampled_from(["\\", "u", "0", "0041", "d83d", "de00", "e9", "=", ":", " ", "\t", "\f",
                     "\n", "k", "é", "G", "\\u", "\\\\"]),
    max_size=30,
).map("".join)  # fmt: skip


@settings(max_examples=examples(3000), deadline=None)
@given(text=_TEXT)
def test_properties_text_is_read_as_before(text):
    new_problems: list = []
    old_problems: list = []
    assert _unescape_properties(text, "f", 3, new_problems) == _former_unescape(
        text, "f", 3, old_problems
    )
    assert new_problems == old_problems
    assert _PROP_KEY.match(text).group() == _former_key_end(text)


def test_the_key_pattern_is_linear():
    # (a backslash-heavy key 1 MB long: one pass)
    line = "\\=" * 500_000 + "=v"
    assert _PROP_KEY.match(line).group() == "\\=" * 500_000
    assert re.compile(_PROP_KEY.pattern)  # (compiles as written)


@pytest.mark.parametrize(
    "args",
    [("--keys", "200"), ("--keys", "200", "--sections"), ("--ini-continued", "100")],
)
def test_the_benchmark_runs_as_results_writes_it(tmp_path, args):
    """benchmarks/migrate_keys.py (RESULTS.md, fifty-third pass), small: it checks what
    each run wrote. No timing is asserted."""
    import os
    import subprocess
    from pathlib import Path

    import cfgcore

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "migrate_keys.py"
    if not script.is_file():
        pytest.skip("benchmarks/ is not here")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CFGCORE", "CONFIG_"))}
    env["PYTHONPATH"] = str(Path(cfgcore.__file__).resolve().parent.parent)
    env["HOME"] = env["TMPDIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, str(script), "--runs", "1", *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ("ms per key" in done.stdout) != ("--ini-continued" in args), done.stdout


def test_a_migration_leaves_the_mapping_and_the_next_migration_alone(tmp_path):
    """A default set under another default's value (``extra`` then ``extra.e``) was
    added to the mapping's own value: the caller's mapping changed, and so did the
    migrator's next result (with whatever the caller did to the tree it returned)."""
    legacy = tmp_path / "app.properties"
    legacy.write_text("app.name = x\n")
    mapping = {"defaults": {"extra": {"d": 1}, "extra.e": 2}}
    migrator = LegacyConfigMigrator(mapping, keep_unmapped=True)
    first = migrator.migrate(legacy)
    assert first.config == {"app": {"name": "x"}, "extra": {"d": 1, "e": 2}}
    assert first.report.defaulted == {"extra": {"d": 1, "e": 2}, "extra.e": 2}
    assert mapping == {"defaults": {"extra": {"d": 1}, "extra.e": 2}}
    first.config["extra"]["mine"] = 1
    again = migrator.migrate(legacy)
    assert again.config == {"app": {"name": "x"}, "extra": {"d": 1, "e": 2}}
