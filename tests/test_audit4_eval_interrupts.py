"""Fourth audit of the two evaluators: a KeyboardInterrupt (or any BaseException that
is not an Exception) raised while a ``matches`` condition searches its regex
propagates from both evaluators alike.

The compiled evaluator's condition walk cannot raise (it is C); its regex search
caught only Exceptions, so an interrupt arriving there (Ctrl-C while Python's ``re``
searches: ``re`` runs signal handlers during long searches; or, with google-re2, in
its Python wrapper) was printed as "Exception ignored" and read as "no match". The
reference evaluator let it through. An ordinary Exception from a search still reads
as "no match" on both (the never-raise promise).
"""

from __future__ import annotations

import signal
import sys
import threading

import pytest

from cfgcore import _regex
from cfgcore.engine import engine_class
from tests.conftest import IMPLS

# A pattern Python's re accepts as linear (no quantifier; the branches start with
# different characters) but slow to search for: every position of a long value tries
# every branch. 120 branches (the cost bound accepts at most 128 tried at every
# offset) on 4,096 characters: about 0.7 ms a search, against a microsecond for the
# rest of a call.
BRANCHES = 120
SLOW = "(?:" + "|".join(chr(0x100 + i) + "x" for i in range(BRANCHES)) + ")"
SLOW_TEXT = chr(0x100 + BRANCHES - 1) * 4096


def _flags(pattern: str, **more: dict) -> dict:
    flags = {
        "f": {
            "default": "off",
            "rules": [{"when": {"attr": "email", "matches": pattern}, "serve": "on"}],
        },
        # The condition one level down: the regex runs under a prerequisite.
        "g": {
            "default": "off",
            "prerequisites": [{"flag": "f", "variant": "off"}],
            "rules": [{"serve": "on"}],
        },
        # Under a not/any: the regex's answer is negated, so "no match" would serve "on".
        "h": {
            "default": "off",
            "rules": [
                {
                    "when": {"not": {"any": [{"attr": "email", "matches": pattern}]}},
                    "serve": "on",
                }
            ],
        },
        **more,
    }
    return {"flags": flags}


def _calls(engine, key, ctx):
    return {
        "is_enabled": lambda: engine.is_enabled(key, ctx),
        "variant": lambda: engine.variant(key, ctx),
        "value": lambda: engine.value(key, ctx, default="off"),
        "evaluate": lambda: engine.evaluate(key, ctx),
        "evaluate_all": lambda: engine.evaluate_all(ctx),
    }


def _contexts(engine, text):
    return {
        "dict": lambda: {"email": text},
        "context": lambda: engine.context({"email": text}),
        "mapping": lambda: _Attrs({"email": text}),
    }


class _Attrs:
    """A mapping that is not a dict (binds through get())."""

    def __init__(self, data):
        self.data = data

    def get(self, key, default=None):
        return self.data.get(key, default)

    def __getitem__(self, key):
        return self.data[key]

    def __iter__(self):
        return iter(self.data)

    def __len__(self):
        return len(self.data)


from collections.abc import Mapping  # noqa: E402

Mapping.register(_Attrs)


@pytest.fixture
def without_re2(monkeypatch):
    monkeypatch.setattr(_regex, "_re2", None)


@pytest.fixture
def alarm():
    """A SIGALRM handler raising KeyboardInterrupt (what Ctrl-C does), as a timer that
    fires every few milliseconds; ``alarm.fired`` counts its runs."""
    if (
        not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        pytest.skip("needs setitimer on the main thread")

    class Alarm:
        fired = 0

        def handler(self, signum, frame):
            Alarm.fired += 1
            raise KeyboardInterrupt

        def start(self):
            signal.setitimer(signal.ITIMER_REAL, 0.003)

        def stop(self):
            signal.setitimer(signal.ITIMER_REAL, 0)

    a = Alarm()
    old = signal.signal(signal.SIGALRM, a.handler)
    try:
        yield a
    finally:
        a.stop()
        signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("key", ["f", "g", "h"])
@pytest.mark.parametrize("how", ["dict", "context", "mapping"])
def test_ctrl_c_during_a_re_search_propagates_from_both(without_re2, make, alarm, key, how):
    engine = make(_flags(SLOW))
    assert isinstance(engine.snapshot().tables.objs[0], _regex._Pattern)  # re, not RE2
    ctx_of = _contexts(engine, SLOW_TEXT)[how]
    for name in _calls(engine, key, None):
        ctx = ctx_of()
        call = _calls(engine, key, ctx)[name]
        fired = alarm.fired
        # The timer fires within a few milliseconds, nearly always during one of the
        # searches (each takes far longer than the rest of a call): the loop stops at
        # the first firing. An interrupt read as "no match" leaves the loop without
        # an exception.
        with pytest.raises(KeyboardInterrupt):
            alarm.start()
            try:
                while alarm.fired == fired:
                    call()
            finally:
                alarm.stop()
        assert alarm.fired == fired + 1, name
    # Afterwards the engine answers as usual (no interrupt kept for a later call).
    assert engine.is_enabled("f", {"email": "\u0100x"}) is True
    assert engine.is_enabled("h", {"email": "zz"}) is True


class _Raising:
    """A tracer raising ``exc`` when the Python function with code ``code`` starts: an
    interrupt that arrives while that function runs."""

    def __init__(self, code, exc):
        self.code, self.exc, self.raised = code, exc, 0

    def __call__(self, frame, event, arg):
        if event == "call" and frame.f_code is self.code:
            self.raised += 1
            raise self.exc
        return None


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("how", ["dict", "context", "mapping"])
def test_an_interrupt_in_re2s_search_propagates_from_both(make, exc, how):
    re2 = pytest.importorskip("re2", reason="google-re2 ships no wheel for this platform")
    engine = make(_flags("^user-[0-9]+$"))
    pattern = engine.snapshot().tables.objs[0]
    assert type(pattern._regexp).__module__.startswith(re2.__name__)  # RE2 runs it
    code = type(pattern).search.__code__  # re2's Python wrapper: traceable
    for key in ("f", "g", "h"):
        for name in _calls(engine, key, None):
            raised = exc()
            tracer = _Raising(code, raised)
            ctx = _contexts(engine, "user-1")[how]()
            sys.settrace(tracer)
            try:
                with pytest.raises(exc) as info:
                    _calls(engine, key, ctx)[name]()
            finally:
                sys.settrace(None)
            assert info.value is raised and tracer.raised == 1, (key, name)
            del info
    assert engine.is_enabled("f", {"email": "user-1"}) is True
    assert engine.is_enabled("h", {"email": "user-1"}) is False


def test_an_exception_in_a_search_still_reads_as_no_match_on_both(make):
    """The never-raise promise for bad data: an Exception from the search (here from
    re2's wrapper, traced) is no match, on both evaluators."""
    re2 = pytest.importorskip("re2", reason="google-re2 ships no wheel for this platform")
    engine = make(_flags("^user-[0-9]+$"))
    code = type(engine.snapshot().tables.objs[0]).search.__code__
    assert re2 is not None

    def traced(call):
        # (a tracer that raises is removed: one per call)
        tracer = _Raising(code, ValueError("search failed"))
        sys.settrace(tracer)
        try:
            return call()
        finally:
            sys.settrace(None)
            assert tracer.raised == 1

    answers = (
        traced(lambda: engine.is_enabled("f", {"email": "user-1"})),
        traced(lambda: engine.is_enabled("h", {"email": "user-1"})),
        traced(lambda: engine.evaluate_all({"email": "user-2"})),
    )
    assert answers[0] is False and answers[1] is True
    assert answers[2]["f"] is False  # the first search raised; later ones ran untraced


@pytest.mark.skipif("c" not in IMPLS, reason="the compiled extension is not built")
def test_an_evaluate_all_interrupted_in_a_search_counts_alike_on_both():
    """The flags evaluated before the interrupt are counted, the rest are not (as for
    an interrupt from the clock, tests/test_audit3_eval_interrupts.py)."""
    re2 = pytest.importorskip("re2", reason="google-re2 ships no wheel for this platform")
    snapshot = {
        "flags": {
            "a_const": {"default": "off"},
            "b_rule": {"default": "off", "rules": [{"when": {"attr": "seg", "eq": "x"},
                                                   "serve": "on"}]},
            "c_off": {"default": "off", "enabled": False},
            "d_regex": {"default": "off", "rules": [{"when": {"attr": "seg", "matches": "^x"},
                                                    "serve": "on"}]},
            "e_const": {"default": "on"},
            "f_rule": {"default": "off", "rules": [{"when": {"attr": "seg", "eq": "x"},
                                                   "serve": "on"}]},
        }
    }  # fmt: skip
    counts = []
    for impl in ("c", "py"):
        engine = engine_class(IMPLS[impl]).from_snapshot(snapshot)
        code = type(engine.snapshot().tables.objs[0]).search.__code__
        assert re2 is not None
        for ctx in ({"seg": "x"}, engine.context({"seg": "x"})):
            sys.settrace(_Raising(code, KeyboardInterrupt()))
            try:
                with pytest.raises(KeyboardInterrupt):
                    engine.evaluate_all(ctx)
            finally:
                sys.settrace(None)
        taken = engine.take_evaluation_counts()
        counts.append((taken.evaluations, taken.errors))
    assert counts[0] == counts[1]
    assert {flag for flag, _, _ in counts[1][0]} == {"a_const", "b_rule", "c_off"}


def test_the_seed_api_lets_an_interrupt_in_a_search_through_on_both(impl):
    re2 = pytest.importorskip("re2", reason="google-re2 ships no wheel for this platform")
    engine = engine_class(impl).from_snapshot(_flags("^user-[0-9]+$"))
    code = type(engine.snapshot().tables.objs[0]).search.__code__
    assert re2 is not None
    seed = impl.SeedAPI(engine, {}, lambda *a: None)
    for ctx in ({"email": "user-1"}, engine.context({"email": "user-1"})):
        sys.settrace(_Raising(code, KeyboardInterrupt()))
        try:
            with pytest.raises(KeyboardInterrupt):
                seed.is_feature_enabled("f", ctx)
        finally:
            sys.settrace(None)
    assert seed.is_feature_enabled("f", {"email": "user-1"}) is True
