"""The flow of an intake's batches: each planned and sent while the server adds the one before.

``umacct.services.create`` does the work of a batch (planning its rows, sending its adds,
reading their answers, starting its mail); this module orders the batches, overlaps them
and stops them cleanly when the directory or the store goes away.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from umacct.directory import AddsSent
from umacct.errors import UmacctError
from umacct.intake import IntakeRow
from umacct.services.create_lookup import Known, look_up
from umacct.services.create_results import CreateOutcome, NewAccount, RowFailure

if TYPE_CHECKING:
    from umacct.services.arrivals import PendingLinks
    from umacct.services.runtime import Runtime


class BatchCreator(Protocol):
    """The work of one batch (``create._Creator``)."""

    runtime: Runtime

    def expect_mail(self, rows: Sequence[IntakeRow], known: Known) -> None:
        """Before the first batch: get the mail ready for the run's new people."""

    def plan_batch(self, rows: Sequence[IntakeRow], known: Known) -> BatchPlanned:
        """Plan the rows (maybe fewer than given: see ``_Creator.plan_batch``)."""

    def send_batch(self, batch: BatchPlanned) -> BatchSent:
        """Send the adds of the batch's new accounts, without waiting for the answers."""

    def confirm(self, sent: BatchSent, known: Known) -> BatchInFlight:
        """Read and audit the answers, start the mail."""

    def describe(self, mailing: Mailing) -> None:
        """Wait for the links of a batch, then describe each account added."""


REPORTED_BEHIND = 2
"""Batches confirmed and not yet reported: a batch is reported once two more were confirmed.

Its results wait for its mail; the mail process, on another core, then has two batches'
time for it, and one slow batch of mail does not hold up the intake."""
LAST_BATCH = 25
"""The fewest rows of a batch at the end of a run (see ``next_batch_size``)."""


def next_batch_size(left: int, batch_size: int) -> int:
    """The rows of the next batch: ``batch_size``, then halves over the last two batches' worth.

    What a batch's answers start (its audit, its tokens, its mail) waits for the server only
    at the end of the run, where nothing overlaps it any more: the last batch is small
    (3,000 rows by 200: ..., 200, 100, 50, 25, 25).
    """
    if left > 2 * batch_size:
        return batch_size
    return min(batch_size, max(LAST_BATCH, (left + 1) // 2))


def run_batches(
    runtime: Runtime,
    creator: BatchCreator,
    rows: Sequence[IntakeRow],
    batch_size: int,
) -> Iterator[CreateOutcome | RowFailure]:
    """Each batch planned while the server adds the one before, its adds sent behind them.

    The server always has adds to work on: while it adds a batch, the next one is planned
    and sent, and only then are the first one's answers read and audited and its mail
    started. A batch whose rows may be people of the batch still being added (the same
    external id or personal address) waits for those answers before it is planned: a
    duplicate row must find the account once the server has it, never one that may yet be
    refused.

    When an error stops the run, the batches before it are reported, in order, then the
    error. A batch whose adds went is still read, audited and mailed; it is reported only
    if no batch before it is missing (one whose answers could not be read is not).
    """
    in_flight: list[BatchInFlight] = []
    flow = _Flow(creator, in_flight)
    try:
        # Every row is looked up before the first add: the searches then never read the
        # accounts this run adds (each would be read again by every later batch's look-up,
        # a scan of the whole directory without indexes), nor wait behind adds on the server.
        # The run's own accounts are added to what is known as they are created.
        flow.known = look_up(runtime, rows)
        creator.expect_mail(rows, flow.known)
        start = 0
        while start < len(rows) or flow.sent is not None:
            try:
                if start < len(rows):
                    batch = rows[start : start + next_batch_size(len(rows) - start, batch_size)]
                    if flow.sent is not None and flow.sent.may_hold_someone_of(batch):
                        flow.confirm_sent()
                    planned = creator.plan_batch(batch, flow.known)
                    start += len(planned.planned)
                    flow.send(planned)
                else:
                    flow.confirm_sent()
            except UmacctError:
                flow.settle_sent()
                # The batches before were added: report them before the error that stops the run.
                while in_flight and (done := in_flight.pop(0).settle()) is not None:
                    yield from done
                raise
            while len(in_flight) > REPORTED_BEHIND:
                yield from in_flight.pop(0).results()
        while in_flight:
            yield from in_flight.pop(0).results()
    finally:
        flow.settle_sent()
        for left in [*in_flight, *flow.untold]:
            left.settle()
        runtime.audit.sync()


class _Flow:
    """The batch whose adds are on their way, and the confirmed ones, in order."""

    def __init__(self, creator: BatchCreator, in_flight: list[BatchInFlight]) -> None:
        self.creator = creator
        self.in_flight = in_flight
        """Confirmed batches to report, in row order."""
        self.known = Known({}, {}, set())
        self.sent: BatchSent | None = None
        self.untold: list[BatchInFlight] = []
        """Confirmed after a batch before them could not be: settled, never reported."""
        self._gap = False

    def send(self, planned: BatchPlanned) -> None:
        """Send a planned batch's adds, then confirm the batch sent before it."""
        before, self.sent = self.sent, self.creator.send_batch(planned)
        if before is not None:
            self._confirm(before)

    def confirm_sent(self) -> None:
        """Confirm the batch on its way (its answers must come before what follows)."""
        before, self.sent = self.sent, None
        if before is not None:
            self._confirm(before)

    def settle_sent(self) -> None:
        """After an error: the batch on its way read and audited anyway, its mail started."""
        left, self.sent = self.sent, None
        if left is None:
            return
        with contextlib.suppress(UmacctError):
            confirmed = self.creator.confirm(left, self.known)
            (self.untold if self._gap else self.in_flight).append(confirmed)

    def _confirm(self, batch: BatchSent) -> None:
        try:
            self.in_flight.append(self.creator.confirm(batch, self.known))
        except BaseException:
            self._gap = True  # its rows are not reported: nor may any after them be
            raise


@dataclass(frozen=True)
class Mailing:
    """The accounts of a batch added without error, those mailed a link, and their links."""

    done: list[NewAccount]
    mailed: list[NewAccount]
    links: PendingLinks | None


def row_keys(row: IntakeRow) -> tuple[str, ...]:
    """What a row finds a person by: its personal address, its external id (as indexed)."""
    address = row.personal_email.lower()
    return (address, row.external_id.casefold()) if row.external_id else (address,)


@dataclass(frozen=True)
class BatchPlanned:
    """The rows of a batch planned (maybe fewer than given, see ``plan_batch``)."""

    planned: list[CreateOutcome | RowFailure | NewAccount]
    keys: set[str]
    """The external ids (case-folded) and personal addresses (lower-cased) of its new people."""


@dataclass
class BatchSent:
    """A batch planned, the adds of its new accounts on their way (answers not read yet)."""

    planned: list[CreateOutcome | RowFailure | NewAccount]
    new: list[NewAccount]
    adds: AddsSent | None
    keys: set[str]
    """As ``BatchPlanned.keys``; empty when nothing was sent."""

    def may_hold_someone_of(self, rows: Sequence[IntakeRow]) -> bool:
        """Whether a row may be one of these new people (so the answers must come first)."""
        keys = self.keys
        return bool(keys) and any(not keys.isdisjoint(row_keys(row)) for row in rows)


@dataclass
class BatchInFlight:
    """A batch whose accounts are added and whose activation mails are on their way."""

    creator: BatchCreator
    planned: list[CreateOutcome | RowFailure | NewAccount]
    new: list[NewAccount]
    mailing: Mailing
    audited: int
    """The audit log's ``written`` once the batch's records were written: on disk before
    its results are told."""

    def results(self) -> list[CreateOutcome | RowFailure]:
        """One result per row, in row order, once the batch's mails were sent or queued."""
        self.creator.runtime.audit.sync(through=self.audited)
        self.creator.describe(self.mailing)
        results: list[CreateOutcome | RowFailure] = []
        for item in self.planned:
            if isinstance(item, NewAccount):
                assert item.outcome is not None
                results.append(item.outcome)
            else:
                results.append(item)
        return results

    def settle(self) -> list[CreateOutcome | RowFailure] | None:
        """For a run that stops early: wait for the mails, queue what failed; the results.

        None when a message failed on its own (a recipient refused): the error that
        stopped the run is the one to report, that one would only hide it.
        """
        try:
            return self.results()
        except UmacctError:
            return None
