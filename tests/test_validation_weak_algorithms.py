"""security.weak_algorithm: OpenSSL cipher lists read as OpenSSL reads them, 64-bit
block ciphers, ECB, NULL and export suites, and values that name no protection at all."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.validation.security import no_protection, weak_algorithms
from cfgcore.validation_engine import ConfigValidator

RULE = "security.weak_algorithm"


def weak(cfg: dict, environment: str = "production") -> dict[str, str]:
    """The rule's findings: key path -> its messages, joined."""
    report = ConfigValidator().validate_config(cfg, environment=environment)
    found: dict[str, str] = {}
    for r in report.failures:
        if r.rule_id == RULE:
            found[r.key_path] = (
                f"{found[r.key_path]} | {r.message}" if r.key_path in found else r.message
            )
    return found


@pytest.mark.parametrize(
    "ciphers",
    [
        "HIGH:!aNULL:!MD5",  # nginx's default ssl_ciphers
        "HIGH:!aNULL:!MD5:!RC4:!3DES:!IDEA:!DES",
        "ALL:-DES:-RC4:-EXP:-eNULL",
        "EECDH+AESGCM:EDH+AESGCM:!SHA1",
        "DEFAULT:@SECLEVEL=2",
        "ECDHE-RSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384",
    ],
)
def test_a_cipher_list_excluding_weak_ciphers_passes(ciphers):
    assert weak({"server": {"tls": {"ciphers": ciphers}}}) == {}
    assert weak({"nginx": {"ssl_ciphers": ciphers}}) == {}


@pytest.mark.parametrize(
    ("ciphers", "named"),
    [
        ("HIGH:RC4:!aNULL", "RC4"),
        ("ALL:eNULL", "NULL cipher"),
        ("HIGH:aNULL", "NULL cipher"),
        ("TLS_RSA_WITH_NULL_SHA256", "NULL cipher"),
        ("EXP-RC4-MD5", "export-grade cipher"),
        ("HIGH:BF-CBC", "Blowfish"),
        ("IDEA-CBC-SHA", "IDEA"),
        ("RC2-CBC-MD5", "RC2"),
        ("CAST5-CBC", "CAST5"),
        ("AES-256-ECB", "ECB mode"),
        ("!MD5:DES-CBC3-SHA", "3DES"),
    ],
)
def test_a_weak_cipher_included_in_a_list_is_named(ciphers, named):
    found = weak({"server": {"tls": {"ciphers": ciphers}}})
    assert list(found) == ["server.tls.ciphers"]
    assert f"weak algorithm {named}" in found["server.tls.ciphers"]


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ({"security": {"encryption": {"algorithm": "ROT13"}}}, "ROT13", "ROT13"),
        ({"security": {"encryption": {"algorithm": "rot-13"}}}, "rot-13", "ROT13"),
        ({"storage": {"encryption": {"cipher": "none"}}}, "none", "none"),
        ({"jwt": {"signing_algorithm": "none"}}, "none", "none"),  # JWT alg=none
        ({"backup": {"encryption_algorithm": "base64"}}, "base64", "Base64"),
        ({"tokens": {"crypto_algorithm": "XOR"}}, "XOR", "XOR"),
        ({"db": {"tls": {"cipher": "NULL"}}}, "NULL", "NULL"),
    ],
)
def test_no_protection_where_cryptography_is_expected_is_refused(path, value, named):
    found = weak(path)
    assert len(found) == 1, found
    (message,) = found.values()
    assert named in message and "where a cryptographic algorithm is expected" in message


@pytest.mark.parametrize(
    "cfg",
    [
        {"compression": {"algorithm": "none"}},
        {"compression": {"algorithm": "null"}},
        {"cache": {"hash_algorithm": "xor"}},
        {"export": {"encoding_algorithm": "base64"}},
        {"security": {"encryption": {"algorithm": "AES-256-GCM"}}},
        {"security": {"encryption": {"algorithm": "ChaCha20-Poly1305"}}},
        {"jwt": {"signing_algorithm": "EdDSA"}},
    ],
)
def test_no_protection_names_elsewhere_and_strong_ciphers_pass(cfg):
    assert weak(cfg) == {}


def test_severity_follows_the_environment():
    cfg = {"security": {"encryption": {"algorithm": "aes-128-ecb"}}}
    report = ConfigValidator().validate_config(cfg, environment="production")
    assert [r.severity for r in report.failures if r.rule_id == RULE] == ["critical"]
    report = ConfigValidator().validate_config(cfg, environment="development")
    assert [r.severity for r in report.failures if r.rule_id == RULE] == ["error"]


WEAK_ELEMENTS = ["DES-CBC3-SHA", "RC4-SHA", "aNULL", "eNULL", "EXP", "IDEA", "BF-CBC", "MD5"]
STRONG_ELEMENTS = ["HIGH", "ECDHE-RSA-AES128-GCM-SHA256", "EECDH+AESGCM", "@SECLEVEL=2"]


@given(
    st.lists(
        st.one_of(
            st.sampled_from(STRONG_ELEMENTS),
            st.tuples(st.sampled_from("!-+"), st.sampled_from(WEAK_ELEMENTS)).map("".join),
        ),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from([":", ",", " "]),
)
def test_excluded_or_moved_elements_never_count(elements, sep):
    """Whatever a list excludes (!, -) or only moves (+) names no weak cipher."""
    assert weak_algorithms(sep.join(elements)) == []


@given(
    st.lists(st.sampled_from(STRONG_ELEMENTS), max_size=4),
    st.sampled_from(WEAK_ELEMENTS),
    st.lists(st.sampled_from(STRONG_ELEMENTS), max_size=4),
)
def test_an_included_weak_element_always_counts(before, element, after):
    assert weak_algorithms(":".join([*before, element, *after])) != []


def test_no_protection_reads_the_whole_value_only():
    assert no_protection("None") == "none (no protection)"
    assert no_protection("none-of-these") is None
    assert no_protection("AES-256-GCM") is None
