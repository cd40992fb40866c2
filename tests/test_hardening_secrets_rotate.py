"""Hardening: ``cfgcore secrets rotate`` and symlinked configuration files (audit finding 6).

Rotation replaced a symlinked file with a regular copy: the shared target kept the old
key's ciphertext, and the README's next step (remove the old key) broke every other
directory that links to it.
"""

from __future__ import annotations

import re

import pytest

from cfgcore.cli import main
from cfgcore.cli.secrets import rotate_directory
from cfgcore.errors import ConfigError
from cfgcore.runtime.secrets import Keyring, decrypt_value, encrypt_value, generate_key


@pytest.fixture
def keys():
    return generate_key("k1"), generate_key("k2")


@pytest.fixture
def shared(tmp_path, keys):
    """shared/common.yaml (old key), linked from two service directories."""
    old, _ = keys
    (tmp_path / "shared").mkdir()
    common = tmp_path / "shared" / "common.yaml"
    common.write_text(
        "# shared by every service\ndb:\n"
        f"  password: '{encrypt_value('db-Pw-1', Keyring([old]))}'  # keep this comment\n"
    )
    common.chmod(0o640)
    for service in ("svc-a", "svc-b"):
        (tmp_path / service).mkdir()
        (tmp_path / service / "base.yaml").symlink_to(common)
        (tmp_path / service / "staging.yaml").write_text(
            f"app:\n  token_blob: '{encrypt_value(service, Keyring([old]))}'\n"
        )
    return common


def _envelopes(text: str) -> list[str]:
    return re.findall(r"ENC\[[^\]]+\]", text)


def test_a_symlinked_file_is_rewritten_at_its_target_and_the_link_kept(
    tmp_path, keys, shared, monkeypatch, capsys
):
    old, new = keys
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", f"{new},{old}")
    monkeypatch.delenv("CFGCORE_SECRET_KEY_FILE", raising=False)
    before = shared.read_text()
    assert main(["secrets", "rotate", str(tmp_path / "svc-a")]) == 0
    out = capsys.readouterr().out
    link = tmp_path / "svc-a" / "base.yaml"
    assert link.is_symlink() and link.resolve() == shared
    assert f"base.yaml (a symlink: its target {shared} rewritten, the link kept)" in out
    after = shared.read_text()
    assert after != before and "# keep this comment" in after
    assert shared.stat().st_mode & 0o777 == 0o640
    # The old key can go: the shared file decrypts with the new key alone, so the
    # other service that links to it still loads.
    only_new = Keyring([new])
    assert [decrypt_value(e, only_new) for e in _envelopes(after)] == ["db-Pw-1"]
    other = tmp_path / "svc-b" / "base.yaml"
    assert other.is_symlink() and decrypt_value(_envelopes(other.read_text())[0], only_new)


def test_dry_run_says_what_it_would_rewrite_and_writes_nothing(
    tmp_path, keys, shared, monkeypatch, capsys
):
    old, new = keys
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", f"{new},{old}")
    before = shared.read_text()
    assert main(["secrets", "rotate", "--dry-run", str(tmp_path / "svc-a")]) == 0
    out = capsys.readouterr().out
    assert f"its target {shared} would be rewritten, the link kept" in out
    assert shared.read_text() == before and (tmp_path / "svc-a" / "base.yaml").is_symlink()


def test_a_file_reached_by_several_names_is_rewritten_once(tmp_path, keys, shared):
    old, new = keys
    svc = tmp_path / "svc-a"
    (svc / "profiles").mkdir()
    (svc / "profiles" / "also-common.yaml").symlink_to(shared)
    (svc / "local.yaml").write_text(shared.read_text())
    (svc / "local-link.yaml").symlink_to(svc / "local.yaml")
    counts = rotate_directory(str(svc), Keyring([new, old]))
    assert sorted(counts) == sorted(
        str(svc / n) for n in ("base.yaml", "local-link.yaml", "staging.yaml")
    )
    assert (svc / "local-link.yaml").is_symlink()
    assert (svc / "profiles" / "also-common.yaml").is_symlink()
    assert decrypt_value(_envelopes((svc / "local.yaml").read_text())[0], Keyring([new]))


def test_a_broken_link_is_an_error_naming_it_and_nothing_is_written(tmp_path, keys, shared):
    old, new = keys
    svc = tmp_path / "svc-a"
    (svc / "gone.yaml").symlink_to(tmp_path / "nowhere.yaml")
    before = shared.read_text()
    with pytest.raises(ConfigError, match=r"gone.yaml: cannot read: No such file"):
        rotate_directory(str(svc), Keyring([new, old]))
    assert shared.read_text() == before


@pytest.mark.parametrize(
    "broken",
    [
        "a:\n  x: 1\na:\n  y: 2\n",  # a repeated key
        "a: [1, 2\n",  # cut short
    ],
)
def test_a_file_that_does_not_parse_is_refused_with_why_and_nothing_written(
    tmp_path, keys, monkeypatch, capsys, broken
):
    """Its ENC[...] values have no key path: a bound one cannot be decrypted there and
    --bind cannot bind. Rotate re-encrypted the unbound values only, left the bound ones
    for the old key (which the next step removes), bound nothing, and exited 0; check
    said "does not parse" without why. Both now give the loader's reason; rotate writes
    no file, the good one beside it included."""
    old, new = keys
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", f"{new},{old}")
    monkeypatch.delenv("CFGCORE_SECRET_KEY_FILE", raising=False)
    ring = Keyring([old])
    bad = tmp_path / "base.yaml"
    bad.write_text(
        f"db:\n  password: '{encrypt_value('pw', ring, path=('db', 'password'))}'\n"
        f"api:\n  token: '{encrypt_value('tk', ring)}'\n" + broken
    )
    good = tmp_path / "staging.yaml"
    good.write_text(f"app:\n  blob: '{encrypt_value('b', ring)}'\n")
    files = {p: p.read_bytes() for p in (bad, good)}
    for argv in (["rotate"], ["rotate", "--bind"], ["rotate", "--dry-run"]):
        assert main(["secrets", *argv, str(tmp_path)]) == 1, argv
        err = capsys.readouterr().err
        assert f"{bad}:" in err and "not re-encrypted: the file does not parse: " in err, err
        assert {p: p.read_bytes() for p in files} == files
    assert main(["secrets", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:" in out and "not checked: the file does not parse: " in out, out
    reason = out.split("the file does not parse: ", 1)[1].splitlines()[0]
    assert reason.strip(), out  # the loader's own words follow
    # once the file parses, rotate takes every value and --bind binds the unbound ones
    bad.write_text(bad.read_text().replace(broken, ""))
    assert main(["secrets", "rotate", "--bind", str(tmp_path)]) == 0
    assert "2 value(s) in base.yaml, 1 of them newly bound" in capsys.readouterr().out
    envelopes = _envelopes(bad.read_text())
    assert decrypt_value(envelopes[0], Keyring([new]), path=("db", "password")) == "pw"
    assert decrypt_value(envelopes[1], Keyring([new]), path=("api", "token")) == "tk"
