"""What ``cfgcore flags stale`` says about imported hash schemes that cannot hash every
bound value, octal escapes without google-re2, and lowered log retention."""

from __future__ import annotations

import os

import pytest

from cfgcore import _regex
from cfgcore.compiler import compile_snapshot
from cfgcore.experiments.exposures import JsonLinesSink, read_log
from cfgcore.experiments.served import what_it_serves
from cfgcore.snapshot import Flag, Hashing, Rule, Snapshot, snapshot_from_dict
from tests.test_fix8_eval_regex import _both

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


# -- RE2's octal escapes, class escapes before "-", (?<name>...) without google-re2 ----

OCTAL_TEXTS = ["\n", "A", "a", "Ab", "\u01ff", "\u0100", "\x00", "\x081", "-", "z", "1", "_",
               " ", "]", "x\n9", "Z", "é"]  # fmt: skip


@pytest.mark.skipif(_regex._re2 is None, reason="google-re2 is not installed")
@pytest.mark.parametrize("ignore_case", [False, True])
@pytest.mark.parametrize(
    "pattern",
    [r"\12", r"\101", r"\777", r"\400", r"x\129", r"\1234", r"[\12]", r"[\101-\132]",
     r"[^\101]", r"[\135]", r"[a\055z]", r"(a)\12", r"^\101{2}$", r"\0101",
     r"[\w-z]", r"[\d-z]", r"[\W-z]", r"[\s-\d]", r"[\d--z]", r"[\w-]",
     r"(?<n>a)", r"(?<n>a)(?P<m>b)", r"(?<1>a)", r"(?P<1>a)", r"(?<n>a)(?<n>b)", r"(?<i>)A",
     r"(?P<i>x)A", "(?<\u2160>a)"],
)  # fmt: skip
def test_fallback_accepts_what_re2_accepts_with_its_meaning(pattern, ignore_case):
    got = _both(pattern, ignore_case, OCTAL_TEXTS)
    assert got is not None and got[0] == got[1] and got[0][0] == "answers", (pattern, got)


@pytest.mark.skipif(_regex._re2 is None, reason="google-re2 is not installed")
@pytest.mark.parametrize(
    "pattern", [r"\1", r"\18", r"\8", r"(a)\1", r"(?<a-b>x)", r"(?<>a)", r"(?P<a", "(?<\xb2>x)"]
)
def test_a_backreference_is_still_refused_with_re2s_reason(pattern):
    got = _both(pattern, False, OCTAL_TEXTS)
    assert got is not None and got[0] == got[1] and got[0][0] == "refused", (pattern, got)


@pytest.mark.skipif(_regex._re2 is None, reason="google-re2 is not installed")
def test_octal_escape_in_a_flag_evaluates_alike_without_re2(make, monkeypatch):
    monkeypatch.setattr(_regex, "_re2", None)
    snap = snapshot_from_dict(
        {"flags": {"f": {"default": "off", "rules": [
            {"when": {"attr": "code", "matches": r"^\101\102[\60-\71]$"}, "serve": "on"}]}}}
    )  # fmt: skip
    engine = make(snap)
    assert engine.variant("f", {"code": "AB7"}) == "on"
    assert engine.variant("f", {"code": "AB"}) == "off"


# -- lowering a log's retention (JsonLinesSink backups) ---------------------------------


def _fill(sink, rounds: int) -> None:
    for i in range(rounds):
        sink.write([{"i": i, "pad": "x" * 60}])  # each batch past max_bytes: one rotation


@pytest.mark.parametrize("lowered", [2, 0])
def test_lowered_backups_remove_the_older_files_at_the_next_rotation(tmp_path, lowered):
    path = tmp_path / "flags.exposures.jsonl"
    _fill(JsonLinesSink(path, max_bytes=50, backups=5), 8)
    assert [os.path.exists(f"{path}.{n}") for n in range(1, 7)] == [True] * 5 + [False]
    assert len(list(read_log(path, dict))) == 6  # the file and its 5 backups
    (tmp_path / "flags.exposures.jsonl.9").write_text('{"i": -9}\n')  # past a gap: unread
    (tmp_path / "flags.exposures.jsonl.lock2").write_text("")  # not a backup
    sink = JsonLinesSink(path, max_bytes=50, backups=lowered)
    _fill(sink, 1)
    kept = sorted(p.name for p in tmp_path.iterdir() if p.name != "flags.exposures.jsonl.lock")
    assert kept == sorted(
        ["flags.exposures.jsonl", "flags.exposures.jsonl.lock2"]
        + [f"flags.exposures.jsonl.{n}" for n in range(1, lowered + 1)]
    )
    records = list(read_log(path, dict))
    assert len(records) == lowered + 1 and {r["i"] for r in records} >= {0}
    assert sink.files() == [f"{path}.{n}" for n in range(lowered, 0, -1)] + [str(path)]
