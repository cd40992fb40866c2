"""The seed's ``config_utils`` module: :class:`ConfigurationTransformer`.

The implementation lives in :mod:`cfgcore.config.transforms`.
"""

from cfgcore.config.transforms import (
    ConfigurationTransformer,
    parse_duration,
    parse_size,
    substitute_env,
)

__all__ = ["ConfigurationTransformer", "parse_duration", "parse_size", "substitute_env"]
