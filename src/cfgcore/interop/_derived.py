"""Context mappings that answer derived attributes when an evaluator reads them.

Some of a source's semantics cannot be lowered to cfgcore conditions on values known
when ``context()`` builds the attributes (a regex searched in a string longer than
cfgcore's regex bound; a flagd ``fractional`` entry that comes from the context). The
importer then tests a derived attribute, ``PREFIX + JSON spec``, and ``context()``
returns a :class:`DerivedAttributes` whose ``get()`` computes it. Both evaluators read a
mapping that is not an exact dict through ``get()``, so the answer is the same on both;
a plain dict (the common case) keeps the exact-dict fast path.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from cfgcore._records import DEFAULT_BUCKET_BY


class DerivedAttributes(dict):  # type: ignore[type-arg]
    """A context dict whose ``get()`` answers keys starting with :attr:`PREFIX` with
    :meth:`derive` (None: the attribute is missing). A copy into a plain dict loses
    them: keep this object."""

    PREFIX = ""

    def get(self, key: Any, default: Any = None) -> Any:
        if isinstance(key, str) and key.startswith(self.PREFIX):
            try:
                found = self.derive(key[len(self.PREFIX) :])
            except Exception:  # never raise on the hot path: no answer is a missing value
                found = None
            return default if found is None else found
        return dict.get(self, key, default)

    def __missing__(self, key: Any) -> Any:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def derive(self, spec: str) -> Any:
        """The derived attribute for ``spec`` (the key after :attr:`PREFIX`), or None."""
        raise NotImplementedError


class SnapshotNames:
    """The attribute names a ``context()`` option names (flagd's ``bucketing=``,
    GrowthBook's ``elements=``): a Snapshot's, found by ``find`` (the last snapshot's
    kept: it is kept alive, so its id is never reused), an engine's current snapshot's,
    or the names themselves. Called on every ``context()`` with the option. ``find``
    may return more than names (GrowthBook's: everything its snapshot reads); the
    caller tells that apart from a collection of names it was given."""

    def __init__(self, option: str, find: Callable[[Any], Any], *, names: bool = True) -> None:
        self._option = option
        self._find = find
        # whether the option also takes a collection of names (not Unleash's engine=)
        self._names = names
        self._wants = (
            "an engine, a Snapshot or a collection of attribute names"
            if names
            else ("an engine or a Snapshot")
        )
        # (snapshot, what find found): one tuple, replaced whole (no lock needed)
        self._last: tuple[Any, Any] = (None, frozenset())

    def __call__(self, given: Any) -> Any:
        from cfgcore.snapshot import Snapshot

        snap = given
        if not isinstance(snap, Snapshot):
            missing = object()
            source = getattr(given, "source", missing)
            if source is not missing:  # an engine
                if source is None:
                    return ()  # without a snapshot yet: no flag reads one
                snap = source
            elif (
                self._names
                and isinstance(given, Collection)
                and not isinstance(given, (str, bytes))
            ):
                return given
            else:  # (a wrong value read as "reads nothing" would answer wrongly, silently)
                raise TypeError(f"{self._option}: {self._wants}, got {type(given).__name__}")
        if not isinstance(snap, Snapshot):
            raise TypeError(f"{self._option}: {self._wants}, got an engine serving {snap!r}")
        last, names = self._last
        if last is not snap:
            names = self._find(snap)
            self._last = (snap, names)
        return names


def derived_names(snapshot: Any, prefix: str, name_of: Callable[[str], Any]) -> frozenset[str]:
    """The context attribute names the derived attributes ``prefix + spec`` that
    ``snapshot``'s rules and segments test stand for: ``name_of(spec)`` of each (a spec
    it cannot read, one the importer did not write, is passed over)."""
    names: set[str] = set()

    def walk(c: Any) -> None:
        if c is None:
            return
        attr = c.attr
        if isinstance(attr, str) and attr.startswith(prefix):
            try:
                name = name_of(attr[len(prefix) :])
            except (ValueError, TypeError, IndexError, KeyError, AttributeError):
                name = None
            if isinstance(name, str):
                names.add(name)
        for sub in (*(c.all or ()), *(c.any or ()), c.not_):
            walk(sub)

    for flag in snapshot.flags.values():
        for rule in flag.rules:
            walk(rule.when)
    for seg in snapshot.segments.values():
        walk(seg)
    return frozenset(names)


def read_names(snapshot: Any) -> frozenset[str] | None:
    """Every context attribute ``snapshot``'s flags and segments read, as the compiler
    gives them slots: the attributes of their conditions (nested ones, those of
    prerequisite flags and segments included), the ``bucket_by`` names of each flag (the
    default ones where it names none) and rule, and the ``by`` names of each rule's and
    gate's hashing. None where the snapshot holds something else where a name goes (one
    built in Python, which the compiler refuses): the caller then reads everything."""
    names: set[str] = set(DEFAULT_BUCKET_BY)
    stack: list[Any] = list(snapshot.segments.values())

    def add(given: Any) -> None:
        for name in [given] if isinstance(given, str) else given or ():
            if not isinstance(name, str):
                raise TypeError(name)
            names.add(name)

    try:
        for flag in snapshot.flags.values():
            add(flag.bucket_by)
            for rule in flag.rules:
                stack.append(rule.when)
                add(rule.bucket_by)
                for h in (rule.hash, *(g.hash for g in rule.gates)):
                    if h is not None:
                        add(h.by)
        while stack:
            c = stack.pop()
            if c is None:
                continue
            if c.attr is not None:
                add(c.attr)
            stack.extend(c.all or ())
            stack.extend(c.any or ())
            stack.append(c.not_)
    except (TypeError, AttributeError):
        return None
    return frozenset(names)


class ReadPath:
    """The keys a snapshot reads at one path of a context: the suffixes (``#lower``,
    ``#num``, ``""`` for the value itself) and the paths below it, by segment (an
    escaped name). What an importer's ``context()`` walks to derive those keys alone."""

    __slots__ = ("suffixes", "below")

    def __init__(self) -> None:
        self.suffixes: set[str] = set()
        self.below: dict[str, ReadPath] = {}

    def add(self, segments: Iterable[str], suffix: str) -> None:
        """Record the key ``suffix`` at the path of ``segments`` below this one (none:
        here)."""
        node = self
        for seg in segments:
            node = node.below.setdefault(seg, ReadPath())
        node.suffixes.add(suffix)
