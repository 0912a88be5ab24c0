"""Rate limits of the web pages, counted where the tool's state lives.

Each limit is a key (``client:<address>:<action>`` or ``account:<identifier>:<action>``) and a
number of hits allowed in the last hour. With the state in the directory (``[state] backend
= "directory"``) the counters are entries of the state branch (``umacct.state.counters``),
shared by every web host of that directory; with SQLite they are in ``<data_dir>/web.db``,
shared by the web hosts that share the data dir. The file is made like the state store: mode
0600, never through a symbolic link.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Protocol

from umacct.clock import Clock
from umacct.config import Config, state_backend
from umacct.datadir import ensure_private_dir, open_private_file
from umacct.errors import UnavailableError
from umacct.services.runtime import Runtime
from umacct.state.stored_times import to_stored_time

LIMITS_FILE = "web.db"
WINDOW = timedelta(hours=1)


class Counters(Protocol):
    """Hit counters: ``hit`` counts one unless the hour's allowance is used up."""

    def hit(self, key: str, allowed: int) -> bool:
        """Count one hit for ``key``; False (and nothing counted) when ``allowed`` are used up."""
        ...

    def close(self) -> None:
        """Release what the counters hold."""
        ...


def open_limits(config: Config, clock: Clock, runtime_factory: Callable[[], Runtime]) -> Counters:
    """The counters where the tool's state lives: the state branch, or ``web.db``."""
    if state_backend(config) != "directory":
        return RateLimits(Path(config.paths.data_dir), clock)
    assert config.directory.state_dn is not None  # checked by the configuration
    return _BranchLimits(runtime_factory(), config.directory.state_dn, clock)


class _BranchLimits:
    """The state branch's counters, over a runtime's connection (closed with them)."""

    def __init__(self, runtime: Runtime, state_dn: str, clock: Clock) -> None:
        from umacct.state.counters import DirectoryCounters

        self._runtime = runtime
        self._counters = DirectoryCounters(runtime.directory, state_dn, clock)

    def hit(self, key: str, allowed: int) -> bool:
        """Count one hit for ``key`` in the state branch."""
        return self._counters.hit(key, allowed)

    def close(self) -> None:
        """Close the runtime (its directory connection)."""
        self._runtime.close()


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
        since = to_stored_time(now - WINDOW)
        try:
            with self._conn:
                self._conn.execute("DELETE FROM hits WHERE at < ?", (since,))
                (count,) = self._conn.execute(
                    "SELECT COUNT(*) FROM hits WHERE key = ? AND at >= ?", (key, since)
                ).fetchone()
                if count >= allowed:
                    return False
                self._conn.execute(
                    "INSERT INTO hits (key, at) VALUES (?, ?)", (key, to_stored_time(now))
                )
        except sqlite3.Error as exc:
            raise UnavailableError(f"{self.path}: {exc}") from exc
        return True

    def close(self) -> None:
        """Close the database."""
        self._conn.close()
