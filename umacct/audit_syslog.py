"""The system logger's socket, as syslog(3) speaks to it: the audit log's copy (``[audit] syslog``)."""

from __future__ import annotations

import errno
import os
import socket

SYSLOG_SOCKET = "/dev/log"
_SYSLOG_TIMEOUT = 2.0
"""A logger that does not take a record within this time is taken as unreachable."""


def syslog_connection(path: str | os.PathLike[str]) -> tuple[socket.socket, bool]:
    """A socket connected to the system logger, and whether it is a stream (else datagrams).

    As syslog(3): a datagram socket, or a stream one when the logger listens on a stream.
    Connecting sends nothing.
    """
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        connection = socket.socket(socket.AF_UNIX, kind)
        connection.settimeout(_SYSLOG_TIMEOUT)
        try:
            connection.connect(os.fspath(path))
        except OSError as exc:
            connection.close()
            if kind == socket.SOCK_DGRAM and exc.errno == errno.EPROTOTYPE:
                continue
            raise
        return connection, kind == socket.SOCK_STREAM
    raise AssertionError("unreachable")  # pragma: no cover


def os_words(exc: OSError) -> str:
    """An OS error in words (its message, else its name)."""
    return exc.strerror or str(exc) or type(exc).__name__


def syslog_problem(path: str | os.PathLike[str] = SYSLOG_SOCKET) -> str | None:
    """Why the system logger cannot be reached at ``path``, or None. Nothing is sent."""
    try:
        connection, _ = syslog_connection(path)
    except OSError as exc:
        return os_words(exc)
    connection.close()
    return None


def send_line(connection: socket.socket, stream: bool, line: bytes, where: str) -> str | None:
    """Send one line to the logger; why it could not, or None."""
    try:
        if stream:
            connection.sendall(line + b"\0")  # syslog(3)'s framing on a stream socket
        else:
            connection.send(line)
    except OSError as exc:
        if exc.errno == errno.EMSGSIZE:
            return f"too long for {where} ({len(line)} bytes)"
        return f"{where}: {os_words(exc)}"
    return None
