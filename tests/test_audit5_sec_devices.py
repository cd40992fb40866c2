"""Round 5 (security): a link in a watched directory naming a device or a FIFO.

``read_regular`` (configuration files, ``.env`` files, policy and key files) refused
anything but a regular file only after opening it, and opening a device does things of
its own: a watchdog starts counting, a tape rewinds, and a terminal opened without
``O_NOCTTY`` becomes the controlling terminal of a daemon that has none (its hangup
then signals the service). It is now refused before it is opened. The opens are
watched with a spy on ``os.open`` (the real call still runs).
"""

from __future__ import annotations

import os

import pytest

from cfgcore.config.files import read_config_file
from cfgcore.errors import ConfigError
from cfgcore.runtime import atomicio

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs and devices")


@pytest.fixture
def opened(monkeypatch):
    seen: list[str] = []
    real = os.open

    def spy(path, flags, *args, **kwargs):
        seen.append(os.fspath(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(atomicio.os, "open", spy)
    return seen


def test_a_link_to_a_device_or_fifo_is_refused_unopened(tmp_path, opened):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for target in ("/dev/null", str(fifo), str(tmp_path)):
        link = tmp_path / "production.yaml"
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        with pytest.raises(OSError, match="not a regular file"):
            atomicio.read_regular(link)
        with pytest.raises(ConfigError, match="not a regular file"):
            read_config_file(str(link))
    assert opened == []


def test_a_regular_file_through_a_link_still_reads(tmp_path, opened):
    real = tmp_path / "real.yaml"
    real.write_text("a: 1\n")
    link = tmp_path / "production.yaml"
    link.symlink_to(real)
    assert atomicio.read_regular(link) == b"a: 1\n"
    assert opened == [str(link)]
