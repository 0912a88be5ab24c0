"""Errors that only the directory adapter raises, as subclasses of the tool's hierarchy."""

from __future__ import annotations

from umacct.errors import InvalidInputError, TemporaryError


class AlreadyExistsError(InvalidInputError):
    """An entry with that DN already exists (LDAP result 68, entryAlreadyExists)."""

    kind = "already_exists"


class ConflictError(TemporaryError):
    """The entry changed between its read and the update (LDAP result 122, assertionFailed)."""

    kind = "conflict"
