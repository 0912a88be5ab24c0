"""Logged-in sessions of the account pages, kept beside the rate limits (``<data_dir>/web.db``).

The browser holds 256 random bits in an ``HttpOnly; Secure; SameSite=Strict`` cookie; the
file keeps only their SHA-256, the account, and when the session began and was last used. A
session ends after ``[web] session_idle_minutes`` without use, ``session_max_hours`` after it
began, at logout, and (the others of the account) when the password is changed. Every web host
sharing the data dir knows every session.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from umacct.clock import Clock
from umacct.datadir import ensure_private_dir, open_private_file
from umacct.errors import UnavailableError
from umacct.web.limits import LIMITS_FILE


def _hash(session: str) -> str:
    return hashlib.sha256(session.encode("ascii", "replace")).hexdigest()


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


class Sessions:
    """Sessions by the hash of their cookie, in SQLite."""

    def __init__(
        self, data_dir: Path, clock: Clock, *, idle: timedelta, longest: timedelta
    ) -> None:
        self.path = Path(data_dir) / LIMITS_FILE
        self._clock = clock
        self._idle = idle
        self._longest = longest
        ensure_private_dir(Path(data_dir))
        os.close(open_private_file(self.path, "web sessions"))
        try:
            self._conn = sqlite3.connect(self.path, timeout=5, isolation_level="IMMEDIATE")
            self._conn.execute("PRAGMA busy_timeout = 5000")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS sessions (hash TEXT PRIMARY KEY, account TEXT NOT "
                "NULL, started TEXT NOT NULL, seen TEXT NOT NULL)"
            )
            self._conn.commit()
        except sqlite3.Error as exc:
            raise UnavailableError(f"{self.path}: {exc}") from exc

    def open(self, account: str) -> str:
        """A new session for ``account``; the cookie value (known only to the browser)."""
        session = secrets.token_urlsafe(32)
        now = _stamp(self._clock.now())
        self._run(
            "INSERT INTO sessions (hash, account, started, seen) VALUES (?, ?, ?, ?)",
            (_hash(session), account, now, now),
        )
        return session

    def account(self, session: str | None) -> str | None:
        """The account of a live session (its use is recorded), or None."""
        if not session or len(session) > 100:
            return None
        now = self._clock.now()
        self._run(
            "DELETE FROM sessions WHERE seen < ? OR started < ?",
            (_stamp(now - self._idle), _stamp(now - self._longest)),
        )
        row = self._conn.execute(
            "SELECT account FROM sessions WHERE hash = ?", (_hash(session),)
        ).fetchone()
        if row is None:
            return None
        self._run("UPDATE sessions SET seen = ? WHERE hash = ?", (_stamp(now), _hash(session)))
        return str(row[0])

    def close_session(self, session: str | None) -> None:
        """End one session (logout)."""
        if session:
            self._run("DELETE FROM sessions WHERE hash = ?", (_hash(session),))

    def close_others(self, account: str, keep: str | None) -> None:
        """End the account's other sessions (its password changed)."""
        self._run(
            "DELETE FROM sessions WHERE account = ? AND hash != ?",
            (account, _hash(keep or "")),
        )

    def _run(self, sql: str, values: tuple[str, ...]) -> None:
        try:
            with self._conn:
                self._conn.execute(sql, values)
        except sqlite3.Error as exc:
            raise UnavailableError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        """Close the database."""
        self._conn.close()
