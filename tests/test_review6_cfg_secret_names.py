"""A ``pass`` that is a filter or an encoder's pass is not a password.

When secret names got one definition (85b3961), a name whose last word is ``pass``
became a secret (``db_pass``, ``user_pass``: right). So did ``low_pass``,
``high_pass``, ``band_pass`` (audio filters, in a music-streaming configuration) and
``first_pass``/``two_pass`` (encoder settings): production validation refused
``audio.low_pass: 8000`` as a plain-text secret (critical), which it had accepted, and
redaction masked the number.
"""

from __future__ import annotations

import pytest

from cfgcore.runtime import secrets
from cfgcore.runtime.redaction import REDACTED, is_secret_key, names_secret, redact
from cfgcore.validation_engine import validate_configuration

AUDIO = {
    "custom": {
        "audio": {
            "low_pass": 8000,
            "highPass": "20Hz",
            "band_pass": [300, 3400],
            "NOTCH_PASS": 50,
        },
        "encoding": {"first_pass": "fast", "two_pass": 2, "final_pass": "slow"},
    }
}


def _critical(config):
    report = validate_configuration(config, "production")
    return [r.key_path for r in report.results if r.severity == "critical"]


def test_filters_and_encoder_passes_are_valid_in_production():
    assert _critical(AUDIO) == []


@pytest.mark.parametrize("name", ["low_pass", "highPass", "band_pass", "first_pass", "TWO_PASS"])
def test_they_are_not_secrets_nor_masked(name):
    assert not is_secret_key(name) and not names_secret(name, "audio")
    assert redact(f"audio.{name}", 8000) == 8000


@pytest.mark.parametrize("name", ["pass", "db_pass", "user_pass", "DB_PASS", "dbPass", "key_pass"])
def test_passwords_named_pass_still_are(name):
    assert is_secret_key(name)
    assert _critical({"custom": {"db": {name: "hunter2-x"}}}) == [f"custom.db.{name}"]
    assert redact(f"db.{name}", "hunter2-x") == REDACTED


@pytest.mark.parametrize(
    "name", ["enable_password", "enable_secret", "support_password", "supportPassword"]
)
def test_secrets_named_after_enable_or_support_are_masked(name):
    # A network device's enable password/secret, a vendor's support password: masked
    # again (lost when secret names got one home), in values and as variables.
    assert redact(f"router.{name}", "s3cret-value-123") == REDACTED
    secrets.forget_secrets()
    secrets.note_variable(name.upper(), "s3cret-value-123", {})
    assert secrets.mask_text("login s3cret-value-123") == "login ***"


@pytest.mark.parametrize("name", ["is_token", "use_secret", "require_password", "enabled"])
def test_switches_about_a_secret_are_not_masked(name):
    assert redact(f"auth.{name}", "true-ish-text") == "true-ish-text"
