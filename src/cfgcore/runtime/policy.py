"""Who changed what, and who may: actors, the access policy and the ``authorize`` hook.

Every change API (``update_config``, ``set_active_config``, ``set_feature_flag``,
``create_ab_test``, ``stop_ab_test``, deletes, imports, publishes) takes an optional
``actor``; the audit entry, the change event and the flag store's writer record carry
it. Without one, the actor is ``user@host`` of the process
(:func:`cfgcore.runtime.audit.default_actor`).

With an access policy loaded (:func:`set_policy`, or a file named by
``CFGCORE_ACCESS_POLICY``), a change the actor's roles do not allow raises
``PermissionError``, changes nothing and is audited as ``denied``. A policy file that
every local user may rewrite (world-writable, or in a world-writable directory without
the sticky bit), or that another user made in a directory every user may create files
in (``/tmp``; a symlink or a directory of theirs on the way too), is refused, and with
it every change.

The policy guards the change APIs and the CLI commands built on them; it is not a
sandbox for code running in the same process. ``manager.dynamic.store``,
``manager.audit`` and the like are the engine's own objects: code that calls them
directly is trusted as the process is (the audit log still only appends, chaining
every entry itself). Without a policy and
without a hook every change is allowed (the behaviour before policies existed).

A policy file (YAML, JSON or TOML; checked like any configuration, errors name the file
and key path)::

    roles:
      catalog-editor:
        config.update: ["music_streaming.*", "caching_layers.*"]
        flag.set: ["catalog_*"]
      experimenter:
        "experiment.*": ["*"]          # action patterns are allowed too
      admin:
        "*": ["*"]
    actors:
      alice@*: [admin]                 # actor patterns (fnmatch, case-sensitive)
      ci-bot: [catalog-editor, experimenter]

Actions (:data:`ACTIONS`): ``config.update`` and ``config.delete`` (target: the key
path; an update whose value removes keys, with a nested ``"__delete__"`` or
``"__replace__": true``, needs ``config.delete`` on those paths too),
``config.replace`` (``set_active_config``; checked for every changed key path),
``config.environment`` and ``config.profile`` (switching a live configuration to
another environment, or profile: ``load_environment_config``, ``set_profile``; the
environment name, each profile name switched to or ``none``), ``flag.set``,
``flag.delete`` (the flag name), ``experiment.create``, ``experiment.stop``,
``experiment.delete`` (the experiment name; creating a test named after a flag that is
not a test's also needs ``flag.set`` on it), ``experiment.holdout`` (target
``holdout``), ``flags.import`` and ``flags.publish`` (the flags file or store URL),
``config.publish`` (``cfgcore publish``; the environment name), ``config.reference``
(an ``update_config`` value reading a secret environment variable with ``${VAR}``, one
named like a secret or listed in ``CFGCORE_SECRET_VARS``; the target is the variable's
name: without it an actor allowed to update a key shown to users could copy
``${DB_ADMIN_PASSWORD}`` into it), ``actor.assume`` (the
CLI's ``--actor NAME``, judged for the OS identity; the target is NAME). Targets match
with ``fnmatch``; ``*`` crosses dots.

The CLI (:func:`cli_actor`): a command is judged for the OS identity running it,
``user@host`` of its real uid (:func:`cfgcore.runtime.audit.default_actor`; not
``$USER``, which anyone sets). ``--actor NAME`` (another name than that identity) is
honoured only when the OS identity's roles allow ``actor.assume`` on NAME (a CI runner
acting for the person who triggered it); the change is then judged and recorded as
NAME, and an ``assume`` audit entry records who acted as NAME. A refused ``--actor``
changes nothing and is audited as ``denied``. Without a policy and without a hook
(every change allowed, the actor only a label) ``--actor`` is honoured as before.
The in-process API (``actor=``, :func:`acting`) is trusted code and is not judged.
For the CLI the policy is a guard, not a boundary: whoever runs it chooses its
environment (without ``CFGCORE_ACCESS_POLICY`` there is no policy) and can write
whatever files or store the command writes; what they may change is decided by file
permissions and the store's credentials. The guard keeps honest mistakes out and the
audit log truthful about who ran a command (an ``--actor`` can no longer be claimed).

A service with its own identity system installs a hook with :func:`set_authorizer`:
``authorize(actor, action, target) -> bool`` (or raise ``PermissionError`` with its own
message); the hook replaces the policy file.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import fnmatch
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from cfgcore._msgspec_errors import msgspec_problem
from cfgcore.errors import ConfigError, Problem, child_key_path
from cfgcore.runtime.forks import after_fork_in_child

if TYPE_CHECKING:
    from cfgcore.config.files import Layer

__all__ = [
    "ACTIONS",
    "AccessPolicy",
    "acting",
    "check",
    "cli_actor",
    "current_actor",
    "get_policy",
    "load_policy",
    "resolve_actor",
    "set_authorizer",
    "set_policy",
]

ACTIONS = (
    "config.update",
    "config.delete",
    "config.replace",
    "config.environment",
    "config.profile",
    "flag.set",
    "flag.delete",
    "experiment.create",
    "experiment.stop",
    "experiment.delete",
    "experiment.holdout",
    "flags.import",
    "flags.publish",
    "config.publish",
    "actor.assume",
    "config.reference",
)

Authorizer = Callable[[str, str, str], bool]


class _PolicyDoc(msgspec.Struct, forbid_unknown_fields=True):
    roles: dict[str, dict[str, list[str]]] = {}
    actors: dict[str, list[str]] = {}


class AccessPolicy:
    """Roles (action pattern -> target patterns) and actors (actor pattern -> roles)."""

    def __init__(
        self,
        roles: Mapping[str, Mapping[str, list[str]]],
        actors: Mapping[str, list[str]],
        *,
        origin: str = "<policy>",
    ) -> None:
        problems = []
        for role, actions in roles.items():
            for action in actions:
                if not any(fnmatch.fnmatchcase(a, action) for a in ACTIONS):
                    problems.append(
                        Problem(
                            path=child_key_path(child_key_path("roles", role), action),
                            message=f"matches no action (known: {', '.join(ACTIONS)})",
                            file=origin,
                        )
                    )
        for actor, names in actors.items():
            for i, name in enumerate(names):
                if name not in roles:
                    problems.append(
                        Problem(
                            path=f"{child_key_path('actors', actor)}[{i}]",
                            message=f"unknown role {name!r}",
                            file=origin,
                        )  # fmt: skip
                    )
        if problems:
            raise ConfigError(problems)
        self.roles = {r: {a: list(t) for a, t in acts.items()} for r, acts in roles.items()}
        self.actors = {a: list(r) for a, r in actors.items()}
        self.origin = origin

    @classmethod
    def from_mapping(
        cls, data: Any, *, origin: str = "<policy>", layers: Sequence[Layer] = ()
    ) -> AccessPolicy:
        """The policy ``data`` holds (read from ``origin``); a problem names its key
        path, and its line when ``layers`` (the file as read) know it."""
        try:
            doc = msgspec.convert(data, type=_PolicyDoc, str_keys=True)
            return cls(doc.roles, doc.actors, origin=origin)
        except msgspec.ValidationError as exc:
            problems = [msgspec_problem(exc, origin, data=data, type_=_PolicyDoc)]
        except ConfigError as exc:
            problems = list(exc.problems)
        if layers:
            from cfgcore.config.checks import problem

            for i, p in enumerate(problems):
                line = problem(p.path, p.message, layers, data).line
                problems[i] = dataclasses.replace(p, line=line)
        raise ConfigError(problems)

    def roles_of(self, actor: str) -> list[str]:
        out: list[str] = []
        for pattern, names in self.actors.items():
            if fnmatch.fnmatchcase(actor, pattern):
                out += [n for n in names if n not in out]
        return out

    def allows(self, actor: str, action: str, target: str) -> bool:
        """Does any of ``actor``'s roles allow ``action`` on ``target``?"""
        for role in self.roles_of(actor):
            for action_pattern, targets in self.roles[role].items():
                if fnmatch.fnmatchcase(action, action_pattern) and any(
                    fnmatch.fnmatchcase(target, t) for t in targets
                ):
                    return True
        return False


def load_policy(path: str | os.PathLike[str]) -> AccessPolicy:
    """Read and check a policy file (``.yaml``/``.yml``/``.json``/``.toml``)."""
    from cfgcore.config.files import read_config_file

    with contextlib.suppress(FileNotFoundError):  # a missing file: read_config_file says so
        _refuse_writable_by_all(os.fspath(path), os.stat(path))
    layer = read_config_file(os.fspath(path))
    return AccessPolicy.from_mapping(layer.data, origin=os.fspath(path), layers=[layer])


# --------------------------------------------------------------------------- process state

_lock = threading.Lock()  # renewed in a forked child (_after_fork_in_child)
_policy: AccessPolicy | None = None
_policy_env: tuple[Any, ...] | None = None  # (path, identity) loaded from CFGCORE_ACCESS_POLICY
_authorizer: Authorizer | None = None
_actor: contextvars.ContextVar[str | None] = contextvars.ContextVar("cfgcore_actor", default=None)


@after_fork_in_child
def _after_fork_in_child() -> None:
    # A thread of the parent may have held it at the fork (reading the policy file):
    # held for good in the child, whose first change would wait for it forever.
    global _lock
    _lock = threading.Lock()


def set_policy(policy: AccessPolicy | str | os.PathLike[str] | None) -> AccessPolicy | None:
    """Install the process's access policy (a policy, a file path, or None for none)."""
    global _policy, _policy_env
    loaded = (
        load_policy(policy) if isinstance(policy, str | os.PathLike) else policy
    )  # a bad file raises here and the old policy stays
    with _lock:
        _policy, _policy_env = loaded, None
    return loaded


def set_authorizer(hook: Authorizer | None) -> None:
    """Install ``authorize(actor, action, target) -> bool`` (None removes it)."""
    global _authorizer
    with _lock:
        _authorizer = hook


def get_policy() -> AccessPolicy | None:
    """The policy in force: :func:`set_policy`'s, else ``CFGCORE_ACCESS_POLICY``'s file
    (re-read when it changes; a bad edit keeps the previous one and raises)."""
    global _policy, _policy_env
    path = os.environ.get("CFGCORE_ACCESS_POLICY")
    with _lock:
        if _policy is not None and _policy_env is None:
            return _policy
        if not path:
            return None
        try:
            st = os.stat(path)
        except OSError:
            raise ConfigError(
                "access policy file is missing: refusing changes", file=path
            ) from None
        _refuse_writable_by_all(path, st)
        # Not the mtime alone: an edit within its granularity (or one that sets it back)
        # kept the old policy; the ctime changes with every write and cannot be set.
        identity = (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if _policy_env != identity:
            _policy = load_policy(path)
            _policy_env = identity
        return _policy


def _refuse_writable_by_all(path: str, st: os.stat_result) -> None:
    """A policy any local user can rewrite (the file, or a directory that lets anyone
    replace it: world-writable without the sticky bit), or another user's in a directory
    every user may create files in (anyone could have been first to make it), grants
    whatever they like: refuse it, as ssh and sudo refuse such files."""
    if os.name == "nt":  # pragma: no cover - no POSIX permission bits
        return
    # Every directory above it too (only its own was: one writable by every user higher
    # up let anyone rename the policy's directory away and make their own).
    from cfgcore.runtime.atomicio import rewritable_by_all, trust_fix

    why = rewritable_by_all(path, st)
    if why:
        raise ConfigError(
            f"access policy refused: {why}; refusing changes ({trust_fix(why)})", file=path
        )


def resolve_actor(actor: str | None) -> str:
    """``actor``, else the one set by :func:`acting`, else ``user@host``."""
    if actor:
        return str(actor)
    ambient = _actor.get()
    if ambient:
        return ambient
    from cfgcore.runtime.audit import default_actor

    return default_actor()


def cli_actor(claimed: str | None, audit: Any = None) -> str:
    """The actor a CLI command acts as: the OS identity (``user@host`` of the real uid),
    or ``claimed`` (``--actor``) when that identity may ``actor.assume`` it.

    A claim of the OS identity itself (``user@host`` or ``user``) needs no permission.
    Any other is checked (``PermissionError``, audited as ``denied``, when refused) and,
    when honoured under a policy or hook, recorded in ``audit`` as an ``assume`` entry
    by the OS identity."""
    from cfgcore.runtime.audit import default_actor

    me = default_actor()
    if not claimed or claimed in (me, me.rpartition("@")[0]):
        return me
    claimed = str(claimed)
    check(me, "actor.assume", claimed, audit)
    if audit is not None and _judged():
        from datetime import datetime, timezone

        audit.append({
            "ts": datetime.now(tz=timezone.utc).isoformat(),
            "kind": "assume",
            "source": "actor.assume",
            "path": claimed,
            "actor": me,
        })  # fmt: skip
    return claimed


def _judged() -> bool:
    """Is a policy or an authorize hook in force (are actors judged at all)?"""
    if _authorizer is not None:
        return True
    try:
        return get_policy() is not None
    except ConfigError:
        return True


def current_actor() -> str | None:
    """The actor of the change in progress in this context (None outside one)."""
    return _actor.get()


@contextlib.contextmanager
def acting(actor: str | None) -> Iterator[str]:
    """Run a change as ``actor`` (resolved): events and store writes made inside carry it."""
    resolved = resolve_actor(actor)
    token = _actor.set(resolved)
    try:
        yield resolved
    finally:
        _actor.reset(token)


def check(actor: str, action: str, target: str, audit: Any = None) -> None:
    """Raise ``PermissionError`` (after recording a ``denied`` entry in ``audit``) unless
    ``actor`` may ``action`` ``target``. No policy and no hook: allowed."""
    hook = _authorizer
    reason = ""
    try:
        if hook is not None:
            allowed = bool(hook(actor, action, target))
            reason = "refused by the authorize hook"
        else:
            policy = get_policy()
            if policy is None:
                return
            allowed = policy.allows(actor, action, target)
            roles = policy.roles_of(actor)
            reason = (
                f"roles {roles} of {policy.origin} do not allow it"
                if roles
                else (f"no role in {policy.origin}")
            )
    except PermissionError as exc:
        allowed, reason = False, str(exc) or "refused by the authorize hook"
    except ConfigError as exc:  # an unreadable policy refuses, it never opens the door
        allowed, reason = False, f"access policy unusable: {exc}"
    if allowed:
        return
    message = f"{actor} may not {action} {target}: {reason}"
    if audit is not None:
        audit.record_denied(actor, action, target, message)
    raise PermissionError(message)


# The merge markers of cfgcore.config.tree (DELETE, REPLACE), spelled here so the
# runtime layer does not import the config package.
_DELETE = "__delete__"
_REPLACE = "__replace__"


def config_change(key_path: Any, value: Any) -> list[tuple[str, str]]:
    """The ``(action, target)`` checks of ``update_config(key_path, value)``.

    ``config.update`` of the key path, or ``config.delete`` for the value
    ``"__delete__"``; a map value that removes keys below it needs ``config.delete`` as
    well: a nested ``"__delete__"`` (on that key's path) and ``"__replace__": true``
    (on the replaced map's path, which loses every key it does not repeat). Otherwise
    an actor allowed only to update could delete through a nested marker."""
    path = key_path if isinstance(key_path, str) else ".".join(map(str, key_path))
    if isinstance(value, str) and value == _DELETE:
        return [("config.delete", path)]
    checks = [("config.update", path)]
    stack = [(value, path)]  # iterative: a hostile value may nest deeper than the stack
    while stack:
        node, where = stack.pop()
        if not isinstance(node, dict):
            continue
        if node.get(_REPLACE):
            checks.append(("config.delete", where))
        for k, v in node.items():
            if k == _REPLACE:
                continue
            below = f"{where}.{k}" if where else str(k)
            if isinstance(v, str) and v == _DELETE:
                checks.append(("config.delete", below))
            elif isinstance(v, dict):
                stack.append((v, below))
    return checks


def guarded(action: str, target: Callable[..., Any] | None = None) -> Callable[[Any], Any]:
    """Decorate a change API method taking ``*, actor=None``: resolve the actor, check
    the policy (``target(self, *args, **kwargs)`` names what is changed, or returns
    ``(action, target)`` or a list of them, every one checked; None: checked inside the
    method), then run the method with the actor set for its events and store writes
    (:func:`current_actor`)."""
    import functools

    def wrap(method: Any) -> Any:
        @functools.wraps(method)
        def guarded_method(self: Any, *args: Any, **kwargs: Any) -> Any:
            with acting(kwargs.get("actor")) as who:
                if target is not None:
                    what = target(self, *args, **kwargs)
                    # One target, one (action, target), or a list of them: all must pass.
                    if isinstance(what, list):
                        checks = what
                    else:
                        checks = [what if isinstance(what, tuple) else (action, what)]
                    for act, on in checks:
                        # The text a name holds, as the change uses it: a str
                        # subclass's own __str__ may name another, allowed target.
                        on = str.__str__(on) if isinstance(on, str) else str(on)
                        check(who, act, on, getattr(self, "audit", None))
                return method(self, *args, **kwargs)

        return guarded_method

    return wrap
