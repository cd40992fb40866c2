"""``cfgcore health --url`` with a URL it refuses (not http or https) echoed the URL,
password included, in argparse's usage error: f14d2dc masked every ``cfgcore: error:``
line, but this one is argparse's (``cfgcore health: error: argument --url: ...``). A
store URL pasted where the probe's URL goes (``redis://:PASSWORD@cache:6379/0``) put
the store's password on the terminal and in CI logs. The echo is masked as the other
error lines are; the refusal and its exit status are unchanged."""

from __future__ import annotations

import pytest

from cfgcore.cli import main

PASSWORD = "Pw-review7-health-url"


@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{PASSWORD}@cache:6379/0",
        f"rediss://app:{PASSWORD}@cache:6380/0",
        f"ftp://ops:{PASSWORD}@files.example.com/health",
    ],
)
def test_a_refused_url_is_echoed_without_its_password(url, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["health", "--url", url])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "expected an http:// or https:// URL" in err
    assert "@cache" in err or "@files.example.com" in err  # the URL is still named
    assert PASSWORD not in err


def test_a_url_without_a_scheme_is_still_echoed_as_written(capsys):
    with pytest.raises(SystemExit):
        main(["health", "--url", "localhost:8080/health/ready"])
    assert "'localhost:8080/health/ready': expected an http://" in capsys.readouterr().err
