"""Readers never see a mix of two snapshots while another thread swaps."""

from __future__ import annotations

import threading

A = {
    "flags": {
        "f": {
            "default": "off",
            "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "on"}],
        },
        "g": {
            "variants": {"x": "A-x", "y": "A-y"},
            "default": "x",
            "rules": [{"split": {"x": 50, "y": 50}}],
        },
    }
}
B = {
    "segments": {"eu": {"attr": "region", "in": ["EU", "UK"]}},
    "flags": {
        "g": {
            "variants": {"x": "B-x", "y": "B-y", "z": "B-z"},
            "default": "z",
            "rules": [{"when": {"segment": "eu"}, "serve": "y"}],
        },
        "f": {
            "default": "on",
            "rules": [{"when": {"attr": "seg", "eq": "premium"}, "serve": "off"}],
        },
        "h": {"default": "on"},
    },
}


def test_evaluate_while_swapping(make):
    engine = make(A)
    old, new = engine.snapshot(), engine.compile(B)
    contexts = [{"user_id": f"u{i}", "seg": s, "region": r} for i, (s, r) in enumerate(
        [("premium", "EU"), ("free", "US"), ("premium", "UK"), ("student", "EU")] * 5)]  # fmt: skip
    expected = {id(snap): [snap.evaluate_all(c) for c in contexts] for snap in (old, new)}
    allowed = [[expected[id(old)][i], expected[id(new)][i]] for i in range(len(contexts))]
    errors: list[BaseException] = []
    mismatches: list[tuple] = []
    stop = threading.Event()

    def reader(seed: int) -> None:
        try:
            bound = [engine.context(c) for c in contexts]
            n = 0
            while not stop.is_set() or n < 200:
                i = (seed + n) % len(contexts)
                ctx = bound[i] if n % 2 else contexts[i]
                got = engine.evaluate_all(ctx)
                if got not in allowed[i]:
                    mismatches.append((i, got))
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for k in range(1000):
        engine.swap(new if k % 2 == 0 else old)
    stop.set()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert not mismatches
    assert engine.version == 1001
