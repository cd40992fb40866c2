"""A secret file a new ``${file:...}`` reference names is watched from then on.

The watch's directories were fixed when hot reload was enabled, so a secret in a
directory the configuration did not reference then (a second Secret volume added
with a release) was seen only by the periodic poll: its rotation waited for the next
poll instead of going live on its event. Every activation now hands the watcher the
directories its inputs live in, and the watch starts again on them (watchfiles cannot
change a running watch's paths). Real files, the real watcher (thread and asyncio),
the poll turned off so that only the watcher can see the rotation.
"""

from __future__ import annotations

import asyncio

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.atomicio import atomic_write_text
from tests.waiting import wait_for, wait_for_async

WATCHER_ONLY = 3600.0  # poll_interval: the periodic poll never runs during a test


def _setup(tmp_path):
    first, second = tmp_path / "vol-a", tmp_path / "vol-b"
    first.mkdir()
    second.mkdir()
    (first / "db_password").write_text("db-1\n")
    (second / "api_key").write_text("key-1\n")
    config = tmp_path / "config"
    config.mkdir()
    env = config / "staging.yaml"
    env.write_text(f"db:\n  password: '${{file:{first / 'db_password'}}}'\n")
    m = ConfigurationManager(
        config,
        environ={"CFGCORE_SECRET_DIRS": f"{first}:{second}"},
        validate=False,
    )
    m.load_environment_config("staging")
    return m, env, first, second


def _reference_the_second(env, first, second) -> None:
    atomic_write_text(
        env,
        f"db:\n  password: '${{file:{first / 'db_password'}}}'\n"
        f"api:\n  key: '${{file:{second / 'api_key'}}}'\n",
    )


def test_the_thread_watcher_follows_a_secret_directory_added_after_start(tmp_path):
    m, env, first, second = _setup(tmp_path)
    try:
        m.enable_hot_reload(poll_interval=WATCHER_ONLY)
        assert wait_for(lambda: m.reloader.confirmed_at)
        _reference_the_second(env, first, second)
        assert wait_for(lambda: m.get("api.key") == "key-1")
        for generation in range(2, 4):  # rotated twice: watched for good
            atomic_write_text(second / "api_key", f"key-{generation}\n")
            assert wait_for(lambda g=generation: m.get("api.key") == f"key-{g}")
        atomic_write_text(first / "db_password", "db-2\n")  # the first still watched
        assert wait_for(lambda: m.get("db.password") == "db-2")
        assert m.last_error is None
    finally:
        m.close()


def test_the_asyncio_watcher_follows_it_too(tmp_path):
    m, env, first, second = _setup(tmp_path)

    async def scenario():
        await m.start_file_watching(poll_interval=WATCHER_ONLY)
        try:
            _reference_the_second(env, first, second)
            assert await wait_for_async(lambda: m.get("api.key") == "key-1")
            atomic_write_text(second / "api_key", "key-2\n")
            assert await wait_for_async(lambda: m.get("api.key") == "key-2")
        finally:
            await m.stop_file_watching()

    try:
        asyncio.run(scenario())
    finally:
        m.close()
