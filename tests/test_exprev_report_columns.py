"""The text report's columns stay apart whatever the numbers. Each cell was padded to
a fixed width and nothing more, so a value as wide as its column ran into the next:
a mean of -0.001235 printed ``-0.001235[-0.002768, 0.0002989]``, and one near 1e99
``3.333e+98[-2.535e+99, 3.202e+99]``, which read as one number. Every cell now
has at least one space before it (the usual widths are unchanged)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.dynamic_config import ABTestConfiguration, DynamicConfigurationManager
from tests.fuzz import examples

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
NUMBER = r"[-+]?(?:\d+(?:\.\d*)?(?:e[-+]\d+)?|inf)"
ROW = re.compile(
    rf"^(?P<variant>\S+) +(?P<n>\d+) +(?P<value>{NUMBER}) +(?P<ci>\[{NUMBER}, {NUMBER}\]|-)"
    rf"(?: +(?P<diff>{NUMBER}) +(?P<dci>\[{NUMBER}, {NUMBER}\]|-) +(?P<p>{NUMBER}|-))? *$"
)


def _report(values_control, values_b):
    m = DynamicConfigurationManager(persist=False, clock=lambda: NOW.timestamp())
    try:
        assert m.create_ab_test(ABTestConfiguration(
            "t", "", NOW - timedelta(days=1), NOW + timedelta(days=9),
            {"control": 50.0, "b": 50.0}, {"control": {}, "b": {}}, ["m"],
            metric_types={"m": "continuous"},
        )), m.last_error  # fmt: skip
        pools = {"control": list(values_control), "b": list(values_b)}
        i = 0
        while any(pools.values()):
            user = f"u{i}"
            i += 1
            variant = m.get_ab_test_variant("t", {"user_id": user})
            if pools[variant]:
                assert m.record_metric("t", "m", pools[variant].pop(), user_id=user)
        m.metrics.flush()
        return m.analyze("t"), m.analyze("t").to_text()
    finally:
        m.close()


@settings(max_examples=examples(15), deadline=None)
@given(
    scale=st.integers(min_value=-8, max_value=98),
    sign=st.sampled_from([-1.0, 1.0]),
    spread=st.floats(min_value=0.001, max_value=0.5),
)
def test_every_row_reads_back_as_its_columns(scale, sign, spread):
    base = sign * 1.234567 * 10.0**scale
    control = [base * (1 + spread * k) for k in (-1, 0, 1)]
    treated = [base * (1 + spread * k) * 1.01 for k in (-1, 0, 1, 2)]
    report, text = _report(control, treated)
    rows = {r.variant: r for r in report.results}
    found = {}
    for line in text.splitlines():
        if line.startswith(("control ", "b ")) and "%" not in line and line.split()[1] != "50":
            match = ROW.match(line)
            assert match, line
            found[match["variant"]] = match
    assert set(found) == {"control", "b"}, text
    for variant, match in found.items():
        assert int(match["n"]) == rows[variant].n
        assert float(match["value"]) == float(format(rows[variant].value, ".4g"))
    assert float(found["b"]["diff"]) == float(format(rows["b"].difference, "+.4g"))
