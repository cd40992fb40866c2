"""``cfgcore import``: a flag the importer converts but cfgcore's compiler refuses is
refused naming the flag's key path in the SOURCE file (``features[2]`` of an Unleash
payload, ``flags.<key>`` of a flagd document, ``features.<key>`` of GrowthBook), and
the key path the compiler gave named as one of the converted cfgcore document. It used
to say ``u.json: ... flags.café: ...``: a path the named file does not have.

The case: two flag keys that read alike in two Unicode forms (``café`` as one code
point and as ``e`` plus a combining accent). Unleash, flagd and GrowthBook take them
as two keys; cfgcore refuses the second, which no one could tell from the first.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest

from cfgcore.cli.interop import _compiled
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import load_snapshot, snapshot_from_dict
from tests.conftest import run_cli as run

NFC = "caf\u00e9"
NFD = unicodedata.normalize("NFD", NFC)
_ON = {"enabled": True, "strategies": [{"name": "default"}]}
_FLAGD = {"state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"}
_UNLEASH = {"version": 1, "features": [{"name": k, **_ON} for k in ("ok", NFC, NFD)]}
_DELTA = {"events": [
    {"type": "hydration", "eventId": 1, "features": [{"name": k, **_ON} for k in ("ok", NFC)],
     "segments": []},
    {"type": "feature-updated", "eventId": 2, "feature": {"name": NFD, **_ON}},
]}  # fmt: skip
_GB = {k: {"defaultValue": True} for k in ("ok", NFC, NFD)}

CASES = [
    ("unleash", _UNLEASH, "features[2]"),
    ("unleash", _DELTA, "events[1].feature"),
    ("flagd", {"flags": {"ok": _FLAGD, NFC: _FLAGD, NFD: _FLAGD}}, f"flags.{NFD}"),
    ("growthbook", {"features": _GB}, f"features.{NFD}"),
    ("growthbook", _GB, NFD),  # the features object alone: its keys are at the top
]


def _import(tmp_path, capsys, system: str, doc: Any) -> tuple[int, str, Any]:
    src = tmp_path / "src.json"
    src.write_text(json.dumps(doc))
    out = tmp_path / "out.yaml"
    code, _, err = run(capsys, "import", system, str(src), "--out", str(out))
    return code, err, out


@pytest.mark.parametrize(("system", "doc", "where"), CASES)
def test_a_flag_the_compiler_refuses_is_named_by_its_place_in_the_source(
    tmp_path, capsys, make, system, doc, where
):
    code, err, out = _import(tmp_path, capsys, system, doc)
    assert code == 1, err
    snap = load_snapshot(str(out))
    assert set(snap.flags) == {"ok", NFC}
    reason = snap.metadata["refused"][NFD]
    # the source's own key path first, then the converted document's, named as such
    assert reason.startswith(f"{where}: does not compile once converted "), reason
    assert f"(at flags.{NFD} in the converted cfgcore document): " in reason
    assert "read alike" in reason
    assert f"refused: {tmp_path / 'src.json'}:1: {where}: does not compile" in err
    assert "refused: flags." not in err or system == "flagd"  # flagd's own path is flags.<key>
    engine = make(snap)  # both evaluators answer the flags that were kept
    assert engine.is_enabled("ok") is True
    assert engine.is_enabled(NFC) is True


def test_a_problem_in_no_flag_names_the_source_file_and_the_converted_path():
    """A problem outside every flag (a segment) refuses the import: the message names
    the source file, no key path of it, and the converted document's path as such."""
    snap = snapshot_from_dict(
        {"flags": {"ok": {"default": "on", "variants": {"on": True}}},
         "segments": {"s": {"attr": "x", "matches": "("}}}
    )  # fmt: skip
    with pytest.raises(SnapshotError) as caught:
        _compiled(snap, "src.json", "out.yaml", {"ok": "features[0]"})
    (problem,) = caught.value.problems
    assert (problem.file, problem.path) == ("src.json", "")
    assert problem.message.startswith(
        "the imported flags do not compile (at segments.s.matches in the converted cfgcore "
        "document): invalid regular expression"
    )
    assert str(caught.value).startswith("src.json: the imported flags do not compile (at ")
