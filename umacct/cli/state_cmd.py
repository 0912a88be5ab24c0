"""``umacct state``: the tool's own state in the directory (docs/state.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from umacct.cli.output import dumps_json
from umacct.cli.state import get_state

app = typer.Typer(
    help="The tool's own state in the directory: make its branch, move a state.db into it.",
    no_args_is_help=True,
)


def register(parent: typer.Typer) -> None:
    """Add the ``state`` group to the application."""
    parent.add_typer(app, name="state")


@app.command("init")
def init(ctx: typer.Context) -> None:
    """Create the state branch ([directory] state_dn) and its units; what exists stays.

    Run it once per site, from any host. Exit 78 without state_dn or when the entry above
    it is missing, 77 when the tool's DN may not write there (docs/state.md gives the ACL).
    """
    from umacct.state.admin import init_state

    state = get_state(ctx)
    report = init_state(state.runtime())
    if state.json:
        state.out.out(dumps_json(report))
        return
    for dn in report.created:
        state.out.out(f"created {dn}")
    state.info(
        f"state branch {report.state_dn}: {len(report.created)} entries created, "
        f"{len(report.existing)} already there"
    )


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be moved; change nothing.")
    ] = False,
) -> None:
    """Copy the data folder's state.db into the state branch, once: what is there stays.

    Pending links, notices sent, purged identifiers and saved values are copied; a record
    already in the directory is never overwritten, so running it again adds nothing. The
    file stays for you to remove (the directory backend never reads it).
    """
    from umacct.state.admin import migrate_state

    state = get_state(ctx)
    report = migrate_state(state.runtime(), dry_run=dry_run)
    if state.json:
        state.out.out(dumps_json(report))
        return
    if not report.found:
        state.info(f"no {report.source}: nothing to migrate")
        return
    verb = "would add" if dry_run else "added"
    for kind in report.kinds:
        state.out.out(
            f"{kind.kind}: {kind.rows} in the file, {verb} {kind.added}, "
            f"{kind.already_there} already there"
        )
    for account in report.reused:
        state.err.out(
            f"warning: {account}: purged on this host, but a live account has this identifier again "
            "(handed out meanwhile by a host that did not know): its tombstone is kept, the "
            "account left alone; check who holds it"
        )
    state.info(f"{'(dry run) ' if dry_run else ''}{report.source} -> {report.state_dn}")
