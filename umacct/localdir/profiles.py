"""The six account profiles of the local directory: those of the shipped example configuration.

The demo configuration, the generated population and the tests all read this table, so a
profile is described here once.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from umacct.config import ProfileConfig, example_config_text, parse_config

PROFILES: Mapping[str, ProfileConfig] = MappingProxyType(
    dict(parse_config(tomllib.loads(example_config_text())).profiles)
)
STAFF_DOMAIN = PROFILES["titulaire"].domain


def profiles_as_toml() -> dict[str, dict[str, Any]]:
    """The profile table as ``[profiles.<key>]`` TOML tables (unset options left out)."""
    return {
        key: {
            name: value for name, value in dataclasses.asdict(profile).items() if value is not None
        }
        for key, profile in PROFILES.items()
    }
