"""The hint ``cfgcore publish`` adds to a refusal of flags for another environment
(``run it again with -e ENV``) names the environment the stored flag document records.
That text comes from the store, which another tool (or whoever can write to Redis) may
have written: it is shown as one shell word, so pasting the hint runs ``cfgcore
publish`` and nothing else. Real redis-server for the command; the hint's rule over
any recorded text with hypothesis.
"""

from __future__ import annotations

import argparse
import shlex

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cfgcore.cli import main
from cfgcore.cli.fleet import _environment_hint
from cfgcore.config.builder import MIGRATION_REPORT_STEM, ConfigBuilder, is_environment_name
from cfgcore.errors import ConfigError
from cfgcore.runtime.redis_store import FlagsEnvironmentError
from tests.fuzz import examples
from tests.texts import any_text

HINT = "run it again with "


def _hinted(message: str) -> list[str] | None:
    """The words of the suggested arguments, as a shell reads them (None: no hint)."""
    if HINT not in message:
        return None
    return shlex.split(message.split(HINT, 1)[1])


def test_a_hostile_recorded_environment_is_one_shell_word_in_the_hint(
    redis_server, operator_shell, tmp_path, capsys
):
    ns = "envhint"
    url = redis_server.url + f"?namespace={ns}&cache=off"
    r = redis_server.client()
    assert main(["publish", "--store", url, "-e", "staging", "--flags"]) == 0
    pwned = tmp_path / "pwned"
    hostile = f"staging; touch {pwned}"
    r.hset(f"{{{ns}}}:flags", "environment", hostile)
    capsys.readouterr()
    assert main(["publish", "--store", url, "--flags"]) == 1
    err = capsys.readouterr().err
    # no -e at all: that text names no environment a publish could take
    assert _hinted(err) is None and str(pwned) in err, err
    assert not pwned.exists()
    assert r.hget(f"{{{ns}}}:flags", "environment") == hostile.encode()  # nothing written


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=examples(200))
@given(recorded=any_text(max_size=220))
def test_the_hint_names_the_recorded_environment_as_one_word_or_not_at_all(monkeypatch, recorded):
    monkeypatch.delenv("CONFIG_ENVIRONMENT", raising=False)
    monkeypatch.delenv("CFGCORE_ENVIRONMENT", raising=False)
    args = argparse.Namespace(environment=None, store="redis://127.0.0.1:1/0")
    exc = FlagsEnvironmentError("refused", recorded=recorded, file="redis://127.0.0.1:1/0")
    out = _environment_hint(exc, args, "development")
    assert isinstance(out, FlagsEnvironmentError) and out.recorded == recorded
    words = _hinted(str(out))
    assert words is None or words == ["-e", recorded], str(out)
    named = is_environment_name(recorded) and recorded.isprintable() and len(recorded) <= 200
    # suggested exactly when -e would take it
    assert (words is not None) == named, str(out)


@settings(max_examples=examples(300))
@given(
    name=any_text(max_size=30) | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,20}", fullmatch=True)
)
def test_the_names_a_hint_may_suggest_are_the_ones_the_builder_takes(tmp_path_factory, name):
    builder = ConfigBuilder(
        str(tmp_path_factory.mktemp("cfg")), env_prefix="CFGCORE", transforms=(), environ={}
    )
    try:
        builder.resolve(name, None, None)
        taken = True
    except ConfigError:
        taken = False
    assert is_environment_name(name) == taken or not name.strip()


def test_the_migration_report_is_no_environment_a_hint_suggests():
    assert not is_environment_name(MIGRATION_REPORT_STEM)
    assert is_environment_name("staging") and is_environment_name(" Staging ")
