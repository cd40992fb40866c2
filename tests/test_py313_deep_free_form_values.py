"""Free-form values nested deeper than MAX_VALUE_DEPTH are refused in every format.

A JSON or MessagePack flag document was bounded only by its decoder's stack: about
1,000 levels on CPython 3.11, 1,500 on 3.12 and 10,000 on 3.13, where json and msgspec
recurse up to the C recursion limit. Metadata, experiments or a variant nested
between 100 levels and that limit were decoded, and code that walks a document's values
recursively before the compiler (the flag store's secret-reference check) raised
RecursionError out of opening a manager (3.11: 900 levels; 3.13: 5,000). YAML
documents and documents built in Python were already refused past 100 levels, naming
the path; JSON and MessagePack now are too, with the same path and message.
"""

from __future__ import annotations

import msgspec
import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.errors import SnapshotError
from cfgcore.snapshot import MAX_VALUE_DEPTH, decode_snapshot, snapshot_from_dict


def _nested(n: int) -> object:
    value: object = 1
    for _ in range(n):
        value = [value]
    return value


def _document(where: str, n: int) -> dict:
    deep = _nested(n)
    if where == "metadata":
        return {"flags": {"a": {"default": "on"}}, "metadata": {"x": deep}}
    if where == "experiments":
        return {"flags": {"a": {"default": "on"}}, "experiments": {"x": deep}}
    if where == "flag-metadata":
        return {"flags": {"a": {"default": "on", "metadata": {"x": deep}}}}
    return {"flags": {"a": {"default": "on", "variants": {"on": deep, "off": False}}}}


def _outcome(decode) -> tuple[str, str] | None:
    try:
        decode()
    except SnapshotError as err:
        return err.problems[0].path, err.problems[0].message
    return None


WHERE = ["metadata", "experiments", "flag-metadata", "variant"]
# the list nested n deep sits at depth n + 2 (metadata) or n + 4 (in a flag): around
# the limit, and far past it (but within what json and msgspec read on 3.11)
DEPTHS = [MAX_VALUE_DEPTH - 5, MAX_VALUE_DEPTH - 2, MAX_VALUE_DEPTH, 500]


@pytest.mark.parametrize("n", DEPTHS)
@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_json_and_msgpack_refuse_what_a_yaml_document_is_refused_for(fmt, where, n):
    doc = _document(where, n)
    want = _outcome(lambda: snapshot_from_dict(doc, file="f"))
    data = msgspec.json.encode(doc) if fmt == "json" else msgspec.msgpack.encode(doc)
    assert _outcome(lambda: decode_snapshot(data, fmt, file="f")) == want
    if n == 500:
        assert want is not None and want[1] == f"nested deeper than {MAX_VALUE_DEPTH} levels"


@pytest.mark.parametrize("where", WHERE)
def test_a_deep_flag_file_is_a_named_error_not_a_recursion_error(tmp_path, where):
    # deep enough for a recursive walk to overflow on every version, shallow enough for
    # json's own parser to read it on 3.11 (which refused deeper files already)
    n = 900
    deep = "[" * n + "1" + "]" * n
    texts = {
        "metadata": '{"flags": {"a": {"default": "on"}}, "metadata": {"x": %s}}',
        "experiments": '{"flags": {"a": {"default": "on"}}, "experiments": {"x": %s}}',
        "flag-metadata": '{"flags": {"a": {"default": "on", "metadata": {"x": %s}}}}',
        "variant": '{"flags": {"a": {"default": "on", "variants": {"on": %s, "off": false}}}}',
    }
    flags = tmp_path / "flags.json"
    flags.write_text(texts[where] % deep)
    with pytest.raises(SnapshotError) as err:
        DynamicConfigurationManager(
            flags_file=flags, state_dir=tmp_path / "state", record_usage=False
        ).close()
    assert f"nested deeper than {MAX_VALUE_DEPTH} levels" in str(err.value)
