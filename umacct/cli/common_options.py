"""``--json`` and ``--format`` on every command, typed after it as well as before it.

``umacct show X --json`` is the first thing a helpdesk types. Every command gets ``--json``;
a command without its own ``--format`` (the commands that change something) gets
``--format table|json``. Both only set the run's output format (``AppState.set_format``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, cast

import typer
from typer.main import get_command

from umacct.cli.output import ResultFormat, remember_format, remember_json

if TYPE_CHECKING:
    from typer._click import Command, Parameter

JSON_HELP = "One JSON document on stdout; errors as JSON on stderr (as --format json)."


def _json_template(
    json_output: Annotated[
        bool,
        typer.Option("--json", help=JSON_HELP, callback=remember_json, expose_value=False),
    ] = False,
) -> None:
    """Only its parameter is used."""


def _format_template(
    fmt: Annotated[
        ResultFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="Output format: table (for people) or json (for scripts).",
            case_sensitive=False,
            callback=remember_format,
            expose_value=False,
        ),
    ] = None,
) -> None:
    """Only its parameter is used."""


def _parameters(template: Callable[..., None]) -> list[Parameter]:
    scratch = typer.Typer(add_completion=False)
    scratch.command()(template)
    return list(get_command(scratch).params)


def add_output_options(command: Command) -> Command:
    """Give the command (each command of a group) ``--json``, and ``--format`` if it has none."""
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for sub in subcommands.values():
            add_output_options(sub)
        return command
    names = {name for param in command.params for name in getattr(param, "opts", [])}
    if "--json" not in names:
        command.params.extend(_parameters(_json_template))
    if "--format" not in names:
        command.params.extend(_parameters(_format_template))
        if command.callback is not None:
            command.callback = _results_only(command.callback)
    return command


def _results_only(callback: Callable[..., object]) -> Callable[..., object]:
    """The command's callback, refusing a global ``--format`` it cannot print.

    ``umacct --format csv sweep`` is refused with the words of ``umacct sweep --format csv``:
    where the option is typed does not change what it accepts.
    """
    import functools

    @functools.wraps(callback)
    def checked(*args: object, **kwargs: object) -> object:
        from typer._click.globals import get_current_context

        from umacct.cli.state import get_state
        from umacct.errors import UsageError

        chosen = get_state(cast(typer.Context, get_current_context())).format
        accepted = [choice.value for choice in ResultFormat]
        if chosen is not None and chosen.value not in accepted:
            raise UsageError(
                f"--format: expected one of {', '.join(accepted)}, got {chosen.value!r}"
            )
        return callback(*args, **kwargs)

    return checked
