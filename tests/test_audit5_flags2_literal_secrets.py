"""Secret references a flag document would serve as written, fifth audit. Variant values
with ``ENC[...]`` or ``${file:...}`` are resolved when a document is compiled, but a
flag's ``metadata`` and the document's ``metadata`` reach clients as written (OpenFeature
flag metadata): a reference there served its path or ciphertext to every client. Such a
document is now refused, naming the flag and key path, on load, on reload, from the
Redis follower and through the update API; variant values keep being resolved."""

from __future__ import annotations

import json

import msgspec
import pytest

from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.errors import ConfigError
from cfgcore.runtime.atomicio import atomic_write
from cfgcore.snapshot import Flag, Snapshot

ENVELOPE = "ENC[v2:fernet:gAAAAABnotarealtoken]"


def document(**flag_fields):
    flag = {"variants": {"a": {"key": "x"}, "b": {"key": "y"}}, "default": "a", **flag_fields}
    return {"version": 1, "flags": {"api": flag}}


def write(path, doc):
    atomic_write(str(path), json.dumps(doc).encode())


@pytest.mark.parametrize("reference", [ENVELOPE, "${file:/run/secrets/token}", "k=${file:/x}"])
def test_a_reference_in_flag_metadata_is_refused_on_load(tmp_path, reference):
    path = tmp_path / "flags.json"
    write(path, document(metadata={"owner": {"contact": reference}}))
    with pytest.raises(ConfigError) as info:
        DynamicConfigurationManager(flags_file=str(path))
    # one line of JSON: the line is 1
    assert f"{path}:1: flags.api.metadata.owner.contact" in str(info.value)
    assert "served as written" in str(info.value)


def test_a_reference_added_by_hand_is_refused_on_reload_and_the_live_flags_stay(tmp_path):
    path = tmp_path / "flags.json"
    write(path, document(metadata={"owner": "team-a"}))
    m = DynamicConfigurationManager(flags_file=str(path))
    try:
        doc = document(metadata={"owner": ENVELOPE})
        doc["metadata"] = {"contact": "${file:/run/secrets/pager}"}
        write(path, doc)
        assert not m.reload()
        error = str(m._live.last_error)
        assert "flags.api.metadata.owner" in error and "metadata.contact" in error
        assert m._live.source.flags["api"].metadata == {"owner": "team-a"}
        assert m.audit.entries()[-1]["kind"] == "error"
    finally:
        m.close()


def test_the_update_path_refuses_it_too(tmp_path):
    path = tmp_path / "flags.json"
    write(path, document())
    m = DynamicConfigurationManager(flags_file=str(path))
    try:

        def change(snap: Snapshot) -> Snapshot:
            flag = msgspec.structs.replace(snap.flags["api"], metadata={"k": ENVELOPE})
            return msgspec.structs.replace(snap, flags={**snap.flags, "api": flag})

        with pytest.raises(ConfigError, match=r"flags\.api\.metadata\.k"):
            m._live.update(change, source="test")
        assert m._live.source.flags["api"].metadata == {}
        assert ENVELOPE not in path.read_text()  # nothing written
    finally:
        m.close()


def test_references_in_variant_values_are_still_resolved(tmp_path, monkeypatch):
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text("s3cr3t")
    monkeypatch.setenv("CFGCORE_SECRET_DIRS", str(secrets))
    path = tmp_path / "flags.json"
    doc = document()
    doc["flags"]["api"]["variants"]["a"]["key"] = "${file:" + str(secrets / "token") + "}"
    write(path, doc)
    m = DynamicConfigurationManager(flags_file=str(path))
    try:
        assert m.engine.value("api", {"user_id": "u"}) == {"key": "s3cr3t"}
    finally:
        m.close()


def test_a_document_written_to_redis_with_one_is_refused_by_followers(
    redis_server, stores, tmp_path
):
    from tests.redis_server import wait_for

    url = redis_server.url + "?namespace=lit&poll=0.1&cache=off"
    writer = stores(url)
    writer.update(lambda s: msgspec.structs.replace(s, flags={"api": Flag(default="on")}))
    m = DynamicConfigurationManager(store=url, state_dir=tmp_path / "state")
    try:
        version = m._live.document.version
        writer.update(
            lambda s: msgspec.structs.replace(
                s, flags={"api": Flag(default="on", metadata={"k": ENVELOPE})}
            )
        )
        assert wait_for(lambda: m._live.last_error is not None)
        assert "flags.api.metadata.k" in str(m._live.last_error)
        assert m._live.document.version == version
    finally:
        m.close()
