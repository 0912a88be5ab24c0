"""The directory adapter: the only package that imports ldap3.

``connect()`` returns a ``Directory`` bound to the first reachable server; values reach
filters and DNs only through ``umacct.directory.escape``.
"""

from umacct.directory.adapter import Change, Directory, Entry, connect
from umacct.directory.errors import AlreadyExistsError, ConflictError
from umacct.directory.schema import Subschema

__all__ = [
    "AlreadyExistsError",
    "Change",
    "ConflictError",
    "Directory",
    "Entry",
    "Subschema",
    "connect",
]
