"""Fourth audit, hot reload: the asyncio watcher survives a SystemExit from a reload.

``await manager.start_file_watching()`` runs each reload in a worker thread. Code that
runs there (a registered transform step, a validation rule) raising ``SystemExit``
came back into the watcher task, and asyncio re-raises ``SystemExit`` out of the event
loop: ``asyncio.run()`` raised it and the service exited, because one reload hit a
``sys.exit()``. The thread watcher already logged it and went on; so does this one now.
Real files, the real watchfiles watcher, a transform step registered the public way.
"""

from __future__ import annotations

import asyncio

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for_async


def test_a_system_exit_in_a_reload_does_not_leave_the_event_loop(tmp_path):
    (tmp_path / "base.yaml").write_text("app:\n  name: svc\n")
    env = tmp_path / "development.yaml"
    env.write_text("svc:\n  a: 1\n")
    m = ConfigurationManager(tmp_path, environment="development", environ={})
    substitute = m.transformer._steps["env_var_substitution"]
    exits: list = []

    def step(node, path, run):
        if node == 42:
            exits.append(path)
            raise SystemExit(5)  # a step (or rule) that calls sys.exit()
        return substitute(node, path, run)

    m.transformer.register_step("env_var_substitution", step)
    m.load_environment_config()

    async def scenario():
        await m.start_file_watching(poll_interval=0.2)
        try:
            atomic_write_text(env, "svc:\n  a: 42\n")
            assert await wait_for_async(lambda: exits)
            atomic_write_text(env, "svc:\n  a: 3\n")  # the watcher is still there
            assert await wait_for_async(lambda: m.get("svc.a") == 3)
            assert m.hot_reload_enabled
        finally:
            await m.stop_file_watching()

    try:
        asyncio.run(scenario())
    except SystemExit:
        pytest.fail("a SystemExit raised in a reload left the event loop")
    finally:
        m.close()
