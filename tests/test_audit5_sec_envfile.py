"""Round 5 (security): a hostile ``.env`` file.

Each line's ``${...}`` interpolation copied the whole environment and every earlier
value (python-dotenv's ``{**os.environ, **values}``), so a file of 20,000 lines took 14 s
of CPU and 200,000 lines most of an hour, on every load and reload. And values built
from references to values doubled at each line (``B=${A}${A}``, ``C=${B}${B}``...):
forty lines asked for terabytes. What the values expand to is now bounded (an error
naming the file and line, the last good configuration kept) and each line costs what
it reads. And a ``.env`` file beside the configuration could set the secret
directories (``CFGCORE_SECRET_DIRS=/`` and a ``CFGCORE__`` override reading any file the
service can read into a key) or put its own key ring in place of the process's: such
settings come from the process environment only now. Real manager, real files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from cfgcore.config import envfile
from cfgcore.config.manager import ConfigurationManager
from tests.conftest import scaffolded_config

DOUBLING = "A0=0123456789abcdef\n" + "".join(
    f"A{i}=${{A{i - 1}}}${{A{i - 1}}}\n" for i in range(1, 41)
)


@pytest.fixture
def cfg(tmp_path, monkeypatch):
    d = scaffolded_config(tmp_path, monkeypatch, "staging")
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    monkeypatch.delenv("APP_GREETING", raising=False)
    (tmp_path / ".env").write_text("APP_GREETING=hello\n")
    staging = d / "staging.yaml"
    staging.write_text(staging.read_text() + "\ngreeting:\n  text: ${APP_GREETING}\n")
    return d


def test_a_doubling_env_file_is_refused_naming_its_line_and_the_last_good_stays(cfg, monkeypatch):
    monkeypatch.setattr(envfile, "_MAX_EXPANDED", 1 << 20)  # 1 MiB: the test stays small
    m = ConfigurationManager(cfg, record_usage=False)
    try:
        m.load_environment_config("staging")
        assert m.get("greeting.text") == "hello"
        env = cfg.parent / ".env"
        env.write_text("APP_GREETING=changed\n" + DOUBLING)
        os.utime(env, ns=(1, 1))  # another stamp than the first read's, whatever the clock
        assert m.reload() is False
        assert m.get("greeting.text") == "hello"
        # 16 bytes doubled at each line: all of them past 1 MiB at A16 (line 18).
        assert f"{env}:18: the value of A16 takes the file's values past 1 MiB" in str(m.last_error)
    finally:
        m.close()


CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_CPU, (30, 30))  # the old reader took minutes
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # and doubled past it
    from cfgcore.config.envfile import _read
    from cfgcore.errors import ConfigError
    out = {}
    values, _, _ = _read(sys.argv[1])
    out["many"] = [len(values), values["K59999"]]
    try:
        _read(sys.argv[2])
    except ConfigError as exc:
        out["doubling"] = str(exc)
    print(json.dumps(out))
    """
)


def test_a_long_env_file_costs_each_line_what_it_reads(tmp_path):
    many = tmp_path / "many.env"
    many.write_text(
        "BASE=b\n" + "".join(f"K{i}=${{BASE}}-{i}-${{UNSET_{i}:-x}}\n" for i in range(60000))
    )
    doubling = tmp_path / "doubling.env"
    doubling.write_text(DOUBLING)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(many), str(doubling)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["many"][0] == 60001
    assert out["many"][1] == "b-59999-x"
    assert (
        f"{doubling}:23: the value of A22 takes the file's values past 64 MiB" in (out["doubling"])
    )


def test_an_edit_that_keeps_the_size_and_mtime_is_read_again(cfg):
    env = cfg.parent / ".env"
    env.write_text("APP_GREETING=hello\n")
    before = env.stat()
    m = ConfigurationManager(cfg, record_usage=False)
    try:
        m.load_environment_config("staging")
        assert m.get("greeting.text") == "hello"
        env.write_text("APP_GREETING=hellO\n")  # same size
        os.utime(env, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime set back
        assert m.reload() is True
        assert m.get("greeting.text") == "hellO"
    finally:
        m.close()


def test_a_env_file_cannot_open_the_secret_directories_or_replace_the_keys(
    cfg, tmp_path, monkeypatch, caplog
):
    from cfgcore.errors import ConfigError
    from cfgcore.runtime.secrets import Keyring, encrypt_value, generate_key

    private = tmp_path / "private.txt"
    private.write_text("ShadowLikeContent\n")
    key_file = tmp_path / "keys"
    key_file.write_text(generate_key("real") + "\n")
    key_file.chmod(0o600)
    monkeypatch.setenv("CFGCORE_SECRET_KEY_FILE", str(key_file))
    monkeypatch.setenv("CFGCORE_SECRET_DIRS", str(tmp_path / "run-secrets"))
    envelope = encrypt_value("db-pass-0", Keyring.from_file(key_file), path="db.pass")
    staging = cfg / "staging.yaml"
    staging.write_text(staging.read_text() + f"\ndb:\n  pass: {envelope}\n")
    env = cfg.parent / ".env"
    env.write_text(
        "APP_GREETING=hello\n"
        f"CFGCORE_SECRET_KEYS={generate_key('theirs')}\n"  # would come before the file
        "CFGCORE_SECRET_DIRS=/\n"
        f"CFGCORE__GREETING__TEXT=${{file:{private}}}\n"
    )
    m = ConfigurationManager(cfg, record_usage=False)
    try:
        with pytest.raises(ConfigError) as exc:
            m.load_environment_config("staging")
        assert "greeting.text: secret file" in str(exc.value)
        assert "is outside the allowed directories" in str(exc.value)
        assert "ShadowLikeContent" not in str(exc.value)
        said = [r.getMessage() for r in caplog.records if "only the process" in r.getMessage()]
        assert said == [
            f"the .env file {env} sets CFGCORE_SECRET_DIRS, CFGCORE_SECRET_KEYS, which only "
            "the process environment may set: ignored"
        ]
        env.write_text("APP_GREETING=hello\n" + "".join(env.read_text().splitlines(True)[1:3]))
        m.load_environment_config("staging")  # the process's key file decrypts db.pass
        assert str(m.get("db.pass")) == "db-pass-0"
    finally:
        m.close()
