"""Round 5 (security, follow-up): webhook tokens carried in a URL's path.

A Slack incoming webhook (``hooks.slack.com/services/T…/B…/TOKEN``), a Discord one
(``/api/webhooks/ID/TOKEN``) and most others (``/hooks/<random>``) carry their
credential in the path, not in a query parameter: whoever has the URL can post as the
service. Query tokens were masked, path tokens were shown in clear by show/get/explain
and written to the audit log. Ordinary URLs stay as written.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.redaction import REDACTED, redact

SLACK = "https://hooks.slack.com/services/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"
DISCORD = "https://discord.com/api/webhooks/112233445566778899/Zk4-Tq_9x8Yw7Vu6Ts5Rq4Po3Nm2"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SLACK, f"https://hooks.slack.com/services/T0AB12CD3/B0XY98ZW7/{REDACTED}"),
        (
            "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
            f"https://hooks.slack.com/services/T000/B000/{REDACTED}",
        ),
        (
            "https://hooks.slack.com/workflows/T01/A02/123456789/abcdEFGH1234",
            f"https://hooks.slack.com/workflows/T01/A02/123456789/{REDACTED}",
        ),
        (DISCORD, f"https://discord.com/api/webhooks/112233445566778899/{REDACTED}"),
        (
            "https://discordapp.com/api/v10/webhooks/1122/abc/messages/9",
            f"https://discordapp.com/api/v10/webhooks/1122/{REDACTED}/messages/9",
        ),
        (
            "https://ci.example.com/hooks/a8f3k2j4h5g6d7s8q9w0?src=git",
            f"https://ci.example.com/hooks/{REDACTED}?src=git",
        ),
        (
            "https://hooks.zapier.com/hooks/catch/123456/b7x9k2q4m1z8r5t3/",
            f"https://hooks.zapier.com/hooks/catch/123456/{REDACTED}/",
        ),
        (
            "https://x.example.com/webhook/9f1c2d3e-1111-2222-3333-444455556666",
            f"https://x.example.com/webhook/{REDACTED}",
        ),
        (f"notify {SLACK} then stop", f"notify {SLACK.rsplit('/', 1)[0]}/{REDACTED} then stop"),
    ],
)
def test_a_webhook_token_in_the_path_is_masked(url, shown):
    assert redact("alerts.target", url) == shown


@pytest.mark.parametrize(
    "value",
    [
        "https://example.com/docs/webhook/setup-guide-for-teams",
        "https://github.com/org/repo/settings/hooks/1234567890123456",
        "https://hooks.slack.com/services/",
        "https://api.example.com/v1/users/a8f3k2j4h5g6d7s8q9w0",  # no hook segment
        "https://hooks.slack.com/services/T1/B2/${SLACK_TOKEN}",
        "https://discord.com/channels/1122/3344",
        "https://example.com/hooks",
        "hooks/a8f3k2j4h5g6d7s8q9w0",  # not a URL
    ],
)
def test_ordinary_urls_and_references_stay(value):
    assert redact("alerts.target", value) == value


@given(st.text(alphabet="ab/:.?#@ \n-_0123456789hoksw", max_size=200))
def test_masking_never_raises_and_never_grows_text_without_a_hook(text):
    out = redact("x", text)
    assert isinstance(out, str)
    if "hook" not in text and "slack" not in text and "discord" not in text:
        assert out == text


def test_show_get_explain_and_the_audit_log_do_not_show_a_path_token(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text(f"notify:\n  slack_url: {SLACK}\n  level: warn\n")
    (tmp_path / "development.yaml").write_text("app:\n  debug: true\n")
    base = ["--config-dir", str(tmp_path), "-e", "development", "--no-validate"]
    token = SLACK.rsplit("/", 1)[1]
    for argv in (["show", *base], ["get", "notify", *base], ["explain", "notify.slack_url", *base]):
        assert main(argv) == 0, argv
        out = capsys.readouterr().out
        assert token not in out and REDACTED in out, (argv, out)
    audit = tmp_path / "audit.jsonl"
    m = ConfigurationManager(tmp_path, environment="development", environ={}, audit_log=audit)
    m.load_environment_config()
    assert m.update_config("notify.discord_url", DISCORD)
    text = audit.read_text()
    assert "notify.discord_url" in text and DISCORD.rsplit("/", 1)[1] not in text
    assert m.get("notify.discord_url") == DISCORD  # the application reads it whole
    entry = [json.loads(line) for line in text.splitlines() if "discord_url" in line][-1]
    assert entry["new"].endswith(REDACTED)
