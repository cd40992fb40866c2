"""Provenance: which layer, file and line (or environment variable, or runtime update)
set a key, and what it overrides. Computed on demand by searching the kept layers from
the top down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cfgcore.config.files import Layer
from cfgcore.config.tree import format_path, get_path, split_path

# --------------------------------------------------------------------------- provenance


@dataclass(frozen=True)
class Origin:
    """One layer's contribution to a key: the layer and where in it."""

    layer: str
    kind: str
    status: str
    value: Any = None
    file: str | None = None
    line: int | None = None
    env_var: str | None = None
    source: str | None = None
    timestamp: float | None = None

    def __repr__(self) -> str:
        from cfgcore.runtime.redaction import redact

        return (
            f"Origin(layer={self.layer!r}, kind={self.kind!r}, status={self.status!r}, "
            f"value={redact('', self.value)!r}, where={self.where()!r})"
        )

    def where(self) -> str:
        """``file:line``, ``$VAR`` or the runtime source, for humans."""
        if self.env_var:
            return f"${self.env_var}"
        if self.file:
            return f"{self.file}:{self.line}" if self.line else self.file
        if self.source:
            return self.source
        return f"<{self.layer}>"


@dataclass(frozen=True)
class Provenance:
    """Why a key has its value: the deciding layer and every layer below that set it.

    ``found`` is False when the key is absent (``winner`` then says which layer
    deleted or replaced it, if any). ``chain`` lists the origins top-down.
    """

    key: str
    found: bool
    value: Any
    winner: Origin | None
    chain: tuple[Origin, ...]

    def __repr__(self) -> str:
        from cfgcore.runtime.redaction import redact

        return (
            f"Provenance(key={self.key!r}, found={self.found!r}, "
            f"value={redact(self.key, self.value)!r}, chain={self._masked_chain()!r})"
        )

    def _masked_chain(self) -> tuple[Origin, ...]:
        from dataclasses import replace

        from cfgcore.runtime.redaction import redact

        return tuple(replace(o, value=redact(self.key, o.value)) for o in self.chain)

    def __str__(self) -> str:
        # Provenance ends up in logs and terminals: secret values are redacted.
        from cfgcore.runtime.redaction import redact

        lines = []
        if self.found:
            lines.append(f"{self.key} = {redact(self.key, self.value)!r}")
        else:
            lines.append(f"{self.key} is not set")
        for i, o in enumerate(self.chain):
            tag = "set by" if i == 0 else "overrides"
            if o.status != "set":
                tag = f"{o.status} by"
            value = "" if o.status != "set" else f" = {redact(self.key, o.value)!r}"
            lines.append(f"  {tag:<11} {o.kind} {o.layer!r} at {o.where()}{value}")
        return "\n".join(lines)


def explain(layers: list[Layer], key: str | Sequence[Any], merged: Any) -> Provenance:
    """Provenance of ``key`` given the layers (bottom first) and their merged result."""
    path = split_path(key)
    chain: list[Origin] = []
    for layer in reversed(layers):
        status, value, decisive = layer.lookup(path)
        if status == "absent":
            continue
        env_var = None
        for end in range(len(path), 0, -1):
            env_var = layer.env_vars.get(path[:end])
            if env_var:
                break
        if env_var is None and layer.env_vars:
            # A section variables merged into: named when one variable did it alone.
            below = {v for p, v in layer.env_vars.items() if p[: len(path)] == path}
            env_var = below.pop() if len(below) == 1 else None
        written = layer.written_by(path)
        src = None
        for end in range(len(path), 0, -1):
            src = layer.sources.get(path[:end])
            if src:
                break
        chain.append(
            Origin(
                layer=written.name,
                kind=layer.kind,
                status=status,
                value=value,
                file=written.file,
                line=written.line_of(decisive if status != "set" else path),
                env_var=env_var,
                source=src[0] if src else None,
                timestamp=src[1] if src else None,
            )
        )
        # Keep going: the layers below are what the winner overrides, which is half of
        # the answer to "why is it this value".
    absent = object()
    value = get_path(merged, path, absent)
    found = value is not absent
    return Provenance(
        key=format_path(path),
        found=found,
        value=value if found else None,
        winner=chain[0] if chain else None,
        chain=tuple(chain),
    )
