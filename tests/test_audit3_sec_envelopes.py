"""Round 3 (security): ``ENC[...]`` values bound to their key path.

An attacker who can edit a configuration file but holds no key could move an
encrypted ``db.admin_password`` into ``feature.banner_text`` (shown to users): the
unbound envelope decrypted wherever it was. Version-2 envelopes authenticate the key
path; old ones still load, are listed by ``cfgcore secrets check``, are bound by
``cfgcore secrets rotate --bind`` and refused under ``CFGCORE_SECRET_REQUIRE_BOUND``.

Real keys, real files, the real manager and flag store, the real CLI in-process.
"""

from __future__ import annotations

import os
import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.secrets import (
    Keyring,
    decrypt_value,
    encrypt_value,
    generate_key,
    is_bound,
)
from cfgcore.setup import main as setup_main
from tests.fuzz import examples

ADMIN_PW = "admin-Pw-71kq9"


@pytest.fixture
def ring(monkeypatch):
    key = generate_key("k1")
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", key)
    monkeypatch.delenv("CFGCORE_SECRET_KEY_FILE", raising=False)
    monkeypatch.delenv("CFGCORE_SECRET_REQUIRE_BOUND", raising=False)
    return Keyring([key])


@pytest.fixture
def cfg(tmp_path, monkeypatch, ring):
    d = tmp_path / "config"
    assert setup_main(["-e", "staging", "-o", str(d)]) == 0
    for var in list(os.environ):
        if (var.startswith("CFGCORE") and var != "CFGCORE_SECRET_KEYS") or var.startswith(
            "CONFIG_"
        ):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    return d


def _edit(cfg, change):
    path = cfg / "staging.yaml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("scheme", ["fernet", "aesgcm"])
def test_a_bound_value_moved_to_another_key_is_refused(cfg, ring, scheme):
    envelope = encrypt_value(ADMIN_PW, ring, scheme=scheme, path="db.admin_password")
    assert is_bound(envelope) and envelope.startswith(f"ENC[v2:{scheme}:")

    def place(doc):
        doc["db"] = {"admin_password": envelope}
        doc["feature"] = {"banner_text": "Welcome"}

    _edit(cfg, place)
    m = ConfigurationManager(str(cfg), environment="staging")
    try:
        assert m.get("db.admin_password") == ADMIN_PW  # where it was encrypted for: fine
        version = m.version

        def move(doc):  # the attacker copies the ciphertext into a displayed key
            doc["feature"]["banner_text"] = envelope

        _edit(cfg, move)
        assert m.reload() is False
        text = str(m.last_error)
        assert "staging.yaml" in text and "feature.banner_text" in text
        assert "not encrypted for key path 'feature.banner_text'" in text
        assert ADMIN_PW not in text
        # The last good configuration stays active.
        assert m.version == version and m.get("feature.banner_text") == "Welcome"
    finally:
        m.close()


def test_an_unbound_value_still_loads_unless_bound_values_are_required(cfg, ring, monkeypatch):
    old = encrypt_value(ADMIN_PW, ring)  # version 1, as every value written before
    assert not is_bound(old)
    _edit(cfg, lambda doc: doc.update(feature={"banner_text": old}))
    m = ConfigurationManager(str(cfg), environment="staging")
    try:
        assert m.get("feature.banner_text") == ADMIN_PW  # compatible: unbound still decrypts
    finally:
        m.close()
    monkeypatch.setenv("CFGCORE_SECRET_REQUIRE_BOUND", "1")
    m = ConfigurationManager(str(cfg), environment="staging")
    try:
        assert m.get("feature.banner_text") is None  # refused (the first get loads)
        text = str(m.last_error)
        assert "staging.yaml" in text and "feature.banner_text" in text and "unbound" in text
    finally:
        m.close()


def test_a_bound_flag_variant_payload_moved_to_another_flag_is_refused(
    tmp_path, ring, make, monkeypatch
):
    from cfgcore.runtime.flags import LiveFlags
    from cfgcore.runtime.flagstore import FileFlagStore

    at = "flags.gateway.variants.new.token_blob"
    envelope = encrypt_value("payload-Sk-1", ring, scheme="aesgcm", path=at)
    path = tmp_path / "flags.yaml"
    path.write_text(
        "version: 1\nflags:\n  gateway:\n    variants:\n"
        f"      new: {{endpoint: 'https://x', token_blob: '{envelope}'}}\n"
        "      old: {endpoint: 'https://y'}\n    default: new\n"
        "  banner:\n    variants:\n      on: {text: hello}\n    default: on\n"
    )
    live = LiveFlags(FileFlagStore(str(path)), engine=make({"version": 1, "flags": {}}))
    try:
        assert live.engine.evaluate("gateway", {"user_id": "u"}).value["token_blob"] == (
            "payload-Sk-1"
        )
    finally:
        live.close()
    moved = tmp_path / "moved.yaml"
    moved.write_text(path.read_text().replace("text: hello", f"text: '{envelope}'"))
    with pytest.raises(ConfigError, match=r"flags.banner.variants.on.text: .*not encrypted for"):
        LiveFlags(FileFlagStore(str(moved)), engine=make({"version": 1, "flags": {}}))
    # Unbound variant payloads are refused too when bound values are required.
    unbound = tmp_path / "unbound.yaml"
    unbound.write_text(path.read_text().replace(envelope, encrypt_value("payload-Sk-1", ring)))
    monkeypatch.setenv("CFGCORE_SECRET_REQUIRE_BOUND", "yes")
    with pytest.raises(ConfigError, match=r"flags.gateway.variants.new.token_blob: unbound"):
        LiveFlags(FileFlagStore(str(unbound)), engine=make({"version": 1, "flags": {}}))


def test_cli_encrypts_bound_values_and_decrypts_them_only_at_their_path(ring, capsys):
    code, out, err = _cli(capsys, "secrets", "encrypt", "--path", "db.admin_password", ADMIN_PW)
    assert code == 0 and out.startswith("ENC[v2:fernet:") and "unbound" not in err
    envelope = out.strip()
    assert decrypt_value(envelope, ring, path=("db", "admin_password")) == ADMIN_PW
    code, out, _ = _cli(capsys, "secrets", "decrypt", "--path", "db.admin_password", envelope)
    assert code == 0 and out == ADMIN_PW + "\n"
    code, out, err = _cli(capsys, "secrets", "decrypt", "--path", "feature.banner", envelope)
    assert code != 0 and ADMIN_PW not in out + err and "feature.banner" in out + err
    code, out, err = _cli(capsys, "secrets", "decrypt", envelope)
    assert code != 0 and "--path" in out + err
    # A key whose name holds a dot is given as a JSON list, and is not two keys.
    code, out, _ = _cli(capsys, "secrets", "encrypt", "--path", '["a.b", "c"]', ADMIN_PW)
    dotted = out.strip()
    assert decrypt_value(dotted, ring, path=("a.b", "c")) == ADMIN_PW
    with pytest.raises(ValueError, match="not encrypted for key path"):
        decrypt_value(dotted, ring, path=("a", "b", "c"))


def test_check_lists_unbound_values_and_rotate_bind_binds_them(cfg, ring, capsys, monkeypatch):
    unbound = encrypt_value(ADMIN_PW, ring, scheme="aesgcm")
    bound = encrypt_value("other-Pw-55", ring, path="db.reader_password")

    def place(doc):
        doc["db"] = {"admin_password": unbound, "reader_password": bound}
        doc["servers"] = [{"token": encrypt_value("tok-Pw-1", ring)}]

    _edit(cfg, place)
    code, out, _ = _cli(capsys, "secrets", "check", str(cfg))
    assert code == 1
    assert re.search(r"staging\.yaml:\d+: db\.admin_password: unbound", out)
    assert re.search(r"staging\.yaml:\d+: servers\.0\.token: unbound", out)
    assert "reader_password" not in out  # bound: nothing to report
    assert "1 bound value(s), 2 unbound value(s)" in out

    # A second key first: rotate --bind re-encrypts with it and binds the unbound ones.
    new = generate_key("k2")
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", f"{new},{ring.keys[0].encoded()}")
    code, out, _ = _cli(capsys, "secrets", "rotate", "--bind", str(cfg))
    assert code == 0 and "2 of them newly bound" in out
    code, out, _ = _cli(capsys, "secrets", "check", str(cfg))
    assert code == 0 and "3 bound value(s), 0 unbound value(s)" in out
    text = (cfg / "staging.yaml").read_text()
    assert "ENC[v2:aesgcm:k2:" in text and "ENC[v2:fernet:" in text  # schemes kept
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", new)  # the old key removed: everything loads
    m = ConfigurationManager(str(cfg), environment="staging")
    try:
        assert m.get("db.admin_password") == ADMIN_PW
        assert m.get("db.reader_password") == "other-Pw-55"
        assert m.get("servers")[0]["token"] == "tok-Pw-1"
    finally:
        m.close()


def test_rotate_refuses_a_bound_value_found_at_another_key(cfg, ring, capsys):
    envelope = encrypt_value(ADMIN_PW, ring, path="db.admin_password")
    _edit(cfg, lambda doc: doc.update(feature={"banner_text": envelope}))
    before = (cfg / "staging.yaml").read_bytes()
    code, out, err = _cli(capsys, "secrets", "rotate", str(cfg))
    assert code != 0 and "feature.banner_text" in out + err and ADMIN_PW not in out + err
    assert (cfg / "staging.yaml").read_bytes() == before  # nothing written
    code, out, _ = _cli(capsys, "secrets", "check", str(cfg))
    assert code == 1 and "feature.banner_text: this value was not encrypted for" in out


def test_rotate_bind_binds_a_profile_override_where_the_load_resolves_it(cfg, ring, monkeypatch):
    (cfg / "profiles").mkdir(exist_ok=True)
    old = encrypt_value(ADMIN_PW, ring)
    (cfg / "profiles" / "vault.yaml").write_text(
        yaml.safe_dump({"kind": "deployment", "overrides": {"db": {"admin_password": old}}})
    )
    from cfgcore.cli.secrets import rotate_directory

    assert rotate_directory(str(cfg), ring, bind=True)
    stored = yaml.safe_load((cfg / "profiles" / "vault.yaml").read_text())
    envelope = stored["overrides"]["db"]["admin_password"]
    assert is_bound(envelope)
    monkeypatch.setenv("CONFIG_PROFILE", "vault")
    m = ConfigurationManager(str(cfg), environment="staging")
    try:
        assert m.get("db.admin_password") == ADMIN_PW  # bound to db.admin_password
    finally:
        m.close()


@pytest.mark.parametrize("scheme", ["fernet", "aesgcm"])
def test_a_bound_value_relabelled_as_unbound_is_refused(ring, scheme):
    envelope = encrypt_value(ADMIN_PW, ring, scheme=scheme, path="db.admin_password")
    body = envelope[len(f"ENC[v2:{scheme}:") : -1]
    relabelled = [f"ENC[{scheme}:{body}]"] + ([f"ENC[{body}]"] if scheme == "fernet" else [])
    for value in relabelled:  # a downgrade to version 1 skips no check
        with pytest.raises(ValueError) as err:
            decrypt_value(value, ring, path="feature.banner_text")
        assert ADMIN_PW not in str(err.value)


names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6)


@settings(max_examples=examples(60), deadline=None)
@given(
    path=st.lists(names, min_size=1, max_size=4),
    other=st.lists(names, min_size=1, max_size=4),
    text=st.text(max_size=40),
    scheme=st.sampled_from(["fernet", "aesgcm"]),
)
def test_a_bound_value_decrypts_at_its_path_and_nowhere_else(path, other, text, scheme):
    ring = Keyring(["k1:" + generate_key().split(":", 1)[1]])
    envelope = encrypt_value(text, ring, scheme=scheme, path=path)
    assert decrypt_value(envelope, ring, path=tuple(path)) == text
    if other != path:
        with pytest.raises(ValueError) as err:
            decrypt_value(envelope, ring, path=other)
        assert "not encrypted for key path" in str(err.value)


def test_rotate_bind_tells_copies_and_comments_apart_by_position(tmp_path, ring):
    from cfgcore.cli.secrets import check_directory, rotate_directory

    e = encrypt_value("pw-Copy-1234", ring)  # one envelope, written at several places
    (tmp_path / "a.yaml").write_text(f"# was: {e}\nx:\n  p: {e}\ny:\n  - {e}\n")
    (tmp_path / "b.toml").write_text(f'[z]\nq = "{e}"\n[w]\nt = "{e}"\n')
    (tmp_path / "c.json").write_text(f'{{"m": {{"k": "{e}"}}, "n": "{e}"}}')
    rotate_directory(str(tmp_path), ring, bind=True)
    assert check_directory(str(tmp_path), ring) == ([], 6, 0)  # each bound where it is
    a = yaml.safe_load((tmp_path / "a.yaml").read_text())
    assert decrypt_value(a["y"][0], ring, path="y.0") == "pw-Copy-1234"
    assert decrypt_value(a["x"]["p"], ring, path="x.p") == "pw-Copy-1234"


def test_check_names_the_line_of_a_value_that_does_not_decrypt(tmp_path, ring, capsys):
    """A value no key of the ring decrypts was named by file and key path only: in a
    file of many secrets the reader had to search for it. Every finding now says
    ``file:line: key path: ...``, as a load's errors do, in each format and in a
    profile's overrides (named where the load resolves them, at the file's line)."""
    other = Keyring([generate_key("stranger")])
    foreign = encrypt_value(ADMIN_PW, other, path="db.admin_password")
    unbound = encrypt_value("tok-Pw-1", ring)
    d = tmp_path / "config"
    (d / "profiles").mkdir(parents=True)
    (d / "staging.yaml").write_text(
        f"app:\n  name: x\ndb:\n  host: h\n  admin_password: '{foreign}'\n"
        f"servers:\n  - name: a\n  - token: '{unbound}'\n"
    )
    (d / "production.json").write_text(
        '{\n  "app": {"name": "x"},\n  "db": {\n    "admin_password":\n'
        f'      "{foreign}"\n  }}\n}}\n'
    )
    (d / "testing.toml").write_text(f'[app]\nname = "x"\n\n[db]\nadmin_password = "{foreign}"\n')
    (d / "profiles" / "vault.yaml").write_text(
        f"kind: deployment\noverrides:\n  db:\n    admin_password: '{foreign}'\n"
    )
    code, out, _ = _cli(capsys, "secrets", "check", str(d))
    assert code == 1
    lines = out.splitlines()
    expected = [
        (d / "production.json", 4, "db.admin_password", "no key"),  # the key's line
        (d / "profiles" / "vault.yaml", 4, "db.admin_password", "no key"),
        (d / "staging.yaml", 5, "db.admin_password", "no key"),
        (d / "staging.yaml", 8, "servers.1.token", "unbound ENC[...] value"),
        (d / "testing.toml", 5, "db.admin_password", "no key"),
    ]
    for file, line, path, what in expected:
        prefix = f"{file}:{line}: {path}: {what}"
        assert [text for text in lines if text.startswith(prefix)], (prefix, out)
    assert ADMIN_PW not in out and foreign not in out
