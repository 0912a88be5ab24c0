"""A real SMTP server (aiosmtpd) on loopback for the mail tests.

Register with ``pytest_plugins = ["tests.smtp_fixtures"]``. Fixtures:

* ``smtp_server``: plain SMTP on 127.0.0.1, a free port;
* ``smtp_tls_files``: a throwaway self-signed certificate for 127.0.0.1 (openssl CLI);
* ``smtp_starttls_server`` / ``smtp_implicit_tls_server``: the same server behind TLS.

Each server records what it receives and can be stopped and started again on the same
port, to play a relay that goes down.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMail:
    """One message as the server got it."""

    peer: tuple[str, int]
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage


class RecordingHandler:
    """aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self.closing = False
        """Set (in the server's loop) as it stops: a message that ends now is refused."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.closing:
            return "421 closing down"
        raw = bytes(envelope.original_content or envelope.content)
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        mail = ReceivedMail(
            peer=tuple(session.peer[:2]),
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            message=parsed,
        )
        with self._lock:
            self.received.append(mail)
        return "250 Message accepted for delivery"


def free_port() -> int:
    """A TCP port nobody listens on right now, on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


class SmtpTestServer:
    """An aiosmtpd server that can go down and come back on the same port."""

    def __init__(self, **controller_options: Any) -> None:
        self.host = LOOPBACK
        self.port = free_port()
        self.handler = RecordingHandler()
        self._options = controller_options
        self._controller: Controller | None = None

    @property
    def received(self) -> list[ReceivedMail]:
        """Messages received so far, in order."""
        return self.handler.received

    @property
    def connections(self) -> int:
        """How many client connections delivered at least one message."""
        return len({mail.peer for mail in self.received})

    @property
    def running(self) -> bool:
        """Whether the server listens now."""
        return self._controller is not None

    def start(self) -> None:
        """Listen (again) on the server's port."""
        if self._controller is None:
            controller = _ClosingController(
                self.handler, hostname=self.host, port=self.port, **self._options
            )
            controller.start()
            self._controller = controller

    def stop(self) -> None:
        """Stop listening and drop open connections."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()


class _ClosingController(Controller):
    """A controller that closes its clients' connections as it stops.

    Stopping the loop alone left them open and unserved, an accepted message's reply
    maybe still unsent (the client then queued a message the server kept), and their
    sockets were closed only when collected, with a ResourceWarning that failed whichever
    test was running then. Here no message is accepted once stopping started, and the
    loop stops once every connection is closed, its last replies sent.
    """

    def __init__(self, handler: RecordingHandler, **options: Any) -> None:
        super().__init__(handler, **options)
        self._recording = handler
        self._sessions: list[Any] = []

    def factory(self) -> Any:
        session = super().factory()
        self._sessions.append(session)
        return session

    def cancel_tasks(self, stop_loop: bool = True) -> None:
        self._recording.closing = True
        if self.server is not None:
            self.server.close()  # no new connection
        self.loop.create_task(self._cancel_once_closed(stop_loop))

    async def _cancel_once_closed(self, stop_loop: bool) -> None:
        for _ in range(200):  # at most about 2 s
            open_ones = [session for session in self._sessions if session.transport is not None]
            if not open_ones:
                break
            for session in open_ones:
                session.transport.close()
            await asyncio.sleep(0.01)
        self._sessions.clear()
        self._recording.closing = False  # a restarted server accepts again
        super().cancel_tasks(stop_loop)


def relay_asking_login(password: bytes) -> SmtpTestServer:
    """A server (not started) that asks for AUTH PLAIN and takes ``password`` only."""
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(*args: object) -> AuthResult:
        data = args[-1]
        ok = isinstance(data, LoginPassword) and data.password == password
        return AuthResult(success=ok, handled=False)

    return SmtpTestServer(
        auth_require_tls=False, authenticator=authenticator, auth_exclude_mechanism=["LOGIN"]
    )


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """A plain SMTP server on loopback, started."""
    server = SmtpTestServer()
    server.start()
    yield server
    server.stop()


@dataclass(frozen=True)
class TlsFiles:
    """A self-signed certificate for 127.0.0.1 and its key."""

    certificate: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        """What the test server presents."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.certificate, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and checks it)."""
        return ssl.create_default_context(cafile=str(self.certificate))


@pytest.fixture(scope="session")
def smtp_tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway certificate for the TLS servers, made with the openssl CLI."""
    folder = tmp_path_factory.mktemp("smtp-tls")
    files = TlsFiles(certificate=folder / "cert.pem", key=folder / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", f"subjectAltName=IP:{LOOPBACK},DNS:localhost",
         "-keyout", str(files.key), "-out", str(files.certificate)],
        check=True, capture_output=True,
    )  # fmt: skip
    return files


@pytest.fixture
def smtp_starttls_server(smtp_tls_files: TlsFiles) -> Iterator[SmtpTestServer]:
    """An SMTP server on loopback that requires STARTTLS before MAIL."""
    server = SmtpTestServer(tls_context=smtp_tls_files.server_context(), require_starttls=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp_implicit_tls_server(smtp_tls_files: TlsFiles) -> Iterator[SmtpTestServer]:
    """An SMTP server on loopback speaking TLS from the first byte (SMTPS)."""
    server = SmtpTestServer(ssl_context=smtp_tls_files.server_context())
    server.start()
    yield server
    server.stop()
