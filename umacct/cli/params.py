"""Arguments and options that several commands share, defined once."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from umacct.errors import UsageError

if TYPE_CHECKING:
    from umacct.config import Config

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
Rejects = Annotated[
    Path | None,
    typer.Option(
        "--rejects",
        metavar="FILE",
        help="With --csv: write the refused rows there, as they were, with the reason.",
    ),
]
IgnoreUnknownColumns = Annotated[
    bool,
    typer.Option(
        "--ignore-unknown-columns",
        help="With --csv: skip the columns the tool does not know (an export's extra ones).",
    ),
]
IgnoreReplicationLag = Annotated[
    bool,
    typer.Option(
        "--ignore-replication-lag",
        help="Run even though the providers of [directory] urls disagree (audited).",
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


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
DURATION_SYNTAX = "a number and a unit: 90m, 12h, 30d, 2w, 1y (a number alone is days)"


def parse_duration(text: str | None, option: str) -> timedelta | None:
    """A duration option (``30d``, ``12h``, ``1y``...); one syntax for every option.

    UsageError (exit 2) naming the option and the syntax; None when not given.
    """
    if text is None:
        return None
    import re

    match = re.fullmatch(r"\s*(\d{1,9})\s*([smhdwy]?)\s*", text.lower())
    if match is None:
        raise UsageError(f"{option}: expected {DURATION_SYNTAX}, got {text!r}")
    number, unit = match.groups()
    return timedelta(seconds=int(number) * _DURATION_UNITS[unit or "d"])


def complete_profile(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of ``--profile``: the configured profile keys (none if no config)."""
    from umacct.config import load_config
    from umacct.errors import UmacctError

    root = ctx.find_root()
    try:
        config = load_config(root.params.get("config"))
    except (UmacctError, OSError):
        return []
    return sorted(key for key in config.profiles if key.startswith(incomplete))


def profile_key(config: Config, text: str | None, option: str = "--profile") -> str | None:
    """The configured profile key ``text`` names, in any case (``TITULAIRE``: ``titulaire``).

    UsageError (exit 2) naming the option and the configured keys when none matches.
    """
    if text is None:
        return None
    if text in config.profiles:
        return text
    for key in config.profiles:
        if key.casefold() == text.strip().casefold():
            return key
    known = ", ".join(sorted(config.profiles))
    raise UsageError(f"{option}: expected one of {known}, got {text!r}")
