"""Password hashes for entries loaded with ``slapadd`` (the LDIF itself is ``umacct.ldif``)."""

from __future__ import annotations

import base64
import hashlib
import os


def ssha_hash(password: str, salt: bytes | None = None) -> str:
    """A ``{SSHA}`` hash of a password (salted SHA-1), as OpenLDAP stores it.

    Only for entries loaded with ``slapadd``, which does not hash: the running server hashes
    every password it receives with its own, stronger scheme. A fixed ``salt`` makes the hash
    reproducible (generated populations); by default it is random.
    """
    salt = os.urandom(8) if salt is None else salt
    digest = hashlib.sha1(password.encode("utf-8") + salt, usedforsecurity=False).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode("ascii")
