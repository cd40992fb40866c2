"""A JSON flag file holding an integer literal past Python's digit limit (audit 8).

``json.loads`` refuses a literal of more than ``sys.get_int_max_str_digits()`` digits
(4,300) while it parses, and the flag loader passed its message on: ``invalid JSON:
Exceeds the limit (4300 digits) for integer string conversion ...; use
sys.set_int_max_str_digits() to increase the limit``, with no key path or line and
advice that leads nowhere (the number is refused anyway). A 400-digit literal, a
``1e400`` and the same literal in YAML or a JSON configuration file are named with
their key path and line; so is this one now."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from tests.conftest import IMPLS

LIMIT = sys.get_int_max_str_digits()

DOCUMENTS = [
    ('{"flags": {"a": {"variants": {"x": %s}, "default": "x"}}}', 1, "flags.a.variants.x"),
    ('{"flags": {\n "a": {"variants": {"x": {"k": [1, {"z": %s}]}}, "default": "x"}}}', 2,
     "flags.a.variants.x.k[1].z"),
    ('{"flags": {"a": {"default": "off",\n "rules": [{"when": {"attr": "n", "in": [1, %s]},'
     ' "serve": "on"}]}}}', 2, "flags.a.rules[0].when.in[1]"),
    ('{"version": %s, "flags": {}}', 1, "version"),
]  # fmt: skip


@pytest.mark.parametrize("template, line, path", DOCUMENTS)
@given(digits=st.integers(LIMIT + 1, LIMIT + 3000), sign=st.sampled_from(["", "-"]))
def test_the_literal_is_named_with_its_key_path_and_line(
    tmp_path_factory, template, line, path, digits, sign
):
    flags = tmp_path_factory.mktemp("flags") / "flags.json"
    flags.write_text(template % (sign + "7" * digits))
    for mod in IMPLS.values():
        with pytest.raises(SnapshotError) as err:
            engine_class(mod).from_file(flags)
        message = str(err.value)
        assert message.startswith(f"{flags}:{line}: {path}: number out of range (")
        assert "set_int_max_str_digits" not in message
