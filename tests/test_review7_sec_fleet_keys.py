"""Review 7 (security, as an attacker): fleet keys given for the wrong purpose.

A fleet signing (private) key and a verification (public) key are both 32 bytes of
base64url, so a signing key listed among the verification keys, or a signing key file
named as the verification key file, was taken as a verification key: the private key
was handed to every follower (whoever reads one follower's environment could then sign
flags for the whole fleet), and the followers refused every document. Where a process
can tell, it now refuses to start, naming the key by position and id, never its text.

Real Ed25519 keys from ``cryptography``, real files, the real ``cfgcore fleet keygen``.
"""

from __future__ import annotations

import pytest

from cfgcore.cli import main
from cfgcore.errors import ConfigError
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair

K1 = generate_signing_pair("k1")  # (signing line, verification line)
K2 = generate_signing_pair("k2")
BARE = generate_signing_pair()  # ids derived from the public key


def _material(line: str) -> str:
    return line.rsplit(":", 1)[1]


@pytest.mark.parametrize(
    "verify",
    [
        [K1[1], K1[0]],  # the pair's signing key listed after it, under its own id
        [K1[0], K1[1]],  # before it
        [K1[1], f"other:{_material(K1[0])}"],  # under another id
        [K2[1], BARE[1], _material(BARE[0])],  # without an id
    ],
    ids=["same-id-after", "same-id-before", "other-id", "no-id"],
)
def test_a_signing_key_among_the_verification_keys_is_refused(verify):
    with pytest.raises(ConfigError) as err:
        FleetKeys(None, verify)
    text = str(err.value)
    assert "is a signing (private) key: the signing key of the trusted key" in text
    assert "two different keys" not in text
    for line in (K1[0], BARE[0]):
        assert _material(line) not in text and _material(line)[:12] not in text


def test_a_signing_key_also_given_as_a_verification_key_is_refused():
    # A writer given its own private key in both places (or a public key in both).
    for signing, verify in ((K1[0], [K1[0]]), (K1[1], [K1[1], K2[1]])):
        with pytest.raises(ConfigError, match="are the same 32 bytes") as err:
            FleetKeys(signing, verify)
        assert _material(K1[0]) not in str(err.value)


def test_a_signing_key_file_named_as_the_verification_key_file_is_refused(tmp_path, capsys):
    path = tmp_path / "fleet-signing.key"
    assert main(["fleet", "keygen", "--signing-key-file", str(path), "--id", "prod"]) == 0
    verification = capsys.readouterr().out.strip()
    # What the writers are given still works...
    keys = FleetKeys.from_environ({"CFGCORE_FLEET_SIGNING_KEY_FILE": str(path)})
    assert keys.signing_kid == "prod"
    # ...but not as the followers' verification key file.
    with pytest.raises(ConfigError) as err:
        FleetKeys.from_environ({"CFGCORE_FLEET_VERIFY_KEY_FILE": str(path)})
    text = str(err.value)
    assert str(path) in text and "fleet signing (private) key file" in text
    assert _material(path.read_text().splitlines()[-1]) not in text
    # The verification key it printed, in a file of its own, is what followers take.
    verify = tmp_path / "verify.keys"
    verify.write_text(verification + "\n")
    assert FleetKeys.from_environ({"CFGCORE_FLEET_VERIFY_KEY_FILE": str(verify)}).verify_kids == (
        "prod",
    )


def test_keys_given_for_their_purpose_still_load():
    assert FleetKeys(K1[0], [K1[1], K2[1]]).verify_kids == ("k1", "k2")
    assert FleetKeys(None, [K1[1], K2[1], BARE[1]]).verifies
    assert FleetKeys(BARE[0], [BARE[1]]).signing_kid == BARE[1].split(":")[0]
