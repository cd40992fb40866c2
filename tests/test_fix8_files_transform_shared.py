"""Fix 8: ``ConfigurationTransformer.transform`` of a value sharing one dict or list in
many places.

``transform`` (public API) walked the tree key path by key path, so a YAML document
loaded with aliases of aliases (PyYAML shares an aliased node: a "billion laughs" file
of a few hundred bytes), or one dict referenced at both keys of each of 60 levels, made
it walk 2**60 paths: the call never returned. As ``update_config``,
``set_active_config`` and ``apply_profile`` do since the last round, each place is
transformed as its own copy up to the bound YAML aliases obey (5,000,000 values); past
it the call raises a ``TransformError`` naming the file and the key path where the
shared object is met again.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.transforms import ConfigurationTransformer
from cfgcore.errors import TransformError
from tests.fuzz import examples

STEPS = ["env_var_substitution", "type_conversion", "duration_parsing", "size_parsing"]


def _run_bounded(body: str) -> list[str]:
    """``body`` in a child with a memory cap and a time bound (the old code never ends)."""
    code = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
    code += textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_a_yaml_alias_bomb_is_refused_naming_the_file_and_key_path():
    lines = ['l0: &l0 ["1s", "2KiB", "${X:-5}"]']
    lines += [f"l{i}: &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}]" for i in range(1, 40)]
    doc = "\n".join(lines) + "\n"
    out = _run_bounded(
        f"""
        import yaml
        from cfgcore.config.transforms import ConfigurationTransformer
        from cfgcore.errors import TransformError
        tree = yaml.safe_load({doc!r})
        try:
            ConfigurationTransformer(env={{}}).transform(tree, {STEPS!r}, file="bomb.yaml")
            print("accepted")
        except TransformError as exc:
            (problem,) = exc.problems
            print(problem.file, problem.path.split(".")[0])
            print("expands to more than 5,000,000 values" in problem.message)
        """
    )
    assert out[0].startswith("bomb.yaml l")
    assert out[1] == "True"


def test_one_dict_at_both_keys_of_60_levels_is_refused_and_the_input_is_untouched():
    out = _run_bounded(
        f"""
        from cfgcore.config.transforms import ConfigurationTransformer
        from cfgcore.errors import TransformError
        leaf = node = {{"t": "30s"}}
        for _ in range(60):
            node = {{"a": node, "b": node}}
        try:
            ConfigurationTransformer(env={{}}).transform({{"svc": node}}, {STEPS!r}, file="x")
            print("accepted")
        except TransformError as exc:
            (problem,) = exc.problems
            print(problem.path.startswith("svc.a.a."), problem.file)
        print(leaf["t"])
        """
    )
    assert out == ["True x", "30s"]


def _dag(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"t": "1h30m", "s": "1KiB", "n": "8080", "e": "${HOST:-db}"}
    for _ in range(levels):
        node = {"a": node, "b": [node, "250ms"]}
    return node


def test_a_value_sharing_a_dict_within_the_bound_is_transformed_as_its_copy():
    shared = _dag(12)  # 2**13 copies of the leaf dict once expanded
    t = ConfigurationTransformer(env={"HOST": "h"})
    got = t.transform({"svc": shared}, STEPS)
    assert got == t.transform({"svc": copy.deepcopy(shared)}, STEPS)
    leaf = got["svc"]["a"]["b"][0]["a"]["a"]["b"][0]["a"]["a"]["a"]["a"]["a"]["a"]["a"]
    assert leaf == {"t": 5400.0, "s": 1024, "n": 8080, "e": "h"}
    # each place is its own copy: changing one leaves the others
    got["svc"]["a"]["a"]["a"]["a"]["a"]["a"]["a"]["a"]["a"]["a"]["a"]["a"]["t"] = 0
    assert got["svc"]["b"][0]["a"]["a"]["a"]["a"]["a"]["a"]["a"]["a"]["a"]["a"]["a"]["t"] == 5400.0


def test_a_missing_variable_in_a_shared_dict_is_reported_at_each_place():
    shared = {"url": "${MISSING}"}
    with pytest.raises(TransformError) as info:
        ConfigurationTransformer(env={}).transform({"a": shared, "b": shared}, STEPS, file="f")
    assert sorted(p.path for p in info.value.problems) == ["a.url", "b.url"]


_leaf = st.sampled_from(["1s", "2KiB", "8080", "true", "${V:-x}", "text", 3, None])


@settings(max_examples=examples(60), deadline=None)
@given(st.data())
def test_shared_and_unshared_copies_give_the_same_answer(data):
    pool: list[Any] = [data.draw(_leaf)]
    for _ in range(data.draw(st.integers(1, 8))):
        kids = data.draw(st.lists(st.sampled_from(range(len(pool))), min_size=1, max_size=3))
        if data.draw(st.booleans()):
            pool.append({f"k{i}": pool[j] for i, j in enumerate(kids)})
        else:
            pool.append([pool[j] for j in kids])
    tree = {"root": pool[-1]}
    t = ConfigurationTransformer(env={"V": "v"})
    assert t.transform(tree, STEPS) == t.transform(copy.deepcopy(tree), STEPS)
