"""The seed's ``configuration_profiles`` module: deployment and geographic profiles.

The implementation lives in :mod:`cfgcore.config.profiles`.
"""

from cfgcore.config.profiles import (
    EU_PROFILE_MARKER,
    DeploymentProfile,
    GeographicProfile,
    Profile,
    ProfileManager,
    get_profile_manager,
)

__all__ = [
    "DeploymentProfile",
    "EU_PROFILE_MARKER",
    "GeographicProfile",
    "Profile",
    "ProfileManager",
    "get_profile_manager",
]
