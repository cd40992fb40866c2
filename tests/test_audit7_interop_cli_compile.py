"""``cfgcore import``, seventh audit: a flag the importer lowers but the compiler
refuses (conditions nested past its 32 levels: a GrowthBook ``$not`` or a flagd ``!``
40 deep, which the SDKs evaluate). The whole import used to fail, naming the output
file as if it were at fault (``out.yaml: flags.f.rules[0].when.not.not...``); such a
flag is now refused like the importer's own refusals (listed, exit status 1) and the
other flags are imported. (Since fix8 the importers refuse such a flag themselves,
naming the rule, and merge nested nots: the cases nest and/or instead.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cfgcore.snapshot import load_snapshot
from tests.conftest import run_cli as run


def _import(tmp_path, capsys, system: str, doc: Any) -> tuple[int, str, Any]:
    src = tmp_path / "src.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "out.yaml"
    code, _, err = run(capsys, "import", system, str(src), "--out", str(out))
    return code, err, out


# Nested and/or alternating: the importers merge a not of a not, an and in an and
# and an or in an or, and move negations onto the tests (fix8); these do not merge.
def _gb_not(depth: int) -> Any:
    if depth == 0:
        return {"country": "NL"}
    return {"$and" if depth % 2 else "$or": [_gb_not(depth - 1), {"x": depth}]}


def _flagd_not(depth: int) -> Any:
    if depth == 0:
        return {"==": [{"var": "a"}, "x"]}
    return {"and" if depth % 2 else "or": [_flagd_not(depth - 1), {"var": f"b{depth}"}]}


_FLAGD_OK = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"}


@pytest.mark.parametrize(
    ("system", "doc"),
    [
        ("growthbook", {"deep": {"defaultValue": 0,
                                 "rules": [{"condition": _gb_not(40), "force": 1}]},
                        "ok": {"defaultValue": 1}}),
        ("flagd", {"flags": {"deep": {**_FLAGD_OK,
                                      "targeting": {"if": [_flagd_not(40), "on", "off"]}},
                             "ok": _FLAGD_OK}}),
    ],
)  # fmt: skip
def test_a_flag_the_compiler_refuses_is_refused_and_the_others_imported(
    tmp_path, capsys, system, doc
):
    code, err, out = _import(tmp_path, capsys, system, doc)
    assert code == 1, err
    # refused by the importer now, naming the flag and where (fix8), before the compiler
    assert "  - deep: " in err and ("rules[0].condition: " in err or "targeting: " in err)
    assert "levels deep once lowered" in err and "internal error" not in err
    assert not err.startswith("cfgcore: error:")  # not the whole import
    snap = load_snapshot(str(out))
    assert set(snap.flags) == {"ok"}
    assert "at most 33 levels" in snap.metadata["refused"]["deep"]


def test_a_flag_that_compiles_is_imported_as_before(tmp_path, capsys):
    doc = {"shallow": {"defaultValue": 0, "rules": [{"condition": _gb_not(3), "force": 1}]}}
    code, err, out = _import(tmp_path, capsys, "growthbook", doc)
    assert (code, err) == (0, "")
    assert set(load_snapshot(str(out)).flags) == {"shallow"}
