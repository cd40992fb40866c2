"""A problem inside a mapping of a flag names the entry's key.

msgspec names no key of a mapping: a split weight that is no number (``b: "50"`` in a
YAML file, a NumPy float in a document built in Python) was refused at
``flags.f.rules[0].split[...]``, on the flag's first line, so an operator could not
tell which of the split's variants to fix. The key is now looked up in the data
decoded, in every format and in the compiler's own check of a Python document.
"""

from __future__ import annotations

import json
from fractions import Fraction

import msgspec
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from cfgcore.errors import ConfigError, child_key_path
from cfgcore.snapshot import SnapshotError, decode_snapshot, load_snapshot, snapshot_from_dict
from cfgcore.yamlio import dump_yaml

SPLIT = "flags.f.rules[0].split"


def _doc(split):
    return {"flags": {"f": {"variants": dict.fromkeys(split, 1), "default": next(iter(split)),
                            "rules": [{"split": split}]}}}  # fmt: skip


def test_a_yaml_weight_that_is_text_is_named_by_its_variant_and_line(tmp_path):
    path = tmp_path / "flags.yaml"
    path.write_text(
        "flags:\n  f:\n    variants: {a: 1, b: 2}\n    default: a\n    rules:\n"
        "      - split:\n          a: 50\n          b: '50'\n"
    )
    with pytest.raises(SnapshotError) as err:
        load_snapshot(path)
    (problem,) = err.value.problems
    assert (problem.path, problem.line) == (f"{SPLIT}.b", 8), str(err.value)
    assert problem.message == "expected int | float, got str"


def test_a_json_weight_that_is_text_is_named_by_its_variant_and_line(tmp_path):
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(_doc({"a": 50, "b": "50"}), indent=2))
    with pytest.raises(SnapshotError) as err:
        load_snapshot(path)
    (problem,) = err.value.problems
    assert problem.path == f"{SPLIT}.b", str(err.value)
    assert path.read_text().splitlines()[problem.line - 1].strip() == '"b": "50"'


@pytest.mark.parametrize("weight", [np.int64(50), Fraction(50), "50", None, [50]])
def test_a_python_weight_of_another_type_is_named_by_its_variant(impl, weight):
    with pytest.raises(ConfigError) as err:
        engine_class(impl).from_snapshot(_doc({"a": 50, "b": weight}))
    assert f"{SPLIT}.b:" in str(err.value), str(err.value)
    assert "[...]" not in str(err.value)


def test_a_float_subclass_weight_is_its_float(impl):
    # numpy.float64 is a float subclass: its base value, as README "Types are strict" says
    sub = engine_class(impl).from_snapshot(_doc({"a": 50, "b": np.float64(50)}))
    plain = engine_class(impl).from_snapshot(_doc({"a": 50, "b": 50.0}))
    users = [{"user_id": str(i)} for i in range(200)]
    served = [sub.variant("f", u) for u in users]
    assert served == [plain.variant("f", u) for u in users] and set(served) == {"a", "b"}


names = st.text(min_size=1, max_size=8)


@given(
    st.lists(names, min_size=1, max_size=6, unique=True),
    st.data(),
    st.sampled_from(["json", "msgpack", "yaml", "python"]),
)
def test_the_first_bad_weight_is_named_whatever_the_variant_names(keys, data, form):
    bad = data.draw(st.sets(st.sampled_from(keys), min_size=1), label="bad")
    split = {k: ("50" if k in bad else 1) for k in keys}
    doc = _doc(split)
    # (in the document's order: dump_yaml writes keys sorted)
    first = next(k for k in (sorted(keys) if form == "yaml" else keys) if k in bad)
    with pytest.raises(SnapshotError) as err:
        if form == "python":
            snapshot_from_dict(doc)
        elif form == "yaml":
            decode_snapshot(dump_yaml(doc).encode(), "yaml", file="f.yaml")
        else:
            encode = msgspec.json.encode if form == "json" else msgspec.msgpack.encode
            decode_snapshot(encode(doc), form, file="f")
    assert [p.path for p in err.value.problems] == [child_key_path(SPLIT, first)]
