"""Encrypted values, secret files and masking (issue 14, issue 10 item 7).

Real keys, real files, the real CLI in-process and ``cfgcore watch`` in a real process.
"""

from __future__ import annotations

import json
import logging
import os
import re
import selectors
import subprocess
import sys
import time

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.cli.secrets import rotate_directory
from cfgcore.config.manager import ConfigurationManager
from cfgcore.config.tree import thaw
from cfgcore.errors import ConfigError
from cfgcore.runtime import secrets
from cfgcore.runtime.atomicio import atomic_write_text
from cfgcore.runtime.secrets import (
    Keyring,
    Secret,
    decrypt_value,
    encrypt_value,
    generate_key,
    read_secret_file,
)
from cfgcore.setup import main as setup_main
from tests.fuzz import examples
from tests.texts import any_text, holds_lone_surrogate

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__import__("cfgcore").__file__)))

KAFKA_PW = "kafka-Pw-9f3k2"  # from a secret-named variable, inside a non-secret key
PG_PW = "pg-Pw-7x1q"  # inside an encrypted connection string
ES_TOKEN = "es-Tk-4k8m"  # AES-GCM envelope under a non-secret key name
FILE_PW = "file-Pw-2b6n"  # a secret file
LISTED = "listed-Vv-5c3r"  # a variable listed in CFGCORE_SECRET_VARS
PLAINTEXTS = (KAFKA_PW, PG_PW, ES_TOKEN, FILE_PW, LISTED)


@pytest.fixture
def ring(monkeypatch):
    key = generate_key("k1")
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", key)
    monkeypatch.delenv("CFGCORE_SECRET_KEY_FILE", raising=False)
    return Keyring([key])


@pytest.fixture
def secret_dir(tmp_path, monkeypatch):
    d = tmp_path / "run-secrets"
    d.mkdir()
    (d / "replica").write_text(FILE_PW + "\n")
    monkeypatch.setenv("CFGCORE_SECRET_DIRS", str(d))
    return d


@pytest.fixture
def cfg(tmp_path, monkeypatch, ring, secret_dir):
    """A staging directory whose secrets come from every source cfgcore resolves."""
    d = tmp_path / "config"
    assert setup_main(["-e", "staging", "-o", str(d)]) == 0
    for var in list(os.environ):
        if (
            var.startswith("CFGCORE") and var not in ("CFGCORE_SECRET_KEYS", "CFGCORE_SECRET_DIRS")
        ) or var.startswith("CONFIG_"):
            monkeypatch.delenv(var)
    # never the user's real state directory (flag usage is recorded there)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_CONFIG_DIR", str(d))
    monkeypatch.setenv("CONFIG_ENVIRONMENT", "staging")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", KAFKA_PW)
    monkeypatch.setenv("LEGACY_BLOB", LISTED)
    monkeypatch.setenv("CFGCORE_SECRET_VARS", "LEGACY_BLOB")
    doc = yaml.safe_load((d / "staging.yaml").read_text())
    kafka = doc["data_sources"]["kafka_cluster"]
    kafka["sasl_jaas_config"] = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="app" password="${KAFKA_SASL_PASSWORD}";'
    )
    pg = doc["data_sources"]["postgresql"]
    pg["connection_string"] = encrypt_value(f"postgresql://app:{PG_PW}@db.internal/music", ring)
    pg["replica_auth"] = f"${{file:{secret_dir / 'replica'}}}"
    pg["legacy_blob"] = "v1:${LEGACY_BLOB}"
    doc["elasticsearch_cluster"]["request_header"] = encrypt_value(ES_TOKEN, ring, scheme="aesgcm")
    (d / "staging.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return d


SECRET_KEYS = (
    "data_sources.kafka_cluster.sasl_jaas_config",
    "data_sources.postgresql.connection_string",
    "data_sources.postgresql.replica_auth",
    "data_sources.postgresql.legacy_blob",
    "elasticsearch_cluster.request_header",
)


def _cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def _watch_output(cfg):
    """``cfgcore watch`` in its own process, while a secret-bearing value changes."""
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cfgcore", "watch", "--count", "1", "--timeout", "30"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        banner = ""
        while "watching" not in banner and time.monotonic() < deadline and proc.poll() is None:
            if sel.select(timeout=1):
                banner += proc.stderr.readline()
        assert "watching" in banner, banner
        staging = cfg / "staging.yaml"
        atomic_write_text(staging, staging.read_text().replace('username="app"', 'username="app2"'))
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "sasl_jaas_config" in out  # the change was seen ...
    return banner + out + err


def test_every_surface_masks_every_resolved_secret(cfg, capsys, caplog):
    """ONE test: every output cfgcore produces is grepped for every plaintext."""
    outputs: list[str] = []
    audit_path = cfg / "audit.jsonl"
    caplog.set_level(logging.DEBUG, logger="cfgcore")
    m = ConfigurationManager(str(cfg), environment="staging", audit_log=str(audit_path))
    outputs.append(json.dumps(m.enable_debug_mode(), default=str))  # debug mode
    # The application gets the plaintext ...
    assert KAFKA_PW in m.get(SECRET_KEYS[0])
    assert m.get(SECRET_KEYS[1]) == f"postgresql://app:{PG_PW}@db.internal/music"
    assert m.get(SECRET_KEYS[2]) == FILE_PW
    assert m.get(SECRET_KEYS[3]) == f"v1:{LISTED}"
    assert m.get(SECRET_KEYS[4]) == ES_TOKEN
    assert isinstance(m.get(SECRET_KEYS[1]), Secret)
    # Dumping its own configuration works (and shows the plaintext, as the app asked).
    assert ES_TOKEN in yaml.safe_dump(thaw(m.config)) and ES_TOKEN in json.dumps(m.config)

    # ... and nothing else does. Reprs of config objects:
    outputs += [repr(m.config), str(m.config), repr(m.snapshot), repr(m.section("data_sources"))]
    outputs += [repr(m.section("elasticsearch_cluster"))]
    for key in SECRET_KEYS:
        prov = m.explain(key)
        outputs += [repr(prov), str(prov), repr(prov.chain)]
    # Change events and the audit log (a change through a secret variable, a failed one).
    seen: list = []
    m.register_change_listener(seen.append)
    assert m.update_config(SECRET_KEYS[0], "user=x password=${KAFKA_SASL_PASSWORD}", actor="ops")
    assert not m.update_config(
        "music_streaming.audio_quality.premium_bitrate", m.get(SECRET_KEYS[4])
    )  # a type error
    outputs += [repr(e) for e in seen] + [str(e) for e in seen] + [str(m.last_error)]
    # Validation messages and exceptions.
    tree = thaw(m.config)
    tree["music_streaming"]["audio_quality"]["premium_bitrate"] = m.get(SECRET_KEYS[4])
    report = m.validate_config(tree)
    outputs.append(str(report) + repr(report))
    outputs += [str(getattr(r, "message", r)) for r in getattr(report, "results", [])]
    try:
        m.set_active_config(tree)
    except ConfigError as exc:
        outputs += [str(exc), repr(exc)]
    else:
        pytest.fail("a str port must be refused")
    # Logs, whatever logged the value.
    logging.getLogger("cfgcore.manager").error("connecting with %s", m.get(SECRET_KEYS[1]))
    m.reload()
    # The command line, in this process and in a watching process.
    commands = [("show",), ("show", "--format", "json"), ("get", "data_sources")]
    commands += [(cmd, k) for k in SECRET_KEYS for cmd in ("get", "explain")]
    for argv in commands:
        code, text = _cli(capsys, *argv)
        assert code == 0, text
        outputs.append(text)
    outputs.append(_watch_output(cfg))
    m.close()
    outputs.append(audit_path.read_text())
    outputs.append(json.dumps(m.audit.entries()))
    outputs.append(caplog.text)

    everything = "\n".join(outputs)
    assert "sasl_jaas_config" in everything and "connection_string" in everything
    assert "connecting with" in caplog.text
    for plain in PLAINTEXTS:
        leaks = [i for i, text in enumerate(outputs) if plain in text]
        assert not leaks, (plain, [outputs[i][:2000] for i in leaks])


@pytest.mark.parametrize("scheme", ["fernet", "aesgcm"])
def test_round_trip_through_the_cli(ring, capsys, scheme):
    code, out = _cli(capsys, "secrets", "encrypt", "--scheme", scheme, "s3cret value ü")
    assert code == 0 and out.startswith(f"ENC[{scheme}:")
    envelope = out.splitlines()[0]  # then warnings (stderr): on the command line, unbound
    assert any("unbound" in line for line in out.splitlines()[1:])
    assert decrypt_value(envelope, ring) == "s3cret value ü"
    code, out = _cli(capsys, "secrets", "decrypt", envelope)
    assert code == 0 and out == "s3cret value ü\n"


def test_bare_fernet_envelope_is_fernet(ring):
    token = encrypt_value("x-secret", ring)[len("ENC[fernet:") : -1]
    assert decrypt_value(f"ENC[{token}]", ring) == "x-secret"


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=any_text(max_size=200), scheme=st.sampled_from(["fernet", "aesgcm"]))
def test_round_trip_any_text(text, scheme):
    ring = Keyring([generate_key("a"), generate_key("b")])
    if holds_lone_surrogate(text):  # no text: refused by a plain ValueError saying so
        with pytest.raises(ValueError, match="not UTF-8 text") as refused:
            encrypt_value(text, ring, scheme=scheme)
        assert type(refused.value) is ValueError
        return
    envelope = encrypt_value(text, ring, scheme=scheme)
    assert decrypt_value(envelope, ring) == text
    # The older key alone still decrypts Fernet (MultiFernet tries all); AES-GCM names its key.
    assert decrypt_value(envelope, Keyring([ring.keys[0]])) == text


@pytest.mark.parametrize("scheme", ["fernet", "aesgcm"])
def test_text_holding_a_lone_surrogate_is_refused_saying_why(scheme):
    # (a file name or argument that is not UTF-8, read with surrogateescape)
    with pytest.raises(ValueError, match=r"^the value to encrypt is not UTF-8 text") as refused:
        encrypt_value("pass\udcff", Keyring([generate_key("a")]), scheme=scheme)
    assert type(refused.value) is ValueError
    str(refused.value).encode("utf-8")


def test_tampered_or_unknown_key_is_refused(ring):
    other = Keyring([generate_key("k1")])  # same id, different key
    for scheme in ("fernet", "aesgcm"):
        env = encrypt_value("abc", ring, scheme=scheme)
        with pytest.raises(ValueError, match="decrypt"):
            decrypt_value(env, other)
        flipped = env[:-3] + ("A" if env[-3] != "A" else "B") + env[-2:]
        with pytest.raises(ValueError):
            decrypt_value(flipped, ring)
    with pytest.raises(ValueError, match="no keys"):
        decrypt_value(encrypt_value("abc", ring), Keyring())
    with pytest.raises(ValueError, match="malformed"):
        decrypt_value("ENC[]", ring)


def test_wrong_key_is_a_load_error_naming_every_key_path_and_keeps_the_last_good(cfg, monkeypatch):
    m = ConfigurationManager(str(cfg), environment="staging")
    assert m.get(SECRET_KEYS[4]) == ES_TOKEN
    version = m.version
    monkeypatch.setenv("CFGCORE_SECRET_KEYS", generate_key("k9"))
    staging = cfg / "staging.yaml"
    atomic_write_text(staging, staging.read_text() + "\nanomaly_detection:\n  threshold: 0.5\n")
    assert m.reload() is False
    text = str(m.last_error)
    # The file, then (once the builder knows it) the line, then the key path.
    assert re.search(r"staging\.yaml(:\d+)?: data_sources\.postgresql\.connection_string:", text)
    assert "elasticsearch_cluster.request_header: encrypted with key id 'k1'" in text
    assert m.version == version and m.get(SECRET_KEYS[4]) == ES_TOKEN  # nothing half-decrypted
    monkeypatch.delenv("CFGCORE_SECRET_KEYS")
    with pytest.raises(ConfigError, match="no keys"):
        ConfigurationManager(str(cfg), environment="staging").load_environment_config("staging")


def test_key_file_and_rotation_of_a_directory(cfg, tmp_path, monkeypatch, capsys):
    old_key = os.environ["CFGCORE_SECRET_KEYS"]
    new_key = generate_key("k2")
    key_file = tmp_path / "keys"
    key_file.write_text(f"# newest first\n{new_key}\n{old_key}\n")
    monkeypatch.delenv("CFGCORE_SECRET_KEYS")
    monkeypatch.setenv("CFGCORE_SECRET_KEY_FILE", str(key_file))
    before = (cfg / "staging.yaml").read_text()
    code, out = _cli(capsys, "secrets", "rotate", str(cfg))
    assert code == 0 and "2 value(s) in 1 file(s) with key k2" in out, out
    after = (cfg / "staging.yaml").read_text()
    assert after != before and "ENC[aesgcm:k2:" in after and "ENC[aesgcm:k1:" not in after
    assert after.replace("\n", "").count("ENC[") == 2
    # The old key can now go: everything loads with the new one alone.
    key_file.write_text(new_key + "\n")
    m = ConfigurationManager(str(cfg), environment="staging")
    assert m.get(SECRET_KEYS[4]) == ES_TOKEN
    assert m.get(SECRET_KEYS[1]).startswith("postgresql://app:")


def test_rotation_is_all_or_nothing(cfg, tmp_path):
    foreign = encrypt_value("zzz", Keyring([generate_key("other")]), scheme="aesgcm")
    (cfg / "profiles").mkdir()
    (cfg / "profiles" / "x.yaml").write_text(f"token_blob: {foreign}\n")
    before = {p: p.read_bytes() for p in cfg.rglob("*.yaml")}
    ring = Keyring([generate_key("k3"), os.environ["CFGCORE_SECRET_KEYS"]])
    with pytest.raises(ConfigError, match=r"profiles/x.yaml:1: .*'other'"):
        rotate_directory(str(cfg), ring)
    assert {p: p.read_bytes() for p in cfg.rglob("*.yaml")} == before


def test_secret_files_are_confined(tmp_path, secret_dir):
    allowed = secrets.allowed_secret_dirs()
    assert read_secret_file(str(secret_dir / "replica"), allowed) == FILE_PW
    outside = tmp_path / "elsewhere"
    outside.write_text("nope")
    (secret_dir / "link").symlink_to(outside)
    for path, why in (
        (str(outside), "outside"),
        (str(secret_dir / ".." / "elsewhere"), "'..'"),
        (str(secret_dir / "link"), "outside"),
        ("relative/x", "absolute"),
        (str(secret_dir / "missing"), "No such file"),
    ):
        with pytest.raises(ValueError, match=why):
            read_secret_file(path, allowed)


def test_secret_file_errors_name_the_file_and_key_path(cfg, tmp_path):
    staging = cfg / "staging.yaml"
    staging.write_text(
        staging.read_text() + f"\nleak:\n  x: ${{file:{tmp_path}/config/base.yaml}}\n"
    )
    with pytest.raises(ConfigError, match=r"staging\.yaml(:\d+)?: leak\.x: secret file .* outside"):
        ConfigurationManager(str(cfg), environment="staging").load_environment_config("staging")


def test_encrypted_and_file_values_are_not_plaintext_secrets(cfg, ring, secret_dir):
    from cfgcore.validation_engine import validate_configuration

    m = ConfigurationManager(str(cfg), environment="production", validate=False)
    tree = thaw(m.build_config("staging", keep_references=True))
    tree["data_sources"]["postgresql"]["password"] = encrypt_value("pw", ring)
    tree["elasticsearch_cluster"]["password"] = f"${{file:{secret_dir / 'replica'}}}"
    tree["data_sources"]["kafka_cluster"]["sasl_password"] = "hunter2-literal"
    report = validate_configuration(tree, "production")
    flagged = {r.key_path for r in report.results if r.rule_id == "security.plaintext_secret"}
    assert "data_sources.kafka_cluster.sasl_password" in flagged  # the rule still works
    assert "data_sources.postgresql.password" not in flagged
    assert "elasticsearch_cluster.password" not in flagged


def test_flag_variant_payloads_are_decrypted_on_both_evaluators(tmp_path, ring, make):
    from cfgcore.runtime.flags import LiveFlags
    from cfgcore.runtime.flagstore import FileFlagStore

    envelope = encrypt_value("payload-Sk-1", ring, scheme="aesgcm")
    path = tmp_path / "flags.yaml"
    path.write_text(
        "version: 1\nflags:\n  gateway:\n    variants:\n"
        f"      new: {{endpoint: 'https://x', token_blob: '{envelope}'}}\n"
        "      old: {endpoint: 'https://y'}\n    default: new\n"
    )
    engine = make({"version": 1, "flags": {}})
    live = LiveFlags(FileFlagStore(str(path)), engine=engine)
    assert live.engine.evaluate("gateway", {"user_id": "u"}).value["token_blob"] == "payload-Sk-1"
    assert "payload-Sk-1" not in path.read_text()  # the stored document keeps the envelope
    assert "payload-Sk-1" not in repr(secrets.mask_text(str(live.source)))
    live.close()
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("aesgcm:k1:", "aesgcm:k7:"))
    with pytest.raises(ConfigError, match=r"flags.gateway.variants.new.token_blob: .*'k7'"):
        LiveFlags(FileFlagStore(str(bad)), engine=make({"version": 1, "flags": {}}))


@settings(max_examples=examples(60), deadline=None)
@given(
    found=st.lists(any_text(min_size=4, max_size=12), min_size=1, max_size=4),
    filler=st.lists(any_text(max_size=6), min_size=1, max_size=5),
)
def test_masked_text_never_contains_a_registered_secret(found, filler):
    secrets.forget_secrets()
    for value in found:
        secrets.register_secret(value)
    text = "".join(f + s for f, s in zip(filler, found * 2, strict=False)) + "".join(found)
    masked = secrets.mask_text(text)
    assert not any(value in masked for value in found)
    secrets.forget_secrets()


def test_a_resolved_secret_holding_a_reference_is_never_expanded(tmp_path):
    """A password may hold "${": a resolved secret copied through update_config keeps
    its text, and no error names the piece that looked like a variable."""
    from cfgcore.config.manager import ConfigurationManager

    (tmp_path / "sec").mkdir()
    (tmp_path / "c").mkdir()
    (tmp_path / "sec" / "tok").write_text("pa${HIDDEN_PART}ss-xyz\n")
    (tmp_path / "c" / "base.yaml").write_text(
        f"environment: staging\nup:\n  auth: '${{file:{tmp_path}/sec/tok}}'\n"
    )
    (tmp_path / "c" / "staging.yaml").write_text("environment: staging\n")
    environ = {"CFGCORE_SECRET_DIRS": str(tmp_path / "sec")}
    m = ConfigurationManager(tmp_path / "c", environ=environ, audit_log=tmp_path / "a.jsonl")
    m.load_environment_config("staging")
    secret = m.get("up.auth")
    assert str.__str__(secret) == "pa${HIDDEN_PART}ss-xyz"
    assert m.update_config("up.copy", secret) is True and m.last_error is None
    assert str.__str__(m.get("up.copy")) == "pa${HIDDEN_PART}ss-xyz"
    assert "HIDDEN_PART" not in (tmp_path / "a.jsonl").read_text()
