"""One test per operator, each run on both evaluators (ids c / py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz import examples


def flag_when(cond):
    return {"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}}


def check(make, cond, ctx):
    return make(flag_when(cond)).is_enabled("f", ctx)


CASES = [
    # (condition, context, expected)
    ({"attr": "seg", "eq": "premium"}, {"seg": "premium"}, True),
    ({"attr": "seg", "eq": "premium"}, {"seg": "Premium"}, False),
    ({"attr": "seg", "eq": "premium"}, {"seg": None}, False),
    ({"attr": "seg", "eq": "premium"}, {}, False),
    ({"attr": "n", "eq": 5}, {"n": 5}, True),
    ({"attr": "n", "eq": 5}, {"n": 5.0}, True),
    ({"attr": "n", "eq": 5}, {"n": "5"}, False),
    ({"attr": "n", "eq": "5"}, {"n": 5}, False),
    ({"attr": "b", "eq": True}, {"b": True}, True),
    ({"attr": "b", "eq": True}, {"b": 1}, False),
    ({"attr": "n", "eq": 1}, {"n": True}, False),
    ({"attr": "seg", "eq": "premium", "ignore_case": True}, {"seg": "PREMIUM"}, True),
    ({"attr": "seg", "ne": "free"}, {"seg": "premium"}, True),
    ({"attr": "seg", "ne": "free"}, {"seg": "free"}, False),
    ({"attr": "seg", "ne": "free"}, {}, False),
    ({"attr": "seg", "ne": "free"}, {"seg": 3}, False),
    ({"attr": "seg", "ne": "free", "ignore_case": True}, {"seg": "FREE"}, False),
    ({"attr": "seg", "ne": "free", "ignore_case": True}, {"seg": "Premium"}, True),
    ({"attr": "region", "in": ["EU", "UK"]}, {"region": "UK"}, True),
    ({"attr": "region", "in": ["EU", "UK"]}, {"region": "US"}, False),
    ({"attr": "region", "in": ["EU", "UK"]}, {"region": "eu"}, False),
    ({"attr": "region", "in": ["EU", "UK"], "ignore_case": True}, {"region": "eu"}, True),
    ({"attr": "region", "in": []}, {"region": "EU"}, False),
    ({"attr": "region", "in": [f"R{i}" for i in range(50)]}, {"region": "R37"}, True),
    ({"attr": "region", "in": [f"R{i}" for i in range(50)]}, {"region": "R50"}, False),
    ({"attr": "v", "in": ["a", 1, True]}, {"v": 1}, True),
    ({"attr": "v", "in": ["a", 1, True]}, {"v": True}, True),
    ({"attr": "region", "not_in": ["EU", "UK"]}, {"region": "US"}, True),
    ({"attr": "region", "not_in": ["EU", "UK"]}, {"region": "EU"}, False),
    ({"attr": "region", "not_in": ["EU", "UK"]}, {}, False),
    ({"attr": "region", "not_in": ["EU", "UK"]}, {"region": 7}, False),
    ({"attr": "region", "not_in": ["EU"], "ignore_case": True}, {"region": "eu"}, False),
    ({"attr": "region", "not_in": ["EU"], "ignore_case": True}, {"region": "us"}, True),
    ({"attr": "age", "lt": 18}, {"age": 17}, True),
    ({"attr": "age", "lt": 18}, {"age": 18}, False),
    ({"attr": "age", "le": 18}, {"age": 18}, True),
    ({"attr": "age", "gt": 18}, {"age": 18.5}, True),
    ({"attr": "age", "ge": 18}, {"age": 17.99}, False),
    ({"attr": "age", "ge": 18}, {"age": "20"}, False),
    ({"attr": "age", "ge": 18}, {"age": True}, False),
    ({"attr": "age", "ge": 18}, {"age": float("nan")}, False),
    ({"attr": "age", "lt": 18}, {"age": float("-inf")}, True),
    ({"attr": "age", "gt": 18}, {"age": 10**400}, False),
    ({"attr": "v", "semver_eq": "1.2.3"}, {"v": "1.2.3"}, True),
    ({"attr": "v", "semver_eq": "1.2.3"}, {"v": "v1.2.3+build.5"}, True),
    ({"attr": "v", "semver_lt": "2.0.0"}, {"v": "1.10.0"}, True),
    ({"attr": "v", "semver_lt": "1.0.0"}, {"v": "1.0.0-alpha"}, True),
    ({"attr": "v", "semver_gt": "1.0.0-alpha"}, {"v": "1.0.0-alpha.1"}, True),
    ({"attr": "v", "semver_gt": "1.0.0-alpha.beta"}, {"v": "1.0.0-alpha.1"}, False),
    ({"attr": "v", "semver_gt": "1.0.0-rc.1"}, {"v": "1.0.0-rc.11"}, True),
    ({"attr": "v", "semver_gt": "1.0.0"}, {"v": "not-a-version"}, False),
    ({"attr": "v", "semver_gt": "1.0.0"}, {"v": 2}, False),
    ({"attr": "email", "starts_with": "dj_"}, {"email": "dj_shadow@x.io"}, True),
    ({"attr": "email", "starts_with": "dj_"}, {"email": "d"}, False),
    ({"attr": "email", "ends_with": "@spotify.com"}, {"email": "a@spotify.com"}, True),
    ({"attr": "email", "ends_with": "@spotify.com"}, {"email": "a@spotify.co"}, False),
    (
        {"attr": "email", "ends_with": "@SPOTIFY.com", "ignore_case": True},
        {"email": "A@Spotify.COM"},
        True,
    ),
    ({"attr": "ua", "contains": "Android"}, {"ua": "Mozilla/5.0 (Linux; Android 14)"}, True),
    ({"attr": "ua", "contains": "Android"}, {"ua": "iPhone"}, False),
    ({"attr": "ua", "contains": "android", "ignore_case": True}, {"ua": "ANDROID tv"}, True),
    ({"attr": "ua", "contains": ""}, {"ua": "x"}, True),
    ({"attr": "ua", "contains": "x"}, {"ua": 5}, False),
    ({"attr": "city", "starts_with": "Mün"}, {"city": "München"}, True),
    ({"attr": "city", "contains": "straße", "ignore_case": True}, {"city": "HAUPTSTRASSE"}, True),
    ({"attr": "id", "matches": "^user-[0-9]+$"}, {"id": "user-42"}, True),
    ({"attr": "id", "matches": "^user-[0-9]+$"}, {"id": "user-x"}, False),
    ({"attr": "id", "matches": "user"}, {"id": "a user b"}, True),
    ({"attr": "id", "matches": "^USER", "ignore_case": True}, {"id": "user-1"}, True),
    ({"attr": "id", "matches": "a"}, {"id": "a" * 5000}, False),  # over the input bound
    ({"attr": "id", "matches": "a"}, {"id": 1}, False),
    ({"attr": "id", "exists": True}, {"id": 0}, True),
    ({"attr": "id", "exists": True}, {"id": None}, False),
    ({"attr": "id", "exists": True}, {"id": [1, 2]}, True),
    ({"attr": "id", "exists": False}, {}, True),
    ({"all": [{"attr": "a", "eq": 1}, {"attr": "b", "eq": 2}]}, {"a": 1, "b": 2}, True),
    ({"all": [{"attr": "a", "eq": 1}, {"attr": "b", "eq": 2}]}, {"a": 1, "b": 3}, False),
    ({"all": []}, {}, True),
    ({"any": []}, {}, False),
    ({"any": [{"attr": "a", "eq": 1}, {"attr": "b", "eq": 2}]}, {"b": 2}, True),
    ({"not": {"attr": "a", "eq": 1}}, {"a": 2}, True),
    ({"not": {"attr": "a", "eq": 1}}, {}, True),
    (
        {
            "any": [
                {"all": [{"attr": "a", "eq": 1}, {"not": {"attr": "b", "eq": 2}}]},
                {"attr": "c", "exists": True},
            ]
        },
        {"a": 1, "b": 3},
        True,
    ),
]


@pytest.mark.parametrize(
    ("cond", "ctx", "expected"), CASES, ids=[str(i) for i in range(len(CASES))]
)
def test_operator(make, cond, ctx, expected):
    assert check(make, cond, ctx) is expected


@pytest.mark.parametrize(("cond", "ctx", "expected"), CASES[:20], ids=[str(i) for i in range(20)])
def test_operator_with_bound_context(make, cond, ctx, expected):
    engine = make(flag_when(cond))
    assert engine.is_enabled("f", engine.context(ctx)) is expected


def test_segments_are_reusable_and_nest(make):
    engine = make(
        {
            "segments": {
                "premium": {"attr": "user_segment", "eq": "premium"},
                "premium_eu": {
                    "all": [{"segment": "premium"}, {"attr": "region", "in": ["EU", "UK"]}]
                },
            },
            "flags": {
                "a": {
                    "default": "off",
                    "rules": [{"when": {"segment": "premium_eu"}, "serve": "on"}],
                },
                "b": {
                    "default": "off",
                    "rules": [{"when": {"not": {"segment": "premium"}}, "serve": "on"}],
                },
            },
        }
    )
    assert engine.is_enabled("a", {"user_segment": "premium", "region": "UK"})
    assert not engine.is_enabled("a", {"user_segment": "premium", "region": "US"})
    assert not engine.is_enabled("b", {"user_segment": "premium"})
    assert engine.is_enabled("b", {"user_segment": "free"})


def test_int_ids_bucket_like_their_decimal_string(make):
    engine = make({"flags": {"f": {"default": "off", "rules": [{"rollout": 50, "serve": "on"}]}}})
    for uid in range(200):
        assert engine.is_enabled("f", {"user_id": uid}) == engine.is_enabled(
            "f", {"user_id": str(uid)}
        )


# Substring search is memmem where the C library has it: periodic, overlapping and
# non-ASCII texts (searched as UTF-8) answer as Python's `in`, on both evaluators.
_texts = st.text(alphabet="ab\u00e9\u4e16", max_size=40)


@settings(max_examples=examples(300), deadline=None)
@given(needle=_texts.filter(len), hay=_texts, ignore_case=st.booleans())
def test_contains_answers_as_python_in(make_py_and_c, needle, hay, ignore_case):
    cond = {"attr": "q", "contains": needle, "ignore_case": ignore_case}
    snapshot = {"flags": {"f": {"default": "off", "rules": [{"when": cond, "serve": "on"}]}}}
    want = needle.casefold() in hay.casefold() if ignore_case else needle in hay
    for build in make_py_and_c:
        assert build(snapshot).is_enabled("f", {"q": hay}) is want
