"""Hardening: ``${file:...}`` secret files (audit finding 5).

A FIFO inside a secrets directory hung the configuration load forever.
"""

from __future__ import annotations

import os
import threading

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime import secrets
from cfgcore.runtime.secrets import read_secret_file

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX file types")


@pytest.fixture(autouse=True)
def _fresh_registry():
    secrets.forget_secrets()
    yield
    secrets.forget_secrets()


class _FifoWriter:
    """Opens the FIFO for writing and closes it at once: a reader blocked in open()
    then reads end-of-file instead of waiting forever (so a regression fails instead of
    hanging). Released at the end whether or not a reader ever came."""

    def __init__(self, path):
        self.path = path
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        os.close(os.open(self.path, os.O_WRONLY))

    def release(self):
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # lets a blocked writer go
        try:
            self.thread.join()
        finally:
            os.close(fd)


def test_a_fifo_in_a_secrets_directory_is_refused_not_waited_on(tmp_path, monkeypatch):
    sec = tmp_path / "sec"
    sec.mkdir()
    fifo = sec / "db_password"
    os.mkfifo(fifo)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "staging.yaml").write_text(
        f"environment: staging\ndb:\n  password: '${{file:{fifo}}}'\n"
    )
    monkeypatch.setenv("CFGCORE_SECRET_DIRS", str(sec))
    monkeypatch.setenv("CFGCORE_USAGE", "0")
    writer = _FifoWriter(fifo)
    try:
        m = ConfigurationManager(str(tmp_path / "c"))
        with pytest.raises(ConfigError) as err:
            m.load_environment_config("staging")
        m.close()
    finally:
        writer.release()
    assert f"staging.yaml: db.password: secret file '{fifo}': not a regular file" in str(err.value)


def test_a_secret_file_over_the_limit_is_refused(tmp_path):
    sec = tmp_path.resolve()
    big = sec / "big"
    with open(big, "wb") as fh:
        fh.truncate((1 << 20) + 1)
    with pytest.raises(ValueError, match="1 MiB"):
        read_secret_file(str(big), (str(sec),))
    with pytest.raises(ValueError, match="not a regular file"):
        read_secret_file(str(sec), (str(sec),))  # the directory itself
