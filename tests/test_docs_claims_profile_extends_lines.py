"""A custom profile that ``extends`` another: errors and ``explain`` name the file and
line that write the key.

docs/configuration.md: "Every error in a file names the file, the key path and the
line", and ``explain(key)`` "names the layer that won (file and line)". A profile that
extended another was one layer holding both profiles' overrides under the extending
file's name, so a key only the extended profile sets was traced to the extending file,
at the line of the nearest part of its path that file writes (often a line that does
not hold the key at all): a validation error, a ``${VAR}`` that does not resolve and
``explain`` all sent the reader to the wrong file.
"""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError

BASE = """\
kind: deployment
overrides:
  db: {port: 2}
  app:
    debug: {debug}
"""
PEAK = """\
kind: deployment
extends: base2
overrides: {db: {port: 1}}
"""


def _dir(tmp_path, debug="true", peak=PEAK):
    (tmp_path / "base.yaml").write_text("app: {name: x}\ndb: {host: h, port: 5432}\n")
    (tmp_path / "development.yaml").write_text("{}\n")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "base2.yaml").write_text(BASE.replace("{debug}", debug))
    (tmp_path / "profiles" / "peak.yaml").write_text(peak)
    return tmp_path


def _manager(d, profile="peak"):
    return ConfigurationManager(d, environment="development", profile=profile, environ={})


def test_explain_names_the_extended_profiles_file_for_a_key_only_it_sets(tmp_path):
    d = _dir(tmp_path)
    m = _manager(d)
    m.load_environment_config()
    inherited = m.explain("app.debug").winner
    assert (inherited.file, inherited.line) == (str(d / "profiles" / "base2.yaml"), 5)
    own = m.explain("db.port").winner  # the extending profile's own key: its own file
    assert (own.file, own.line, own.value) == (str(d / "profiles" / "peak.yaml"), 3, 1)


def test_a_validation_error_in_the_extended_profile_names_its_file_and_line(tmp_path):
    d = _dir(tmp_path, debug="notabool")
    with pytest.raises(ConfigError) as info:
        _manager(d).load_environment_config()
    [problem] = [p for p in info.value.problems if p.path == "app.debug"]
    assert (problem.file, problem.line) == (str(d / "profiles" / "base2.yaml"), 5)


def test_an_unresolved_reference_in_the_extended_profile_names_its_file(tmp_path):
    d = _dir(tmp_path, debug="${CFGCORE_TEST_NOT_SET}")
    with pytest.raises(ConfigError) as info:
        _manager(d).load_environment_config()
    [problem] = info.value.problems
    assert (problem.file, problem.line) == (str(d / "profiles" / "base2.yaml"), 5)
    assert "CFGCORE_TEST_NOT_SET" in problem.message


def test_a_key_from_an_extended_built_in_is_named_as_that_profiles(tmp_path):
    peak = "kind: deployment\nextends: high_volume\noverrides: {db: {port: 1}}\n"
    d = _dir(tmp_path, peak=peak)
    m = _manager(d)
    m.load_environment_config()
    inherited = m.explain("performance.worker_threads").winner
    assert (inherited.layer, inherited.file, inherited.value) == ("high_volume", None, 32)
    assert inherited.where() == "<high_volume>"
    assert m.explain("db.port").winner.where() == f"{d / 'profiles' / 'peak.yaml'}:3"
