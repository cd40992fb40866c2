"""A verification key given as the fleet signing key is refused where the process
starts, named by its id. Both kinds are 32 bytes of base64url; before, such a process
signed with a key nobody trusts: `cfgcore publish` said it published, and every follower
refused the document as tampered with. A key `cfgcore fleet keygen` made with its
default id carries the id derived from its public key, which tells the two apart."""

from __future__ import annotations

import pytest

from cfgcore.errors import ConfigError
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair
from tests.conftest import run_cli


@pytest.mark.parametrize("pair", [generate_signing_pair() for _ in range(25)])
def test_a_verification_key_line_is_refused_as_the_signing_key(pair):
    signing, verification = pair
    kid = verification.split(":")[0]
    assert FleetKeys.from_environ({"CFGCORE_FLEET_SIGNING_KEY": signing}).signs
    with pytest.raises(ConfigError, match=r"verification \(public\) key, not a signing") as err:
        FleetKeys.from_environ({"CFGCORE_FLEET_SIGNING_KEY": verification})
    message = str(err.value)
    assert repr(kid) in message and "CFGCORE_FLEET_SIGNING_KEY" in message
    assert verification.split(":")[1] not in message  # key material never shown


def test_a_signing_key_of_a_chosen_id_is_still_taken():
    signing, verification = generate_signing_pair("prod-2026")
    keys = FleetKeys.from_environ(
        {"CFGCORE_FLEET_SIGNING_KEY": signing, "CFGCORE_FLEET_VERIFY_KEYS": verification}
    )
    assert keys.signs and keys.verify_kids == ("prod-2026",)


def test_a_verification_key_file_given_as_the_signing_key_file(tmp_path):
    signing, verification = generate_signing_pair()
    path = tmp_path / "verify.keys"
    path.write_text(f"# the fleet's verification key\n{verification}\n")
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not a signing key") as err:
        FleetKeys.from_environ({"CFGCORE_FLEET_SIGNING_KEY_FILE": str(path)})
    assert str(path) in str(err.value)


def test_publish_with_a_verification_key_as_the_signing_key_writes_nothing(
    redis_server, tmp_path, monkeypatch, capsys
):
    from tests.test_fleet_cli import _config_dir

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    config = _config_dir(tmp_path)
    url = redis_server.url + "?namespace=pub&cache=off"
    _signing, verification = generate_signing_pair()
    monkeypatch.setenv("CFGCORE_FLEET_SIGNING_KEY", verification)
    code, out, err = run_cli(
        capsys, "publish", "--store", url, "--config-dir", str(config), "-e", "staging", "--flags"
    )
    assert code == 1
    assert "not a signing key" in err and "Traceback" not in err
    assert redis_server.client().keys("{pub}*") == []
