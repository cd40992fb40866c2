"""Debug mode: every engine evaluation logs one line explaining it.

>>> import logging, cfgcore
>>> cfgcore.enable_debug_mode()                                       # doctest: +SKIP
>>> engine.is_enabled("new_checkout", {"user_id": "u1", "api_token": "sk_live_x"})  # doctest: +SKIP
DEBUG cfgcore.evaluation: is_enabled new_checkout -> variant=on reason=SPLIT rule=0
bucket=4217 version=3 context={'user_id': 'u1', 'api_token': ***redacted***}
>>> cfgcore.disable_debug_mode()                                      # doctest: +SKIP

While it is on, the ``cfgcore`` logger is at DEBUG (a stderr handler is added if no
handler would print the lines) and each ``is_enabled``, ``variant``, ``value`` and
``evaluate`` on an :class:`~cfgcore.engine.Engine` (and the seed API's calls) logs, on
the ``cfgcore.evaluation`` logger: the call, the flag, the variant, the reason, the
deciding rule's index, the bucket when a rollout or split decided, the snapshot version,
and the context's attributes. Attribute values are masked as
:func:`cfgcore.runtime.redaction.redact` masks configuration values, and every value of
an attribute whose name looks secret (``api_token``, ``password``, ``session_id``,
a ``session`` holding a value...) is masked whatever its type. ``evaluate_all`` logs one
line (how many flags, the version, the context).

The context is rendered once per line and bounded, whatever its size: the attributes the
flag reads (its prerequisites' included) come first, in full up to ``READ_TEXT``
characters and ``READ_ITEMS`` items each; then at most ``OTHER_ATTRIBUTES`` others,
previewed (``OTHER_TEXT`` characters, ``OTHER_ITEMS`` items); then ``... N more``.

Off (the default), it costs nothing: it uses the same switch as hooks, one attribute
test per evaluation.
"""

from __future__ import annotations

import logging
import reprlib
import sys
import threading
from collections.abc import Iterable, Mapping
from itertools import islice
from typing import Any

from cfgcore import _counting
from cfgcore import _layout as _L
from cfgcore.runtime.forks import after_fork_in_child

__all__ = ["disable_debug_mode", "enable_debug_mode", "enabled"]

log = logging.getLogger("cfgcore.evaluation")
_ROOT = logging.getLogger("cfgcore")
_LOCK = threading.Lock()  # renewed in a forked child (_after_fork_in_child)
# (on, the cfgcore logger's level to restore or None, the handler added or None), set
# in one assignment before the logger is changed: a child forked while a thread of its
# parent was turning debug mode on or off finishes what the state says
# (_after_fork_in_child). Off with a level: being turned off, the logger not yet put back.
_STATE: tuple[bool, int | None, logging.Handler | None] = (False, None, None)
_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_ABSENT = object()


@after_fork_in_child
def _after_fork_in_child() -> None:
    # A thread of the parent may have held it at the fork, half-way through turning
    # debug mode on or off: the child's logger was left at DEBUG with debug mode off,
    # and no later disable_debug_mode() there put its level back.
    global _LOCK
    held = _LOCK.locked()
    _LOCK = threading.Lock()
    if held:
        _settle()
        _refresh_engines()


def _settle() -> None:
    """Make the cfgcore logger what :data:`_STATE` says (under _LOCK, or in a forked
    child): DEBUG with the handler when on; put back when being turned off."""
    global _STATE
    on, level, handler = _STATE
    if on:
        if _ROOT.level != logging.DEBUG:
            _ROOT.setLevel(logging.DEBUG)
        if handler is not None and handler not in _ROOT.handlers:
            _ROOT.addHandler(handler)
    elif level is not None:
        _ROOT.setLevel(level)
        if handler is not None:
            _ROOT.removeHandler(handler)
        _STATE = (False, None, None)


def enabled() -> bool:
    """Whether debug mode is on."""
    return _STATE[0]


def enable_debug_mode() -> None:
    """Log one line per engine evaluation, explaining it (see the module docstring)."""
    global _STATE
    with _LOCK:
        if not _STATE[0]:
            handler = None
            if not _ROOT.hasHandlers():  # nobody configured logging: show the lines anyway
                handler = logging.StreamHandler(sys.stderr)
                handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
            _STATE = (True, _ROOT.level, handler)
            _settle()
    _refresh_engines()


def disable_debug_mode() -> None:
    """Stop the per-evaluation lines; the ``cfgcore`` logger gets its level back."""
    global _STATE
    with _LOCK:
        on, level, handler = _STATE
        if on:
            _STATE = (False, level, handler)
            _settle()
    _refresh_engines()


def _refresh_engines() -> None:
    for engine in _counting.engines():
        refresh = getattr(engine, "_refresh_observer", None)
        if refresh is not None:
            refresh()


# -- the lines -------------------------------------------------------------------------


def _safe_repr(value: Any, repr_: reprlib.Repr = _REPR) -> str:
    try:
        return repr_.repr(value)
    except Exception:  # a value whose __repr__ raises (or an int past 4,300 digits)
        return f"<unrepresentable {type(value).__name__}>"


# What one line shows of a context. Every bound is on what is rendered, so a line costs
# the same for a 1 KB context as for a 20 MB one. The attributes the flag reads come
# first and are shown in full up to the READ_* caps; the others are a preview.
READ_ATTRIBUTES = 100  # attributes the flag reads (its prerequisites' included)
OTHER_ATTRIBUTES = 20  # other attributes, in the context's order
READ_TEXT = 1000  # characters of a value the flag reads (text, bytes, a number's repr)
OTHER_TEXT = 80  # characters of any other value
READ_ITEMS = 100  # items of a list, set or mapping the flag reads
OTHER_ITEMS = 6  # items of any other container
MAX_DEPTH = 4  # containers inside containers
LINE_CHARS = 32_000  # the whole context's text; past it the rest is counted, not shown
_MARGIN = 4096  # text redacted past the shown part: a secret cut by the cap stays masked
_READ_REPR = reprlib.Repr()
_READ_REPR.maxstring = _READ_REPR.maxother = _READ_REPR.maxlong = READ_TEXT


class _Budget:
    __slots__ = ("left",)

    def __init__(self, chars: int) -> None:
        self.left = chars

    def take(self, text: str) -> str:
        self.left -= len(text)
        return text


def _more(n: int | None, what: str = "") -> str:
    return f"... {n} more{what}" if n else "... more"


def _text_value(path: str, value: Any, chars: int, repr_: reprlib.Repr) -> str:
    """A str or bytes value, redacted, at most ``chars`` of it shown."""
    from cfgcore.runtime import secrets
    from cfgcore.runtime.redaction import REDACTED, redact

    if isinstance(value, str) and secrets.is_resolved_secret(value):
        return REDACTED  # judged whole: a prefix of a remembered secret is not one
    size = len(value)
    head = value[: chars + _MARGIN] if size > chars + _MARGIN else value
    shown = redact(path, head)
    if shown is REDACTED:
        return REDACTED
    if size <= chars:
        return _safe_repr(shown, repr_) if repr_ is _REPR else repr(shown)
    unit = "chars" if isinstance(value, str) else "bytes"
    return f"{shown[:chars]!r}{_more(size - chars, ' ' + unit)}"


def _value(path: str, value: Any, read: bool, depth: int, budget: _Budget) -> str:
    """``value`` for a log line: secrets masked as ``redact`` masks them, bounded."""
    from cfgcore.runtime.redaction import REDACTED, redact

    repr_ = _READ_REPR if read else _REPR
    try:
        if isinstance(value, str | bytes | bytearray):
            return _text_value(path, value, READ_TEXT if read else OTHER_TEXT, repr_)
        if isinstance(value, Mapping | list | tuple | set | frozenset):
            if depth >= MAX_DEPTH:
                return "{...}" if isinstance(value, Mapping) else "[...]"
            return _container(path, value, read, depth, budget)
        shown = redact(path, value)
        return REDACTED if shown is REDACTED else _safe_repr(shown, repr_)
    except Exception:  # a value that cannot be judged: not shown
        return f"<unrepresentable {type(value).__name__}>"


def _container(path: str, value: Any, read: bool, depth: int, budget: _Budget) -> str:
    items = READ_ITEMS if read else OTHER_ITEMS
    mapping = isinstance(value, Mapping)
    opening, closing = (
        ("{", "}") if mapping or isinstance(value, set | frozenset)
        else ("(", ")") if isinstance(value, tuple) else ("[", "]")
    )  # fmt: skip
    parts: list[str] = []
    shown = 0
    for entry in islice(value.items() if mapping else value, items):
        if budget.left <= 0:
            break
        if mapping:
            k, v = entry
            sub = f"{path}.{k}" if path else str(k)
            parts.append(budget.take(f"{_safe_repr(k)}: {_value(sub, v, read, depth + 1, budget)}"))
        else:
            parts.append(budget.take(_value(path, entry, read, depth + 1, budget)))
        shown += 1
    try:
        rest: int | None = len(value) - shown
    except Exception:
        rest = None
    if rest != 0 and (rest is None or shown >= items or budget.left <= 0):
        parts.append(_more(rest))
    return opening + ", ".join(parts) + closing


def _mapping_of(ctx: Any) -> Any:
    """The context's attribute mapping (not a copy), or None when it has none."""
    if isinstance(ctx, dict):
        return ctx
    attrs = getattr(ctx, "attrs", None)
    if isinstance(attrs, Mapping):
        return attrs
    return ctx if isinstance(ctx, Mapping) else None


def _attribute(name: Any, value: Any, read: bool, budget: _Budget) -> str:
    from cfgcore.runtime.redaction import REDACTED, is_secret_key

    try:
        text = str(name)
        if value not in (None, "") and is_secret_key(text):
            shown = REDACTED
        else:
            shown = _value(text, value, read, 0, budget)
    except Exception:
        text, shown = _safe_repr(name), REDACTED  # cannot judge it: mask it
    return budget.take(f"{_safe_repr(text)}: {shown}")


def context_text(ctx: Any, read: Iterable[str] = ()) -> str:
    """The context's attributes for a log line, secrets masked; never raises.

    The attributes named in ``read`` (those the evaluated flag reads) come first, each
    value shown in full up to ``READ_TEXT`` characters and ``READ_ITEMS`` items; then at
    most ``OTHER_ATTRIBUTES`` others, previewed; then ``... N more`` for the rest. The
    cost is bounded by these caps, not by the context's size.
    """
    if ctx is not None and not isinstance(ctx, dict) and not hasattr(ctx, "attrs"):
        try:
            if not isinstance(ctx, Mapping):
                return f"<not a context: {type(ctx).__name__}>"
        except Exception:
            return "<not a context>"
    budget = _Budget(LINE_CHARS)
    parts: list[str] = []
    shown = 0
    try:
        attrs = _mapping_of(ctx)
        if attrs is None:
            return "{}"
        wanted = [name for name in islice(read, READ_ATTRIBUTES) if isinstance(name, str)]
        names = set(wanted)
        for name in wanted:
            value = attrs.get(name, _ABSENT)
            if value is not _ABSENT and budget.left > 0:
                parts.append(_attribute(name, value, True, budget))
                shown += 1
        others = skipped = 0
        for name in attrs:
            if budget.left <= 0 or others >= OTHER_ATTRIBUTES:
                break
            try:
                if isinstance(name, str) and name in names:
                    # Shown first. A mapping yields each key once, so at most len(names)
                    # are skipped: one whose iteration repeats them (an endless
                    # generator) is not followed further.
                    skipped += 1
                    if skipped > len(names):
                        break
                    continue
            except Exception:  # a key whose __eq__ or __hash__ raises: shown as another
                pass
            parts.append(_attribute(name, attrs[name], False, budget))
            others += 1
            shown += 1
        try:
            rest: int | None = len(attrs) - shown
        except Exception:
            rest = None
    except Exception:  # a hostile mapping: what was read so far
        rest = None
    if rest != 0:
        parts.append(_more(rest))
    return "{" + ", ".join(parts) + "}"


def read_attributes(snap: Any, flag_key: Any) -> tuple[str, ...]:
    """The attributes flag ``flag_key`` of compiled ``snap`` reads (its prerequisites'
    included; every flag's with ``flag_key`` None), at most ``READ_ATTRIBUTES``."""
    try:
        t = snap.tables
        if flag_key is None:
            return tuple(t.slots[:READ_ATTRIBUTES])
        fi = t.index.get(flag_key) if type(flag_key) is str else None
        if fi is None:
            return ()
        start = t.flags[fi * _L.FW + _L.F_SLOTS_START]
        count = min(t.flags[fi * _L.FW + _L.F_SLOTS_COUNT], READ_ATTRIBUTES)
        return tuple(t.slots[s] for s in t.ipool[start : start + count])
    except Exception:  # not a compiled snapshot: no attribute comes first
        return ()


#: Characters of a flag key or variant name a line shows (the caller's key of a flag
#: not found is whatever the request handed over).
NAME_CHARS = 200


def _name(value: Any) -> str:
    """A flag key or variant for a line: as it is when printable and short, else its
    ``repr`` (a newline in a caller's key wrote a second, forged log line), cut at
    :data:`NAME_CHARS`."""
    if not isinstance(value, str):
        return _safe_repr(value)
    if len(value) > NAME_CHARS:
        return f"{value[:NAME_CHARS]!r}{_more(len(value) - NAME_CHARS, ' chars')}"
    return value if value.isprintable() else repr(value)


def log_evaluation(
    method: str, details: Any, bucket: int | None, ctx: Any, snap: Any = None
) -> None:
    """One line for one single-flag evaluation (the context rendered once, bounded)."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    try:
        rule = "-" if details.rule_index is None else details.rule_index
        extra = "" if bucket is None else f" bucket={bucket}"
        if details.error_code:
            extra += f" error={details.error_code}"
        log.debug(
            "%s %s -> variant=%s reason=%s rule=%s%s version=%s context=%s",
            method, _name(details.flag_key), _name(details.variant), details.reason, rule, extra,
            details.snapshot_version,
            context_text(ctx, read_attributes(snap, details.flag_key)),
        )  # fmt: skip
    except Exception:  # the explanation must never break the evaluation
        log.debug("%s: could not describe an evaluation", method)


def log_all(count: int, version: int, ctx: Any, snap: Any = None) -> None:
    """One line for one ``evaluate_all`` (the attributes any flag reads first)."""
    if log.isEnabledFor(logging.DEBUG):
        try:
            log.debug("evaluate_all -> %d flags version=%s context=%s", count, version,
                      context_text(ctx, read_attributes(snap, None)))  # fmt: skip
        except Exception:
            log.debug("evaluate_all: could not describe an evaluation")
