"""redact_text masks the secret parts of URLs written in free text.

It used to mask only registered secrets, so an exception message holding a webhook
URL (Slack ``/services/T…/B…/TOKEN``, Discord ``/api/webhooks/ID/TOKEN``), a URL with
``user:password@`` or a ``?token=`` / ``?key=`` / ``?sig=`` query was written in clear
wherever cfgcore reports an error through it (the audit log's ``error`` field). It now
applies the URL masking :func:`redact` applies to URL values, to each URL in the text,
and leaves the text around them alone.
"""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.events import ConfigChangeEvent
from cfgcore.runtime.redaction import REDACTED, redact, redact_text
from tests.fuzz import examples

SLACK_TOKEN = "xq8ZfK2mVt7LpR4nWc9bYd1e"
DISCORD_TOKEN = "Qm3vT9xKp2LrW8nZc5bYd1eFgH7jAs0u"


@pytest.mark.parametrize(
    "message, secret",
    [
        (
            f"POST 'https://hooks.slack.com/services/T0123ABCD/B0456EFGH/{SLACK_TOKEN}' "
            "failed: 404 no_service",
            SLACK_TOKEN,
        ),
        (
            f"webhook https://discord.com/api/webhooks/112233445566778899/{DISCORD_TOKEN}: "
            "HTTP 401",
            DISCORD_TOKEN,
        ),
        (
            f"(https://discordapp.com/api/v10/webhooks/1122334455/{DISCORD_TOKEN})",
            DISCORD_TOKEN,
        ),
        ("cannot connect to redis://cache:hunter2pass@10.0.0.5:6379/0 (refused)", "hunter2pass"),
        ("GET https://api.example.com/v1/send?token=s3cr3tvalue&n=1 -> 500", "s3cr3tvalue"),
        ("url=https://maps.example.com/geo?q=x&key=AIzaSyA1b2C3d4E5, timed out", "AIzaSyA1b2C3"),
        ("blob <https://acct.blob.example.net/c/f?sv=2022&sig=Zx9%2Fq8w7e6r5> gone", "Zx9%2Fq8w7"),
        (f"see https://ci.example.org/hooks/{SLACK_TOKEN}.", SLACK_TOKEN),
        # two URLs glued by punctuation: each is judged on its own
        (f"a://b,https://hooks.slack.com/services/T0/B0/{SLACK_TOKEN}", SLACK_TOKEN),
    ],
)
def test_secret_parts_of_urls_in_a_message_are_masked(message, secret):
    out = redact_text(message)
    assert secret not in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "message",
    [
        "flags.yaml: flags.checkout.rollout: expected a number, got 'high'",
        "set token=abc in the form; key=value pairs; sig=1",  # no URL: a sentence
        "docs at https://cfgcore.dev/guide/flags?page=2&sort=asc (see section 3).",
        "GET https://api.example.com/v1/users/12345/orders/678 -> 404",
        "https://hooks.slack.com/services/ is the prefix; a:// is not a URL",
        "https://example.com/hooks/readme-and-more-words",
        "redis://cache:6379/0 unreachable",
    ],
)
def test_ordinary_text_and_urls_stay_as_they_are(message):
    assert redact_text(message) == message


def test_a_url_value_is_masked_as_before():
    url = f"https://hooks.slack.com/services/T0/B0/{SLACK_TOKEN}"
    assert redact("alerts.api_token", url) == REDACTED  # secret-looking key: whole value
    assert redact("alerts.target", url) == url.replace(SLACK_TOKEN, REDACTED)


def test_the_audit_log_writes_an_error_without_the_webhook_token(tmp_path):
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    error = RuntimeError(
        f"alert delivery to https://hooks.slack.com/services/T01/B02/{SLACK_TOKEN} failed"
    )
    log.record(ConfigChangeEvent("flags.json", None, None, "reload", 3, 0.0, "error", error))
    log.record_denied(
        "bob@host", "flag.set", "checkout",
        f"policy from https://policy:{DISCORD_TOKEN}@policies.example.com/p.yaml",
    )  # fmt: skip
    log.flush()
    text = path.read_text()
    assert SLACK_TOKEN not in text and DISCORD_TOKEN not in text
    errors = [json.loads(line)["error"] for line in text.splitlines()]
    assert "hooks.slack.com/services/T01/B02/" in errors[0]
    assert "policies.example.com/p.yaml" in errors[1]


TOKEN = st.text(string.ascii_letters + string.digits, min_size=24, max_size=40).filter(
    lambda t: any(c.isdigit() for c in t[:8]) and any(c.isalpha() for c in t[:8])
)
NUMERIC_ID = st.integers(10**9, 10**19).map(str)


@st.composite
def webhook_urls(draw):
    """``(url, token)``: a webhook or credentialed URL as services write them."""
    token = draw(TOKEN)
    kind = draw(st.sampled_from(["slack", "discord", "hooks", "userinfo", "query"]))
    if kind == "slack":
        url = f"https://hooks.slack.com/services/T{draw(NUMERIC_ID)}/B{draw(NUMERIC_ID)}/{token}"
    elif kind == "discord":
        host = draw(st.sampled_from(["discord.com", "discordapp.com", "ptb.discord.com"]))
        version = draw(st.sampled_from(["", "/v9", "/v10"]))
        url = f"https://{host}/api{version}/webhooks/{draw(NUMERIC_ID)}/{token}"
    elif kind == "hooks":
        seg = draw(st.sampled_from(["hooks", "webhook", "webhooks"]))
        url = f"https://ci.example.org/{seg}/{token}"
    elif kind == "userinfo":
        scheme = draw(st.sampled_from(["https", "redis", "postgresql", "amqp"]))
        url = f"{scheme}://svc:{token}@db.internal:5432/app"
    else:
        name = draw(st.sampled_from(["token", "key", "sig", "api_key", "access_token"]))
        url = f"https://api.example.com/v1/post?channel=ops&{name}={token}&x=1"
    return url, token


SEPARATORS = st.sampled_from([" ", "\n", "\t", "'", '"', "<", ">", " (", ") ", ": ", ", ", "`"])


@settings(max_examples=examples(300), deadline=None)
@given(webhook_urls(), st.text(max_size=60), st.text(max_size=60), SEPARATORS, SEPARATORS,
       st.sampled_from(["", ".", ",", ")", ":", "!", "?", "]"]))  # fmt: skip
def test_a_redacted_text_never_holds_a_webhook_token(hook, before, after, sep1, sep2, stop):
    url, token = hook
    assume(token not in before + after)
    text = f"{before}{sep1}{url}{stop}{sep2}{after}"
    out = redact_text(text)
    assert token not in out
    # the text around the URL is kept
    assert out.startswith(before) or "://" in before
    assert out.endswith(after) or "://" in after


@settings(max_examples=examples(200), deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters=":"), max_size=200))
def test_text_without_a_url_is_unchanged(text):
    assert redact_text(text) == text
