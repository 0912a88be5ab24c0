"""The ``umacct`` command: global options, error reporting, and the command groups."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from umacct import __version__
from umacct.cli.state import AppState, get_state
from umacct.errors import EXIT_CODE_MEANINGS, ExitCode, UmacctError

EXIT_CODES_HELP = "Exit codes:\n\n\b\n" + "\n".join(
    f"{int(code):>3}  {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items()
)


def report_error(state: AppState, error: UmacctError) -> None:
    """Print one error line on stderr (a JSON object with --json)."""
    if state.json:
        document = {
            "error": error.kind,
            "message": error.message,
            "exit_code": int(error.exit_code),
        }
        sys.stderr.write(json.dumps(document, ensure_ascii=False) + "\n")
    else:
        sys.stderr.write(f"umacct: error: {error.message}\n")


class UmacctGroup(TyperGroup):
    """Turns the tool's errors into one line and a documented exit code."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        """Run the command; map UmacctError (and the unexpected) to exit codes."""
        try:
            return super().invoke(ctx)
        except UmacctError as error:
            state = get_state(ctx)
            if state.debug:
                raise
            report_error(state, error)
            raise typer.Exit(int(error.exit_code)) from None
        except (typer.Exit, typer.Abort, typer.TyperException, BrokenPipeError):
            raise  # typer reports its own; a reader that went away (| head) is not an error
        except Exception as error:
            state = get_state(ctx)
            if state.debug:
                raise
            message = f"unexpected {type(error).__name__}: {error} (run again with --debug)"
            report_error(state, UmacctError(message))
            raise typer.Exit(int(ExitCode.FAILURE)) from None
        finally:
            if isinstance(ctx.obj, AppState):
                ctx.obj.close()


app = typer.Typer(
    cls=UmacctGroup,
    name="umacct",
    help=(
        "Run the life of the university's IT accounts in the LDAP directory: creation, "
        "activation, passwords, recovery address, forwarding, departure with a grace period "
        "by profile, extension, purge.\n\n"
        "The configuration is read from --config FILE, $UMACCT_CONFIG, "
        "~/.config/umacct/config.toml or /etc/umacct/config.toml (the first found)."
    ),
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"umacct {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", help="Configuration file to use.", metavar="FILE"),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="One JSON document on stdout; errors as JSON on stderr.")
    ] = False,
    verbose: Annotated[
        int,
        typer.Option("--verbose", "-v", count=True, help="Say more (the directory server used)."),
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colours (also NO_COLOR).")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Global options, valid before any command."""
    ctx.obj = AppState(
        config_path=config,
        json=json_output,
        verbose=verbose,
        quiet=quiet,
        color=not (no_color or os.environ.get("NO_COLOR")),
        debug=debug,
    )


def _register() -> None:
    from umacct.cli import (
        config_cmd,
        create_cmd,
        credentials_cmd,
        doctor_cmd,
        helpdesk_cmd,
        lifecycle_cmd,
        localdir_cmd,
        mail_cmd,
        report_cmd,
        secret_cmd,
        staff_cmd,
    )

    for group in (
        create_cmd,
        credentials_cmd,
        lifecycle_cmd,
        helpdesk_cmd,
        staff_cmd,
        report_cmd,
        mail_cmd,
    ):
        group.register(app)
    app.add_typer(config_cmd.app, name="config")
    app.add_typer(secret_cmd.app, name="secret")
    app.add_typer(localdir_cmd.app, name="localdir")
    doctor_cmd.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
