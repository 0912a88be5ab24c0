"""``umacct report ...``: the good-practice reports, with optional reminder mail."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from umacct.cli.output import FormatOption, stream_rows
from umacct.cli.params import DURATION_SYNTAX, parse_duration
from umacct.cli.state import get_state

report_app = typer.Typer(
    help="Reports on the good practices: stale passwords, missing recovery addresses, "
    "activations never done, external forwards.",
    no_args_is_help=True,
)

Notify = Annotated[
    bool,
    typer.Option(
        "--notify",
        help="Send each person the reminder, at most once per [reports] notify_every_days.",
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="With --notify: say who would be reminded; send nothing.")
]


def register(app: typer.Typer) -> None:
    """Add the report commands to the application."""
    app.add_typer(report_app, name="report")


def _columns(row_type: type, *, notify: bool = True) -> list[str]:
    """The row's fields; ``dry_run`` only when reminders are sent (``--notify``)."""
    names = [field.name for field in dataclasses.fields(row_type)]
    return names if notify else [name for name in names if name != "dry_run"]


@report_app.command("stale-passwords")
def stale_passwords(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than", metavar="DURATION", help=f"Age of the password ({DURATION_SYNTAX})."
        ),
    ] = "365d",
    notify: Notify = False,
    dry_run: DryRun = False,
    fmt: FormatOption = None,
) -> None:
    """Accounts in use whose password was not changed for --older-than (or never recorded)."""
    from umacct.services.reports import StalePassword
    from umacct.services.reports import stale_passwords as report

    state = get_state(ctx)
    age = parse_duration(older_than, "--older-than")
    rows = report(state.runtime(), older_than=age or older_than, notify=notify, dry_run=dry_run)
    stream_rows(
        state.out,
        state.info,
        rows,
        _columns(StalePassword, notify=notify),
        state.output_format(fmt),
    )


@report_app.command("missing-recovery")
def missing_recovery(
    ctx: typer.Context, notify: Notify = False, dry_run: DryRun = False, fmt: FormatOption = None
) -> None:
    """Active accounts without a recovery address (no {SECOURS} value)."""
    from umacct.services.reports import MissingRecovery
    from umacct.services.reports import missing_recovery as report

    state = get_state(ctx)
    rows = report(state.runtime(), notify=notify, dry_run=dry_run)
    stream_rows(
        state.out,
        state.info,
        rows,
        _columns(MissingRecovery, notify=notify),
        state.output_format(fmt),
    )


@report_app.command("pending-activation")
def pending_activation(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            metavar="DURATION",
            help=f"Created at least this long ago ({DURATION_SYNTAX}).",
        ),
    ] = "24h",
    fmt: FormatOption = None,
) -> None:
    """Accounts never activated whose activation link expired unused (send them a new one)."""
    from umacct.services.reports import PendingActivation, pending_activations

    state = get_state(ctx)
    age = parse_duration(older_than, "--older-than")
    rows = pending_activations(state.runtime(), older_than=age or older_than)
    stream_rows(state.out, state.info, rows, _columns(PendingActivation), state.output_format(fmt))


@report_app.command("forwarding")
def forwarding(
    ctx: typer.Context,
    detail: Annotated[
        bool, typer.Option("--detail", help="One row per forward instead of counts per domain.")
    ] = False,
    fmt: FormatOption = None,
) -> None:
    """Mail forwarded outside the institution, counted by destination domain."""
    from umacct.services.reports import (
        DomainCount,
        ExternalForward,
        external_forwards,
        forwards_by_domain,
    )

    state = get_state(ctx)
    forwards = external_forwards(state.runtime())
    if detail:
        stream_rows(
            state.out, state.info, forwards, _columns(ExternalForward), state.output_format(fmt)
        )
    else:
        counts = forwards_by_domain(forwards)
        stream_rows(state.out, state.info, counts, _columns(DomainCount), state.output_format(fmt))
