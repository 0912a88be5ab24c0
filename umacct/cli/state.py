"""What the global options decide for one run of the tool, shared by every command."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, tzinfo
from typing import TYPE_CHECKING

import typer

from umacct.cli.output import Output, OutputFormat
from umacct.environment import Environment

if TYPE_CHECKING:
    from umacct.config import Config
    from umacct.services.runtime import Runtime


@dataclass
class AppState:
    """The global options of this run, its environment, the configuration, and the consoles."""

    env: Environment = field(default_factory=Environment.from_system)
    config_path: str | None = None
    json: bool = False
    format: OutputFormat | None = None
    """--format (before or after the command); None: a table on a terminal, else TSV."""
    verbose: int = 0
    quiet: bool = False
    color: bool = True
    debug: bool = False
    _config: Config | None = field(default=None, repr=False)
    _out: Output | None = field(default=None, repr=False)
    _err: Output | None = field(default=None, repr=False)
    _runtime: Runtime | None = field(default=None, repr=False)

    @property
    def config(self) -> Config:
        """The configuration, found and validated on first use."""
        if self._config is None:
            from umacct.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    @property
    def out(self) -> Output:
        """Output for data (stdout)."""
        if self._out is None:
            self._out = Output(
                self.env.stdout,
                color=self.color,
                zone=self.display_zone,
                note=self.info,
                width=self.terminal_width(),
            )
        return self._out

    @property
    def err(self) -> Output:
        """Output for diagnostics (stderr)."""
        if self._err is None:
            self._err = Output(self.env.stderr, color=self.color, zone=self.display_zone)
        return self._err

    def terminal_width(self) -> int | None:
        """``$COLUMNS`` of this run's environment, if set (else the terminal's own width)."""
        columns = self.env.environ.get("COLUMNS", "")
        return int(columns) if columns.isdigit() and int(columns) > 0 else None

    def display_zone(self) -> tzinfo | None:
        """The policy's time zone, once the configuration is loaded (instants for people)."""
        if self._config is None:
            return None
        from zoneinfo import ZoneInfo

        return ZoneInfo(self._config.policy.timezone)

    def runtime(
        self, *, as_of: date | None = None, writes: bool = False, force_date: bool = False
    ) -> Runtime:
        """The services' runtime for this command (closed when the command ends).

        Its clock is the environment's; ``as_of`` moves it to that day, so that every instant
        the run stamps (links, notices, audit, state dates) agrees with the policy day. A run
        that ``writes`` is dated today: another day needs ``force_date`` (a deliberate replay,
        audited), else UsageError (exit 2) before anything is touched.
        """
        from umacct.clock import clock_on_day, local_today
        from umacct.errors import UsageError
        from umacct.services.runtime import Runtime

        if self._runtime is None:
            clock = self.env.clock
            details: dict[str, object] = {}
            if as_of is not None:
                today = local_today(clock, self.config.policy.timezone)
                if as_of != today and writes and not force_date:
                    raise UsageError(
                        f"--as-of {as_of.isoformat()} is not today ({today.isoformat()}): a real "
                        "run is dated today; add --dry-run to see that day, or --force-date to "
                        "replay it deliberately (audited)"
                    )
                if as_of != today and force_date:
                    details["forced_date"] = as_of.isoformat()
                clock = clock_on_day(clock, as_of, self.config.policy.timezone)
            elif force_date:
                raise UsageError("--force-date goes with --as-of")
            self._runtime = Runtime(
                self.config, clock=clock, prompt=self.prompt_password, audit_details=details
            )
        return self._runtime

    def close(self) -> None:
        """Close the runtime's connections, if any were opened."""
        if self._runtime is not None:
            if self.verbose and self._runtime.directory_url:
                self.info(f"directory: {self._runtime.directory_url}")
            for warning in self._runtime.warnings:  # even with --quiet: the audit trail
                self.err.out(f"warning: {warning}")
            self._runtime.close()
            self._runtime = None

    def output_format(self, fmt: OutputFormat | None = None) -> OutputFormat:
        """The format a read command uses: --format, else --json, else a table on a terminal.

        Off a terminal (piped, redirected) the default is tab-separated rows with whole
        values (``tsv``): nothing is cut to a screen's width.
        """
        chosen = fmt or self.format
        if chosen is not None:
            return chosen
        if self.json:
            return OutputFormat.JSON
        return OutputFormat.TABLE if self.out.is_terminal else OutputFormat.TSV

    def set_format(self, fmt: OutputFormat) -> None:
        """Record --format (typed after the command): json also makes errors JSON."""
        self.format = fmt
        self.json = fmt is OutputFormat.JSON

    def json_result(self, result: object, *, dry_run: bool = False) -> None:
        """A write command's result as one JSON document on stdout, with ``dry_run``."""
        from umacct.cli.output import dumps_json, with_dry_run

        self.out.out(dumps_json(with_dry_run(result, dry_run)))

    def mail_words(self, message: str, *, mailed: bool) -> str:
        """A result's message; with the outbox transport, mail "sent" says it was not."""
        if mailed and self.config.mail.transport == "outbox":
            from umacct.mail.transport import outbox_wording

            return outbox_wording(message)
        return message

    def info(self, message: str) -> None:
        """A diagnostic line on stderr, unless --quiet."""
        if not self.quiet:
            self.err.out(message)

    def prompt_password(self, label: str) -> str:
        """Ask for a secret on the terminal (never on stdout), hidden; "" without a terminal."""
        from umacct.cli.terminal import ask_hidden
        from umacct.errors import InvalidInputError

        if not self.env.stdin_is_terminal:
            return ""
        try:
            return ask_hidden(self.env, label)
        except InvalidInputError:
            return ""


def get_state(ctx: typer.Context) -> AppState:
    """The AppState of the running command (made by the top-level callback)."""
    root = ctx.find_root()
    state = root.obj
    if not isinstance(state, AppState):
        env = state if isinstance(state, Environment) else Environment.from_system()
        state = AppState(env=env, color=not env.environ.get("NO_COLOR"))
        root.obj = state
    return state
