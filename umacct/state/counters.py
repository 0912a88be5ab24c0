"""Hit counters in the state branch, shared by every web host: ``ou=counters,<state_dn>``.

The web pages' rate limits (``umacct.web.limits``) count here when the tool's state lives in
the directory (``[state] backend = "directory"``), so that two web hosts behind one proxy
share one limit. One entry per key and hour window, named by the SHA-256 of both, in the
layout of every other record (``umacct.state.branch``: core schema only)::

    dn: cn=<sha256>,ou=counters,<state_dn>
    objectClass: applicationProcess
    cn: <sha256>
    cn: window 493921
    description: {"key":"client:203.0.113.5:post","window":493921}
    description: count 7

A hit reads the count, checks it against the limit, and writes ``count N+1`` in one modify
that deletes the exact value ``count N`` under the assertion control: of two hosts counting
at once, one gets ``assertionFailed``, reads again and checks again (compare and swap), so
no hit is lost and no limit is passed. The first hit of a window adds the entry (of two
hosts, one gets ``entryAlreadyExists`` and counts on it). The limit is over a sliding hour:
this window's count plus the previous window's, weighted by how much of it is still within
the hour. Windows older than the previous one are deleted by the first hit of each new
window a process sees. The unit is made on first use when missing.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from datetime import datetime

from umacct.clock import Clock
from umacct.directory import AlreadyExistsError, Change, ConflictError, Directory
from umacct.directory.escape import filter_eq, filter_not, filter_or
from umacct.errors import NotFoundError
from umacct.state.branch import (
    COUNTERS,
    RECORD_ATTRIBUTES,
    UNIT_CLASS,
    encode,
    record_attributes,
    record_dn,
    record_key,
    unit_dn,
)

WINDOW_SECONDS = 3600
COUNT = "count "
WINDOW_KEY = "window "
ATTEMPTS = 8
"""Compare-and-swap attempts before a hit is refused (fail closed: it is a burst anyway)."""
_swept: dict[str, int] = {}
"""The last window whose stale entries this process deleted, by state branch."""


def window_of(instant: datetime) -> int:
    """The hour window of an instant: whole hours since the epoch."""
    return int(instant.timestamp()) // WINDOW_SECONDS


class DirectoryCounters:
    """Rate-limit counters in ``ou=counters`` of the state branch (see the module's doc)."""

    def __init__(self, directory: Directory, state_dn: str, clock: Clock) -> None:
        self.directory = directory
        self.state_dn = state_dn
        self._clock = clock

    def hit(self, key: str, allowed: int) -> bool:
        """Count one hit for ``key``; False (and nothing counted) when ``allowed`` are used up."""
        now = self._clock.now()
        window = window_of(now)
        within = 1 - (now.timestamp() % WINDOW_SECONDS) / WINDOW_SECONDS
        earlier = self._count(key, window - 1) or 0
        for _ in range(ATTEMPTS):
            count = self._count(key, window)
            if (count or 0) + earlier * within >= allowed:
                return False
            if count is None:
                if self._add(key, window):
                    return True
            elif self._swap(key, window, count):
                return True
            time.sleep(secrets.randbelow(20) / 1000)  # another host counted: read again
        return False

    def _dn(self, key: str, window: int) -> str:
        return record_dn(self.state_dn, COUNTERS, record_key(key, str(window)))

    def _count(self, key: str, window: int) -> int | None:
        entry = self.directory.read(self._dn(key, window), RECORD_ATTRIBUTES)
        if entry is None:
            return None
        for value in entry.get("description"):
            if value.startswith(COUNT) and value[len(COUNT) :].isdigit():
                return int(value[len(COUNT) :])
        return 0

    def _add(self, key: str, window: int) -> bool:
        name = record_key(key, str(window))
        record = encode({"key": key, "window": window})
        attributes = record_attributes(name, [f"{WINDOW_KEY}{window}"], record, f"{COUNT}1")
        try:
            self._add_in_unit(self._dn(key, window), attributes)
        except AlreadyExistsError:
            return False
        self._sweep(window)
        return True

    def _add_in_unit(self, dn: str, attributes: dict[str, list[str]]) -> None:
        try:
            self.directory.add(dn, attributes)
        except NotFoundError:
            with contextlib.suppress(AlreadyExistsError):  # another host made it
                self.directory.add(
                    unit_dn(self.state_dn, COUNTERS),
                    {"objectClass": [UNIT_CLASS], "ou": [COUNTERS]},
                )
            self.directory.add(dn, attributes)

    def _swap(self, key: str, window: int, count: int) -> bool:
        old, new = f"{COUNT}{count}", f"{COUNT}{count + 1}"
        try:
            self.directory.modify(
                self._dn(key, window),
                [Change("delete", "description", (old,)), Change("add", "description", (new,))],
                assertion=filter_eq("description", old),
            )
        except (ConflictError, NotFoundError):
            return False
        return True

    def _sweep(self, window: int) -> None:
        """Delete the entries of windows before the previous one (once per window here)."""
        if _swept.get(self.state_dn, -1) >= window:
            return
        _swept[self.state_dn] = window
        kept = filter_or(
            filter_eq("cn", f"{WINDOW_KEY}{window}"), filter_eq("cn", f"{WINDOW_KEY}{window - 1}")
        )
        stale = self.directory.search(
            unit_dn(self.state_dn, COUNTERS), filter_not(kept), ["cn"], scope="one"
        )
        for entry in list(stale):
            with contextlib.suppress(NotFoundError):  # another host deleted it
                self.directory.delete(entry.dn)

    def close(self) -> None:
        """Nothing to release: the connection belongs to the caller."""
