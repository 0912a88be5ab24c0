"""Staff-only commands: ``antispam`` and ``directory show|set`` (profiles with ``staff = true``)."""

from __future__ import annotations

from typing import Annotated

import typer

from umacct.cli.output import FormatOption, OutputFormat, as_row, dumps_json, render_record
from umacct.cli.params import AccountArgument, DryRun
from umacct.cli.state import get_state

directory_app = typer.Typer(
    help="A staff member's own directory data (only the attributes the configuration lists).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add the staff-only commands to the application."""
    app.command("antispam")(antispam)
    app.add_typer(directory_app, name="directory")


def antispam(
    ctx: typer.Context,
    account: AccountArgument,
    level: Annotated[
        str | None,
        typer.Argument(
            help="The new level (one of [antispam] levels); omit to show the current one."
        ),
    ] = None,
    dry_run: DryRun = False,
) -> None:
    """Show or set the antispam level of a staff mailbox (exit 77 for another profile).

    The attribute and the value of each level come from the [antispam] table of the
    configuration; without it the command exits 78.
    """
    from umacct.services.staff import antispam as antispam_level

    state = get_state(ctx)
    result = antispam_level(state.runtime(), account, level, dry_run=dry_run)
    if state.json:
        state.json_result(result, dry_run=dry_run)
        return
    current = result.level or (
        f"none of the levels (value {result.value!r})" if result.value else "not set"
    )
    prefix = "(dry run) " if dry_run and result.changed else ""
    state.out.out(f"{result.account}: {prefix}antispam level {current}")
    state.info(f"levels: {', '.join(result.levels)}")


@directory_app.command("show")
def directory_show(ctx: typer.Context, account: AccountArgument, fmt: FormatOption = None) -> None:
    """Show the attributes a staff member may edit in their own entry, and their values."""
    from umacct.services.staff import show_directory_data

    state = get_state(ctx)
    data = show_directory_data(state.runtime(), account)
    chosen = state.output_format(fmt)
    if chosen is OutputFormat.JSON:
        state.out.out(dumps_json(data))
    else:
        render_record(state.out, data.attributes, chosen, title=data.account)


@directory_app.command("set")
def directory_set(
    ctx: typer.Context,
    account: AccountArgument,
    assignments: Annotated[
        list[str],
        typer.Argument(
            metavar="ATTR=VALUE...",
            help="New values; repeat ATTR for several values, ATTR= removes it.",
            show_default=False,
        ),
    ],
    dry_run: DryRun = False,
) -> None:
    """Change a staff member's own directory data in one write (audited).

    Only the attributes of [staff] editable_attributes (exit 77 for any other); each value is
    checked against the attribute's syntax in the server's schema first (exit 65): one bad
    pair and nothing changes.
    """
    from umacct.services.staff import set_directory_data

    state = get_state(ctx)
    data = set_directory_data(state.runtime(), account, assignments, dry_run=dry_run)
    if state.json:
        state.json_result(data, dry_run=dry_run)
        return
    record = as_row(data)["attributes"]
    chosen = OutputFormat.TABLE if state.out.is_terminal else OutputFormat.TSV  # as show
    render_record(state.out, record, chosen, title=data.account)
    changed = ", ".join(data.changed) or "nothing"
    state.info(f"{'would change' if dry_run else 'changed'}: {changed}")
