"""Fleet commands: ``publish`` (a validated configuration and its flags, to a Redis
store), ``retire`` (delete a namespace no process serves) and ``watch --store URL``
(follow a flag store and print every change).

``cfgcore publish --store redis://HOST:PORT/DB?namespace=NS [-e ENV]`` builds the layered
configuration of ENV as the manager does, without this machine's ``CFGCORE__``
overrides (named on stderr; each follower applies its own), validates it, compiles the
flags, and only then writes both: the configuration to ``{NS}:config:ENV`` (values
``${VAR}`` references take from environment variables are published as those
references, never as secrets)
and, with ``--flags``, the flag document, in one atomic step (one script: a follower
never finds one publish's configuration beside another's flags). Nothing is written if
anything is invalid. ``--expect-version N`` makes the write a compare-and-set: it is
refused (nothing written, the error names the version stored) unless the store still
holds version N of the configuration. A namespace has one flag document: ``--flags``
for another environment than the one it was published for is refused
(``--replace-flags-environment`` moves it on purpose).

``cfgcore fleet keygen --signing-key-file PATH [--id ID]`` makes an Ed25519 pair for
signed fleet documents (cfgcore.runtime.signing): the signing key is written to PATH
(mode 0600, atomically; an existing file is kept unless ``--force``), the verification
key is printed (``ID:BASE64``) for the followers' ``CFGCORE_FLEET_VERIFY_KEYS``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import queue
import sys
import time
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("cfgcore.cli")

__all__ = ["keygen", "publish", "register", "retire", "watch_store"]


def register(subparsers: Any) -> None:
    """Add ``publish``; ``watch --store`` is an option of the configuration ``watch``."""
    p = subparsers.add_parser(
        "publish", help="validate the configuration (and flags) and publish it to a store"
    )
    p.add_argument("--store", required=True, help="redis://HOST:PORT/DB?namespace=NS")
    p.add_argument("--config-dir", help="configuration directory (default: as the manager)")
    p.add_argument(
        "-e",
        "--environment",
        help="environment (default: $CONFIG_ENVIRONMENT or $CFGCORE_ENVIRONMENT, else development)",
    )
    p.add_argument(
        "--profile", help="deployment profile (default: $CONFIG_PROFILE or $CFGCORE_PROFILE)"
    )
    p.add_argument(
        "--geographic-profile",
        help="geographic profile, e.g. EU (default: $CONFIG_GEOGRAPHIC_PROFILE or "
        "$CFGCORE_GEOGRAPHIC_PROFILE)",
    )
    p.add_argument(
        "--flags",
        nargs="?",
        const="",
        default=None,
        help="also replace the flag document: with this file, or (no value) with the "
        "configuration directory's flags",
    )
    p.add_argument(
        "--flags-from-cache",
        metavar="CACHE_FILE",
        help="also replace the flag document: with the one in a process's cache file "
        "(STATE_DIR/fleet/NS-flags-*.msgpack), experiment records included; restores the "
        "fleet's last document after Redis lost its data",
    )
    p.add_argument(
        "--expect-version",
        type=_version,
        metavar="N",
        help="publish only if the store still holds version N of this environment's "
        "configuration (0: none yet); otherwise nothing is written and the error names "
        "the version stored (two publishes at once: the second one is refused)",
    )
    p.add_argument(
        "--replace-flags-environment",
        action="store_true",
        help="with --flags: publish even though the namespace's flag document was "
        "published for another environment (its processes then serve these flags)",
    )
    p.add_argument("--actor", help="who publishes (default: the OS user@host; another name "
                   "needs the policy's actor.assume)")  # fmt: skip
    p.set_defaults(func=publish)
    r = subparsers.add_parser(
        "retire",
        help="delete a Redis store namespace no process serves any more: its flag "
        "document, published configurations, floor keys and epoch records",
    )
    r.add_argument("--store", required=True, help="redis://HOST:PORT/DB?namespace=NS")
    r.add_argument(
        "--force",
        action="store_true",
        help="even while processes follow it (they keep serving what they have)",
    )
    r.add_argument("--actor", help="who retires it (default: the OS user@host)")
    r.set_defaults(func=retire)
    f = subparsers.add_parser("fleet", help="fleet document signing: keygen")
    fsub = f.add_subparsers(dest="fleet_command", metavar="SUBCOMMAND")
    k = fsub.add_parser(
        "keygen",
        help="make an Ed25519 signing pair: the signing key to a file (0600), the "
        "verification key printed",
    )
    k.add_argument(
        "--signing-key-file",
        required=True,
        metavar="PATH",
        help="where to write the signing (private) key, for CFGCORE_FLEET_SIGNING_KEY_FILE",
    )
    k.add_argument("--id", help="key id (default: derived from the public key)")
    k.add_argument("--force", action="store_true", help="replace an existing signing key file")
    k.set_defaults(func=keygen)


def keygen(args: argparse.Namespace) -> int:
    """Write a new signing key (0600, atomically) and print its verification key."""
    import os

    from cfgcore.errors import ConfigError
    from cfgcore.runtime.atomicio import atomic_write
    from cfgcore.runtime.signing import SIGNING_FILE_HEADER, generate_signing_pair

    path = os.path.abspath(os.path.expanduser(args.signing_key_file))
    if os.path.lexists(path) and not args.force:
        raise ConfigError(
            "exists already: a fleet signing key is not replaced without --force (the "
            "followers would refuse what the new key signs until they trust it)",
            file=path,
        )
    signing, verification = generate_signing_pair(args.id)
    text = (
        f"{SIGNING_FILE_HEADER}: keep it secret\n"
        f"# its verification key (CFGCORE_FLEET_VERIFY_KEYS): {verification}\n"
        f"{signing}\n"
    )
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        atomic_write(path, text.encode(), mode=0o600)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the signing key: {exc.strerror or exc}", file=path
        ) from None
    print(verification)
    if getattr(args, "quiet", 0):  # -q: only errors on stderr
        return 0
    print(
        f"signing key written to {path} (mode 0600); give the processes that write flags "
        f"CFGCORE_FLEET_SIGNING_KEY_FILE={path}, and every follower the verification key "
        "above in CFGCORE_FLEET_VERIFY_KEYS (beside the old one while rotating)",
        file=sys.stderr,
    )
    return 0


def _version(text: str) -> int:
    """``--expect-version``: a version number (0 to 2**53 - 1)."""
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if not 0 <= value < 2**53:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version (0 to 2**53 - 1)")
    return value


def _with_references(config: Any, refs: Any) -> Any:
    """``config`` as plain data, with every value that came from an environment
    variable replaced by its reference: a published tree carries no secrets."""
    import datetime

    import msgspec

    from cfgcore.config.environ import with_refs
    from cfgcore.config.published import encode_temporal

    # Dates and times as themselves (to_builtins alone made them text, and followers
    # served "2024-05-01" where this machine serves a date): see published.py.
    tree = msgspec.to_builtins(
        with_refs(config, refs),
        str_keys=True,
        builtin_types=(datetime.datetime, datetime.date, datetime.time),
    )
    return encode_temporal(tree)


def publish(args: argparse.Namespace) -> int:
    """Build, validate and publish; exit 1 (nothing written) on any problem."""
    from cfgcore.config.builder import directory_flags_file
    from cfgcore.config.manager import ConfigurationManager
    from cfgcore.engine import Engine
    from cfgcore.errors import ConfigError
    from cfgcore.runtime.redis_store import (
        FlagsEnvironmentError,
        PublishedConfig,
        RedisConfigStore,
        RedisFlagStore,
    )
    from cfgcore.runtime.redis_url import parse_redis_url
    from cfgcore.snapshot import (
        MAX_MSGPACK_ITEMS,
        decode_snapshot,
        problem_lines,
        read_snapshot_file,
    )

    if args.flags_from_cache == "":
        # `--flags-from-cache "$(ls ...)"` that found no file: read as no option, it
        # published the configuration alone, exit 0, where a repair was asked for.
        raise ConfigError("--flags-from-cache: no cache file given (an empty path)")

    manager = ConfigurationManager(
        args.config_dir,
        profile=args.profile,
        geographic_profile=args.geographic_profile,
        validate=True,  # an invalid configuration raises here: nothing is published
        record_usage=False,  # evaluates no flag: a usage file it started misleads `flags stale`
    )
    # The configuration files, without this machine's CFGCORE__ overrides: an override
    # is a setting of the process it is set for, and each follower applies its own on
    # top of what it follows. (Published as ${CFGCORE__...} references, an override made
    # every follower without that variable refuse the whole update.)
    manager.builder.env_overrides = False
    # Nor the flag store $CFGCORE_FLAG_STORE names: that is where this publishes to
    # (often --store itself, which may hold no document yet after a loss), not a
    # source. The configuration is activated with its directory's flags file, if any.
    manager.builder.flags.store_env = None
    _note_overrides(manager, args)
    manager.load_environment_config(args.environment)
    snap = manager.snapshot
    flags = None
    if args.flags is not None and args.flags_from_cache is not None:
        raise ConfigError("--flags and --flags-from-cache: give one flag document, not two")
    if args.flags is not None:
        # (the directory's file, which the fleet's store is published from: not what
        # this process would serve, which with $CFGCORE_FLAG_STORE is the store itself)
        path = args.flags or directory_flags_file(manager.config_dir)
        if not path:
            raise ConfigError("--flags: the configuration directory has no flags file")
        data, fmt = read_snapshot_file(path)
        # (a .msgpack file held to the store's item bound, max_items=, as its
        # documents are: read within the bound they are written and read with)
        bound = parse_redis_url(args.store).options.get("max_items", MAX_MSGPACK_ITEMS)
        with problem_lines(data, fmt, path):  # file:line: key path: ...
            flags = decode_snapshot(data, fmt, file=path, max_items=bound)
            Engine().compile(flags, file=path)  # refuses before anything is written
    elif args.flags_from_cache is not None:
        path = args.flags_from_cache
        with RedisFlagStore(args.store) as reader:
            cached = reader.read_cache(path)  # checksum checked, as a document from Redis
        flags = cached.snapshot
        Engine().compile(flags, file=cached.origin)
        print(
            f"restoring version {cached.version} from {_safe(cached.origin, 400)} "
            f"(written by {_who(cached.writer)})"
        )
    if args.replace_flags_environment and flags is None:
        raise ConfigError("--replace-flags-environment: only with --flags or --flags-from-cache")
    # With an access policy, a publish it refuses writes nothing (and is audited).
    from cfgcore.runtime.policy import check, cli_actor

    args.actor = cli_actor(args.actor, manager.audit)  # --actor: judged, never just claimed
    check(args.actor, "config.publish", snap.environment, manager.audit)
    if flags is not None:
        # The target as shown everywhere (the audit log, the refusal, a hook): the URL
        # without its password.
        target = parse_redis_url(args.store).redacted()
        check(args.actor, "flags.publish", target, manager.audit)
    if flags is not None:
        # Judged against the stored flag document before anything is written: a flag
        # document refused only when its turn came left the configuration published
        # without the flags it was validated with. (The write judges it again, on the
        # document it is applied to.)
        with RedisFlagStore(args.store) as fstore:
            _judged(_stored_for_force(fstore), flags, bool(args.flags_from_cache))
    doc = PublishedConfig(
        environment=snap.environment,
        config=_with_references(snap.config, snap.refs),
        flags=flags,
        profile=snap.profile,
        geographic_profile=snap.geographic_profile,
    )
    # (environ: the publisher's own write is cached once it builds and validates as a
    # follower's would, its references resolved as this publish resolved them)
    with RedisConfigStore(
        args.store, snap.environment, environ=manager._environ, env_overrides=False
    ) as store:
        if flags is None:
            _, new = store.update(
                lambda _: doc, actor=args.actor, force=True, expected_version=args.expect_version
            )
            print(f"published {snap.environment} as version {new.version} to {store.url}")
        else:
            # Both documents in one atomic write: no follower reads this configuration
            # with another publish's flags (two publishes at once interleaved their two
            # writes before), and a failover keeps both or neither. A publish that
            # another one overtook judges its flags again against the flags now stored.
            restoring = bool(args.flags_from_cache)
            warned: list[Any] = []  # (of the stored document the write applied to)
            with RedisFlagStore(args.store) as fstore:
                try:
                    new, fnew = store.publish_with_flags(
                        doc,
                        fstore,
                        lambda stored: _judged(stored, flags, restoring, warned),
                        check=Engine().compile,
                        actor=args.actor,
                        expected_version=args.expect_version,
                        replace_environment=args.replace_flags_environment,
                    )
                except FlagsEnvironmentError as exc:
                    raise _environment_hint(exc, args, snap.environment) from None
            print(f"published {snap.environment} as version {new.version} to {store.url}")
            print(f"published {len(flags.flags)} flags as version {fnew.version}")
            for problem in warned:
                # A targeting change of a running test: told, not refused (every
                # process serving the store logs and audits it as it takes it too).
                log.warning("%s", problem)
    manager.close()
    return 0


def _note_overrides(manager: Any, args: argparse.Namespace) -> None:
    """Say on stderr which ``CFGCORE__`` variables of this environment (or of the
    ``.env`` file it reads) the publish leaves out: names only, since their values are
    often secrets; nothing under ``-q``."""
    from cfgcore.config.environ import prefixed_variables

    if getattr(args, "quiet", 0):
        return
    marker = f"{manager.env_prefix}__"
    names = sorted(prefixed_variables(manager.builder.env_vars, marker, []))
    if not names:
        return
    shown = ", ".join(_safe(name, 80) for name in names[:10])
    if len(names) > 10:
        shown += f" and {len(names) - 10} more"
    print(
        f"not published: {shown} (overrides in this machine's environment: the "
        f"configuration files are published, and each follower applies its own {marker} "
        "variables)",
        file=sys.stderr,
    )


def _environment_hint(exc: Any, args: argparse.Namespace, environment: str) -> Any:
    """The refusal of flags for another environment, saying so when that environment
    was only the default: a repair run as ``cfgcore publish --store URL --flags-from-cache
    FILE`` publishes for the default environment unless told which one (``-e``)."""
    import os
    import shlex

    from cfgcore.runtime.redis_store import FlagsEnvironmentError, _environment_text

    chosen = (
        args.environment
        or os.environ.get("CONFIG_ENVIRONMENT")
        or os.environ.get("CFGCORE_ENVIRONMENT")
    )
    # The recorded environment is the store's text, whoever wrote it: suggested only as
    # one shell word, and only when it is a name a command can show (no control
    # characters, no ':', not empty), so pasting the hint runs this publish and no more.
    shown = _environment_text(exc.recorded)
    if chosen or shown is None:
        return exc
    message = str(exc.problems[0].message) if exc.problems else str(exc)
    return FlagsEnvironmentError(
        f"{message}. No -e was given (nor $CONFIG_ENVIRONMENT), so this publish is for "
        f"{environment!r}, the default: to publish them with the configuration of "
        f"{exc.recorded!r}, run it again with -e {shlex.quote(shown)}",
        recorded=exc.recorded,
        file=(exc.problems[0].file if exc.problems else None) or args.store,
    )


def retire(args: argparse.Namespace) -> int:
    """Delete the namespace's documents, floor keys and epoch records (the access
    policy's ``flags.publish`` on the store, as a publish replacing them would need)."""
    from cfgcore.runtime.policy import check, cli_actor
    from cfgcore.runtime.redis_store import retire_namespace
    from cfgcore.runtime.redis_url import parse_redis_url

    parsed = parse_redis_url(args.store)
    actor = cli_actor(args.actor)
    check(actor, "flags.publish", parsed.redacted())
    keys = retire_namespace(args.store, force=args.force)
    shown = ", ".join(_safe(k.decode(errors="replace"), 120) for k in keys) or "none"
    print(f"retired namespace {_safe(parsed.namespace, 80)}: {len(keys)} keys deleted ({shown})")
    return 0


def _stored_for_force(store: Any) -> Any:
    """The stored flag snapshot as a forced write's change receives it: an empty one
    when the stored document is unreadable (corrupt, another type), which the write
    replaces."""
    import redis

    from cfgcore.errors import ConfigError
    from cfgcore.snapshot import Snapshot

    try:
        return store._fetch(store._client)[0].snapshot
    except ConfigError:
        return Snapshot()
    except redis.RedisError as exc:
        raise ConfigError(
            f"cannot read the stored flag document to judge the new one against it "
            f"({exc}): nothing written",
            file=store.url,
        ) from None


def _judged(stored: Any, flags: Any, restoring: bool, warned: list[Any] | None = None) -> Any:
    """``flags`` (recording the retirement of the A/B tests ``stored`` holds and it
    drops), once judged as every process judges a document before it goes live:
    no secret reference served as written, and (unless ``restoring`` a document the
    fleet served, from a cache file) no A/B test's enrolled users moved relative to the
    ``stored`` document. A forced write is not exempt: followers would refuse such a
    document and keep the last one, while processes starting afterwards served it, and
    the fleet would split. Raises ConfigError naming the test and what moved (restart
    it as a new run with a later ``experiments.TEST.since`` to mean it). ``warned``
    (emptied, then filled): the rules ``flags`` places ahead of a running test's split,
    told and not refused (:func:`~cfgcore.experiments.abtest.rules_ahead_of_split`)."""
    import time

    from cfgcore.errors import ConfigError
    from cfgcore.experiments.abtest import (
        moved_users,
        retire_dropped,
        rules_ahead_of_split,
        without_malformed_records,
    )
    from cfgcore.runtime.flags import derive, refuse_literal_secrets

    new = derive(flags, "--flags")
    refuse_literal_secrets(new, "--flags")
    if not restoring and stored.experiments:
        # (a stored record no process serves does not refuse the publish replacing it)
        base = derive(without_malformed_records(stored))
        now = time.time()
        problems = moved_users(base, new, now, "--flags")
        if problems:
            raise ConfigError(problems)
        if warned is not None:
            warned[:] = rules_ahead_of_split(base, new, now, "--flags")
    # The A/B tests it drops are retired in the same write, as delete_ab_test retires
    # them, whether or not a process serving the store is running to see the drop.
    return retire_dropped(stored, flags)


def _safe(text: Any, limit: int = 200) -> str:
    """``text`` for an operator's terminal: whatever is stored in Redis (a writer's
    name, flag keys, an error quoting a document) is data, so control characters
    (escape sequences, newlines) are shown escaped and a long text is cut."""
    from cfgcore.errors import printable_name

    text = str(text)
    return printable_name(text[:limit] + "..." if len(text) > limit else text)


def _epoch_note(doc: Any) -> str:
    """ ", epoch ID" (", epoch ID by a forced write"): the store epoch of a Redis document."""
    epoch = getattr(doc, "epoch", None)
    if not epoch:
        return ""
    return f", epoch {epoch[:12]}" + (" by a forced write" if getattr(doc, "forced", False) else "")


def _who(writer: Any) -> str:
    if not writer or not isinstance(writer, Mapping):
        return "unknown writer"
    actor = _safe(writer.get("actor") or "?", 80)
    host = _safe(writer.get("host", "?"), 80)
    # The CLI's default actor is already user@host (resolve_actor): not root@vm@vm.
    who = actor if actor.endswith(f"@{host}") else f"{actor}@{host}"
    return f"{who} pid {_safe(writer.get('pid', '?'), 20)}"


def _current_document(store: Any) -> tuple[Any, Exception | None]:
    """``(document, None)``: the store's current document; ``(None, why)`` when the
    store holds one this process refuses (corrupt, signed by no trusted key, a flags
    file that does not decode). ConfigError when nothing could be read: Redis
    unreachable without a cache file, a flags file missing or unreadable."""
    from cfgcore.errors import ConfigError

    kind = getattr(store, "kind", None)
    if kind == "file":
        data, origin = store.read_bytes()  # (not there, or unreadable: raised)
        try:
            return store.document(data, origin), None
        except ConfigError as exc:
            return None, exc
    if kind != "redis":
        return store.read(), None
    from cfgcore.runtime.redis_store import StoreUnreachableError

    try:
        return store.read(), None
    except StoreUnreachableError:
        raise
    except ConfigError as exc:
        return None, exc


def watch_store(args: argparse.Namespace) -> int:
    """Follow a flag store (Redis, or a flags file, read every half second): print its
    version, then every new version (who wrote it and which flags changed) and every
    rejected document (corrupt, or not compiling: what every process refuses). A
    current document this process refuses is said as such on the first line, and the
    watch goes on."""
    from cfgcore.runtime.flagstore import open_store

    store = open_store(args.store)
    try:
        return _watch(args, store)
    finally:
        store.close()


def _watch(args: argparse.Namespace, store: Any) -> int:
    from cfgcore.engine import Engine
    from cfgcore.errors import ConfigError
    from cfgcore.runtime.flags import derive
    from cfgcore.snapshot import Snapshot

    events: queue.Queue[Any] = queue.Queue()

    def refusal(version: int, origin: str, exc: ConfigError) -> ValueError:
        first = next(iter(str(exc).splitlines()), "") or type(exc).__name__
        detail = first.removeprefix(f"{origin}: ")
        return ValueError(f"{store.url}: version {version} does not compile, every "
                          f"process keeps its last good flags: {detail}")  # fmt: skip

    def deliver(new_doc: Any) -> None:
        # What every process does with it: a version that does not compile is refused
        # everywhere (the last good flags keep serving), so it is shown as REJECTED,
        # not as the store's new flags.
        try:
            Engine().compile(derive(new_doc.snapshot, new_doc.origin), file=new_doc.origin)
        except ConfigError as exc:
            events.put(refusal(new_doc.version, new_doc.origin, exc))
            raise  # the store counts it and does not deliver it again
        events.put(new_doc)

    # The store's current document, unless this process refuses it (corrupt, a bad
    # signature, not compiling): then that is said, and watching goes on, for the next
    # good version is what an operator waits for. Only a store that cannot be read at
    # all (Redis unreachable without a cache file, a flags file missing) ends it.
    doc, refused = _current_document(store)
    if doc is not None and refused is None:
        try:
            Engine().compile(derive(doc.snapshot, doc.origin), file=doc.origin)
        except ConfigError as exc:
            refused = refusal(doc.version, doc.origin, exc)
            if hasattr(store, "served_instead"):  # (its follower does not cache it)
                store.served_instead(doc)
    if refused is None:
        assert doc is not None
        print(
            f"{store.url}: version {doc.version} ({len(doc.snapshot.flags)} flags"
            f"{_epoch_note(doc)}) from {_who(doc.writer)}; Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
    else:
        said = (str(refused).splitlines() or [type(refused).__name__])[0]
        print(
            f"{store.url}: the current document is refused: "
            f"{_safe(said.removeprefix(f'{store.url}: '), 2000)}; watching for the next "
            "version, Ctrl-C to stop",
            file=sys.stderr,
            flush=True,
        )
    store.watch(deliver, on_error=events.put)  # type: ignore[call-arg]
    # A flags file has no follower thread (a manager's watcher reloads it): read it here
    # at every idle turn, and report what changed or what is refused (once).
    polled = getattr(store, "kind", None) == "file"
    state: dict[str, Any] = {
        "checksum": doc.checksum if doc is not None else None,
        "error": str(refused) if refused is not None and doc is None else None,
    }

    def poll_file() -> None:
        try:
            new_doc = store.read()
        except ConfigError as exc:
            if state["error"] != str(exc):
                state["error"] = str(exc)
                events.put(exc)
            return
        if new_doc.checksum != state["checksum"]:
            with contextlib.suppress(ConfigError):  # reported by deliver()
                deliver(new_doc)
        state.update(checksum=new_doc.checksum, error=None)

    # (Nothing served to compare with after a refused document: the next good version
    # lists its flags, and names its epoch without calling it new.)
    last = doc.snapshot if refused is None and doc is not None else Snapshot()
    epoch = getattr(doc, "epoch", None) if refused is None else None
    epoch_known = refused is None
    # The follower's own report of the document refused above is not said twice.
    echo = str(refused).splitlines()[:1] if refused is not None and doc is None else []
    seen = 0
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while not args.count or seen < args.count:
        wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
        if wait <= 0:
            break
        try:
            item = events.get(timeout=wait)
        except queue.Empty:
            if polled:
                poll_file()
            continue
        stamp = time.strftime("%H:%M:%S")
        if isinstance(item, Exception):
            first = (str(item).splitlines() or [type(item).__name__])[0]
            if echo and [first] == echo:
                echo = []
                continue
            echo = []
            seen += 1
            # (whole: a refusal's report ends with the command that repairs it)
            print(f"{stamp} REJECTED {_safe(first, 2000)}", flush=True)
            continue
        seen += 1
        echo = []
        new = item.snapshot
        changed = sorted(
            k for k in {*last.flags, *new.flags} if last.flags.get(k) != new.flags.get(k)
        )
        shown = ", ".join(_safe(k, 80) for k in changed[:10]) + (
            f" (+{len(changed) - 10})" if len(changed) > 10 else ""
        )
        # A new epoch: a publish (forced write) replaced the document, or the store
        # was re-created (then every process that served the old one refuses it).
        began = ""
        new_epoch = getattr(item, "epoch", None)
        if new_epoch is not None and not epoch_known:
            began = f" [{_epoch_note(item).removeprefix(', ')}]"
        elif new_epoch != epoch and new_epoch is not None:
            began = f" [new{_epoch_note(item).removeprefix(',')}]"
        print(f"{stamp} v{item.version} {_who(item.writer)}{began}: "
              f"{shown or 'no flag changed'}", flush=True)  # fmt: skip
        last, epoch, epoch_known = new, new_epoch, True
    return 0
