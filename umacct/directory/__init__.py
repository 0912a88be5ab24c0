"""The directory adapter: the only code that talks LDAP (with a client of its own).

``connect()`` returns a ``Directory`` bound to the first reachable server (``needs_password``
says whether the configured bind takes one); ``mapped_identity()`` says whom the server
mapped it to. Values reach filters and DNs only through ``umacct.directory.escape``.
"""

from umacct.directory.adapter import (
    Change,
    Directory,
    Entry,
    Identity,
    connect,
    mapped_identity,
)
from umacct.directory.connection import needs_password
from umacct.directory.errors import AlreadyExistsError, ConflictError
from umacct.directory.schema import Subschema
from umacct.directory.wire import AddsSent

__all__ = [
    "AddsSent",
    "AlreadyExistsError",
    "Change",
    "ConflictError",
    "Directory",
    "Entry",
    "Identity",
    "Subschema",
    "connect",
    "mapped_identity",
    "needs_password",
]
