"""Shared fixtures.

``impl`` parametrises a test over both evaluator implementations (ids ``c`` and
``py``). The ``c`` case is skipped with a visible reason only when the extension is
not built; under CI=true a missing extension is a failure, not a skip.
"""

from __future__ import annotations

import atexit
import gc
import os
import shutil
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, settings

from cfgcore._compat import env_flag, implementations
from tests.fuzz import examples

IMPLS = implementations()
IN_CI = env_flag("CI")

# No test here judges speed (the machines are shared and noisy): hypothesis's per-example
# deadline (200 ms by default) and its too-slow health check are timing assertions, so they
# are off for every property test. A test's own settings (max_examples, ...) still apply
# on top of this profile. A test that sets no count runs examples(100), hypothesis's
# default scaled by CFGCORE_FUZZ_SCALE as every explicit count is (tests/fuzz.py).
settings.register_profile(
    "cfgcore",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    max_examples=examples(100),
)
settings.load_profile("cfgcore")


_ISOLATED = ("CFGCORE_STATE_DIR", "CFGCORE_FLAG_STORE", "CFGCORE_CONFIG_DIR")
_OUTER: dict[str, str | None] = {}


def pytest_configure(config):
    """The same isolation as ``_private_state_dir``, from before test modules are
    imported: a module that builds a manager at import time (test_manager_properties)
    must not serve, or record flag usage into, the user's real state directory."""
    _OUTER.update({k: os.environ.get(k) for k in _ISOLATED})
    state = tempfile.mkdtemp(prefix="cfgcore-test-state-")
    # Removed at exit, after the exit flushes registered later (atexit runs last-in
    # first-out): each test run used to leave one directory behind in the temp dir.
    atexit.register(shutil.rmtree, state, ignore_errors=True)
    os.environ["CFGCORE_STATE_DIR"] = state
    os.environ.pop("CFGCORE_FLAG_STORE", None)
    os.environ.pop("CFGCORE_CONFIG_DIR", None)


def pytest_unconfigure(config):
    # Processes' exit flushes (flag usage) may still write here: the directory goes at exit.
    for key, value in _OUTER.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _sendable(text: str) -> str:
    """``text`` with what UTF-8 cannot encode (lone surrogates) escaped as ``\\udc00``."""
    if text.isascii():
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Reports reach pytest-xdist's controller even when they hold a lone surrogate.

    The fuzz tests name flags and attributes ``"\\udc00"`` and the compiler's warnings
    name the flag: a captured log (of a passing test too) or a failure message holding
    one could not be sent by the worker, and the run ended with INTERNALERROR
    "Unexpectedly no active workers available", naming no test. Escaped here, the
    report shows the text as ``\\udc00``."""
    outcome = yield
    report = outcome.get_result()
    report.sections = [(title, _sendable(text)) for title, text in report.sections]
    if report.failed and report.longrepr is not None:
        text = str(report.longrepr)
        if _sendable(text) != text:
            report.longrepr = _sendable(text)


def pytest_collection_finish(session):
    """What collection built lives to the end of the run: the test modules, their
    parameters and hypothesis strategies, about a million objects per worker. Frozen
    (``gc.freeze``), the collector's full passes during the tests stop walking them
    again; objects the tests make are collected as before. Measured on 32 test files
    with ``-n 0``: 12% less CPU, and the time in full collections from 6.9 s to 3.0 s.
    (``gc.get_objects()`` no longer lists frozen objects; no test looks for one.)"""
    gc.collect()
    gc.freeze()


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: two workers per CPU, not one. Many tests here wait on something
    real (a Redis server, a subprocess running the CLI, a file watcher, a forked
    worker), so with one worker per CPU the CPUs sit a third idle (measured on 2 cores:
    workers at 60-70% CPU). Measured on 2 cores, whole suite: 3 workers kept the CPUs
    185% busy (649-684 s), 4 workers 194% (618 s). Nothing here judges speed, so the
    tests do not mind sharing a CPU. A worker peaks near 1 GB (the large-document
    tests), so a machine with many CPUs and little memory gets one per GB, never fewer
    than one per CPU.
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still sets the number, as in pytest-xdist."""
    raw = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if raw:
        try:
            return max(int(raw), 0)
        except ValueError:
            return None  # pytest-xdist's own hook says so and picks the number
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if cpus == 1:
        return 1
    try:
        gigabytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**30
    except (AttributeError, ValueError, OSError):  # (no sysconf: Windows)
        gigabytes = 2 * cpus
    return max(cpus, min(2 * cpus, gigabytes))


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory):
    """Tests never read or write the user's real state directory (~/.local/state/cfgcore)
    nor follow a flag store or config directory set in the developer's environment."""
    saved = {k: os.environ.get(k) for k in ("CFGCORE_STATE_DIR", "CFGCORE_FLAG_STORE",
                                            "CFGCORE_CONFIG_DIR")}  # fmt: skip
    os.environ["CFGCORE_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    os.environ.pop("CFGCORE_FLAG_STORE", None)
    os.environ.pop("CFGCORE_CONFIG_DIR", None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _debug_mode_off():
    """A test that turned debug mode on (directly, or through a manager's
    enable_debug_mode) does not leave every later evaluation logging."""
    yield
    debug = sys.modules.get("cfgcore.observability.debug")
    if debug is not None and debug.enabled():
        debug.disable_debug_mode()


@pytest.fixture(autouse=True)
def _no_usage_recorder_threads():
    """A usage recorder's thread takes every engine's evaluation counts (through the
    process-wide totals) at its interval, so one started by an earlier test (or a
    module-scoped manager) would take counts away in the middle of a test comparing two
    engines' counts. During each test only the recorders it starts run: those running
    before are paused (stopped, flushed) and restarted after it; those it started and
    left running are stopped and forgotten."""
    usage = sys.modules.get("cfgcore.runtime.usage")
    paused = [r for r in usage.recorders() if r.running] if usage is not None else []
    for recorder in paused:
        recorder.close()
    known = set(map(id, usage.recorders())) if usage is not None else set()
    yield
    usage = sys.modules.get("cfgcore.runtime.usage")
    if usage is None:
        return
    for recorder in usage.recorders():
        if id(recorder) not in known:
            recorder.close()
            with usage._RECORDERS_LOCK:
                if usage._RECORDERS.get(recorder.path) is recorder:
                    del usage._RECORDERS[recorder.path]
    for recorder in paused:
        if usage._RECORDERS.get(recorder.path) is recorder:
            recorder.start()


@pytest.fixture
def fresh_evaluation_totals():
    """The process-wide evaluation totals (what a scrape exports as
    ``cfgcore_flag_evaluations_total``) hold this test's evaluations alone, the
    worker's own restored afterwards. A worker late in the suite keeps the series of
    every flag its earlier tests evaluated (an hour, up to the series limit): a test
    scraping and parsing them dozens of times took 36 s where it takes 1 s alone, and
    past the limit its own flags would be counted in the overflow series."""
    from cfgcore.observability import evaluations

    evaluation_totals = evaluations.evaluation_totals()  # (created, as a scrape would)
    saved = evaluations._TOTALS
    evaluations._TOTALS = evaluations.EvaluationTotals(retain=evaluation_totals.retain)
    try:
        yield evaluations._TOTALS
    finally:
        evaluations._TOTALS = saved


@pytest.fixture(autouse=True)
def _no_remembered_secrets():
    """Every test starts and ends with an empty registry of resolved secrets. The
    registry is process-wide and masks each remembered secret in every message and log
    line, so a secret one test resolved (a value "security" once) was masked in a later
    test's expected text in the same worker ("security.api_keys" read "***.api_keys").
    A test that checks masking resolves its secrets itself (or in a function-scoped
    fixture, which runs after this one): a module-scoped fixture's secrets are
    forgotten before each test."""
    secrets = sys.modules.get("cfgcore.runtime.secrets")
    if secrets is not None:
        secrets.forget_secrets()
    yield
    secrets = sys.modules.get("cfgcore.runtime.secrets")
    if secrets is not None:
        secrets.forget_secrets()


@pytest.fixture(params=["c", "py"])
def impl(request):
    mod = IMPLS.get(request.param)
    if mod is None:
        if IN_CI:
            pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
        pytest.skip("the compiled extension cfgcore._eval is not built here")
    return mod


@pytest.fixture
def python_atomic_write(monkeypatch):
    """``atomic_write`` through its Python steps (not ``cfgcore._atomic``'s one C call),
    for a test that watches or fails those steps through ``os`` (``os.fsync`` replaced).
    tests/test_atomic_write_gil.py checks that both paths agree."""
    from cfgcore.runtime import atomicio

    monkeypatch.setattr(atomicio, "_native", None)


SHARED = os.path.join(os.path.dirname(__file__), "..", "..", "shared")


@pytest.fixture
def make(impl):
    """``make(snapshot_dict)`` -> an Engine of the parametrised implementation."""
    from cfgcore.engine import engine_class

    cls = engine_class(impl)

    def build(snapshot):
        return cls.from_snapshot(snapshot)

    return build


@pytest.fixture(scope="session")
def make_py_and_c():
    """Engine factories for every built implementation (for hypothesis tests, which
    cannot take a function-scoped parametrised fixture)."""
    from cfgcore.engine import engine_class

    if "c" not in IMPLS and IN_CI:
        pytest.fail("the compiled extension cfgcore._eval is not built (CI=true)")
    return [engine_class(mod).from_snapshot for mod in IMPLS.values()]


def copy_bundled_config(dest, *, flags: bool = False):
    """Copy the bundled configuration directory into ``dest`` (created), with the
    bundled flags file beside it when ``flags``; returns ``dest``."""
    import shutil

    from cfgcore.config.manager import default_config_dir

    defaults = default_config_dir()
    dest.mkdir()
    for name in os.listdir(defaults):
        shutil.copy(os.path.join(defaults, name), dest / name)
    if flags:
        shutil.copy(os.path.join(os.path.dirname(defaults), "flags.yaml"), dest / "flags.yaml")
    return dest


@pytest.fixture
def bundled_config(tmp_path):
    """A copy of the bundled configuration directory with the bundled flags beside it."""
    return copy_bundled_config(tmp_path / "config", flags=True)


@pytest.fixture
def manager(bundled_config):
    """A configuration manager serving :func:`bundled_config` for staging, closed after
    the test (the probe and health tests' manager; a file that needs another manager
    defines its own ``manager`` fixture, which takes precedence)."""
    from cfgcore.config.manager import ConfigurationManager

    m = ConfigurationManager(bundled_config, environ={})
    m.load_environment_config("staging")
    yield m
    m.close()


@pytest.fixture
def operator_shell(bundled_config, tmp_path, monkeypatch):
    """The environment an operator runs a printed repair command in (the fleet tests):
    the configuration directory named by $CFGCORE_CONFIG_DIR, no $CONFIG_ENVIRONMENT (so
    a publish without -e is for the default, development)."""
    from tests.fleet_repair import JWT

    monkeypatch.setenv("CFGCORE_CONFIG_DIR", str(bundled_config))
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("JWT_SIGNING_KEY", JWT)
    monkeypatch.delenv("CONFIG_ENVIRONMENT", raising=False)
    monkeypatch.delenv("CFGCORE_ENVIRONMENT", raising=False)
    return bundled_config


@pytest.fixture
def redis_binary():
    """The redis-server binary; skips (fails under CI=true) when it is not installed."""
    from tests.redis_server import SERVER

    if SERVER is None:
        if IN_CI:
            pytest.fail("redis-server is not installed (CI=true; .ci/run installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return SERVER


@pytest.fixture
def redis_server(redis_binary, tmp_path):
    """A real redis-server on a free loopback port (tests/redis_server.py), stopped after."""
    from tests.redis_server import RedisServer

    server = RedisServer(str(tmp_path / "redis")).start()
    yield server
    server.stop()


@pytest.fixture
def checkout_test(tmp_path, monkeypatch, capsys):
    """A started A/B test ``checkout`` (control/green 50/50, metric ``conversion``),
    made with the CLI in a state directory of its own; returns that directory."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    code, _, err = run_cli(
        capsys, "-q", "experiment", "create", "checkout", "--split", "control=50,green=50",
        "--metric", "conversion", "--start",
    )  # fmt: skip
    assert code == 0, err
    return tmp_path / "state"


def scaffolded_config(tmp_path, monkeypatch, *environments, select="staging"):
    """``cfgcore setup`` of ``environments`` (staging alone by default) into
    ``tmp_path/config``, with the process environment cleared of CFGCORE*/CONFIG_*
    variables and the state directory in ``tmp_path/state`` (flag usage is recorded
    there, never in the user's own). ``select`` picks directory and environment through
    the environment, as a pod would (None: not selected). Returns the directory."""
    from cfgcore.setup import main as setup_main

    d = tmp_path / "config"
    args = [a for env in environments or ("staging",) for a in ("-e", env)]
    assert setup_main([*args, "-o", str(d)]) == 0
    for var in list(os.environ):
        if var.startswith("CFGCORE") or var.startswith("CONFIG_"):
            monkeypatch.delenv(var)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    if select is not None:
        monkeypatch.setenv("CFGCORE_CONFIG_DIR", str(d))
        monkeypatch.setenv("CONFIG_ENVIRONMENT", select)
    return d


def run_cli(capsys, *argv):
    """``cfgcore ARGV...`` in-process: ``(exit status, stdout, stderr)``."""
    from cfgcore.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def apply_env(monkeypatch):
    """``apply_env(setup)`` sets each of ``setup.env``'s variables for the test."""

    def apply(setup):
        for k, v in setup.env.items():
            monkeypatch.setenv(k, v)

    return apply


@pytest.fixture
def stores():
    """``stores(url)`` opens a Redis flag store (cfgcore.runtime.redis_store), closed
    after the test."""
    from cfgcore.runtime.redis_store import RedisFlagStore

    opened: list[RedisFlagStore] = []

    def open_(url: str) -> RedisFlagStore:
        store = RedisFlagStore(url)
        opened.append(store)
        return store

    yield open_
    for s in opened:
        s.close()


@pytest.fixture
def private_state(tmp_path, monkeypatch, no_access_policy):
    """A manager built with no arguments keeps its state in this test's directory: no
    configuration directory or flag store from the environment, no access policy, the
    state directory under ``tmp_path``, no usage file."""
    for name in ("CFGCORE_CONFIG_DIR", "CFGCORE_FLAG_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CFGCORE_USAGE", "0")


@pytest.fixture
def no_access_policy(monkeypatch):
    """No access policy and no authorize hook, before and after the test."""
    from cfgcore.runtime import policy

    monkeypatch.delenv("CFGCORE_ACCESS_POLICY", raising=False)
    policy.set_policy(None)
    policy.set_authorizer(None)
    yield
    policy.set_policy(None)
    policy.set_authorizer(None)


def minimal_config_dir(tmp_path, monkeypatch):
    """``tmp_path/config`` with a base and a development file (no flags file), and the
    state directory under ``tmp_path``: a configuration manager's smallest setup."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    d = tmp_path / "config"
    d.mkdir()
    (d / "base.yaml").write_text("app: {name: demo}\n")
    (d / "development.yaml").write_text("environment: development\n")
    return d


@pytest.fixture
def config_manager_factory(tmp_path):
    """``make(config_dir, *, hot)``: a ConfigurationManager on ``config_dir`` loaded for
    development (hot reload on with ``hot``), each with its own audit log; all closed
    after the test."""
    from cfgcore.config.manager import ConfigurationManager

    made = []

    def make(config_dir, *, hot):
        m = ConfigurationManager(
            str(config_dir),
            environ={},
            record_usage=False,
            audit_log=str(tmp_path / f"audit{len(made)}.jsonl"),
        )
        made.append(m)
        m.load_environment_config("development")
        if hot:
            m.enable_hot_reload()
        return m

    yield make
    for m in made:
        m.close()


def started_experiment_state(tmp_path, monkeypatch, capsys):
    """A state directory under ``tmp_path`` (the working directory) holding a started
    A/B test ``t`` (control=50, b=50), created through the CLI."""
    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("CFGCORE_FLAG_STORE", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "experiment", "create", "t", "--split", "control=50,b=50",
                           "--start")  # fmt: skip
    assert code == 0, err
    return tmp_path
