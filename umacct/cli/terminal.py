"""Questions to the person at the terminal: never on stdout, which carries data only.

A hidden prompt is written to the controlling terminal (``/dev/tty``) and read from it, so
that ``umacct --json show X | jq`` asks for the bind password on the screen while stdout
stays one JSON document; without a controlling terminal it goes to stderr and stdin, and
only when stdin is a terminal. A yes/no question goes to stderr and is read from stdin.
"""

from __future__ import annotations

import getpass
import os

from umacct.environment import Environment
from umacct.errors import InvalidInputError


def ask_hidden(env: Environment, label: str, *, confirm: bool = False) -> str:
    """A hidden answer typed on the terminal; ``confirm`` asks it twice.

    InvalidInputError when there is no terminal to ask on, or the two answers differ.
    """
    first = _hidden(env, f"{label}: ")
    if confirm and _hidden(env, "Repeat for confirmation: ") != first:
        raise InvalidInputError("the two values typed differ")
    return first


def _hidden(env: Environment, prompt: str) -> str:
    answer = _on_controlling_terminal(prompt)
    if answer is not None:
        return answer
    # No controlling terminal (a service, a container): stdin, if it is one.
    if not env.stdin_is_terminal:
        raise InvalidInputError("no terminal to ask on: give the value on stdin")
    return getpass.getpass(prompt, stream=env.stderr)


def confirm(env: Environment, question: str) -> bool:
    """Ask ``question [y/N]`` on stderr; True only for an answer starting with y (or o, oui)."""
    env.stderr.write(f"{question} [y/N]: ")
    env.stderr.flush()
    answer = env.stdin.readline().strip().lower()
    return answer[:1] in ("y", "o")


def _on_controlling_terminal(prompt: str) -> str | None:
    """Ask on ``/dev/tty`` itself, echo off; None when the process has no terminal.

    The terminal is opened as a descriptor (a tty cannot be opened as a seekable text file)
    and written and read unbuffered, so the prompt shows before the answer is typed, whatever
    stdout and stderr are redirected to.
    """
    import termios

    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        return None
    try:
        try:
            before = termios.tcgetattr(fd)
        except termios.error:
            return None  # /dev/tty that is not a terminal
        hidden = list(before)
        hidden[3] &= ~termios.ECHO
        termios.tcsetattr(fd, termios.TCSAFLUSH, hidden)
        try:
            os.write(fd, prompt.encode("utf-8"))
            typed = b""
            while not typed.endswith(b"\n"):
                chunk = os.read(fd, 1024)
                if not chunk:
                    break
                typed += chunk
        finally:
            termios.tcsetattr(fd, termios.TCSAFLUSH, before)
            os.write(fd, b"\n")  # the Enter typed was not echoed
    finally:
        os.close(fd)
    try:
        return typed.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise InvalidInputError("what was typed is not UTF-8 text") from None
