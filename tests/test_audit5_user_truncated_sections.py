"""A layer that leaves a section's key empty (``recommender:`` with nothing under it)
where the layers below hold that section: the merge replaced the whole section with
null and validation passed, since null means "unset". That is exactly what a file
saved half-way looks like when the cut falls right after a section's key (and what a
section whose keys are all commented out looks like), so it is refused, naming the
file, line and key path, and the last good configuration stays live. ``__delete__``
still removes a section on purpose, and ``{}`` still keeps it."""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError

BASE = """\
app:
  name: demo
recommender:
  workers: 4
  cache:
    size: 10
"""

DEV = """\
environment: development
app:
  name: demo-dev
recommender:
  workers: 2
"""


def _write(d, name, text):
    (d / name).write_text(text)


@pytest.fixture
def confdir(tmp_path):
    d = tmp_path / "config"
    d.mkdir()
    _write(d, "base.yaml", BASE)
    _write(d, "development.yaml", DEV)
    return d


def _manager(d):
    return ConfigurationManager(str(d), environ={}, record_usage=False)


def test_a_development_file_cut_after_a_section_key_is_refused(confdir):
    # The first 44 bytes of DEV: the cut falls right after "recommender:".
    cut = DEV[: DEV.index("recommender:") + len("recommender:")] + "\n"
    _write(confdir, "development.yaml", cut)
    m = _manager(confdir)
    try:
        with pytest.raises(ConfigError) as info:
            m.load_environment_config("development")
        text = str(info.value)
        assert str(confdir / "development.yaml") + ":4: recommender:" in text
        assert "__delete__" in text
    finally:
        m.close()


def test_a_nested_section_left_empty_is_refused_with_its_path(confdir):
    _write(confdir, "development.yaml", "recommender:\n  workers: 2\n  cache:\n")
    m = _manager(confdir)
    try:
        with pytest.raises(ConfigError) as info:
            m.load_environment_config("development")
        assert ":3: recommender.cache:" in str(info.value)
    finally:
        m.close()


def test_a_reload_of_a_cut_file_keeps_the_last_good_configuration(confdir):
    m = _manager(confdir)
    try:
        m.load_environment_config("development")
        assert m.get("recommender.workers") == 2
        _write(confdir, "development.yaml", "environment: development\nrecommender:\n")
        assert m.reload() is False
        assert "recommender" in str(m.last_error)
        assert m.get("recommender.workers") == 2
        assert m.get("recommender.cache.size") == 10
    finally:
        m.close()


@pytest.mark.parametrize(
    ("overlay", "expected"),
    [
        ("recommender: __delete__\n", None),
        ("recommender: {}\n", {"workers": 4, "cache": {"size": 10}}),
        ("recommender:\n  workers: 2\n", {"workers": 2, "cache": {"size": 10}}),
    ],
)
def test_deleting_or_keeping_a_section_on_purpose_still_loads(confdir, overlay, expected):
    _write(confdir, "development.yaml", overlay)
    m = _manager(confdir)
    try:
        m.load_environment_config("development")
        got = m.get("recommender", None)
        assert (None if got is None else dict(_plain(got))) == expected
    finally:
        m.close()


def test_an_empty_key_over_a_scalar_or_a_new_key_still_means_unset(confdir):
    _write(confdir, "development.yaml", "app:\n  name:\nextra:\n")
    m = _manager(confdir)
    try:
        m.load_environment_config("development")
        assert m.get("app.name", "absent") is None
        assert m.get("recommender.workers") == 4
    finally:
        m.close()


def _plain(value):
    if hasattr(value, "items"):
        return {k: _plain(v) for k, v in value.items()}
    return value


def test_validate_of_files_refuses_it_as_loading_does(tmp_path, capsys):
    from cfgcore.cli import main

    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(BASE)
    b.write_text("app:\n  name: x\nrecommender:\n")
    assert main(["validate", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert f"{b}:3: recommender: empty" in out
    assert "[config.incomplete]" in out


def test_validate_of_a_directory_refuses_it_naming_the_line(confdir, capsys):
    from cfgcore.cli import main

    _write(confdir, "development.yaml", "environment: development\nrecommender:\n")
    assert main(["validate", "--config-dir", str(confdir), "-e", "development"]) == 1
    err = capsys.readouterr().err
    assert f"{confdir / 'development.yaml'}:2: recommender: empty" in err
