"""A ``str`` subclass in an Unleash context (a text type of an application's own) reads
as its ``str()``, as UnleashClient sends it, without calling the subclass's other
methods: ``unleash.context()`` called ``strip()``/``lstrip()`` (on texts long enough to
be dates) and ``lower()`` on the value itself, so a subclass overriding them made the
mapping raise or answer from the override's result."""

from __future__ import annotations

from cfgcore.interop import unleash

TEXTS = ["2024-01-01T00:00:00Z", "1.2.3", "NL", "10.0.0.1", "42", "ÉCOLE"]


class Strict(str):
    """A text type whose methods refuse to run (only str() is its text)."""

    def _refuse(self, *args, **kwargs):
        raise RuntimeError("not here")

    lower = upper = casefold = strip = lstrip = rstrip = isdigit = startswith = _refuse
    __getitem__ = _refuse


class Plain(str):
    """A subclass adding nothing."""


def _payload():
    constraints = [
        ("IN", {"values": ["NL"]}), ("STR_CONTAINS", {"values": ["cole"], "caseInsensitive": True}),
        ("DATE_AFTER", {"value": "2023-01-01T00:00:00Z"}), ("SEMVER_GT", {"value": "1.0.0"}),
        ("NUM_GT", {"value": "5"}), ("IN_CIDR", {"values": ["10.0.0.0/8"]}),
    ]  # fmt: skip
    features = [
        {"name": f"f{i}", "enabled": True,
         "strategies": [{"name": "default",
                         "constraints": [{"contextName": "x", "operator": op, **args}]}]}
        for i, (op, args) in enumerate(constraints)
    ]  # fmt: skip
    return {"version": 2, "features": features}


def test_a_str_subclass_reads_as_its_text(make_py_and_c):
    snap = unleash.to_snapshot(_payload())
    engines = [make(snap) for make in make_py_and_c]
    values = [(Strict(t), t) for t in TEXTS] + [(Plain(t), t) for t in TEXTS]
    for value, text in values:
        got = unleash.context({"userId": value, "properties": {"x": value}}, now=0)
        want = unleash.context({"userId": text, "properties": {"x": text}}, now=0)
        assert all(type(v) is not Strict for v in got.values())
        got.pop("#random"), want.pop("#random")
        assert got == want
        for engine in engines:
            for f in snap.flags:
                assert engine.is_enabled(f, got) is engine.is_enabled(f, want), (f, text)
