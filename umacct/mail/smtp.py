"""Mail through an SMTP relay: one connection a lane, ESMTP pipelining when offered.

Kept apart from ``umacct.mail.transport`` so that a run writing to the outbox does not load
``smtplib`` for nothing.
"""

from __future__ import annotations

import dataclasses
import re
import smtplib
import ssl
from typing import TYPE_CHECKING

from umacct.closing import Closing
from umacct.config import SmtpConfig
from umacct.errors import ConfigError, RefusedError, UnavailableError
from umacct.loopback import is_loopback_host

if TYPE_CHECKING:
    from umacct.mail.compose import OutgoingMessage

SMTP_SECURITY_MODES = ("starttls", "tls", "none")
# 421 is "service not available, closing channel": the relay dropped an idle session.
_SERVICE_CLOSING = 421
_OK = 250
_RCPT_OK = (250, 251)
_START_MAIL_INPUT = 354
# Dot-stuffing (RFC 5321 4.5.2): a line starting with "." gets one more.
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class SmtpTransport(Closing):
    """Sends through an SMTP relay, over one connection kept open for the whole run.

    ``starttls`` and ``tls`` check the relay's certificate (``ssl.create_default_context``);
    ``none`` sends in clear and is accepted only towards a loopback relay (security.md 15).
    A dropped connection is reopened once per message. When the relay offers ESMTP
    PIPELINING (RFC 2920), ``MAIL``, ``RCPT`` and ``DATA`` go in one write: two round trips
    a message instead of four. A batch may go over ``connections`` connections at once
    (``lanes()``: this transport and its siblings, each with its own connection).
    """

    def __init__(
        self,
        config: SmtpConfig,
        password: str | None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if config.security not in SMTP_SECURITY_MODES:
            raise ConfigError(
                f"[mail.smtp] security: expected one of {', '.join(SMTP_SECURITY_MODES)}, "
                f"got {config.security!r}"
            )
        if config.security == "none" and not is_loopback_host(config.host):
            raise ConfigError(
                f"[mail.smtp] security = 'none' sends mail in clear: allowed only to a loopback "
                f"relay, not to {config.host!r}; use 'starttls' or 'tls'"
            )
        if config.username and not password:
            raise ConfigError(
                f"no SMTP password for user {config.username!r}: store it with "
                "'umacct secret set smtp' or set $UMACCT_SMTP_PASSWORD"
            )
        self.config = config
        self._password = password
        self._ssl_context = ssl_context
        """Made when a connection first needs TLS: reading the system's CA store takes 40 ms."""
        self._connection: smtplib.SMTP | None = None
        self.connections_opened = 0
        self._siblings: list[SmtpTransport] = []

    @property
    def address(self) -> str:
        """``host:port`` of the relay, for messages."""
        return f"{self.config.host}:{self.config.port}"

    def lanes(self) -> list[SmtpTransport]:
        """The transports a batch is sent over at once: this one and its siblings.

        ``connections - 1`` siblings, a connection each, kept open for the next batch and
        closed by ``close``.
        """
        while len(self._siblings) < self.config.connections - 1:
            sibling = SmtpTransport(
                dataclasses.replace(self.config, connections=1),
                self._password,
                ssl_context=None if self.config.security == "none" else self._tls(),
            )
            self._siblings.append(sibling)
        return [self, *self._siblings]

    def send(self, message: OutgoingMessage) -> None:
        """Send one message, reconnecting once if the relay had dropped the connection."""
        try:
            self._send_once(message)
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPSenderRefused) as exc:
            if isinstance(exc, smtplib.SMTPSenderRefused) and exc.smtp_code != _SERVICE_CLOSING:
                raise self._failure(exc) from exc
            self._disconnect()
            try:
                self._send_once(message)
            except (smtplib.SMTPException, OSError) as again:
                self._disconnect()
                raise self._failure(again) from again
        except (smtplib.SMTPException, OSError) as exc:
            self._disconnect()
            raise self._failure(exc) from exc

    def _send_once(self, message: OutgoingMessage) -> None:
        if self._connection is None:
            self._connection = self._connect()
        connection = self._connection
        content = _wire_content(message.data)
        if not connection.has_extn("pipelining"):
            # smtplib says MAIL, RCPT and DATA one at a time (and adds SIZE itself).
            connection.sendmail(message.sender, [message.recipient], content)
            return
        options = [f"SIZE={len(content)}"] if connection.has_extn("size") else []
        try:
            _send_pipelined(connection, message.sender, message.recipient, content, options)
        except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused):
            _reset(connection)
            raise

    def _connect(self) -> smtplib.SMTP:
        host, port, timeout = self.config.host, self.config.port, self.config.timeout
        connection: smtplib.SMTP
        if self.config.security == "tls":
            connection = smtplib.SMTP_SSL(host, port, timeout=timeout, context=self._tls())
        else:
            connection = smtplib.SMTP(host, port, timeout=timeout)
        self.connections_opened += 1
        try:
            connection.ehlo()
            if self.config.security == "starttls":
                connection.starttls(context=self._tls())
                connection.ehlo()
            if self.config.username:
                connection.login(self.config.username, self._password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _failure(self, exc: BaseException) -> ConfigError | RefusedError | UnavailableError:
        where = f"SMTP relay {self.address}"
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return ConfigError(
                f"{where} refused the login of {self.config.username!r}: check the SMTP password"
            )
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return UnavailableError(f"{where}: {exc} (is [mail.smtp] security right?)")
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            refused = ", ".join(f"{rcpt} ({code})" for rcpt, (code, _) in exc.recipients.items())
            if all(code >= 500 for code, _ in exc.recipients.values()):
                return RefusedError(f"{where} refused the recipient {refused}")
            return UnavailableError(f"{where} deferred the recipient {refused}")
        if isinstance(exc, smtplib.SMTPResponseException):
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            if exc.smtp_code >= 500:
                return RefusedError(f"{where} refused the message: {exc.smtp_code} {text}")
            return UnavailableError(f"{where} answered {exc.smtp_code} {text}")
        if isinstance(exc, ssl.SSLError):
            return UnavailableError(f"{where}: TLS failed: {exc}")
        if isinstance(exc, OSError):
            reason = exc.strerror or str(exc) or type(exc).__name__
            return UnavailableError(f"{where}: connection failed: {reason}")
        return UnavailableError(f"{where}: {exc}")

    def close(self) -> None:
        """Say QUIT and close the connections, if any is open."""
        for sibling in self._siblings:
            sibling.close()
        self._disconnect()

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.quit()
        except (smtplib.SMTPException, OSError):
            connection.close()


def _wire_content(data: bytes) -> bytes:
    """CRLF line ends, as SMTP wants them (composed messages end their lines with LF)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def _send_pipelined(
    connection: smtplib.SMTP, sender: str, recipient: str, content: bytes, options: list[str]
) -> None:
    """One message over a relay that offers PIPELINING: the envelope in one write.

    Raises the exceptions ``smtplib.SMTP.sendmail`` raises in the same cases, so that the
    failures are read the same way.
    """
    mail_from = " ".join([f"MAIL FROM:<{sender}>", *options])
    connection.send(f"{mail_from}\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode("ascii"))
    mail_reply = connection.getreply()
    rcpt_reply = connection.getreply()
    data_code, data_text = connection.getreply()
    if data_code == _START_MAIL_INPUT and (mail_reply[0] != _OK or rcpt_reply[0] not in _RCPT_OK):
        # The relay took DATA though the envelope failed: end the empty message and drop it.
        connection.send(b".\r\n")
        connection.getreply()
    if mail_reply[0] != _OK:
        raise smtplib.SMTPSenderRefused(*mail_reply, sender)
    if rcpt_reply[0] not in _RCPT_OK:
        raise smtplib.SMTPRecipientsRefused({recipient: rcpt_reply})
    if data_code != _START_MAIL_INPUT:
        raise smtplib.SMTPDataError(data_code, data_text)
    stuffed = _LEADING_DOT.sub(b"..", content)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    connection.send(stuffed + b".\r\n")
    code, text = connection.getreply()
    if code != _OK:
        raise smtplib.SMTPDataError(code, text)


def _reset(connection: smtplib.SMTP) -> None:
    """RSET after a failed message, as smtplib does; a connection already gone is left be."""
    try:
        connection.rset()
    except (smtplib.SMTPException, OSError):
        connection.close()
