"""Sending with a safety net: what cannot go out now is queued and sent by a later flush.

A batch of messages (``Mailer.start``) is composed and sent by a worker thread while the
caller goes on (a bulk intake adds the next accounts meanwhile); its ``results()`` waits
for it, then queues, in the caller's thread, what the relay did not take. The transport is
used by one thread at a time: every other use of the Mailer waits for the batch first.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from umacct.clock import Clock
from umacct.config import Config, parse_duration
from umacct.errors import (
    ConfigError,
    InvalidInputError,
    ObsoleteMailError,
    TemporaryError,
    UmacctError,
    UnavailableError,
)
from umacct.mail.compose import Composer, OutgoingMessage
from umacct.mail.dates import english_duration, french_duration
from umacct.mail.lanes import LaneSender, LaneTransport
from umacct.mail.queue import MailQueue, QueuedMail
from umacct.mail.transport import Transport

LINK_PURPOSES = ("activation", "reset", "confirm", "extension")
LINK_PARAMETERS = ("link", "link_validity_fr", "link_validity_en")

LinkIssuer = Callable[[QueuedMail], str]
"""Issues a fresh link for a queued message; raises ObsoleteMailError to drop the message."""
"""Issues a fresh token and returns the full link: ``(account, purpose, params) -> URL``."""

# Failures of the relay (or of its settings) rather than of one message: queue and stop trying.
_RELAY_FAILURES = (UnavailableError, TemporaryError, ConfigError)


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


@dataclass(frozen=True)
class MailRequest:
    """One message to send: what ``Mailer.send`` takes, for a batch."""

    account: str
    kind: str
    to: str
    params: Mapping[str, str]
    link: str | None = None
    link_purpose: str | None = None


@dataclass
class _Delivery:
    """What the worker made of one request: sent, or failed (and why)."""

    request: MailRequest
    recipient: str | None = None
    message_id: str | None = None
    relay_failure: str | None = None
    """Set when the relay could not take it: the message is to be queued."""
    error: UmacctError | None = None
    """Set for a problem of the message itself (bad input, refused by the relay)."""


class MailBatch:
    """Messages being sent in the background; ``results()`` waits and queues what failed."""

    def __init__(self, mailer: Mailer, requests: Sequence[MailRequest]) -> None:
        self._mailer = mailer
        self._deliveries = [_Delivery(request) for request in requests]
        self._results: list[SendResult] | None = None
        self._crash: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="umacct-mail", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._mailer.deliver(self._deliveries)
        except BaseException as exc:  # re-raised by results(), in the caller's thread
            self._crash = exc

    def wait(self) -> None:
        """Wait until every message was tried (nothing is queued yet)."""
        self._thread.join()

    def results(self) -> list[SendResult]:
        """One result per request, in order, once all were tried; failures are queued.

        Raises the first error of a message itself (InvalidInputError, RefusedError) after
        the other messages were sent or queued.
        """
        if self._results is None:
            self.wait()
            if self._crash is not None:
                raise self._crash
            self._results = [self._mailer.result_of(delivery) for delivery in self._deliveries]
        errors = [delivery.error for delivery in self._deliveries if delivery.error]
        if errors:
            raise errors[0]
        return self._results


class Mailer:
    """Composes, sends, and queues on failure.

    After the first relay failure of a run the Mailer stops contacting the relay (a
    circuit breaker): a bulk intake of thousands of people queues the rest at once
    instead of waiting for a timeout per person.
    """

    def __init__(
        self, config: Config, transport: Transport, queue: MailQueue, clock: Clock
    ) -> None:
        self._config = config
        self._transport = transport
        self._queue = queue
        self._clock = clock
        self._composer = Composer(config.mail, clock)
        self._relay_failure: str | None = None
        self._breaker_lock = threading.Lock()
        self._in_flight: MailBatch | None = None
        self._validity: dict[str, tuple[str, str]] = {}
        """The French and English link lifetimes by purpose, worked out once a run."""

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Messages sent in the block reach the disk together at its end (the outbox's).

        The sweep records a batch's notices after the block: only for mail on disk.
        """
        batch = getattr(self._transport, "batch", None)
        return batch() if callable(batch) else contextlib.nullcontext()

    @property
    def relay_failure(self) -> str | None:
        """The failure that opened the circuit breaker in this run, or None."""
        return self._relay_failure

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
        request = MailRequest(account, kind, to, params, link, link_purpose)
        self._wait_in_flight()
        [delivery] = self.deliver([_Delivery(request)])
        if delivery.error is not None:
            raise delivery.error
        return self.result_of(delivery)

    def start(self, requests: Sequence[MailRequest]) -> MailBatch:
        """Send ``requests`` in the background, in order; collect with ``results()``."""
        self._wait_in_flight()
        self._in_flight = MailBatch(self, requests)
        return self._in_flight

    def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            self._in_flight.wait()
            self._in_flight = None

    def deliver(self, deliveries: list[_Delivery]) -> list[_Delivery]:
        """Compose and send each message (in the worker thread for a batch); no queue use.

        An outbox syncs the batch's files together once all are written (``batch``).
        """
        with self.batch():
            return self._deliver(deliveries)

    def _deliver(self, deliveries: list[_Delivery]) -> list[_Delivery]:
        lanes = getattr(self._transport, "lanes", None)
        if len(deliveries) > 1 and callable(lanes) and len(transports := lanes()) > 1:
            return self._deliver_over(transports, deliveries)
        for delivery in deliveries:
            message = self._prepare(delivery)
            if message is None:
                continue
            if self._relay_failure is None:
                try:
                    self._transport.send(message)
                except _RELAY_FAILURES as exc:
                    self._relay_failure = exc.message
                except UmacctError as exc:
                    delivery.error = exc
                    continue
                else:
                    delivery.message_id = message.message_id
                    continue
            delivery.relay_failure = self._relay_failure
        return deliveries

    def _prepare(self, delivery: _Delivery) -> OutgoingMessage | None:
        """The composed message, or None (the problem recorded on the delivery)."""
        request = delivery.request
        try:
            _check_link_arguments(request.params, request.link, request.link_purpose)
            extra = (
                self._link_parameters(request.link, request.link_purpose)
                if request.link and request.link_purpose
                else {}
            )
            message = self._compose(request.kind, request.to, {**request.params, **extra})
        except UmacctError as exc:
            delivery.error = exc
            return None
        delivery.recipient = message.recipient  # validated and normalised by the composer
        return message

    def _deliver_over(
        self, transports: Sequence[LaneTransport], deliveries: list[_Delivery]
    ) -> list[_Delivery]:
        """Compose here, send over several connections at once (a person's on one)."""
        with LaneSender(transports, lambda: self._relay_failure) as sender:
            for delivery in deliveries:
                message = self._prepare(delivery)
                if message is None:
                    continue
                if self._relay_failure is not None:
                    delivery.relay_failure = self._relay_failure
                    continue
                done = functools.partial(self._record, delivery, message.message_id)
                sender.submit(delivery.request.account, message, done)
        return deliveries

    def _record(self, delivery: _Delivery, message_id: str, error: UmacctError | None) -> None:
        """In a lane's thread: what became of one message (a relay failure opens the breaker)."""
        if error is None:
            delivery.message_id = message_id
        elif isinstance(error, _RELAY_FAILURES):
            with self._breaker_lock:
                if self._relay_failure is None:
                    self._relay_failure = error.message
            delivery.relay_failure = self._relay_failure
        else:
            delivery.error = error

    def result_of(self, delivery: _Delivery) -> SendResult:
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
                if self._relay_failure is not None:
                    break
                try:
                    message = self._compose_queued(mail, link_issuer)
                    self._transport.send(message)
                except _RELAY_FAILURES as exc:
                    self._relay_failure = exc.message
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
            stopped=self._relay_failure,
        )

    def pending(self, account: str | None = None) -> list[QueuedMail]:
        """Queued messages not sent yet, oldest first (a batch in flight is waited for)."""
        self._wait_in_flight()
        return self._queue.pending(account=account)

    def _compose_queued(self, mail: QueuedMail, link_issuer: LinkIssuer) -> OutgoingMessage:
        params = dict(mail.params)
        if mail.link_purpose is not None:
            link = link_issuer(mail)
            params.update(self._link_parameters(link, mail.link_purpose))
        return self._compose(mail.kind, mail.recipient, params)

    def _compose(self, kind: str, recipient: str, params: Mapping[str, str]) -> OutgoingMessage:
        return self._composer.compose(kind, recipient, params)

    def _link_parameters(self, link: str, purpose: str) -> dict[str, str]:
        if purpose == "extension":  # valid until the grace end, not for a [tokens] lifetime
            fr, en = "jusqu'à la fermeture du compte", "until the account closes"
            return {"link": link, "link_validity_fr": fr, "link_validity_en": en}
        validity = self._validity.get(purpose)
        if validity is None:
            lifetime = parse_duration(getattr(self._config.tokens, f"{purpose}_ttl"))
            validity = french_duration(lifetime), english_duration(lifetime)
            self._validity[purpose] = validity
        return {"link": link, "link_validity_fr": validity[0], "link_validity_en": validity[1]}


def _check_link_arguments(
    params: Mapping[str, str], link: str | None, link_purpose: str | None
) -> None:
    reserved = sorted(set(params) & set(LINK_PARAMETERS))
    if reserved:
        raise InvalidInputError(
            f"mail parameters {', '.join(reserved)} are reserved: pass the link with link= "
            "and link_purpose= so that it is never queued"
        )
    if (link is None) != (link_purpose is None):
        raise InvalidInputError("a mail link needs its purpose, and a purpose needs its link")
    if link_purpose is not None and link_purpose not in LINK_PURPOSES:
        raise InvalidInputError(
            f"link purpose {link_purpose!r}: expected one of {', '.join(LINK_PURPOSES)}"
        )
