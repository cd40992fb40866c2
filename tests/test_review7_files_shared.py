"""Review 7: a value given in Python that holds one mapping in many places.

``update_config`` and ``set_active_config`` take any Python value. One dict referenced
at both keys of each of 60 levels is a small object but 2**60 key paths: the access
policy's targets (``policy.config_change``) and the one judge of values
(``files.tree_problem``) walked it path by path, so both calls hung (the round-7 fix for
a dict containing itself only caught cycles). Such a value is now refused, naming the
key path and why, as a YAML document whose aliases expand that far already is; a value
sharing a container a few times is accepted and judged exactly as its unshared copy.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.files import tree_problem
from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.policy import config_change
from tests.fuzz import examples


def _run_bounded(body: str) -> list[str]:
    """``body`` in a child with a memory cap and a time bound (the old code never ends)."""
    code = "import resource\nresource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))\n"
    code += textwrap.dedent(body)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


_DAG = """
def dag(levels):
    node = {"leaf": 1}
    for _ in range(levels):
        node = {"a": node, "b": node}
    return node
"""


def test_tree_problem_refuses_a_dict_shared_at_every_level_at_once():
    out = _run_bounded(
        _DAG
        + """
from cfgcore.config.files import tree_problem
print(tree_problem(dag(60)) is not None)
print("expands to more than" in tree_problem(dag(60))[1])
"""
    )
    assert out == ["True", "True"]


def test_update_config_and_set_active_config_refuse_it_and_keep_the_configuration(tmp_path):
    (tmp_path / "base.yaml").write_text("svc:\n  n: 1\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    out = _run_bounded(
        _DAG
        + f"""
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
m = ConfigurationManager({str(tmp_path)!r}, environment="development", environ={{}})
m.load_environment_config()
print(m.update_config("svc.extra", dag(60)))
print("svc.extra" in str(m.last_error), "expands to more than" in str(m.last_error))
try:
    m.set_active_config({{"svc": dag(60)}})
    print("accepted")
except ConfigError as exc:
    (problem,) = exc.problems
    print("refused", problem.path.startswith("svc."), "more than 5,000,000 values" in str(exc))
print(m.get("svc"))
"""
    )
    assert out == ["False", "True True", "refused True True", "{'n': 1}"]


def _dag(levels: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(levels):
        node = {"a": node, "b": node}
    return node


def test_a_value_sharing_a_dict_a_few_times_is_accepted_as_its_copy(tmp_path):
    (tmp_path / "base.yaml").write_text("svc:\n  n: 1\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.disable_audit()
    m.load_environment_config()
    defaults = {"timeout": 5, "retries": [1, 2]}
    assert m.update_config("svc.clients", {"db": defaults, "cache": defaults}) is True
    assert m.get("svc.clients") == {"db": defaults, "cache": defaults}
    assert m.update_config("svc.tree", _dag(12)) is True  # 2**13 leaves once copied
    assert m.get("svc.tree.a.b.a.b.a.b.a.b.a.b.a.b.leaf") == 1
    m.set_active_config({"svc": {"one": defaults, "two": defaults}})
    assert m.get("svc.two.retries") == [1, 2]


def test_the_policy_still_names_every_path_a_shared_delete_marker_removes():
    shared = {"k": "__delete__"}
    checks = config_change("svc", {"a": shared, "b": shared})
    assert ("config.delete", "svc.a.k") in checks and ("config.delete", "svc.b.k") in checks


def test_a_yaml_file_with_aliases_still_loads(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "defaults: &d {timeout: 5, tags: [a, b]}\n"
        "clients:\n  db: *d\n  cache: {<<: *d, timeout: 1}\n  queue: *d\n"
    )
    (tmp_path / "development.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    m.disable_audit()
    m.load_environment_config()
    assert m.get("clients.queue") == {"timeout": 5, "tags": ["a", "b"]}
    assert m.get("clients.cache.timeout") == 1


# ------------------------------------------------------------- judged as its unshared copy

_LEAVES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.sampled_from(["\ud800", None, True, b"x", "__delete__"]),
)
_KEYS = st.one_of(st.sampled_from(["a", "b", "c", "__replace__"]), st.integers(0, 2))


def _unshare(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _unshare(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unshare(v) for v in value]
    return value


@st.composite
def _shared_trees(draw: Any) -> Any:
    """A tree built bottom-up from a pool, so later containers reuse earlier ones."""
    pool: list[Any] = []
    for _ in range(draw(st.integers(1, 12))):
        n = draw(st.integers(0, 3))
        children = [
            pool[draw(st.integers(0, len(pool) - 1))]
            if pool and draw(st.booleans())
            else draw(_LEAVES)
            for _ in range(n)
        ]
        if draw(st.booleans()):
            pool.append(children)
        else:
            keys = draw(st.lists(_KEYS, min_size=n, max_size=n, unique=True))
            pool.append(dict(zip(keys, children, strict=True)))
    root = pool[-1]
    # sometimes a long chain above it, so the nesting limit is reached through a share
    for _ in range(draw(st.sampled_from([0, 0, 94, 96, 97, 98, 99, 100]))):
        root = {"n": root}
    if draw(st.booleans()):
        # a pooled container met first near the top, then again deep down the chain
        root = {"deep": root, "shallow": pool[draw(st.integers(0, len(pool) - 1))]}
    return root


@settings(max_examples=examples(200), deadline=None)
@given(_shared_trees(), st.sampled_from([(), ("svc",)]))
def test_a_shared_value_is_judged_as_its_unshared_copy(tree, prefix):
    copy = _unshare(tree)
    if len(json.dumps(copy, default=repr)) > 2_000_000:  # pragma: no cover - keep it fast
        return
    assert tree_problem(tree, prefix) == tree_problem(copy, prefix)


def _chain(levels: int, end: Any) -> Any:
    for _ in range(levels):
        end = {"n": end}
    return end


def test_a_container_met_again_deeper_is_judged_against_the_nesting_limit_there():
    shared = {"a": {"b": 1}}
    # "shallow" is judged first (at level 1, fine), then again 99 levels down
    tree = {"deep": _chain(98, shared), "shallow": shared}
    found = tree_problem(tree)
    assert found is not None and "nested more than 100 levels deep" in found[1]
    assert found == tree_problem(_unshare(tree))


def test_a_shared_leaf_problem_names_its_first_place():
    bad = {"x": math.nan}
    assert tree_problem({"a": {"ok": 1}, "b": bad, "c": bad}) == tree_problem(
        {"a": {"ok": 1}, "b": {"x": math.nan}, "c": {"x": math.nan}}
    )


def test_apply_profile_refuses_such_a_configuration_instead_of_hanging():
    out = _run_bounded(
        _DAG
        + """
from cfgcore.configuration_profiles import DeploymentProfile, get_profile_manager
from cfgcore.errors import ConfigError
try:
    get_profile_manager().apply_profile({"svc": dag(60)}, DeploymentProfile.HIGH_VOLUME)
    print("applied")
except ConfigError as exc:
    print("refused", "expands to more than 5,000,000 values" in str(exc))
"""
    )
    assert out == ["refused True"]


def test_apply_profile_still_copies_a_configuration_sharing_a_dict():
    from cfgcore.configuration_profiles import DeploymentProfile, get_profile_manager

    shared = {"timeout": 5}
    out = get_profile_manager().apply_profile(
        {"a": shared, "b": shared, "tree": _dag(8)}, DeploymentProfile.HIGH_VOLUME
    )
    assert out["a"] == out["b"] == shared and out["a"] is not out["b"]
    assert out["tree"] == _unshare(_dag(8))
    assert out["performance"]["worker_threads"] == 32
