"""Property and concurrency tests of the manager's change model."""

from __future__ import annotations

import copy
import threading

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.tree import get_path, iter_leaves, split_path, thaw
from tests.fuzz import examples

_BASE = ConfigurationManager(environ={}, validate=False)
_BASE.load_environment_config("staging")
LEAVES = [
    (".".join(p), v)
    for p, v in iter_leaves(_BASE.config)
    if p and isinstance(v, bool | int | float | str) and all("." not in k for k in p)
]


def _value_like(current):
    if isinstance(current, bool):
        return st.booleans()
    if isinstance(current, int):
        return st.integers(-(10**6), 10**6)
    if isinstance(current, float):
        return st.floats(-1e6, 1e6, allow_nan=False)
    # Plain text: "${" starts a reference (resolved or refused), not a value the model
    # stores as written.
    return st.text(max_size=8).filter(lambda s: "${" not in s)


updates = st.lists(
    st.sampled_from(LEAVES).flatmap(lambda kv: st.tuples(st.just(kv[0]), _value_like(kv[1]))),
    min_size=1,
    max_size=12,
)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(updates)
def test_updates_match_a_plain_dict_model_with_one_event_per_changed_leaf(seq):
    m = ConfigurationManager(environ={}, validate=False)
    m.load_environment_config("staging")
    model = thaw(m.config)
    seen = []
    m.register_change_listener(seen.append)
    for key, value in seq:
        path = split_path(key)
        old = get_path(model, path)
        version = m.version
        seen.clear()
        assert m.update_config(key, value) is True
        node = model
        for seg in path[:-1]:
            node = node[seg]
        node[path[-1]] = value
        assert m.get(key) == value and type(m.get(key)) is type(value)
        assert m.version == version + 1
        changed = not (type(old) is type(value) and old == value)
        assert [(e.config_path, e.old_value, e.new_value) for e in seen] == (
            [(key, old, value)] if changed else []
        )
        assert m.explain(key).winner.kind == "runtime"
    assert thaw(m.config) == model
    # a reload re-applies the runtime layer over the files: same tree
    snapshot = copy.deepcopy(model)
    m.load_environment_config("staging")
    assert thaw(m.config) == snapshot


def test_concurrent_updates_and_reloads_are_serialised():
    m = ConfigurationManager(environ={}, validate=False)
    m.load_environment_config("staging")
    versions: list[int] = []
    lock = threading.Lock()
    m.register_change_listener(
        lambda e: (lock.acquire(), versions.append(e.version), lock.release())
    )
    keys = [f"load_test.worker_{i}" for i in range(4)]

    def writer(key):
        for n in range(60):
            assert m.update_config(key, n)
            if n % 20 == 0:
                m.reload()

    threads = [threading.Thread(target=writer, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(m.get(k) == 59 for k in keys)
    # every update got its own version: no two writers ever built on the same snapshot
    assert len(versions) == len(set(versions)) == 4 * 60
    assert m.version >= 4 * 60
