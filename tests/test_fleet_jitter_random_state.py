"""A fleet follower reconnecting to a Redis that went away waits a jittered backoff
between attempts. The jitter is drawn from the system's entropy, not the ``random``
module's shared generator: a service's own seeded ``random`` (a simulation, a sampler,
a test framework that checks its generators are not disturbed) must not see its
sequence move because a background thread reconnected. A real Redis, killed."""

from __future__ import annotations

import random

from cfgcore.experiments.dynamic import DynamicConfigurationManager
from tests.redis_server import wait_for


def test_reconnect_backoff_leaves_the_random_module_alone(redis_server, tmp_path):
    url = redis_server.url + "?namespace=jitter&poll=0.05&backoff_max=0.05"
    m = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state", log_exposures=False)
    try:
        store = m._live.store
        assert m.is_feature_enabled("beta_social_features", {"user_id": "1"}) in (True, False)
        random.seed(1234)
        state = random.getstate()
        redis_server.kill()
        wait_for(lambda: store.stats["reconnects"] >= 3, timeout=20)
        # Several jittered waits later, the shared generator is where it was left.
        assert random.getstate() == state
        assert random.random() == random.Random(1234).random()
    finally:
        m.close()
