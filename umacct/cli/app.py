"""The ``umacct`` command: global options, error reporting, and the command groups."""

from __future__ import annotations

import json
import os
import re
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from umacct import __version__
from umacct.cli import collector
from umacct.cli.lazy import LazyCommands
from umacct.cli.option_values import OptionValueError, tidy_own_parameters, tidy_parameters
from umacct.cli.output import FORMAT_HELP, OutputFormat
from umacct.cli.state import AppState, get_state
from umacct.environment import Environment
from umacct.errors import EXIT_CODE_MEANINGS, ExitCode, UmacctError, UsageError

if TYPE_CHECKING:
    from typer._click import Command, Context, HelpFormatter

COMMANDS: dict[str, tuple[str, str]] = {
    "create": ("umacct.cli.create_cmd", "Create accounts: one person, or everyone in a CSV intake file (--csv FILE)."),
    "activate": ("umacct.cli.credentials_cmd", "Send a new activation link (ACCOUNT), or choose the first password (--token)."),
    "reset": ("umacct.cli.credentials_cmd", "Send a reset link to the recovery address (ACCOUNT), or set a new password (--token)."),
    "passwd": ("umacct.cli.credentials_cmd", "The person changes their own password, proving the current one."),
    "set-recovery": ("umacct.cli.credentials_cmd", "Change the recovery address: a confirmation link goes to it (ACCOUNT EMAIL)."),
    "redirect": ("umacct.cli.credentials_cmd", "Forward the account's mail to EMAIL (after a confirmation link sent there), or --off."),
    "suspend": ("umacct.cli.lifecycle_cmd", "Start the grace period of an account whose activity ended (repeating it changes nothing)."),
    "unsuspend": ("umacct.cli.lifecycle_cmd", "Undo a suspension: the account is active as before, with its affiliations back."),
    "lock": ("umacct.cli.lifecycle_cmd", "Lock an account: the directory refuses its logins until it is unlocked."),
    "unlock": ("umacct.cli.lifecycle_cmd", "Unlock an account locked by 'umacct lock': the state it had before comes back."),
    "extend": ("umacct.cli.lifecycle_cmd", "Extend the grace period by the profile's extension_months (titulaire and contractuel staff)."),
    "extension": ("umacct.cli.extension_cmd", "Extension requests of extendable profiles: list them, grant or refuse one."),
    "sweep": ("umacct.cli.lifecycle_cmd", "The daily job (cron): suspend what is due, send warnings, expire, list or purge."),
    "purge": ("umacct.cli.lifecycle_cmd", "Archive (LDIF, mode 0600) then delete expired accounts; their identifiers stay reserved."),
    "restore": ("umacct.cli.lifecycle_cmd", "Put a purged account back from its archive: expired, with no usable password until a reset."),
    "search": ("umacct.cli.helpdesk_cmd", "Find people by name, identifier, alias, personal address or external id."),
    "show": ("umacct.cli.helpdesk_cmd", "Everything about one account on one screen."),
    "explain": ("umacct.cli.helpdesk_cmd", "The account's timeline in plain words, and what blocks a login today."),
    "list": ("umacct.cli.helpdesk_cmd", "List accounts, filtered by the directory itself; streamed (csv or json for large lists)."),
    "audit": ("umacct.cli.helpdesk_cmd", "Read the audit log: who changed what, when, before and after (oldest first)."),
    "antispam": ("umacct.cli.staff_cmd", "Show or set the antispam level of a staff mailbox (exit 77 for another profile)."),
    "doctor": ("umacct.cli.doctor_cmd", "Check the configuration, secrets, connection, TLS, bind, write access, schema, ppolicy and mail."),
    "directory": ("umacct.cli.staff_cmd", "A staff member's own directory data (only the attributes the configuration lists)."),
    "report": ("umacct.cli.report_cmd", "Reports on the good practices: stale passwords, missing recovery addresses, activations never done, external forwards."),
    "mail": ("umacct.cli.mail_cmd", "The queue of mail the relay did not take yet."),
    "config": ("umacct.cli.config_cmd", "Write, show and check the configuration file."),
    "serve": ("umacct.cli.serve_cmd", "Serve the web pages of the mailed links (activation, reset, confirmation) and first login."),
    "state": ("umacct.cli.state_cmd", "The tool's own state in the directory: make its branch, move a state.db into it."),
    "secret": ("umacct.cli.secret_cmd", "Store passwords and the web pages' secrets in the system keyring (never on the command line)."),
    "localdir": ("umacct.cli.localdir_cmd", "Start, describe and stop a throwaway local OpenLDAP directory (demo, tests, benchmarks)."),
    "help": ("umacct.cli.help_cmd", "Show the help of a command: umacct help COMMAND [SUBCOMMAND]."),
}  # fmt: skip
"""Every command: the module that registers it, and the first paragraph of its help (what
``--help`` lists without importing the module; a test checks it against the command's own)."""

EXIT_CODES_HELP = "Exit codes:\n\n\b\n" + "\n".join(
    f"{int(code):>3}  {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items()
)


EXIT_READER_GONE = 128 + 13
"""The exit code of a command whose stdout reader went away (``| head``): SIGPIPE's."""
EXIT_INTERRUPTED = 128 + 2
"""Ctrl-C (SIGINT)."""


def silence_stdout() -> None:
    """Point the process's stdout at /dev/null: what is still buffered goes nowhere, quietly."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (a test's capture): nothing will flush to a closed pipe
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, descriptor)
    os.close(null)


_AMBIGUOUS = re.compile(r"is ambiguous: it names \d+ accounts \((?P<names>.+)\)$")


def _candidates(error: UmacctError) -> list[str]:
    """The accounts an ambiguous name matches (for a script to choose among them)."""
    given = getattr(error, "candidates", None)
    if isinstance(given, list | tuple):
        return [str(name) for name in given]
    found = _AMBIGUOUS.search(error.message)
    return found.group("names").split(", ") if found else []


def report_error(state: AppState, error: UmacctError) -> None:
    """Print one error line on stderr (a JSON object with --json)."""
    stderr = state.env.stderr
    if state.json:
        document: dict[str, object] = {
            "error": error.kind,
            "message": error.message,
            "exit_code": int(error.exit_code),
        }
        candidates = _candidates(error)
        if candidates:
            document["candidates"] = candidates
        stderr.write(json.dumps(document, ensure_ascii=False) + "\n")
    else:
        stderr.write(f"umacct: error: {error.message}\n")


class UmacctGroup(TyperGroup):
    """The commands of ``COMMANDS``, imported when run; errors as one line and an exit code."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        tidy_parameters(self)  # before the commands are set: loading them all would be slow
        self._lazy = LazyCommands(COMMANDS, self.rich_markup_mode)
        self.commands = self._lazy

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        """Parse the global options, tidied (typer adds its completion options after init)."""
        tidy_own_parameters(self)
        return super().parse_args(ctx, args)

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        """Find the command to run, importing its module: the start-up ends there (``main``)."""
        found = super().resolve_command(ctx, args)
        collector.release_for_command()
        return found

    def list_commands(self, ctx: Context) -> list[str]:
        """The command names, in the order of ``COMMANDS`` (none is imported)."""
        return list(self.commands)

    def format_commands(self, ctx: Context, formatter: HelpFormatter) -> None:
        """List every command with its one-line help, importing none of them."""
        TyperGroup(commands=self._lazy.summaries()).format_commands(ctx, formatter)

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
        except OptionValueError as error:
            report_error(get_state(ctx), UsageError(error.message))
            raise typer.Exit(int(ExitCode.USAGE)) from None
        except BrokenPipeError:
            # A reader that went away (| head) is not an error: quiet, as if killed by SIGPIPE.
            silence_stdout()
            raise typer.Exit(EXIT_READER_GONE) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer reports its own
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
    fmt: Annotated[
        OutputFormat | None,
        typer.Option("--format", "-f", help=FORMAT_HELP, case_sensitive=False),
    ] = None,
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
    """Global options, valid before any command (--json and --format also after it)."""
    env = ctx.obj if isinstance(ctx.obj, Environment) else Environment.from_system()
    ctx.obj = AppState(
        env=env,
        config_path=config,
        json=json_output or fmt is OutputFormat.JSON,
        format=OutputFormat.JSON if json_output and fmt is None else fmt,
        verbose=verbose,
        quiet=quiet,
        color=not (no_color or env.environ.get("NO_COLOR")),
        debug=debug,
    )


def main() -> None:
    """Console-script entry point."""
    collector.hold_for_start_up()  # until the command is found (resolve_command)
    try:
        app(obj=Environment.from_system())
    except SystemExit as leaving:
        code = leaving.code
        try:
            sys.stdout.flush()  # here, not at interpreter exit, where a closed pipe would warn
        except BrokenPipeError:
            silence_stdout()
            code = EXIT_READER_GONE
        sys.exit(code)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    finally:
        collector.leaving()
