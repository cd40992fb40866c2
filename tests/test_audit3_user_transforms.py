"""Round 3, the new user: the seed's ConfigurationTransformer example, and its mistakes.

The spec's example passes a list of step names. A single name given as a string was
iterated character by character (15 'unknown steps' 't', 'y', 'p', ...); it is one
step now. A misspelt step name gets a suggestion.
"""

from __future__ import annotations

import pytest

from cfgcore.config_utils import ConfigurationTransformer
from cfgcore.errors import TransformError

RAW = {"timeout": "30s", "size": "2GB", "port": "8080", "home": "${CFGCORE_T_HOME}"}


def test_the_seed_example_transforms_every_step():
    transformer = ConfigurationTransformer(env={"CFGCORE_T_HOME": "/srv"})
    out = transformer.transform(
        RAW, ["env_var_substitution", "type_conversion", "duration_parsing", "size_parsing"]
    )
    assert out == {"timeout": 30.0, "size": 2_000_000_000, "port": 8080, "home": "/srv"}
    assert RAW["port"] == "8080"  # the input is untouched


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("type_conversion", {"port": 8080, "timeout": "30s"}),
        ("duration_parsing", {"port": "8080", "timeout": 30.0}),
        ("size_parsing", {"size": 2_000_000_000}),
    ],
)
def test_one_step_given_as_a_string_is_that_step(step, expected):
    out = ConfigurationTransformer(env={"CFGCORE_T_HOME": "/srv"}).transform(RAW, step)
    assert out == ConfigurationTransformer(env={"CFGCORE_T_HOME": "/srv"}).transform(RAW, [step])
    assert {k: out[k] for k in expected} == expected


def test_a_misspelt_step_gets_a_suggestion_and_nothing_runs():
    with pytest.raises(TransformError) as exc:
        ConfigurationTransformer().transform(RAW, ["env_var_subsitution", "type_conversion"])
    assert str(exc.value) == (
        "unknown transformation step(s) 'env_var_subsitution' (did you mean "
        "'env_var_substitution'?); known: env_var_substitution, type_conversion, "
        "duration_parsing, size_parsing"
    )


def test_a_step_that_is_not_a_name_is_unknown_not_a_crash():
    with pytest.raises(TransformError, match=r"unknown transformation step\(s\) None"):
        ConfigurationTransformer().transform(RAW, [None])  # type: ignore[list-item]
