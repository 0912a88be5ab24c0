"""One loopback test for every cleartext exception (directory, relay, links, the web server)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from umacct.directory.connection import parse_url
from umacct.loopback import is_loopback_host


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True), ("LOCALHOST", True), ("localhost.", True), ("127.0.0.1", True),
        ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("127.0.0.1.evil.com", False),
        ("localhost.evil.com", False), ("10.0.0.1", False), ("::2", False), ("", False),
        ("ldap.example.org", False),
    ],
)  # fmt: skip
def test_what_names_this_machine(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@given(st.text(max_size=40))
def test_a_name_is_never_taken_for_this_machine_unless_it_is_localhost(host: str) -> None:
    if is_loopback_host(host):
        assert host.lower().rstrip(".") == "localhost" or host.strip("[]")[:1] in "0123456789:"


def test_the_directory_url_uses_the_same_test() -> None:
    assert parse_url("ldap://LOCALHOST:389").is_local
    assert not parse_url("ldap://127.0.0.1.evil.com:389").is_local
