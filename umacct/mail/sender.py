"""Composing messages and handing them to the transport, with the run's circuit breaker.

The ``Mailer`` uses a ``Sender`` in its own process (one message, a flush, small batches);
the mail process of a large batch (``umacct.mail.worker``) runs one of its own.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from umacct.clock import Clock
from umacct.config import Config, parse_duration
from umacct.errors import (
    ConfigError,
    InvalidInputError,
    TemporaryError,
    UmacctError,
    UnavailableError,
)
from umacct.mail.dates import english_duration, french_duration
from umacct.mail.lanes import LaneSender, LaneTransport
from umacct.mail.transport import Transport

if TYPE_CHECKING:
    from umacct.mail.compose import Composer, OutgoingMessage

LINK_PURPOSES = ("activation", "reset", "confirm", "extension")
LINK_PARAMETERS = ("link", "link_validity_fr", "link_validity_en")

# Failures of the relay (or of its settings) rather than of one message: queue and stop trying.
RELAY_FAILURES = (UnavailableError, TemporaryError, ConfigError)


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
class Delivery:
    """What became of one request: sent, or failed (and why)."""

    request: MailRequest
    recipient: str | None = None
    message_id: str | None = None
    relay_failure: str | None = None
    """Set when the relay could not take it: the message is to be queued."""
    error: UmacctError | None = None
    """Set for a problem of the message itself (bad input, refused by the relay)."""


class Sender:
    """Composes and sends, with the run's circuit breaker.

    After the relay's first failure of a run it stops contacting it: a bulk intake of
    thousands of people queues the rest at once instead of waiting for a timeout per person.
    """

    def __init__(self, config: Config, transport: Transport, clock: Clock) -> None:
        self._config = config
        self._transport = transport
        self._clock = clock
        self._composer: Composer | None = None
        """Made for the first message: a run whose mail another process composes never
        imports the email package."""
        self._relay_failure: str | None = None
        self._breaker_lock = threading.Lock()
        self._validity: dict[str, tuple[str, str]] = {}
        """The French and English link lifetimes by purpose, worked out once a run."""

    @property
    def relay_failure(self) -> str | None:
        """The failure that opened the circuit breaker in this run, or None."""
        return self._relay_failure

    def open_breaker(self, reason: str) -> None:
        """The relay failed (here or in the mail process): nothing more is tried this run."""
        with self._breaker_lock:
            if self._relay_failure is None:
                self._relay_failure = reason

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """Messages sent in the block reach the disk together at its end (the outbox's)."""
        batch = getattr(self._transport, "batch", None)
        return batch() if callable(batch) else contextlib.nullcontext()

    def send(self, message: OutgoingMessage) -> None:
        """Hand one composed message to the transport; a relay failure opens the breaker."""
        try:
            self._transport.send(message)
        except RELAY_FAILURES as exc:
            self.open_breaker(exc.message)
            raise

    def deliver(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Compose and send each message; nothing is queued here.

        An outbox syncs the batch's files together once all are written (``batch``).
        """
        with self.batch():
            return self._deliver(deliveries)

    def _deliver(self, deliveries: list[Delivery]) -> list[Delivery]:
        lanes = getattr(self._transport, "lanes", None)
        if len(deliveries) > 1 and callable(lanes) and len(transports := lanes()) > 1:
            return self._deliver_over(transports, deliveries)
        for delivery in deliveries:
            message = self._prepare(delivery)
            if message is None:
                continue
            if self._relay_failure is None:
                try:
                    self.send(message)
                except RELAY_FAILURES:
                    pass
                except UmacctError as exc:
                    delivery.error = exc
                    continue
                else:
                    delivery.message_id = message.message_id
                    continue
            delivery.relay_failure = self._relay_failure
        return deliveries

    def _prepare(self, delivery: Delivery) -> OutgoingMessage | None:
        """The composed message, or None (the problem recorded on the delivery)."""
        request = delivery.request
        try:
            _check_link_arguments(request.params, request.link, request.link_purpose)
            extra = (
                self.link_parameters(request.link, request.link_purpose)
                if request.link and request.link_purpose
                else {}
            )
            message = self.compose(request.kind, request.to, {**request.params, **extra})
        except UmacctError as exc:
            delivery.error = exc
            return None
        delivery.recipient = message.recipient  # validated and normalised by the composer
        return message

    def _deliver_over(
        self, transports: Sequence[LaneTransport], deliveries: list[Delivery]
    ) -> list[Delivery]:
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

    def _record(self, delivery: Delivery, message_id: str, error: UmacctError | None) -> None:
        """In a lane's thread: what became of one message (a relay failure opens the breaker)."""
        if error is None:
            delivery.message_id = message_id
        elif isinstance(error, RELAY_FAILURES):
            self.open_breaker(error.message)
            delivery.relay_failure = self._relay_failure
        else:
            delivery.error = error

    def compose(self, kind: str, recipient: str, params: Mapping[str, str]) -> OutgoingMessage:
        """The message of ``kind`` for ``recipient`` (address checked)."""
        if self._composer is None:
            from umacct.mail.compose import Composer

            self._composer = Composer(self._config.mail, self._clock)
        return self._composer.compose(kind, recipient, params)

    def link_parameters(self, link: str, purpose: str) -> dict[str, str]:
        """The template parameters of a link: itself and its lifetime in both languages."""
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
