"""``cfgcore watch --store`` started while the store holds a document this process
refuses (corrupt bytes, a checksum that does not match, a bad signature with
verification keys set, a document that does not compile) says so on its first line and
keeps watching: the next good version is printed as any other, and later refusals as
REJECTED lines. It exited with one error line, or (a document that does not compile)
showed the refused version as the store's flags. A store that cannot be read at all
(Redis unreachable, no cache file) still ends it with an error. Real redis-server."""

from __future__ import annotations

import hashlib
import logging
import threading

import msgspec
import pytest

from cfgcore.cli import main
from cfgcore.runtime.redis_store import RedisFlagStore
from cfgcore.runtime.signing import FleetKeys, generate_signing_pair
from cfgcore.snapshot import Flag
from tests.redis_server import refused_port, wait_for

TRUSTED = generate_signing_pair("k1")
UNTRUSTED = generate_signing_pair("k9")


@pytest.fixture(autouse=True)
def _quiet():
    logging.getLogger("cfgcore.fleet").setLevel(logging.CRITICAL)
    yield
    logging.getLogger("cfgcore.fleet").setLevel(logging.NOTSET)


def only(*names: str):
    return lambda s: msgspec.structs.replace(s, flags={n: Flag(default="on") for n in names})


class _Watch:
    """``cfgcore watch ARGS`` run on a thread of this process, and what it printed so
    far (read from pytest's capsys)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
        self.capsys = capsys
        self.done: list[int] = []
        self.out: list[str] = []
        self.err: list[str] = []
        self.thread = threading.Thread(target=lambda: self.done.append(main(args)))

    def start(self) -> _Watch:
        self.thread.start()
        return self

    def printed(self, text: str) -> bool:
        """Whether ``text`` was printed on stdout or stderr yet."""
        captured = self.capsys.readouterr()
        self.out.append(captured.out)
        self.err.append(captured.err)
        return text in "".join(self.out) or text in "".join(self.err)

    def finish(self) -> tuple[list[str], list[str]]:
        """(stdout lines, stderr lines) once the watch ended (asserted: exit code 0)."""
        self.thread.join(30)
        self.printed("")
        assert self.done == [0]
        return "".join(self.out).splitlines(), "".join(self.err).splitlines()


def _plant(
    redis_server, ns: str, data: bytes, checksum: str | None = None, version: int = 2
) -> None:
    """A version of ``ns``'s flag document written behind cfgcore's back, announced."""
    redis_server.client().hset(
        f"{{{ns}}}:flags",
        mapping={"version": version, "data": data,
                 "checksum": checksum or hashlib.sha256(data).hexdigest()},
    )  # fmt: skip
    redis_server.client().publish(f"{{{ns}}}:flags:changes", f"{version} x")


def _corrupt(redis_server, ns, monkeypatch):
    _plant(redis_server, ns, b"junk")


def _wrong_checksum(redis_server, ns, monkeypatch):
    data = msgspec.msgpack.encode({"flags": {"x": {"default": "on"}}})
    _plant(redis_server, ns, data, checksum="0" * 64)


def _not_compiling(redis_server, ns, monkeypatch):
    _plant(redis_server, ns, msgspec.msgpack.encode({"flags": {"x": {"default": "nope"}}}))


def _untrusted_signature(redis_server, ns, monkeypatch):
    # This process trusts k1 only (the fleet's writer below signs with it).
    monkeypatch.setenv("CFGCORE_FLEET_VERIFY_KEYS", TRUSTED[1])
    with RedisFlagStore(
        redis_server.url + f"?namespace={ns}&cache=off", keys=FleetKeys(UNTRUSTED[0])
    ) as other:
        other.update(only("signed_by_k9"), force=True)


CASES = {
    "corrupt": (_corrupt, "expected object, got int"),
    "checksum": (_wrong_checksum, "checksum mismatch in version 2"),
    "not compiling": (_not_compiling, "version 2 does not compile"),
    "signature": (_untrusted_signature, "'k9'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_watch_says_the_current_document_is_refused_and_keeps_watching(
    redis_server, capsys, monkeypatch, case
):
    plant, said = CASES[case]
    ns = "wr" + str(sorted(CASES).index(case))
    url = redis_server.url + f"?namespace={ns}&cache=off"
    keys = FleetKeys(TRUSTED[0], [TRUSTED[1]])
    with RedisFlagStore(url, keys=keys) as first:
        first.update(only("a"))
    plant(redis_server, ns, monkeypatch)
    writer = RedisFlagStore(url, keys=keys)
    watch = _Watch(capsys, ["watch", "--store", url, "--count", "2", "--timeout", "30"]).start()
    try:
        assert wait_for(lambda: watch.printed("the current document is refused"), timeout=20)
        # the repair (cfgcore publish: a forced write), then another bad version
        writer.update(only("a", "b"), force=True, actor="oncall")
        assert wait_for(lambda: watch.printed(" oncall@"), timeout=20)
        _plant(redis_server, ns, b"more junk", version=9)
        lines, err = watch.finish()
    finally:
        writer.close()
    first_line = err[0]
    shown = url.removesuffix("&cache=off")  # (as the store names itself)
    assert first_line.startswith(f"{shown}: the current document is refused: ")
    assert said in first_line and first_line.endswith("Ctrl-C to stop")
    # the refusal is said once (first line), not again as the follower's report
    assert len(lines) == 2, lines
    assert " v3 oncall@" in lines[0] and "by a forced write]: a, b" in lines[0]
    assert "[new " not in lines[0]  # (nothing served before it to call it new)
    assert " REJECTED " in lines[1]  # (the version 9 planted: refused too)


def test_a_store_that_cannot_be_read_still_ends_the_watch(capsys):
    url = f"redis://127.0.0.1:{refused_port()}/0?namespace=gone&cache=off"
    code = main(["watch", "--store", url, "--count", "1", "--timeout", "10"])
    err = capsys.readouterr().err
    assert code == 1
    assert "Redis unreachable" in err and "refused" not in err.split("Redis unreachable")[0]


def test_a_flags_file_refused_at_start_is_watched_until_fixed(tmp_path, capsys):
    path = tmp_path / "flags.yaml"
    path.write_text("flags: [not, a, mapping\n")
    args = ["watch", "--store", str(path), "--count", "1", "--timeout", "30"]
    watch = _Watch(capsys, args).start()
    assert wait_for(lambda: watch.printed("the current document is refused"), timeout=20)
    path.write_text(
        "flags:\n  fixed:\n    default: 'on'\n    variants: {'on': true, 'off': false}\n"
    )
    lines, _ = watch.finish()
    assert len(lines) == 1 and lines[0].endswith(": fixed"), lines


def test_a_missing_flags_file_still_ends_the_watch(tmp_path, capsys):
    code = main(["watch", "--store", str(tmp_path / "none.yaml"), "--timeout", "5"])
    assert code == 1
    assert "does not exist" in capsys.readouterr().err


def test_a_store_below_min_version_is_refused_not_shown_and_the_watch_goes_on(redis_server, capsys):
    """The stored version is below the URL's ``min_version`` and no cache file can serve:
    the first line says it is refused, and the follower does not then show that version
    as the store's flags (it did, as ``v2 ...: a, b``). A version still below the pin is
    a REJECTED line; the first one at the pin is printed as any other."""
    url = redis_server.url + "?namespace=pinned&cache=off"
    writer = RedisFlagStore(url)
    writer.update(only("a"))
    writer.update(only("a", "b"))  # version 2
    args = ["watch", "--store", url + "&min_version=4", "--count", "2", "--timeout", "30"]
    watch = _Watch(capsys, args).start()
    try:
        assert wait_for(lambda: watch.printed("the current document is refused"), timeout=20)
        writer.update(only("a", "b", "c"))  # version 3: still below the pin
        assert wait_for(lambda: watch.printed("REJECTED"), timeout=20)
        writer.update(only("a", "d"), actor="oncall")  # version 4: at the pin
        lines, err = watch.finish()
    finally:
        writer.close()
    first_line = err[0]
    assert "the current document is refused: the store holds version 2 " in first_line
    assert "below min_version=4" in first_line
    assert len(lines) == 2, lines
    assert (
        " REJECTED " in lines[0]
        and "version 3 of the flag document, below min_version=4" in lines[0]
    )
    # nothing served before it: every flag of version 4 listed (against version 2 it
    # would say "b, d")
    assert " v4 oncall@" in lines[1] and lines[1].endswith(": a, d"), lines
