"""Context mappings that are not dicts, for the tests of how both evaluators read them.

``DictMapping`` is a plain ``Mapping`` over a dict: a check reads it through ``get()``
(as it reads any mapping that is not an exact dict), so a test subclasses it and
overrides ``get()`` with whatever hostile or observable behaviour it is about.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class DictMapping(Mapping):
    """A mapping that is not a dict, over ``data`` (read live: changes to it show)."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def __getitem__(self, key: Any) -> Any:
        return self.data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)
