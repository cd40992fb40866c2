"""One exception hierarchy for cfgcore.

Every error raised for bad input is a :class:`ConfigError`. It carries a list of
:class:`Problem` records, each naming the file, the key path and (where known) the
line, so a caller can show all problems at once instead of fixing them one by one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is and what is wrong."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        if self.path:
            return mask(f"{where}: {self.path}: {self.message}")
        return mask(f"{where}: {self.message}")


def _no_mask(text: str) -> str:
    return text


# Set by cfgcore.runtime.secrets (imported with any configuration): messages mask every
# resolved secret (decrypted values, secret files, secret variables).
mask = _no_mask


class ConfigError(Exception):
    """Root of every cfgcore error about configuration or flag input.

    ``problems`` lists every problem found; ``str(err)`` shows them one per line.
    """

    def __init__(self, problems: list[Problem] | str, *, file: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [Problem(path="", message=problems, file=file)]
        self.problems: list[Problem] = list(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return mask(str(self.problems[0]))
        lines = [f"{len(self.problems)} problems:"]
        lines += [f"  - {p}" for p in self.problems]
        return mask("\n".join(lines))


class SnapshotError(ConfigError):
    """A flag snapshot failed to decode or compile; the engine keeps the previous one."""


class ConfigValidationError(ConfigError):
    """Validation blocked a configuration from becoming active."""


class TransformError(ConfigError):
    """A configuration transformation step failed (missing variable, bad duration, ...)."""
