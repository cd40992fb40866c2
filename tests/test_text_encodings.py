"""One text-encoding policy for every file cfgcore reads as text (cfgcore._encoding).

Every reader takes UTF-8, with or without a UTF-8 byte-order mark (never part of a
value), and refuses UTF-16 and UTF-32 (with or without their mark), bytes that are not
UTF-8 and a NUL character, naming the file (and, except for secrets, the line and byte).
A YAML flags file saved as UTF-16 with its mark used to load while a configuration file
was refused ("save it as UTF-8"); both are refused now, and a hot reload that meets one
keeps the last good flags serving. Real files in tmp_path, real readers.
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cfgcore._encoding import decode_text
from cfgcore.cli.interop import _read_document
from cfgcore.cli.secrets import check_directory, rotate_directory
from cfgcore.config.envfile import EnvironWithFile
from cfgcore.config.files import read_config_file
from cfgcore.config.legacy_formats import read_legacy
from cfgcore.config.manager import ConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_credentials import CredentialsUnavailable, read_password_file
from cfgcore.runtime.secrets import (
    Keyring,
    decrypt_value,
    encrypt_value,
    generate_key,
    read_secret_file,
)
from cfgcore.runtime.signing import _read_key_file
from cfgcore.snapshot import load_snapshot
from tests.conftest import run_cli
from tests.fuzz import examples

KEY = generate_key("k1")

# reader id -> (file name, its text holding the value "svc", read it, what it read is).
# The text starts with an ASCII character, as the files a person writes do.
READERS = {
    "config yaml": ("app.yaml", "app:\n  name: svc\n",
                    lambda p: read_config_file(p).data["app"]["name"], "svc"),
    "config json": ("app.json", '{"app": {"name": "svc"}}',
                    lambda p: read_config_file(p).data["app"]["name"], "svc"),
    "config toml": ("app.toml", '[app]\nname = "svc"\n',
                    lambda p: read_config_file(p).data["app"]["name"], "svc"),
    "flags yaml": ("flags.yaml", 'flags:\n  svc:\n    default: "off"\n',
                   lambda p: sorted(load_snapshot(p).flags), ["svc"]),
    "flags json": ("flags.json", '{"flags": {"svc": {"default": "off"}}}',
                   lambda p: sorted(load_snapshot(p).flags), ["svc"]),
    ".env": (".env", "APP_NAME=svc\n",
             lambda p: EnvironWithFile(p, {})["APP_NAME"], "svc"),
    "legacy ini": ("old.ini", "[app]\nname = svc\n",
                   lambda p: [e.value for e in read_legacy(p)], ["svc"]),
    "legacy properties": ("old.properties", "app.name=svc\n",
                          lambda p: [e.value for e in read_legacy(p)], ["svc"]),
    "legacy env": ("old.env", "APP_NAME=svc\n",
                   lambda p: [e.value for e in read_legacy(p)], ["svc"]),
    "legacy json": ("old.json", '{"app": {"name": "svc"}}',
                    lambda p: [e.value for e in read_legacy(p)], ["svc"]),
    "legacy yaml": ("old.yaml", "app:\n  name: svc\n",
                    lambda p: [e.value for e in read_legacy(p)], ["svc"]),
    "import source": ("src.json", '{"svc": 1}', _read_document, {"svc": 1}),
    "secrets check": ("app.yaml", "app:\n  name: svc\n",
                      lambda p: check_directory(os.path.dirname(p))[0], []),
    # Secrets: the message names the file, never a line or byte of the secret.
    "secret file": ("db.password", "svc\n",
                    lambda p: read_secret_file(p, [os.path.dirname(p)]), "svc"),
    "redis password file": ("redis.password", "svc\n", read_password_file, "svc"),
    "secret key file": ("keys", f"# svc\n{KEY}\n",
                        lambda p: [k.encoded() for k in Keyring.from_file(p).keys], [KEY]),
    "fleet key file": ("verify.keys", "# svc\nfleet-1:abc\n",
                       lambda p: _read_key_file(p, private=False), [(2, "fleet-1:abc")]),
}  # fmt: skip
SECRET = {"secret file", "redis password file", "secret key file", "fleet key file"}


def _utf16_mark(text, order):
    return (b"\xff\xfe" if order == "le" else b"\xfe\xff") + text.encode(f"utf-16-{order}")


# encoding id -> (the file's bytes from its text, what a refusal says; None: read)
ENCODINGS = {
    "utf-8": (lambda t: t.encode(), None),
    "utf-8 with its mark": (lambda t: b"\xef\xbb\xbf" + t.encode(), None),
    "utf-16-le with its mark": (lambda t: _utf16_mark(t, "le"),
                                "UTF-16 text (it starts with a UTF-16 byte-order mark)"),
    "utf-16-be with its mark": (lambda t: _utf16_mark(t, "be"),
                                "UTF-16 text (it starts with a UTF-16 byte-order mark)"),
    "utf-16-le": (lambda t: t.encode("utf-16-le"),
                  "UTF-16 text (it starts with NUL bytes between its characters)"),
    "utf-16-be": (lambda t: t.encode("utf-16-be"),
                  "UTF-16 text (it starts with NUL bytes between its characters)"),
    "utf-32 with its mark": (lambda t: t.encode("utf-32"),
                             "UTF-32 text (it starts with a UTF-32 byte-order mark)"),
    "not utf-8": (lambda t: t.encode().replace(b"svc", b"s\xe9c"), "not UTF-8"),
    "a NUL": (lambda t: t.encode().replace(b"svc", b"s\x00c"), "a NUL character"),
}  # fmt: skip


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("reader", READERS)
def test_every_reader_follows_the_one_encoding_policy(tmp_path, reader, encoding):
    name, text, read, expected = READERS[reader]
    encode, refusal = ENCODINGS[encoding]
    data = encode(text)
    path = tmp_path / name
    path.write_bytes(data)
    os.chmod(path, 0o600)  # (key and secret files readable by others are warned about)
    try:
        got = read(str(path))
    except (ConfigError, ValueError, CredentialsUnavailable) as exc:
        got, message = None, str(exc)
    else:
        # `cfgcore secrets check` reports a file a load would refuse as a finding.
        message = str(got[0]) if reader == "secrets check" and got else None
    if refusal is None:
        assert (got, message) == (expected, None)
        return
    assert message is not None, got
    assert str(path) in message
    assert refusal in message and "save it as UTF-8" in message
    if reader in SECRET:
        assert not re.search(r"\(byte \d|:\d+: ", message)  # nothing of where in the secret
    elif encoding in ("not utf-8", "a NUL"):
        at = text.encode().index(b"svc") + 1  # where the "v" was
        line = data.count(b"\n", 0, at) + 1
        assert f":{line}: " in message and f"(byte {at})" in message
    else:
        assert f"{path}:1: " in message


EXPOSURE = {"test": "checkout", "user": "u1", "variant": "green", "ts": 1764547200}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_experiment_ingest_follows_the_policy_too(checkout_test, tmp_path, capsys, encoding):
    """The events are judged a line at a time (a bad line is one bad line); a file saved
    as UTF-16 or UTF-32 is refused whole, by its first line."""
    encode, refusal = ENCODINGS[encoding]
    events = tmp_path / "ev.jsonl"
    events.write_bytes(encode(json.dumps({**EXPOSURE, "user": "svc"}) + "\n"))
    code, _, err = run_cli(capsys, "experiment", "ingest", str(events))
    if refusal is None:
        assert code == 0 and "ingested 1 exposure(s)" in err and " 0 unusable line(s)" in err
        logged = (checkout_test / "flags.exposures.jsonl").read_text().splitlines()
        assert [json.loads(x)["user"] for x in logged] == ["svc"]
        return
    assert code == 1 and err.startswith(f"cfgcore: error: {events}:1: ")
    if encoding == "not utf-8":
        assert "not UTF-8 (byte" in err
    elif encoding == "a NUL":
        assert "not JSON" in err
    else:
        assert f"{refusal}; save it as UTF-8" in err
    assert not (checkout_test / "flags.exposures.jsonl").exists()


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


FLAGS = "flags:\n  beta: {rules: [{serve: on}], default: off}\n"


def test_hot_reload_keeps_the_last_good_flags_over_a_utf16_save(tmp_path, monkeypatch):
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app:\n  v: 1\n")
    (d / "development.yaml").write_text("{}\n")
    flags = d / "flags.yaml"
    flags.write_text(FLAGS)
    m = ConfigurationManager(
        str(d), environment="development", environ={}, validate=False, record_usage=False
    )
    try:
        m.load_environment_config()
        m.enable_hot_reload(poll_interval=0.05)
        assert m.flags.is_enabled("beta", {"user_id": "u"}) is True
        off = FLAGS.replace("serve: on", "serve: off")
        tmp = d / ".flags.tmp"
        tmp.write_bytes(off.encode("utf-16"))  # Notepad's "Unicode", with its mark
        os.replace(tmp, flags)
        assert _wait(lambda: m.last_error is not None)
        assert str(m.last_error) == (
            f"{flags}:1: UTF-16 text (it starts with a UTF-16 byte-order mark); save it as UTF-8"
        )
        assert m.flags.is_enabled("beta", {"user_id": "u"}) is True  # the last good flags
        tmp.write_bytes(b"\xef\xbb\xbf" + off.encode())  # saved again, as UTF-8
        os.replace(tmp, flags)
        assert _wait(lambda: m.last_error is None)
        assert _wait(lambda: m.flags.is_enabled("beta", {"user_id": "u"}) is False)
    finally:
        m.close()


def test_secrets_rotate_keeps_a_files_byte_order_mark_and_refuses_a_utf16_file(tmp_path):
    """The rewrite keeps the file as its editor saved it (the mark is no content either
    way); a UTF-16 file's values cannot be found, so the rotation may not call itself
    done: it was skipped without a word, leaving its values for the retired key."""
    old, new = generate_key("old"), generate_key("new")
    d = tmp_path / "config"
    d.mkdir()
    app = d / "app.yaml"
    app.write_bytes(b"\xef\xbb\xbf" + f"a: '{encrypt_value('x1', Keyring([old]))}'\n".encode())
    assert rotate_directory(str(d), Keyring([new, old])) == {str(app): 1}
    assert app.read_bytes().startswith(b"\xef\xbb\xbfa: 'ENC[")
    assert decrypt_value(read_config_file(str(app)).data["a"], Keyring([new])) == "x1"
    wide = d / "wide.yaml"
    wide.write_bytes(f"b: '{encrypt_value('x2', Keyring([old]))}'\n".encode("utf-16"))
    with pytest.raises(ConfigError) as caught:
        rotate_directory(str(d), Keyring([new, old]))
    assert str(caught.value) == (
        f"{wide}:1: not re-encrypted: the file does not parse: UTF-16 text (it starts with a "
        "UTF-16 byte-order mark); save it as UTF-8"
    )


TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))
ASCII = st.characters(min_codepoint=1, max_codepoint=0x7F)
WIDE = ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]


@settings(max_examples=examples(300), deadline=None)
@given(text=TEXT, mark=st.booleans())
def test_utf8_text_without_a_nul_reads_back_as_itself(text, mark):
    assume(not text.startswith("\ufeff"))
    data = (b"\xef\xbb\xbf" if mark else b"") + text.encode()
    assert decode_text(data, "f.yaml") == text


@settings(max_examples=examples(300), deadline=None)
@given(first=st.text(ASCII, min_size=2, max_size=2), rest=TEXT, encoding=st.sampled_from(WIDE))
def test_wide_text_is_always_refused_as_such(first, rest, encoding):
    """Two ASCII characters first (as a configuration starts, with a key): named by its
    encoding, whatever follows. (Without a mark, UTF-16 of other text may hold no NUL
    where it is looked for, or even be valid UTF-8: not told.)"""
    with pytest.raises(ConfigError) as caught:
        decode_text((first + rest).encode(encoding), "f.yaml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("f.yaml", 1)
    assert problem.message.startswith(encoding[:6].upper() + " text (it starts with ")
    assert problem.message.endswith("; save it as UTF-8")
