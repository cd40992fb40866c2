"""What ``cfgcore flags stale`` says about imported hash schemes that cannot hash every
bound value, octal escapes without google-re2, and lowered log retention."""

from __future__ import annotations

import pytest

from cfgcore.compiler import compile_snapshot
from cfgcore.experiments.served import what_it_serves
from cfgcore.snapshot import Flag, Hashing, Rule, Snapshot

NOW = 1_800_000_000.0


def _hashed_flag(scheme: str, salt: str = "") -> Snapshot:
    h = Hashing(scheme=scheme, by=["user_id"], salt=salt, space=100)
    return Snapshot(flags={"f": Flag(default="off", rules=[Rule(hash=h, buckets=[("on", 100)])])})


@pytest.mark.parametrize(
    "scheme, salt, value",
    [
        ("flagd_v3_cbor", "", "not hex"),
        ("flagd_v3_cbor", "", 42),  # an int is no hex text either
        ("flagd_v3", "", 2**64),
        ("flagd_v3_pair", "k", -(2**64) - 5),
    ],
)
def test_served_report_names_values_the_scheme_cannot_hash(make, scheme, salt, value):
    snap = _hashed_flag(scheme, salt)
    got = what_it_serves(compile_snapshot(snap), NOW)["f"]
    engine = make(snap)
    # what the evaluators serve a user whose bucketing attribute the scheme cannot hash
    assert engine.variant("f", {"user_id": value}) == "off"
    assert got.state == "on" and not got.for_everyone and got.others == ("off",)
    text = got.describe()
    assert "every user with a bucketing attribute:" not in text, text
    assert scheme in text, text
    assert "get 'off': no bucketing attribute, or for " in text, text


def test_served_report_unchanged_for_schemes_that_hash_everything():
    got = what_it_serves(compile_snapshot(_hashed_flag("flagd_v3", "salt")), NOW)["f"]
    assert got.describe() == (
        "on for every user with a bucketing attribute: every path serves 'on' "
        "(users without one get 'off')"
    )


def test_a_prerequisite_on_such_a_flag_carries_the_note(make):
    h = Hashing(scheme="flagd_v3_cbor", by=["user_id"], space=100)
    snap = Snapshot(
        flags={
            "gate": Flag(default="off", rules=[Rule(hash=h, buckets=[("on", 100)])]),
            "f": Flag(default="on", prerequisites=["gate"], off_variant="off"),
        }
    )
    got = what_it_serves(compile_snapshot(snap), NOW)["f"]
    assert make(snap).variant("f", {"user_id": "zz"}) == "off"
    assert not got.for_everyone and got.unhashable
    assert "flagd_v3_cbor" in got.describe()
