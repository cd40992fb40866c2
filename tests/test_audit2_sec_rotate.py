"""Second security round: key rotation leaves no value readable only by a retired key,
and keys sharing an id all decrypt."""

from __future__ import annotations

import json
import os

import pytest

from cfgcore.cli import main
from cfgcore.cli.secrets import rotate_directory
from cfgcore.config.files import read_config_file
from cfgcore.errors import ConfigError
from cfgcore.runtime.secrets import Keyring, SecretKey, decrypt_value, encrypt_value, generate_key


@pytest.fixture
def keys():
    return generate_key("old"), generate_key("new")


def _escaped_json(envelope: str) -> str:
    # What a JSON encoder with ensure_ascii and a '[' escape, or a hand edit, writes: the
    # loader reads the envelope, the text holds no "ENC[".
    return json.dumps({"db": {"password": envelope}}).replace("ENC[", "ENC\\u005b")


def _escaped_json_lines(envelope: str) -> str:
    return json.dumps({"db": {"host": "x", "password": envelope}}, indent=2).replace(
        "ENC[", "ENC\\u005b"
    )


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("base.json", _escaped_json, 1),
        ("base.json", _escaped_json_lines, 4),
        ("staging.yaml", lambda env: 'db:\n  password: "ENC\\x5b' + env[4:] + '"\n', 2),
        ("prod.toml", lambda env: '[db]\nhost = "x"\npassword = "ENC\\u005B' + env[4:] + '"\n', 3),
        (
            os.path.join("profiles", "ops.yaml"),
            lambda env: 'overrides:\n  db:\n    password: "ENC\\x5b' + env[4:] + '"\n',
            3,
        ),
    ],
)
def test_an_envelope_the_text_rewrite_cannot_see_fails_the_rotation(
    tmp_path, keys, name, text, line
):
    # Rotation rewrote only the literal text "ENC[...]": an escaped envelope stayed under
    # the old key while rotate reported success, and removing that key (the next step of
    # a rotation) then broke the service's load.
    old, new = keys
    envelope = encrypt_value("db-Pw-1", Keyring([old]))
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text(envelope))
    if "profiles" not in name:
        assert read_config_file(str(path)).data["db"]["password"] == envelope  # what loads
    before = path.read_bytes()
    with pytest.raises(ConfigError) as err:
        rotate_directory(str(tmp_path), Keyring([new, old]))
    problem = err.value.problems[0]
    assert problem.file == str(path) and problem.path == "db.password"
    # the line of its key, as `secrets check` and a load name a value
    assert problem.line == line
    assert str(err.value).startswith(f"{path}:{line}: db.password: ")
    assert "still needs a retired key" in problem.message
    assert path.read_bytes() == before  # nothing written


def test_the_cli_names_the_file_and_key_and_exits_nonzero(tmp_path, keys, capsys, monkeypatch):
    old, new = keys
    (tmp_path / "base.json").write_text(_escaped_json(encrypt_value("pw", Keyring([old]))))
    (tmp_path / "app.yaml").write_text(f"api:\n  token: '{encrypt_value('t', Keyring([old]))}'\n")
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", f"{new},{old}")
    monkeypatch.delenv("CFGCORE_SECRET_KEY_FILE", raising=False)
    code = main(["secrets", "rotate", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0
    assert f"{tmp_path / 'base.json'}:1: db.password: " in err
    assert "ENC[" in (tmp_path / "app.yaml").read_text()
    assert decrypt_value(
        (tmp_path / "app.yaml").read_text().split("'")[1], Keyring([old])
    )  # all or nothing: the rotatable file was not rewritten either


def test_a_normal_rotation_still_succeeds_and_leaves_nothing_for_the_old_key(tmp_path, keys):
    old, new = keys
    (tmp_path / "app.yaml").write_text(
        f"a: '{encrypt_value('x1', Keyring([old]))}'\n"
        f"b: ['{encrypt_value('x2', Keyring([old]), scheme='aesgcm')}']\n"
    )
    counts = rotate_directory(str(tmp_path), Keyring([new, old]))
    assert counts == {str(tmp_path / "app.yaml"): 2}
    data = read_config_file(str(tmp_path / "app.yaml")).data
    only_new = Keyring([new])
    assert decrypt_value(data["a"], only_new) == "x1"
    assert decrypt_value(data["b"][0], only_new) == "x2"


def test_keys_sharing_an_id_all_decrypt_aesgcm_values(keys):
    # `keygen --id prod` run twice gives two keys with one id: an AES-GCM value made with
    # the older one was "tampered or wrong key" once the newer was put first, so neither
    # the service nor `secrets rotate` could read it.
    first = generate_key("prod")
    second = generate_key("prod")
    assert SecretKey.parse(first).kid == SecretKey.parse(second).kid
    envelope = encrypt_value("pw", Keyring([first]), scheme="aesgcm")
    assert decrypt_value(envelope, Keyring([second, first])) == "pw"
    with pytest.raises(ValueError, match="does not decrypt"):
        decrypt_value(envelope, Keyring([second]))


def test_a_file_edited_during_the_rotation_is_not_clobbered(tmp_path, keys, monkeypatch):
    # rotate read every file, re-encrypted, then wrote what it had read: an operator's
    # edit saved in between was silently lost. The edit is made here while the values
    # are being re-encrypted (the window).
    from cfgcore.runtime import secrets as secrets_mod

    old, new = keys
    app = tmp_path / "app.yaml"
    app.write_text(f"a: '{encrypt_value('x1', Keyring([old]))}'\n")
    other = tmp_path / "other.yaml"
    other.write_text(f"b: '{encrypt_value('x2', Keyring([old]))}'\n")
    real = secrets_mod.encrypt_value

    def encrypt_while_someone_edits(*args, **kwargs):
        if "edited" not in app.read_text():
            app.write_text(app.read_text() + "edited: true\n")
        return real(*args, **kwargs)

    monkeypatch.setattr(secrets_mod, "encrypt_value", encrypt_while_someone_edits)
    before = other.read_bytes()
    with pytest.raises(ConfigError, match="changed while it was being re-encrypted") as err:
        rotate_directory(str(tmp_path), Keyring([new, old]))
    assert [p.file for p in err.value.problems] == [str(app)]
    assert "edited: true" in app.read_text()
    assert other.read_bytes() == before  # all or nothing


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_a_world_writable_key_file_is_refused(tmp_path, keys, capsys):
    # Anyone able to rewrite the key file could put their own key first: rotate (and
    # encrypt) would then re-encrypt every value for them.
    old, new = keys
    key_file = tmp_path / "keys"
    key_file.write_text(f"{new}\n{old}\n")
    key_file.chmod(0o666)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "app.yaml").write_text(f"a: '{encrypt_value('x1', Keyring([old]))}'\n")
    before = (conf / "app.yaml").read_bytes()
    with pytest.raises(ConfigError, match="writable by every user"):
        Keyring.from_file(key_file)
    code = main(["secrets", "rotate", str(conf), "--key-file", str(key_file)])
    assert code != 0 and "writable by every user" in capsys.readouterr().err
    assert (conf / "app.yaml").read_bytes() == before
    key_file.chmod(0o600)
    assert Keyring.from_file(key_file).keys[0].kid == "new"
