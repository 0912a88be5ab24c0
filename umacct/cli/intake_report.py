"""What ``create`` says about an intake beyond each row: warnings, and the refused rows.

Two warnings a sysadmin wants before the links are opened: a second account made for a
person with the same names as another (a homonym, or the same person the tool could not
recognise), and an identifier shortened because the names are long. ``--rejects FILE``
writes the refused rows as they were, with the reason, to hand back to HR.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from umacct.cli.output import csv_safe
from umacct.errors import InvalidInputError

if TYPE_CHECKING:
    from umacct.identifiers import PersonName
    from umacct.intake import Intake
    from umacct.services.create import CreateOutcome
    from umacct.services.runtime import Runtime

NEW_ACCOUNT_ACTIONS = frozenset({"created", "precreated"})
_SUFFIX = re.compile(r"[0-9]+$")


@dataclass(frozen=True)
class IntakeWarning:
    """Something to check about one account the run made."""

    line: int | None
    account: str
    warning: str


def warnings_for(runtime: Runtime, result: CreateOutcome, name: PersonName) -> list[IntakeWarning]:
    """The homonym and shortened-identifier warnings of one new account."""
    return warnings_for_all(runtime, [(result, name)])


def warnings_for_all(
    runtime: Runtime, results: Sequence[tuple[CreateOutcome, PersonName]]
) -> list[IntakeWarning]:
    """The warnings of the new accounts among ``results``, in their order.

    Homonyms are looked for once per batch of accounts (one search for a few hundred), not
    once per account: without an index each search reads the whole directory.
    """
    from umacct.identifiers import MAX_BASE_LENGTH, fold_name, local_part
    from umacct.services.create_lookup import NamesWanted, homonyms_of

    new = [(result, name) for result, name in results if result.action in NEW_ACCOUNT_ACTIONS]
    # Only an identifier that got a number had its names' identifier taken.
    suffixed = [(result, name) for result, name in new if _SUFFIX.sub("", result.uid) != result.uid]
    others = homonyms_of(runtime, [
        NamesWanted(name.given_name, name.surname, result.account) for result, name in suffixed
    ])  # fmt: skip
    homonyms = {id(result): found for (result, _), found in zip(suffixed, others, strict=True)}
    warnings: list[IntakeWarning] = []
    for result, name in new:
        full = f"{fold_name(name.given_name)}.{fold_name(name.surname)}"
        base = local_part(name.given_name, name.surname)
        if base != full:
            warnings.append(
                IntakeWarning(
                    result.line,
                    result.account,
                    f"identifier shortened to {base} (the names make {len(full)} characters, "
                    f"at most {MAX_BASE_LENGTH})",
                )
            )
        if homonyms.get(id(result)):
            warnings.append(
                IntakeWarning(
                    result.line,
                    result.account,
                    f"same names as {', '.join(homonyms[id(result)])}: a homonym, or the same "
                    "person under another personal address or external id? check before the "
                    "link is used",
                )
            )
    return warnings


def say(warning: IntakeWarning) -> str:
    """One warning line for stderr."""
    where = f"line {warning.line}: " if warning.line else ""
    return f"{where}warning: {warning.account}: {warning.warning}"


class RefusableFile(Protocol):
    """A file read by lines whose refused rows can be handed back (an intake, a departures list)."""

    @property
    def header(self) -> tuple[str, ...]:
        """The header row as written."""
        ...

    @property
    def delimiter(self) -> str:
        """The file's separator."""
        ...

    @property
    def encoding(self) -> str:
        """The file's encoding, written back as read."""
        ...

    @property
    def records(self) -> Mapping[int, tuple[str, ...]]:
        """Each data row's fields as written, by line."""
        ...

    @property
    def french(self) -> bool:
        """Whether the header is French (the reason column is then ``motif``)."""
        ...


def write_rejects(path: Path, intake: RefusableFile, refused: Iterable[tuple[int, str]]) -> int:
    """Write the refused rows as the file had them, plus the reason; return how many.

    Same delimiter and encoding as the intake, its header plus ``reason`` (``motif`` for a
    French header); a cell a spreadsheet would compute starts with ``'``. The file is the
    tool's user's only (mode 0600: it holds personal data), never written through a link.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=intake.delimiter, lineterminator="\r\n")
    writer.writerow([*intake.header, "motif" if intake.french else "reason"])
    count = 0
    for line, reason in sorted(refused):
        fields = intake.records.get(line, ())
        writer.writerow([*(csv_safe(cell) for cell in fields), csv_safe(reason)])
        count += 1
    data = buffer.getvalue().encode(intake.encoding, errors="replace")
    try:
        descriptor = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise InvalidInputError(f"--rejects {path}: cannot write: {exc.strerror}") from None
    return count


def names_by_line(intake: Intake) -> Mapping[int, PersonName]:
    """Each valid row's names, by line."""
    return {row.line: row.name for row in intake.rows}
