"""Errors about a flag name their flag by a key path that reads back to it, whatever
the flag's name.

Flag document errors (decoding, compiling, importing) built their key paths by hand,
``f"flags.{key}.enabled"``: a flag named ``a.b`` was shown ``flags.a.b.enabled``, which
names flag ``a``, field ``b.enabled``, and a flag named ``""`` as ``flags..default``,
while a syntax error in the same file showed ``flags["a.b"]``. ``cfgcore import`` found
the flag a compile problem is about by the unquoted form, and refused the whole import
for a flag named ``""``. Every such path is now built with
:func:`cfgcore.errors.child_key_path` and read back with
:func:`cfgcore.errors.parse_key_path` (list items as ``rules[0]``, as before).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cfgcore.cli.interop import _compiled, _flag_of
from cfgcore.compiler import compile_snapshot
from cfgcore.errors import (
    ConfigError,
    child_key_path,
    format_key_path,
    parse_key_path,
)
from cfgcore.experiments.features import change_events
from cfgcore.experiments.history import FlagHistory
from cfgcore.interop import flagd, growthbook, unleash
from cfgcore.snapshot import Flag, Snapshot, decode_snapshot, snapshot_from_dict
from tests.fuzz import examples
from tests.texts import any_text, holds_lone_surrogate

# Any text, and the characters a key path gives a meaning to, more often than any
# text would hold them.
NAMES = st.one_of(
    any_text(max_size=12),
    st.text(alphabet=st.sampled_from('.[]"\\ \n\t\x00\x1b\x85\u2028é'), max_size=6),
    st.sampled_from(["a.b", "", ".", "[", "]", '"', "\\", '["x"]', "[0]", "a[0]", " "]),
)

# (the flag's definition, the path below flags.NAME its error names)
MISTAKES: list[tuple[Any, tuple[str, ...]]] = [
    ({"enabled": "yes", "default": "off"}, ("enabled",)),  # a wrong type
    (  # no such operator: a field no condition has, named by its own key
        {"rules": [{"when": {"attr": "plan", "bogus": 1}, "serve": "on"}], "default": "off"},
        ("rules", "0", "when", "bogus"),
    ),
    ({"default": "nope"}, ("default",)),  # no such variant
    ({"prerequisites": ["no such flag"], "default": "off"}, ("prerequisites", "0", "flag")),
]


def bad_weight(variant: str) -> tuple[Any, tuple[str, ...]]:
    """A split weight below 0, for a variant of any name: its name is a key too."""
    other = variant + "~"
    flag = {
        "variants": {variant: 1, other: 2},
        "rules": [{"split": {variant: -5, other: 105}}],
        "default": other,
    }
    return flag, ("rules", "0", "split", variant)


def problem_paths(exc: ConfigError) -> list[tuple[str, ...]]:
    return [parse_key_path(p.path) for p in exc.problems]


def check(load: Any, name: str, flag: Any, below: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as caught:
        load({"flags": {name: flag, "good": {"default": "off"}}})
    assert problem_paths(caught.value) == [("flags", name, *below)], caught.value.problems


def from_yaml(doc: Any) -> Any:
    text = yaml.safe_dump(doc, allow_unicode=False)  # every control character escaped
    return compile_snapshot(decode_snapshot(text.encode(), "yaml", file="flags.yaml"))


def from_json(doc: Any) -> Any:
    return compile_snapshot(decode_snapshot(json.dumps(doc), "json", file="flags.json"))


def from_msgpack(doc: Any) -> Any:
    return compile_snapshot(decode_snapshot(msgspec.msgpack.encode(doc), "msgpack"))


def from_dict(doc: Any) -> Any:
    return compile_snapshot(snapshot_from_dict(doc))


LOADERS = {"yaml": from_yaml, "json": from_json, "msgpack": from_msgpack, "dict": from_dict}


@pytest.mark.parametrize("loader", LOADERS)
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=NAMES, variant=NAMES, which=st.integers(0, len(MISTAKES)))
def test_an_error_in_a_flag_names_that_flag(loader, name, variant, which):
    if loader in ("json", "yaml"):
        # (written escaped, JSON and YAML read "\ud800\udc00" as one character)
        name, variant = json.loads(json.dumps([name, variant]))
    flag, below = MISTAKES[which] if which < len(MISTAKES) else bad_weight(variant)
    if name == "good":
        name = "good."
    doc = {"flags": {name: flag, "good": {"default": "off"}}}
    if loader != "dict" and holds_lone_surrogate(doc):
        # No file holds such text (no MessagePack str can, so none is written): the file
        # is refused for it, naming the flag, or for YAML (whose parser cannot read the
        # key) the mapping of flags; never another flag.
        assume(loader != "msgpack")
        with pytest.raises(ConfigError) as caught:
            LOADERS[loader](doc)
        assert all("Unicode" in p.message for p in caught.value.problems)
        shown = format_key_path(("flags", name)).encode("utf-8", "backslashreplace").decode()
        path = caught.value.problems[0].path  # (shown with its surrogates escaped)
        assert path == "flags" or path == shown or path.startswith((shown + ".", shown + "["))
        return
    check(LOADERS[loader], name, flag, below)


def test_a_flag_named_by_a_lone_surrogate_in_yaml_names_no_other_flag():
    # "\uD800" is a YAML escape the parser refuses; the key path was the flag before it.
    with pytest.raises(ConfigError) as caught:
        from_yaml({"flags": {"\ud800": {"default": "off"}, "good": {"default": "off"}}})
    [problem] = caught.value.problems
    assert (problem.path, problem.line) == ("flags", 4)
    assert "invalid Unicode character escape" in problem.message


@settings(max_examples=examples(60), deadline=None)
@given(name=NAMES)
def test_both_evaluators_refuse_a_python_built_flag_by_its_name(make_py_and_c, name):
    """A Snapshot built in Python is typed by the compiler, each evaluator's engine
    alike: a wrong type named at the flag it is in."""
    snap = Snapshot(flags={name: Flag(default="off", enabled="yes")})  # type: ignore[arg-type]
    for make in make_py_and_c:
        with pytest.raises(ConfigError) as caught:
            make(snap)
        assert problem_paths(caught.value) == [("flags", name, "enabled")]


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("checkout", "flags.checkout.enabled"),  # a plain name, as ever
        ("a.b", 'flags["a.b"].enabled'),
        ("", 'flags[""].enabled'),
        ('say "hi"', 'flags.say "hi".enabled'),
        ("x[0]", 'flags["x[0]"].enabled'),
    ],
)
def test_the_path_a_user_reads(name, shown):
    with pytest.raises(ConfigError) as caught:
        from_yaml({"flags": {name: {"enabled": "yes", "default": "off"}}})
    # (safe_dump sorts the keys: `enabled` is on line 4, after `default`)
    assert str(caught.value) == f"flags.yaml:4: {shown}: expected bool, got str"


@settings(max_examples=examples(100), deadline=None)
@given(name=NAMES)
def test_importers_name_a_refused_flag_by_its_name(name):
    refusals = [
        (
            lambda: flagd.to_snapshot(
                {"flags": {name: {"state": "NOPE", "variants": {"on": True}}}}, on_error="raise"
            ),
            ("flags", name, "state"),  # what is refused, below the flag
        ),
        (
            lambda: growthbook.to_snapshot(
                {"features": {name: {"defaultValue": True, "rules": "no"}}}, on_error="raise"
            ),
            ("features", name, "rules"),
        ),
        (
            lambda: unleash.to_snapshot(
                {"version": 1, "features": [{"name": name, "enabled": "yes"}]}, on_error="raise"
            ),
            ("features", "0", "enabled"),  # the payload's key path: a list
        ),
    ]
    for run, want in refusals:
        with pytest.raises(ConfigError) as caught:
            run()
        assert problem_paths(caught.value)[0] == want
        if want == ("features", "0", "enabled"):  # Unleash: and the feature by its name
            assert caught.value.problems[0].message.endswith(f"(feature {name!r:.60})")


@settings(max_examples=examples(60), deadline=None)
@given(name=NAMES.filter(lambda n: n not in ("good", "good.x")))
def test_cfgcore_import_leaves_out_the_flag_the_compiler_refuses(name):
    """``cfgcore import`` leaves out a flag the importer lowered and the compiler
    refuses, finding it by the problem's key path: a flag named ``""`` or ``a.b`` is
    refused on its own (the whole import was refused for ``""``), and ``good`` and
    ``good.x`` stay (``flags.good.x.default`` named either)."""
    snapshot = snapshot_from_dict(
        {
            "flags": {
                name: {"default": "nope"},
                "good": {"default": "on"},
                "good.x": {"default": "off"},
            }
        }
    )
    kept = _compiled(snapshot, "flags.json", "out.yaml")
    assert set(kept.flags) == {"good", "good.x"}
    reason = kept.metadata["refused"][name]
    # no importer said where the flag is in the source: the converted document's path
    # alone, named as such
    prefix = "does not compile once converted (at "
    assert reason.startswith(prefix)
    shown = reason.removeprefix(prefix).rsplit(" in the converted cfgcore document)", 1)[0]
    assert parse_key_path(shown) == ("flags", name, "default")


def test_flag_of_reads_the_rendered_path():
    flags = {"a", "a.b", ""}
    assert _flag_of('flags["a.b"].rules[0].when', flags) == "a.b"
    assert _flag_of("flags.a.rules[0].when", flags) == "a"
    assert _flag_of('flags[""].default', flags) == ""
    assert _flag_of('segments["a.b"]', flags) is None


SEGMENTS = st.lists(st.one_of(NAMES, st.integers(0, 30)), min_size=1, max_size=6)


@settings(max_examples=examples(300), deadline=None)
@given(segs=SEGMENTS)
def test_paths_built_a_segment_at_a_time_read_back(segs):
    """child_key_path for keys, ``[i]`` for a list item (as flag documents show them),
    format_key_path (``.i``) for a whole path: each reads back to the segments."""
    path = ""
    for seg in segs:
        path = f"{path}[{seg}]" if isinstance(seg, int) and path else child_key_path(path, seg)
    want = tuple(str(s) for s in segs)
    assert parse_key_path(path) == want
    assert parse_key_path(format_key_path(segs)) == want


def test_history_reads_quoted_and_earlier_unquoted_entries(tmp_path):
    log = tmp_path / "audit.log"
    entries = [
        {"ts": "2026-01-01T00:00:00+00:00", "kind": "change", "path": 'flags["a.b"]',
         "old": None, "new": {"default": "off"}},
        {"ts": "2026-01-02T00:00:00+00:00", "kind": "change", "path": "flags.c.d",
         "old": None, "new": {"default": "off"}},  # written before keys were quoted
        {"ts": "2026-01-03T00:00:00+00:00", "kind": "change", "path": 'flags[""]',
         "old": None, "new": {"default": "on"}},
    ]  # fmt: skip
    log.write_text("".join(json.dumps(e) + "\n" for e in entries))
    history = FlagHistory.from_logs([str(log)])
    assert set(history.changes) == {"a.b", "c.d", ""}


@settings(max_examples=examples(100), deadline=None)
@given(name=NAMES)
def test_a_change_event_names_its_flag_by_a_path_that_reads_back(name):
    old = snapshot_from_dict({"flags": {}})
    new = snapshot_from_dict({"flags": {name: {"default": "on"}}})
    (event,) = change_events(old, new, "test", 1, 0.0, None)
    assert parse_key_path(event.config_path) == ("flags", name)
