"""Helpdesk commands: ``show``, ``explain``, ``list``, ``audit``."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable
from datetime import date, tzinfo
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer

from umacct.cli.output import (
    FormatOption,
    OutputFormat,
    as_row,
    dumps_json,
    local_time,
    printable,
    render_record,
    render_rows,
    stream_rows,
)
from umacct.cli.params import (
    DURATION_SYNTAX,
    AccountArgument,
    AsOf,
    complete_profile,
    parse_duration,
    profile_key,
)
from umacct.cli.state import AppState, get_state

if TYPE_CHECKING:
    from umacct.services.explain import Explanation
    from umacct.services.helpdesk import AccountRow, AccountView, PurgedView
    from umacct.services.search import Match


class StateChoice(enum.StrEnum):
    """The states ``list --state`` filters on (typed in any case)."""

    ACTIVE = "active"
    GRACE = "grace"
    EXPIRED = "expired"
    CREATED = "created"
    PRECREATED = "precreated"
    FOREIGN = "foreign"
    UNKNOWN = "unknown"
    PURGED = "purged"


def register(app: typer.Typer) -> None:
    """Add the helpdesk commands to the application."""
    app.command("search")(search)
    app.command("show")(show)
    app.command("explain")(explain)
    app.command("list")(list_command)
    app.command("audit")(audit)


def _account_record(view: AccountView, zone: tzinfo) -> dict[str, Any]:
    record = as_row(view)
    record["pending_links"] = [
        f"{link.purpose} issued {local_time(link.issued, zone)}, "
        f"expires {local_time(link.expires, zone)}"
        for link in view.pending_links
    ]
    record["queued_mail"] = [f"{mail.kind} to {mail.recipient}" for mail in view.queued_mail]
    record["recent_audit"] = [
        f"{local_time(entry.time, zone)} {entry.command} by {entry.actor}: {entry.result}"
        for entry in view.recent_audit
    ]
    return record


SEARCH_COLUMNS = (
    "account", "name", "profile", "stage", "matched", "uid", "aliases", "personal_address",
    "external_ids", "purged_at", "restore",
)  # fmt: skip


def search(
    ctx: typer.Context,
    words: Annotated[
        list[str],
        typer.Argument(
            metavar="TEXT...",
            help="A name (any words, any order, accents and case folded; quotes not needed), "
            "an identifier, uid, login alias, personal address or external id.",
            show_default=False,
        ),
    ],
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Show at most this many people.")
    ] = 20,
    fmt: FormatOption = None,
) -> None:
    """Find people by name, identifier, alias, personal address or external id.

    "Louis Benali", "benali", "BENALI Louis" and "Bénali" find the same person; exact keys
    come first. A purged person is found too (by name, identifier, uid, personal address or
    external id), with the command that restores the account.
    """
    from umacct.services.search import search_people

    state = get_state(ctx)
    result = search_people(state.runtime(), " ".join(words), limit=limit)
    chosen = state.output_format(fmt)
    if chosen is OutputFormat.TABLE:
        for line in _search_lines(result.matches):
            state.out.out(printable(line))
    else:
        rows = [as_row(match) for match in result.matches]
        render_rows(state.out, rows, SEARCH_COLUMNS, chosen)
    if result.more:
        state.info(f"{result.more} more not shown: narrow the search or raise --limit")
    elif not result.matches:
        state.info(f"nobody found for {result.text!r}")


def _search_lines(matches: list[Match]) -> list[str]:
    """A few lines per person, for people."""
    lines: list[str] = []
    for match in matches:
        where = ", ".join(filter(None, [match.profile, match.stage]))
        lines.append(f"{match.account}  {match.name}  ({where})".replace("  ()", ""))
        facts = [f"uid {match.uid}", f"matched {match.matched}"]
        facts += [f"alias {alias}" for alias in match.aliases]
        if match.personal_address:
            facts.append(f"personal address {match.personal_address}")
        facts += [f"external id {value}" for value in match.external_ids]
        if match.purged_at:
            back = match.restore or f"umacct restore {match.account} --reason TEXT"
            facts.append(f"purged {match.purged_at:%Y-%m-%d}: {back}")
        lines.append("    " + "; ".join(facts))
    return lines


def show(ctx: typer.Context, account: AccountArgument, fmt: FormatOption = None) -> None:
    """Everything about one account on one screen.

    State and dates, grace end, extensions, recovery address, forwarding, password and login
    times, pending links (never the token), queued mail and the last five audit entries.
    """
    from umacct.services.helpdesk import AccountView, show_account_or_purged

    state = get_state(ctx)
    view = show_account_or_purged(state.runtime(), account)
    chosen = state.output_format(fmt)
    if chosen is OutputFormat.JSON:
        state.out.out(dumps_json(view))
    elif isinstance(view, AccountView):
        zone = ZoneInfo(state.config.policy.timezone)
        render_record(state.out, _account_record(view, zone), chosen, title=view.account)
    else:
        render_record(state.out, as_row(view), chosen, title=f"{view.account} (purged)")


def _explanation_text(result: Explanation) -> list[str]:
    lines = [f"{result.account} on {result.as_of.isoformat()} ({result.stage})", result.rule, ""]
    lines.append("What happened:")
    lines += [f"  {e.day or '?'}  {e.text}" for e in result.happened] or ["  nothing recorded"]
    lines.append("What happens next:")
    lines += [f"  {e.day or '?'}  {e.text}" for e in result.upcoming] or ["  nothing scheduled"]
    if result.login_blockers:
        lines.append("Login blocked today:")
        lines += [f"  - {blocker}" for blocker in result.login_blockers]
    else:
        lines.append("Login: nothing in the directory blocks it today (check the password).")
    return lines


def explain(
    ctx: typer.Context,
    account: AccountArgument,
    as_of: AsOf = None,
    fmt: FormatOption = None,
) -> None:
    """The account's timeline in plain words, and what blocks a login today.

    The rule of its profile applied to its dates, what happened, what happens next and when.
    """
    from umacct.cli.dates import parse_day
    from umacct.errors import NotFoundError
    from umacct.services.explain import explain as explain_account
    from umacct.services.helpdesk import purged_account

    state = get_state(ctx)
    runtime = state.runtime(as_of=parse_day(as_of, "--as-of"))
    chosen = state.output_format(fmt)
    try:
        result = explain_account(runtime, account)
    except NotFoundError:
        purged = purged_account(runtime, account)
        if purged is None:
            raise
        _explain_purged(state, purged, runtime.today(), chosen)
        return
    if chosen in (OutputFormat.TABLE, OutputFormat.TSV):  # plain words, for people
        for line in _explanation_text(result):
            state.out.out(printable(line))  # a line break in a value cannot forge a line
    elif chosen is OutputFormat.JSON:
        state.out.out(dumps_json(result))
    else:
        render_record(state.out, as_row(result), chosen)


def _explain_purged(state: AppState, purged: PurgedView, today: date, fmt: OutputFormat) -> None:
    """A purged account's explanation: when, where its archive is, how to put it back."""
    if fmt is OutputFormat.JSON:
        state.out.out(dumps_json({**as_row(purged), "as_of": today}))
        return
    if fmt.is_csv:
        render_record(state.out, as_row(purged), fmt)
        return
    zone = ZoneInfo(state.config.policy.timezone)
    lines = [
        f"{purged.account} on {today.isoformat()} (purged)",
        f"Purged on {local_time(purged.purged_at, zone)}: the entry was archived to "
        f"{purged.archive} and deleted; the identifier stays reserved.",
        "",
        "What happens next:",
        f"  nothing scheduled; to put it back: {purged.restore}",
        "Login blocked today:",
        "  - the account was purged: it is no longer in the directory",
    ]
    for line in lines:
        state.out.out(printable(line))


def list_command(
    ctx: typer.Context,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="Only this profile.", autocompletion=complete_profile),
    ] = None,
    stage: Annotated[
        StateChoice | None,
        typer.Option("--state", help="Only the accounts in this state.", case_sensitive=False),
    ] = None,
    expiring_within: Annotated[
        str | None,
        typer.Option(
            "--expiring-within",
            metavar="DURATION",
            help=f"Only accounts whose login stops (pwdEndTime) within it ({DURATION_SYNTAX}).",
        ),
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """List accounts, filtered by the directory itself; streamed (csv or json for large lists)."""
    from umacct.errors import UsageError
    from umacct.services.helpdesk import AccountRow, list_accounts, list_purged

    state = get_state(ctx)
    within = parse_duration(expiring_within, "--expiring-within")
    profile = profile_key(state.config, profile)
    if stage is StateChoice.PURGED:
        if within is not None:
            raise UsageError("--expiring-within does not go with --state purged")
        rows: Iterable[AccountRow] = list_purged(state.runtime(), profile=profile)
    else:
        stage_name = stage.value if stage else None
        rows = list_accounts(
            state.runtime(), profile=profile, stage=stage_name, expiring_within=within
        )
    columns = [field.name for field in dataclasses.fields(AccountRow)]
    count = stream_rows(state.out, state.info, rows, columns, state.output_format(fmt))
    state.info(f"{count} account{'s' if count != 1 else ''}")


def audit(
    ctx: typer.Context,
    account: Annotated[
        str | None, typer.Option("--account", help="Only this account (address, uid or alias).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DAY|DURATION",
            help=f"Only from this day on (YYYY-MM-DD), or for this long back ({DURATION_SYNTAX}).",
        ),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only what this OS user (or sudo user) did.")
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Read the audit log: who changed what, when, before and after (oldest first)."""
    from umacct.cli.dates import parse_day_or_duration
    from umacct.services.helpdesk import read_audit

    state = get_state(ctx)
    runtime = state.runtime()
    first_day = parse_day_or_duration(since, "--since", runtime.today())
    entries = read_audit(runtime, account=account, since=first_day, actor=actor)
    chosen = state.output_format(fmt)
    detail = "changes" if chosen is OutputFormat.JSON else "changed"
    columns = ["time", "actor", "sudo_user", "command", "account", "result", detail, "details"]
    stream_rows(state.out, state.info, entries, columns, chosen)
