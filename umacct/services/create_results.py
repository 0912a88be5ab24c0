"""What ``create`` reports for each row, and the new account it plans for a row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from umacct.errors import ExitCode, UmacctError
from umacct.intake import IntakeRow
from umacct.policy import ResourceState


@dataclass(frozen=True)
class CreateOutcome:
    """What ``create`` did (or would do) for one person."""

    account: str
    uid: str
    profile: str
    state: str | None
    """The account state afterwards, ``STATE:SubState`` (``I:SupannCree``...)."""
    action: str
    """``created``, ``precreated``, ``reinstated``, ``restored`` or ``exists``."""
    changed: bool
    arrival: date
    activation_expires: datetime | None
    mail: str | None
    """``sent``, ``queued`` (relay down: ``umacct mail flush`` sends it) or None (no mail)."""
    message: str
    line: int | None = None
    """The intake file's line, for a row of a file."""


@dataclass(frozen=True)
class RowFailure:
    """A row of an intake that was refused, and why."""

    line: int
    reason: str


@dataclass
class NewAccount:
    """A new account planned for one row: what will be added, and what became of the add."""

    row: IntakeRow
    uid: str
    identifier: str
    dn: str
    attributes: dict[str, list[str]]
    states: Sequence[ResourceState]
    outcome: CreateOutcome | RowFailure | None = None


def row_failure(row: IntakeRow, error: UmacctError) -> RowFailure:
    """The row's failure; a directory or store that is gone stops the run instead."""
    if error.exit_code is ExitCode.UNAVAILABLE:
        raise error
    return RowFailure(row.line, error.message)
