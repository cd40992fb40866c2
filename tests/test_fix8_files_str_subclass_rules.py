"""Fix 8 (a neighbour of the str-subclass fix): validation's URL rules see str subclasses.

The validation walk handed only exact ``str`` values to the URL rules: a subclass of
``str`` (a ``StrEnum`` member, a library's string type) given to ``update_config`` or
``set_active_config`` holding ``postgres://admin:hunter2@db/app`` skipped
``security.url_credentials`` (critical), which the same text as a ``str`` fails. Any
``str`` is now checked as the text it holds.
"""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.validation_engine import validate_configuration

URL = "postgres://admin:hunter2@db.example.com/app"


class Text(str):
    pass


def _flagged(config):
    report = validate_configuration(config, env="production")
    return sorted((r.rule_id, r.key_path) for r in report.results if not r.is_valid)


def test_a_str_subclass_url_gets_the_findings_of_its_text():
    for shape in (lambda v: {"database": {"url": v}}, lambda v: {"database": {"urls": [v]}}):
        want = _flagged(shape(URL))
        assert ("security.url_credentials", want[0][1]) in want
        assert _flagged(shape(Text(URL))) == want


def test_a_str_subclass_reference_is_judged_as_a_reference():
    config = {"server": {"port": "${PORT}"}}
    assert _flagged({"server": {"port": Text("${PORT}")}}) == _flagged(config)


@pytest.fixture
def manager(tmp_path):
    (tmp_path / "base.yaml").write_text("database:\n  url: postgres://db.example.com/app\n")
    (tmp_path / "production.yaml").write_text("{}\n")
    m = ConfigurationManager(tmp_path, environment="production", environ={})
    m.disable_audit()
    m.load_environment_config()
    return m


def test_the_manager_refuses_it_like_the_text(manager):
    assert manager.update_config("database.url", Text(URL)) is False
    assert "database.url" in str(manager.last_error)
    assert "embeds a literal password" in str(manager.last_error)
    assert "hunter2" not in str(manager.last_error)
    with pytest.raises(ConfigError):
        manager.set_active_config({"database": {"url": Text(URL)}})
    assert manager.get("database.url") == "postgres://db.example.com/app"
