"""Round 5 (security): an environment (or ``.env`` file) of many ``CFGCORE__`` overrides.

Each variable searched every variable before it for a clash, and every key of the map
it lands in for a case-insensitive match: 20,000 overrides cost 50 s of CPU on every
build (a ``.env`` file of a megabyte hung loads and reloads). Both are looked up now;
the answers (clashes named, keys matched) are the same. And validation's view of the
configuration copied a map once per reference in it (20,000 overrides in a map of
20,000 keys: 40 s more); each map is copied once now. Real manager, real files.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config import environ
from cfgcore.config.environ import env_layer, with_refs
from cfgcore.config.tree import freeze, thaw
from cfgcore.errors import ConfigError
from tests.fuzz import examples

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_CPU, (40, 40))  # the old layer took minutes
    from cfgcore.config.manager import ConfigurationManager
    open(sys.argv[1] + "/development.yaml", "w").write(
        "app:\\n  name: svc\\nlabels:\\n" + "".join(f"  Key{i}: x\\n" for i in range(20000))
    )
    env = {f"CFGCORE__LABELS__KEY{i}": f"v{i}" for i in range(20000)}
    env.update({f"CFGCORE__EXTRA__P{i}": f"w{i}" for i in range(20000)})
    m = ConfigurationManager(sys.argv[1], environment="development", environ=env,
                             audit_log=sys.argv[1] + "/audit.jsonl", record_usage=False)
    m.load_environment_config()
    print(json.dumps([m.get("labels.Key19999"), m.get("extra.p19999"), len(m.get("labels"))]))
    m.close()
    """
)


def test_many_overrides_cost_a_build_no_time_per_pair(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == ["v19999", "w19999", 20000]


@pytest.mark.parametrize(
    "names",
    [
        ["CFGCORE__A__B", "CFGCORE__A__B__C"],
        ["CFGCORE__A__B__C", "CFGCORE__A__B"],
        ["CFGCORE__A__b", "CFGCORE__A__B"],
        ["CFGCORE__A__B__C", "CFGCORE__A__B__D", "CFGCORE__A"],
    ],
)
def test_clashes_are_named_as_before(names):
    env = {name: "1" for name in names}
    with pytest.raises(ConfigError) as exc:
        env_layer(env, "CFGCORE", {})
    ordered = sorted(names)
    first, later = ordered[0], ordered[-1]
    assert f"environment variables {first} and {later} both set it" in str(exc.value)


def test_keys_match_the_first_spelling_below_case_insensitively():
    below = {"Audio": {"Rate": 1, "rate": 2}, "audio": {"x": 3}}
    layer = env_layer({"CFGCORE__AUDIO__RATE": "5"}, "CFGCORE", below)
    assert layer.data == {"Audio": {"Rate": 5}}


_names = st.sampled_from(["a", "b", "c"])
_trees = st.recursive(
    st.integers(0, 3) | st.just("${X}"),
    lambda kids: st.dictionaries(_names, kids, max_size=3),
    max_leaves=12,
)


@settings(max_examples=examples(150), deadline=None)
@given(
    st.dictionaries(_names, _trees, max_size=3),
    st.lists(st.lists(_names, min_size=1, max_size=3), max_size=5),
)
def test_with_refs_answers_as_one_assoc_per_reference(config, paths):
    frozen = freeze(config)
    refs = {tuple(p): "${REF_" + "_".join(p) + "}" for p in paths}
    assert thaw(with_refs(frozen, refs)) == thaw(environ._sequential(frozen, refs))


_paths = st.lists(st.sampled_from("ab"), max_size=3).map(tuple)


@settings(max_examples=examples(200), deadline=None)
@given(st.dictionaries(_paths, st.just("${R}")), st.lists(_paths, max_size=4))
def test_refs_without_drops_what_is_at_or_below_a_change(refs, changed):
    # Each reference is looked up by its prefixes now (every reference was compared
    # with every change: quadratic for set_active_config of a large tree).
    expected = {p: r for p, r in refs.items() if not any(p[: len(c)] == c for c in changed)}
    assert environ.refs_without(refs, changed) == expected
