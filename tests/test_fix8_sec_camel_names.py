"""Fix 8 (secrets): production refuses every literal the secret-name rule calls a secret.

The validation walker hands its rules the key lower-cased; the plain-text secret rule
lets through the lower-cased endings of camelCase secret names and then judges the key
as written. The eighth round's new names (``apiJwt``, ``sessionCookie``, ``authHeader``,
``connString``, ``dbCreds``, ``dbBasicAuth``) end in words that list did not hold, so
``names_secret`` called them secrets (masked) while production accepted them as literals.
"""

from __future__ import annotations

import itertools

from cfgcore.runtime.redaction import names_secret
from cfgcore.validation.security import PlaintextSecretRule

WORDS = [
    "db", "api", "access", "session", "auth", "jwt", "cookie", "creds", "cred", "basic",
    "bearer", "header", "connection", "conn", "string", "str", "login", "password", "key",
    "x", "id",
]  # fmt: skip


def _spellings(words):
    yield words[0] + "".join(w.capitalize() for w in words[1:])  # camelCase
    yield "_".join(words)
    yield "".join(words)


def test_production_refuses_a_literal_under_every_name_called_a_secret():
    rule = PlaintextSecretRule()
    wrong = []
    for n in (1, 2):
        for words in itertools.product(WORDS, repeat=n):
            for name in _spellings(words):
                for parent in ("jwt", "app"):
                    tree = {"svc": {parent: {name: "literal-value-0123"}}}
                    flagged = [
                        r.key_path
                        for r in rule.validate(tree, {"environment": "production"})
                        if not r.is_valid
                    ]
                    if (flagged == [f"svc.{parent}.{name}"]) != names_secret(name, parent):
                        wrong.append((name, parent, flagged))
    assert wrong == []
    # the loop judged real secrets, not only names nobody calls one
    assert names_secret("apiJwt", "app") and names_secret("sessionCookie", "app")
