""".env files: a syntax error is reported as the .env file's error (file:line, the variable),
not as a missing variable in the YAML file; a byte-order mark is not part of a name; valid
files read exactly as python-dotenv reads them."""

from __future__ import annotations

import os

import pytest
from dotenv import dotenv_values
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.config.envfile import EnvironWithFile
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.setup import main as setup_main
from tests.fuzz import examples


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    d = tmp_path / "config"
    assert setup_main(["-e", "test", "-o", str(d)]) == 0
    for var in list(os.environ):
        if var.startswith(("CFGCORE", "CONFIG_")) or var.startswith("MYHOST"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    (d / "test.yaml").write_text("server:\n  host: ${MYHOST}\n")
    return d


def _manager(cfg, env_file, monkeypatch):
    monkeypatch.setenv("CFGCORE_ENV_FILE", str(env_file))
    return ConfigurationManager(cfg, environment="test")


def test_unterminated_quote_is_the_env_files_error(cfg, tmp_path, monkeypatch):
    env_file = tmp_path / "e.env"
    env_file.write_text('MYHOST="s3cr3t-value\n')
    with pytest.raises(ConfigError) as err:
        _manager(cfg, env_file, monkeypatch).load_environment_config("test")
    text = str(err.value)
    assert f"{env_file}:1:" in text
    assert "MYHOST" in text
    assert "test.yaml" not in text  # the YAML file is not to blame
    assert "s3cr3t" not in text  # the statement (maybe a secret) is not shown


def test_error_on_a_later_line_names_that_line(cfg, tmp_path, monkeypatch):
    env_file = tmp_path / "e.env"
    env_file.write_text("MYHOST=ok.example\n# comment\nnot a statement\n")
    with pytest.raises(ConfigError, match=r"e\.env:3: could not parse"):
        _manager(cfg, env_file, monkeypatch).load_environment_config("test")


def test_byte_order_mark_is_not_part_of_the_first_name(cfg, tmp_path, monkeypatch):
    env_file = tmp_path / "bom.env"
    env_file.write_bytes(b"\xef\xbb\xbfMYHOST=bom.example\n")
    m = _manager(cfg, env_file, monkeypatch)
    assert m.load_environment_config("test")["server"]["host"] == "bom.example"
    assert "\ufeffMYHOST" not in EnvironWithFile(str(env_file), base={})


def test_env_file_broken_on_reload_keeps_last_good(cfg, tmp_path, monkeypatch):
    env_file = tmp_path / "e.env"
    env_file.write_text("MYHOST=first.example\n")
    m = _manager(cfg, env_file, monkeypatch)
    m.load_environment_config("test")
    env_file.write_text('MYHOST="second.example\n')
    assert m.reload() is False
    assert m.get("server.host") == "first.example"
    assert f"{env_file}:1:" in str(m.last_error)
    env_file.write_text("MYHOST=third.example\n")
    assert m.reload() is True
    assert m.get("server.host") == "third.example"


def test_cli_reports_the_env_file_line(cfg, tmp_path, monkeypatch, capsys):
    env_file = tmp_path / "e.env"
    env_file.write_text('MYHOST="unterminated\n')
    monkeypatch.setenv("CFGCORE_ENV_FILE", str(env_file))
    code = main(["get", "--config-dir", str(cfg), "-e", "test", "server.host"])
    err = capsys.readouterr().err
    assert code != 0
    assert f"{env_file}:1: could not parse the value of MYHOST" in err
    assert "python-dotenv could not parse" not in err


names = st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True)
# (NUL excluded: no environment variable can hold one, so such a file is refused; see
# tests/test_fix10_cfg_hostile_files.py)
plain = st.text(st.characters(codec="ascii", exclude_characters="\n\r\"'#\\ $\x00"), max_size=12)
values = st.one_of(
    plain,
    plain.map(lambda v: f'"{v}"'),
    plain.map(lambda v: f"'{v}'"),
    plain.map(lambda v: f"{v} # a comment"),
)


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(lines=st.lists(st.tuples(st.booleans(), names, values), min_size=1, max_size=6))
def test_valid_files_read_as_python_dotenv_reads_them(tmp_path, lines):
    path = tmp_path / "valid.env"
    text = "".join(f"{'export ' if export else ''}{n}={v}\n" for export, n, v in lines)
    path.write_text(text)
    expected = {k: v for k, v in dotenv_values(path, interpolate=True).items() if v is not None}
    assert EnvironWithFile(str(path), base={}).file_values() == expected
