"""The test interpreter buckets an int id as its decimal text at any size, as the README
("Int ids") and both evaluators do.

Before, tests/spec_interpreter.py took an int past a double's range as unusable for
bucketing (no bucket: the flag's default), so a differential test drawing such an id
reported the evaluators wrong where they follow the README. Ids past Python's own
str() digit limit are included.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from cfgcore.snapshot import snapshot_from_dict
from tests.conftest import IMPLS
from tests.fuzz import examples
from tests.spec_interpreter import Interpreter, comparable
from tests.texts import any_text

SNAPSHOT = {
    "flags": {
        "roll": {
            "default": "off",
            "rules": [{"rollout": 50, "serve": "on"}],
            "bucket_by": "user_id",
        },
        "split": {
            "variants": {"a": 1, "b": 2, "c": 3},
            "default": "a",
            "rules": [{"split": {"a": 20, "b": 30, "c": 50}}],
            "bucket_by": ["account", "user_id"],
        },
    }
}
BIG = st.one_of(
    st.integers(min_value=2**1024, max_value=10**400),
    st.integers(min_value=-(10**400), max_value=-(2**1024)),
    st.integers(min_value=10**4400, max_value=10**4500),  # past str()'s default digit limit
    st.integers(min_value=-(2**64), max_value=2**64),
)


@settings(max_examples=examples(150))
@given(BIG, st.one_of(st.none(), BIG, any_text(max_size=5)))
def test_the_interpreter_and_both_evaluators_bucket_big_int_ids_alike(user_id, account):
    spec = Interpreter(snapshot_from_dict(SNAPSHOT))
    engines = [engine_class(IMPLS[k]).from_snapshot(SNAPSHOT) for k in IMPLS]
    ctx = {"user_id": user_id} if account is None else {"user_id": user_id, "account": account}
    for key in SNAPSHOT["flags"]:
        want = comparable(spec.evaluate(key, ctx))
        for engine in engines:
            assert comparable(engine.evaluate(key, ctx)) == want, key
            assert comparable(engine.evaluate(key, engine.context(ctx))) == want, key
        # the int and its decimal text are one user, up to 4,300 characters of text;
        # past them the int is no id: as if it were absent
        text = _text(user_id)
        as_text = {**ctx, "user_id": text} if len(text) <= 4300 else {**ctx, "user_id": None}
        assert comparable(spec.evaluate(key, as_text)) == want, key


def _text(n: int) -> str:
    from tests.spec_interpreter import _decimal

    return _decimal(n)
