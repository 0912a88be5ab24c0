"""Arguments and options that several commands share, defined once."""

from __future__ import annotations

from typing import Annotated

import typer

ACCOUNT_HELP = "The account: institutional address, uid or login alias."

AccountArgument = Annotated[str, typer.Argument(help=ACCOUNT_HELP, show_default=False)]
OptionalAccount = Annotated[str | None, typer.Argument(help=ACCOUNT_HELP, show_default=False)]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Show exactly what would change; change nothing.")
]


def checked_reason(reason: str | None) -> str | None:
    """Option callback: refuse a reason with control characters or too long (exit 65)."""
    from umacct.services.accounts import check_reason

    return check_reason(reason)


Reason = Annotated[
    str | None,
    typer.Option("--reason", help="Why (kept in the audit log).", callback=checked_reason),
]
ForceDate = Annotated[
    bool,
    typer.Option(
        "--force-date",
        help="With --as-of another day than today: really apply that day (a replay; audited).",
    ),
]
RequiredReason = Annotated[
    str,
    typer.Option(
        "--reason",
        help="Why (required; kept in the audit log).",
        callback=checked_reason,
        show_default=False,
    ),
]
MaxChanges = Annotated[
    int | None,
    typer.Option(
        "--max-changes",
        metavar="N",
        min=1,
        help="Confirm a wave larger than [policy] max_changes_per_run (after a --dry-run).",
    ),
]
AsOf = Annotated[
    str | None,
    typer.Option(
        "--as-of", metavar="YYYY-MM-DD", help="As on this day (default: today, policy time zone)."
    ),
]
