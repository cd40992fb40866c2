"""A plain ``=`` or ``<<`` written as a value is text, as YAML 1.2 reads it.

PyYAML resolves ``=`` to YAML 1.1's ``value`` type and ``<<`` to the merge key type
wherever they stand, and has a constructor for neither as a value: a configuration
file with ``separator: =`` (or a flag variant ``"="`` written plainly) was refused,
``invalid YAML: could not determine a constructor for the tag
'tag:yaml.org,2002:value'``. ``<<`` as a key still merges.
"""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.engine import Engine
from cfgcore.yamlio import StrictDumper, load_yaml
from tests.fuzz import examples


def test_equals_and_merge_signs_as_values_are_text():
    doc = load_yaml("sep: =\nops: [=, <<, x]\nm: {k: <<}\nalias: &e =\nagain: *e\n", file="f.yaml")
    assert doc == {"sep": "=", "ops": ["=", "<<", "x"], "m": {"k": "<<"}, "alias": "=",
                   "again": "="}  # fmt: skip


def test_a_merge_key_still_merges_beside_a_merge_sign_value():
    doc = load_yaml("base: &b {x: 1}\nsvc:\n  <<: *b\n  y: <<\n  z: =\n")
    assert doc["svc"] == {"x": 1, "y": "<<", "z": "="}


def test_a_flag_variant_written_as_a_plain_equals_sign():
    flags = b"flags:\n  op:\n    variants: {eq: =, merge: <<}\n    default: eq\n"
    engine = Engine.from_bytes(flags, "yaml", file="flags.yaml")
    assert engine.value("op") == "="


@settings(max_examples=examples(50), deadline=None)
@given(st.lists(st.sampled_from(["=", "<<", "==", "=<<", "a=b", "<", "<<<"]), max_size=4))
def test_what_the_dumper_writes_reads_back(values):
    """The module's dumper quotes these for YAML 1.1 readers; both forms read back."""
    text = yaml.dump({"v": values}, Dumper=StrictDumper)
    assert load_yaml(text) == {"v": values}
    assert load_yaml("v: [" + ", ".join(values) + "]\n") == {"v": values}
