"""Sending with a safety net: what cannot go out now is queued and sent by a later flush.

A batch of messages (``Mailer.start``) is composed and sent by a worker thread while the
caller goes on (a bulk intake adds the next accounts meanwhile), a large one (and every
one after it) by the mail process (``umacct.mail.worker``); its ``results()`` waits for it,
then queues, in the caller's thread, what the relay did not take. The transport is used by
one thread at a time: every other use of the Mailer waits for the batch first.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from umacct.clock import Clock
from umacct.config import Config
from umacct.errors import ObsoleteMailError, UmacctError, UnavailableError
from umacct.mail.queue import MailQueue, QueuedMail
from umacct.mail.sender import RELAY_FAILURES, Delivery, MailRequest, Sender
from umacct.mail.transport import Transport

if TYPE_CHECKING:
    from umacct.mail.compose import OutgoingMessage
    from umacct.mail.worker import Handed, MailWorker

LinkIssuer = Callable[[QueuedMail], str]
"""Issues a fresh link for a queued message; raises ObsoleteMailError to drop the message."""

WORKER_BATCH = 50
"""From this many messages, a batch is composed and sent by the mail process (a core of
its own) rather than by a thread of this one; so is every later batch of the run."""


@dataclass(frozen=True)
class SendResult:
    """What became of one message: sent now, or queued (with the reason)."""

    sent: bool
    """Handed to the transport (the relay, or the outbox folder); False: queued or failed."""
    message_id: str | None = None
    queued_id: int | None = None
    error: str | None = None
    delivery: str | None = None
    """Where a message handed over went: ``smtp`` (the relay took it) or ``outbox`` (written
    to the outbox folder: nobody receives it until the folder is delivered)."""

    @property
    def delivered(self) -> bool:
        """Whether the relay took the message (an outbox file is not a delivery)."""
        return self.sent and self.delivery != "outbox"


@dataclass(frozen=True)
class FlushFailure:
    """A queued message that could not be sent during a flush; it stays queued."""

    id: int
    account: str
    kind: str
    error: str


@dataclass(frozen=True)
class FlushReport:
    """The outcome of a flush."""

    sent: int
    remaining: int
    failures: list[FlushFailure] = field(default_factory=list)
    dropped: list[FlushFailure] = field(default_factory=list)
    """Messages whose link a later event made obsolete: removed from the queue, not sent."""
    stopped: str | None = None
    """Why the flush stopped before the end (the relay failed), or None."""


class MailBatch:
    """Messages being sent in the background; ``results()`` waits and queues what failed.

    Sent by a thread of this process, or by the mail process (``worker``): its batches are
    handed over at once, each after the other, and come back in order.
    """

    def __init__(
        self, mailer: Mailer, requests: Sequence[MailRequest], worker: MailWorker | None = None
    ) -> None:
        self._mailer = mailer
        self._deliveries = [Delivery(request) for request in requests]
        self._told: dict[int, SendResult] = {}
        """Each delivery's result, by ``id()``, once worked out (and its message queued)."""
        self._crash: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._handed: Handed | None = None
        if worker is not None:
            self._handed = worker.submit(self._deliveries, mailer.sender)
        else:
            self._thread = threading.Thread(target=self._run, name="umacct-mail", daemon=True)
            self._thread.start()

    @property
    def done(self) -> bool:
        """Whether every message was tried (``results()`` would not wait)."""
        if self._thread is not None:
            return not self._thread.is_alive()
        return self._handed is None or self._handed.done

    @property
    def in_thread(self) -> bool:
        """Whether this process's transport sends it (in a thread of this process)."""
        return self._thread is not None

    def _run(self) -> None:
        try:
            self._mailer.sender.deliver(self._deliveries)
        except BaseException as exc:  # re-raised by results(), in the caller's thread
            self._crash = exc

    def wait(self) -> None:
        """Wait until every message was tried (nothing is queued yet)."""
        if self._thread is not None:
            self._thread.join()
        elif self._handed is not None:
            self._handed.wait()
            if self._handed.crash is not None and self._crash is None:
                self._crash = RuntimeError(f"the mail process failed:\n{self._handed.crash}")

    def outcomes(self) -> list[SendResult | UmacctError]:
        """For each request, in order, once all were tried: what ``Mailer.send`` gives.

        That is its result, or the error it would have raised: the message's own, or the
        queue's when a message the relay could not take cannot be queued. A mail process
        that failed on the batch (its outbox not synced, say) gives every message an
        UnavailableError: none of them is known to have gone.
        """
        self.wait()
        if self._crash is not None:
            crash = self._handed.crash if self._handed is not None else None
            last = (crash or str(self._crash)).strip().splitlines()[-1:] or ["?"]
            failure = UnavailableError(f"the mail process failed: {last[0]}")
            return [failure for _ in self._deliveries]
        outcomes: list[SendResult | UmacctError] = []
        for delivery in self._deliveries:
            if delivery.error is not None:
                outcomes.append(delivery.error)
                continue
            try:
                outcomes.append(self._result_of(delivery))
            except UmacctError as error:
                outcomes.append(error)
        return outcomes

    def results(self) -> list[SendResult]:
        """One result per request, in order, once all were tried; failures are queued.

        Raises the first error of a message itself (InvalidInputError, RefusedError) after
        the other messages were sent or queued.
        """
        results = self._all_results()
        errors = [delivery.error for delivery in self._deliveries if delivery.error]
        if errors:
            raise errors[0]
        return results

    def _all_results(self) -> list[SendResult]:
        self.wait()
        if self._crash is not None:
            raise self._crash
        return [self._result_of(delivery) for delivery in self._deliveries]

    def _result_of(self, delivery: Delivery) -> SendResult:
        """``Mailer.result_of`` once per delivery (it queues what the relay did not take)."""
        result = self._told.get(id(delivery))
        if result is None:
            result = self._told[id(delivery)] = self._mailer.result_of(delivery)
        return result


class Mailer:
    """Composes, sends, and queues on failure.

    After the first relay failure of a run the Mailer stops contacting the relay (the
    ``Sender``'s circuit breaker). A batch of ``WORKER_BATCH`` messages or more goes to the
    mail process that ``worker`` starts (once a run), when one is given, and so does every
    batch after it.
    """

    def __init__(
        self,
        config: Config,
        transport: Transport,
        queue: MailQueue,
        clock: Clock,
        *,
        worker: Callable[[], MailWorker] | None = None,
    ) -> None:
        self._config = config
        self._queue = queue
        self._clock = clock
        self._sender = Sender(config, transport, clock)
        self._start_worker = worker
        self._worker: MailWorker | None = None
        self._in_flight: list[MailBatch] = []

    @property
    def sender(self) -> Sender:
        """What composes and sends in this process (and holds the run's circuit breaker)."""
        return self._sender

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Messages sent in the block reach the disk together at its end (the outbox's).

        The sweep records a batch's notices after the block: only for mail on disk.
        """
        return self._sender.batch()

    @property
    def relay_failure(self) -> str | None:
        """The failure that opened the circuit breaker in this run, or None."""
        return self._sender.relay_failure

    def send(
        self,
        account: str,
        kind: str,
        to: str,
        params: Mapping[str, str],
        *,
        link: str | None = None,
        link_purpose: str | None = None,
    ) -> SendResult:
        """Send now; if the relay fails, queue the message (without its link) instead.

        A message with a link names the link's purpose too, so that a flush can issue a
        fresh one. Invalid input (address, parameters) raises InvalidInputError and
        queues nothing; a relay that refuses the message raises RefusedError.
        """
        return self.send_request(MailRequest(account, kind, to, params, link, link_purpose))

    def send_request(self, request: MailRequest) -> SendResult:
        """``send`` of a request already made."""
        self._wait_in_flight()
        [delivery] = self._sender.deliver([Delivery(request)])
        if delivery.error is not None:
            raise delivery.error
        return self.result_of(delivery)

    def expect_large_batches(self) -> None:
        """Start the mail process now: the run will hand it batches (it starts meanwhile).

        Its start-up (a new interpreter) then overlaps the run's first look-ups and adds
        instead of holding up the first batch's mail.
        """
        if self._worker is None and self._start_worker:
            self._worker = self._start_worker()

    def hand_over(self, requests: Sequence[MailRequest]) -> MailBatch | None:
        """``start`` for a batch the mail process sends; None (nothing sent) for another.

        The mail process takes a batch of ``WORKER_BATCH`` messages or more, and any batch
        once it runs. None when it would not, or cannot: the caller then sends each itself.
        Unlike a batch in a thread of this process, the mail process's writes and syncs
        never join a ``batch()`` block of the caller's.
        """
        worker = self._worker_for(requests)
        return None if worker is None else self.start(requests)

    def start(self, requests: Sequence[MailRequest]) -> MailBatch:
        """Send ``requests`` in the background, in order; collect with ``results()``.

        A batch of ``WORKER_BATCH`` messages or more goes to the mail process, and so does
        any batch once that process runs (at once, even while earlier batches are there);
        another is sent by a thread of this process, once the batch before it that this
        process sends is done (one connection, one user).
        """
        worker = self._worker_for(requests)
        if worker is None:
            self._wait_in_flight(in_thread_only=True)
        batch = MailBatch(self, requests, worker)
        self._in_flight = [*(earlier for earlier in self._in_flight if not earlier.done), batch]
        return batch

    def _worker_for(self, requests: Sequence[MailRequest]) -> MailWorker | None:
        """The mail process, if it is to send ``requests`` (started for a large batch)."""
        if len(requests) >= WORKER_BATCH:
            self.expect_large_batches()
        worker = self._worker
        return worker if worker is not None and worker.usable else None

    def _wait_in_flight(self, *, in_thread_only: bool = False) -> None:
        for batch in self._in_flight:
            if batch.in_thread or not in_thread_only:
                batch.wait()
        self._in_flight = [
            batch for batch in self._in_flight if in_thread_only and not batch.in_thread
        ]

    def close(self) -> None:
        """Stop the mail process, if one was started (a batch in flight is waited for)."""
        self._wait_in_flight()
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def result_of(self, delivery: Delivery) -> SendResult:
        """The outcome of a delivery; what the relay could not take is queued here."""
        if delivery.message_id is not None:
            where = "outbox" if self._config.mail.transport == "outbox" else "smtp"
            return SendResult(sent=True, message_id=delivery.message_id, delivery=where)
        if delivery.relay_failure is None or delivery.recipient is None:
            return SendResult(sent=False, error=str(delivery.error))
        request = delivery.request
        queued_id = self._queue.add(
            account=request.account,
            recipient=delivery.recipient,
            kind=request.kind,
            params=request.params,
            link_purpose=request.link_purpose,
            now=self._clock.now(),
        )
        return SendResult(sent=False, queued_id=queued_id, error=delivery.relay_failure)

    def flush(self, link_issuer: LinkIssuer, *, limit: int | None = None) -> FlushReport:
        """Send queued messages, oldest first, and mark each sent as soon as it went out.

        Only a crash between the relay's acceptance and that mark could send one twice.
        A message with a link gets a fresh one from ``link_issuer``. A relay failure stops
        the flush (the rest stays queued); a problem with one message is recorded on it
        and the flush goes on.
        """
        sent = 0
        failures: list[FlushFailure] = []
        dropped: list[FlushFailure] = []
        self._wait_in_flight()
        with self._queue.flush_lock():
            for mail in self._queue.pending(limit=limit):
                if self._sender.relay_failure is not None:
                    break
                try:
                    message = self._compose_queued(mail, link_issuer)
                    self._sender.send(message)
                except RELAY_FAILURES as exc:
                    self._queue.record_failure(mail.id, exc.message)
                except ObsoleteMailError as exc:
                    self._queue.discard(mail.id)
                    dropped.append(FlushFailure(mail.id, mail.account, mail.kind, exc.message))
                except UmacctError as exc:
                    self._queue.record_failure(mail.id, exc.message)
                    failures.append(FlushFailure(mail.id, mail.account, mail.kind, exc.message))
                else:
                    self._queue.mark_sent(mail.id, self._clock.now())
                    sent += 1
            remaining = self._queue.count_pending()
        return FlushReport(
            sent=sent,
            remaining=remaining,
            failures=failures,
            dropped=dropped,
            stopped=self._sender.relay_failure,
        )

    def pending(self, account: str | None = None) -> list[QueuedMail]:
        """Queued messages not sent yet, oldest first (a batch in flight is waited for)."""
        self._wait_in_flight()
        return self._queue.pending(account=account)

    def _compose_queued(self, mail: QueuedMail, link_issuer: LinkIssuer) -> OutgoingMessage:
        params = dict(mail.params)
        if mail.link_purpose is not None:
            link = link_issuer(mail)
            params.update(self._sender.link_parameters(link, mail.link_purpose))
        return self._sender.compose(mail.kind, mail.recipient, params)
