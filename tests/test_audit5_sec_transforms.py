"""Environment references in configuration files, as an attacker who can write one
config file: they cannot copy cfgcore's own keys into a served value, and a file of
references to a long variable cannot make one build allocate gigabytes."""

from __future__ import annotations

import pytest

from cfgcore.config.transforms import MAX_EXPANSION, ConfigurationTransformer
from cfgcore.errors import TransformError

KEYS = "k1:" + "A" * 44


@pytest.mark.parametrize("name", ["CFGCORE_SECRET_KEYS", "CFGCORE_AUDIT_KEY"])
@pytest.mark.parametrize("form", ["${%s}", "x-${%s:-none}", "${%s-}", "${%s:?needed}"])
def test_key_material_cannot_be_referenced(name, form):
    env = {name: KEYS}
    t = ConfigurationTransformer(env)
    with pytest.raises(TransformError) as err:
        t.transform({"public": {"banner": form % name}}, file="base.yaml")
    text = str(err.value)
    assert "key material" in text and "public.banner" in text and "base.yaml" in text
    assert KEYS not in text


def test_other_variables_still_expand():
    t = ConfigurationTransformer({"DB_HOST": "db", "CFGCORE_SECRET_KEY_FILE": "/k"})
    assert t.transform({"a": "${DB_HOST}:5432", "b": "${CFGCORE_SECRET_KEY_FILE}"}) == {
        "a": "db:5432",
        "b": "/k",
    }


def test_expansion_is_bounded_per_file_with_the_key_path():
    big = "x" * 100_000
    count = MAX_EXPANSION // len(big) + 2  # just past the budget
    tree = {"items": {f"k{i}": "${BIG}" for i in range(count)}}
    t = ConfigurationTransformer({"BIG": big})
    with pytest.raises(TransformError) as err:
        t.transform(tree, file="prod.yaml")
    problems = err.value.problems
    assert len(problems) == 1  # said once, at the value past the budget
    assert "MiB" in problems[0].message and problems[0].file == "prod.yaml"
    assert problems[0].path.startswith("items.k")


def test_a_file_within_the_budget_expands_whole():
    big = "y" * 100_000
    tree = {f"k{i}": "${BIG}${BIG}" for i in range(100)}  # 20 MB
    out = ConfigurationTransformer({"BIG": big}).transform(tree)
    assert all(v == big * 2 for v in out.values())
