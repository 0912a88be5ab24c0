"""The relay stand-in of target 1: Postfix's ``smtp-sink``, or an aiosmtpd sink without it.

A relay runs on a machine of its own; the sink runs on the same two cores as the tool and
slapd, so whatever CPU it spends is charged to the tool's time. ``smtp-sink`` (C, made by
Postfix to measure SMTP clients, and the same SMTP engine as Postfix's server) accepts and
drops each message for a fraction of what a Python sink costs. ``scripts/ensure-bench-tools``
(``make bench``) takes it out of Debian's postfix package into ``bench/out/postfix``: nothing
installed, no mail service started. Without it, the aiosmtpd sink in the runner's process
is used and the results say so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from aiosmtpd.controller import Controller

from bench.common import OUT

EXTRACTED = OUT / "postfix"
_COUNTER = re.compile(rb"mesg=(\d+)")


class Sink(Protocol):
    """An SMTP server on 127.0.0.1 that accepts every message and counts them."""

    name: str
    port: int

    @property
    def count(self) -> int:
        """Messages accepted so far."""
        ...

    def wait_for(self, count: int) -> int:
        """The count once it reached ``count`` (or after a second); what it is then."""
        ...

    def stop(self) -> None:
        """Stop listening."""
        ...


def smtp_sink_binary() -> Path | None:
    """Postfix's ``smtp-sink``: installed, or taken out of the package by the bench's setup."""
    for candidate in (shutil.which("smtp-sink"), "/usr/sbin/smtp-sink"):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    extracted = EXTRACTED / "usr/sbin/smtp-sink"
    return extracted if os.access(extracted, os.X_OK) else None


class PostfixSink:
    """``smtp-sink -c`` on a free port; its running counter read from its output file."""

    name = "Postfix smtp-sink"

    def __init__(self, binary: Path, port: int) -> None:
        self.port = port
        self._output = OUT / f"smtp-sink-{port}.txt"
        self._final: int | None = None
        env = {**os.environ, "LD_LIBRARY_PATH": str(EXTRACTED / "usr/lib/postfix")}
        argv = [str(binary), "-c"]
        if os.geteuid() == 0:  # it refuses to run as root without a user to switch to
            argv += ["-u", "nobody"]
        with open(self._output, "wb") as output:
            self._process = subprocess.Popen(
                [*argv, f"127.0.0.1:{port}", "256"],
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
            )
        _wait_listening(port, self._process)

    @property
    def count(self) -> int:
        """The last value of the counter it prints after each message."""
        if self._final is not None:
            return self._final
        found = _COUNTER.findall(self._output.read_bytes())
        return int(found[-1]) if found else 0

    def wait_for(self, count: int) -> int:
        """The counter once it reached ``count`` (it is printed just after the reply)."""
        deadline = time.monotonic() + 1.0
        while (seen := self.count) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return seen

    def stop(self) -> None:
        """Terminate it and remove its output."""
        self._process.terminate()
        self._process.wait()
        self._final = self.count
        self._output.unlink(missing_ok=True)


class _Counting:
    """aiosmtpd handler: accepts every message, counts them, offers PIPELINING.

    aiosmtpd reads commands from a stream and answers them in order, so pipelined commands
    are handled correctly; it only does not say so by itself.
    """

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.count += 1
        return "250 OK"


class PythonSink:
    """The fallback: aiosmtpd in the runner's process (its CPU on the measured cores)."""

    name = "aiosmtpd sink (smtp-sink not found)"

    def __init__(self, port: int) -> None:
        self.port = port
        self._handler = _Counting()
        self._controller = Controller(self._handler, hostname="127.0.0.1", port=port)
        self._controller.start()

    @property
    def count(self) -> int:
        """Messages accepted so far."""
        return self._handler.count

    def wait_for(self, count: int) -> int:
        """Counted as each reply is made: nothing to wait for."""
        return self.count

    def stop(self) -> None:
        """Stop the server."""
        self._controller.stop()


def start_sink(port: int) -> Sink:
    """``smtp-sink`` when there is one, else the aiosmtpd sink."""
    binary = smtp_sink_binary()
    return PostfixSink(binary, port) if binary else PythonSink(port)


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"smtp-sink ended at once (status {process.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"smtp-sink is not listening on 127.0.0.1:{port}")
