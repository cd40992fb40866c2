"""Type stubs for the compiled evaluator: the same API as :mod:`cfgcore._eval_py`.

Type checkers read :mod:`cfgcore.engine`'s names from the reference module
(multidict's ``if TYPE_CHECKING or not USE_EXTENSIONS`` pattern); this stub keeps
direct users of ``cfgcore._eval`` typed the same way.
"""

from array import array
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import Any, final

from cfgcore.compiler import Tables
from cfgcore.details import EvaluationDetails

IMPLEMENTATION: str
OPCODES: dict[str, int]
LAYOUT: dict[str, int]

def murmur3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86_32 of ``data``, unsigned."""

def scheme_bucket(
    scheme: int, seed: int, salt: bytes, suffix: bytes, space: int, is_str: bool, bk: bytes
) -> int:
    """The bucket of ``bk`` (a bound value's bucket text) under an imported flag's scheme."""

def bucket_of(salt: str, value: str) -> int:
    """The bucket (0..99999) of ``value`` for a flag salted with ``salt``."""

def msgpack_duplicate_at(data: bytes | bytearray | memoryview) -> int:
    """The byte offset of the first MessagePack map key that repeats a key before it in
    its map (keys compared as they decode), or -1 (none, or not one whole value)."""

def msgpack_scan(data: bytes | bytearray | memoryview) -> tuple[int, int]:
    """(``msgpack_duplicate_at(data)``, the items of ``data``: containers, keys, values
    and elements; -1 where it is not one whole value)."""

def msgpack_spans(
    data: bytes | bytearray | memoryview,
) -> tuple[int, int, tuple[array[int], array[int] | None, array[int] | None] | None]:
    """(``msgpack_scan(data)``'s two answers, where a flag document's members are: four
    offsets a member, of the top-level members but "flags" and "segments", and of the
    members of those two maps; None where anything is unexpected)."""

def json_sections(
    data: bytes | bytearray | memoryview,
) -> tuple[array[int], array[int] | None, array[int] | None] | None:
    """The byte spans (key start, key end, value start, value end) of a JSON flag
    document's members, and of its "flags" and "segments" objects' members; None where
    ``data`` is not one JSON object or names either of those twice."""

def sigterm_watch(fd: int) -> bool:
    """Write SIGTERM's number to ``fd`` each time the process takes SIGTERM, from a C
    handler in front of CPython's: True once that handler is cfgcore's, False where it
    cannot be (SIGTERM's action is the default or ignored, or not POSIX)."""

def sigterm_rewatch(fd: int, handler: object) -> bool:
    """Put cfgcore's C handler back in front of CPython's (writing to ``fd``) while
    SIGTERM's Python handler is ``handler`` but its C handler is CPython's alone: True
    once SIGTERM's C handler is cfgcore's, False where it is left alone."""

def sigterm_watch_fd() -> int:
    """The fd SIGTERM's handler writes to now (-1: none)."""

def sigterm_unwatch() -> None:
    """Write nothing any more (a forked child, before it closes its parent's pipe)."""

def sigterm_chained() -> bool:
    """Whether SIGTERM's C handler is cfgcore's now."""

@final
class Context:
    """Attributes of one request, bound to a snapshot's slots once and reused."""

    @property
    def attrs(self) -> Mapping[str, Any]: ...
    def __init__(self, attrs: Mapping[str, Any] | None = None) -> None: ...
    def __getitem__(self, key: str) -> Any: ...
    def get(self, key: str, default: Any = None) -> Any: ...
    def __contains__(self, key: object) -> bool: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[str]: ...
    def keys(self) -> KeysView[str]: ...
    def items(self) -> ItemsView[str, Any]: ...
    def values(self) -> ValuesView[Any]: ...

ContextArg = Context | Mapping[str, Any] | None

@final
class Counters:
    """Evaluation counts of one compiled snapshot: plain C integers, no lock."""

    version: int
    def take(self) -> tuple[dict[tuple[str, str, str], int], dict[str, int]]:
        """Read and reset every counter: ``({(flag, variant, reason): n}, {code: n})``."""

@final
class CompiledSnapshot:
    """One compiled, immutable flag set with the evaluation API."""

    @property
    def tables(self) -> Tables: ...
    @property
    def counters(self) -> Counters: ...
    version: int
    clock: Callable[[], float] | None
    counting: bool
    # evaluate_all writes its result's value slots directly (CPython 3.11-3.14, GIL
    # builds) once its template is built; tests switch it off to run the other path
    _all_direct: bool
    def __init__(
        self, tables: Tables, version: int = 0, clock: Callable[[], float] | None = None
    ) -> None: ...
    @property
    def keys(self) -> list[str]: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object) -> bool: ...
    def is_enabled(self, key: str, ctx: ContextArg = None) -> bool:
        """Whether the boolean flag ``key`` is on for ``ctx``.

        False when the flag is unknown, not boolean (its variants are not exactly
        true/false), off, or serves its ``off`` variant. Never raises.
        """
    def variant(self, key: str, ctx: ContextArg = None) -> str | None:
        """The name of the variant ``key`` serves for ``ctx`` (e.g. ``"control"``).

        None when the flag is unknown. Never raises.
        """
    def value(self, key: str, ctx: ContextArg = None, default: Any = None) -> Any:
        """The value ``key`` serves for ``ctx`` (objects and arrays read-only).

        Returns ``default`` when the flag is unknown, or when ``default`` is not
        None and the served value is of another type (bool, str, number, object,
        array; a default is a number by ``cfgcore._numbers``' rule, a NumPy scalar or a
        ``Decimal`` too, and an object when it is any mapping). Never raises.
        """
    def evaluate(self, key: str, ctx: ContextArg = None, default: Any = None) -> EvaluationDetails:
        """Full resolution details for ``key`` and ``ctx``.

        :class:`~cfgcore.details.EvaluationDetails` with the value, the variant,
        the reason (STATIC, DEFAULT, TARGETING_MATCH, SPLIT, DISABLED,
        PREREQUISITE_FAILED or ERROR), the index of the deciding rule, and for
        ERROR the error code (FLAG_NOT_FOUND, TYPE_MISMATCH) with ``default`` as
        the value. Never raises.
        """
    def evaluate_all(self, ctx: ContextArg = None) -> dict[str, Any]:
        """Every flag's value for ``ctx`` in one call: ``{flag_key: value}``.

        The context is bound once for all flags; one clock reading serves every
        schedule. Never raises.
        """
    def _observe(
        self, kind: int, key: Any, ctx: ContextArg = None, default: Any = None
    ) -> tuple[Any, EvaluationDetails, int | None, str | None]:
        """One evaluation for an engine with hooks, exposure callbacks or debug mode:
        ``(answer, details, bucket, unit)``."""

class EngineCore:
    """Holds the live compiled snapshot; every read goes through one reference."""

    _observer: Any
    def __init__(self, compiled: CompiledSnapshot | None = None) -> None: ...
    @property
    def version(self) -> int:
        """Version number of the live snapshot (increments on every swap)."""
    def snapshot(self) -> CompiledSnapshot:
        """Pin the live snapshot: evaluate a whole request against one version."""
    def set_clock(self, clock: Callable[[], float] | None) -> None:
        """Use ``clock() -> epoch seconds`` for schedules (None: the system clock)."""
    def context(self, attrs: Mapping[str, Any] | None = None) -> Context:
        """Bind request attributes once; pass the result to every check of the request."""
    def is_enabled(self, key: str, ctx: ContextArg = None) -> bool:
        """Whether the boolean flag ``key`` is on for ``ctx``.

        False when the flag is unknown, not boolean (its variants are not exactly
        true/false), off, or serves its ``off`` variant. Never raises.
        """
    def variant(self, key: str, ctx: ContextArg = None) -> str | None:
        """The name of the variant ``key`` serves for ``ctx`` (e.g. ``"control"``).

        None when the flag is unknown. Never raises.
        """
    def value(self, key: str, ctx: ContextArg = None, default: Any = None) -> Any:
        """The value ``key`` serves for ``ctx`` (objects and arrays read-only).

        Returns ``default`` when the flag is unknown, or when ``default`` is not
        None and the served value is of another type (bool, str, number, object,
        array; a default is a number by ``cfgcore._numbers``' rule, a NumPy scalar or a
        ``Decimal`` too, and an object when it is any mapping). Never raises.
        """
    def evaluate(self, key: str, ctx: ContextArg = None, default: Any = None) -> EvaluationDetails:
        """Full resolution details for ``key`` and ``ctx``.

        :class:`~cfgcore.details.EvaluationDetails` with the value, the variant,
        the reason (STATIC, DEFAULT, TARGETING_MATCH, SPLIT, DISABLED,
        PREREQUISITE_FAILED or ERROR), the index of the deciding rule, and for
        ERROR the error code (FLAG_NOT_FOUND, TYPE_MISMATCH) with ``default`` as
        the value. Never raises.
        """
    def evaluate_all(self, ctx: ContextArg = None) -> dict[str, Any]:
        """Every flag's value for ``ctx`` in one call: ``{flag_key: value}``.

        The context is bound once for all flags; one clock reading serves every
        schedule. Never raises.
        """
    def _install(self, compiled: CompiledSnapshot) -> CompiledSnapshot: ...

@final
class SeedAPI:
    """The seed API's per-request calls, for one engine, without a Python frame."""

    tests: dict[str, Any]
    metas: dict[str, Any]
    runs: dict[str, Any]
    views: tuple[Any, ...]
    expose: Callable[..., Any]  # (test, variant, ctx), and seen=, runs= when it takes_views
    def __init__(
        self, engine: EngineCore, tests: dict[str, Any], expose: Callable[[str, str, Any], Any]
    ) -> None: ...
    def log_to(
        self,
        append: Callable[[Any], Any] | None,
        clock: Callable[[], float] | None = None,
        shard_limit: int = 15_625,
    ) -> None:
        """Record first exposures here (``append``), ``shard_limit`` users per dedup shard."""
    def metrics_to(
        self,
        queue: Callable[[Any], Any] | None,
        record: Callable[..., Any],
        counted: Callable[[], Any] | None = None,
        event_id_text: Callable[[Any], str | None] | None = None,
        untagged: Any = None,
    ) -> None:
        """Serve ``record_metric``: the metric queue, the store's record(), the
        guardrails' counter (a weak method), the reading of a caller's event id and the
        run slot of an untagged event."""
    def record_metric(
        self,
        test_name: Any,
        metric: str,
        value: Any = 1.0,
        *,
        user_context: ContextArg = None,
        user_id: Any = None,
        variant: Any = None,
        event_id: Any = None,
    ) -> bool:
        """``DynamicConfigurationManager.record_metric`` without a Python frame."""
    def is_feature_enabled(self, flag: Any, user_context: ContextArg = None) -> bool:
        """Whether ``flag`` (a flag name, or an Enum member whose value is one) is on."""
    def get_ab_test_variant(self, test_name: Any, user_context: ContextArg = None) -> str | None:
        """The variant of A/B test ``test_name`` for this user, or None; the first one
        per user goes to ``expose``."""

def _own_methods(cls: type, names: tuple[str, ...]) -> None:
    """Give ``cls`` (a Python subclass of EngineCore) C method descriptors of its own."""

def _slot_pool_size() -> int:
    """Slot arrays waiting in the pool (0 on free-threaded builds): for the tests."""

MAX_QUEUE_BYTES: int

@final
class RecordQueue:
    """The request thread's side of a BackgroundWriter: append without a Python frame,
    bounded by count and (the text of the fields ``sized`` names) by bytes."""

    max_pending: int
    appended: int
    dropped: int
    closed: bool
    started: bool
    start: Callable[[], Any]
    max_bytes: int
    long_added: int
    long_taken: int
    byte_dropped: int
    @property
    def share(self) -> int: ...
    @property
    def short_text(self) -> int: ...
    @property
    def sized(self) -> tuple[int, ...]: ...
    def __init__(
        self,
        pending: Any,
        max_pending: int,
        start: Callable[[], Any],
        max_bytes: int = ...,
        sized: Iterable[int] = (),
    ) -> None: ...
    def reset(self, pending: Any) -> None:
        """A new (empty) deque, nothing appended, not started, no long record's bytes
        waiting (a forked child)."""
    def text_size(self, record: Any) -> int:
        """The characters of the exact-str fields ``sized`` names in the tuple ``record``."""
    def append(self, record: Any) -> bool:
        """Queue ``record`` (no lock, no wait). False if dropped."""
