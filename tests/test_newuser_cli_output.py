"""What a new user reads from `cfgcore demo` and `cfgcore experiment list`.

Found by running the README as a new user: the demo's table cut every flag name to
12 characters (`experimental` for `experimental_ml_models`) and showed only the first
six flags; `experiment list` printed the stored window with microseconds
(`2026-12-05T00:49:33.153269+00:00`) where `create` and `start` print it to the second
with its offset and in UTC.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.conftest import run_cli


def test_experiment_list_prints_the_window_as_create_printed_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    code, _, err = run_cli(
        capsys, "experiment", "create", "checkout", "--split", "control=50,green=50",
        "--start-date", "2027-03-01T09:00:00.123456Z", "--days", "14",
    )  # fmt: skip
    assert code == 0, err
    created = re.search(r"window (.*)$", err, re.M)
    assert created is not None, err
    code, out, _ = run_cli(capsys, "experiment", "list")
    assert code == 0
    [line] = out.splitlines()
    assert line == f"checkout  [not started]  control 50%, green 50%  {created.group(1)}"
    # to the second, in local time with its offset, then in UTC; no microseconds
    assert re.fullmatch(
        r".*  \S+:00:00[+-]\d\d:\d\d \(2027-03-01T09:00:00Z\) \.\. "
        r"\S+:00:00[+-]\d\d:\d\d \(2027-03-15T09:00:00Z\)",
        line,
    ), line


def test_experiment_list_shows_a_hand_edited_window_as_it_is(tmp_path, capsys, monkeypatch):
    """A date that is not an ISO instant with an offset is shown as stored (escaped)."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    assert run_cli(capsys, "experiment", "create", "t", "--split", "control=50,b=50")[0] == 0
    path = tmp_path / "flags.json"
    doc = json.loads(path.read_text())
    doc["experiments"]["t"]["start_date"] = "2027-01-01T00:00:00"  # no offset
    doc["experiments"]["t"]["end_date"] = "soon\x1b[2J"
    path.write_text(json.dumps(doc))
    code, out, _ = run_cli(capsys, "experiment", "list")
    assert code == 0
    assert out.rstrip("\n").endswith(r"2027-01-01T00:00:00 .. soon\x1b[2J")


def _demo(*args: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-m", "cfgcore", "demo", "--users", "200", *args],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return out.split("evaluator=")[1].split("\n\n")[1].splitlines()


def test_demo_table_names_every_flag_of_a_file_in_full(tmp_path):
    names = [f"feature_with_a_long_descriptive_name_{i:02d}" for i in range(25)]
    flags = "".join(
        f"  {n}:\n    rules:\n      - {{when: {{attr: user_segment, eq: premium}}, serve: on}}\n"
        "    default: off\n"
        for n in names
    )
    variants = (
        "  tier:\n    variants: {gold: 1, silver: 2}\n"
        "    rules:\n      - {when: {attr: region, eq: EU}, serve: gold}\n    default: silver\n"
    )
    (tmp_path / "flags.yaml").write_text("flags:\n" + variants + flags)
    table = _demo("--flags", str(tmp_path / "flags.yaml"))
    rows = [line.split() for line in table[2:]]
    # the first 20 flags, each named in full; then how many more there are
    assert [r[0] for r in rows[:20]] == ["tier", *names[:19]]
    assert rows[0][1:] == ["gold", "silver", "gold", "silver", "silver"]  # variants by region
    assert rows[1][1:] == ["True", "True", "False", "False", "False"]  # on for premium
    assert table[-1] == "... and 6 more flags"
    assert len(rows) == 21


def test_demo_table_is_aligned_one_column_per_user(tmp_path):
    table = _demo()
    widths = {len(line) for line in table}
    assert len(widths) == 1, table  # every row as wide as the header
    header = table[0]
    for column in ("premium/EU", "premium/US", "family/EU", "student/APAC", "free/US"):
        end = header.index(column) + len(column)
        assert all(line[end - 1] != " " for line in table[1:]), column  # right-aligned


def test_publish_with_an_empty_flags_from_cache_path_is_refused(tmp_path, capsys, monkeypatch):
    """`--flags-from-cache "$(ls STATE/fleet/NS-flags-*.msgpack)"` where the glob found
    nothing passes an empty path: it was read as no option at all, and the configuration
    was published alone, exit 0, while the operator believed the flags restored. Refused
    before anything is read or written (the store's address is never contacted)."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    code, out, err = run_cli(
        capsys, "publish", "--store", "redis://127.0.0.1:1/0?namespace=music",
        "-e", "staging", "--flags-from-cache", "",
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert err == "cfgcore: error: --flags-from-cache: no cache file given (an empty path)\n"


def test_a_test_created_and_not_started_is_reported_as_list_shows_it(tmp_path, capsys, monkeypatch):
    # The report said "stopped" (its stored status) where `list` says "not started".
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    split = ("--split", "control=50,green=50")
    assert run_cli(capsys, "experiment", "create", "checkout", *split)[0] == 0
    assert run_cli(capsys, "experiment", "create", "search", *split, "--start")[0] == 0
    assert run_cli(capsys, "experiment", "stop", "search")[0] == 0
    statuses = {}
    for name in ("checkout", "search"):
        code, out, err = run_cli(capsys, "experiment", "report", name, "--json")
        assert code == 0, err
        statuses[name] = json.loads(out)["status"]
        code, text, err = run_cli(capsys, "experiment", "report", name)
        assert f"(status: {statuses[name]}," in text.splitlines()[0], text
    assert statuses == {"checkout": "not started", "search": "stopped"}
    code, out, _ = run_cli(capsys, "experiment", "list")
    assert [line.split("  ")[1] for line in out.splitlines()] == ["[not started]", "[stopped]"]
