"""Audit of the configuration inputs an attacker (or an accident) can put in place of a
file: every reader must refuse a FIFO or a device with one error line naming the file,
never block (a FIFO's open and read wait for a writer forever, with the manager's lock
held) or read without end (``/dev/zero``)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cfgcore").__file__)))


def _cli(tmp_path, *argv, env=None):
    """``cfgcore ARGV`` in a child process: an old reader would block forever, so the
    deadline turns a hang into a failure instead of a stuck suite."""
    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CFGCORE", "CONFIG_"))},
        "PYTHONPATH": SRC,
        "CFGCORE_STATE_DIR": str(tmp_path / "state"),
        **(env or {}),
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cfgcore", *argv],
            cwd=tmp_path, env=full, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"cfgcore {' '.join(argv)} blocked on a file that is not a regular file")
    return done.returncode, done.stdout, done.stderr


def _special(path, kind):
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)


@pytest.fixture
def confdir(tmp_path):
    d = tmp_path / "config"
    (d / "profiles").mkdir(parents=True)
    (d / "base.yaml").write_text("server:\n  port: 8080\n")
    return d


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize("target", ["base.yaml", "development.yaml", "profiles/fast.yaml"])
def test_configuration_files_that_are_not_regular_files_are_refused(
    tmp_path, confdir, kind, target
):
    if target != "development.yaml":
        (confdir / "development.yaml").write_text("server:\n  port: 9090\n")
    path = confdir / target
    path.unlink(missing_ok=True)
    _special(path, kind)
    argv = ["get", "server.port", "--config-dir", str(confdir)]
    if target.startswith("profiles/"):
        argv += ["--profile", "fast"]
    code, out, err = _cli(tmp_path, *argv)
    assert (code, out) == (1, "")
    assert err == f"cfgcore: error: {path}: cannot read: not a regular file " + (
        "(a FIFO, a device or a directory)\n"
    )


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_env_file_that_is_not_a_regular_file_is_refused(tmp_path, confdir, kind):
    (confdir / "development.yaml").write_text("server:\n  host: ${HOST}\n")
    env_file = tmp_path / "secrets.env"
    _special(env_file, kind)
    code, out, err = _cli(
        tmp_path, "get", "server.host", "--config-dir", str(confdir),
        env={"CFGCORE_ENV_FILE": str(env_file)},
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert f"{env_file}: CFGCORE_ENV_FILE names a file that is not a regular file" in err


def test_dotenv_beside_the_directory_that_is_a_fifo_is_refused(tmp_path, confdir):
    from cfgcore.config.envfile import EnvironWithFile
    from cfgcore.errors import ConfigError

    (confdir / "development.yaml").write_text("server:\n  host: ${HOST}\n")
    os.mkfifo(tmp_path / ".env")
    # The reader refuses it (a hot reload re-reads the file by its name, and something
    # else may have been put there since it was chosen).
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            EnvironWithFile(str(tmp_path / ".env"), base={}).file_values()
        except BaseException as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read, daemon=True)  # an old reader blocks forever
    reader.start()
    reader.join(30)
    assert not reader.is_alive(), "reading a FIFO .env blocked"
    assert len(outcome) == 1 and isinstance(outcome[0], ConfigError)
    assert "not a regular file" in str(outcome[0])
    # Discovery refuses it too, naming the file (as README says of a FIFO in place of a
    # .env file), rather than passing it over and leaving its variables missing.
    code, out, err = _cli(tmp_path, "get", "server.host", "--config-dir", str(confdir))
    assert (code, out) == (1, "") and f"{tmp_path / '.env'}: is not a regular file" in err


@pytest.mark.parametrize("kind", ["fifo", "device"])
@pytest.mark.parametrize(
    "argv",
    [
        ["migrate", "{src}", "--out", "{out}"],
        ["import", "flagd", "{src}", "--out", "{out}/flags.yaml"],
    ],
)
def test_legacy_and_import_sources_that_are_not_regular_files_are_refused(tmp_path, kind, argv):
    src = tmp_path / ("legacy.ini" if argv[0] == "migrate" else "flags.json")
    _special(src, kind)
    out_dir = tmp_path / "out"
    code, out, err = _cli(tmp_path, *[a.format(src=src, out=out_dir) for a in argv])
    assert code == 1
    assert "not a regular file" in err and str(src.name) in err
    assert len(err.splitlines()) == 1
    assert not out_dir.exists() or not os.listdir(out_dir)
