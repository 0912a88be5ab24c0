"""The tool's own state: pending tokens, notices already sent, and job locks.

``Store`` is the interface the services rely on; ``SQLiteStore`` keeps it in an embedded
SQLite file, ``<data_dir>/state.db``, readable by its owner only. Every instant is stored
as UTC ISO 8601 text with a fixed width, so that text order is time order in SQL.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from umacct.closing import Closing
from umacct.datadir import STATE_FILE, ensure_private_dir, open_private_file
from umacct.errors import InvalidInputError, TemporaryError, UnavailableError
from umacct.state.extension_requests import (
    SQL_MIGRATION,
    ExtensionRequestStore,
    SQLiteExtensionRequests,
)
from umacct.state.sqlite_errors import sqlite_reported
from umacct.state.stored_times import StoredTimes, from_stored_time, to_stored_time
from umacct.state.token_rows import insert_token_rows

_LOCK_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_LOCK_POLL_SECONDS = 0.1

# Each entry brings the schema from version N to N + 1; never edit one that has shipped.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE tokens (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            account TEXT NOT NULL,
            purpose TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            issued_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT,
            cancelled_at TEXT,
            payload TEXT NOT NULL DEFAULT '{}'
        )""",
        "CREATE INDEX tokens_by_account ON tokens (account, purpose, issued_at)",
        """CREATE TABLE notices (
            account TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            PRIMARY KEY (account, kind, key)
        )""",
        "CREATE INDEX notices_by_time ON notices (account, kind, sent_at)",
    ),
    (
        """CREATE TABLE purged (
            account TEXT PRIMARY KEY,
            uid TEXT NOT NULL,
            dn TEXT NOT NULL,
            external_id TEXT,
            archive TEXT NOT NULL,
            purged_at TEXT NOT NULL,
            restored_at TEXT
        )""",
        "CREATE INDEX purged_by_uid ON purged (uid)",
        "CREATE INDEX purged_by_external_id ON purged (external_id)",
        """CREATE TABLE saved_values (
            account TEXT NOT NULL,
            name TEXT NOT NULL,
            value_list TEXT NOT NULL,
            saved_at TEXT NOT NULL,
            PRIMARY KEY (account, name)
        )""",
    ),
    ("ALTER TABLE purged ADD COLUMN archive_sha256 TEXT",),
    SQL_MIGRATION,
)
SCHEMA_VERSION = len(_MIGRATIONS)
PURGE_KEYS_PER_QUERY = 250
"""Keys per ``find_purges`` query (each given three times: 750 of SQLite's 32,766 variables)."""


@dataclass(frozen=True)
class PurgeRecord:
    """A purged account: its identifier is never handed out again (security 21)."""

    account: str
    uid: str
    dn: str
    archive: Path
    purged_at: datetime
    restored_at: datetime | None = None
    external_id: str | None = None
    """The HR or student-system identifier, to recognise a person who comes back."""
    archive_sha256: str | None = None
    """The archive's SHA-256 (hex) when written; None in purges recorded before it was kept."""


@dataclass(frozen=True)
class StoredToken:
    """A token row as the store keeps it: the hash of the token, never the token."""

    token_id: int
    account: str
    purpose: str
    token_hash: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    cancelled_at: datetime | None
    payload: dict[str, str]


@dataclass(frozen=True)
class NewToken:
    """A token to record: its hash only, never the token."""

    account: str
    purpose: str
    token_hash: str
    issued_at: datetime
    expires_at: datetime
    payload: dict[str, str]


class Store(ExtensionRequestStore, Protocol):
    """What the services need from the state store, whatever keeps it."""

    def issue_tokens(self, tokens: Sequence[NewToken]) -> list[int]:
        """Record each token and cancel its account's pending ones of that purpose; their ids.

        All in one transaction (one disk sync).
        """
        ...

    def find_token(self, token_hash: str) -> StoredToken | None:
        """Return the token with this hash, if any."""
        ...

    def mark_token_used(self, token_id: int, now: datetime) -> bool:
        """Mark a pending, unexpired token used; False if it no longer was (lost a race)."""
        ...

    def release_token(self, token_id: int, used_at: datetime) -> None:
        """Undo ``mark_token_used`` of that instant (the change the token was for failed)."""
        ...

    def cancel_tokens(self, account: str, purposes: Sequence[str] | None, now: datetime) -> int:
        """Cancel the account's pending tokens (of these purposes, or all); return how many."""
        ...

    def pending_tokens(self, account: str, now: datetime) -> list[StoredToken]:
        """List the account's tokens neither used, cancelled nor expired at ``now``."""
        ...

    def count_tokens_issued(self, account: str, purpose: str, since: datetime) -> int:
        """How many tokens of this purpose were issued to the account from ``since`` on."""
        ...

    def record_notice(self, account: str, kind: str, key: str, now: datetime) -> bool:
        """Record that a notice was sent; False if this (account, kind, key) already was."""
        ...

    def has_notice(self, account: str, kind: str, key: str) -> bool:
        """Whether this (account, kind, key) notice was already recorded."""
        ...

    def notice_sent_at(self, account: str, kind: str, key: str) -> datetime | None:
        """When this (account, kind, key) notice was recorded, if it was."""
        ...

    def last_notice(self, account: str, kind: str) -> datetime | None:
        """When the account last got a notice of this kind, if ever."""
        ...

    def job_lock(
        self, name: str, wait_seconds: float = 0
    ) -> contextlib.AbstractContextManager[None]:
        """Hold the advisory lock of a job, e.g. the daily sweep, for the ``with`` block."""
        ...

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Within the block, the writes are kept together and made durable once, at its end.

        For a run that writes for many accounts (the sweep): one disk sync per batch instead
        of one per write. Each write still applies as a whole or not at all; a process that
        dies in the block loses the block's writes (never part of one). Nested blocks join
        the outer one.
        """
        ...

    def record_purge(self, purge: PurgeRecord) -> None:
        """Remember a purged account: its identifier stays reserved, its archive findable."""
        ...

    def find_purge(self, account_or_uid: str) -> PurgeRecord | None:
        """The purge of this identifier, uid or external id, restored or not, if any."""
        ...

    def find_purges(self, keys: Iterable[str]) -> dict[str, PurgeRecord | None]:
        """``find_purge`` of every key at once (one look-up a batch): each key to its answer."""
        ...

    def purges(self) -> list[PurgeRecord]:
        """Every purge recorded, restored or not, oldest first (``list --state purged``)."""
        ...

    def mark_restored(self, account: str, now: datetime) -> None:
        """Note that a purged account was put back."""
        ...

    def save_values(self, account: str, values: Mapping[str, Sequence[str]], now: datetime) -> None:
        """Keep lists of values for later, by name (e.g. affiliations before the grace period)."""
        ...

    def saved_values(self, account: str, name: str) -> list[str] | None:
        """The values saved under this name, or None."""
        ...

    def dump(self) -> dict[str, list[dict[str, object]]]:
        """Every row of every table, for comparing the state before and after a command."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...


class SQLiteStore(Closing, SQLiteExtensionRequests):
    """The ``Store`` in ``<data_dir>/state.db``: WAL mode, one connection per instance.

    Several processes may open the same file; writes are short ``BEGIN IMMEDIATE``
    transactions, and a writer waits up to ``busy_timeout_ms`` for another one to finish.
    """

    def __init__(self, data_dir: Path, *, busy_timeout_ms: int = 5000) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / STATE_FILE
        ensure_private_dir(self.data_dir)
        self._create_private_file()
        self._conn = self._connect(busy_timeout_ms)
        self._batch_depth = 0
        """1 inside ``batch()``: writes join its transaction instead of committing each."""
        self._migrate()

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    # --- tokens ---------------------------------------------------------------------------

    @sqlite_reported
    def issue_tokens(self, tokens: Sequence[NewToken]) -> list[int]:
        """Record each token and cancel its account's pending ones of that purpose; their ids.

        All in one transaction (one disk sync).
        """
        stamps = StoredTimes()
        rows = [
            (token.account, token.purpose, token.token_hash, stamps[token.issued_at],
             stamps[token.expires_at],
             json.dumps(token.payload, sort_keys=True) if token.payload else "{}")
            for token in tokens
        ]  # fmt: skip
        with self._writing():
            return insert_token_rows(self._conn, rows)

    @sqlite_reported
    def find_token(self, token_hash: str) -> StoredToken | None:
        """Return the token with this hash, if any."""
        row = self._conn.execute(
            "SELECT * FROM tokens WHERE token_hash = ?", (token_hash,)
        ).fetchone()
        return None if row is None else _token_from_row(row)

    @sqlite_reported
    def mark_token_used(self, token_id: int, now: datetime) -> bool:
        """Mark a pending, unexpired token used; False if it no longer was (lost a race)."""
        stamp = to_stored_time(now)
        with self._writing(one_statement=True):
            cursor = self._conn.execute(
                "UPDATE tokens SET used_at = ? WHERE id = ? AND used_at IS NULL"
                " AND cancelled_at IS NULL AND expires_at > ?",
                (stamp, token_id, stamp),
            )
        return cursor.rowcount == 1

    @sqlite_reported
    def release_token(self, token_id: int, used_at: datetime) -> None:
        """Undo ``mark_token_used`` of that instant (the change the token was for failed)."""
        with self._writing(one_statement=True):
            self._conn.execute(
                "UPDATE tokens SET used_at = NULL WHERE id = ? AND used_at = ?",
                (token_id, to_stored_time(used_at)),
            )

    @sqlite_reported
    def cancel_tokens(self, account: str, purposes: Sequence[str] | None, now: datetime) -> int:
        """Cancel the account's pending tokens (of these purposes, or all); return how many."""
        stamp = to_stored_time(now)
        sql = (
            "UPDATE tokens SET cancelled_at = ? WHERE account = ? AND used_at IS NULL"
            " AND cancelled_at IS NULL AND expires_at > ?"
        )
        params: list[str] = [stamp, account, stamp]
        if purposes is not None:
            if not purposes:
                return 0
            sql += f" AND purpose IN ({', '.join('?' for _ in purposes)})"
            params.extend(purposes)
        with self._writing(one_statement=True):
            return self._conn.execute(sql, params).rowcount

    @sqlite_reported
    def pending_tokens(self, account: str, now: datetime) -> list[StoredToken]:
        """List the account's tokens neither used, cancelled nor expired at ``now``."""
        rows = self._conn.execute(
            "SELECT * FROM tokens WHERE account = ? AND used_at IS NULL"
            " AND cancelled_at IS NULL AND expires_at > ? ORDER BY issued_at, id",
            (account, to_stored_time(now)),
        ).fetchall()
        return [_token_from_row(row) for row in rows]

    @sqlite_reported
    def count_tokens_issued(self, account: str, purpose: str, since: datetime) -> int:
        """How many tokens of this purpose were issued to the account from ``since`` on."""
        row = self._conn.execute(
            "SELECT COUNT(*) FROM tokens WHERE account = ? AND purpose = ? AND issued_at >= ?",
            (account, purpose, to_stored_time(since)),
        ).fetchone()
        return int(row[0])

    # --- notices --------------------------------------------------------------------------

    @sqlite_reported
    def record_notice(self, account: str, kind: str, key: str, now: datetime) -> bool:
        """Record that a notice was sent; False if this (account, kind, key) already was."""
        with self._writing(one_statement=True):
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO notices (account, kind, key, sent_at) VALUES (?, ?, ?, ?)",
                (account, kind, key, to_stored_time(now)),
            )
        return cursor.rowcount == 1

    @sqlite_reported
    def has_notice(self, account: str, kind: str, key: str) -> bool:
        """Whether this (account, kind, key) notice was already recorded."""
        row = self._conn.execute(
            "SELECT 1 FROM notices WHERE account = ? AND kind = ? AND key = ?", (account, kind, key)
        ).fetchone()
        return row is not None

    @sqlite_reported
    def notice_sent_at(self, account: str, kind: str, key: str) -> datetime | None:
        """When this (account, kind, key) notice was recorded, if it was."""
        row = self._conn.execute(
            "SELECT sent_at FROM notices WHERE account = ? AND kind = ? AND key = ?",
            (account, kind, key),
        ).fetchone()
        return None if row is None else from_stored_time(row[0])

    def last_notice(self, account: str, kind: str) -> datetime | None:
        """When the account last got a notice of this kind, if ever."""
        row = self._conn.execute(
            "SELECT MAX(sent_at) FROM notices WHERE account = ? AND kind = ?", (account, kind)
        ).fetchone()
        return from_stored_time(row[0])

    # --- purged accounts and saved values ---------------------------------------------------

    @sqlite_reported
    def record_purge(self, purge: PurgeRecord) -> None:
        """Remember a purged account: its identifier stays reserved, its archive findable."""
        with self._writing(one_statement=True):
            self._conn.execute(
                "INSERT OR REPLACE INTO purged"
                " (account, uid, dn, external_id, archive, purged_at, restored_at, archive_sha256)"
                " VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    purge.account,
                    purge.uid,
                    purge.dn,
                    purge.external_id,
                    str(purge.archive),
                    to_stored_time(purge.purged_at),
                    purge.archive_sha256,
                ),
            )

    @sqlite_reported
    def find_purge(self, account_or_uid: str) -> PurgeRecord | None:
        """The purge of this identifier, uid or external id, restored or not, if any."""
        key = account_or_uid.lower()
        row = self._conn.execute(
            "SELECT * FROM purged WHERE lower(account) = ? OR lower(uid) = ? OR lower(external_id) = ?"
            " ORDER BY purged_at DESC",
            (key, key, key),
        ).fetchone()
        return None if row is None else _purge_of_row(row)

    @sqlite_reported
    def find_purges(self, keys: Iterable[str]) -> dict[str, PurgeRecord | None]:
        """``find_purge`` of every key at once: one query per ``PURGE_KEYS_PER_QUERY`` keys.

        The rows come in ``find_purge``'s order and are compared with the keys by SQLite's
        own ``lower()`` (which folds ASCII only), so each key gets the row it would get alone.
        """
        given = list(dict.fromkeys(keys))
        lowered = list(dict.fromkeys(key.lower() for key in given))
        first: dict[str, PurgeRecord] = {}
        for start in range(0, len(lowered), PURGE_KEYS_PER_QUERY):
            chunk = lowered[start : start + PURGE_KEYS_PER_QUERY]
            marks = ", ".join("?" * len(chunk))  # placeholders only: the keys are parameters
            rows = self._conn.execute(
                "SELECT *, lower(account) AS k1, lower(uid) AS k2, lower(external_id) AS k3"  # noqa: S608
                f" FROM purged WHERE lower(account) IN ({marks}) OR lower(uid) IN ({marks})"
                f" OR lower(external_id) IN ({marks}) ORDER BY purged_at DESC",
                chunk * 3,
            ).fetchall()
            wanted = set(chunk)
            for row in rows:
                record: PurgeRecord | None = None
                for key in (row["k1"], row["k2"], row["k3"]):
                    if key in wanted and key not in first:
                        record = record or _purge_of_row(row)
                        first[key] = record
        return {key: first.get(key.lower()) for key in given}

    @sqlite_reported
    def purges(self) -> list[PurgeRecord]:
        """Every purge recorded, restored or not, oldest first (``list --state purged``)."""
        rows = self._conn.execute("SELECT * FROM purged ORDER BY purged_at").fetchall()
        return [_purge_of_row(row) for row in rows]

    @sqlite_reported
    def mark_restored(self, account: str, now: datetime) -> None:
        """Note that a purged account was put back."""
        with self._writing(one_statement=True):
            self._conn.execute(
                "UPDATE purged SET restored_at = ? WHERE account = ?",
                (to_stored_time(now), account),
            )

    @sqlite_reported
    def save_values(self, account: str, values: Mapping[str, Sequence[str]], now: datetime) -> None:
        """Keep lists of values for later, by name, in one transaction (one disk sync)."""
        if not values:
            return
        saved_at = to_stored_time(now)
        rows = [(account, name, json.dumps(list(kept)), saved_at) for name, kept in values.items()]
        marks = ", ".join(["(?, ?, ?, ?)"] * len(rows))  # placeholders only: values are parameters
        with self._writing(one_statement=True):
            self._conn.execute(
                "INSERT OR REPLACE INTO saved_values (account, name, value_list, saved_at)"  # noqa: S608
                f" VALUES {marks}",
                [value for row in rows for value in row],
            )

    @sqlite_reported
    def saved_values(self, account: str, name: str) -> list[str] | None:
        """The values saved under this name, or None."""
        row = self._conn.execute(
            "SELECT value_list FROM saved_values WHERE account = ? AND name = ?", (account, name)
        ).fetchone()
        return None if row is None else [str(v) for v in json.loads(row[0])]

    # --- batches --------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for the block's writes, committed (one disk sync) at its end.

        The write lock of the file is taken at the block's first write and held to its end:
        keep blocks short (a batch of accounts), other writers wait (``busy_timeout_ms``).
        The block's writes are committed even when it ends with an error: they record what
        was done in the directory and the mail queue before the error.
        """
        if self._batch_depth:
            yield
            return
        self._batch_depth = 1
        try:
            yield
        finally:
            self._batch_depth = 0
            if self._conn.in_transaction:
                self._commit()

    @sqlite_reported
    def _commit(self) -> None:
        self._conn.commit()

    @contextlib.contextmanager
    def _writing(self, *, one_statement: bool = False) -> Iterator[None]:
        """One write, whole or not at all: its own transaction, or a savepoint in a batch.

        ``one_statement``: the write is a single SQL statement, which SQLite applies whole
        or not at all by itself: in a batch it needs no savepoint (two statements fewer).
        """
        if not self._batch_depth:
            with self._conn:
                yield
            return
        if not self._conn.in_transaction:
            self._conn.execute("BEGIN IMMEDIATE")
        if one_statement:
            yield
            return
        self._conn.execute("SAVEPOINT write")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK TO write")
            self._conn.execute("RELEASE write")
            raise
        self._conn.execute("RELEASE write")

    # --- job locks ------------------------------------------------------------------------

    @contextlib.contextmanager
    def job_lock(self, name: str, wait_seconds: float = 0) -> Iterator[None]:
        """Hold ``<data_dir>/<name>.lock`` (``flock``) for the ``with`` block.

        Without ``wait_seconds`` a lock held elsewhere raises ``TemporaryError`` at once;
        with it, the lock is polled until that many seconds have passed. The holder's pid is
        written in the file so that the message can name it. The file is never removed:
        removing a lock file lets two holders lock two different files.
        """
        if not _LOCK_NAME.match(name):
            raise InvalidInputError(f"invalid job name {name!r} (lowercase letters, digits, -, _)")
        path = self.data_dir / f"{name}.lock"
        fd = open_private_file(path, "job lock")
        try:
            _acquire(fd, name, wait_seconds)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    # --- inspection -----------------------------------------------------------------------

    @sqlite_reported
    def dump(self) -> dict[str, list[dict[str, object]]]:
        """Every row of every table, ordered, for comparing the state before and after."""
        tables = [
            row[0]
            for row in self._conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
                " AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        result: dict[str, list[dict[str, object]]] = {}
        for table in tables:
            cursor = self._conn.execute(f'SELECT * FROM "{table}" ORDER BY 1, 2')  # noqa: S608
            columns = [column[0] for column in cursor.description]
            result[table] = [dict(zip(columns, row, strict=True)) for row in cursor]
        return result

    @sqlite_reported
    def schema_version(self) -> int:
        """Return the schema version of the file."""
        row = self._conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
        return int(row[0] or 0)

    # --- internals ------------------------------------------------------------------------

    @sqlite_reported
    def _connect(self, busy_timeout_ms: int) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=busy_timeout_ms / 1000, isolation_level="IMMEDIATE"
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        _switch_to_wal(conn, busy_timeout_ms / 1000)
        return conn

    def _create_private_file(self) -> None:
        # sqlite would create the file with the umask's mode; create it 0600 first (never
        # through a link, never someone else's). Its WAL and shared-memory files copy its mode.
        os.close(open_private_file(self.path, "state store"))

    @sqlite_reported
    def _migrate(self) -> None:
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        if self.schema_version() == SCHEMA_VERSION:
            return
        with self._conn:
            # BEGIN IMMEDIATE, then read again: another process may have migrated meanwhile.
            self._conn.execute("BEGIN IMMEDIATE")
            current = self.schema_version()
            if current > SCHEMA_VERSION:
                raise UnavailableError(
                    f"{self.path}: schema version {current} is newer than this umacct "
                    f"({SCHEMA_VERSION}); upgrade umacct"
                )
            for version in range(current, SCHEMA_VERSION):
                for statement in _MIGRATIONS[version]:
                    self._conn.execute(statement)
                self._conn.execute(
                    "INSERT INTO schema_migrations (version, applied_at)"
                    " VALUES (?, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
                    (version + 1,),
                )


def _token_from_row(row: sqlite3.Row) -> StoredToken:
    return StoredToken(
        token_id=row["id"],
        account=row["account"],
        purpose=row["purpose"],
        token_hash=row["token_hash"],
        issued_at=datetime.fromisoformat(row["issued_at"]),
        expires_at=datetime.fromisoformat(row["expires_at"]),
        used_at=from_stored_time(row["used_at"]),
        cancelled_at=from_stored_time(row["cancelled_at"]),
        payload=json.loads(row["payload"]),
    )


def _switch_to_wal(conn: sqlite3.Connection, wait_seconds: float) -> None:
    """Put the file in WAL mode, waiting (as for a write) while another process does it.

    SQLite answers "database is locked" at once, without its busy handler, to a process
    that asks for WAL mode while another is switching a new file to it: two runs started
    together on a fresh data folder failed so.
    """
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(_LOCK_POLL_SECONDS)


def _acquire(fd: int, name: str, wait_seconds: float) -> None:
    # The timeout is measured on the monotonic clock: it is a wait, not a business instant.
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise UnavailableError(f"cannot lock the {name} job: {exc.strerror}") from exc
        if time.monotonic() >= deadline:
            break
        time.sleep(_LOCK_POLL_SECONDS)
    holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    who = f" (pid {holder})" if holder.isdigit() else ""
    raise TemporaryError(f"another {name} is running{who}; try again later")


def _purge_of_row(row: sqlite3.Row) -> PurgeRecord:
    return PurgeRecord(
        account=row["account"],
        uid=row["uid"],
        dn=row["dn"],
        archive=Path(row["archive"]),
        purged_at=datetime.fromisoformat(row["purged_at"]),
        restored_at=from_stored_time(row["restored_at"]),
        external_id=row["external_id"],
        archive_sha256=row["archive_sha256"],
    )
