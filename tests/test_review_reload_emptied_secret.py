"""A ``${file:...}`` secret file caught empty mid-rewrite never goes live.

A secret rewritten in place (``open(path, "w")`` truncates before it writes, as ``echo
new > file`` and most rotation scripts do) is empty for a moment. An explicit
``reload()`` does not wait for writes to settle, and a watcher can be woken by the
truncation itself, so either could read that moment and serve an empty password.
Configuration files already refuse it (a file that held something and is now empty is
"a write in progress?"); secret files follow the same rule: a secret the live version
read non-empty that reads empty now is refused on reload, naming the file and key
path, the last good value serving. A secret that was empty from the start stays
accepted, and ``load_environment_config`` (the deliberate way, as for configuration
files) makes an emptied one live.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.atomicio import atomic_write_text
from tests.fuzz import examples
from tests.waiting import wait_for

WATCHER_ONLY = 3600.0  # poll_interval: the periodic poll never runs during a test


def _manager(root, secret, *, text: str) -> ConfigurationManager:
    secret.parent.mkdir(exist_ok=True)
    secret.write_text(text)
    config = root / "config"
    config.mkdir(exist_ok=True)
    (config / "staging.yaml").write_text(f"db:\n  password: '${{file:{secret}}}'\n")
    m = ConfigurationManager(
        config, environ={"CFGCORE_SECRET_DIRS": str(secret.parent)}, validate=False
    )
    m.load_environment_config("staging")
    return m


def _truncate(path) -> None:
    """The moment of an in-place rewrite between the truncation and the first write."""
    with open(path, "w"):
        pass


def test_an_explicit_reload_refuses_a_secret_file_caught_empty(tmp_path):
    secret = tmp_path / "secrets" / "db_password"
    m = _manager(tmp_path, secret, text="first-password\n")
    try:
        _truncate(secret)
        assert not m.reload()
        error = str(m.last_error)
        assert str(secret) in error and "db.password" in error and "empty" in error
        assert m.get("db.password") == "first-password"
        secret.write_text("second-password\n")  # the rewrite completes
        assert m.reload()
        assert m.get("db.password") == "second-password"
        assert m.last_error is None
    finally:
        m.close()


def test_a_newline_only_rewrite_counts_as_empty(tmp_path):
    # The file's one trailing newline is not part of the secret (as at start), so a
    # file holding only it is the same empty secret.
    secret = tmp_path / "secrets" / "db_password"
    m = _manager(tmp_path, secret, text="first-password")
    try:
        secret.write_text("\n")
        assert not m.reload()
        assert m.get("db.password") == "first-password"
    finally:
        m.close()


def test_the_watcher_never_serves_a_truncated_secret(tmp_path):
    secret = tmp_path / "secrets" / "db_password"
    m = _manager(tmp_path, secret, text="first-password\n")
    errors: list = []
    seen: list = []
    m.register_change_listener(
        lambda e: errors.append(e) if e.kind == "error" else seen.append(m.get("db.password"))
    )
    try:
        m.enable_hot_reload(poll_interval=WATCHER_ONLY)
        _truncate(secret)  # and it stays empty: the writer stalled
        assert wait_for(lambda: errors)
        assert str(secret) in str(errors[0].error)
        assert m.get("db.password") == "first-password"
        secret.write_text("second-password\n")
        assert wait_for(lambda: m.get("db.password") == "second-password")
        assert "" not in seen  # no change event ever carried the empty value
    finally:
        m.close()


def test_a_secret_empty_from_the_start_loads_and_reloads(tmp_path):
    secret = tmp_path / "secrets" / "db_password"
    m = _manager(tmp_path, secret, text="")
    try:
        assert m.get("db.password") == ""
        assert m.reload()  # still empty: nothing refused
        atomic_write_text(secret, "now-set\n")
        assert m.reload()
        assert m.get("db.password") == "now-set"
    finally:
        m.close()


def test_load_environment_config_accepts_a_secret_emptied_on_purpose(tmp_path):
    secret = tmp_path / "secrets" / "db_password"
    m = _manager(tmp_path, secret, text="first-password\n")
    try:
        _truncate(secret)
        assert not m.reload()
        m.load_environment_config("staging")
        assert m.get("db.password") == ""
        assert m.reload()  # empty and live: nothing left to refuse
    finally:
        m.close()


# Any text a secret file may hold: no lone surrogates, and no NUL (cfgcore refuses a
# text file holding one, naming the file: see _encoding.py and test_text_encodings.py).
_TEXT_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


@settings(max_examples=examples(25), deadline=None)
@given(
    first=st.text(_TEXT_CHARS, min_size=1).filter(lambda t: t != "\n"),
    second=st.text(_TEXT_CHARS, min_size=1).filter(lambda t: t != "\n"),
)
def test_only_emptiness_is_refused(tmp_path_factory, first, second):
    root = tmp_path_factory.mktemp("secret")
    secret = root / "secrets" / "db_password"
    m = _manager(root, secret, text=first)
    want_first = first[:-1] if first.endswith("\n") else first
    want_second = second[:-1] if second.endswith("\n") else second
    try:
        assert m.get("db.password") == want_first
        with open(secret, "w", encoding="utf-8", newline="") as fh:
            fh.write("")
        assert not m.reload()
        assert m.get("db.password") == want_first
        with open(secret, "w", encoding="utf-8", newline="") as fh:
            fh.write(second)
        assert m.reload()
        assert m.get("db.password") == want_second
    finally:
        m.close()
