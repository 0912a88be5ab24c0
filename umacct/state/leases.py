"""Job locks across hosts: a lease entry in the directory, renewed while its job runs.

A job takes its lock by adding ``cn=<job>,ou=locks,<state_dn>``: an add is atomic, so of two
hosts only one succeeds. The entry's ``description`` names the holder (host and pid) and
the instant the lease ends; a thread of the holder renews it on a connection of its own
every third of the lease. A lease past its end (the host died, or lost the directory), or
held by a process of this host that is gone, is stale: it is taken over by deleting it with
the assertion control on its exact value (so that of two hosts taking it over, one deletes
it and the other fails), then adding it again.

The ends of leases are read on the hosts' wall clocks: hosts must keep time (NTP), and the
lease (60 s by default) must be much longer than their drift.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from umacct.directory import AlreadyExistsError, Change, ConflictError, Directory
from umacct.directory.escape import filter_eq
from umacct.errors import NotFoundError, TemporaryError, UmacctError, UnavailableError
from umacct.state.branch import LOCKS, decode, encode, record_attributes, record_dn

LEASE_SECONDS = 60.0
POLL_SECONDS = 0.1
_TAKEOVER_ATTEMPTS = 5


@dataclass(frozen=True)
class Lease:
    """Who holds a job's lock, and until when."""

    host: str
    pid: int
    nonce: str
    acquired_at: datetime
    expires_at: datetime

    @property
    def holder(self) -> str:
        """The holder as messages name it."""
        return f"host {self.host}, pid {self.pid}"

    def text(self) -> str:
        """The lease as its entry's ``description`` value."""
        return encode({
            "host": self.host, "pid": self.pid, "nonce": self.nonce,
            "acquired_at": self.acquired_at.isoformat(), "expires_at": self.expires_at.isoformat(),
        })  # fmt: skip


def _parse(values: list[str]) -> Lease | None:
    record = decode(values)
    if record is None:
        return None
    try:
        return Lease(
            host=str(record["host"]), pid=int(record["pid"]), nonce=str(record["nonce"]),
            acquired_at=datetime.fromisoformat(record["acquired_at"]),
            expires_at=datetime.fromisoformat(record["expires_at"]),
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None


def _now() -> datetime:
    # The wall clock, not the run's clock: a lease is about processes, not business days.
    return datetime.now(UTC)


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class Leases:
    """Takes, renews and gives back job locks under ``ou=locks`` of the state branch."""

    def __init__(
        self,
        directory: Directory,
        state_dn: str,
        *,
        connect: Callable[[], Directory] | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._directory = directory
        self._state_dn = state_dn
        self._connect = connect
        self._lease = timedelta(seconds=lease_seconds)
        self._host = socket.gethostname()

    @contextlib.contextmanager
    def hold(self, name: str, wait_seconds: float) -> Iterator[None]:
        """Hold the lock of job ``name`` for the ``with`` block (TemporaryError if held)."""
        dn = record_dn(self._state_dn, LOCKS, name)
        lease = self._acquire(dn, name, wait_seconds)
        renewal = _Renewal(dn, lease, self._lease, self._connect)
        renewal.start()
        try:
            yield
        finally:
            self._release(dn, renewal.stop())

    # --- taking -----------------------------------------------------------------------------

    def _acquire(self, dn: str, name: str, wait_seconds: float) -> Lease:
        deadline = time.monotonic() + wait_seconds
        while True:
            taken, holder = self._try(dn, name)
            if taken is not None:
                return taken
            if time.monotonic() >= deadline:
                raise TemporaryError(f"another {name} is running ({holder}); try again later")
            time.sleep(POLL_SECONDS)

    def _try(self, dn: str, name: str) -> tuple[Lease | None, str]:
        """Add the lease, taking over a stale one; (the lease, "") or (None, its holder)."""
        holder = "holder unknown"
        for _ in range(_TAKEOVER_ATTEMPTS):
            now = _now()
            lease = Lease(self._host, os.getpid(), secrets.token_hex(8), now, now + self._lease)
            try:
                self._directory.add(dn, record_attributes(name, [], lease.text()))
                return lease, ""
            except AlreadyExistsError:
                pass
            entry = self._directory.read(dn, ["description"])
            if entry is None:
                continue  # given back meanwhile: add again
            current = _parse(entry.get("description"))
            if current is not None and not self._stale(current, now):
                return None, current.holder
            holder = current.holder if current is not None else holder
            with contextlib.suppress(ConflictError, NotFoundError):
                # Of several hosts taking it over, one deletes it; the others see it changed.
                self._directory.delete(
                    dn, assertion=filter_eq("description", entry.get("description")[0])
                )
        return None, holder

    def _stale(self, lease: Lease, now: datetime) -> bool:
        if lease.expires_at <= now:
            return True
        mine = lease.host == self._host
        return mine and lease.pid != os.getpid() and _process_is_gone(lease.pid)

    # --- giving back ------------------------------------------------------------------------

    def _release(self, dn: str, lease: Lease | None) -> None:
        """Delete the lease if it is still ours; a lost or unreachable one just runs out."""
        if lease is None:
            return
        with contextlib.suppress(ConflictError, NotFoundError, UnavailableError, TemporaryError):
            self._directory.delete(dn, assertion=filter_eq("description", lease.text()))


class _Renewal:
    """The thread that moves a held lease's end forward, on a connection of its own."""

    def __init__(
        self,
        dn: str,
        lease: Lease,
        length: timedelta,
        connect: Callable[[], Directory] | None,
    ) -> None:
        self._dn = dn
        self._lease: Lease | None = lease
        self._length = length
        self._connect = connect
        self._stopping = threading.Event()
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start renewing (nothing to do without a way to open a second connection)."""
        if self._connect is None:
            return
        self._thread = threading.Thread(target=self._run, name="umacct-lease", daemon=True)
        self._thread.start()

    def stop(self) -> Lease | None:
        """Stop renewing; the lease as last written, or None if another host took it over."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        with self._guard:
            return self._lease

    def _run(self) -> None:
        assert self._connect is not None
        directory: Any = None
        interval = self._length.total_seconds() / 3
        try:
            while not self._stopping.wait(interval):
                try:
                    if directory is None:
                        directory = self._connect()
                    if not self._renew(directory):
                        return
                except UmacctError:
                    # The directory is out of reach: try again at the next tick, afresh.
                    if directory is not None:
                        directory.close()
                    directory = None
        finally:
            if directory is not None:
                directory.close()

    def _renew(self, directory: Directory) -> bool:
        with self._guard:
            current = self._lease
        if current is None:
            return False
        renewed = replace(current, expires_at=_now() + self._length)
        try:
            directory.modify(
                self._dn,
                [Change("delete", "description", (current.text(),)),
                 Change("add", "description", (renewed.text(),))],
                assertion=filter_eq("description", current.text()),
            )  # fmt: skip
        except (ConflictError, NotFoundError):
            found = directory.read(self._dn, ["description"])
            written = _parse(found.get("description")) if found is not None else None
            with self._guard:
                if written is not None and written.nonce == current.nonce:
                    self._lease = written  # renewed already: the answer was lost, not the lease
                    return True
                self._lease = None  # taken over: it ran out while this host could not renew
            return False
        with self._guard:
            self._lease = renewed
        return True
