"""A flag document's own ``metadata`` holding a key that is not text (refused as a
flag's metadata is, before any JSON write, export, publish or swap), the line of each
flag `cfgcore import` refuses while it skips, and Unleash problems named by the
payload's own key path (``features[1].enabled``, not ``features.b.enabled``)."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore import Engine
from cfgcore.errors import ConfigError, SnapshotError, python_key_segment
from cfgcore.interop import InteropError, unleash
from cfgcore.runtime.flags import LiveFlags
from cfgcore.runtime.flagstore import FileFlagStore
from cfgcore.snapshot import encode_snapshot, snapshot_from_dict
from tests.conftest import run_cli
from tests.fuzz import examples

_FLAGS = {"f": {"variants": {"on": True, "off": False}, "default": "off"}}
_NOT_TEXT = st.one_of(
    st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), st.booleans(), st.binary(),
    st.none(),
)  # fmt: skip


def _doc(metadata):
    return {"flags": _FLAGS, "metadata": metadata}


def _nested(key, depth):
    value: object = {key: "v"}
    for _ in range(depth):
        value = {"k": [value]}
    return {"x": value}  # (a top-level key is typed: "expected str" at metadata)


# ------------------------------------------------------------------ document metadata


@settings(max_examples=examples(60), deadline=None)
@given(key=_NOT_TEXT, depth=st.integers(0, 3))
def test_a_document_metadata_key_that_is_not_text_is_refused_by_key_path(key, depth):
    value = _nested(key, depth)
    for fmt in ("msgpack", "python"):
        with pytest.raises(SnapshotError) as err:
            if fmt == "msgpack":
                Engine.from_bytes(msgspec.msgpack.encode(_doc(value)), format="msgpack")
            else:
                Engine.from_snapshot(_doc(value))
        [problem] = err.value.problems
        assert problem.path.startswith("metadata.x")
        assert problem.path.endswith(python_key_segment(key))
        assert "is not a string" in problem.message


@settings(max_examples=examples(40), deadline=None)
@given(key=_NOT_TEXT)
def test_json_and_yaml_writes_refuse_it_naming_the_path(key):
    snapshot = snapshot_from_dict(_doc({"x": {key: "v", "y": 1}}))  # not compiled
    for fmt in ("json", "yaml"):
        with pytest.raises(SnapshotError) as err:
            encode_snapshot(snapshot, fmt, file=f"flags.{fmt}")
        [problem] = err.value.problems
        assert (problem.file, problem.path) == (
            f"flags.{fmt}",
            "metadata.x" + python_key_segment(key),
        )


def test_a_yaml_flag_file_names_the_document_metadata_key_s_line(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text("flags: {}\nmetadata:\n  owner: team\n  x:\n    1: a\n")
    with pytest.raises(SnapshotError, match=r"flags\.yaml:5: metadata\.x\.1: key 1 is an integer"):
        Engine.from_file(path)


def test_engine_swap_refuses_it_even_when_no_flag_changed_and_keeps_serving(make):
    engine = make(_doc({"owner": "team"}))
    with pytest.raises(SnapshotError, match=r"metadata\.x\[None\]: key None \(NoneType\)"):
        engine.swap(_doc({"owner": "team", "x": {None: 1}}))
    assert engine.snapshot().tables.source.metadata == {"owner": "team"}
    assert engine.value("f", {}) is False


def test_live_flags_refuses_the_change_and_writes_nothing(tmp_path):
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(_doc({"owner": "team"})))
    before = path.read_bytes()
    live = LiveFlags(FileFlagStore(str(path)))
    try:
        with pytest.raises(ConfigError, match=r"metadata\.x\[1\]: key 1 \(int\)"):
            live.update(
                lambda s: msgspec.structs.replace(s, metadata={"x": {1: "a", "1": "b"}}),
                source="test",
            )
        assert path.read_bytes() == before  # never written with "1" twice or not at all
        assert live.source.metadata == {"owner": "team"}
    finally:
        live.close()


def test_live_flags_refuses_a_msgpack_file_holding_it_and_keeps_serving(tmp_path):
    path = tmp_path / "flags.msgpack"
    path.write_bytes(msgspec.msgpack.encode(_doc({"owner": "team"})))
    live = LiveFlags(FileFlagStore(str(path)))
    try:
        path.write_bytes(msgspec.msgpack.encode(_doc({"x": {None: "a"}})))
        assert live.refresh() is False
        assert "metadata.x[None]" in str(live.last_error)
        assert live.source.metadata == {"owner": "team"}
    finally:
        live.close()


@pytest.mark.parametrize(
    "doc, where",
    [
        (_doc({"x": {1: "a", "1": "b"}}), "metadata.x[1]"),  # the document's metadata
        ({"flags": {"f": {"variants": {"on": True, "off": False}, "default": "off",
                          "metadata": {"owner": {1: "a", "1": "b"}}}}},
         "flags.f.metadata.owner[1]"),  # a flag's
    ],
)  # fmt: skip
def test_fleet_publish_and_export_refuse_it_without_writing(
    redis_server, tmp_path, capsys, monkeypatch, doc, where
):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text("app: {name: demo}\n")
    (config / "development.yaml").write_text("{}\n")
    flags = tmp_path / "flags.msgpack"
    flags.write_bytes(msgspec.msgpack.encode(doc))
    url = redis_server.url + "?namespace=docmeta&cache=off"
    code, _out, err = run_cli(
        capsys, "publish", "-q", "--store", url, "--config-dir", str(config),
        "-e", "development", "--flags", str(flags),
    )  # fmt: skip
    assert code == 1
    assert "internal error" not in err and "TypeError" not in err
    assert f"{where}: key 1 (int) is not a string" in err
    assert redis_server.client().keys("*") == []  # nothing published
    code, out, err = run_cli(capsys, "export", "--format", "flagd", "--flags", str(flags))
    assert code == 1 and "internal error" not in err
    assert where in err and out == ""


def test_text_document_metadata_still_round_trips(tmp_path):
    from cfgcore.snapshot import decode_snapshot

    original = snapshot_from_dict(_doc({"x": {"1": "a", "None": [{"k": "v"}]}}))
    Engine.from_snapshot(original)
    for fmt in ("json", "msgpack", "yaml"):
        again = decode_snapshot(encode_snapshot(original, fmt), fmt)
        assert again.metadata == {"x": {"1": "a", "None": [{"k": "v"}]}}


# ------------------------------------------------------------------ Unleash key paths


def _feature(name, **fields):
    return {"name": name, "enabled": True, "strategies": [{"name": "default"}], **fields}


_NAMES = st.lists(
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=8),
    min_size=1, max_size=5, unique=True,
)  # fmt: skip
_BAD = st.sampled_from(
    [
        ({"enabled": "yes"}, ".enabled: expected a boolean, got a string"),
        ({"stale": 1}, ".stale: expected a boolean, got a number"),
        ({"strategies": "x"}, ".strategies: expected a list"),
        ({"variants": [{"name": "v", "weight": "1"}]}, ": malformed: variants[0].weight:"),
        (
            {"strategies": [{"name": "flexibleRollout", "parameters": {"rollout": "1e400"}}]},
            ".strategies[0].parameters.rollout: '1e400'",
        ),
    ]
)


@settings(max_examples=examples(60), deadline=None)
@given(names=_NAMES, at=st.integers(0, 4), bad=_BAD, delta=st.booleans())
def test_unleash_problems_name_the_payload_s_key_path_and_the_feature(names, at, bad, delta):
    at %= len(names)
    fields, said = bad
    feats = [_feature(n, **(fields if i == at else {})) for i, n in enumerate(names)]
    if delta:
        payload = {"events": [{"eventId": 1, "type": "hydration", "features": feats,
                               "segments": []}]}  # fmt: skip
        where = f"events[0].features[{at}]"
    else:
        payload = {"version": 1, "features": feats}
        where = f"features[{at}]"
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot(payload)
    [problem] = err.value.problems
    assert f"{problem.path}: {problem.message}".startswith(where + said)
    assert f"(feature {names[at]!r:.60})" in problem.message  # whose it is, in its words
    snap = unleash.to_snapshot(payload, on_error="skip")
    assert list(snap.metadata["refused"]) == [names[at]]  # listed by its name
    assert snap.metadata["refused"][names[at]].startswith(where + said)
    assert set(snap.flags) == set(names) - {names[at]}


def test_unleash_dependency_problems_name_both_features_by_position():
    parent = _feature(
        "parent",
        strategies=[{"name": "flexibleRollout", "parameters": {"rollout": "50"}}],
    )
    child = _feature("child", dependencies=[{"feature": "parent", "variants": ["x"]}])
    with pytest.raises(InteropError) as err:
        unleash.to_snapshot({"version": 1, "features": [parent, child]})
    [problem] = err.value.problems
    assert problem.path == "features[1].dependencies[0]"
    assert "(features[0].strategies[0].parameters.groupId)" in problem.message
    assert problem.message.endswith("(feature 'child')")


# ------------------------------------------------------------------ import: refused lines


def _import(capsys, tmp_path, src, system="unleash"):
    return run_cli(capsys, "import", system, str(src), "--out", str(tmp_path / "out.yaml"))


def test_import_lists_each_refused_unleash_feature_with_its_yaml_line(tmp_path, capsys):
    src = tmp_path / "unleash.yaml"
    src.write_text(
        "version: 1\n"
        "features:\n"
        "  - name: a\n"
        "    enabled: true\n"
        "  - name: b\n"
        "    enabled: 'yes'\n"
        "  - name: c\n"
        "    enabled: true\n"
        "    strategies:\n"
        "      - name: flexibleRollout\n"
        "        parameters:\n"
        "          rollout: '1e400'\n"
    )
    code, out, err = _import(capsys, tmp_path, src)
    assert code == 1 and "+ a" in out
    assert f"  - b: refused: {src}:6: features[1].enabled: expected a boolean" in err
    assert f"  - c: refused: {src}:12: features[2].strategies[0].parameters.rollout: " in err
    stored = (tmp_path / "out.yaml").read_text()
    assert "features[1].enabled: expected a boolean" in stored  # the reasons stay plain
    assert f"{src}:6" not in stored


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(count=st.integers(1, 6), at=st.integers(0, 5), bad=_BAD)
def test_import_names_the_line_of_each_refused_feature_in_a_json_source(
    tmp_path_factory, capsys, count, at, bad
):
    tmp = tmp_path_factory.mktemp("imp")
    at %= count
    fields, said = bad
    feats = [_feature(f"f{i}", **(fields if i == at else {})) for i in range(count)]
    text = json.dumps({"version": 1, "features": feats}, indent=2)
    src = tmp / "unleash.json"
    src.write_text(text)
    start = text.rindex("{", 0, text.index(f'"name": "f{at}"'))  # the feature's object
    if said.startswith(":"):  # said at the feature (its variants' "malformed" reason)
        line = text.count("\n", 0, start) + 1
    else:  # at the key the reason's path ends with
        last = said.split(":")[0].split(".")[-1].split("[")[0]
        line = text.count("\n", 0, text.index(f'"{last}"', start)) + 1
    code, _out, err = _import(capsys, tmp, src)
    assert code == 1
    assert f"  - f{at}: refused: {src}:{line}: features[{at}]{said}" in err


def test_import_lists_a_refused_flagd_flag_with_the_flag_s_line(tmp_path, capsys):
    # flagd's reasons name places inside the flag ("metadata: ..."), not source paths
    src = tmp_path / "flags.json"
    src.write_text(
        '{\n  "flags": {\n    "a": {"state": "ENABLED", "variants": {"on": true},'
        ' "defaultVariant": "on"},\n'
        '    "b": {\n      "state": "ENABLED",\n      "variants": {"on": true},\n'
        '      "defaultVariant": "on",\n      "targeting": {"nope": [1]}\n    }\n  }\n}\n'
    )
    code, _out, err = _import(capsys, tmp_path, src, "flagd")
    assert code == 1
    [listed] = [line for line in err.splitlines() if line.startswith("  - b: refused: ")]
    # the line of the construct refused, named by its key path
    assert listed == f"  - b: refused: {src}:8: flags.b.targeting.nope: JSONLogic operator 'nope'"


def test_a_refusal_naming_no_key_path_has_its_feature_s_line(tmp_path, capsys):
    src = tmp_path / "unleash.yaml"
    src.write_text(
        "version: 1\nfeatures:\n  - name: p\n    enabled: 'no'\n"
        "  - name: c\n    enabled: true\n    dependencies: [{feature: p}]\n"
    )
    code, _out, err = _import(capsys, tmp_path, src)
    assert code == 1
    assert f"  - c: refused: {src}:5: depends on the refused feature 'p'" in err
    assert f"  - p: refused: {src}:4: features[0].enabled" in err


def test_a_json_write_of_an_uncompiled_flag_metadata_key_names_it():
    snapshot = snapshot_from_dict({"flags": {"f": {**_FLAGS["f"], "metadata": {"o": {None: 1}}}}})
    with pytest.raises(SnapshotError) as err:
        encode_snapshot(snapshot, "json", file="flags.json")
    [problem] = err.value.problems
    assert (problem.file, problem.path) == ("flags.json", "flags.f.metadata.o[None]")


def test_an_unleash_segment_problem_is_listed_with_the_segment_s_line(tmp_path, capsys):
    src = tmp_path / "unleash.yaml"
    src.write_text(
        "version: 1\n"
        "segments:\n"
        "  - id: 3\n"
        "    constraints: []\n"
        "  - id: 7\n"
        "    constraints:\n"
        "      - {contextName: x, operator: NUM_GT, value: '', inverted: true}\n"
        "features:\n"
        "  - name: f\n"
        "    enabled: true\n"
        "    strategies: [{name: default, segments: [7]}]\n"
        "  - name: ok\n"
        "    enabled: true\n"
    )
    code, _out, err = _import(capsys, tmp_path, src)
    assert code == 1
    assert f"  - f: refused: {src}:7: segments[1].constraints[0]: NUM_GT constraint" in err
    with pytest.raises(InteropError) as raised:
        unleash.to_snapshot(load_yaml_text(src))
    [problem] = raised.value.problems
    assert problem.path == "segments[1].constraints[0]"
    assert problem.message.endswith("(feature 'f')")


def load_yaml_text(path):
    from cfgcore.yamlio import load_yaml

    return load_yaml(path.read_text())
