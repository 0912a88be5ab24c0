"""Many modifies in flight on one connection, and what became of each when it is lost.

``Directory.modify_many`` sends a batch's modifies ahead of their answers (``window`` at
most unanswered), and each is then answered in the batch's order, mapped as ``modify``
maps it: the server works on the next ones while the caller audits and tells the last.

A connection lost with modifies sent and unanswered leaves each of them applied or not,
and only the directory knows which. ``ModifyBatch.settle`` finds out, on a fresh connection
to the same server: it sends the same modify again, under the same assertion. Every change
is a ``replace`` (so applying it twice leaves the entry as applying it once) guarded by an
assertion on the entry as it was read, so the second copy either applies the change (the
first had not, or had and left the assertion true: the entry is the same either way) or is
refused because the entry moved on, and then the entry read back says whether it holds the
change. Reading alone would not do: a request the server read before the cut may still be
at work, and apply after the read said it had not. Where the entry's ``entryCSN`` was read
with it, the resend also asserts that mark unchanged: a write made by someone else after the
first copy (the account reinstated by hand) keeps the entry's state as asserted, and only
the changed mark stops the resend from undoing it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from umacct.directory import ber
from umacct.directory.errors import ConflictError
from umacct.errors import UmacctError, UnavailableError

if TYPE_CHECKING:
    from umacct.directory.adapter import Change, Directory
    from umacct.directory.wire import Wire


@dataclass(frozen=True)
class ModifyRequest:
    """One modify of ``Directory.modify_many``: as ``Directory.modify`` takes it."""

    dn: str
    changes: tuple[Change, ...]
    assertion: str | None = None
    unchanged: str | None = None
    """An assertion that the entry was not written since it was read (its ``entryCSN``):
    the resend of ``settle`` asserts it as well, so that a write of another between the cut
    and the resend (a sysadmin reinstating the account) is never undone by the resend."""


class Settled(enum.Enum):
    """What became of a modify whose answer a lost connection kept."""

    APPLIED = "applied"
    """The directory holds the change (checked on a fresh connection)."""
    NOT_SENT = "not sent"
    """The request never left: the directory does not hold it."""
    UNKNOWN = "unknown"
    """The directory may or may not hold it (no fresh connection, or the entry moved on)."""


def _resend_guard(request: ModifyRequest) -> str | None:
    if request.unchanged is None or request.assertion is None:
        return request.unchanged or request.assertion
    return f"(&{request.assertion}{request.unchanged})"


class ModifyBatch:
    """Modifies sent ahead of their answers; ``result`` reads each, in order."""

    def __init__(
        self,
        directory: Directory,
        wire: Wire,
        requests: Sequence[tuple[ModifyRequest, bytes, list[bytes]]],
        window: int,
    ) -> None:
        self._directory = directory
        self._wire = wire
        self._requests = [request for request, _, _ in requests]
        self._encoded = [(operation, controls) for _, operation, controls in requests]
        self._window = window
        self._ids: list[int] = []
        """The message id of each request sent so far, by index."""
        self._read = 0
        """Requests whose answer was read (or given up): the first ``_read`` ones."""
        self.lost: UnavailableError | None = None
        """The loss of the connection, if it happened while requests were unanswered."""
        self._fresh: Directory | None = None
        self._fresh_tried = False
        self._halted = False
        self._send(window)

    def _send(self, count: int) -> None:
        """Send up to ``count`` more requests in one write."""
        start = len(self._ids)
        chunk = self._encoded[start : start + count]
        if not chunk or self.lost is not None or self._halted:
            return
        target = self._requests[start + len(chunk) - 1].dn
        ids, self.lost = self._wire.send_requests("modify", target, chunk)
        self._ids += ids  # after a failed write, some may have left: they are settled as sent

    def halt(self) -> None:
        """Send nothing more: the requests not sent yet are given up (``was_sent`` says which)."""
        self._halted = True

    def was_sent(self, index: int) -> bool:
        """Whether request ``index`` left (its write may be in the directory)."""
        return index < len(self._ids)

    def result(self, index: int) -> None:
        """Wait for the answer to request ``index``; raise what ``Directory.modify`` raises.

        UnavailableError when the connection is lost first (``settle`` then says what
        became of the request).
        """
        request = self._requests[index]
        if index >= len(self._ids):
            self._send(index + 1 - len(self._ids))  # asked out of order, or after a loss
        if index >= len(self._ids):
            if self.lost is not None:
                raise self.lost
            raise UnavailableError(f"modify {request.dn}: not sent (the batch was halted)")
        try:
            result = self._wire.answer("modify", request.dn, self._ids[index], ber.MODIFY_RESPONSE)
        except UnavailableError as error:
            self.lost = self.lost or error
            raise
        finally:
            self._read = max(self._read, index + 1)
            if len(self._ids) - self._read <= self._window // 2:
                self._send(self._window - (len(self._ids) - self._read))
        self._directory.modify_answered(request.dn, request.changes, request.assertion, result)

    def settle(self, index: int, connect: Callable[[], Directory]) -> Settled:
        """After a lost connection, what became of request ``index`` (see the module's notes).

        ``connect`` opens a fresh connection; one to another server than this batch's
        settles nothing (a replica may not have the change yet).
        """
        if index >= len(self._ids):
            return Settled.NOT_SENT
        request = self._requests[index]
        fresh = self._fresh_directory(connect)
        if fresh is None or any(change.op != "replace" for change in request.changes):
            return Settled.UNKNOWN
        try:
            fresh.modify(request.dn, request.changes, assertion=_resend_guard(request))
        except ConflictError:
            try:
                entry = fresh.read(request.dn, [change.attribute for change in request.changes])
            except UmacctError:
                return Settled.UNKNOWN
            if entry is not None and all(
                sorted(entry.get(change.attribute)) == sorted(change.values)
                for change in request.changes
            ):
                return Settled.APPLIED
            return Settled.UNKNOWN
        except UmacctError:
            return Settled.UNKNOWN
        return Settled.APPLIED

    def _fresh_directory(self, connect: Callable[[], Directory]) -> Directory | None:
        if not self._fresh_tried:
            self._fresh_tried = True
            try:
                fresh = connect()
            except UmacctError:
                return None
            if fresh.url != self._directory.url:
                fresh.close()
                return None
            self._fresh = fresh
        return self._fresh

    def close(self) -> None:
        """Read the answers still due (the connection stays usable) and close the fresh one."""
        try:
            for index in range(self._read, len(self._ids)):
                if self.lost is not None:
                    break
                self._read = index + 1
                self._wire.answer(
                    "modify", self._requests[index].dn, self._ids[index], ber.MODIFY_RESPONSE
                )
        except UnavailableError as error:
            self.lost = error
        finally:
            if self._fresh is not None:
                self._fresh.close()
                self._fresh = None


@dataclass(frozen=True)
class PendingModify:
    """One request of a ``ModifyBatch``."""

    batch: ModifyBatch
    index: int

    def result(self) -> None:
        """Wait for its answer: see ``ModifyBatch.result``."""
        self.batch.result(self.index)

    def settle(self, connect: Callable[[], Directory]) -> Settled:
        """After a loss, what became of it: see ``ModifyBatch.settle``."""
        return self.batch.settle(self.index, connect)

    @property
    def was_sent(self) -> bool:
        """Whether it left (see ``ModifyBatch.was_sent``)."""
        return self.batch.was_sent(self.index)
