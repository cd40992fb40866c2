"""cfgcore's loggers mask URL passwords and webhook tokens in every record, traceback
included, from the moment the configuration side is imported: the mask was installed
only when a first secret was resolved, so a service that resolved none (its Redis
password in CFGCORE_FLAG_STORE, a webhook URL in an alert) logged them in clear. The
existing tests installed the mask themselves, so they did not see it. Run in a fresh
interpreter, as a service starts."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import logging, sys
logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(name)s %(message)s")
import cfgcore.config.manager  # a service's import; resolves no secret
log = logging.getLogger("cfgcore.runtime.redis_store")
log.warning("lost %s", "redis://app:Pw-hunter2-x@cache:6379/0")
try:
    raise RuntimeError("POST https://discord.com/api/webhooks/123/AbCdEf123456GhIjKl: 404")
except RuntimeError:
    logging.getLogger("cfgcore.runtime.events").exception("listener failed")
logging.getLogger("cfgcore.brand.new.logger").error("x redis://u:Pw-hunter2-y@h/0")
"""


def test_a_fresh_process_masks_urls_in_cfgcore_logs():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "lost redis://app:" in out and "@cache:6379/0" in out
    assert "RuntimeError: POST https://discord.com/api/webhooks/123/" in out  # traceback kept
    assert "Pw-hunter2-x" not in out
    assert "Pw-hunter2-y" not in out
    assert "AbCdEf123456GhIjKl" not in out
