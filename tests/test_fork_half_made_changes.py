"""What a process-wide lock guards, in a child forked while a thread of the parent was
half-way through a change under it.

The child renews the lock (tests/test_fork_module_locks.py), but the thread holding it
does not exist there: whatever it had changed and not yet finished stays as it was at
the fork. Each test freezes a thread inside such a change (between two of its steps),
forks, and checks that the child acts on the change as far as it went, consistently:
the shared validator runs the rule that was being added (its plans, a cache of the
rules, are rebuilt), the Prometheus collector the parent was registering is not
registered a second time (each family would be exposed twice), and debug mode being
turned on is on, and off again with the logger's level back, after disable_debug_mode().
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cfgcore

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

SRC = str(Path(cfgcore.__file__).parent.parent)

# A thread runs CHANGE, which calls pause() between two of its steps; the main thread
# forks there, and the child runs CHECK (under an alarm). The parent then lets the
# change finish and runs CHECK too: the answer the child must give.
_SCRIPT = """
import os, signal, sys, threading
{setup}
reached, release = threading.Event(), threading.Event()

def pause():
    if threading.current_thread() is not threading.main_thread():
        reached.set()
        release.wait()

def change():
{change}

holder = threading.Thread(target=change, daemon=True)
holder.start()
assert reached.wait(10)
pid = os.fork()
if pid == 0:
    signal.alarm(5)
    try:
{check}
    except BaseException as exc:
        print("child raised", repr(exc), flush=True)
        os._exit(3)
    os._exit(0)
code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
release.set()
holder.join()
print("parent", end=" ")
{check_parent}
print("child exit", code, flush=True)
"""


def _fork_mid_change(setup: str, change: str, check: str) -> list[str]:
    code = _SCRIPT.format(
        setup=textwrap.dedent(setup),
        change=textwrap.indent(textwrap.dedent(change), " " * 4),
        check=textwrap.indent(textwrap.dedent(check), " " * 8),
        check_parent=textwrap.dedent(check),
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": SRC},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()


_VALIDATOR = """
from cfgcore import validation_engine as m
from cfgcore.validation.core import ValidationRule

class NoDebug(ValidationRule):
    def validate(self, config, context=None):
        if config.get("debug"):
            return [self.create_result(False, "debug is on", key_path="debug")]
        return []

class Pausing(dict):
    # the validator's table of rules: the thread stops right after storing the rule
    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        pause()

v = m.get_config_validator()
m.validate_configuration({"debug": True}, "production")  # a plan kept for production
v._rules = Pausing(v._rules)
v._overrides = Pausing(v._overrides)
"""

_VALIDATOR_CHECK = """
report = m.validate_configuration({"debug": True}, "production")
print("no_debug ran:", any(r.rule_id == "no_debug" for r in report.results), flush=True)
"""


def test_a_rule_being_added_at_the_fork_runs_in_the_child():
    out = _fork_mid_change(_VALIDATOR, "v.add_rule(NoDebug('no_debug'))", _VALIDATOR_CHECK)
    # The child holds the rule (stored before the fork): it runs there as in the parent
    # (before, the plan kept for production did not have it, and the child never ran it).
    assert out == ["no_debug ran: True", "parent no_debug ran: True", "child exit 0"]


def test_a_collector_being_registered_at_the_fork_is_not_registered_twice():
    pytest.importorskip("prometheus_client")
    setup = """
        import prometheus_client
        from cfgcore.observability import prometheus as m

        class Pausing(prometheus_client.CollectorRegistry):
            # registered in the registry, not yet recorded by cfgcore, at the fork
            def register(self, collector):
                super().register(collector)
                pause()

        registry = Pausing()
        """
    check = """
        first = m.register(registry)
        assert m.register(registry) is first
        text = m.exposition(registry).decode()
        print("families:", text.count("# TYPE cfgcore_config_loads_total"), flush=True)
        """
    out = _fork_mid_change(setup, "m.register(registry)", check)
    # Before: the child registered another collector, which the registry refused
    # (ValueError: Duplicated timeseries), at every register() and every scrape.
    assert out == ["families: 1", "parent families: 1", "child exit 0"]


def test_debug_mode_being_turned_on_at_the_fork_is_on_and_can_be_turned_off_in_the_child():
    setup = """
        import logging
        from cfgcore.observability import debug as m

        root = logging.getLogger("cfgcore")
        set_level = root.setLevel

        def pausing(level):  # the logger at DEBUG, debug mode not yet said to be on
            set_level(level)
            pause()

        root.setLevel = pausing
        """
    check = """
        on = m.enabled()
        m.disable_debug_mode()
        print("on:", on, "then off:", m.enabled(), root.level, root.handlers, flush=True)
        """
    out = _fork_mid_change(setup, "m.enable_debug_mode()", check)
    # Before: off in the child with its logger left at DEBUG (10), which no
    # disable_debug_mode() there put back.
    assert out == ["on: True then off: False 0 []", "parent on: True then off: False 0 []",
                   "child exit 0"]  # fmt: skip
