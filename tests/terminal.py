"""Running the real ``umacct`` process with some of its streams on a pseudo-terminal.

The pty is the process's controlling terminal (``/dev/tty``), as in an ssh session; the
streams not on it are pipes, as in ``umacct ... | jq``. Prompts seen on the terminal are
answered from ``answers``.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STREAMS = ("stdin", "stdout", "stderr")


@dataclass
class TerminalRun:
    """What the process did: exit code, the pipes' contents, what the terminal showed."""

    code: int
    stdout: str
    stderr: str
    screen: str


def run_on_terminal(
    args: Sequence[str],
    *,
    on_terminal: Sequence[str] = STREAMS,
    answers: Mapping[str, str] | None = None,
    interrupt_at: str | None = None,
    columns: int = 80,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> TerminalRun:
    """Run ``python -m umacct ARGS``; ``answers`` maps a prompt seen on the screen to a reply.

    ``interrupt_at``: once that text shows on the screen, Ctrl-C (SIGINT, as the terminal
    sends it).
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    environ = {**os.environ, **(env or {}), "COLUMNS": str(columns), "TERM": "xterm"}
    pipes = {name: subprocess.PIPE for name in STREAMS if name not in on_terminal}
    streams = {name: pipes.get(name, slave) for name in STREAMS}
    if "stdin" not in on_terminal:
        streams["stdin"] = subprocess.DEVNULL

    def take_the_terminal() -> None:
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [sys.executable, "-m", "umacct", *args],
        stdin=streams["stdin"],
        stdout=streams["stdout"],
        stderr=streams["stderr"],
        env=environ,
        start_new_session=True,
        preexec_fn=take_the_terminal,  # noqa: PLW1509 (the tests start no threads here)
        pass_fds=(slave,),
    )
    os.close(slave)
    pending = dict(answers or {})
    screen = b""
    outputs = {name: b"" for name in pipes}
    readers = {getattr(process, name).fileno(): name for name in pipes if name != "stdin"}
    deadline = time.monotonic() + timeout
    interrupted = False
    active = {master, *readers}
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select(list(active), [], [], 0.1)
            for fd in ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the terminal's last user went away
                    chunk = b""
                if not chunk:
                    active.discard(fd)
                elif fd == master:
                    screen += chunk
                else:
                    outputs[readers[fd]] += chunk
            text = screen.decode("utf-8", "replace")
            for prompt in list(pending):
                if prompt in text:
                    os.write(master, (pending.pop(prompt) + "\r").encode())
            if interrupt_at and not interrupted and interrupt_at in text:
                os.killpg(process.pid, signal.SIGINT)
                interrupted = True
            if process.poll() is not None and (not ready or not active):
                break
        else:
            process.kill()
            raise AssertionError(f"umacct {' '.join(args)} did not end: {screen!r}")
    finally:
        os.close(master)
    for name in readers.values():
        outputs[name] += getattr(process, name).read()
        getattr(process, name).close()
    return TerminalRun(
        code=process.wait(),
        stdout=outputs.get("stdout", b"").decode(),
        stderr=outputs.get("stderr", b"").decode(),
        screen=screen.decode("utf-8", "replace").replace("\r\n", "\n"),
    )
