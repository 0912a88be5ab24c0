"""Questions to the person at the terminal: never on stdout, which carries data only.

A hidden prompt is written to the controlling terminal (``/dev/tty``) and read from it, so
that ``umacct --json show X | jq`` asks for the bind password on the screen while stdout
stays one JSON document; without a controlling terminal it goes to stderr and stdin, and
only when stdin is a terminal. A yes/no question goes to stderr and is read from stdin.
"""

from __future__ import annotations

import getpass

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
    try:
        with open("/dev/tty", "r+", encoding="utf-8") as terminal:
            return getpass.getpass(prompt, stream=terminal)
    except OSError:
        pass  # no controlling terminal (a service, a container): stdin, if it is one
    if not env.stdin_is_terminal:
        raise InvalidInputError("no terminal to ask on: give the value on stdin")
    return getpass.getpass(prompt, stream=env.stderr)


def confirm(env: Environment, question: str) -> bool:
    """Ask ``question [y/N]`` on stderr; True only for an answer starting with y (or o, oui)."""
    env.stderr.write(f"{question} [y/N]: ")
    env.stderr.flush()
    answer = env.stdin.readline().strip().lower()
    return answer[:1] in ("y", "o")
