"""Extension requests in the tool's state: one per account and grace end, in both backends.

A person asks for an extension of the grace period (the link of an expiry warning, or the
logged-in account page); a profile with ``extension_approval = "review"`` keeps the request
pending until the helpdesk grants or refuses it (``umacct extension grant|refuse ID``).
The request is state of the tool like a link: kept where the links are (``state.db`` or
the directory branch, ``ou=extensions``), so that a request filed on the web host is
decided on the admin host.

A request is named by its account and the grace end it was asked on: asking twice before
a decision files one request, and a refused request is not asked again for the same grace
end (a granted one moves the grace end, and the next renewal is a new request). Deciding is
a compare and set from ``pending``: of two hosts deciding at once, one wins.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, Protocol

from umacct.directory import AlreadyExistsError, Change, ConflictError, Directory, Entry
from umacct.directory.escape import filter_eq
from umacct.errors import NotFoundError
from umacct.state.branch import (
    EXTENSIONS,
    RECORD_ATTRIBUTES,
    UNIT_CLASS,
    decode,
    encode,
    record_attributes,
    record_dn,
    record_key,
    unit_dn,
)
from umacct.state.sqlite_errors import sqlite_reported
from umacct.state.stored_times import read_stored_time, to_stored_time

"""The unit of the state branch that holds the requests."""
PENDING, GRANTED, REFUSED = "pending", "granted", "refused"
STATUSES = (PENDING, GRANTED, REFUSED)
ID_LENGTH = 10
ID_KEY = "request-id "

SQL_MIGRATION = (
    """CREATE TABLE extension_requests (
        id TEXT PRIMARY KEY,
        account TEXT NOT NULL,
        grace_end TEXT NOT NULL,
        requested_at TEXT NOT NULL,
        via TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        decided_by TEXT,
        decided_at TEXT,
        granted_until TEXT,
        UNIQUE (account, grace_end)
    )""",
    "CREATE INDEX extension_requests_by_status ON extension_requests (status, requested_at)",
)
"""The state.db schema step that adds the requests (``umacct.store`` applies it)."""


@dataclass(frozen=True)
class ExtensionRequest:
    """A person's request for an extension of the grace period, and its decision."""

    request_id: str
    account: str
    grace_end: date
    """The grace end when it was asked (one request per account and grace end)."""
    requested_at: datetime
    via: str
    """``link`` (the expiry warning's) or ``account`` (the logged-in page)."""
    status: str = PENDING
    reason: str | None = None
    decided_by: str | None = None
    """``auto`` (the profile grants at once), or the user who ran grant or refuse."""
    decided_at: datetime | None = None
    granted_until: date | None = None


def request_id_for(account: str, grace_end: date) -> str:
    """The request's id: the same on every host for the same account and grace end."""
    digest = hashlib.sha256(f"{account}\x00{grace_end.isoformat()}".encode()).hexdigest()
    return digest[:ID_LENGTH]


def is_request_id(text: str) -> bool:
    """Whether ``text`` has the shape of a request id (lowercase hex)."""
    return len(text) == ID_LENGTH and all(c in "0123456789abcdef" for c in text)


def new_request(account: str, grace_end: date, now: datetime, via: str) -> ExtensionRequest:
    """A pending request of ``account`` on ``grace_end``."""
    return ExtensionRequest(request_id_for(account, grace_end), account, grace_end, now, via)


class ExtensionRequestStore(Protocol):
    """What the services need of a store to keep extension requests."""

    def add_extension_request(self, request: ExtensionRequest) -> ExtensionRequest:
        """Record the request; the one already there for its account and grace end, if any."""
        ...

    def find_extension_request(self, request_id: str) -> ExtensionRequest | None:
        """The request with this id, if any."""
        ...

    def extension_requests(
        self, *, account: str | None = None, status: str | None = None
    ) -> list[ExtensionRequest]:
        """The requests (of an account, of a status), oldest first."""
        ...

    def decide_extension_request(self, decided: ExtensionRequest) -> bool:
        """Store the decision if the request is still pending; False if it no longer was."""
        ...

    def reopen_extension_request(self, decided: ExtensionRequest) -> None:
        """Undo ``decide_extension_request`` of that decision (the change it allowed failed)."""
        ...


def _day(text: object) -> date | None:
    return date.fromisoformat(text) if isinstance(text, str) and text else None


def as_record(request: ExtensionRequest) -> dict[str, Any]:
    """The request as a flat record (a state.db row, the directory entry's JSON)."""
    return {
        "id": request.request_id, "account": request.account,
        "grace_end": request.grace_end.isoformat(), "requested_at": to_stored_time(request.requested_at),
        "via": request.via, "status": request.status, "reason": request.reason,
        "decided_by": request.decided_by,
        "decided_at": to_stored_time(request.decided_at) if request.decided_at else None,
        "granted_until": request.granted_until.isoformat() if request.granted_until else None,
    }  # fmt: skip


def from_record(record: Any) -> ExtensionRequest | None:
    """The request of a record (None for one that does not read as a request)."""
    try:
        grace_end, requested_at = (
            _day(record["grace_end"]),
            read_stored_time(record["requested_at"]),
        )
        if grace_end is None or requested_at is None or record["status"] not in STATUSES:
            return None
        return ExtensionRequest(
            request_id=str(record["id"]), account=str(record["account"]), grace_end=grace_end,
            requested_at=requested_at, via=str(record["via"]), status=str(record["status"]),
            reason=record["reason"], decided_by=record["decided_by"],
            decided_at=read_stored_time(record["decided_at"]), granted_until=_day(record["granted_until"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError, IndexError):
        return None


# --- state.db -------------------------------------------------------------------------------


_COLUMNS = (
    "id", "account", "grace_end", "requested_at", "via", "status", "reason", "decided_by",
    "decided_at", "granted_until",
)  # fmt: skip


class SQLiteExtensionRequests:
    """The requests in ``state.db`` (a part of ``SQLiteStore``)."""

    _conn: sqlite3.Connection

    @sqlite_reported
    def add_extension_request(self, request: ExtensionRequest) -> ExtensionRequest:
        """Record the request; the one already there for its account and grace end, if any."""
        record = as_record(request)
        with self._conn:
            self._conn.execute(
                f"INSERT OR IGNORE INTO extension_requests ({', '.join(_COLUMNS)})"  # noqa: S608
                f" VALUES ({', '.join('?' for _ in _COLUMNS)})",
                [record[column] for column in _COLUMNS],
            )
        row = self._conn.execute(
            "SELECT * FROM extension_requests WHERE account = ? AND grace_end = ?",
            (request.account, record["grace_end"]),
        ).fetchone()
        found = from_record(dict(row)) if row is not None else None
        return found or request

    @sqlite_reported
    def find_extension_request(self, request_id: str) -> ExtensionRequest | None:
        """The request with this id, if any."""
        row = self._conn.execute(
            "SELECT * FROM extension_requests WHERE id = ?", (request_id,)
        ).fetchone()
        return from_record(dict(row)) if row is not None else None

    @sqlite_reported
    def extension_requests(
        self, *, account: str | None = None, status: str | None = None
    ) -> list[ExtensionRequest]:
        """The requests (of an account, of a status), oldest first."""
        sql, params = "SELECT * FROM extension_requests WHERE 1 = 1", list[str]()
        if account is not None:
            sql, params = f"{sql} AND account = ?", [*params, account]
        if status is not None:
            sql, params = f"{sql} AND status = ?", [*params, status]
        rows = self._conn.execute(f"{sql} ORDER BY requested_at, id", params).fetchall()
        return [found for row in rows if (found := from_record(dict(row))) is not None]

    @sqlite_reported
    def decide_extension_request(self, decided: ExtensionRequest) -> bool:
        """Store the decision if the request is still pending; False if it no longer was."""
        record = as_record(decided)
        with self._conn:
            cursor = self._conn.execute(
                "UPDATE extension_requests SET status = ?, reason = ?, decided_by = ?,"
                " decided_at = ?, granted_until = ? WHERE id = ? AND status = ?",
                (record["status"], record["reason"], record["decided_by"], record["decided_at"],
                 record["granted_until"], decided.request_id, PENDING),
            )  # fmt: skip
        return cursor.rowcount == 1

    @sqlite_reported
    def reopen_extension_request(self, decided: ExtensionRequest) -> None:
        """Undo ``decide_extension_request`` of that decision (the change it allowed failed)."""
        record = as_record(decided)
        with self._conn:
            self._conn.execute(
                "UPDATE extension_requests SET status = ?, reason = NULL, decided_by = NULL,"
                " decided_at = NULL, granted_until = NULL WHERE id = ? AND status = ?"
                " AND decided_at = ?",
                (PENDING, decided.request_id, record["status"], record["decided_at"]),
            )


# --- the directory branch -------------------------------------------------------------------


def request_dn(state_dn: str, request: ExtensionRequest) -> str:
    """``cn=<hash of account and grace end>,ou=extensions,<state_dn>``."""
    name = record_key(request.account, request.grace_end.isoformat())
    return record_dn(state_dn, EXTENSIONS, name)


def request_attributes(request: ExtensionRequest) -> dict[str, list[str]]:
    """The entry of a request: found by its account and its id, its status a value of its own."""
    name = record_key(request.account, request.grace_end.isoformat())
    keys = [request.account, f"{ID_KEY}{request.request_id}"]
    return record_attributes(name, keys, encode(as_record(request)), _status_value(request))


def _status_value(request: ExtensionRequest) -> str:
    if request.status == PENDING or request.decided_at is None:
        return PENDING
    return f"{request.status} {to_stored_time(request.decided_at)}"


def _from_entry(entry: Entry) -> ExtensionRequest | None:
    return from_record(decode(entry.get("description")))


class DirectoryExtensionRequests:
    """The requests under ``ou=extensions`` of the state branch (a part of ``DirectoryStore``).

    A branch made before requests existed gets the unit at the first request; until then
    there is simply no request to read.
    """

    directory: Directory
    state_dn: str

    def add_extension_request(self, request: ExtensionRequest) -> ExtensionRequest:
        """Add the request's entry; the one already there for its account and grace end."""
        dn = request_dn(self.state_dn, request)
        attributes = request_attributes(request)
        try:
            try:
                self.directory.add(dn, attributes)
            except NotFoundError:
                self._add_unit()
                self.directory.add(dn, attributes)
        except AlreadyExistsError:
            entry = self.directory.read(dn, RECORD_ATTRIBUTES)
            found = _from_entry(entry) if entry is not None else None
            return found or request
        return request

    def find_extension_request(self, request_id: str) -> ExtensionRequest | None:
        """The request with this id, if any."""
        for found in self._requests(filter_eq("cn", f"{ID_KEY}{request_id}")):
            if found.request_id == request_id:
                return found
        return None

    def extension_requests(
        self, *, account: str | None = None, status: str | None = None
    ) -> list[ExtensionRequest]:
        """The requests (of an account, of a status), oldest first."""
        search = filter_eq("cn", account) if account is not None else "(objectClass=*)"
        if status == PENDING:
            search = f"(&{search}{filter_eq('description', PENDING)})"
        found = [
            request
            for request in self._requests(search)
            if (account is None or request.account == account)
            and (status is None or request.status == status)
        ]
        return sorted(found, key=lambda request: (request.requested_at, request.request_id))

    def decide_extension_request(self, decided: ExtensionRequest) -> bool:
        """One modify guarded by the ``pending`` value: of two deciding hosts, one wins."""
        before = self.find_extension_request(decided.request_id)
        if before is None or before.status != PENDING:
            return False
        return self._swap(before, decided)

    def reopen_extension_request(self, decided: ExtensionRequest) -> None:
        """The reverse modify, guarded by that decision's value."""
        pending = replace(
            decided, status=PENDING, reason=None, decided_by=None, decided_at=None,
            granted_until=None,
        )  # fmt: skip
        self._swap(decided, pending)

    def _swap(self, old: ExtensionRequest, new: ExtensionRequest) -> bool:
        old_status, new_status = _status_value(old), _status_value(new)
        dn = request_dn(self.state_dn, old)
        entry = self.directory.read(dn, RECORD_ATTRIBUTES)
        if entry is None or old_status not in entry.get("description"):
            return False
        stored = [value for value in entry.get("description") if value != old_status]
        try:
            self.directory.modify(
                dn,
                [
                    Change("delete", "description", (old_status, *stored)),
                    Change("add", "description", (new_status, encode(as_record(new)))),
                ],
                assertion=filter_eq("description", old_status),
            )
        except (ConflictError, NotFoundError):
            return False
        return True

    def _requests(self, search: str) -> Iterable[ExtensionRequest]:
        try:
            entries: Sequence[Entry] = list(
                self.directory.search(
                    unit_dn(self.state_dn, EXTENSIONS), search, RECORD_ATTRIBUTES, scope="one"
                )
            )
        except NotFoundError:
            return []  # a branch made before requests existed: none yet
        return [found for entry in entries if (found := _from_entry(entry)) is not None]

    def _add_unit(self) -> None:
        add_unit(self.directory, self.state_dn)


def add_unit(directory: Directory, state_dn: str) -> None:
    """Add ``ou=extensions`` to the branch unless it is there."""
    with contextlib.suppress(AlreadyExistsError):  # made before, or by another host meanwhile
        directory.add(
            unit_dn(state_dn, EXTENSIONS), {"objectClass": [UNIT_CLASS], "ou": [EXTENSIONS]}
        )


def migrated_item(state_dn: str, row: dict[str, Any]) -> tuple[str, dict[str, list[str]]] | None:
    """A state.db row as the directory entry ``umacct state migrate`` adds (None: unreadable)."""
    request = from_record(row)
    if request is None:
        return None
    return request_dn(state_dn, request), request_attributes(request)
