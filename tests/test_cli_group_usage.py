"""A command group run without its subcommand is a usage error: its help on stderr,
exit status 2, nothing on stdout (``secrets`` and ``audit`` printed to stdout, so a
script capturing the output took the help text for a result)."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize("group", ["secrets", "audit", "experiment", "flags"])
def test_a_group_without_subcommand_prints_its_usage_on_stderr(group, capsys):
    code, out, err = run_cli(capsys, group)
    assert (code, out) == (2, "")
    assert err.startswith(f"usage: cfgcore {group}") and "SUBCOMMAND" in err
