"""Fix 8 (secrets): a URL password written in a reference's default is a literal.

``${CACHE_URL:-redis://u:hunter2@h/0}`` keeps the password in the file whenever the
variable is unset: ``cfgcore validate`` judged only the variable's name, so production
validation passed it. The default is now judged as the URL it is.
"""

from __future__ import annotations

import pytest

from cfgcore.validation.keys import url_password
from tests.conftest import run_cli


@pytest.mark.parametrize(
    "value, literal",
    [
        ("${CACHE_URL:-redis://u:hunter2@h/0}", True),
        ("${CACHE_URL-redis://u:hunter2@h/0}", True),
        ("prefix ${A:-x} ${CACHE_URL:-redis://u:hunter2@h/0}", True),
        ("${CACHE_URL:-redis://h/0}", False),  # a default without credentials
        ("redis://${U:-app}:${P}@h/0", False),  # the user's default is no password
        ("${CACHE_URL:?set redis://u:p@h first}", False),  # an error message, never a value
        ("${CACHE_URL}", False),
    ],
)
def test_a_reference_default_is_judged_as_the_url_it_holds(value, literal):
    assert url_password(value) is literal


def test_validate_refuses_a_password_in_a_reference_default(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CACHE_URL", raising=False)
    (tmp_path / "base.yaml").write_text('cache:\n  url: "${CACHE_URL:-redis://u:hunter2@h/0}"\n')
    (tmp_path / "production.yaml").write_text("{}\n")
    code, out, err = run_cli(capsys, "validate", "--config-dir", str(tmp_path), "-e", "production")
    assert code != 0, out + err
    assert "security.url_credentials" in out + err
    assert "hunter2" not in out + err
