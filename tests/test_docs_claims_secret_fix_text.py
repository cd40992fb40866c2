"""The fix ``security.plaintext_secret`` suggests is a value cfgcore decrypts.

README ("Masking"): validation accepts an ``ENC[...]`` value, which ``cfgcore secrets
encrypt --path KEY`` writes and a load decrypts. The rule's fix said "an encrypted value
(enc:...)": a value spelt so passes the rule (another tool's pointer, as ``vault:`` is),
but cfgcore decrypts nothing spelt so and serves the text itself, so a user who
followed the fix served ``enc:...`` as the password.
"""

from __future__ import annotations

from cfgcore.validation_engine import validate_configuration


def _fix(config, env="production"):
    report = validate_configuration(config, env)
    [found] = [r for r in report.results if r.rule_id == "security.plaintext_secret"]
    return found.key_path, found.suggested_fix


def test_the_fix_names_the_command_that_writes_an_encrypted_value_for_the_key():
    path, fix = _fix({"database": {"password": "hunter2"}})
    assert path == "database.password"
    assert "cfgcore secrets encrypt --path database.password" in fix
    assert "ENC[...]" in fix
    assert "enc:" not in fix


def test_a_dotted_key_is_named_as_the_encrypt_command_reads_it():
    _, fix = _fix({"hosts": {"db.internal": {"password": "hunter2"}}})
    assert 'cfgcore secrets encrypt --path hosts["db.internal"].password' in fix
