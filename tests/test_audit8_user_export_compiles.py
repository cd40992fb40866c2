"""`cfgcore export` exports only a flag document the services would serve: one the
compiler refuses (a default naming no variant, an unknown off variant) was written out
as flagd JSON with exit status 0, a `defaultVariant` flagd has no variant for."""

from __future__ import annotations

import json

from tests.conftest import run_cli


def test_an_uncompilable_document_is_not_exported(tmp_path, capsys):
    flags = tmp_path / "flags.yaml"
    flags.write_text(
        "flags:\n  h: {default: nope}\n  r: {variants: {a: 1}, default: a, off_variant: zz}\n"
    )
    out = tmp_path / "flagd.json"
    code, stdout, err = run_cli(
        capsys, "export", "--format", "flagd", "--flags", str(flags), "--out", str(out)
    )
    assert code == 1
    assert not out.exists() and stdout == ""
    assert f"{flags}: flags.h.default: unknown variant 'nope'" in err
    assert "flags.r.off_variant: unknown variant 'zz'" in err


def test_a_document_that_compiles_is_exported(tmp_path, capsys):
    flags = tmp_path / "flags.yaml"
    flags.write_text("flags:\n  h: {variants: {a: 1, b: 2}, default: b}\n")
    code, stdout, _err = run_cli(capsys, "export", "--format", "flagd", "--flags", str(flags))
    assert code == 0
    assert json.loads(stdout)["flags"]["h"]["defaultVariant"] == "b"
