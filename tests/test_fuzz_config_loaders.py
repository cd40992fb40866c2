"""Fuzz targets for the configuration loaders (issue 10): YAML, JSON and TOML files
through ``parse_text`` and through a real :class:`ConfigurationManager` load/reload.

Whatever the bytes, the outcome is a mapping or a :class:`ConfigError` (with the
file named), never another exception, and a refused reload keeps the live version.
Short in CI; ``CFGCORE_FUZZ_EXAMPLES=N`` runs N examples per target (the soak run the
closing note of issue 10 reports), ``CFGCORE_FUZZ_DEADLINE_MS`` adds a per-input limit.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import timedelta

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.config.files import INT_MAX, INT_MIN, MAX_DEPTH, parse_text, tree_problem
from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.tree import thaw
from cfgcore.errors import ConfigError
from tests.fuzz import examples

_N = int(os.environ.get("CFGCORE_FUZZ_EXAMPLES", "0"))
_DEADLINE = os.environ.get("CFGCORE_FUZZ_DEADLINE_MS")
FORMATS = ("yaml", "json", "toml")


def fuzz(ci_examples: int):
    return settings(
        max_examples=_N or examples(ci_examples),
        deadline=timedelta(milliseconds=int(_DEADLINE)) if _DEADLINE else None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        database=None,
    )


# --- inputs ---------------------------------------------------------------------------------

keys = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
ints = st.one_of(
    st.integers(-1000, 1000),
    st.integers(INT_MIN - 2, INT_MIN + 2),
    st.integers(INT_MAX - 2, INT_MAX + 2),
    st.integers(min_value=-(10**400), max_value=10**400),
)
scalars = st.one_of(
    ints,
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
trees = st.recursive(
    st.dictionaries(keys, scalars, max_size=4),
    lambda children: st.dictionaries(
        keys, st.one_of(scalars, children, st.lists(scalars, max_size=3)), max_size=4
    ),
    max_leaves=25,
)


def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else "nan"
    if isinstance(v, str):
        # A JSON string is a TOML basic string once non-ASCII stays literal (TOML has no
        # surrogate-pair escapes) and DEL, which TOML wants escaped, is.
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def to_toml(tree, prefix=()):
    plain = [(k, v) for k, v in tree.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in tree.items() if isinstance(v, dict)]
    out = "".join(f"{k} = {_toml_value(v)}\n" for k, v in plain)
    for k, v in tables:
        out += f"\n[{'.'.join((*prefix, k))}]\n" + to_toml(v, (*prefix, k))
    return out


def serialise(tree, fmt):
    if fmt == "json":
        return json.dumps(tree)
    if fmt == "yaml":
        return yaml.safe_dump(tree, sort_keys=False)
    return to_toml(tree)


# Hostile fragments: aliases and merge keys (expansion bombs), tags, flow and block
# syntax mixed, huge digit runs, deep brackets, duplicate keys, BOMs and NULs.
TOKENS = [
    "a: ", "b: ", "&x ", "*x", "<<: *x", "[", "]", "{", "}", "- ", "\n", "  ", ": ", ", ",
    '"', "'", "!!python/object:os.system ", "!!binary ", "---\n", "...", "#", "9" * 30,
    "9" * 5000, "[" * 200, "{a: " * 150, '{"a": 1, "a": 2}', "a = 1\n", "[t]\n", "[[t]]\n",
    "\ufeff", "\x00", "1e999", "-.inf", ".nan", "0x1F", "0o17", "1_000", "~", "null",
    "true", "yes", "2024-01-01", "a.b = 2\n", "${X}", "${X:-d}", "__delete__", "\t",
]  # fmt: skip
hostile = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)
texts = st.one_of(st.text(max_size=300), hostile)


def mutated(data):
    """A valid serialised tree, then cut, spliced or with a line doubled."""
    fmt = data.draw(st.sampled_from(FORMATS))
    text = serialise(data.draw(trees), fmt)
    how = data.draw(st.sampled_from(["as is", "truncate", "splice", "double"]))
    if how == "truncate" and text:
        text = text[: data.draw(st.integers(0, len(text) - 1))]
    elif how == "splice":
        at = data.draw(st.integers(0, len(text)))
        text = text[:at] + data.draw(hostile) + text[at:]
    elif how == "double" and text.strip():
        lines = text.splitlines(keepends=True)
        i = data.draw(st.integers(0, len(lines) - 1))
        text = "".join(lines[: i + 1] + lines[i:])
    return fmt, text, how


def check_outcome(text, fmt, file="/cfg/development." + "x"):
    """parse_text's contract: a mapping within the limits, or a ConfigError naming the file."""
    try:
        data = parse_text(text, fmt, file)
    except ConfigError as exc:
        assert exc.problems and all(p.file == file for p in exc.problems), exc
        return None
    assert isinstance(data, dict) and text.strip()
    assert tree_problem(data) is None
    return data


# --- targets --------------------------------------------------------------------------------


@fuzz(100)
@given(fmt=st.sampled_from(FORMATS), text=texts)
def test_fuzz_parse_text_arbitrary(fmt, text):
    check_outcome(text, fmt)


@fuzz(60)
@given(data=st.data())
def test_fuzz_parse_text_mutated_documents(data):
    fmt, text, how = mutated(data)
    check_outcome(text, fmt)


@fuzz(50)
@given(fmt=st.sampled_from(FORMATS), tree=trees)
def test_fuzz_round_trip_within_limits(fmt, tree):
    """A well-formed document loads as exactly its tree, or is refused for a limit."""
    text = serialise(tree, fmt)
    data = check_outcome(text, fmt)
    over = tree_problem(tree) is not None
    if data is None:
        assert over or not tree, text[:200]  # refused only for a real reason
    else:
        assert not over and data == tree


def _manager_dir():
    return tempfile.mkdtemp(prefix="cfgcore-fuzz-")


def _no_validator_crash(exc):
    # The validation engine reports its own crash as a blocking problem: a bug here.
    assert not any("validation engine failed" in p.message for p in exc.problems), exc


@fuzz(20)
@given(data=st.data())
def test_fuzz_manager_first_load_and_reload(data):
    """Through the manager: first load, then a reload of the fuzzed bytes over a good
    version. Refusals are ConfigErrors with last_error set; the good version stays."""
    fmt, text, _how = mutated(data) if data.draw(st.booleans()) else (
        data.draw(st.sampled_from(FORMATS)), data.draw(texts), "raw")  # fmt: skip
    d = _manager_dir()
    try:
        path = os.path.join(d, f"development.{fmt}")
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as fh:
            fh.write(text)
        m = ConfigurationManager(d, environment="development", environ={})
        try:
            first = thaw(m.load_environment_config())
        except ConfigError as exc:
            assert m.last_error is exc and m.version == 0
            _no_validator_crash(exc)
            first = None
        else:
            assert isinstance(first, dict)
        # Now over a good version: the same bytes as a reload.
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(serialise({"app": {"name": "good"}}, fmt))
        m2 = ConfigurationManager(d, environment="development", environ={})
        m2.load_environment_config()
        with open(path, "w", encoding="utf-8", errors="surrogatepass") as fh:
            fh.write(text)
        os.utime(path, ns=(1, 1))  # a new fingerprint even within one clock tick
        if m2.reload():
            assert first is not None and thaw(m2.config) == first
        else:
            assert isinstance(m2.last_error, ConfigError)
            _no_validator_crash(m2.last_error)
            assert m2.get("app.name") == "good" and m2.version == 1
        m.close()
        m2.close()
    finally:
        for name in os.listdir(d):
            os.unlink(os.path.join(d, name))
        os.rmdir(d)


def test_fuzz_limits_are_the_documented_ones():
    # The constants the targets above lean on.
    assert MAX_DEPTH == 100 and INT_MAX == 2**64 - 1 and INT_MIN == -(2**63)
