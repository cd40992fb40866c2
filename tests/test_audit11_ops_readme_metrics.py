"""Every metric cfgcore exports is named in the README's metrics table, where an operator
looks for what to alert on: nine of them (``cfgcore_flags_last_document_rejected``,
``cfgcore_config_hot_reload_enabled``, the Redis store's write, conflict, regression
and stop-entry counters...) were exported but named nowhere in the README."""

from __future__ import annotations

import re
from pathlib import Path

import cfgcore.metrics

README = Path(__file__).resolve().parent.parent / "README.md"


def _table() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("| metric | labels | what |")
    return text[start : text.index("\n\n", start)]


def test_every_exported_metric_is_in_the_readme_table():
    table = _table()
    named = set(re.findall(r"`(cfgcore_[a-z_]+)`", table))
    # `cfgcore_flag_store_connected`, `..._serving_cache`: the row's prefix, abbreviated
    for row in table.splitlines():
        first = re.search(r"`(cfgcore_[a-z]+_[a-z]+)_[a-z_]+`", row)
        if first is not None:
            named |= {first.group(1) + suffix for suffix in re.findall(r"`\.\.\.(_[a-z_]+)`", row)}
    exported = set(cfgcore.metrics.snapshot()["metrics"])
    assert exported - named == set()
    assert named - exported == set()  # and every name there is exported
