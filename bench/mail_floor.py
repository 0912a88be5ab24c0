"""The mail floor of target 1: the intake's messages sent by a bare client and nothing else.

``python -m bench.mail_floor PORT COUNT CONNECTIONS SIZE`` sends ``COUNT`` messages of
``SIZE`` bytes to the SMTP sink on ``127.0.0.1:PORT`` over ``CONNECTIONS`` connections, with
the envelope pipelined as the tool sends it (two round trips a message). No directory, no
composing, no audit: what any client pays to hand the same mail to the same sink, so the
intake's figure with SMTP can be read against it.
"""

from __future__ import annotations

import smtplib
import sys
import threading

_HEAD = (
    b"From: noreply@example.org\r\nTo: person@example.org\r\nSubject: Activation\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
)


def message_of(size: int) -> bytes:
    """A message of about ``size`` bytes, lines of 78 characters, ending with CRLF."""
    lines = max(1, (size - len(_HEAD)) // 80)
    return _HEAD + (b"x" * 78 + b"\r\n") * lines


def send_all(port: int, count: int, message: bytes) -> None:
    """Send ``count`` copies of ``message`` over one connection, the envelope pipelined."""
    connection = smtplib.SMTP("127.0.0.1", port)
    connection.ehlo()
    for number in range(count):
        connection.send(
            b"MAIL FROM:<noreply@example.org>\r\nRCPT TO:<p%d@example.org>\r\nDATA\r\n" % number
        )
        for _ in range(3):
            connection.getreply()
        connection.send(message + b".\r\n")
        connection.getreply()
    connection.quit()


def main() -> int:
    """Send the messages, the connections in threads as the tool's mail lanes are."""
    port, count, connections, size = (int(argument) for argument in sys.argv[1:5])
    message = message_of(size)
    shares = [count // connections + (lane < count % connections) for lane in range(connections)]
    lanes = [threading.Thread(target=send_all, args=(port, share, message)) for share in shares]
    for lane in lanes:
        lane.start()
    for lane in lanes:
        lane.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
