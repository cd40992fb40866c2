"""Validation speed: cfgcore's full rule set against type-only peers on the same tree.

Groups (one operation each; peers in the same group so ratios come from one run):

``validate-production``         the embedded production config, valid (the seed promises
                                < 200 ms; cfgcore's target is <= 10 ms).
``validate-broken-production``  the same config with 27 deliberate problems (reporting cost).
``validator-build``             building a validator (compiling the schema checker and rules).

Peers: ``msgspec.convert`` into the typed schema (types and ranges only, stops at the first
error: the floor for "just the schema"), and ``jsonschema`` (Draft 2020-12) with the schema
that ``cfgcore schema`` exports (types, ranges, enums, patterns; all errors). Neither checks
security, GDPR or business rules, so cfgcore does strictly more work per call.

Run: ``python -m pytest benchmarks/bench_validation.py --benchmark-enable -q``
"""

from __future__ import annotations

import copy
import os
import sys

import msgspec
import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.schema import ConfigSchema, json_schema
from cfgcore.config.tree import thaw
from cfgcore.validation.structure import _compile  # noqa: F401  (imported so build cost is warm)
from cfgcore.validation_engine import ConfigValidator, validate_configuration

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
from test_validation_engine import EXPECTED_BROKEN, _broken_production  # noqa: E402

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def production():
    return thaw(ConfigurationManager(environ={}).build_config("production"))


@pytest.fixture(scope="module")
def broken(production):
    return _broken_production(copy.deepcopy(production))


@pytest.fixture(scope="module")
def json_validator():
    return jsonschema.Draft202012Validator(json_schema())


# --- valid production config ------------------------------------------------------------------


@pytest.mark.benchmark(group="validate-production")
def test_cfgcore_validate_production(benchmark, production):
    report = benchmark(validate_configuration, production, "production")
    assert report.overall_valid and report.failures == []


@pytest.mark.benchmark(group="validate-production")
def test_msgspec_convert_production(benchmark, production):
    typed = benchmark(msgspec.convert, production, ConfigSchema)
    assert typed.auto_scaling.max_replicas == 20


@pytest.mark.benchmark(group="validate-production")
def test_jsonschema_validate_production(benchmark, production, json_validator):
    errors = benchmark(lambda: list(json_validator.iter_errors(production)))
    assert errors == []


# --- broken production config -----------------------------------------------------------------


@pytest.mark.benchmark(group="validate-broken-production")
def test_cfgcore_validate_broken(benchmark, broken):
    report = benchmark(validate_configuration, broken, "production")
    assert len(report.failures) == len(EXPECTED_BROKEN)


@pytest.mark.benchmark(group="validate-broken-production")
def test_msgspec_convert_broken(benchmark, broken):
    def first_error():
        try:
            msgspec.convert(broken, ConfigSchema)
        except msgspec.ValidationError as exc:
            return str(exc)
        return None

    assert benchmark(first_error) is not None


@pytest.mark.benchmark(group="validate-broken-production")
def test_jsonschema_validate_broken(benchmark, broken, json_validator):
    errors = benchmark(lambda: list(json_validator.iter_errors(broken)))
    assert errors  # schema-level problems only; no security/GDPR/business findings


# --- building a validator ---------------------------------------------------------------------


@pytest.mark.benchmark(group="validator-build")
def test_cfgcore_build_validator(benchmark, production):
    def build_and_run():
        return ConfigValidator().validate_config(production, "p", "production")

    assert benchmark(build_and_run).overall_valid


@pytest.mark.benchmark(group="validator-build")
def test_jsonschema_build_validator(benchmark, production):
    def build_and_run():
        return jsonschema.Draft202012Validator(json_schema()).is_valid(production)

    assert benchmark(build_and_run)
