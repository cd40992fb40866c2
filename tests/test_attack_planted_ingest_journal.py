"""The journal of an unfinished ``cfgcore experiment ingest``, planted by another user
who may create files in the state directory (``CFGCORE_STATE_DIR`` in a shared, sticky
directory such as ``/tmp``).

The journal names, at any path, the files its take-back rewrites (each planned append,
cut out where the file holds it) and the record of ingested inputs it puts back. Every
ingest and report takes a dead ingest's journal back first: a planted one made the
service's user cut a line out of any file it may write (``require_auth: true`` out of
an application's configuration, the file rewritten with the logs' mode) and write a
record of the planter's choosing anywhere. A journal that is not this user's, root's or
the state directory owner's, or that is a symlink, is refused now, naming it, and
nothing is rewritten. Real files and owners: the ``chown`` needs root.
"""

from __future__ import annotations

import json
import os

import pytest

from cfgcore.errors import ConfigError
from cfgcore.experiments.exposures import recover_appends
from tests.conftest import run_cli as run

pytestmark = pytest.mark.skipif(
    os.name == "nt" or not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="POSIX owners; chown needs root",
)

OTHER = 12345  # another local user
APP = "security:\n  require_auth: true\n  other: 1\n"


def _plant(journal, victim_dir) -> None:
    journal.write_text(
        json.dumps({
            "appends": [{"path": str(victim_dir / "app.yaml"), "offset": 10,
                         "data": "  require_auth: true\n"}],
            "ledger": {"path": str(victim_dir / "planted.json"), "key": "k",
                       "before": {"owned": "by them"}},
        })
    )  # fmt: skip
    os.chown(journal, OTHER, OTHER)


@pytest.fixture
def victim(tmp_path):
    d = tmp_path / "app"
    d.mkdir()
    (d / "app.yaml").write_text(APP)
    return d


def _untouched(victim) -> None:
    assert (victim / "app.yaml").read_text() == APP
    assert sorted(p.name for p in victim.iterdir()) == ["app.yaml"]  # no record, no lock


def test_another_users_journal_in_a_shared_directory_is_refused(tmp_path, victim):
    shared = tmp_path / "state"
    shared.mkdir()
    shared.chmod(0o1777)
    journal = shared / "flags.ingest-journal.json"
    _plant(journal, victim)
    with pytest.raises(ConfigError) as err:
        recover_appends(str(journal))
    assert str(journal) in str(err.value) and f"belongs to uid {OTHER}" in str(err.value)
    _untouched(victim)
    assert journal.exists()  # left for someone to look at
    # the service's own journal there (or the directory owner's) is taken back
    os.chown(journal, os.geteuid(), os.getegid())
    assert recover_appends(str(journal)) is True


def test_a_symlinked_journal_is_refused(tmp_path, victim):
    shared = tmp_path / "state"
    shared.mkdir()
    theirs = tmp_path / "elsewhere.json"
    _plant(theirs, victim)
    (shared / "flags.ingest-journal.json").symlink_to(theirs)
    with pytest.raises(ConfigError, match="symlink"):
        recover_appends(str(shared / "flags.ingest-journal.json"))
    _untouched(victim)


def test_ingest_and_report_refuse_a_planted_journal(checkout_test, tmp_path, victim, capsys):
    checkout_test.chmod(0o1777)
    journal = checkout_test / "flags.ingest-journal.json"
    _plant(journal, victim)
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"test": "checkout", "user": "u1", "variant": "green"}) + "\n")
    for args in (("experiment", "ingest", str(events)), ("experiment", "report", "checkout")):
        code, _, err = run(capsys, *args)
        assert code == 1, args
        assert "flags.ingest-journal.json" in err and f"uid {OTHER}" in err
    _untouched(victim)
    assert not (checkout_test / "flags.exposures.jsonl").exists() or (
        "u1" not in (checkout_test / "flags.exposures.jsonl").read_text()
    )
