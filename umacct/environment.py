"""What one run of the tool gets from the world: its clock, its streams and its variables.

The command line makes one ``Environment`` (``Environment.from_system``) and hands it to every
command; tests build their own, with a fixed clock and their own streams, the way httpie's
``MockEnvironment`` does. Nothing below the command line reads the machine's clock or
``sys.std*`` for itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TextIO

from umacct.clock import Clock, SystemClock


@dataclass
class Environment:
    """The clock, the standard streams and the environment variables of one run.

    A stream left as None is the process's own at the moment it is used (so that a test
    runner that swaps ``sys.stdout`` during a command is followed).
    """

    clock: Clock = field(default_factory=SystemClock)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    stdin_stream: TextIO | None = None
    stdout_stream: TextIO | None = None
    stderr_stream: TextIO | None = None

    @classmethod
    def from_system(cls) -> Environment:
        """The machine's clock, the process's streams and its environment."""
        return cls()

    @property
    def stdin(self) -> TextIO:
        """Where input is read from."""
        return self.stdin_stream or sys.stdin

    @property
    def stdout(self) -> TextIO:
        """Where data goes."""
        return self.stdout_stream or sys.stdout

    @property
    def stderr(self) -> TextIO:
        """Where diagnostics go."""
        return self.stderr_stream or sys.stderr

    @property
    def stdin_is_terminal(self) -> bool:
        """Whether a person types on stdin."""
        isatty = getattr(self.stdin, "isatty", None)
        return bool(isatty and isatty())
