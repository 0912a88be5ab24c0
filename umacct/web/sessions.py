"""Logged-in sessions of the account pages, kept beside the rate limits (``<data_dir>/web.db``).

The browser holds 256 random bits in an ``HttpOnly; Secure; SameSite=Strict`` cookie; the
file keeps only their SHA-256, the account, and when the session began and was last used. A
session ends after ``[web] session_idle_minutes`` without use, ``session_max_hours`` after it
began, at logout, and (the others of the account) when the password is changed. Every web host
sharing the data dir knows every session.

Each session also keeps the account's ``pwdChangedTime`` as it was at login (its *mark*): the
pages end a session whose account's password changed since (a reset, ``umacct passwd``, another
web host), except the change the session itself made, which moves its mark (``remark``). A
session opened before marks were kept has none, and ends at its next use.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from umacct.clock import Clock
from umacct.datadir import ensure_private_dir, open_private_file
from umacct.errors import InvalidInputError, UnavailableError
from umacct.policy import Stage, parse_generalized_time
from umacct.services.accounts import Account
from umacct.state.stored_times import to_stored_time
from umacct.web.limits import LIMITS_FILE

MANAGED_STAGES = (Stage.ACTIVE, Stage.GRACE)
"""The stages whose accounts may use the account pages ("Gestion du compte")."""


def _hash(session: str) -> str:
    return hashlib.sha256(session.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True)
class LiveSession:
    """A live session: its account and the account's password mark at login."""

    account: str
    mark: str | None
    """``pwdChangedTime`` when the session began ('' when unset; None: opened before marks)."""


def password_mark(account: Account) -> str:
    """The account's ``pwdChangedTime`` as the directory holds it ('' when unset)."""
    return account.entry.first("pwdChangedTime") or ""


def may_manage(account: Account, now: datetime) -> bool:
    """Whether the account may use the pages now: active or in grace, not locked, not cut off.

    A ``pwdAccountLockedTime`` in force (ppolicy's permanent ``000001010000Z`` included, or
    one that cannot be read) or a ``pwdEndTime`` passed refuses, as the directory's binds do.
    """
    if account.stage not in MANAGED_STAGES:
        return False
    for attribute in ("pwdAccountLockedTime", "pwdEndTime"):
        value = account.entry.first(attribute)
        if not value:
            continue
        try:
            if parse_generalized_time(value) <= now:
                return False
        except (InvalidInputError, OverflowError, ValueError):
            return False
    return True


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
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(sessions)")}
            if "mark" not in columns:
                self._conn.execute("ALTER TABLE sessions ADD COLUMN mark TEXT")
            self._conn.commit()
        except sqlite3.Error as exc:
            raise UnavailableError(f"{self.path}: {exc}") from exc

    def open(self, account: str, mark: str) -> str:
        """A new session for ``account`` whose password mark is ``mark``; the cookie value."""
        session = secrets.token_urlsafe(32)
        now = to_stored_time(self._clock.now())
        self._run(
            "INSERT INTO sessions (hash, account, started, seen, mark) VALUES (?, ?, ?, ?, ?)",
            (_hash(session), account, now, now, mark),
        )
        return session

    def account(self, session: str | None) -> str | None:
        """The account of a live session (its use is recorded), or None."""
        live = self.live(session)
        return live.account if live is not None else None

    def live(self, session: str | None) -> LiveSession | None:
        """The live session of a cookie (its use is recorded), or None."""
        if not session or len(session) > 100:
            return None
        now = self._clock.now()
        self._run(
            "DELETE FROM sessions WHERE seen < ? OR started < ?",
            (to_stored_time(now - self._idle), to_stored_time(now - self._longest)),
        )
        row = self._conn.execute(
            "SELECT account, mark FROM sessions WHERE hash = ?", (_hash(session),)
        ).fetchone()
        if row is None:
            return None
        self._run(
            "UPDATE sessions SET seen = ? WHERE hash = ?", (to_stored_time(now), _hash(session))
        )
        return LiveSession(str(row[0]), None if row[1] is None else str(row[1]))

    def remark(self, session: str | None, mark: str) -> None:
        """The session's own password change: its mark becomes the new ``pwdChangedTime``."""
        if session:
            self._run("UPDATE sessions SET mark = ? WHERE hash = ?", (mark, _hash(session)))

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
