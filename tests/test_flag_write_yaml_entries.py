"""A YAML flag file's write emits the YAML of what changed, not of every flag: the file
store keeps each flag's text (:class:`cfgcore.snapshot.YamlEntries`) and the bytes it
writes are those of one ``dump_yaml`` of the whole document."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import DynamicConfigurationManager, FeatureFlag
from cfgcore.engine import bundled_flags_path
from cfgcore.snapshot import (
    Condition,
    Flag,
    Rule,
    Snapshot,
    YamlEntries,
    encode_snapshot,
    load_snapshot,
)
from cfgcore.yamlio import EMITTER, StrictDumper, dump_yaml, load_yaml
from tests.fuzz import examples


def _whole(data):
    return dump_yaml(data, sort_keys=False, allow_unicode=True)


def _catalog(n: int) -> Snapshot:
    """The bundled flags plus fillers up to ``n`` flags, some with text PyYAML quotes,
    escapes or folds (an emoji, a NEL, a description past the 80-column width)."""
    bundled = load_snapshot(bundled_flags_path())
    flags = dict(bundled.flags)
    kinds = [
        Flag(default="on", description="emoji 😀 and a NEL\x85 inside"),
        Flag(default="off", description="long " * 40, metadata={"": "empty key", "n": 2**70}),
        Flag(default="off", rules=[Rule(serve="on", rollout=25)]),
        Flag(default="off", rules=[Rule(when=Condition(segment="premium"), serve="on")]),
    ]
    for i in range(n - len(flags)):
        flags[f"flag_{i:04d}"] = kinds[i % len(kinds)]
    return msgspec.structs.replace(bundled, flags=flags)


@pytest.fixture
def big_yaml_manager(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_bytes(encode_snapshot(_catalog(200), "yaml"))
    manager = DynamicConfigurationManager(str(path), log_exposures=False)
    yield manager
    manager.close()


def test_a_flag_write_emits_the_changed_flag_only(big_yaml_manager, monkeypatch):
    m = big_yaml_manager
    m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, 10.0)  # the texts kept
    mappings = []
    real = StrictDumper.represent_mapping

    def counting(self, tag, mapping, flow_style=None):
        mappings.append(mapping)
        return real(self, tag, mapping, flow_style)

    monkeypatch.setattr(StrictDumper, "represent_mapping", counting)
    m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, 20.0)
    # Before: the whole document, 200 flags and their rules (over 400 mappings).
    assert 0 < len(mappings) < 10
    written = Path(m.flags_file).read_bytes()
    assert written == _whole(msgspec.to_builtins(m.snapshot)).encode()
    assert (
        load_snapshot(m.flags_file).flags["experimental_ml_models"]
        == m.snapshot.flags["experimental_ml_models"]
    )


def test_the_written_bytes_are_the_whole_documents(big_yaml_manager):
    m = big_yaml_manager
    for pct in (10.0, 20.0, 50.0, 100.0):
        m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, pct)
        m.register_custom_feature_flag(f"added_{int(pct)}", description="new 😀")
        written = Path(m.flags_file).read_bytes()
        assert written == encode_snapshot(m.snapshot, "yaml")


def test_a_value_changed_in_place_is_emitted_again():
    entries = YamlEntries()
    data = {"flags": {"a": {"metadata": {"owners": ["x"]}}, "b": {"default": "on"}}}
    assert entries.dump(data) == _whole(data)
    data["flags"]["a"]["metadata"]["owners"].append("y")  # the same objects, changed
    assert entries.dump(data) == _whole(data)
    assert "- y" in entries.dump(data)
    # a flag renamed keeps nothing of its old name's text
    data["flags"] = {"c" if k == "a" else k: v for k, v in data["flags"].items()}
    assert entries.dump(data) == _whole(data)


def test_no_flags_is_the_whole_documents_flow_mapping():
    entries = YamlEntries()
    assert entries.dump({"flags": {}}) == _whole({"flags": {}}) == "flags: {}\n"
    assert entries.dump({"flags": {"a": {}}, "segments": {}}) == "flags:\n  a: {}\nsegments: {}\n"


_TEXT = st.text(max_size=100) | st.text(
    alphabet=st.sampled_from(
        list(" \t\n\r\x85\u2028\u2029:#-?'\"{}[],&*!|>%@`ab0.e+\ufeff\x00😀é")
    ),
    max_size=120,
)
_SCALARS = st.none() | st.booleans() | st.integers() | st.integers(min_value=2**64) | st.floats()


def _nested(inner):
    return st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4))


_DATA = st.recursive(_SCALARS | _TEXT, _nested, max_leaves=20)


@settings(max_examples=examples(300))
@given(
    st.dictionaries(_TEXT, _DATA, max_size=3),
    st.dictionaries(_TEXT, _DATA, min_size=1, max_size=6),
    st.integers(0, 5),
    _DATA,
)
def test_entries_give_the_bytes_of_one_dump(other, flags, which, replacement):
    """Whatever the text (quoted, escaped, folded, complex keys), wherever "flags" stands,
    cold, warm, and after one flag changed."""
    doc = {k: v for k, v in other.items() if k != "flags"}
    doc["flags"] = flags
    doc.update({"segments": other.get("flags", {})})
    entries = YamlEntries()
    assert entries.dump(doc) == _whole(doc)
    assert entries.dump(doc) == _whole(doc)
    changed = dict(flags)
    changed[list(flags)[which % len(flags)]] = replacement
    doc["flags"] = changed
    assert entries.dump(doc) == _whole(doc)


# -- a process's first write: the texts taken back from the file it reads ----------


def _exactly(a, b) -> bool:
    """Type-strict equality of plain data (1, 1.0 and True differ; NaN is itself)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_exactly(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_exactly(x, y) for x, y in zip(a, b, strict=True))
    return repr(a) == repr(b)


def _store_written(tmp_path, n: int = 200) -> Path:
    """A YAML flag file of ``n`` flags written by a file store (its sidecar describes its
    texts), then left: the next manager is another process's first."""
    path = tmp_path / "flags.yaml"
    path.write_bytes(encode_snapshot(_catalog(n), "yaml"))
    m = DynamicConfigurationManager(str(path), log_exposures=False)
    m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, 10.0)
    m.close()
    return path


def _first_write_mappings(path: Path, monkeypatch) -> tuple[int, DynamicConfigurationManager]:
    m = DynamicConfigurationManager(str(path), log_exposures=False)
    mappings = []
    real = StrictDumper.represent_mapping

    def counting(self, tag, mapping, flow_style=None):
        mappings.append(mapping)
        return real(self, tag, mapping, flow_style)

    monkeypatch.setattr(StrictDumper, "represent_mapping", counting)
    m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, 30.0)
    monkeypatch.undo()
    return len(mappings), m


def test_a_first_write_emits_the_changed_flag_only(tmp_path, monkeypatch):
    """A new process (a fresh manager and store) writing a file a store wrote takes the
    other flags' texts from it: before, its first write emitted all 200 flags."""
    path = _store_written(tmp_path)
    emitted, m = _first_write_mappings(path, monkeypatch)
    try:
        assert 0 < emitted < 10
        assert path.read_bytes() == _whole(msgspec.to_builtins(m.snapshot)).encode()
        assert m.get_feature_flags_status()["experimental_ml_models"]["rollout_percentage"] == 30
    finally:
        m.close()


def _meta(path: Path) -> Path:
    return path.with_name(f".{path.name}.version")


@pytest.mark.parametrize(
    "damage",
    ["edited", "emitter", "parts_shifted", "parts_short", "data", "not_a_record"],
)
def test_texts_are_not_taken_from_a_file_the_record_does_not_describe(
    tmp_path, monkeypatch, damage
):
    """Edited by hand since (another checksum), written under another emitter, a record
    whose cuts or digest do not fit: every flag is emitted, and the bytes are still
    those of one dump of the whole document."""
    path = _store_written(tmp_path)
    meta = json.loads(_meta(path).read_text())
    record = meta["yaml"]
    parts = _parts(record)
    if damage == "edited":
        path.write_bytes(path.read_bytes().replace(b"flags:\n", b"flags:  \n", 1))
    elif damage == "emitter":
        record["emitter"] = "cfgcore-yaml/0 PyYAML/5.4"
    elif damage == "parts_shifted":  # a cut moved by one line, the total kept
        line = len(b"flags:\n")
        parts[2] -= line
        parts[3] += line
        record["parts"] = _packed(parts)
    elif damage == "parts_short":
        record["parts"] = _packed(parts[:-1])
    elif damage == "data":
        record["data"] = "0" * 64
    else:
        meta["yaml"] = [1, 2, 3]
    _meta(path).write_text(json.dumps(meta))
    emitted, m = _first_write_mappings(path, monkeypatch)
    try:
        assert emitted > 200  # every flag emitted again
        assert path.read_bytes() == _whole(msgspec.to_builtins(m.snapshot)).encode()
    finally:
        m.close()


def test_the_sidecar_describes_the_texts_of_the_file_written(tmp_path):
    path = _store_written(tmp_path, 30)
    record = json.loads(_meta(path).read_text())["yaml"]
    assert record["emitter"] == EMITTER
    text = path.read_bytes()
    parts = _parts(record)
    roots = len(msgspec.to_builtins(load_snapshot(path))) - 1  # the root's other entries
    assert sum(parts) == len(text) and len(parts) == roots + 1 + 30
    cuts = [sum(parts[:i]) for i in range(len(parts) + 1)]
    texts = [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    head = texts.index(b"flags:\n")
    assert all(t.startswith(b"  ") and t[2:3] != b" " for t in texts[head + 1 : head + 31])


def _parts(record) -> list[int]:
    """The lengths a record lists (little-endian 32-bit integers, in base64)."""
    raw = base64.b64decode(record["parts"])
    return [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw), 4)]


def _packed(parts: list[int]) -> str:
    return base64.b64encode(b"".join(n.to_bytes(4, "little") for n in parts)).decode()


@settings(max_examples=examples(300))
@given(
    st.dictionaries(_TEXT, _DATA, max_size=3),
    st.dictionaries(_TEXT, _DATA, min_size=1, max_size=6),
    st.integers(0, 5),
    _DATA,
)
def test_seeded_entries_give_the_bytes_of_one_dump(other, flags, which, replacement):
    """Texts taken back from a dump's bytes (decoded as a file store decodes a flag file:
    YAML 1.2, text keys) give the bytes of one dump of the changed document, whatever
    the text; they are taken whenever the bytes read back as the data written."""
    doc = {k: v for k, v in other.items() if k != "flags"}
    doc["flags"] = flags
    writer = YamlEntries()
    text = writer.dump(doc).encode()
    record = json.loads(json.dumps(writer.record()))  # through the sidecar's JSON
    try:
        read = load_yaml(text)
    except Exception:
        return  # (a document no flag file holds: nothing to take back)
    reader = YamlEntries()
    seeded = reader.seed(read, text, record)
    assert not seeded or _exactly(read, doc)  # taken only from bytes read back exactly
    changed = dict(read["flags"])
    changed[list(changed)[which % len(changed)]] = replacement
    read["flags"] = changed
    assert reader.dump(read) == _whole(read)
