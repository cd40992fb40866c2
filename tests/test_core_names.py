"""Names cfgcore stores (configuration keys, flag keys, attribute names) are interned so
a read with a literal matches by identity, and a service whose names change does not
keep every name it ever saw (``cfgcore._names``).

On CPython 3.12 an interned string is immortal (PEP 683): interning every key of every
version grew a process by about 130 bytes per new name, forever (40 swaps of 2,000 new
flags: 21 MB). The memory test runs in a fresh interpreter and counts the allocator's
live blocks (``sys.getallocatedblocks``): an immortal string is one block that never
goes back, while tracemalloc does not see it leak and RSS moves with the allocator's
arenas. The count does not depend on timing or on other processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from cfgcore import _names
from cfgcore.config import tree
from tests.conftest import IMPLS, IN_CI

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import gc
import json
import sys

from cfgcore import _names
from cfgcore.config.tree import freeze
from cfgcore.engine import engine_class
from tests.conftest import IMPLS

N = 1000  # new flag keys per version, each with a new attribute name and tree key
engine = engine_class(IMPLS[sys.argv[1]]).from_snapshot({"flags": {}})


def version(i):
    # New string objects of new texts, as decoding a changed file gives them.
    names = json.loads(json.dumps([f"name_{i}_{j}_{'x' * 12}" for j in range(N)]))
    engine.swap({"flags": {
        n: {"default": "off", "rules": [{"when": {"attr": n + "_attr", "eq": "y"}, "serve": "on"}]}
        for n in names
    }})
    config = freeze({"section": {n: j for j, n in enumerate(names)}})
    assert engine.is_enabled(names[0], {names[0] + "_attr": "y"})
    assert config["section"][names[-1]] == N - 1
    return config


interned = getattr(sys, "getunicodeinternedsize", lambda: 0)  # 3.12+
# Where interning is forever, the first BUDGET names are interned and kept on purpose:
# spend them first (and live past the version that spent them, whose names stay), then
# count what further versions leave behind.
warm = (_names.BUDGET // N + 1 if _names.IMMORTAL else 0) + 2  # each version: N+ names
for i in range(warm):
    live = version(i)
gc.collect()
blocks, strings = sys.getallocatedblocks(), interned()
for i in range(warm, warm + 5):
    live = version(i)  # one version held, as before the count
gc.collect()
print(json.dumps({"blocks": sys.getallocatedblocks() - blocks, "interned": interned() - strings}))
"""


# The whole activation path (files read, layers merged, validation, the flag file
# decoded and compiled, events, audit) with a budget of 100 names, spent by the first
# version: any other step that interned a name it was given would leave it behind.
# Counted as immortal interned strings: the path keeps other bounded memos of key names
# (the redaction's, 8,192 names each), which blocks (and, on 3.13, live interned
# strings) would count until they fill.
MANAGER = r"""
import json
import pathlib
import sys

import yaml

from cfgcore import _names
from cfgcore.config.manager import ConfigurationManager

_names.BUDGET = 100
N = 300
d = pathlib.Path(sys.argv[1])
(d / "staging.yaml").write_text("{}\n")


def version(i):
    names = [f"name_{i}_{j}_{'x' * 12}" for j in range(N)]
    (d / "base.yaml").write_text(yaml.safe_dump({"app": {n: j for j, n in enumerate(names)}}))
    (d / "flags.yaml").write_text(yaml.safe_dump({"flags": {
        n: {"default": "off", "rules": [{"when": {"attr": n + "_attr", "eq": "y"}, "serve": "on"}]}
        for n in names
    }}))
    return names


version(0)
manager = ConfigurationManager(d, environ={}, flags_file=d / "flags.yaml", record_usage=False)
manager.load_environment_config("staging")


def reload(i):
    names = version(i)
    assert manager.reload(), manager.last_error
    assert manager["app"][names[-1]] == N - 1
    assert manager.flags.is_enabled(names[0], {names[0] + "_attr": "y"})




def immortal():
    try:  # 3.13+: interned strings are mortal unless the runtime made them immortal
        return sys.getunicodeinternedsize(_only_immortal=True)
    except TypeError:  # 3.12: every interned string is immortal
        return sys.getunicodeinternedsize()


reload(1)
strings = immortal()
for i in range(2, 7):
    reload(i)
print(json.dumps({"interned": immortal() - strings}))
manager.close()
"""


def _grew(*argv: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", *argv], capture_output=True, text=True, timeout=300, cwd=str(ROOT)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_names_of_replaced_versions_do_not_stay_alive(impl: Any) -> None:
    grew = _grew(CHILD, impl.IMPLEMENTATION)
    # 5 versions of 1,000 new flags (keys, attribute names) and tree keys. With every
    # name interned, 3.12 kept each: c +10,007 blocks and 10,000 interned strings, py
    # (tree keys only) +5,007 and 5,000. Bounded, a process grows by some cached
    # objects at most (12-14 blocks here on 3.11, 3.12 and 3.13).
    assert grew["blocks"] < 1000, grew
    assert grew["interned"] < 100, grew


@pytest.mark.skipif(
    not hasattr(sys, "getunicodeinternedsize"),
    reason="counts immortal interned strings (3.12+; before 3.12 none is immortal)",
)
def test_a_manager_reloading_new_names_makes_none_of_them_immortal(tmp_path: Path) -> None:
    # 5 reloads of 300 new configuration keys and flags (with attribute names): 3,000
    # names, every one left interned for good on 3.12 when each was interned.
    grew = _grew(MANAGER, str(tmp_path))
    assert grew["interned"] < 30, grew


def _free_threaded() -> bool:
    return bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="CPython's interning")
@pytest.mark.skipif(_free_threaded(), reason="free-threaded builds immortalise interned strings")
def test_interning_is_bounded_exactly_where_interned_strings_are_immortal() -> None:
    # PEP 683 made interned strings immortal in 3.12; 3.13 made sys.intern's mortal again.
    assert _names.IMMORTAL is (sys.version_info[:2] == (3, 12))
    assert (_names.intern is sys.intern) is not _names.IMMORTAL


# Literals: the compiler interned them (letters, digits and underscores), so each is
# the object a service's cfg["bitrate_kbps"] passes.
BITRATE, NEW_UI, AUDIO, CODEC = "bitrate_kbps", "new_ui", "audio", "codec"


@pytest.fixture
def budget(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The bounded interning with an empty table and a budget of 3, whatever this
    process interned before (where interning is bounded, the trees and the compiled
    snapshot use it too)."""
    monkeypatch.setattr(_names, "_made", {})
    monkeypatch.setattr(_names, "BUDGET", 3)
    return _names._intern_bounded


def _new(text: str) -> str:
    return "".join(list(text))  # an equal string that is not the literal


def test_bounded_interning_gives_the_literals_object_within_the_budget(budget: Any) -> None:
    copy = _new(BITRATE)
    assert copy is not BITRATE
    assert budget(copy) is BITRATE
    assert budget(_new(BITRATE)) is BITRATE
    assert list(_names._made) == [BITRATE]  # counted once


def test_bounded_interning_leaves_texts_no_literal_is_interned_as(budget: Any) -> None:
    # The compiler interns constants of ASCII letters, digits and underscores only: an
    # interned "new-ui" would match no literal, it would only stay forever.
    for text in ("new-ui", "a.b", "größe", "user id", "x\x00"):
        copy = _new(text)
        assert budget(copy) is copy, text
    assert _names._made == {}


def test_bounded_interning_leaves_long_texts(budget: Any) -> None:
    # The budget counts names, not bytes: 10,000 immortal keys of a megabyte each
    # would be 10 GB. Literal keys are short.
    longest, longer = _new("k" * _names.LONGEST), _new("k" * (_names.LONGEST + 1))
    assert budget(longer) is longer and budget(_new(longer)) is not longer
    assert budget(longest) is longest and budget(_new(longest)) is longest
    assert list(_names._made) == [longest]


def test_bounded_interning_stops_at_the_budget_and_keeps_serving_what_it_interned(
    budget: Any,
) -> None:
    first = [budget(_new(t)) for t in ("alpha_1", "alpha_2", "alpha_3")]
    assert first == ["alpha_1", "alpha_2", "alpha_3"] and len(_names._made) == 3
    late = _new("alpha_4")
    assert budget(late) is late  # past the budget: served as the text it is
    assert len(_names._made) == 3
    # A name interned before the budget was spent is still served as that object (a
    # configuration reloaded from its file keeps its identity reads).
    assert budget(_new("alpha_2")) is first[1]


def test_the_trees_keys_are_the_literals_objects(budget: Any) -> None:
    # freeze and assoc store keys through cfgcore._names (a str subclass as its text).
    class Key(str):
        pass

    frozen = tree.freeze({_new(AUDIO): {Key(CODEC): 1}})
    (top,) = frozen
    (inner,) = frozen[AUDIO]
    assert top is AUDIO
    assert type(inner) is str and inner is CODEC
    changed = tree.assoc(frozen, (_new(AUDIO), _new(BITRATE)), 2)
    assert [k for k in changed[AUDIO] if k is BITRATE] == [BITRATE]


def test_compiled_flag_keys_are_the_literals_objects(budget: Any) -> None:
    # The compiled snapshot only: the reference evaluator keeps the keys it is given.
    from cfgcore.engine import engine_class

    if "c" not in IMPLS:
        if IN_CI:
            pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
        pytest.skip("the compiled extension cfgcore._eval is not built here")
    engine = engine_class(IMPLS["c"]).from_snapshot({"flags": {_new(NEW_UI): {"default": "on"}}})
    (key,) = engine.snapshot().keys
    assert key is NEW_UI  # a check with the literal matches by identity
