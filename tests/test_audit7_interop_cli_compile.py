"""``cfgcore import``, seventh audit: a flag the importer lowers but the compiler
refuses (conditions nested past its 32 levels: a GrowthBook ``$not`` or a flagd ``!``
40 deep, which the SDKs evaluate). The whole import used to fail, naming the output
file as if it were at fault (``out.yaml: flags.f.rules[0].when.not.not...``); such a
flag is now refused like the importer's own refusals (listed, exit status 1) and the
other flags are imported.
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


def _gb_not(depth: int) -> Any:
    return {"country": "NL"} if depth == 0 else {"$not": _gb_not(depth - 1)}


def _flagd_not(depth: int) -> Any:
    return {"==": [{"var": "a"}, "x"]} if depth == 0 else {"!": [_flagd_not(depth - 1)]}


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
    assert "  - deep: refused: does not compile: flags.deep.rules[0]" in err
    assert "nested deeper than 32 levels" in err and "internal error" not in err
    assert not err.startswith("cfgcore: error:")  # not the whole import
    snap = load_snapshot(str(out))
    assert set(snap.flags) == {"ok"}
    assert "does not compile" in snap.metadata["refused"]["deep"]


def test_a_flag_that_compiles_is_imported_as_before(tmp_path, capsys):
    doc = {"shallow": {"defaultValue": 0, "rules": [{"condition": _gb_not(3), "force": 1}]}}
    code, err, out = _import(tmp_path, capsys, "growthbook", doc)
    assert (code, err) == (0, "")
    assert set(load_snapshot(str(out)).flags) == {"shallow"}
