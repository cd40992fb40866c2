"""``cfgcore alerts export`` over alerts whose other fields have the wrong shape. The
export does not validate the whole configuration (only the alerts matter to it), so
the schema's checks of ``notification``, ``severity`` and ``description`` never ran:
``notification: team@example.com`` was written as ``t, e, a, m, @, ...`` (exit 0), and
``notification: 5`` failed with ``internal error: TypeError``."""

from __future__ import annotations

import pytest
import yaml

from cfgcore.cli import main
from tests.conftest import copy_bundled_config

LINE = '    notification: ["team-alerts@company.com"]'


@pytest.fixture
def config_dir(tmp_path):
    return copy_bundled_config(tmp_path / "config")


def _replace(config_dir, new: str) -> None:
    path = config_dir / "base.yaml"
    text = path.read_text()
    assert LINE in text
    path.write_text(text.replace(LINE, new, 1))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("    notification: team-alerts@company.com",
         "alerts.0.notification: expected a list of addresses, got string "
         "'team-alerts@company.com' (write ['team-alerts@company.com'])"),
        ("    notification: 5",
         "alerts.0.notification: expected a list of addresses, got integer 5\n"),
        ('    notification: [5, "a@example.com"]',
         "alerts.0.notification.0: expected a string, got integer 5"),
        ('    notification: ["a@example.com"]\n    description: {text: x}',
         "alerts.0.description: expected a string, got a mapping"),
    ],
)  # fmt: skip
def test_export_refuses_a_field_it_cannot_write_naming_file_line_and_key(
    config_dir, tmp_path, capsys, line, message
):
    _replace(config_dir, line)
    out = tmp_path / "rules.yml"
    code = main(["alerts", "export", "--config-dir", str(config_dir), "-e", "staging",
                 "--out", str(out)])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "base.yaml:" in err and message in err
    assert "internal error" not in err
    assert not out.exists()


def test_a_list_of_addresses_is_exported_as_before(config_dir, capsys):
    assert main(["alerts", "export", "--config-dir", str(config_dir), "-e", "staging"]) == 0
    rules = yaml.safe_load(capsys.readouterr().out)["groups"][0]["rules"]
    assert rules[0]["annotations"]["notification"] == "team-alerts@company.com"


def test_validate_reports_the_field_once(config_dir, capsys):
    # The schema reports it when the whole configuration is validated: the alerts rule
    # does not report it a second time.
    _replace(config_dir, "    notification: team-alerts@company.com")
    assert main(["validate", "--config-dir", str(config_dir), "-e", "staging"]) == 1
    out = capsys.readouterr()
    assert (out.out + out.err).count("error: alerts.0.notification") == 1
