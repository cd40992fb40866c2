"""``cfgcore.cli.main()`` called in-process (by tests, by tools embedding the CLI)
leaves cfgcore's logging as it found it.

The command sends cfgcore's records to stderr at its own level while it runs. Its undo
assigned the ``cfgcore`` logger's level directly, which skips the logging module's
cache of each child logger's enabled levels: after ``cfgcore -q ...`` a child that had
logged during the command (``cfgcore.manager``, at every manager's creation) stayed
closed to INFO though the application had ``cfgcore`` at INFO again. And it replaced
the logger's handler list with the one saved at the start, dropping a handler another
thread added meanwhile."""

from __future__ import annotations

import logging

from cfgcore.cli import _setup_logging
from tests.conftest import copy_bundled_config, run_cli
from tests.log_records import records


def test_a_child_logger_is_open_again_after_a_quiet_command(tmp_path, capsys):
    config = copy_bundled_config(tmp_path / "config")
    child = logging.getLogger("cfgcore.manager")
    with records(logging.INFO) as got:
        code, _out, _err = run_cli(capsys, "-q", "get", "app", "--config-dir", str(config))
        assert code == 0
        assert child.isEnabledFor(logging.INFO)
        child.info("after the command")
    assert [r.getMessage() for r in got] == ["after the command"]


def test_a_handler_added_while_a_command_runs_stays():
    root = logging.getLogger("cfgcore")
    before = list(root.handlers)
    undo = _setup_logging(logging.WARNING)
    added = logging.NullHandler()
    root.addHandler(added)  # (another thread, while the command runs)
    try:
        undo()
        assert added in root.handlers
        assert [h for h in root.handlers if h is not added] == before
    finally:
        root.removeHandler(added)
