"""Round 4, redaction: a URL's query parameter named like a secret (a webhook's
?token=, an API's &api_key=, a presigned URL's X-Amz-Signature=) was shown in clear by
show/get/explain and written to the audit log, under a key not named like a secret."""

from __future__ import annotations

import pytest

from cfgcore.config.manager import ConfigurationManager
from cfgcore.runtime.audit import AuditLog
from cfgcore.runtime.redaction import REDACTED, redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "https://hooks.example.com/x?token=Tk-9911&channel=ops",
            f"https://hooks.example.com/x?token={REDACTED}&channel=ops",
        ),
        (
            "https://api.example.com/v1?x=1&api_key=AK-9988",
            f"https://api.example.com/v1?x=1&api_key={REDACTED}",
        ),
        (
            "https://s3.example.com/o?X-Amz-Expires=60&X-Amz-Signature=deadbeef",
            f"https://s3.example.com/o?X-Amz-Expires=60&X-Amz-Signature={REDACTED}",
        ),
        (
            "https://x.example.com/?access_token=t-1#top",
            f"https://x.example.com/?access_token={REDACTED}#top",
        ),
        (
            "https://m.example.com/api?key=AIza-1&q=a",
            f"https://m.example.com/api?key={REDACTED}&q=a",
        ),
    ],
)
def test_a_secret_query_parameter_is_masked(url, shown):
    assert redact("alerts.webhook_url", url) == shown


@pytest.mark.parametrize(
    "value",
    [
        "https://x.example.com/?token_ttl=30&key_id=k1&page=2",
        "https://x.example.com/?token=${WEBHOOK_TOKEN}",
        "text?token=not-a-url",
        "https://x.example.com/?token=",
    ],
)
def test_other_query_parameters_and_references_stay(value):
    assert redact("alerts.webhook_url", value) == value


def test_the_audit_log_and_get_do_not_show_a_webhook_token(tmp_path):
    (tmp_path / "development.yaml").write_text("app:\n  name: svc\n")
    m = ConfigurationManager(
        tmp_path, environment="development", environ={}, audit_log=tmp_path / "audit.jsonl"
    )
    m.load_environment_config()
    assert m.update_config("monitoring.webhook_url", "https://hooks.example.com/x?token=Tk-4242")
    log = (tmp_path / "audit.jsonl").read_text()
    assert "monitoring.webhook_url" in log and "Tk-4242" not in log
    assert m.get("monitoring.webhook_url").endswith("Tk-4242")  # the application reads it
    assert [
        e
        for e in AuditLog.read(tmp_path / "audit.jsonl")
        if e.get("path") == "monitoring.webhook_url"
    ]
