"""cfgcore import, reviewed: 43cd535 made a flag the compiler refuses a refused flag
instead of failing the whole import. Finding each problem's flag scanned every flag
for every problem, so a file of many flags the compiler refuses (a hostile 40,000
'!'-nested flags) cost the number of problems times the number of flags, hours where
the import refused at once before. The flag is now looked up by the path's own
prefixes. The partial import itself: exit status 1, the output holds exactly the
flags that compile, and reads back and answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from cfgcore.cli import main
from cfgcore.cli.interop import _flag_of
from cfgcore.engine import Engine
from cfgcore.interop import flagd
from cfgcore.snapshot import load_snapshot


class _NoScan(Mapping[str, Any]):
    """Flags that can be looked up but not scanned."""

    def __init__(self, keys: set[str]) -> None:
        self.keys_ = keys

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys_:
            raise KeyError(key)
        return {}

    def __contains__(self, key: object) -> bool:
        return key in self.keys_

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("the flags were scanned for one problem")

    def __len__(self) -> int:
        return len(self.keys_)


@pytest.mark.parametrize(
    ("path", "want"),
    [
        ("flags.a.rules[0].when", "a"),
        ('flags["a.deep"].rules[0].when.not', "a.deep"),
        ('flags["a.deep"]', "a.deep"),
        ("flags.a.deep", "a"),  # flag a, field deep: a key holding a dot is quoted
        ("flags.a", "a"),
        ('flags["we ird[0]"].rules[1]', "we ird[0]"),
        ("flags.b[2].x", None),
        ("segments.a.all[0]", None),
        ("flags.", None),
        ("flags.ab.rules", None),
    ],
)
def test_a_problem_is_found_in_its_flag_without_scanning_the_flags(path, want):
    flags = {"a", "a.deep", "we ird[0]", "a.deep.rules[0"}
    assert _flag_of(path, _NoScan(flags)) == want


def _deep(n: int) -> dict[str, Any]:
    # alternating and/or: a '!' of a '!' is merged on import (fix8), these are not
    cond: dict[str, Any] = {"==": [{"var": "x"}, "1"]}
    for i in range(n):
        cond = {"and" if i % 2 else "or": [cond, {"var": f"y{i}"}]}
    return cond


def _flag(cond: Any) -> dict[str, Any]:
    return {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "targeting": {"if": [cond, "on", "off"]},
    }


def test_many_flags_the_compiler_refuses_leave_a_complete_output(tmp_path, capsys):
    flags = {}
    for i in range(300):
        deep = i % 3 == 0
        flags[f"f.{i}" if i % 2 else f"f{i}"] = _flag(
            _deep(40) if deep else {"==": [{"var": "x"}, str(i)]}
        )
    src = tmp_path / "flags.json"
    src.write_text(json.dumps({"flags": flags}))
    out = tmp_path / "out.json"
    rc = main(["import", "flagd", str(src), "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    bad = {k for i, k in enumerate(flags) if i % 3 == 0}
    snap = load_snapshot(str(out))
    assert set(snap.flags) == set(flags) - bad
    assert set(snap.metadata["refused"]) == bad
    assert f"{len(bad)} flags refused" in err
    engine = Engine.from_snapshot(snap)
    for i, key in enumerate(flags):
        if key not in bad:
            assert engine.is_enabled(key, flagd.context("k", {"x": str(i)})) is True
            assert engine.is_enabled(key, flagd.context("k", {"x": "no"})) is False
