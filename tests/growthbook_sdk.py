"""The real GrowthBook SDK's answers, for the tests that hold cfgcore's import to them.

Importing this module needs the ``growthbook`` package (the ``test`` extra); the test
modules that use it skip without it (``pytest.importorskip`` before importing this).
"""

from __future__ import annotations

import copy
import itertools
import pickle
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import growthbook as gb_sdk


def sdk_answers(
    features: Mapping[str, Any],
    users: Iterable[Mapping[str, Any]],
    forced: Iterable[Mapping[Any, Any]] = ({},),
    key: str = "f",
) -> tuple[list[Any], bool]:
    """The SDK's ``(value, type(value), on)`` for feature ``key``, for each user and
    each set of forced variations in turn (None where it raised), and whether it raised
    for any. Each evaluation gets its own deep copies: the SDK may keep or mutate what
    it is given."""
    out: list[Any] = []
    raised = False
    fresh_features = _copier(dict(features))
    for attrs, forced_variations in itertools.product(users, forced):
        sdk = gb_sdk.GrowthBook(
            attributes=_fresh(dict(attrs)),
            features=fresh_features(),
            forced_variations=dict(forced_variations),
        )
        try:
            res = sdk.eval_feature(key)
            out.append((res.value, type(res.value), res.on))
        except Exception:  # the SDK fails for this user
            raised = True
            out.append(None)
        finally:
            sdk.destroy()
    return out, raised


def _copier(value: Any) -> Any:
    """A function returning a new deep copy of ``value`` at each call: unpickled from
    one pickling (several times faster than ``copy.deepcopy`` for the features the
    tests build), by ``deepcopy`` for a value pickle cannot take."""
    try:
        blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - anything pickle refuses is deep-copied instead
        return lambda: copy.deepcopy(value)
    return lambda: pickle.loads(blob)


def _fresh(value: Any) -> Any:
    """A deep copy of ``value``: unpickled (several times faster than ``copy.deepcopy``
    for a large user), by ``deepcopy`` where pickle cannot take it or give it back."""
    try:
        return pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:  # noqa: BLE001 - anything pickle refuses is deep-copied instead
        return copy.deepcopy(value)


def assert_cfgcore_answers(
    engine: Any,
    want: list[Any],
    users: Iterable[Mapping[str, Any]],
    forced: Iterable[Mapping[Any, Any]] = ({},),
    key: str = "f",
    note: Any = None,
    contexts: Sequence[Any] | None = None,
) -> None:
    """``engine`` (an imported snapshot's) answers ``(value, type(value), on)`` for
    feature ``key`` as ``want`` (what :func:`sdk_answers` gave for the same users and
    forced variations, in the same order); a mismatch names the user, the forced
    variations and ``note``. ``contexts``: :func:`contexts` of the same users and
    forced variations, built once for several engines (an evaluation reads a context,
    never changes it); None: built here."""
    from cfgcore.interop import growthbook

    pairs = list(itertools.product(users, forced))
    assert len(pairs) == len(want), (len(pairs), len(want))
    if contexts is None:
        contexts = [growthbook.context(a, forced_variations=f) for a, f in pairs]
    assert len(contexts) == len(pairs), (len(contexts), len(pairs))
    for (attrs, forced_variations), ctx, w in zip(pairs, contexts, want, strict=True):
        value = growthbook.thaw(engine.evaluate(key, ctx).value)
        got = (value, type(value), engine.is_enabled(key, ctx))
        assert got == w, (note, attrs, forced_variations, got, w)


def contexts(
    users: Iterable[Mapping[str, Any]], forced: Iterable[Mapping[Any, Any]] = ({},)
) -> list[Any]:
    """``growthbook.context()`` of each user with each set of forced variations, in the
    order :func:`assert_cfgcore_answers` reads them."""
    from cfgcore.interop import growthbook

    return [
        growthbook.context(attrs, forced_variations=f)
        for attrs, f in itertools.product(users, forced)
    ]
