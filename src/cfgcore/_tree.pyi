"""Type stubs for the compiled tree read path (see ``cfgcore._tree``'s docstring).

Type checkers read the pure-Python reference names (``cfgcore.config.tree.PyFrozenDict``,
``cfgcore.config.view.PyLiveReads``); this stub types direct users of the extension.
"""

from typing import Any

ABSENT: object

class FrozenDict(dict[Any, Any]):
    """A read-only ``dict``: reads are plain dict reads, mutations raise ``TypeError``."""

class FrozenList(list[Any]):
    """A read-only ``list`` (see :class:`FrozenDict`)."""

class LiveReads:
    """The two request-path reads of the live configuration, in C."""

    _snap: Any
    def __getitem__(self, key: Any) -> Any: ...
    def get(self, key: Any, default: Any = None) -> Any:
        """Value at dotted ``key`` (or a tuple/list of segments), else ``default``.
        Never raises."""
