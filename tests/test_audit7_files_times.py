"""Round 7: a TOML local time in a configuration, shown as YAML.

A TOML file may hold a local time (``start = 09:00:00``) and cfgcore serves it as a
``datetime.time`` (``config.files.tree_problem`` accepts dates and times). YAML has no
time type and PyYAML's dumper refused it, so ``cfgcore show`` (YAML by default) of
such a configuration ended in "internal error: RepresenterError" while
``show --format json`` printed ``"09:00:00"``. The YAML output now writes the same
ISO 8601 text, quoted where a reader would take it for a number.
"""

from __future__ import annotations

import datetime

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.yamlio import dump_yaml, load_yaml
from tests.conftest import run_cli
from tests.fuzz import examples


def test_cfgcore_show_prints_a_toml_local_time_as_yaml(tmp_path, capsys):
    (tmp_path / "base.toml").write_text(
        "[maintenance]\nstart = 10:00:00\nend = 09:30:00.5\nday = 2024-05-01\n"
    )
    (tmp_path / "development.yaml").write_text("{}\n")
    code, out, err = run_cli(capsys, "show", "--config-dir", str(tmp_path), "-e", "development")
    assert code == 0, err
    assert "internal error" not in err
    shown = load_yaml(out)
    assert shown["maintenance"] == {
        "start": "10:00:00",
        "end": "09:30:00.500000",
        "day": datetime.date(2024, 5, 1),
    }
    code, out, err = run_cli(
        capsys, "show", "maintenance.start", "--config-dir", str(tmp_path), "-e", "development"
    )
    assert code == 0, err
    assert load_yaml(out) == "10:00:00"


@settings(max_examples=examples(100), deadline=None)
@given(st.times(timezones=st.none() | st.just(datetime.timezone.utc)))
def test_a_time_dumps_as_its_iso_text_for_yaml_1_2_and_1_1_readers(t):
    text = dump_yaml({"t": t})
    assert load_yaml(text) == {"t": t.isoformat()}
    assert yaml.safe_load(text) == {"t": t.isoformat()}  # a YAML 1.1 reader: not base 60
