"""Ninth audit, files: inputs that are there but cannot be read, or not parsed.

* A profile file that cannot be read (a FIFO, a directory, a link to ``/dev/zero`` or a
  link in a loop) appearing in ``profiles/`` while a profile is chosen was skipped by
  the reload: the inputs' digests left unreadable files out, so the reload found
  "nothing changed" and said nothing (``reload()`` True, no error, health ready), while
  a start with the same directory is refused naming the file, and so was the next
  reload of an unrelated edit. It is now judged when it appears, as a start judges it:
  refused naming the file, the last good version serving, and the watcher carrying on.
* A flags or ``.env`` file that is a link in a loop of links (``flags.yaml ->
  flags.yaml``) was refused as "a link to flags.yaml, which does not exist": the
  link's target is there; the loop is what cannot be read.
* A JSON or TOML file nested past what its parser recurses through was refused naming
  the file only; it is refused with the key path and line of a shallower one.
* A profile directory that cannot be listed made reload() raise a PermissionError.
* A key in a TOML array of tables' later element was said to be on the first's line.
* An environment file named with other case than its environment was offered as a
  name to load, which the refusal then refused again.

Real files, and the real watcher.
"""

from __future__ import annotations

import os

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from tests.waiting import wait_for

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs and links")

FLAGS = "flags:\n  f:\n    default: 'on'\n"


def _fifo(p):
    os.mkfifo(p)


def _directory(p):
    os.mkdir(p)


def _device(p):
    os.symlink("/dev/zero", p)


def _loop(p):
    os.symlink(os.path.basename(p), p)


UNREADABLE = {"fifo": _fifo, "directory": _directory, "/dev/zero": _device, "loop": _loop}


@pytest.fixture
def profiled(tmp_path):
    config = tmp_path / "config"
    (config / "profiles").mkdir(parents=True)
    (config / "base.yaml").write_text("app:\n  name: svc\n  port: 1\n")
    (config / "production.yaml").write_text("{}\n")
    (config / "profiles" / "edge.yaml").write_text(
        "name: edge\nkind: deployment\noverrides:\n  app:\n    name: from-edge\n"
    )
    m = ConfigurationManager(
        str(config), environ={"CONFIG_PROFILE": "edge"}, validate=False, record_usage=False
    )
    m.load_environment_config("production")
    assert m.get("app.name") == "from-edge"
    yield config, m
    m.close()


@pytest.mark.parametrize("kind", sorted(UNREADABLE))
def test_an_unreadable_profile_file_appearing_is_refused_by_the_reload(profiled, kind):
    config, m = profiled
    bad = config / "profiles" / "other.yaml"
    UNREADABLE[kind](str(bad))
    fresh = ConfigurationManager(
        str(config), environ={"CONFIG_PROFILE": "edge"}, validate=False, record_usage=False
    )
    with pytest.raises(Exception, match="other.yaml"):  # a start refuses this directory
        fresh.load_environment_config("production")

    assert m.reload() is False  # ... and so does the reload, when the file appears
    assert m.get("app.name") == "from-edge"  # the last good version keeps serving
    (problem,) = m.last_error.problems
    assert problem.file == str(bad)
    assert problem.message.startswith("cannot read")
    assert m.version == 1


@pytest.mark.parametrize("kind", ["fifo", "loop"])
def test_the_watcher_reports_it_and_takes_the_fix(profiled, kind):
    config, m = profiled
    m.enable_hot_reload(poll_interval=0.05)
    bad = config / "profiles" / "other.yaml"
    UNREADABLE[kind](str(bad))
    assert wait_for(lambda: m.last_error is not None), "the unreadable profile went unnoticed"
    assert m.last_error.problems[0].file == str(bad)
    assert m.get("app.name") == "from-edge" and m.get("app.port") == 1

    bad.unlink()
    bad.write_text("name: other\nkind: deployment\noverrides: {}\n")
    (config / "production.yaml").write_text("app:\n  port: 2\n")
    assert wait_for(lambda: m.get("app.port") == 2), "the watcher stopped taking changes"
    assert m.last_error is None and m.get("app.name") == "from-edge"


def test_an_unreadable_file_is_no_change_when_no_profile_is_chosen(tmp_path):
    config = tmp_path / "config"
    (config / "profiles").mkdir(parents=True)
    (config / "base.yaml").write_text("app:\n  name: svc\n")
    (config / "production.yaml").write_text("{}\n")
    m = ConfigurationManager(str(config), environ={}, validate=False, record_usage=False)
    m.load_environment_config("production")
    os.mkfifo(config / "profiles" / "other.yaml")
    (config / "profiles" / "README.md").write_text("notes\n")  # not a profile file
    assert m.reload() is True  # no profile read: a start with it loads as well
    assert m.last_error is None and m.get("app.name") == "svc"
    fresh = ConfigurationManager(str(config), environ={}, validate=False, record_usage=False)
    fresh.load_environment_config("production")


@pytest.mark.parametrize("name", ["flags.yaml", ".env"])
def test_a_link_in_a_loop_is_named_as_one(tmp_path, monkeypatch, name):
    monkeypatch.delenv("CFGCORE_ENV_FILE", raising=False)
    monkeypatch.delenv("H", raising=False)
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text("app:\n  host: ${H:-localhost}\n")
    (config / "production.yaml").write_text("{}\n")
    (config / "flags.yaml").write_text(FLAGS)
    env_file = tmp_path / ".env"
    env_file.write_text("H=db.internal\n")
    os.chmod(env_file, 0o600)
    m = ConfigurationManager(str(config), validate=False, record_usage=False)
    m.load_environment_config("production")
    assert m.get("app.host") == "db.internal"
    looped = config / name if name == "flags.yaml" else env_file
    looped.unlink()
    _loop(str(looped))

    assert m.reload() is False
    assert m.get("app.host") == "db.internal"
    (problem,) = m.last_error.problems
    assert problem.file == str(looped)
    assert "which does not exist" not in problem.message
    assert "loop" in problem.message
    m.close()


# A JSON or TOML file nested past what its parser recurses through (about 1,000
# brackets for JSON, fewer for TOML) was refused naming the file only, while one nested
# 101 levels, and a YAML file nested 5,000, are refused with the key path and line.
DEEP_TEXTS = {
    "json": lambda d: '{"app": {"name": "x",\n "list": [1, ' + "[" * d + "]" * d + "]}}",
    "toml": lambda d: (
        '# [not] a table ]]\n[app]\nname = "a]["\n[[app.items]]\nx = 1\n'
        "[app.deep]\nlist = [ # ]]\n  1,\n  " + "[" * d + "]" * d + "\n]\n"
    ),
}
DEEP_PLACES = {"json": ("app.list.1.0.0.0.…", 2), "toml": ("app.deep.list.1.0.0.…", 7)}


@pytest.mark.parametrize("depth", [150, 1200, 20_000])
@pytest.mark.parametrize("fmt", sorted(DEEP_TEXTS))
def test_a_file_nested_past_the_parser_is_refused_with_key_path_and_line(tmp_path, fmt, depth):
    config = tmp_path / "config"
    config.mkdir()
    (config / "base.yaml").write_text("app:\n  name: svc\n")
    env_file = config / f"production.{fmt}"
    env_file.write_text('{"app": {}}' if fmt == "json" else "[app]\n")
    m = ConfigurationManager(str(config), environ={}, validate=False, record_usage=False)
    m.load_environment_config("production")
    env_file.write_text(DEEP_TEXTS[fmt](depth))

    assert m.reload() is False
    assert m.get("app.name") == "svc"
    (problem,) = m.last_error.problems
    assert (problem.file, problem.message) == (str(env_file), "nested more than 100 levels deep")
    assert (problem.path, problem.line) == DEEP_PLACES[fmt]


@pytest.mark.parametrize("depth", [150, 20_000])
def test_a_legacy_json_file_nested_past_the_parser_names_the_key_path(tmp_path, depth):
    from cfgcore.config.legacy_formats import read_legacy

    legacy = tmp_path / "old.json"
    legacy.write_text('{"app": {"name": "[{", "list": ' + "[" * depth + "]" * depth + "}}")
    with pytest.raises(ConfigError) as info:
        read_legacy(str(legacy))
    (problem,) = info.value.problems
    assert (problem.file, problem.path) == (str(legacy), "app.list.0.0.0.0.…")
    assert problem.message == "nested more than 100 levels deep"


# An environment file whose name differs from the environment's only by case
# (Staging.yaml, staging.YAML) is never read: the environment name is read in lower
# case and the file system tells the names apart. It was listed among the available
# environments, and the refusal asked "did you mean 'Staging'?", which the same refusal
# answered. Only names a load finds are listed; the file is named with the fix.
@pytest.mark.parametrize("name", ["Staging.yaml", "staging.YAML", "STAGING.Json"])
def test_a_miscased_environment_file_is_named_with_the_fix(tmp_path, name):

    (tmp_path / "base.yaml").write_text("a: 1\n")
    (tmp_path / name).write_text('{"a": 2}\n')  # (YAML reads JSON)
    (tmp_path / "qa.yaml").write_text("{}\n")
    (tmp_path / "prod\nERROR forged.yaml").write_text("{}\n")
    (tmp_path / "staging\n.yaml").write_text("{}\n")
    m = ConfigurationManager(str(tmp_path), environ={}, validate=False, record_usage=False)
    assert m.available_environments() == ["qa"]  # the names a load takes
    for asked in ("staging", "Staging"):
        with pytest.raises(ConfigError) as info:
            m.load_environment_config(asked)
        message = info.value.problems[0].message
        assert "did you mean" not in message
        fixed = "staging" + os.path.splitext(name)[1].lower()
        assert f"{name} is there, but environment files are named in lower case" in message
        assert message.endswith(f"rename it {fixed})")
    os.rename(tmp_path / name, tmp_path / fixed)
    m.load_environment_config("Staging")
    assert m.get("a") == 2


@pytest.mark.parametrize("name", ["Base.yaml", "base.YAML"])
def test_a_miscased_base_file_is_refused_not_dropped(tmp_path, name):
    # base.yaml is optional, but Base.yaml is no missing layer: it is most of the
    # configuration, which a load on a case-sensitive file system never read.
    (tmp_path / name).write_text("a: 1\nb: 1\n")
    (tmp_path / "staging.yaml").write_text("b: 2\n")
    m = ConfigurationManager(str(tmp_path), environ={}, validate=False, record_usage=False)
    try:
        with pytest.raises(ConfigError) as info:
            m.load_environment_config("staging")
        message = info.value.problems[0].message
        assert name in message and message.endswith("rename it base.yaml")
        os.rename(tmp_path / name, tmp_path / "base.yaml")
        m.load_environment_config("staging")
        assert (m.get("a"), m.get("b")) == (1, 2)
    finally:
        m.close()


def _unlistable(monkeypatch, directory, error):
    real = os.listdir

    def listdir(path="."):
        if os.fspath(path) == str(directory):
            raise error
        return real(path)

    monkeypatch.setattr(os, "listdir", listdir)


# A profile directory the process may not list (its read permission lost, mode 0o311)
# while a profile is chosen: the PermissionError os.listdir raised came out of reload()
# itself (the manager lets a PermissionError, the access policy's refusal, through),
# instead of a refusal naming the directory with the last good version serving; the
# watcher logged a traceback at every poll and reported nothing. As root (which reads
# any directory) the OS error is made by hand.
def test_a_profile_directory_that_cannot_be_listed_is_a_refusal_not_a_raise(profiled, monkeypatch):
    import errno

    config, m = profiled
    profiles = config / "profiles"
    (config / "production.yaml").write_text("app:\n  port: 2\n")
    _unlistable(monkeypatch, profiles, PermissionError(errno.EACCES, "Permission denied"))
    assert m.reload() is False
    assert m.get("app.name") == "from-edge" and m.get("app.port") == 1
    (problem,) = m.last_error.problems
    assert problem.file == str(profiles)
    assert problem.message.startswith("cannot list the profile files: Permission denied")
    monkeypatch.undo()
    assert m.reload() is True
    assert m.get("app.port") == 2 and m.last_error is None


@pytest.mark.skipif(os.geteuid() == 0, reason="root lists any directory")
def test_a_profile_directory_without_read_permission_is_refused(profiled):
    config, m = profiled
    profiles = config / "profiles"
    (config / "production.yaml").write_text("app:\n  port: 2\n")
    profiles.chmod(0o311)
    try:
        assert m.reload() is False
        assert m.last_error.problems[0].file == str(profiles)
    finally:
        profiles.chmod(0o755)
    assert m.reload() is True and m.get("app.port") == 2


def test_a_profile_directory_gone_while_listed_is_a_missing_one(profiled, monkeypatch):
    config, m = profiled
    (config / "production.yaml").write_text("app:\n  port: 2\n")
    _unlistable(monkeypatch, config / "profiles", FileNotFoundError(2, "No such file"))
    assert m.reload() is False  # (as for a directory removed: edge is unknown now)
    assert "unknown deployment profile 'edge'" in m.last_error.problems[0].message
    assert m.get("app.name") == "from-edge" and m.get("app.port") == 1


# A TOML array of tables: every element's keys were indexed under the array's first
# header (the index knew tables, not elements), so a problem at servers.1.port was
# reported on the line of the first [[servers]], and explain() pointed there too.
SERVERS = (
    '[app]\nname = "x"\n\n'
    '[[servers]]\nname = "a"\nport = 1\n\n'
    '[[servers]]\nname = "b"\nport = 2\n\n'
    '[[servers.routes]]\npath = "/b"\n\n'
    "[servers.meta]\nk = 1\n\n"
    '[[servers]]\nname = "c"\n\n'
    '[[servers.routes]]\npath = "/c"\n'
)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("servers.0.port", 6),
        ("servers.1.port", 10),
        ("servers.1.routes.0.path", 13),
        ("servers.1.meta.k", 16),
        ("servers.2.name", 19),
        ("servers.2.routes.0.path", 22),
    ],
)
def test_a_key_of_an_array_of_tables_is_found_in_its_element(tmp_path, path, line):

    (tmp_path / "base.yaml").write_text("app:\n  name: svc\n")
    toml = tmp_path / "production.toml"
    toml.write_text(SERVERS)
    m = ConfigurationManager(str(tmp_path), environ={}, validate=False, record_usage=False)
    m.load_environment_config("production")
    (origin,) = m.explain(path).chain
    assert (origin.file, origin.line) == (str(toml), line)

    # and a refusal there names that line
    lines = SERVERS.split("\n")
    key = path.rsplit(".", 1)[1]
    assert lines[line - 1].startswith(f"{key} = ")
    lines[line - 1] = f"{key} = 99999999999999999999"
    toml.write_text("\n".join(lines))
    with pytest.raises(ConfigError) as info:
        m.load_environment_config("production")
    (problem,) = info.value.problems
    assert (problem.path, problem.line) == (path, line)


def test_a_long_file_nested_past_the_parser_is_refused_naming_the_file_without_a_scan(
    tmp_path, monkeypatch
):
    # Placing the refusal scans the text (about 0.35 s a MB): past _DEEP_SCAN_CHARS the
    # file is refused at once, naming the file, without the key path.
    from cfgcore.config import files

    monkeypatch.setattr(files, "_DEEP_SCAN_CHARS", 5_000)
    scanned = []
    real = files._cut_deep
    monkeypatch.setattr(files, "_cut_deep", lambda *a: scanned.append(1) or real(*a))
    path = str(tmp_path / "deep.json")
    for n, placed in ((3_000, False), (1_500, True)):  # past the parser's recursion both
        text = '{"a": ' + "[" * n + "]" * n + "}"
        with pytest.raises(ConfigError) as info:
            files.parse_layer_text(text, "json", path)
        assert scanned == ([1] if placed else [])
        assert path in str(info.value)
        assert "nested more than" in str(info.value)
        assert ("a.0.0.0" in str(info.value)) is placed
