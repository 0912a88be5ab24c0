"""``umacct extension list|grant|refuse``: the extension requests that wait for the helpdesk."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from umacct.cli.output import FormatOption, render_rows
from umacct.cli.params import DryRun, RequiredReason
from umacct.cli.state import get_state

if TYPE_CHECKING:
    from umacct.cli.state import AppState
    from umacct.services.extensions import ExtensionDecision

REQUEST_COLUMNS = (
    "id", "account", "status", "requested_at", "via", "grace_end", "granted_until",
    "decided_by", "decided_at", "reason",
)  # fmt: skip

extension_app = typer.Typer(
    help="Extension requests of extendable profiles: list them, grant or refuse one.",
    no_args_is_help=True,
)


class StatusChoice(StrEnum):
    """Which requests ``extension list`` shows."""

    PENDING = "pending"
    GRANTED = "granted"
    REFUSED = "refused"
    ALL = "all"


RequestId = Annotated[
    str, typer.Argument(help="The request's id (umacct extension list).", show_default=False)
]


def register(app: typer.Typer) -> None:
    """Add the ``extension`` group to the application."""
    app.add_typer(extension_app, name="extension")


@extension_app.command("list")
def list_requests(
    ctx: typer.Context,
    status: Annotated[
        StatusChoice,
        typer.Option(
            "--status", help="Which requests (default: those waiting).", case_sensitive=False
        ),
    ] = StatusChoice.PENDING,
    fmt: FormatOption = None,
) -> None:
    """Show the extension requests, oldest first (by default those waiting for a decision).

    A request comes from the link of an expiry warning or the account page; a profile with
    extension_approval = "review" keeps it pending until 'umacct extension grant ID' or
    'umacct extension refuse ID --reason TEXT'.
    """
    from umacct.services.extensions import list_requests as requests_of

    state = get_state(ctx)
    chosen = None if status is StatusChoice.ALL else status.value
    rows = [
        {"id": r.request_id, **{c: getattr(r, c, None) for c in REQUEST_COLUMNS[1:]}}
        for r in requests_of(state.runtime(), chosen)
    ]
    render_rows(
        state.out, rows, REQUEST_COLUMNS, state.output_format(fmt), title="Extension requests"
    )


@extension_app.command("grant")
def grant(ctx: typer.Context, request_id: RequestId, dry_run: DryRun = False) -> None:
    """Grant a pending extension request: the grace period is extended as 'umacct extend' does.

    An extension renews, it does not stack (refused, exit 77, with the reason, as 'extend'
    would be). The person is mailed the new date. An unknown id exits 67, a malformed one
    65, a request already decided 77; nothing is changed then.
    """
    from umacct.services.extensions import grant_request

    state = get_state(ctx)
    _render(state, grant_request(state.runtime(), request_id, dry_run=dry_run), dry_run)


@extension_app.command("refuse")
def refuse(
    ctx: typer.Context, request_id: RequestId, reason: RequiredReason, dry_run: DryRun = False
) -> None:
    """Refuse a pending extension request; the person is mailed the reason.

    The account keeps its grace end. An unknown id exits 67, a malformed one 65, a request
    already decided 77; nothing is changed then.
    """
    from umacct.services.extensions import refuse_request

    state = get_state(ctx)
    result = refuse_request(state.runtime(), request_id, reason=reason, dry_run=dry_run)
    _render(state, result, dry_run)


def _render(state: AppState, result: ExtensionDecision, dry_run: bool) -> None:
    if state.json:
        state.json_result(result, dry_run=dry_run)
    else:
        state.out.out(f"{result.request_id} {result.account}: {result.message}")
