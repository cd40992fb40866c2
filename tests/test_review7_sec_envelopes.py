"""Review 7 (security, as an attacker): ``ENC[...]`` envelopes and ``secrets rotate``.

- An envelope naming a scheme cfgcore does not know (``ENC[none:...]``,
  ``ENC[v2:xchacha:...]``) is refused as such; it was read as a Fernet token and refused
  as "no key ... decrypts this value (wrong key ...)", which sent the reader looking for
  a key.
- An envelope's data is read only as cfgcore writes it: Python's base64 decoder skipped
  characters outside the alphabet, read '+' and '/' as '-' and '_' and ignored a last
  character's unused bits, so one ciphertext had many spellings that all decrypted.
- A rotation whose write fails partway (a full disk, a file-size limit) names the files
  it re-encrypted before it: it said only the OS error, though some files were already
  under the new key and the others still needed the old one.

Real keys and real files: the resolver, the CLI in-process, and the CLI in a child
process under a real file-size limit.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.runtime.secrets import (
    Keyring,
    decrypt_value,
    encrypt_value,
    generate_key,
)
from tests.fuzz import examples

KEY = generate_key("k1")
RING = Keyring([KEY])
PLAIN = "s3cret-Pw-81"


@pytest.fixture
def env(monkeypatch):
    for var in list(os.environ):
        if var.startswith(("CFGCORE", "CONFIG_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", KEY)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("ENC[none:abc]", "unknown encryption scheme 'none'"),
        ("ENC[v2:xchacha:k1:abcd]", "unknown encryption scheme 'v2:xchacha'"),
        ("ENC[v3:fernet:abcd]", "unknown encryption scheme 'v3'"),
        ("ENC[AESGCM:k1:abcd]", "unknown encryption scheme 'AESGCM'"),
        ("ENC[v2:fernet]", "malformed ENC[v2:fernet:...] value, its data missing"),
    ],
)
def test_an_unknown_scheme_is_named_with_file_and_key_path(tmp_path, env, capsys, value, named):
    (tmp_path / "base.yaml").write_text(f'db:\n  host: db1\n  other: "{value}"\n')
    (tmp_path / "development.yaml").write_text("{}\n")
    code = main(["show", "--config-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{tmp_path / 'base.yaml'}:3: db.other: {named}" in err
    assert "no key of" not in err and "wrong key" not in err


def test_a_scheme_text_that_may_be_key_material_is_not_shown():
    pasted = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    for value in (f"ENC[{pasted}:AAAA]", f"ENC[v2:{pasted}:AAAA]", f"ENC[{'x' * 100_000}:A]"):
        with pytest.raises(ValueError) as exc:
            decrypt_value(value, RING, path="a")
        assert "unknown encryption scheme (text that is no scheme)" in str(exc.value)
        assert pasted not in str(exc.value) and "xxxx" not in str(exc.value)


ENVELOPES = [
    encrypt_value(PLAIN, RING, scheme=scheme, path=path)
    for scheme in ("fernet", "aesgcm")
    for path in (None, "db.password")
]


def _data_span(envelope: str) -> tuple[int, int]:
    """Where the base64url data of ``envelope`` starts and ends."""
    return envelope.rindex(":") + 1, len(envelope) - 1


@settings(max_examples=examples(300), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(ENVELOPES),
    st.integers(0, 10_000),
    st.sampled_from(list("!*.~ +/=\u00e9\uff21") + ["==", "%3D"]),
)
def test_no_other_spelling_of_an_envelopes_data_decrypts(envelope, at, junk):
    start, end = _data_span(envelope)
    at = start + at % (end - start + 1)
    value = envelope[:at] + junk + envelope[at:]
    data = envelope[start:end]
    assume(value[start:-1] != data + "=" * (-len(data) % 4))  # padded: a spelling it has
    refused = "not base64url as cfgcore writes it|does not decrypt|malformed"
    with pytest.raises(ValueError, match=refused):
        decrypt_value(value, RING, path="db.password")


@pytest.mark.parametrize("envelope", ENVELOPES, ids=["fernet", "fernet-v2", "aesgcm", "aesgcm-v2"])
def test_the_standard_alphabet_and_a_changed_last_character_are_refused(envelope):
    path = "db.password"
    assert decrypt_value(envelope, RING, path=path) == PLAIN  # as written: read
    start, end = _data_span(envelope)
    data = envelope[start:end]
    spellings = []
    if "-" in data or "_" in data:  # '+' and '/' for '-' and '_'
        spellings.append(data.replace("-", "+").replace("_", "/"))
    bare = data.rstrip("=")
    if len(bare) % 4:  # the last character carries unused bits: set one
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        spellings.append(bare[:-1] + alphabet[alphabet.index(bare[-1]) | 1] + data[len(bare) :])
    spellings.append(bare + "=" * (-len(bare) % 4 + 1))  # one '=' more than padding takes
    for spelled in spellings:
        if spelled == data:
            continue
        with pytest.raises(ValueError, match="not base64url as cfgcore writes it"):
            decrypt_value(envelope[:start] + spelled + envelope[end:], RING, path=path)


def test_an_aesgcm_envelope_with_or_without_padding_still_decrypts():
    envelope = encrypt_value(PLAIN, RING, scheme="aesgcm", path="db.password")
    start, end = _data_span(envelope)
    data = envelope[start:end]
    padded = data + "=" * (-len(data) % 4)
    assert decrypt_value(envelope[:start] + padded + "]", RING, path="db.password") == PLAIN


def test_a_rotation_that_fails_partway_names_what_it_rewrote(tmp_path):
    # A real failure: the child process may not write files past 4 KiB (RLIMIT_FSIZE),
    # so the second file's write fails after the first file was rewritten.
    old, new = generate_key("old"), generate_key("new")
    cfg = tmp_path / "config"
    cfg.mkdir()
    small = cfg / "a.yaml"
    big = cfg / "b.yaml"
    small.write_text(f"db:\n  password: '{encrypt_value('pw-a1', Keyring([old]))}'\n")
    big.write_text(
        "# " + "x" * 8000 + "\n" + f"api:\n  token: '{encrypt_value('tk-b2', Keyring([old]))}'\n"
    )
    before = big.read_bytes()
    child = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from cfgcore.cli import main\n"
        "sys.exit(main(['secrets', 'rotate', sys.argv[1]]))\n"
    )
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CFGCORE")}
    environ["CFGCORE_SECRET_KEYS"] = f"{new},{old}"
    run = subprocess.run(
        [sys.executable, "-c", child, str(cfg)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, run.stderr
    err = run.stderr
    assert str(big) in err and "the rotation is not finished" in err
    assert f"re-encrypted before it: {small}" in err
    assert "still need the old key" in err and "Traceback" not in err
    # Each file whole: the first under the new key, the second as it was; no temp left.
    token = small.read_text().split("'")[1]
    assert decrypt_value(token, Keyring([new])) == "pw-a1"
    assert big.read_bytes() == before
    assert sorted(p.name for p in cfg.iterdir()) == ["a.yaml", "b.yaml"]
    # Run again without the limit: finished, nothing left for the old key.
    again = subprocess.run(
        [sys.executable, "-m", "cfgcore", "secrets", "rotate", str(cfg)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    token = big.read_text().rsplit("'", 2)[1]
    assert decrypt_value(token, Keyring([new])) == "tk-b2"


def test_encrypt_names_input_that_is_not_utf8(tmp_path):
    # Bytes that are no UTF-8 on standard input (or in the argument) reach the command
    # as surrogates: it failed with Python's "'utf-8' codec can't encode characters in
    # position 0-1: surrogates not allowed", naming neither the input nor the fix.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CFGCORE")}
    environ["CFGCORE_SECRET_KEYS"] = KEY
    command = [sys.executable, "-m", "cfgcore", "secrets", "encrypt", "--path", "db.password"]
    run = subprocess.run(command, input=b"pw\xff\xfe\n", env=environ, capture_output=True)
    assert run.returncode == 1 and run.stdout == b""
    assert b"standard input is not UTF-8 text" in run.stderr
    assert b"surrogates" not in run.stderr
    run = subprocess.run([*command, "x\udcff"], env=environ, capture_output=True)
    assert run.returncode == 1 and b"the VALUE argument is not UTF-8 text" in run.stderr
    run = subprocess.run(command, input="pässwörd\n".encode(), env=environ, capture_output=True)
    assert run.returncode == 0, run.stderr
    envelope = run.stdout.decode().strip()
    assert decrypt_value(envelope, RING, path="db.password") == "pässwörd"
