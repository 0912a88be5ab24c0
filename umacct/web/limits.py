"""Rate limits of the web pages, counted where the tool's state lives (``<data_dir>/web.db``).

Each limit is a key (``client:<address>:<action>`` or ``account:<identifier>:<action>``) and a
number of hits allowed in the last hour. Every web host that shares the data dir shares the
counters. The file is made like the state store: mode 0600, never through a symbolic link.
"""

from __future__ import annotations

import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from umacct.clock import Clock
from umacct.datadir import ensure_private_dir, open_private_file
from umacct.errors import UnavailableError

LIMITS_FILE = "web.db"
WINDOW = timedelta(hours=1)


class RateLimits:
    """Hit counters over a sliding hour, in SQLite."""

    def __init__(self, data_dir: Path, clock: Clock) -> None:
        self.path = Path(data_dir) / LIMITS_FILE
        self._clock = clock
        ensure_private_dir(Path(data_dir))
        os.close(open_private_file(self.path, "web rate limits"))
        try:
            self._conn = sqlite3.connect(self.path, timeout=5, isolation_level="IMMEDIATE")
            self._conn.execute("PRAGMA busy_timeout = 5000")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, at TEXT NOT NULL)"
            )
            self._conn.execute("CREATE INDEX IF NOT EXISTS hits_key_at ON hits (key, at)")
            self._conn.commit()
        except sqlite3.Error as exc:
            raise UnavailableError(f"{self.path}: {exc}") from exc

    def hit(self, key: str, allowed: int) -> bool:
        """Count one hit for ``key``; False (and nothing counted) when ``allowed`` are used up."""
        now = self._clock.now()
        since = _stamp(now - WINDOW)
        try:
            with self._conn:
                self._conn.execute("DELETE FROM hits WHERE at < ?", (since,))
                (count,) = self._conn.execute(
                    "SELECT COUNT(*) FROM hits WHERE key = ? AND at >= ?", (key, since)
                ).fetchone()
                if count >= allowed:
                    return False
                self._conn.execute("INSERT INTO hits (key, at) VALUES (?, ?)", (key, _stamp(now)))
        except sqlite3.Error as exc:
            raise UnavailableError(f"{self.path}: {exc}") from exc
        return True

    def close(self) -> None:
        """Close the database."""
        self._conn.close()


def _stamp(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat(timespec="microseconds")
