"""Round 5 (security): envelopes with wrong keys, cut or tampered.

Decrypting never shows more than a key id of the envelope: an AES-GCM envelope's id is
its text, and one that was a pasted key (or megabytes of text) was repeated whole in
the load error and its log line. And every cut, tampered or wrong-key envelope is a
ValueError (a load error naming the file and key path), never another exception and
never a wrong plaintext (hypothesis over real envelopes).
"""

from __future__ import annotations

import base64
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.runtime.secrets import Keyring, decrypt_value, encrypt_value, generate_key
from tests.fuzz import examples

KEY = generate_key("k1")
RING = Keyring([KEY])
OTHERS = [Keyring([generate_key("k2"), KEY]), Keyring([generate_key("k1")]), RING]
ENVELOPES = [
    encrypt_value("s3cret-value", RING, scheme=scheme, path=path)
    for scheme in ("fernet", "aesgcm")
    for path in (None, "db.password", ["a.b", "c"])
]


def test_an_envelope_naming_a_pasted_key_as_its_id_does_not_show_it():
    pasted = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    for kid in (pasted, "x" * 100_000):
        with pytest.raises(ValueError) as exc:
            decrypt_value(f"ENC[aesgcm:{kid}:AAAA]", RING)
        assert kid not in str(exc.value)
        assert "(text that is no key id), which keys does not hold" in str(exc.value)
    with pytest.raises(ValueError, match="key id 'prod', which keys does not hold"):
        decrypt_value("ENC[aesgcm:prod:AAAA]", RING)


@settings(max_examples=examples(400), deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.sampled_from(ENVELOPES),
    st.integers(0, 300),
    st.integers(0, 300),
    st.text(max_size=4),
    st.sampled_from(OTHERS),
    st.sampled_from([None, "db.password", "x", ["a.b", "c"], "a.b.c"]),
)
def test_a_cut_or_tampered_envelope_is_a_value_error_or_the_plaintext(
    envelope, i, j, inserted, ring, path
):
    i, j = sorted((i % (len(envelope) + 1), j % (len(envelope) + 1)))
    value = envelope[:i] + inserted + envelope[j:]
    try:
        plain = decrypt_value(value, ring, path=path)
    except ValueError:
        return
    assert plain == "s3cret-value"
