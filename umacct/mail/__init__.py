"""Outgoing mail: bilingual templates, composition, transports and the queue."""

from umacct.mail.compose import (
    Composer,
    OutgoingMessage,
    available_kinds,
    compose,
    load_template,
    normalise_recipient,
)
from umacct.mail.mailer import (
    LINK_PURPOSES,
    FlushFailure,
    FlushReport,
    LinkIssuer,
    MailBatch,
    Mailer,
    MailRequest,
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
    "Composer",
    "FlushFailure",
    "FlushReport",
    "LinkIssuer",
    "MailBatch",
    "MailQueue",
    "MailRequest",
    "Mailer",
    "OutboxTransport",
    "OutgoingMessage",
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
