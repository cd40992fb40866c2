"""A JSON flag document's flags and segments are found by ``json_sections`` (the compiled
scan in ``_eval_split.pxi`` runs without the GIL; the reference is in ``_eval_py``), and
``cfgcore.snapshot`` builds the first decoding stage from its spans instead of one msgspec
call over the whole document, which held the GIL for 37 ms at 43,000 flags.

Checked here: both implementations answer the same for any bytes; their spans are the
bytes msgspec's ``Raw`` values hold and the keys msgspec decodes; what they do not answer
for (None) is what msgspec refuses, or a document naming "flags" or "segments" twice; and
``decode_snapshot`` gives the same Snapshot, or the same error, split or not."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cfgcore.snapshot as S
from cfgcore._compat import IMPLEMENTATION, NO_EXTENSIONS
from cfgcore.errors import ConfigError
from tests.conftest import IMPLS, IN_CI
from tests.fuzz import examples

RawMap = dict[str, msgspec.Raw]


def _splitters() -> list[Any]:
    if "c" not in IMPLS and IN_CI:
        pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
    return [mod.json_sections for mod in IMPLS.values()]


def _sections(doc: bytes) -> Any:
    """``json_sections``' answer of every built implementation, which must agree."""
    answers = [split(doc) for split in _splitters()]
    assert all(a == answers[0] for a in answers), answers
    return answers[0]


def _quads(spans: Any) -> list[tuple[int, int, int, int]]:
    values = list(spans)
    assert len(values) % 4 == 0
    return [tuple(values[i : i + 4]) for i in range(0, len(values), 4)]  # type: ignore[misc]


def _members(doc: bytes, spans: Any) -> list[tuple[str, bytes]]:
    """(key, value bytes) per member, the key decoded by msgspec from its quoted text."""
    out = []
    for ks, ke, vs, ve in _quads(spans):
        assert doc[ks - 1 : ks] == b'"' and doc[ke : ke + 1] == b'"'
        out.append((msgspec.json.decode(doc[ks - 1 : ke + 1], type=str), doc[vs:ve]))
    return out


def _last_wins(members: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """``members`` as a dict holds them (a key written twice: its place, the last value),
    as msgspec decodes an object (random values hold such objects)."""
    return list(dict(members).items())


def _msgspec_members(raw: Any) -> list[tuple[str, bytes]]:
    return [(k, bytes(v)) for k, v in msgspec.json.decode(raw, type=RawMap).items()]


def _check_against_msgspec(doc: bytes) -> Any:
    """The split of ``doc`` where msgspec reads it as an object; None where it refuses it
    (or where the document names "flags" or "segments" twice)."""
    found = _sections(doc)
    try:
        doc.decode("utf-8")
    except UnicodeDecodeError:  # the scan leaves UTF-8 to the caller (text is decoded first)
        return found
    try:
        expected = msgspec.json.decode(doc, type=RawMap)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        if not isinstance(exc, RecursionError):
            assert found is None, exc
        return found
    if found is None:  # only for a section written twice (msgspec keeps the last)
        pairs = json.loads(doc, object_pairs_hook=lambda p: p)
        names = [k for k, _ in pairs]
        assert names.count("flags") > 1 or names.count("segments") > 1, doc
        return None
    top, flags, segments = found
    assert _last_wins(_members(doc, top)) == [(k, bytes(v)) for k, v in expected.items()]
    for name, spans in (("flags", flags), ("segments", segments)):
        value = expected.get(name)
        written = [doc[ks:ke] for ks, ke, _, _ in _quads(top)]
        if spans is None:  # absent, another value, or its name written with an escape
            assert (
                value is None or not bytes(value).startswith(b"{") or name.encode() not in written
            )
            continue
        assert value is not None and name.encode() in written
        assert _last_wins(_members(doc, spans)) == _msgspec_members(value)
    return found


# Documents written with every JSON spelling: whitespace anywhere, escapes, nesting.

WS = st.text(alphabet=" \t\r\n", max_size=3)
_SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


@st.composite
def json_string(draw: Any, text: Any = None, ascii_only: bool = False) -> str:
    """A JSON string literal of ``text`` (drawn when None), each character written as it
    is or escaped (``\\uXXXX``, a surrogate pair beyond the BMP, ``\\/``) at random."""
    if text is None:
        alphabet = st.characters(
            max_codepoint=0x7F if ascii_only else 0x10FFFF, blacklist_categories=("Cs",)
        )
        text = draw(
            st.one_of(
                st.text(alphabet=alphabet, max_size=8),
                st.text(alphabet='{}[]":,\\ \t/x', max_size=6),
            )
        )
    out = []
    for ch in text:
        mode = draw(st.integers(0, 2))
        code = ord(ch)
        if mode == 0 and code >= 0x20 and ch not in '"\\':
            out.append(ch)
        elif mode == 1 and ch in _SHORT:
            out.append(_SHORT[ch])
        elif mode == 1 and ch == "/":
            out.append("\\/")
        elif code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04X}")
        else:
            out.append(f"\\u{code:04x}" if draw(st.booleans()) else f"\\u{code:04X}")
    return '"' + "".join(out) + '"'


def _number() -> Any:
    return st.one_of(
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(json.dumps),
        st.sampled_from(["-0", "0.5e-3", "1E+2", "-12.25E2", "0e0"]),
    )


def json_value(ascii_only: bool = False) -> Any:
    scalars = st.one_of(
        _number(), st.sampled_from(["true", "false", "null"]), json_string(ascii_only=ascii_only)
    )

    def containers(children: Any) -> Any:
        array = st.lists(st.tuples(WS, children, WS), max_size=4).map(
            lambda items: "[" + ",".join(a + v + b for a, v, b in items) + "]"
        )
        members = st.lists(
            st.tuples(WS, json_string(ascii_only=ascii_only), WS, WS, children, WS), max_size=4
        ).map(
            lambda ms: "{" + ",".join(a + k + b + ":" + c + v + d for a, k, b, c, v, d in ms) + "}"
        )
        empty = st.tuples(WS).map(lambda w: "{" + w[0] + "}")
        return st.one_of(array, members, empty)

    return st.recursive(scalars, containers, max_leaves=10)


# Flags and segments that decode, written with random whitespace, and values that do not.
_FLAGS = [
    '{"default": "off"}',
    '{\r\n\t"variants":{"a":1,"b":[2,{"c":"}{"}]},"default":"a"}',
    '{"rules":[{"when":{"attr":"x","eq":"\\u00e9"},"serve":"on"}],"default":"off"}',
    '{"default": "on", "tags": ["t\\"q"], "enabled": false}',
    '{"default": "nope"}',
    '{"rollot": 1, "default": "off"}',
    '{"default": 1}',
]
_SEGMENTS = ['{"attr": "x", "in": [1, 2]}', '{"all": [{"segment": "s"}]}', '{"eq": {}}']


def _object(members: list[tuple[str, str]], ws: list[str]) -> str:
    """``{key: value, ...}`` with the whitespace ``ws`` (cycled) around every token."""
    w = (
        (ws * (4 * len(members) + 2))[: 4 * len(members) + 2]
        if ws
        else [""] * (4 * len(members) + 2)
    )
    parts = [
        f"{w[4 * i]}{k}{w[4 * i + 1]}:{w[4 * i + 2]}{v}{w[4 * i + 3]}"
        for i, (k, v) in enumerate(members)
    ]
    return "{" + w[-2] + ",".join(parts) + w[-1] + "}"


@st.composite
def section(draw: Any, known: list[str], ascii_only: bool) -> str:
    """A "flags" or "segments" value: an object of named members (unique keys), or
    sometimes another value."""
    if draw(st.integers(0, 9)) == 4:  # (a middle value: hypothesis favours the ends)
        return draw(json_value(ascii_only))
    names = draw(st.lists(st.text(max_size=6), max_size=6, unique=True))
    if ascii_only:
        names = [n.encode("ascii", "backslashreplace").decode() for n in names]
        names = list(dict.fromkeys(names))
    members = []
    for name in names:
        if draw(st.integers(0, 5)) == 3:
            value = draw(json_value(ascii_only))
        else:
            value = draw(st.sampled_from(known))
        members.append((draw(json_string(name, ascii_only=ascii_only)), value))
    return _object(members, draw(st.lists(WS, max_size=6)))


@st.composite
def document(draw: Any, ascii_only: bool = False) -> str:
    """A JSON flag document: flags and segments present, missing or other values (their
    names sometimes escaped), the other members a document holds, and unknown ones."""
    members: list[tuple[str, str]] = []
    names = ["flags", "segments", "version", "experiments", "metadata", "extra"]
    plausible = draw(st.booleans())  # mostly what a flag file holds, so most of it decodes
    if plausible:
        names = ["flags", *draw(st.lists(st.sampled_from(names[1:5]), max_size=4, unique=True))]
    for name in (
        draw(st.permutations(names))
        if plausible
        else draw(st.lists(st.sampled_from(names), max_size=6, unique=True))
    ):
        if name == "flags":
            value = draw(section(_FLAGS, ascii_only))
        elif name == "segments":
            value = draw(section(_SEGMENTS, ascii_only))
        elif name == "version":
            value = "1" if plausible else draw(st.sampled_from(["1", "2", '"1"', "1.0"]))
        elif name in ("experiments", "metadata"):
            value = '{"a": {"b": [1, "}"]}}'
            if not plausible:
                value = draw(st.one_of(st.just(value), json_value(ascii_only)))
        else:
            value = draw(json_value(ascii_only))
        key = f'"{name}"'
        if draw(st.integers(0, 4)) == 2:  # sometimes escaped: msgspec reads it, the scan not
            key = draw(json_string(name, ascii_only=ascii_only))
        members.append((key, value))
    return draw(WS) + _object(members, draw(st.lists(WS, max_size=8))) + draw(WS)


@settings(max_examples=examples(300))
@given(document())
def test_spans_agree_with_msgspec_and_between_implementations(text):
    doc = text.encode()
    found = _check_against_msgspec(doc)
    assert found is not None  # every generated document is one object, each name once
    # A BOM, or anything after the object, is not a document the scan answers for.
    assert _sections(b"\xef\xbb\xbf" + doc) is None
    assert _sections(doc + b"x") is None


@st.composite
def damaged(draw: Any) -> bytes:
    """A document (ASCII: every byte change keeps it UTF-8) cut short, or with a byte
    dropped, changed or added."""
    doc = draw(document(ascii_only=True)).encode()
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(doc)))
        how = draw(st.sampled_from(["cut", "drop", "put", "add"]))
        byte = draw(st.sampled_from(list(b'{}[]":,\\ \t\nuetrfaln0123456789-+.eEx\x00\x1f')))
        if how == "cut":
            doc = doc[:at]
        elif how == "drop":
            doc = doc[:at] + doc[at + 1 :]
        elif how == "put":
            doc = doc[:at] + bytes([byte]) + doc[at + 1 :]
        else:
            doc = doc[:at] + bytes([byte]) + doc[at:]
    return doc


@settings(max_examples=examples(300))
@given(damaged())
def test_damaged_documents_are_split_only_where_msgspec_reads_them(doc):
    _check_against_msgspec(doc)


@settings(max_examples=examples(200))
@given(st.binary(max_size=64))
def test_any_bytes_give_one_answer(data):
    _check_against_msgspec(data)


# Hand-written cases.


@pytest.mark.parametrize(
    "doc",
    [
        b"",
        b"   \n",
        b"[]",
        b"1",
        b'"flags"',
        b"null",
        b"{",
        b"{}}",
        b"{} x",
        b"{}\x00",
        b"\xef\xbb\xbf{}",
        b'{"a"}',
        b'{"a":}',
        b'{"a" 1}',
        b'{"a":1,}',
        b'{"a":1 "b":2}',
        b'{,"a":1}',
        b"{a:1}",
        b"{'a':1}",
        b"{1:1}",
        b'{"a":[1,]}',
        b'{"a":[,1]}',
        b'{"a":[1 2]}',
        b'{"a":[}',
        b'{"a":{]}',
        b'{"a":{"b"}}',
        b'{"a":{"b":1,}}',
        b'{"a":"x}',
        b'{"a":"x\\"}',
        b'{"a":"\x01"}',
        b'{"a":"\n"}',
        b'{"a":"\\x"}',
        b'{"a":"\\u12"}',
        b'{"a":"\\u12g4"}',
        b'{"a":"\\ud800"}',
        b'{"a":"\\ud800x"}',
        b'{"a":"\\ud800\\u0041"}',
        b'{"a":"\\ud800\\ud800"}',
        b'{"a":"\\udc00"}',
        b'{"\\ud800":1}',
        b'{"a":01}',
        b'{"a":1.}',
        b'{"a":.5}',
        b'{"a":-}',
        b'{"a":+1}',
        b'{"a":1e}',
        b'{"a":1e+}',
        b'{"a":0x10}',
        b'{"a":NaN}',
        b'{"a":-Infinity}',
        b'{"a":tru}',
        b'{"a":True}',
        b'{"a":nul}',
        b'{"a":truex}',
        b'{"flags":{},"flags":{}}',
        b'{"segments":1,"segments":{}}',
        b'{"flags":{"a":1,}}',
        b'{"flags":{"a" 1}}',
        b'{"flags":{"a":1}',
    ],
)
def test_malformed_input_is_none(doc):
    assert _sections(doc) is None


def test_spans_name_keys_between_quotes_and_values_without_whitespace():
    doc = (
        b' \t{ "version" :1 ,\r\n"flags"\n:\t{ "a\\"b" : [ 1 , {"}":"{"} ] ,"c":{}},'
        b'"segments":[] } \n'
    )
    top, flags, segments = _sections(doc)
    assert [(doc[ks:ke], doc[vs:ve]) for ks, ke, vs, ve in _quads(top)] == [
        (b"version", b"1"),
        (b"flags", doc[doc.index(b'{ "a') : doc.rindex(b"}},") + 2]),
        (b"segments", b"[]"),
    ]
    assert [(doc[ks:ke], doc[vs:ve]) for ks, ke, vs, ve in _quads(flags)] == [
        (b'a\\"b', b'[ 1 , {"}":"{"} ]'),
        (b"c", b"{}"),
    ]
    assert segments is None  # an array: not split
    _check_against_msgspec(doc)


def test_sections_absent_empty_and_escaped():
    assert _sections(b"{}") == (_sections(b"{}")[0], None, None)
    assert list(_sections(b"{}")[0]) == []
    top, flags, segments = _sections(b'{"flags":{},"segments":{ }}')
    assert list(flags) == [] and list(segments) == []
    # A name written with an escape is not recognised: snapshot.py leaves the document
    # to msgspec, which reads it as "flags".
    assert _sections(b'{"fl\\u0061gs":{"a":1}}')[1] is None
    # Only the document's own members are sections.
    assert _sections(b'{"x":{"flags":{"a":1}}}')[1:] == (None, None)


def test_deep_nesting_is_walked_without_recursion():
    deep = b'{"flags":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    found = _sections(deep)
    assert found is not None and list(found[1])[3] == len(deep) - 2
    assert _sections(deep[:-3] + b"}}") is None  # one bracket short


def test_surrogate_pairs_and_raw_utf8_are_taken():
    doc = '{"flags":{"\\ud83d\\ude00":"\\uDBFF\\uDFFF","é😀":"ü"}}'.encode()
    found = _check_against_msgspec(doc)
    assert [k for k, _ in _members(doc, found[1])] == ["\U0001f600", "é😀"]


def test_str_or_none_is_a_type_error():
    for split in _splitters():
        for bad in ("{}", None):
            with pytest.raises(TypeError):
                split(bad)
    assert _sections(bytearray(b'{"flags":{}}')) == _sections(memoryview(b'{"flags":{}}'))


# decode_snapshot: the same Snapshot, or the same error, split or not.


def _outcome(data: bytes | str, splitter: Any, monkeypatch: Any) -> Any:
    monkeypatch.setattr(S, "_JSON_SPLITTER", splitter)
    try:
        snapshot = S.decode_snapshot(data, "json", file="flags.json")
    except ConfigError as exc:
        return type(exc).__name__, str(exc), exc.problems
    return "ok", repr(msgspec.to_builtins(snapshot))  # (repr: 1, 1.0 and True differ)


def _fields(top: Any) -> Any:
    return (
        top.version,
        top.experiments,
        top.metadata,
        [(k, bytes(v)) for k, v in top.flags.items()],
        [(k, bytes(v)) for k, v in top.segments.items()],
    )


def _check_split_sections(doc: bytes) -> None:
    """The first decoding stage built from the spans is msgspec's, wherever msgspec
    reads the document and its sections are named plainly; nothing where msgspec
    refuses it (the fast path does not hide its errors by falling back)."""
    try:
        whole = _fields(msgspec.json.decode(doc, type=S._RawSnapshot))
    except (msgspec.DecodeError, msgspec.ValidationError):
        whole = None
    for split in _splitters():
        try:
            top = S._split_sections(split, doc, doc.decode())
        except Exception as exc:  # noqa: BLE001 - the caller falls back to msgspec
            assert whole is None, exc
            continue
        if top is not None:
            assert _fields(top) == whole
            continue
        if whole is not None:  # only for "flags" or "segments" written twice or escaped
            found = split(doc)
            if found is None:
                names = [k for k, _ in json.loads(doc, object_pairs_hook=lambda p: p)]
                assert names.count("flags") > 1 or names.count("segments") > 1, doc
                continue
            escaped = [
                doc[ks:ke]
                for ks, ke, _, _ in _quads(found[0])
                if msgspec.json.decode(doc[ks - 1 : ke + 1]) in ("flags", "segments")
                and b"\\" in doc[ks:ke]
            ]
            assert escaped, doc


def _all_outcomes(data: bytes | str, monkeypatch: Any) -> Any:
    if isinstance(data, bytes) and not data.startswith(b"\xef\xbb\xbf"):
        _check_split_sections(data)
    whole = _outcome(data, None, monkeypatch)
    for split in _splitters():
        assert _outcome(data, split, monkeypatch) == whole, split
    assert _outcome(data, "auto", monkeypatch) == whole
    return whole


@settings(max_examples=examples(200))
@given(document(), st.sampled_from(["bytes", "bom", "str", "str-bom"]))
def test_decoded_snapshots_and_errors_are_the_same_split_or_not(text, form):
    data: bytes | str = {
        "bytes": text.encode(),
        "bom": b"\xef\xbb\xbf" + text.encode(),
        "str": text,
        "str-bom": "\ufeff" + text,
    }[form]
    with pytest.MonkeyPatch.context() as monkeypatch:
        _all_outcomes(data, monkeypatch)


@pytest.mark.parametrize(
    "text",
    [
        '{"flags": {"a": {"default": "off"}, "b": {"default": "on"}}, "segments": {}}',
        '{"version": 2, "metadata": {"x": 1}, "experiments": {}, "flags": {}}',
        '{"flags": {"a": {"default": "off"}}, "extra": 1}',
        '{"flags": {"a": {"default": "off", "rollot": 1}, "b\\u00e9": {"default": 1}}}',
        '{"flags": {"a": {"variants": {"x": "\\ud800"}, "default": "x"}}}',
        '{"flags": {"\\udc00": {"default": "off"}}}',
        '{"flags": 1}',
        '{"flags": null}',
        '{"flags": {}, "segments": []}',
        '{"fl\\u0061gs": {"a": {"default": "off"}}}',
        '{"version": "1", "flags": {}}',
        '{"flags": {"a": {"default": "off"}}, "flags": {}}',
        '{"segments": {}}',
        '{"flags": {"a": {"default": "off"}} x',
        '{"flags": {"a": {"rules": [{"when": {"attr": "n", "lt": 1e400}, "serve": "on"}],'
        ' "default": "off"}}}',
    ],
)
def test_hand_written_documents_decode_alike(text, monkeypatch):
    _all_outcomes(text, monkeypatch)
    _all_outcomes(text.encode(), monkeypatch)


def test_a_lone_surrogate_in_str_input_is_left_to_msgspec(monkeypatch):
    text = '{"flags": {"a": {"default": "off", "description": "\ud800"}}}'
    assert _all_outcomes(text, monkeypatch)[0] == "SnapshotError"


def test_the_compiled_split_is_what_a_document_is_decoded_by(monkeypatch):
    """With the extension built, a document is decoded from the compiled scan's spans
    (not by msgspec splitting the whole document, which happens only when it fails)."""
    if IMPLEMENTATION != "c":
        if IN_CI and not NO_EXTENSIONS:
            pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
        pytest.skip("the compiled evaluator is not the one in use here")
    calls = []
    split_sections = S._split_sections

    def spy(split: Any, original: Any, text: str) -> Any:
        top = split_sections(split, original, text)
        calls.append((split, top, {k: bytes(v) for k, v in top.flags.items()}))
        return top

    monkeypatch.setattr(S, "_split_sections", spy)
    doc = (
        b'{"version": 1, "flags": {"a": {"default": "off"}},\n'
        b' "segments": {"s": {"attr": "x", "eq": 1}}}'
    )
    snapshot = S.decode_snapshot(doc, "json")
    assert list(snapshot.flags) == ["a"] and list(snapshot.segments) == ["s"]
    [(split, top, flags)] = calls
    assert split is IMPLS["c"].json_sections
    assert isinstance(top, S._RawSnapshot)
    assert flags == {"a": b'{"default": "off"}'}
    # The flags are let go one at a time once decoded.
    assert top.flags == {}
