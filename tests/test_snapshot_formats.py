"""Snapshot decoding: YAML, JSON and MessagePack carry the same model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.engine import Engine, bundled_flags_path
from cfgcore.snapshot import Flag, Snapshot, decode_snapshot, encode_snapshot, load_snapshot
from cfgcore.yamlio import load_yaml
from tests.fuzz import examples


def test_bundled_flags_roundtrip_through_every_format(tmp_path):
    snap = load_snapshot(bundled_flags_path())
    for fmt, ext in (("yaml", "yaml"), ("json", "json"), ("msgpack", "msgpack")):
        data = encode_snapshot(snap, fmt)
        assert decode_snapshot(data, fmt) == snap
        path = tmp_path / f"flags.{ext}"
        path.write_bytes(data)
        engine = Engine.from_file(path)
        ctx = {"user_id": "12345", "user_segment": "premium", "region": "EU"}
        assert engine.evaluate_all(ctx) == Engine.bundled().evaluate_all(ctx)


def test_yaml_uses_yaml_1_2_booleans():
    doc = load_yaml("a: on\nb: off\nc: yes\nd: NO\ne: true\nf: False\n")
    assert doc == {"a": "on", "b": "off", "c": "yes", "d": "NO", "e": True, "f": False}


def test_variants_named_on_and_off_survive_yaml():
    engine = Engine.from_bytes(
        "flags:\n  f:\n    default: off\n    rules: [{when: {attr: s, eq: p}, serve: on}]\n"
    )
    assert engine.is_enabled("f", {"s": "p"}) and not engine.is_enabled("f", {"s": "q"})


def test_seed_flags_behave_as_the_spec_examples():
    engine = Engine.bundled()
    assert engine.is_enabled("enhanced_anomaly_detection", {"user_segment": "premium"})
    assert not engine.is_enabled("enhanced_anomaly_detection", {"user_segment": "free"})
    ctx = engine.context({"user_id": "12345", "user_segment": "premium", "region": "EU"})
    assert engine.variant("recommendation_algorithm_v2", ctx) in {
        "control",
        "variant_a",
        "variant_b",
    }
    algo = engine.value("recommendation_algorithm_v2", ctx)["algorithm"]
    assert algo in {"matrix_factorization", "deep_neural_network", "hybrid_ensemble"}


names = st.text(st.characters(min_codepoint=48, max_codepoint=122), min_size=1, max_size=8)


@settings(max_examples=examples(50), deadline=None)
@given(
    st.dictionaries(
        names,
        st.fixed_dictionaries({"enabled": st.booleans(), "description": st.text(max_size=20)}),
        max_size=5,
    )
)
def test_encode_decode_roundtrip(flags):
    from cfgcore.snapshot import snapshot_from_dict

    snap = snapshot_from_dict({"flags": flags})
    for fmt in ("yaml", "json", "msgpack"):
        assert decode_snapshot(encode_snapshot(snap, fmt), fmt) == snap


def test_yaml_alias_bomb_is_refused_quickly():
    import time

    import pytest

    from cfgcore.errors import ConfigError

    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="expands to more than"):
        load_yaml("\n".join(lines), file="bomb.yaml")
    assert time.perf_counter() - t0 < 30  # a guard against hanging, not a benchmark


def test_yaml_anchors_within_budget_still_work():
    doc = load_yaml("base: &b {x: 1}\nother: *b\n")
    assert doc == {"base": {"x": 1}, "other": {"x": 1}}


def test_decoded_snapshots_cannot_change_in_place():
    """Compiled tables are reused for flags whose Struct did not change, so a Struct
    must not change behind the compiler's back."""
    import msgspec
    import pytest

    snap = load_snapshot(bundled_flags_path())
    flag = snap.flags["enhanced_anomaly_detection"]
    with pytest.raises(AttributeError):
        flag.enabled = False  # type: ignore[misc]
    with pytest.raises(AttributeError):
        flag.rules[0].serve = "off"  # type: ignore[misc]
    changed = msgspec.structs.replace(flag, enabled=False)
    assert changed.enabled is False and flag.enabled is True


# Strings YAML 1.2 (this project's loader) reads as numbers or booleans and YAML 1.1 (the
# dumper's default rules) does not, or the other way round: each must be quoted.
NUMBERISH = ["1e3", "-2E-5", "0o17", "0x1F", "0644", "12:30", "1_000", "on", "NO", ".5", "+1"]


def test_numberish_names_and_texts_round_trip_through_yaml():
    flags = {n: Flag(default="on", description=n) for n in NUMBERISH}
    snap = Snapshot(flags=flags)
    assert decode_snapshot(encode_snapshot(snap, "yaml"), "yaml") == snap


@settings(max_examples=examples(300), deadline=None)
@given(st.text(alphabet="0123456789eE+-._:oxXabcfnoty", max_size=8))
def test_any_string_dumped_reads_back_as_that_string(text):
    import yaml

    from cfgcore.yamlio import dump_yaml

    dumped = dump_yaml({text: [text]})
    assert load_yaml(dumped) == {text: [text]}  # cfgcore's YAML 1.2 reader
    assert yaml.safe_load(dumped) == {text: [text]}  # and a YAML 1.1 one
