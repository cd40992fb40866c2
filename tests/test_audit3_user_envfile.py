"""Round 3, the new user: the spec's ``.env`` example.

``SPOTIFY_API_KEY=${SPOTIFY_API_SECRET}`` with SPOTIFY_API_SECRET not exported gave
SPOTIFY_API_KEY the value "" (python-dotenv's answer), so a configuration's
``${SPOTIFY_API_KEY}`` served an empty API key without a word. Such a name is now left
unset: the configuration's reference is the usual missing-variable error, naming the
configuration file, line and key, and the ``.env`` line that could not set it.
Everything else reads as python-dotenv reads it (checked against it below).
"""

from __future__ import annotations

import io
import os

import pytest
from dotenv.main import resolve_variables
from dotenv.parser import parse_stream
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.envfile import EnvironWithFile
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.conftest import scaffolded_config
from tests.fuzz import examples

SPEC_ENV = """\
# .env
SPOTIFY_API_KEY=${SPOTIFY_API_SECRET}
DATABASE_URL=postgresql://user:pass@localhost/db
REDIS_URL=redis://localhost:6379
"""


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    d = scaffolded_config(tmp_path, monkeypatch, "staging")
    monkeypatch.delenv("SPOTIFY_API_SECRET", raising=False)
    monkeypatch.delenv("SPOTIFY_API_KEY", raising=False)
    (tmp_path / ".env").write_text(SPEC_ENV)
    staging = d / "staging.yaml"
    staging.write_text(staging.read_text() + "\nspotify:\n  api_key: ${SPOTIFY_API_KEY}\n")
    return d


def test_a_key_set_from_an_unset_variable_is_a_load_error_naming_both_lines(cfg):
    m = ConfigurationManager(cfg, record_usage=False)
    try:
        with pytest.raises(ConfigError) as exc:
            m.load_environment_config("staging")
    finally:
        m.close()
    line = (cfg / "staging.yaml").read_text().splitlines().index("  api_key: ${SPOTIFY_API_KEY}")
    assert str(exc.value) == (
        f"{cfg / 'staging.yaml'}:{line + 1}: spotify.api_key: environment variable "
        "SPOTIFY_API_KEY is not set and ${SPOTIFY_API_KEY} has no default "
        f"({cfg.parent / '.env'}:2 sets it from ${{SPOTIFY_API_SECRET}}, which is not set)"
    )


def test_with_the_variable_exported_the_key_is_served(cfg, monkeypatch):
    monkeypatch.setenv("SPOTIFY_API_SECRET", "s3cr3t-value")
    m = ConfigurationManager(cfg, record_usage=False)
    try:
        m.load_environment_config("staging")
        assert m.get("spotify.api_key") == "s3cr3t-value"
        assert m.get("caching_layers.l2_cache.url") == "redis://localhost:6379"  # from .env
    finally:
        m.close()


def test_defaults_and_earlier_names_still_resolve(tmp_path, monkeypatch):
    monkeypatch.delenv("CFGCORE_T3_UNSET", raising=False)
    env = tmp_path / ".env"
    env.write_text(
        "A=${CFGCORE_T3_UNSET:-fallback}\nB=${A}-b\nC=${CFGCORE_T3_UNSET}\nD=${C}\nE=${LATER}\n"
        "LATER=x\n"
    )
    e = EnvironWithFile(str(env), base={})
    assert e.file_values() == {"A": "fallback", "B": "fallback-b", "LATER": "x"}
    assert e.unresolved == {
        "C": (3, "CFGCORE_T3_UNSET"),
        "D": (4, "C"),  # C is not set either
        "E": (5, "LATER"),  # python-dotenv resolves top to bottom
    }
    assert e.why_unset("C") == f" ({env}:3 sets it from ${{CFGCORE_T3_UNSET}}, which is not set)"
    assert e.why_unset("A") == "" and e.why_unset("NOT_IN_FILE") == ""


@st.composite
def _resolvable_files(draw):
    """.env lines whose every reference without a default names a variable set by then
    (an earlier line, or CFGCORE_T3_SET); defaults may name anything, set or not."""
    lines: list[tuple[str, str]] = []
    for i in range(draw(st.integers(1, 6))):
        key = draw(st.sampled_from([f"K{j}" for j in range(i + 1)]))  # redefinitions too
        defined = ["CFGCORE_T3_SET", *(k for k, _ in lines)]
        piece = st.one_of(
            st.sampled_from(["a", "-", "/", ":", " "]),
            st.sampled_from(defined).map(lambda n: f"${{{n}}}"),
            st.sampled_from(["K0", "K5", "CFGCORE_T3_UNSET", *defined]).map(
                lambda n: f"${{{n}:-d}}"
            ),
        )
        lines.append((key, "".join(draw(st.lists(piece, max_size=4)))))
    return lines


@settings(max_examples=examples(150), deadline=None)
@given(_resolvable_files())
def test_where_every_reference_resolves_it_reads_as_python_dotenv(tmp_path_factory, lines):
    saved = {n: os.environ.get(n) for n in ("CFGCORE_T3_SET", "CFGCORE_T3_UNSET")}
    os.environ["CFGCORE_T3_SET"] = "S"
    os.environ.pop("CFGCORE_T3_UNSET", None)
    try:
        text = "".join(f'{k}="{v}"\n' for k, v in lines)
        path = tmp_path_factory.mktemp("env") / ".env"
        path.write_text(text)
        e = EnvironWithFile(str(path), base={})
        bindings = [b for b in parse_stream(io.StringIO(text)) if b.key]
        theirs = resolve_variables(((b.key, b.value) for b in bindings), override=True)
        assert e.file_values() == theirs
        assert e.unresolved == {}
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v
