"""Sending with a safety net: what cannot go out now is queued and sent by a later flush."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage

from umacct.clock import Clock
from umacct.config import Config, parse_duration
from umacct.errors import (
    ConfigError,
    InvalidInputError,
    TemporaryError,
    UmacctError,
    UnavailableError,
)
from umacct.mail.compose import compose, normalise_recipient
from umacct.mail.dates import english_duration, french_duration
from umacct.mail.queue import MailQueue, QueuedMail
from umacct.mail.transport import Transport

LINK_PURPOSES = ("activation", "reset", "confirm")
LINK_PARAMETERS = ("link", "link_validity_fr", "link_validity_en")

LinkIssuer = Callable[[str, str, Mapping[str, str]], str]
"""Issues a fresh token and returns the full link: ``(account, purpose, params) -> URL``."""

# Failures of the relay (or of its settings) rather than of one message: queue and stop trying.
_RELAY_FAILURES = (UnavailableError, TemporaryError, ConfigError)


@dataclass(frozen=True)
class SendResult:
    """What became of one message: sent now, or queued (with the reason)."""

    sent: bool
    message_id: str | None = None
    queued_id: int | None = None
    error: str | None = None


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
    stopped: str | None = None
    """Why the flush stopped before the end (the relay failed), or None."""


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
        self._relay_failure: str | None = None

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
        _check_link_arguments(params, link, link_purpose)
        recipient = normalise_recipient(to)
        extra = self._link_parameters(link, link_purpose) if link and link_purpose else {}
        message = self._compose(kind, recipient, {**params, **extra})
        if self._relay_failure is None:
            try:
                self._transport.send(message)
            except _RELAY_FAILURES as exc:
                self._relay_failure = exc.message
            else:
                return SendResult(sent=True, message_id=str(message["Message-ID"]))
        queued_id = self._queue.add(
            account=account,
            recipient=recipient,
            kind=kind,
            params=params,
            link_purpose=link_purpose,
            now=self._clock.now(),
        )
        return SendResult(sent=False, queued_id=queued_id, error=self._relay_failure)

    def flush(self, link_issuer: LinkIssuer, *, limit: int | None = None) -> FlushReport:
        """Send queued messages, oldest first, and mark each sent as soon as it went out.

        Only a crash between the relay's acceptance and that mark could send one twice.
        A message with a link gets a fresh one from ``link_issuer``. A relay failure stops
        the flush (the rest stays queued); a problem with one message is recorded on it
        and the flush goes on.
        """
        sent = 0
        failures: list[FlushFailure] = []
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
                except UmacctError as exc:
                    self._queue.record_failure(mail.id, exc.message)
                    failures.append(FlushFailure(mail.id, mail.account, mail.kind, exc.message))
                else:
                    self._queue.mark_sent(mail.id, self._clock.now())
                    sent += 1
            remaining = self._queue.count_pending()
        return FlushReport(
            sent=sent, remaining=remaining, failures=failures, stopped=self._relay_failure
        )

    def pending(self, account: str | None = None) -> list[QueuedMail]:
        """Queued messages not sent yet, oldest first."""
        return self._queue.pending(account=account)

    def _compose_queued(self, mail: QueuedMail, link_issuer: LinkIssuer) -> EmailMessage:
        params = dict(mail.params)
        if mail.link_purpose is not None:
            link = link_issuer(mail.account, mail.link_purpose, mail.params)
            params.update(self._link_parameters(link, mail.link_purpose))
        return self._compose(mail.kind, mail.recipient, params)

    def _compose(self, kind: str, recipient: str, params: Mapping[str, str]) -> EmailMessage:
        return compose(kind, recipient, params, config=self._config.mail, clock=self._clock)

    def _link_parameters(self, link: str, purpose: str) -> dict[str, str]:
        lifetime = parse_duration(getattr(self._config.tokens, f"{purpose}_ttl"))
        return {
            "link": link,
            "link_validity_fr": french_duration(lifetime),
            "link_validity_en": english_duration(lifetime),
        }


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
