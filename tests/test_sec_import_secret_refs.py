"""``cfgcore import`` leaves out a flag whose payload holds ``${file:...}`` or an
``ENC[...]`` value: cfgcore resolves them when it serves the flag, so whoever edits
flags in the other system (flagd's files, a GrowthBook or Unleash project) could serve
any secret file, or decrypt any unbound envelope, as a flag value."""

from __future__ import annotations

import json
import os

import pytest

from cfgcore.snapshot import decode_snapshot
from tests.conftest import run_cli

pytestmark = pytest.mark.usefixtures("no_access_policy")

SECRET = "imported-secret-5b1e"


def _sources(ref: str) -> dict[str, dict]:
    return {
        "flagd": {
            "flags": {
                "banner": {"state": "ENABLED", "variants": {"a": ref, "b": "hi"},
                           "defaultVariant": "a"},
                "plain": {"state": "ENABLED", "variants": {"on": True, "off": False},
                          "defaultVariant": "on"},
            }
        },
        "growthbook": {
            "features": {
                "banner": {"defaultValue": {"text": [ref]}},
                "plain": {"defaultValue": True},
            }
        },
        "unleash": {
            "version": 1,
            "features": [
                {"name": "plain", "enabled": True, "strategies": []},
                {"name": "banner", "enabled": True, "strategies": [], "variants": [
                    {"name": "a", "weight": 500, "payload": {"type": "string", "value": "hi"}},
                    {"name": "b", "weight": 500, "payload": {"type": "string", "value": ref}},
                ]},
            ],
        },
    }  # fmt: skip


@pytest.fixture
def secret_file(tmp_path, monkeypatch):
    for var in list(os.environ):
        if var.startswith("CFGCORE"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    sec = tmp_path / "sec"
    sec.mkdir()
    (sec / "db").write_text(SECRET + "\n")
    monkeypatch.setenv("CFGCORE_SECRET_DIRS", str(sec))
    return str(sec / "db")


@pytest.mark.parametrize("system", ["flagd", "growthbook", "unleash"])
@pytest.mark.parametrize("kind", ["file", "envelope"])
def test_a_flag_holding_a_secret_reference_is_not_imported(
    tmp_path, capsys, secret_file, system, kind
):
    ref = f"${{file:{secret_file}}}" if kind == "file" else "ENC[fernet:gAAAAABk]"
    src = tmp_path / "src.json"
    src.write_text(json.dumps(_sources(ref)[system]))
    out = tmp_path / "flags.yaml"
    code, stdout, err = run_cli(capsys, "import", system, str(src), "--out", str(out))
    assert code == 1
    # named by the value's key path in the source (the one-line source's line 1)
    where = {
        "flagd": "flags.banner.variants.a",
        "growthbook": "features.banner.defaultValue.text[0]",
        "unleash": "features[1].variants[1].payload.value",
    }
    assert f"banner: refused: {src}:1: {where[system]}: holds an encrypted value" in err
    snap = decode_snapshot(out.read_bytes(), "yaml", file=str(out))
    assert sorted(snap.flags) == ["plain"]  # the others are imported as before
    assert "banner" in snap.metadata["refused"]
    assert "${file:" not in out.read_text() and "ENC[" not in out.read_text()


def test_unleash_reports_the_source_key_path_of_each_variant_it_lowers():
    from cfgcore.interop import unleash

    def variant(name, value):
        return {"name": name, "weight": 500, "payload": {"type": "string", "value": value}}

    doc = {
        "version": 1,
        "features": [
            {"name": "bad", "enabled": True, "strategies": "no list"},
            {"name": "f", "enabled": True, "variants": [variant("a", "1"), variant("b", "2")],
             "strategies": [
                 {"name": "default"},
                 # the same name with another payload is a second variant of ours
                 {"name": "default", "variants": [variant("c", "3"), variant("a", "4")]},
             ]},
        ],
    }  # fmt: skip
    paths: dict[str, dict[str, str]] = {}
    snap = unleash.to_snapshot(doc, on_error="skip", value_paths=paths)
    assert "bad" in snap.metadata["refused"] and "bad" not in paths  # refused: none
    assert paths == {
        "f": {
            "a": "features[1].variants[0]",
            "b": "features[1].variants[1]",
            "c": "features[1].strategies[1].variants[0]",
            "a#2": "features[1].strategies[1].variants[1]",
        }
    }
    for ours in paths["f"]:  # each names the variant its value came from
        assert snap.flags["f"].variants[ours]["payload"]["value"] == {
            "a": "1", "b": "2", "c": "3", "a#2": "4"
        }[ours]  # fmt: skip
