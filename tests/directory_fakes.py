"""A scripted LDAP server on loopback, for what slapd will not do on demand (huge or odd answers).

``FakeServer(script)`` accepts one connection and runs ``script(peer)`` in a thread; the
peer reads the tool's requests and sends hand-built answers (``umacct.directory.ber``). The
bind is answered by ``peer.accept_bind()``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import replace

from umacct.config import DirectoryConfig
from umacct.directory import ber

PASSWORD = "fake server password"


def result(tag: int, code: int = 0, diagnostic: str = "", extra: bytes = b"") -> bytes:
    """The protocolOp of an LDAPResult of type ``tag``."""
    content = (
        ber.tlv(ber.ENUMERATED, bytes((code,)))
        + ber.tlv(ber.OCTET_STRING, b"")
        + ber.tlv(ber.OCTET_STRING, diagnostic.encode())
    )
    return ber.tlv(tag, content + extra)


def entry(dn: str, **attributes: str) -> bytes:
    """The protocolOp of a SearchResultEntry."""
    encoded = b"".join(
        ber.tlv(ber.SEQUENCE, ber.tlv(ber.OCTET_STRING, name.encode())
                + ber.tlv(ber.SET, ber.tlv(ber.OCTET_STRING, value.encode())))
        for name, value in attributes.items()
    )  # fmt: skip
    return ber.tlv(ber.SEARCH_ENTRY, ber.tlv(ber.OCTET_STRING, dn.encode()) + ber.tlv(
        ber.SEQUENCE, encoded
    ))  # fmt: skip


class Peer:
    """The server's side of the one connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.received: list[ber.Message] = []

    def request(self) -> ber.Message:
        """The next request of the tool (EOFError once it closed the connection)."""
        while True:
            messages = ber.split_messages(self.buffer)
            if messages:
                self.buffer[:0] = b"".join(messages[1:])
                message = ber.decode_message(messages[0])
                self.received.append(message)
                return message
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the tool closed the connection")
            self.buffer += data

    def send(self, message_id: int, operation: bytes, controls: list[bytes] | None = None) -> None:
        self.sock.sendall(ber.message(message_id, operation, controls or []))

    def accept_bind(self) -> None:
        bind = self.request()
        assert bind.tag == ber.BIND_REQUEST
        self.send(bind.message_id, result(ber.BIND_RESPONSE))

    def closed_by_the_tool(self, timeout: float = 5) -> bool:
        """Whether the tool closes the connection within ``timeout`` (pending requests read)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
        except (TimeoutError, OSError):
            return False


class FakeServer:
    """A loopback LDAP server that plays ``script`` on its first connection."""

    def __init__(self, script: Callable[[Peer], None]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.error: BaseException | None = None
        self.peer: Peer | None = None
        self.thread = threading.Thread(target=self._serve, args=(script,), daemon=True)
        self.thread.start()

    def _serve(self, script: Callable[[Peer], None]) -> None:
        self.listener.settimeout(10)
        try:
            sock, _ = self.listener.accept()
        except OSError as exc:
            self.error = exc
            return
        with sock:
            self.peer = Peer(sock)
            try:
                script(self.peer)
            except EOFError:
                pass
            except BaseException as exc:  # reported by finish()
                self.error = exc

    def settings(self, base: DirectoryConfig) -> DirectoryConfig:
        """``base`` pointed at this server, in cleartext (loopback), with short timeouts."""
        return replace(
            base, urls=[f"ldap://127.0.0.1:{self.port}"], tls="none", connect_timeout=5,
            receive_timeout=5, bind_method="simple",
        )  # fmt: skip

    def finish(self) -> None:
        """Wait for the script to end; re-raise what it raised."""
        self.thread.join(10)
        with contextlib.suppress(OSError):
            self.listener.close()
        if self.error is not None:
            raise self.error
