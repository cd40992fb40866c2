"""Follow-ups the seventh audit's helpers asked for in files that were not theirs.

- ``record_metric`` with a value beyond ``MAX_METRIC_VALUE`` answered True on both
  evaluators' seed API and the manager's own method, and the metric writer then dropped
  the event (``metrics.refused``): the call said recorded, no report had it, and a
  guardrail check counted it. It answers False, as its docstring says.
- A message quoting a store URL cfgcore had already masked (``deploy:***@``) was masked
  again (``deploy:***redacted***@``) by the CLI's error line.
- A configuration followed from Redis without the redis package installed raised a bare
  ModuleNotFoundError; it names the extra to install.
"""

from __future__ import annotations

import enum
import os
import subprocess
import sys

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfgcore.details import MAX_METRIC_VALUE, metric_value
from cfgcore.dynamic_config import DynamicConfigurationManager
from cfgcore.engine import engine_class
from cfgcore.errors import SnapshotError
from cfgcore.runtime.audit import AuditLog, verify
from cfgcore.runtime.redaction import REDACTED, redact_text
from tests.test_record_metric_dropped import _test  # a two-variant test


@pytest.fixture
def manager(tmp_path, impl):
    engine = engine_class(impl).from_snapshot({"flags": {}})
    m = DynamicConfigurationManager(state_dir=tmp_path, engine=engine, record_usage=False)
    assert m.create_ab_test(_test())
    yield m
    m.close()


@pytest.mark.parametrize("body", ["seed api", "method"])
@pytest.mark.parametrize("value", [1e300, -1e300, 1e101, float("nan"), float("inf"), 10**400])
def test_a_metric_value_the_writer_refuses_is_not_recorded(manager, body, value):
    record = (
        manager.record_metric
        if body == "seed api"
        else DynamicConfigurationManager.record_metric.__get__(manager)
    )
    assert record("exp", "ctr", value, user_id="u1") is False
    assert record("exp", "ctr", MAX_METRIC_VALUE, user_id="u2") is True  # the bound itself
    assert record("exp", "ctr", -MAX_METRIC_VALUE, user_id="u3") is True
    assert manager.metrics.flush(10)
    assert manager.metrics.refused == 0  # nothing answered True was dropped afterwards
    assert sum(manager.metrics.users("exp", v) for v in ("control", "treatment")) == 2


@given(st.one_of(st.floats(), st.integers(), st.text(max_size=8), st.booleans(), st.none()))
def test_metric_value_is_a_float_within_the_bound_or_none(value):
    got = metric_value(value)
    expected: float | None = None
    # text is no number (cfgcore._numbers); a bool is a binary observation, 1 or 0
    if type(value) in (int, float, bool):
        try:
            expected = float(value)
        except OverflowError:
            expected = None
    if expected is not None and not -MAX_METRIC_VALUE <= expected <= MAX_METRIC_VALUE:
        expected = None
    assert got == expected or (got is None and expected is None)
    assert got is None or type(got) is float


def test_a_url_cfgcore_already_masked_reads_the_same_after_another_pass():
    once = "cannot reach redis://deploy:***@127.0.0.1:6379/0?namespace=x"
    assert redact_text(once) == once
    again = f"redis://deploy:{REDACTED}@h/0"
    assert redact_text(again) == again
    # a password that only starts like a mask is a password
    assert redact_text("redis://deploy:***hunter2@h/0") == f"redis://deploy:{REDACTED}@h/0"
    assert "hunter2" not in redact_text("a redis://d:hunter2@h/0 and redis://d:***@h/0")


def test_a_redis_config_source_without_redis_names_the_extra(tmp_path):
    code = (
        "import sys\n"
        "sys.modules['redis'] = None\n"
        "from cfgcore.config.manager import ConfigurationManager\n"
        "from cfgcore.errors import ConfigError\n"
        "m = ConfigurationManager(config_source='redis://u:pw-Zq81@127.0.0.1:1/0', environ={})\n"
        "try:\n"
        "    m.load_environment_config('staging')\n"
        "except ConfigError as e:\n"
        "    print('ConfigError', e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
        cwd=tmp_path, env={
            "PATH": "/usr/bin:/bin", "CFGCORE_STATE_DIR": str(tmp_path),
            **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
        },
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "ConfigError" in out.stdout and "pip install 'cfgcore[redis]'" in out.stdout
    assert "pw-Zq81" not in out.stdout + out.stderr


# -- flag documents (asked for by the evaluator audit) ---------------------------------------
# str and Enum: a StrEnum on every supported Python (enum.StrEnum is 3.11+), whose str()
# is not its text (``_Variant.A``).
class _Variant(str, enum.Enum):
    A = "a"
    B = "b"


def test_a_variant_named_by_a_str_subclass_is_served_as_its_text(impl):
    engine = engine_class(impl).from_snapshot(
        {"flags": {"f": {"variants": {_Variant.A: 1, _Variant.B: 2}, "default": _Variant.B}}}
    )
    served = engine.variant("f")
    assert type(served) is str and served == "b"
    assert engine.value("f") == 2
    assert type(engine.evaluate("f").variant) is str


@pytest.mark.parametrize(
    "name, data",
    [
        ("flags.yaml", "flags:\n  f:\n    variants: {a: !!binary aGVsbG8=, b: 1}\n    default: b"),
        (
            "flags.msgpack",
            msgspec.msgpack.encode(
                {"flags": {"f": {"variants": {"a": {"k": [b"\x00"]}, "b": 1}, "default": "b"}}}
            ),
        ),
    ],
)
def test_a_bytes_variant_value_is_refused_naming_its_key_path(impl, tmp_path, name, data):
    # A JSON store writes bytes as base64 text: the value's type would depend on the
    # store it was read from. Configuration files refuse bytes too.
    path = tmp_path / name
    if isinstance(data, str):
        path.write_text(data)
    else:
        path.write_bytes(data)
    with pytest.raises(SnapshotError) as err:
        engine_class(impl).from_file(str(path))
    assert "flags.f.variants.a" in str(err.value) and "bytes" in str(err.value)


# -- the audit log (asked for by the files audit) --------------------------------------------
def test_an_error_quoting_a_non_utf8_file_name_is_audited_and_reported(tmp_path):
    # A directory whose name is not UTF-8 reaches Python as text with a lone surrogate
    # (\udcff). Writing the failed load's audit entry raised UnicodeEncodeError, so the
    # CLI reported "'utf-8' codec can't encode..." instead of the missing file.
    bad = os.fsdecode(b"cfg\xff")
    (tmp_path / bad).mkdir()
    env = {
        "PATH": "/usr/bin:/bin", "CFGCORE_STATE_DIR": str(tmp_path / "s"),
        **{k: v for k, v in os.environ.items() if k == "PYTHONPATH"},
    }  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "cfgcore", "show", "--config-dir", bad, "-e", "development"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert out.returncode == 1
    assert "no configuration file for environment 'development'" in out.stderr
    assert "codec" not in out.stderr and "Traceback" not in out.stderr


def test_audit_entries_with_text_that_is_not_unicode_chain_and_verify(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl")
    first = log.append({"kind": "load", "error": "cannot read /etc/cfg\udcff/x\ud800"})
    second = log.append({"kind": "load", "path": "a.b", "new": {"k\udc80": ["v\udfff"]}})
    assert first["error"] == "cannot read /etc/cfg\\udcff/x\\ud800"
    assert second["new"] == {"k\\udc80": ["v\\udfff"]}
    assert second["prev"] == first["hash"]
    assert verify(str(tmp_path / "audit.jsonl")).ok


# -- a published configuration's file (asked for by the install audit) -----------------------
def test_a_fifo_in_place_of_a_published_configuration_file_does_not_block(tmp_path, monkeypatch):
    # The follower read the file it replaces (to put it back if the new version is
    # refused) with a plain open(): a FIFO there blocked the follower thread for good.
    import threading
    import types

    from cfgcore.config.published import PublishedSource

    monkeypatch.setenv("CFGCORE_STATE_DIR", str(tmp_path))

    class Owner:  # PublishedSource holds its manager by a weak reference only
        pass

    owner = Owner()
    source = PublishedSource(owner, "redis://127.0.0.1:1/0?namespace=fifo")  # type: ignore[arg-type]
    os.makedirs(source.dir)
    os.mkfifo(source.path("staging"))
    doc = types.SimpleNamespace(snapshot=types.SimpleNamespace(config={"app": {"n": 1}}))
    done: list[bytes | None] = []
    worker = threading.Thread(target=lambda: done.append(source._write("staging", doc)))
    worker.daemon = True
    worker.start()
    worker.join(20)
    if worker.is_alive():  # unblock the thread so the test process can end
        with open(source.path("staging"), "wb"):
            pass
    assert done == [None]
    with open(source.path("staging"), "rb") as fh:
        assert msgspec.json.decode(fh.read()) == {"app": {"n": 1}}


# -- a JSON flag file's refused update names the file (asked for by the eval review) ---------
def test_a_json_flag_store_refusing_a_non_finite_value_names_its_file(tmp_path):
    from cfgcore.runtime.flagstore import FileFlagStore
    from cfgcore.snapshot import snapshot_from_dict

    path = tmp_path / "flags.json"
    path.write_text('{"flags": {"f": {"default": "on"}}}\n')
    store = FileFlagStore(path)
    doc = {"flags": {"f": {"variants": {"a": {"t": float("inf")}}, "default": "a"}}}
    with pytest.raises(SnapshotError) as err:
        store.update(lambda old: snapshot_from_dict(doc))
    (problem,) = err.value.problems
    assert problem.file == str(path) and problem.path == "flags.f.variants.a.t"
    assert str(path) in str(err.value)


# -- the audit log's tail cache (found by a loaded full-suite run) ----------------------------
def test_a_log_file_that_reuses_our_inode_and_size_is_read_back_before_chaining(tmp_path):
    # A writer remembered (inode, size) of its last append to continue the chain without
    # reading the file back. Once other processes rotate the log, a new file can get the
    # writer's old, freed inode and grow to the same size: the writer then chained from
    # its stale link, writing entries numbered below (or not linked to) the ones before
    # them, and verify reported a removal or a reordering nobody made (seen in
    # test_audit3_sec_lock's rotation race under load). Here that coincidence is made
    # directly: the file is rewritten in place with another log of the same size.
    from cfgcore.runtime.audit import HEAD_SUFFIX

    path = tmp_path / "audit.jsonl"
    ours = AuditLog(path)
    ours.append({"kind": "change", "path": "a", "new": "x"})
    size, inode = path.stat().st_size, path.stat().st_ino
    for pad in range(size):  # another log of the same size: one byte of padding a byte
        (tmp_path / f"o{pad}").mkdir()
        other = tmp_path / f"o{pad}" / "audit.jsonl"  # the head record names the file
        AuditLog(other).append({"kind": "change", "path": "b", "new": "y" * pad})
        if other.stat().st_size >= size:
            break
    assert other.stat().st_size == size
    with open(path, "r+b") as fh:  # same inode, same size, another chain
        fh.write(other.read_bytes())
    (tmp_path / ("audit.jsonl" + HEAD_SUFFIX)).write_bytes(
        other.with_name("audit.jsonl" + HEAD_SUFFIX).read_bytes()
    )
    assert (path.stat().st_size, path.stat().st_ino) == (size, inode)
    assert verify(str(path)).ok
    ours.append({"kind": "change", "path": "a", "new": "z"})
    result = verify(str(path))
    assert result.ok, result
