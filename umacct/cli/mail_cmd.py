"""Mail queue commands: ``mail flush`` and ``mail list``."""

from __future__ import annotations

from typing import Annotated

import typer

from umacct.cli.output import FormatOption, render_rows
from umacct.cli.state import get_state

QUEUE_COLUMNS = (
    "id", "account", "recipient", "kind", "link_purpose", "created_at", "attempts", "last_error",
)  # fmt: skip

mail_app = typer.Typer(help="The queue of mail the relay did not take yet.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the ``mail`` group to the application."""
    app.add_typer(mail_app, name="mail")


@mail_app.command("flush")
def flush(
    ctx: typer.Context,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Send at most this many messages.")
    ] = None,
) -> None:
    """Send the queued mail, oldest first; a queued link is sent as a fresh link.

    A message that fails stays queued with its error. Exit 69 when the relay is down (the
    rest stays queued), 75 when another flush is running.
    """
    from umacct.errors import UnavailableError
    from umacct.mail.transport import OUTBOX_WORDS
    from umacct.services.links import flush_mail

    state = get_state(ctx)
    report = flush_mail(state.runtime(), limit=limit)
    if state.json:
        state.json_result(report)
    else:
        done = (
            f"{OUTBOX_WORDS} {report.sent}"
            if state.config.mail.transport == "outbox"
            else f"sent {report.sent}"
        )
        if report.sent == report.remaining == 0 and not report.failures:
            state.out.out("nothing to send")
        else:
            state.out.out(f"{done}, still queued {report.remaining}")
        for failure in report.failures:
            state.info(
                f"message {failure.id} to {failure.account} ({failure.kind}): {failure.error}"
            )
        for dropped in report.dropped:
            state.info(
                f"message {dropped.id} to {dropped.account} ({dropped.kind}) dropped: "
                f"{dropped.error}"
            )
    if report.stopped is not None:
        raise UnavailableError(
            f"mail relay: {report.stopped}; {report.remaining} messages stay queued"
        )


@mail_app.command("list")
def list_queue(
    ctx: typer.Context,
    account: Annotated[
        str | None, typer.Option("--account", help="Only the messages of this account.")
    ] = None,
    fmt: FormatOption = None,
) -> None:
    """Show the messages waiting to be sent (never a link: it is issued when sent)."""
    state = get_state(ctx)
    rows = [
        {column: getattr(mail, column) for column in QUEUE_COLUMNS}
        for mail in state.runtime().queued_mail(account)
    ]
    render_rows(state.out, rows, QUEUE_COLUMNS, state.output_format(fmt), title="Mail queue")
