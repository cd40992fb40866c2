"""The seed's ``migration`` module: :class:`LegacyConfigMigrator`.

The implementation lives in :mod:`cfgcore.config.migration`.
"""

from cfgcore.config.migration import (
    LEGACY_FORMATS,
    Conflict,
    LegacyConfigMigrator,
    Migration,
    MigrationReport,
    read_legacy,
)

__all__ = [
    "LEGACY_FORMATS",
    "Conflict",
    "LegacyConfigMigrator",
    "Migration",
    "MigrationReport",
    "read_legacy",
]
