"""Every way to the providers checks the same things first (one ``checked_addresses``)."""

from __future__ import annotations

import pytest
from helpers import minimal_config

from umacct.config import DirectoryConfig, parse_config
from umacct.directory.connection import checked_addresses
from umacct.directory.providers import each_provider
from umacct.errors import ConfigError


def _settings(**directory: object) -> DirectoryConfig:
    document = minimal_config()
    document["directory"].update(directory)
    return parse_config(document).directory


def test_an_empty_password_is_refused_before_any_provider_is_reached() -> None:
    """An empty password would make the simple bind anonymous, which many servers accept."""
    settings = _settings(
        urls=["ldaps://ldap1.example.org", "ldaps://ldap2.example.org"], tls="ldaps"
    )
    for password in (None, ""):
        with pytest.raises(ConfigError, match="an empty one is refused"):
            checked_addresses(settings, password)
        with pytest.raises(ConfigError, match="an empty one is refused"):
            list(each_provider(settings, password))


def test_sasl_external_sends_no_password_and_takes_ldapi_only() -> None:
    settings = _settings(urls=["ldapi://%2Frun%2Fslapd%2Fldapi"], bind_method="sasl_external")
    addresses, password = checked_addresses(settings, "a-password-at-hand")
    assert password is None and [a.scheme for a in addresses] == ["ldapi"]
