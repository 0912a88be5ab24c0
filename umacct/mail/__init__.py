"""Outgoing mail: bilingual templates, composition, transports and the queue."""

from umacct.mail.compose import available_kinds, compose, load_template, normalise_recipient
from umacct.mail.mailer import (
    LINK_PURPOSES,
    FlushFailure,
    FlushReport,
    LinkIssuer,
    Mailer,
    SendResult,
)
from umacct.mail.queue import MailQueue, QueuedMail, queue_path
from umacct.mail.transport import (
    OutboxTransport,
    SmtpTransport,
    Transport,
    transport_from_config,
)

__all__ = [
    "LINK_PURPOSES",
    "FlushFailure",
    "FlushReport",
    "LinkIssuer",
    "MailQueue",
    "Mailer",
    "OutboxTransport",
    "QueuedMail",
    "SendResult",
    "SmtpTransport",
    "Transport",
    "available_kinds",
    "compose",
    "load_template",
    "normalise_recipient",
    "queue_path",
    "transport_from_config",
]
