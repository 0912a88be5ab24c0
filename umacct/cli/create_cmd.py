"""``umacct create``: one person from options, or the yearly intake from a CSV file."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from umacct.cli import collector
from umacct.cli.intake_report import (
    IntakeWarning,
    names_by_line,
    say,
    warnings_for,
    warnings_for_all,
    write_rejects,
)
from umacct.cli.output import as_row, dumps_json, tsv_line
from umacct.cli.params import IgnoreUnknownColumns, Rejects, complete_profile
from umacct.cli.state import AppState, get_state
from umacct.errors import InvalidInputError

if TYPE_CHECKING:
    from umacct.identifiers import PersonName
    from umacct.intake import Intake
    from umacct.services.create import CreateOutcome, RowFailure

_Item = TypeVar("_Item")


def register(app: typer.Typer) -> None:
    """Add ``create`` to the application."""
    app.command("create")(create)


def create(
    ctx: typer.Context,
    given_name: Annotated[
        str | None, typer.Option("--given-name", help="Given name, as written.")
    ] = None,
    surname: Annotated[str | None, typer.Option("--surname", help="Surname, as written.")] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile", help="Profile key (a [profiles] table).", autocompletion=complete_profile
        ),
    ] = None,
    personal_email: Annotated[
        str | None,
        typer.Option("--personal-email", help="Personal address: the activation link goes there."),
    ] = None,
    end_of_activity: Annotated[
        str | None,
        typer.Option("--end-of-activity", metavar="YYYY-MM-DD", help="Last day of activity."),
    ] = None,
    external_id: Annotated[
        str | None,
        typer.Option("--external-id", help="HR or student-system id (recognises returns)."),
    ] = None,
    arrival: Annotated[
        str | None,
        typer.Option(
            "--arrival",
            metavar="YYYY-MM-DD",
            help="Arrival day (default today): the link is mailed that day.",
        ),
    ] = None,
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", metavar="FILE", help="Create everyone in this intake file."),
    ] = None,
    no_mail: Annotated[
        bool, typer.Option("--no-mail", help="Send no activation mail (see 'umacct activate').")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be created; change nothing.")
    ] = False,
    rejects: Rejects = None,
    ignore_unknown_columns: IgnoreUnknownColumns = False,
) -> None:
    """Create accounts: one person, or everyone in a CSV intake file (--csv FILE).

    The identifier is firstname.lastname@<profile domain> (a number is added on a
    collision); the activation link goes to the personal address on the arrival day. A
    person already known (same external id, or same names, personal address and profile)
    is never created twice: existing accounts are reported, departed ones reinstated.
    With --csv, bad rows are reported with their line and skipped; exit 65 if any was.
    """
    state = get_state(ctx)
    single = (given_name, surname, profile, personal_email, end_of_activity, external_id, arrival)
    if csv_file is None and (rejects is not None or ignore_unknown_columns):
        raise typer.BadParameter("--rejects and --ignore-unknown-columns go with --csv FILE")
    if csv_file is not None:
        if any(value is not None for value in single):
            raise typer.BadParameter("--csv takes the people from the file: give no other person")
        options = FileOptions(not no_mail, dry_run, rejects, ignore_unknown_columns)
        _create_from_file(state, csv_file, options)
        return
    missing = [
        option
        for option, value in (
            ("--given-name", given_name),
            ("--surname", surname),
            ("--profile", profile),
            ("--personal-email", personal_email),
        )
        if value is None
    ]
    if missing:
        raise typer.BadParameter(f"missing {', '.join(missing)} (or give --csv FILE)")
    from umacct.cli.dates import parse_day
    from umacct.cli.params import profile_key
    from umacct.services.create import create_person
    from umacct.services.create_input import new_person

    runtime = state.runtime()
    person = new_person(
        runtime.config,
        given_name=given_name or "",
        surname=surname or "",
        profile=profile_key(runtime.config, profile) or "",
        personal_email=personal_email or "",
        end_of_activity=parse_day(end_of_activity, "--end-of-activity"),
        external_id=external_id,
        arrival=parse_day(arrival, "--arrival"),
    )
    result = create_person(runtime, person, send_mail=not no_mail, dry_run=dry_run)
    if state.json:
        warnings = warnings_for(runtime, result, person.name)
        state.json_result({**as_row(result), "warnings": warnings}, dry_run=dry_run)
        return
    state.out.out(result.account)
    message = state.mail_words(result.message, mailed=result.mail == "sent")
    if result.action == "exists":  # the message says it all: "already exists (...)"
        state.info(f"{result.account}: {message}")
    else:
        state.info(f"{result.account}: {_action(result.action, dry_run)}; {message}")
    for warning in warnings_for(runtime, result, person.name):
        state.info(say(warning))


DRY_RUN_WORDS = {
    "created": "would create",
    "precreated": "would pre-create",
    "reinstated": "would reinstate",
    "restored": "would restore",
    "profile-added": "would add the profile",
}
"""What a dry run says instead of what a real run did."""


def _action(action: str, dry_run: bool) -> str:
    return DRY_RUN_WORDS.get(action, action) if dry_run else action


@dataclass(frozen=True)
class FileOptions:
    """How ``create --csv`` runs."""

    send_mail: bool
    dry_run: bool
    rejects: Path | None
    ignore_unknown_columns: bool


def _read_intake(state: AppState, path: Path, ignore_unknown: bool) -> Intake:
    from umacct.intake import read_intake

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    try:
        profiles = state.config.profiles
        return read_intake(data, profiles=profiles, ignore_unknown_columns=ignore_unknown)
    except InvalidInputError as error:
        raise InvalidInputError(f"{path}: {error.message}") from None


def _create_from_file(state: AppState, path: Path, options: FileOptions) -> None:
    from umacct.services.create import CreateOutcome, RowFailure, create_people

    runtime = state.runtime()
    intake = _read_intake(state, path, options.ignore_unknown_columns)
    collector.kept_to_the_end()  # the rows, and the file's records
    if intake.ignored:
        state.info(f"{path}: columns ignored: {', '.join(intake.ignored)}")
    names = names_by_line(intake)
    results: list[CreateOutcome] = []
    named: list[tuple[CreateOutcome, PersonName]] = []
    failures = [RowFailure(error.line, error.reason) for error in intake.errors]
    dry_run = options.dry_run
    created = create_people(runtime, intake.rows, send_mail=options.send_mail, dry_run=dry_run)
    # Closed here if the output fails (a reader gone): the adds on their way are read and
    # their mail sent while the directory is still open.
    with contextlib.closing(created):
        for item in _with_progress(state, created, len(intake.rows)):
            collector.kept_to_the_end()  # the results so far, and what the run knows
            if not isinstance(item, CreateOutcome):
                failures.append(item)
                continue
            results.append(item)
            if item.line is not None and item.line in names:
                named.append((item, names[item.line]))
            if not state.json:
                action = _action(item.action, dry_run)
                message = state.mail_words(item.message, mailed=item.mail == "sent")
                state.out.file.write(tsv_line([f"line {item.line}", item.account, action, message]))
    warnings: list[IntakeWarning] = warnings_for_all(runtime, named)
    failures.sort(key=lambda failure: failure.line)
    if options.rejects is not None:
        write_rejects(options.rejects, intake, [(f.line, f.reason) for f in failures])
    counts = Counter(result.action for result in results)
    if state.json:
        report = _report(path, intake, results, failures, counts, dry_run)
        state.out.out(dumps_json({**report, "warnings": warnings, "rejects": options.rejects}))
    else:
        for failure in failures:
            state.info(f"line {failure.line}: {failure.reason}")
        for warning in warnings:
            state.info(say(warning))
        state.info(_summary(path, counts, len(failures), dry_run))
        if options.rejects is not None and failures:
            state.info(f"refused rows written to {options.rejects}, with the reason")
    if failures:
        raise typer.Exit(65)


def _with_progress(state: AppState, items: Iterator[_Item], total: int) -> Iterable[_Item]:
    """The items, with a progress bar on stderr when it is a terminal."""
    if state.json or state.quiet or not state.err.is_terminal:
        yield from items
        return
    from rich.progress import Progress

    # rich would otherwise take sys.stdout over to print above the bar: the identifiers
    # must go to stdout as it is (a file, a pipe), not to the terminal.
    with Progress(
        console=state.err.console, transient=True, redirect_stdout=False, redirect_stderr=False
    ) as progress:
        task = progress.add_task("creating", total=total)
        for item in items:
            yield item
            progress.advance(task)


def _summary(path: Path, counts: Counter[str], failed: int, dry_run: bool) -> str:
    done = ", ".join(
        f"{_action(action, dry_run)} {count}" for action, count in sorted(counts.items())
    )
    prefix = "(dry run) " if dry_run else ""
    return f"{prefix}{path}: {done or 'nothing done'}, failed {failed}"


def _report(
    path: Path,
    intake: Intake,
    results: list[CreateOutcome],
    failures: list[RowFailure],
    counts: Counter[str],
    dry_run: bool,
) -> dict[str, object]:
    return {
        "file": str(path),
        "encoding": intake.encoding,
        "dry_run": dry_run,
        "summary": {**dict(sorted(counts.items())), "failed": len(failures)},
        "results": results,
        "errors": failures,
    }
