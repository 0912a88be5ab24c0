"""Small builders shared by the tests."""

from __future__ import annotations

from typing import Any


def minimal_config() -> dict[str, Any]:
    """The smallest valid configuration document (one profile, a loopback directory)."""
    return {
        "directory": {
            "urls": ["ldap://127.0.0.1:3899"],
            "bind_dn": "cn=umacct,ou=system,dc=example,dc=org",
            "base_dn": "dc=example,dc=org",
            "people_dn": "ou=people,dc=example,dc=org",
            "tls": "none",
        },
        "profiles": {
            "etudiant": {"label": "Étudiant", "domain": "etu.example.org", "grace_months": 6}
        },
    }
