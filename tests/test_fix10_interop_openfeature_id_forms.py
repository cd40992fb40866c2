"""Exposure dedup through the OpenFeature provider, for a service that also calls the
seed API: an id is looked up in the form the dedup shards hold it, not turned into
text and parsed back.

Before, ``ExposureLogger.expose`` (the provider's path, through
``log_exposure``) turned an int id (an OpenFeature attribute ``user_id=42``) into its
text on every call, missed (a ``SeedAPI`` logs an exact int as the int), then parsed
the text back to the int to find it: two conversions and two set probes per call, for
every user the seed API had logged. And a text id that missed its shard was parsed
even when no ``SeedAPI`` had ever put an int in the shards (a service whose ids are
all text). Now an exact int is looked up as the int first, and a text id is parsed
only when the shards ever held an int. Users, entries and records are unchanged: one
per user, on both evaluators.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz import examples

api = pytest.importorskip("openfeature.api", reason="openfeature-sdk is not installed")

from openfeature.evaluation_context import EvaluationContext  # noqa: E402

from cfgcore._layout import DEDUP_SHARDS  # noqa: E402
from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager  # noqa: E402
from cfgcore.engine import engine_class  # noqa: E402
from cfgcore.experiments import exposures as exposures_mod  # noqa: E402
from cfgcore.experiments.exposures import ExposureLogger, MemorySink, read_exposures  # noqa: E402
from cfgcore.openfeature import CfgcoreProvider  # noqa: E402
from tests.conftest import IMPLS  # noqa: E402

_domains = itertools.count()
NOW = datetime.now(timezone.utc)


def _ab_test() -> ABTestConfiguration:
    return ABTestConfiguration(
        "t", "id forms", NOW - timedelta(days=1), NOW + timedelta(days=1),
        {"control": 50.0, "b": 50.0}, {"control": {}, "b": {}}, ["buy"],
    )  # fmt: skip


class _Served:
    def __init__(self, state_dir, impl) -> None:
        self.manager = DynamicConfigurationManager(
            state_dir=state_dir, engine=engine_class(impl)(), record_usage=False
        )
        assert self.manager.create_ab_test(_ab_test())
        self.provider = CfgcoreProvider(self.manager.engine, experiments=self.manager)
        domain = f"cfgcore-fix10-ids-{next(_domains)}"
        api.set_provider_and_wait(self.provider, domain=domain)
        self.client = api.get_client(domain)

    def of_variant(self, attrs: dict, targeting_key: str | None = None) -> str | None:
        ctx = EvaluationContext(targeting_key, attrs)
        return self.client.get_object_details("t", {}, ctx).variant

    def entries(self) -> list[tuple[str, str]]:
        shards = self.manager.exposures.seen_shards("t")
        return sorted((type(u).__name__, str(u)) for s in shards for u in s)

    def logged(self) -> list[str]:
        assert self.manager.exposures.flush(10)
        return sorted(e.user for e in read_exposures(self.manager.exposures.sinks[0].path))

    def close(self) -> None:
        self.provider.shutdown()
        self.manager.close()


@pytest.fixture
def served(tmp_path, impl):
    s = _Served(tmp_path, impl)
    yield s
    s.close()


@pytest.fixture
def text_conversions(monkeypatch):
    """How often the logger turns an id into its text (a counting wrapper around the
    real ``user_id_text``; the logger's answers are its own)."""
    calls = []
    real = exposures_mod.user_id_text

    def counted(uid):
        calls.append(uid)
        return real(uid)

    monkeypatch.setattr(exposures_mod, "user_id_text", counted)
    return calls


def test_an_int_id_the_seed_api_logged_is_found_as_the_int(served, text_conversions):
    users = range(-50, 150)
    seed = {u: served.manager.get_ab_test_variant("t", {"user_id": u}) for u in users}
    assert served.manager.exposures.flush(10)  # the writer files the records as text
    text_conversions.clear()
    for _ in range(3):
        for u in users:
            assert served.of_variant({"user_id": u}) == seed[u]
    # found as the int each time: never turned into text to be parsed back
    assert text_conversions == []
    assert served.entries() == sorted(("int", str(u)) for u in users)
    assert served.logged() == sorted(str(u) for u in users)


class _CountingSet(set):
    """A dedup shard that counts its lookups (a set; the logger's own code runs)."""

    probes = 0

    def __contains__(self, item):
        _CountingSet.probes += 1
        return super().__contains__(item)


def test_text_ids_are_not_parsed_when_no_int_was_ever_logged():
    logger = ExposureLogger([MemorySink()])
    try:
        logger._seen["t"] = tuple(_CountingSet() for _ in range(DEDUP_SHARDS))
        _CountingSet.probes = 0
        for i in range(100):
            logger.expose("t", "control", {"targeting_key": str(i)})
        # one probe per first exposure: no second probe for an int form no SeedAPI
        # ever put in the shards
        assert _CountingSet.probes == 100
        for i in range(100):
            logger.expose("t", "control", {"user_id": i})  # the same users, as ints
        assert _CountingSet.probes == 200
        assert logger.flush(10)
        assert sorted(e.user for e in logger.sinks[0].exposures) == sorted(map(str, range(100)))
    finally:
        logger.close()


_ids = st.one_of(
    st.integers(-(10**6), 10**6),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["042", "+42", "-0", "\u0664\u0662", "x", ""]),
)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    first=st.integers(-(10**6), 10**6),
    calls=st.lists(st.tuples(st.sampled_from(["seed", "of", "of_tk"]), _ids), max_size=30),
)
def test_mixed_paths_log_each_user_once_on_both_evaluators(tmp_path_factory, first, calls):
    # any mix of the seed API and the provider, int and text ids: one record and one
    # entry per user; and an int the seed API logged is then found through the
    # provider as the int, with no text conversion
    calls = [("seed", first), *calls]
    real = exposures_mod.user_id_text
    for impl in IMPLS.values():
        s = _Served(tmp_path_factory.mktemp("ids"), impl)
        try:
            for path, uid in calls:
                if path == "seed":
                    s.manager.get_ab_test_variant("t", {"user_id": uid})
                elif path == "of":
                    s.of_variant({"user_id": uid})
                elif isinstance(uid, str) and uid:
                    s.of_variant({}, targeting_key=uid)
            users = {str(u) for p, u in calls if p != "of_tk" or (isinstance(u, str) and u)}
            assert s.logged() == sorted(users)
            assert len(s.entries()) == len(users)
            held_as_int = [u for t, u in s.entries() if t == "int"]
            conversions: list = []

            def counted(uid, conversions=conversions):
                conversions.append(uid)
                return real(uid)

            exposures_mod.user_id_text = counted
            try:
                for u in held_as_int:
                    s.of_variant({"user_id": int(u)})
            finally:
                exposures_mod.user_id_text = real
            assert conversions == []
            assert s.logged() == sorted(users)
        finally:
            s.close()
