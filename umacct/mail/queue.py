"""The mail queue: messages that could not be sent yet, kept in ``<data_dir>/mailqueue.db``.

A row holds what is needed to compose the message again (kind, recipient, parameters),
never the message itself: a message that carries a link stores only the link's purpose,
and a fresh link is issued when the message finally goes out. A dump of the queue thus
holds no usable token (security.md 2).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from umacct.closing import Closing
from umacct.config import Config
from umacct.datadir import QUEUE_FILE, ensure_private_dir, open_private_file
from umacct.errors import TemporaryError, UnavailableError

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS queued_mail (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    recipient TEXT NOT NULL,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    link_purpose TEXT,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at TEXT
);
CREATE INDEX IF NOT EXISTS queued_mail_pending ON queued_mail (sent_at, id);
"""
# A negative LIMIT means no limit in SQLite.
_SELECT_PENDING = """
SELECT id, account, recipient, kind, params, link_purpose, created_at, attempts, last_error, sent_at
FROM queued_mail
WHERE sent_at IS NULL AND (? IS NULL OR account = ?)
ORDER BY id
LIMIT ?
"""


@dataclass(frozen=True)
class QueuedMail:
    """One queued message, as stored."""

    id: int
    account: str
    recipient: str
    kind: str
    params: dict[str, str]
    link_purpose: str | None
    created_at: datetime
    attempts: int
    last_error: str | None
    sent_at: datetime | None


def queue_path(config: Config) -> Path:
    """Where the queue lives: ``mailqueue.db`` in the data dir."""
    return Path(config.paths.data_dir) / QUEUE_FILE


class MailQueue(Closing):
    """The SQLite queue file, created with mode 0600 in a folder of mode 0700."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # The folder and the file are checked before SQLite opens the file by its name: a
        # link planted there is refused, and so is a file or folder of someone else's.
        ensure_private_dir(path.parent)
        os.close(open_private_file(path, "mail queue"))
        try:
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            # Setting the version is a write (with its disk syncs): only a new file needs it.
            if self._db.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
                self._db.executescript(_SCHEMA)
                self._db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise UnavailableError(f"mail queue {path}: cannot open: {exc}") from exc

    def add(
        self,
        *,
        account: str,
        recipient: str,
        kind: str,
        params: Mapping[str, str],
        link_purpose: str | None,
        now: datetime,
    ) -> int:
        """Queue a message; returns its id."""
        with self._writing() as db:
            cursor = db.execute(
                "INSERT INTO queued_mail (account, recipient, kind, params, link_purpose, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (account, recipient, kind, json.dumps(dict(params), sort_keys=True),
                 link_purpose, now.isoformat()),
            )  # fmt: skip
            if cursor.lastrowid is None:
                raise UnavailableError(f"mail queue {self.path}: insert returned no id")
            return cursor.lastrowid

    def set_param(self, mail_id: int, name: str, value: str) -> None:
        """Change one parameter of a queued message (a flush issued its link anew)."""
        with self._writing() as db:
            row = db.execute("SELECT params FROM queued_mail WHERE id = ?", (mail_id,)).fetchone()
            if row is None:
                return
            params = {**json.loads(row[0]), name: value}
            db.execute(
                "UPDATE queued_mail SET params = ? WHERE id = ?",
                (json.dumps(params, sort_keys=True), mail_id),
            )

    def pending(self, account: str | None = None, limit: int | None = None) -> list[QueuedMail]:
        """Unsent messages, oldest first, optionally for one account only."""
        try:
            rows = self._db.execute(
                _SELECT_PENDING, (account, account, -1 if limit is None else limit)
            ).fetchall()
        except sqlite3.Error as exc:
            raise UnavailableError(f"mail queue {self.path}: cannot read: {exc}") from exc
        return [_row_to_mail(row) for row in rows]

    def count_pending(self) -> int:
        """How many messages wait to be sent."""
        try:
            row = self._db.execute(
                "SELECT count(*) FROM queued_mail WHERE sent_at IS NULL"
            ).fetchone()
        except sqlite3.Error as exc:
            raise UnavailableError(f"mail queue {self.path}: cannot read: {exc}") from exc
        return int(row[0])

    def mark_sent(self, mail_id: int, now: datetime) -> None:
        """Record that a message went out; it will never be sent again."""
        with self._writing() as db:
            db.execute(
                "UPDATE queued_mail SET sent_at = ?, attempts = attempts + 1 WHERE id = ?",
                (now.isoformat(), mail_id),
            )

    def record_failure(self, mail_id: int, error: str) -> None:
        """Count a failed attempt and keep its reason; the message stays queued."""
        with self._writing() as db:
            db.execute(
                "UPDATE queued_mail SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                (error, mail_id),
            )

    def discard(self, mail_id: int) -> bool:
        """Remove an unsent message for good; False when there was no such unsent message."""
        with self._writing() as db:
            cursor = db.execute(
                "DELETE FROM queued_mail WHERE id = ? AND sent_at IS NULL", (mail_id,)
            )
            return cursor.rowcount > 0

    def discard_kinds(self, account: str, kinds: Sequence[str]) -> int:
        """Remove the account's unsent messages of these kinds; return how many went."""
        marks = ", ".join("?" for _ in kinds)
        with self._writing() as db:
            cursor = db.execute(
                f"DELETE FROM queued_mail WHERE account = ? AND kind IN ({marks}) "  # noqa: S608
                "AND sent_at IS NULL",
                (account, *kinds),
            )
            return cursor.rowcount

    @contextmanager
    def flush_lock(self) -> Iterator[None]:
        """Held during a flush, so that two flushes never send the same message."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        descriptor = open_private_file(lock_path, "mail queue lock")
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise TemporaryError("another 'umacct mail flush' is running; try later") from None
            yield
        finally:
            os.close(descriptor)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
        except sqlite3.Error as exc:
            raise UnavailableError(f"mail queue {self.path}: cannot write: {exc}") from exc

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _row_to_mail(row: tuple[Any, ...]) -> QueuedMail:
    mail_id, account, recipient, kind, params, purpose, created, attempts, error, sent = row
    return QueuedMail(
        id=mail_id,
        account=account,
        recipient=recipient,
        kind=kind,
        params=json.loads(params),
        link_purpose=purpose,
        created_at=datetime.fromisoformat(created),
        attempts=attempts,
        last_error=error,
        sent_at=None if sent is None else datetime.fromisoformat(sent),
    )
