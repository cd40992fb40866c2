"""An unknown field is named by its own key path, so its own line, and the message
suggests the field it may stand for, whatever form the document takes. msgspec names
the object holding it ("flags.a: object contains unknown field variantz", at the flag's
line; a top-level one with no path and no line at all)."""

from __future__ import annotations

import json

import msgspec
import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.policy import AccessPolicy, load_policy
from cfgcore.snapshot import SnapshotError, decode_snapshot, load_snapshot, snapshot_from_dict

CASES = [
    # (document, key path, line in the YAML form, suggestion)
    ({"flags": {}, "segmnts": {}}, "segmnts", 2, "segments"),
    ({"flags": {"a": {"default": "on", "variantz": {"on": 1}}}}, "flags.a.variantz", 4, "variants"),
    (
        {"flags": {"a": {"default": "on", "variants": {"on": 1},
                         "rules": [{"serve": "on", "whne": {"attr": "x", "eq": 1}}]}}},
        "flags.a.rules[0].whne", 8, "when",
    ),
    ({"flags": {}, "segments": {"s": {"attr": "x", "eqq": 1}}}, "segments.s.eqq", 5, "eq"),
]  # fmt: skip


def _yaml(doc) -> str:
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


@pytest.mark.parametrize("form", ["yaml", "json", "msgpack", "python"])
@pytest.mark.parametrize(("doc", "path", "line", "meant"), CASES)
def test_an_unknown_field_is_named_by_its_path_with_the_field_meant(
    tmp_path, form, doc, path, line, meant
):
    with pytest.raises(SnapshotError) as err:
        if form == "python":
            snapshot_from_dict(doc, file="f")
        elif form == "msgpack":
            decode_snapshot(msgspec.msgpack.encode(doc), "msgpack", file="f")
        else:
            file = tmp_path / f"flags.{form}"
            file.write_text(_yaml(doc) if form == "yaml" else json.dumps(doc, indent=1))
            load_snapshot(file)
    (problem,) = err.value.problems
    assert problem.path == path, str(err.value)
    assert problem.message.startswith(f"unknown field (did you mean {meant!r}"), str(err.value)
    if form == "yaml":
        assert problem.line == line, str(err.value)
    elif form == "json":  # the line of the field's own key
        text = (tmp_path / "flags.json").read_text().splitlines()
        assert f'"{path.rpartition(".")[2]}"' in text[problem.line - 1], str(err.value)


def test_an_access_policy_names_its_unknown_field(tmp_path):
    with pytest.raises(ConfigError) as err:
        AccessPolicy.from_mapping({"rols": {}}, origin="policy.yaml")
    (problem,) = err.value.problems
    assert (problem.path, problem.message) == ("rols", "unknown field (did you mean 'roles'?)")
    file = tmp_path / "policy.yaml"
    file.write_text("actors:\n  alice: [admin]\nrols:\n  admin: {}\n")
    with pytest.raises(ConfigError) as err:
        load_policy(file)
    assert f"{file}:3: rols: unknown field (did you mean 'roles'?)" in str(err.value)


class Limit(msgspec.Struct, forbid_unknown_fields=True):
    max: int
    note: str = ""


def test_a_typed_section_names_the_unknown_field_and_the_field_meant(tmp_path):
    (tmp_path / "base.yaml").write_text("limits:\n  a:\n    max: 1\n  b:\n    mx: 2\n")
    (tmp_path / "staging.yaml").write_text("x: 1\n")
    manager = ConfigurationManager(str(tmp_path), environ={}, record_usage=False)
    try:
        manager.load_environment_config("staging")
        with pytest.raises(ConfigError) as err:
            manager.section("limits", dict[str, Limit])
        (problem,) = err.value.problems
        assert (problem.path, problem.line) == ("limits.b.mx", 5), str(err.value)
        assert problem.message == "unknown field (did you mean 'max'?)"
    finally:
        manager.close()
