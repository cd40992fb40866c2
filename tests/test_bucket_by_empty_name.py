"""``bucket_by: ""`` names the attribute ``""`` (a name given as text is a list of that
one name), on a rule as on a flag; it is not "unset" (only None or an empty list is).
The spec interpreter the differential tests compare with read ``""`` as unset."""

from __future__ import annotations

from cfgcore.snapshot import snapshot_from_dict
from tests.spec_interpreter import Interpreter

DOC = {"flags": {"f": {
    "variants": {"a": "A", "b": "B"}, "default": "a", "bucket_by": ["user_id"],
    "rules": [{"split": {"a": 0, "b": 100}, "bucket_by": ""}],
}}}  # fmt: skip


def test_a_rule_bucketing_by_the_attribute_named_empty_needs_that_attribute(make_py_and_c):
    spec = Interpreter(snapshot_from_dict(DOC))
    for build in make_py_and_c:
        engine = build(DOC)
        # user_id alone: the rule has nothing to bucket by and does not apply
        assert engine.evaluate("f", {"user_id": "u1"}).value == "A"
        assert engine.evaluate("f", {"": "u1"}).value == "B"
    assert spec.evaluate("f", {"user_id": "u1"}).value == "A"
    assert spec.evaluate("f", {"": "u1"}).value == "B"
