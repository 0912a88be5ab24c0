"""``umacct help COMMAND``: a command's help, the very text ``umacct COMMAND --help`` prints."""

from __future__ import annotations

from typing import Annotated

import typer

from umacct.cli.state import get_state


def register(app: typer.Typer) -> None:
    """Add the command to the application."""
    app.command("help")(help_command)


def complete_command(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion: the command names, then the subcommands of the group typed."""
    root = ctx.find_root()
    command, context = root.command, root
    typed = list(ctx.params.get("words") or [])  # the words before the one being completed
    for word in typed:
        lookup = getattr(command, "get_command", None)
        found = lookup(context, word) if lookup else None
        if found is None:
            return []
        command = found
    names = getattr(command, "list_commands", None)
    if names is None:
        return []
    return [name for name in names(context) if name.startswith(incomplete)]


def help_command(
    ctx: typer.Context,
    words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[COMMAND]...",
            help="The command (and subcommand): show, report forwarding...",
            autocompletion=complete_command,
        ),
    ] = None,
) -> None:
    """Show the help of a command: umacct help COMMAND [SUBCOMMAND].

    The same text as 'umacct COMMAND --help'; without a command, the list of commands.
    """
    from typer._click import Context

    from umacct.errors import UsageError

    root = ctx.find_root()
    command, context = root.command, root
    for word in words or []:
        lookup = getattr(command, "get_command", None)
        found = lookup(context, word) if lookup else None
        if found is None:
            raise UsageError(f"no command {' '.join(words or [])!r}: 'umacct --help' lists them")
        command = found
        context = Context(command, info_name=word, parent=context)
    get_state(ctx).out.out(command.get_help(context))
