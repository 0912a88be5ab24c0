"""Running the command line in a test: the tool's own entry, with the test's environment."""

from __future__ import annotations

from datetime import date

from days import TODAY, clock_on
from typer.testing import CliRunner

from umacct.cli.app import app
from umacct.clock import Clock
from umacct.environment import Environment

runner = CliRunner()


def test_environment(day: date = TODAY, clock: Clock | None = None) -> Environment:
    """The environment a test's command runs in: a fixed clock on ``day`` (9:00, Paris)."""
    return Environment(clock=clock or clock_on(day))


test_environment.__test__ = False  # type: ignore[attr-defined]


def umacct(
    *args: str,
    stdin: str | None = None,
    day: date = TODAY,
    clock: Clock | None = None,
    catch_exceptions: bool = True,
) -> tuple[int, str, str]:
    """Run ``umacct ARGS`` on ``day`` (or ``clock``); the exit code, stdout and stderr."""
    result = runner.invoke(
        app,
        list(args),
        input=stdin,
        obj=test_environment(day, clock),
        catch_exceptions=catch_exceptions,
    )
    return result.exit_code, result.stdout, result.stderr
