"""Departure commands: ``suspend``, ``extend``, ``sweep``, ``purge``, ``restore``."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from umacct.cli.dry_run import verb, would
from umacct.cli.output import tsv_line
from umacct.cli.params import (
    AccountArgument,
    AsOf,
    DryRun,
    ForceDate,
    IgnoreReplicationLag,
    IgnoreUnknownColumns,
    MaxChanges,
    OptionalAccount,
    Reason,
    Rejects,
    RequiredReason,
)
from umacct.cli.state import AppState, get_state

if TYPE_CHECKING:
    from umacct.services.lifecycle import AccountOutcome
    from umacct.services.sweep import SweepSummary


UNCHANGED_ACTIONS = frozenset({"none", "skipped", "purgeable"})
"""Outcomes that change nothing: a nightly run does not list them (see ``_summary``)."""


def _is_change(result: AccountOutcome, dry_run: bool) -> bool:
    """Whether the line is printed: the run changed the account (a dry run: would), or failed.

    An account the run could not purge says why on its own line.
    """
    if result.action == "error":
        return True
    return result.action not in UNCHANGED_ACTIONS and (result.changed or dry_run)


def _words(result: AccountOutcome, dry_run: bool) -> str:
    if dry_run and _is_change(result, dry_run):
        return ": ".join(would(result))
    return result.message


def _render_one(state: AppState, result: AccountOutcome, *, dry_run: bool = False) -> None:
    if state.json:
        state.json_result(result, dry_run=dry_run)
    else:
        state.out.out(f"{result.account}: {_words(result, dry_run)}")


def _render_stream(state: AppState, results: Iterable[AccountOutcome], *, dry_run: bool) -> int:
    """One tab-separated line per account changed, as they come: account, action, details.

    A dry run says ``would <action>``. Accounts left as they were (still purgeable, state
    set by another tool) are not listed: the summary counts them. JSON: one array of every
    account looked at, at the end. Returns how many accounts were changed (or would be).
    """
    collected: list[AccountOutcome] = []
    changes = 0
    for result in results:
        collected.append(result)
        if not _is_change(result, dry_run):
            continue
        changes += 1
        if not state.json:
            action, details = would(result) if dry_run else (result.action, result.message)
            state.out.file.write(tsv_line([result.account, action, details]))
            state.out.file.flush()
    if state.json:
        state.json_result(collected, dry_run=dry_run)
    return changes


def register(app: typer.Typer) -> None:
    """Add the departure commands to the application."""
    app.command("suspend")(suspend)
    app.command("unsuspend")(unsuspend)
    app.command("lock")(lock)
    app.command("unlock")(unlock)
    app.command("extend")(extend)
    app.command("sweep")(sweep)
    app.command("purge")(purge)
    app.command("restore")(restore)


def suspend(
    ctx: typer.Context,
    account: OptionalAccount = None,
    end_of_activity: Annotated[
        str | None,
        typer.Option(
            "--end-of-activity",
            metavar="YYYY-MM-DD",
            help="Last day of activity (default: the profile's end-date attribute, else yesterday).",
        ),
    ] = None,
    due: Annotated[
        bool, typer.Option("--due", help="Suspend every account whose end of activity has passed.")
    ] = False,
    as_of: AsOf = None,
    force_date: ForceDate = False,
    reason: Reason = None,
    force: Annotated[
        bool, typer.Option("--force", help="Also an account another tool put in a state.")
    ] = False,
    no_notice: Annotated[
        bool,
        typer.Option(
            "--no-notice",
            help="Cut at the profile's date, without the minimum notice (needs --reason; audited).",
        ),
    ] = False,
    max_changes: MaxChanges = None,
    ignore_replication_lag: IgnoreReplicationLag = False,
    rejects: Rejects = None,
    ignore_unknown_columns: IgnoreUnknownColumns = False,
    dry_run: DryRun = False,
    csv_file: Annotated[
        Path | None,
        typer.Option(
            "--csv",
            metavar="FILE",
            help="The HR departures list: columns account, end_of_activity, reason (or "
            "compte, date_fin, motif); --reason for rows without one.",
        ),
    ] = None,
) -> None:
    """Start the grace period of an account whose activity ended (repeating it changes nothing).

    The account keeps limited access (institutional mail, account management) for its
    profile's grace period, and at least [policy] minimum_notice_days from the day the person
    is told (today); then the directory itself refuses its logins. ACCOUNT needs --reason.
    --csv FILE takes the HR departures list (account: address, uid, alias or external id),
    reported as the intake is: bad rows with their line, exit 65 if any failed. --due, with
    several [directory] urls, changes nothing while the providers disagree (exit 75).
    """
    from umacct.cli.dates import parse_day
    from umacct.cli.suspend_file import suspend_from_file
    from umacct.errors import UsageError
    from umacct.services.lifecycle import suspend as suspend_account
    from umacct.services.sweep import suspend_due

    state = get_state(ctx)
    if [due, account is not None, csv_file is not None].count(True) != 1:
        raise typer.BadParameter("give one of ACCOUNT, --due or --csv FILE")
    if csv_file is None and (rejects is not None or ignore_unknown_columns):
        raise UsageError("--rejects and --ignore-unknown-columns go with --csv FILE")
    if csv_file is not None:
        if no_notice or end_of_activity:
            raise UsageError("--csv takes the dates from the file; --no-notice is for one ACCOUNT")
        day = parse_day(as_of, "--as-of")
        runtime = state.runtime(as_of=day, writes=not dry_run, force_date=force_date)
        suspend_from_file(
            state, runtime, csv_file,
            reason=reason, force=force, dry_run=dry_run, max_changes=max_changes,
            rejects=rejects, ignore_unknown_columns=ignore_unknown_columns,
        )  # fmt: skip
        return
    if account is not None and not reason:
        raise UsageError("suspend ACCOUNT needs --reason TEXT (kept in the audit log)")
    if due and no_notice:
        raise UsageError("--no-notice goes with one ACCOUNT, not --due")
    day = parse_day(as_of, "--as-of")
    runtime = state.runtime(as_of=day, writes=not dry_run, force_date=force_date)
    if due:
        results = suspend_due(
            runtime,
            dry_run=dry_run,
            max_changes=max_changes,
            ignore_replication_lag=ignore_replication_lag,
        )
        _render_stream(state, results, dry_run=dry_run)
        return
    assert account is not None
    result = suspend_account(
        runtime,
        account,
        end_of_activity=parse_day(end_of_activity, "--end-of-activity"),
        reason=reason,
        force=force,
        dry_run=dry_run,
        notice=not no_notice,
    )
    _render_one(state, result, dry_run=dry_run)


def unsuspend(
    ctx: typer.Context,
    account: AccountArgument,
    reason: RequiredReason,
    dry_run: DryRun = False,
) -> None:
    """Undo a suspension: the account is active as before, with its affiliations back.

    Removes pwdEndTime and cancels pending links and unsent departure mail. Refused (exit 77)
    once the account expired or was purged; the message names the command that applies.
    """
    from umacct.services.undo import unsuspend as unsuspend_account

    state = get_state(ctx)
    result = unsuspend_account(state.runtime(), account, reason=reason, dry_run=dry_run)
    _render_one(state, result, dry_run=dry_run)


class LockKindChoice(enum.StrEnum):
    """The kinds of lock."""

    TECHNICAL = "technical"
    ADMINISTRATIVE = "administrative"


LockKind = Annotated[
    LockKindChoice,
    typer.Option(
        "--kind",
        help="technical (a compromised account: the person is not told) or administrative.",
        show_default=False,
        case_sensitive=False,
    ),
]


def lock(
    ctx: typer.Context,
    account: AccountArgument,
    kind: LockKind,
    reason: RequiredReason,
    dry_run: DryRun = False,
) -> None:
    """Lock an account: the directory refuses its logins until it is unlocked.

    Writes S:SupannVerrouTechnique or S:SupannVerrouAdministratif and ppolicy's
    pwdAccountLockedTime, cancels pending links; the sweep leaves it alone.
    """
    from umacct.services.locks import lock as lock_account

    state = get_state(ctx)
    result = lock_account(state.runtime(), account, kind=kind.value, reason=reason, dry_run=dry_run)
    _render_one(state, result, dry_run=dry_run)


def unlock(
    ctx: typer.Context, account: AccountArgument, reason: RequiredReason, dry_run: DryRun = False
) -> None:
    """Unlock an account locked by 'umacct lock': the state it had before comes back."""
    from umacct.services.locks import unlock as unlock_account

    state = get_state(ctx)
    _render_one(state, unlock_account(state.runtime(), account, reason=reason, dry_run=dry_run))


def extend(
    ctx: typer.Context,
    account: AccountArgument,
    reason: RequiredReason,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Administrator: extend an expired account, or early (audited)."
        ),
    ] = False,
    dry_run: DryRun = False,
) -> None:
    """Extend the grace period by the profile's extension_months (titulaire and contractuel staff).

    An extension renews, it does not stack: it is allowed once the grace end is less than
    extension_months away, and adds extension_months to it. Refused (exit 77, with the
    reason) when the profile is not extendable, the account is not in its grace period, it
    was already extended, or the profile's max_extensions is reached.
    """
    from umacct.services.lifecycle import extend as extend_account

    state = get_state(ctx)
    result = extend_account(state.runtime(), account, reason=reason, force=force, dry_run=dry_run)
    _render_one(state, result, dry_run=dry_run)


def sweep(
    ctx: typer.Context,
    as_of: AsOf = None,
    force_date: ForceDate = False,
    dry_run: DryRun = False,
    purge: Annotated[bool, typer.Option("--purge", help="Also purge what is purgeable.")] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="With --purge: purge at most this many accounts.")
    ] = 100,
    max_changes: MaxChanges = None,
    ignore_replication_lag: IgnoreReplicationLag = False,
) -> None:
    """The daily job (cron): suspend what is due, send warnings, expire, list or purge.

    One tab-separated line per account changed (account, action, details) and a summary on
    stderr; nothing at all when nothing changed (-v: the summary anyway). Accounts still
    purgeable are counted in the summary, not listed. Safe to run twice the same day: the
    second run changes nothing. Exit 75 when another sweep is running, or, with several
    [directory] urls, while the providers disagree (contextCSN; nothing changed:
    --ignore-replication-lag runs anyway); exit 77, nothing changed, when it would suspend,
    expire or purge more than [policy] max_changes_per_run.
    """
    from umacct.cli.dates import parse_day
    from umacct.services.sweep import SweepSummary
    from umacct.services.sweep import sweep as run_sweep

    state = get_state(ctx)
    day = parse_day(as_of, "--as-of")
    runtime = state.runtime(as_of=day, writes=not dry_run, force_date=force_date)
    summary = SweepSummary(runtime.today(), dry_run)
    results = run_sweep(
        runtime, summary, purge=purge, purge_limit=limit, max_changes=max_changes,
        ignore_replication_lag=ignore_replication_lag,
    )  # fmt: skip
    changes = _render_stream(state, results, dry_run=dry_run)
    if changes or state.verbose:  # cron mails whatever a job prints: nothing when nothing changed
        state.info(_sweep_summary(summary))
    if summary.purges_left:
        state.info(f"purge stopped at --limit {limit}: {summary.purges_left} more purgeable")
    for error in summary.errors:
        state.err.out(f"error: {error}")
    if summary.errors:
        raise typer.Exit(65)


def _sweep_summary(summary: SweepSummary) -> str:
    """``sweep DAY: suspend 2, warn 5; still purgeable 3``: counts, unchanged ones once."""
    done = ", ".join(
        f"{verb(action) if summary.dry_run else action} {count}"
        for action, count in sorted(summary.counts.items())
        if action not in UNCHANGED_ACTIONS
    )
    if done and summary.dry_run:
        done = f"would {done}"  # once: "would suspend 2, end a profile 1"
    words = [done or ("nothing would change" if summary.dry_run else "nothing changed")]
    if summary.counts["purgeable"]:
        words.append(f"still purgeable {summary.counts['purgeable']} (sweep --purge purges them)")
    if summary.counts["skipped"]:
        words.append(f"left alone {summary.counts['skipped']} (state set by another tool)")
    dry = " (dry run)" if summary.dry_run else ""
    return f"sweep {summary.as_of.isoformat()}{dry}: {'; '.join(words)}"


def purge(
    ctx: typer.Context,
    account: OptionalAccount = None,
    expired: Annotated[
        bool, typer.Option("--expired", help="Every account expired for at least purge_after_days.")
    ] = False,
    reason: Reason = None,
    dry_run: DryRun = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Purge at most this many accounts.")
    ] = 100,
    ignore_replication_lag: IgnoreReplicationLag = False,
) -> None:
    """Archive (LDIF, mode 0600) then delete expired accounts; their identifiers stay reserved.

    Needs --reason. Without --yes it shows what it would delete and asks on a terminal;
    without a terminal it refuses. --expired, with several [directory] urls, deletes nothing
    while the providers disagree (exit 75; --ignore-replication-lag runs anyway, audited).
    """
    from umacct.cli.terminal import confirm
    from umacct.errors import RefusedError, UsageError
    from umacct.services.purge import purge as purge_one
    from umacct.services.purge import purge_expired

    state = get_state(ctx)
    if expired == (account is not None):
        raise typer.BadParameter("give either ACCOUNT or --expired")
    if not reason and not dry_run:
        raise UsageError("purge needs --reason TEXT (kept in the audit log)")
    runtime = state.runtime()
    runtime.audit_details["reason"] = reason
    if account is not None:
        if not dry_run and not yes:
            if not state.env.stdin_is_terminal:
                raise RefusedError(
                    "purge deletes the account: confirm with --yes (no terminal to ask)"
                )
            _preview(state, [purge_one(runtime, account, dry_run=True)])
            if not confirm(state.env, f"Archive and delete {account}?"):
                _nothing_deleted(state)
        _render_one(state, purge_one(runtime, account, dry_run=dry_run), dry_run=dry_run)
        return
    if not dry_run and not yes:
        if not state.env.stdin_is_terminal:
            raise RefusedError(
                "purge --expired deletes accounts: confirm with --yes (no terminal to ask)"
            )
        count = _preview(state, purge_expired(runtime, limit=limit, dry_run=True))
        if not count or not confirm(state.env, f"Archive and delete these {count} accounts?"):
            _nothing_deleted(state)
    purged = purge_expired(
        runtime, limit=limit, dry_run=dry_run, ignore_replication_lag=ignore_replication_lag
    )
    _render_stream(state, purged, dry_run=dry_run)


def _preview(state: AppState, results: Iterable[AccountOutcome]) -> int:
    """What a purge would delete, before asking; with --json on stderr (stdout stays empty)."""
    if not state.json:
        return _render_stream(state, results, dry_run=True)
    count = 0
    for result in results:
        if _is_change(result, True):
            count += 1
            state.err.out(tsv_line([result.account, *would(result)]), end="")
    return count


def _nothing_deleted(state: AppState) -> None:
    """The answer was no: say so on stderr, print no result, exit 0."""
    state.info("nothing deleted")
    raise typer.Exit(0)


def restore(
    ctx: typer.Context,
    account: AccountArgument,
    reason: RequiredReason,
    accept_unverified: Annotated[
        bool,
        typer.Option(
            "--accept-unverified-archive",
            help="Restore a purge recorded before archives had a SHA-256 (check the file first).",
        ),
    ] = False,
    dry_run: DryRun = False,
) -> None:
    """Put a purged account back from its archive: expired, with no usable password until a reset.

    Only at the purged DN, only ordinary user attributes the schema knows (never passwords,
    password-policy or operational attributes), with pwdEndTime set again. Exit 65 when the
    archive does not match the SHA-256 recorded at purge time; exit 77 for a purge recorded
    without one, unless --accept-unverified-archive.
    """
    from umacct.services.purge import restore as restore_account

    state = get_state(ctx)
    runtime = state.runtime()
    runtime.audit_details["reason"] = reason
    result = restore_account(runtime, account, accept_unverified=accept_unverified, dry_run=dry_run)
    _render_one(state, result, dry_run=dry_run)
