"""A flag write beside CPU-bound threads: ``atomic_write`` makes its system calls in one
C call that releases the GIL once (``cfgcore._atomic``), where each call made from
Python was a GIL hand-over that a CPU-bound thread of the process could stretch to a
switch interval (5 ms): about 120 system calls and 160-545 ms a flag change beside two
such threads (benchmarks/flag_write_gil.py). And a change of a small flag document
starts no thread (the reclaimer's, two hand-overs more each way).

The C steps and the Python steps (the reference, and what Windows and a build without
a compiler use) must agree: the same file, mode and owner, the same errors, and no
temp file left behind on any failure. Every test here runs both (``path``). No timing
is asserted: the figures are in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading

import pytest

import cfgcore
from cfgcore import _reclaim
from cfgcore.runtime import atomicio
from cfgcore.runtime.atomicio import atomic_write

NATIVE = getattr(atomicio, "NATIVE", False)
PATHS = ["c", "py"] if NATIVE else ["py"]
# A build with the compiled evaluator has the compiled write steps too (POSIX).
BUILT = cfgcore.IMPLEMENTATION == "c" and os.name != "nt"
needs_build = pytest.mark.skipif(not BUILT, reason="built without the compiled extensions")
needs_native = pytest.mark.skipif(not NATIVE, reason="built without cfgcore._atomic")
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX modes, owners and links")


@pytest.fixture(params=PATHS)
def path(request, monkeypatch):
    """Which steps atomic_write takes: "c" (cfgcore._atomic) or "py" (the reference)."""
    if request.param == "py":
        monkeypatch.setattr(atomicio, "_native", None, raising=False)
    return request.param


def _files(directory) -> list[str]:
    return sorted(os.listdir(directory))


def _outcome(directory, run):
    """What a write did: the error (type, errno, file names, the temp's as a pattern) and
    the files left (name, content, mode, owner)."""
    try:
        run()
        error = None
    except OSError as exc:
        names = [
            None if n is None else os.fspath(n).replace(os.fspath(directory), "<dir>")
            for n in (exc.filename, exc.filename2)
        ]
        # The temp file's random part differs from one write to the next.
        names = [n if n is None or not n.endswith(".tmp") else n.rsplit(".", 2)[0] + ".*.tmp"
                 for n in names]  # fmt: skip
        error = (type(exc), exc.errno, exc.strerror, *names)
    files = {}
    for name in _files(directory):
        st = os.lstat(os.path.join(directory, name))
        content = None
        if stat.S_ISREG(st.st_mode):
            with open(os.path.join(directory, name), "rb") as fh:
                content = fh.read()
        files[name] = (content, stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                       st.st_uid, st.st_gid)  # fmt: skip
    return error, files


@pytest.fixture
def both(tmp_path, monkeypatch):
    """Run ``scenario(directory)`` with the C steps and with the Python steps, each in a
    fresh directory; return both outcomes."""

    def run(scenario):
        outcomes = {}
        for name in PATHS:
            directory = tmp_path / name
            directory.mkdir()
            with monkeypatch.context() as m:
                if name == "py":
                    m.setattr(atomicio, "_native", None, raising=False)
                write = scenario(directory)
                outcomes[name] = _outcome(directory, write)
        return outcomes

    return run


def _same(outcomes):
    first = next(iter(outcomes.values()))
    assert all(o == first for o in outcomes.values()), outcomes
    return first


# ---------------------------------------------------------------- the same results


@needs_build
def test_the_compiled_steps_are_the_ones_used_where_built():
    from cfgcore import _atomic

    assert atomicio._native is _atomic and NATIVE


def test_no_extensions_takes_the_python_steps(tmp_path):
    """CFGCORE_NO_EXTENSIONS=1 (every module's pure-Python reference) covers these too."""
    code = (
        "import sys; from cfgcore.runtime import atomicio\n"
        f"atomicio.atomic_write({str(tmp_path / 'f.yaml')!r}, b'x')\n"
        "print(atomicio.NATIVE, atomicio._native)\n"
    )
    env = {**os.environ, "CFGCORE_NO_EXTENSIONS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "None"]
    assert (tmp_path / "f.yaml").read_bytes() == b"x" and _files(tmp_path) == ["f.yaml"]


@posix_only
@pytest.mark.parametrize("umask", [0o022, 0o077])
@pytest.mark.parametrize("mode", [None, 0o600, 0o640, 0o755])
@pytest.mark.parametrize("existing", [None, 0o600, 0o664, 0o4755])
def test_content_and_mode_agree(both, umask, mode, existing):
    def scenario(d):
        if existing is not None:
            (d / "flags.yaml").write_bytes(b"old")
            os.chmod(d / "flags.yaml", existing)
        return lambda: atomic_write(d / "flags.yaml", b"flags: {}\n", mode=mode)

    old = os.umask(umask)
    try:
        error, files = _same(both(scenario))
    finally:
        os.umask(old)
    assert error is None and list(files) == ["flags.yaml"]
    content, _, got, _, _ = files["flags.yaml"]
    assert content == b"flags: {}\n"
    if mode is not None:
        assert got == mode
    elif existing is not None:
        assert got == existing & 0o777  # (never the set-user-ID bit)
    else:
        assert got == 0o644 & ~umask


@posix_only
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_the_owner_is_kept_as_root(both):
    def scenario(d):
        (d / "app.yaml").write_bytes(b"old")
        os.chown(d / "app.yaml", 4321, 8765)
        os.chmod(d / "app.yaml", 0o640)
        return lambda: atomic_write(d / "app.yaml", b"new")

    error, files = _same(both(scenario))
    assert error is None and files["app.yaml"] == (b"new", stat.S_IFREG, 0o640, 4321, 8765)


@posix_only
@pytest.mark.parametrize("follow", [False, True])
def test_a_symlink_at_the_target(both, follow):
    def scenario(d):
        (d / "real.yaml").write_bytes(b"old")
        os.chmod(d / "real.yaml", 0o600)
        (d / "link.yaml").symlink_to("real.yaml")
        return lambda: atomic_write(d / "link.yaml", b"new", follow_symlinks=follow)

    error, files = _same(both(scenario))
    assert error is None
    if follow:  # the file it points to is replaced, with its mode; the link stays
        assert files["link.yaml"][1] == stat.S_IFLNK
        assert files["real.yaml"][:3] == (b"new", stat.S_IFREG, 0o600)
    else:  # the link is replaced; it lends the new file nothing
        assert files["link.yaml"][:2] == (b"new", stat.S_IFREG)
        assert files["real.yaml"][0] == b"old"


def test_bytes_of_every_size(both):
    data = os.urandom(3 * 1024 * 1024 + 17)  # more than one write() may take at once

    def scenario(d):
        return lambda: atomic_write(d / "big.msgpack", data)

    error, files = _same(both(scenario))
    assert error is None and files["big.msgpack"][0] == data


# --------------------------------------------------------- the same errors, no litter


@posix_only
def test_a_missing_directory(both):
    error, files = _same(both(lambda d: lambda: atomic_write(d / "gone" / "f.yaml", b"x")))
    assert error == (FileNotFoundError, errno.ENOENT, os.strerror(errno.ENOENT),
                     "<dir>/gone/.f.yaml.*.tmp", None)  # fmt: skip
    assert files == {}


@posix_only
def test_a_file_where_a_directory_should_be(both):
    def scenario(d):
        (d / "plain").write_bytes(b"")
        return lambda: atomic_write(d / "plain" / "f.yaml", b"x")

    error, files = _same(both(scenario))
    assert error == (NotADirectoryError, errno.ENOTDIR, os.strerror(errno.ENOTDIR),
                     "<dir>/plain/f.yaml", None)  # fmt: skip
    assert list(files) == ["plain"]


@posix_only
def test_a_rename_over_a_directory_is_refused_and_the_temp_removed(both):
    def scenario(d):
        (d / "flags.yaml").mkdir()
        (d / "flags.yaml" / "inside").write_bytes(b"")
        return lambda: atomic_write(d / "flags.yaml", b"x")

    error, files = _same(both(scenario))
    assert error[0] in (IsADirectoryError, OSError) and error[1] in (errno.EISDIR, errno.ENOTEMPTY)
    assert error[3] == "<dir>/.flags.yaml.*.tmp" and error[4] == "<dir>/flags.yaml"
    assert list(files) == ["flags.yaml"]  # no temp file


def test_a_name_holding_a_nul_byte_is_refused(tmp_path, path):
    """A C string ends at the NUL: the name would be another, shorter one."""
    with pytest.raises(ValueError, match="null"):
        atomic_write(str(tmp_path / "flags.yaml\x00.other"), b"x")
    assert _files(tmp_path) == []


@posix_only
@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="RLIMIT_FSIZE")
def test_a_write_past_the_file_size_limit_leaves_the_old_file(both):
    """A real failure of the write step (the disk full, a quota): EFBIG under a file
    size limit, in both paths, with the old file whole and no temp file."""

    def scenario(d):
        (d / "flags.yaml").write_bytes(b"old")
        return lambda: atomic_write(d / "flags.yaml", b"x" * 8192)

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        outcomes = both(scenario)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    error, files = _same(outcomes)
    assert error == (OSError, errno.EFBIG, os.strerror(errno.EFBIG), None, None)
    assert list(files) == ["flags.yaml"] and files["flags.yaml"][0] == b"old"


@posix_only
def test_an_interrupt_leaves_no_temp_file(tmp_path, path, monkeypatch):
    """A KeyboardInterrupt arriving while the temp file exists (in C, a signal is
    handled once the call returns: here, the call is made to end with one pending)."""
    target = tmp_path / "flags.yaml"
    target.write_bytes(b"old")
    if path == "c":
        real = atomicio._native

        class Interrupted:
            def __getattr__(self, name):
                return getattr(real, name)

            @staticmethod
            def replace(target_b, directory_b, tmp_b, data, mode):
                with open(tmp_b, "wb") as fh:  # where the C steps stood
                    fh.write(data[:3])
                raise KeyboardInterrupt

        monkeypatch.setattr(atomicio, "_native", Interrupted())
    else:

        def interrupted(fd):
            raise KeyboardInterrupt

        monkeypatch.setattr(atomicio.os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new content")
    assert _files(tmp_path) == ["flags.yaml"] and target.read_bytes() == b"old"


@needs_native
def test_a_taken_temp_name_is_skipped(tmp_path, monkeypatch):
    """O_EXCL refuses a name that exists (planted, or another writer's): another name
    is tried, and the file of that name is left alone."""
    names = iter(["aaaaaaaaaaaa", "bbbbbbbbbbbb"])
    monkeypatch.setattr(atomicio.secrets, "token_hex", lambda n: next(names))
    (tmp_path / ".f.yaml.aaaaaaaaaaaa.tmp").write_bytes(b"someone's")
    atomic_write(tmp_path / "f.yaml", b"mine")
    assert (tmp_path / "f.yaml").read_bytes() == b"mine"
    assert (tmp_path / ".f.yaml.aaaaaaaaaaaa.tmp").read_bytes() == b"someone's"
    assert _files(tmp_path) == [".f.yaml.aaaaaaaaaaaa.tmp", "f.yaml"]


# ------------------------------------------------------------ fewer GIL hand-overs


@needs_build
def test_a_flag_write_makes_its_file_steps_in_one_call(tmp_path, monkeypatch):
    """``set_feature_flag`` on a file store: neither the flag file's nor its version
    sidecar's temp-file steps (create, write, fsync, rename, directory fsync) are made
    from Python, each one a GIL hand-over beside a CPU-bound thread. (They were: four
    fsyncs, two renames.)"""
    from cfgcore.dynamic_config import DynamicConfigurationManager, FeatureFlag

    flags = tmp_path / "flags.yaml"
    flags.write_text("flags:\n  experimental_ml_models: {default: 'off'}\n")
    m = DynamicConfigurationManager(str(flags), state_dir=tmp_path / "state")
    made: list[tuple[str, str]] = []
    for name in ("fsync", "replace", "fchmod", "fdopen"):
        real = getattr(os, name)
        monkeypatch.setattr(
            atomicio.os, name,
            lambda *a, _n=name, _r=real, **k: made.append((_n, str(a[-1]))) or _r(*a, **k),
        )  # fmt: skip
    try:
        m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, 30.0)
    finally:
        monkeypatch.undo()
        m.close()
    # (The audit log's own files are another writer's: its head record is renamed.)
    assert [(n, a) for n, a in made if "audit" not in a] == []
    assert m.get_feature_flags_status()["experimental_ml_models"]["rollout_percentage"] == 30.0


@pytest.mark.skipif(not _reclaim._EXACT_COUNTS, reason="reference counts are not exact here")
def test_a_change_of_a_small_flag_document_starts_no_thread(tmp_path, monkeypatch):
    """The older compiled snapshot of a document under LARGE_FLAGS flags is freed by
    whoever drops it last, as Engine.swap leaves it: starting the reclaimer's thread
    for it (on every flag change) cost a hand-over or two each way beside a CPU-bound
    thread, to free what takes well under a switch interval to free."""
    from cfgcore.dynamic_config import DynamicConfigurationManager, FeatureFlag

    flags = tmp_path / "flags.yaml"
    flags.write_text("flags:\n  experimental_ml_models: {default: 'off'}\n")
    m = DynamicConfigurationManager(str(flags), state_dir=tmp_path / "state")
    assert _reclaim.drain()
    started: list[str] = []
    real = threading.Thread.start
    monkeypatch.setattr(threading.Thread, "start", lambda t: started.append(t.name) or real(t))
    try:
        for pct in (10.0, 20.0, 30.0):
            m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, pct)
    finally:
        monkeypatch.undo()
        m.close()
    assert "cfgcore-reclaim" not in started


@needs_native
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_the_compiled_steps_are_durable_in_order(tmp_path):
    """What the kernel is asked, in order: the temp file created exclusively, its mode,
    its data, fsync, close, the rename, then the directory's fsync (strace's record)."""
    target = tmp_path / "flags.yaml"
    target.write_bytes(b"old")
    log = tmp_path / "trace"
    code = (
        "import sys; from cfgcore.runtime.atomicio import atomic_write\n"
        "sys.stderr.write('--start--\\n'); sys.stderr.flush()\n"
        f"atomic_write({str(target)!r}, b'new data', mode=0o640)\n"
    )
    done = subprocess.run(
        ["strace", "-qq", "-o", str(log), "-e",
         "trace=openat,open,write,fchmod,fchown,fsync,close,rename,renameat,renameat2",
         sys.executable, "-c", code],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if done.returncode != 0 or not log.exists():
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()[-200:]}")
    calls = log.read_text().split("--start--", 1)[1].splitlines()[1:]
    steps = []
    for line in calls:
        name = line.split("(", 1)[0]
        if name in ("openat", "open") and ".tmp" in line and "O_EXCL" in line:
            steps.append("create")
        elif name in ("openat", "open") and f'"{tmp_path}"' in line:
            steps.append("open dir")
        elif name.startswith("rename") and ".tmp" in line:
            steps.append("rename")
        elif name in ("fchmod", "fsync") or (name == "write" and "new data" in line):
            steps.append(name)
    assert steps == ["create", "fchmod", "write", "fsync", "rename", "open dir", "fsync"]
    assert target.read_bytes() == b"new data"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640


# ----------------------------------------------------------- the audit log's head


def _audit_event(i: int):
    from cfgcore.runtime.events import ConfigChangeEvent

    return ConfigChangeEvent(f"a.k{i}", i, i + 1, "update_config", i, 1.7e9 + i, actor="ops")


@posix_only
def test_the_audit_head_is_written_alike(tmp_path, path):
    """The ``.head`` record (by rename, in one C call where built): the same record,
    0640 minus the umask, no temp file, and ``verify`` confirms the tail with it."""
    from cfgcore.runtime.audit import AuditLog, verify

    log_path = tmp_path / "audit.jsonl"
    log = AuditLog(log_path)
    for i in range(3):
        log.record(_audit_event(i))
    head = tmp_path / "audit.jsonl.head"
    assert stat.S_IMODE(os.stat(head).st_mode) == 0o640 & ~_umask()
    assert b'"seq":3' in head.read_bytes()
    assert _files(tmp_path) == ["audit.jsonl", "audit.jsonl.head", "audit.jsonl.lock"]
    assert verify(log_path).ok and verify(log_path).tail


@posix_only
def test_a_directory_at_the_audit_head_fails_alike(tmp_path, path, caplog):
    """The rename over a directory planted at the head's name fails: logged as before,
    the entry written, the temp file removed."""
    from cfgcore.runtime.audit import AuditLog

    log_path = tmp_path / "audit.jsonl"
    (tmp_path / "audit.jsonl.head").mkdir()
    (tmp_path / "audit.jsonl.head" / "x").write_bytes(b"")
    entry = AuditLog(log_path).record(_audit_event(1))
    assert entry["seq"] == 1 and b'"seq":1' in log_path.read_bytes()
    assert any("cannot record the audit log head" in r.getMessage() for r in caplog.records)
    assert not [n for n in _files(tmp_path) if n.endswith(".tmp")]


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@needs_build
def test_an_audited_flag_write_makes_its_head_rename_in_one_call(tmp_path, monkeypatch):
    """The audit entry of a flag change: its ``.head`` temp file and rename are made in
    one C call too (the rename was the last one a change made from Python)."""
    from cfgcore.dynamic_config import DynamicConfigurationManager, FeatureFlag

    flags = tmp_path / "flags.yaml"
    flags.write_text("flags:\n  experimental_ml_models: {default: 'off'}\n")
    m = DynamicConfigurationManager(str(flags), state_dir=tmp_path / "state")
    renamed: list[str] = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b, **k: renamed.append(str(b)) or real(a, b, **k))
    try:
        m.set_feature_flag(FeatureFlag.EXPERIMENTAL_ML_MODELS, True, 40.0)
    finally:
        monkeypatch.undo()
        m.close()
    assert renamed == []
    assert (tmp_path / "flags.audit.jsonl.head").exists()
