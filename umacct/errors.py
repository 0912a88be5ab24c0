"""One exception hierarchy for the whole tool, and the exit codes it maps to.

The core raises these; only the CLI turns them into exit codes (see ``ExitCode``).
The codes follow sysexits.h so that cron jobs and scripts can tell a bad row from
a dead server from a policy refusal.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of every ``umacct`` command."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    DATA_ERROR = 65
    NO_SUCH_ACCOUNT = 67
    UNAVAILABLE = 69
    TEMPORARY_FAILURE = 75
    REFUSED = 77
    CONFIG_ERROR = 78


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.FAILURE: "unexpected internal error (run again with --debug)",
    ExitCode.USAGE: "bad command line",
    ExitCode.DATA_ERROR: "invalid input data",
    ExitCode.NO_SUCH_ACCOUNT: "no such account",
    ExitCode.UNAVAILABLE: "directory or mail server unavailable",
    ExitCode.TEMPORARY_FAILURE: "temporary failure, retry later",
    ExitCode.REFUSED: "refused by policy or permissions",
    ExitCode.CONFIG_ERROR: "configuration error",
}


class UmacctError(Exception):
    """Base of every error the tool reports to its user in one line."""

    exit_code: ExitCode = ExitCode.FAILURE
    kind: str = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(UmacctError):
    """The command line itself is wrong: a missing option, options that do not go together."""

    exit_code = ExitCode.USAGE
    kind = "usage"


class InvalidInputError(UmacctError):
    """The data given (an argument, a CSV row, a date) is not acceptable."""

    exit_code = ExitCode.DATA_ERROR
    kind = "invalid_input"


class NotFoundError(UmacctError):
    """The account (or another named object) does not exist."""

    exit_code = ExitCode.NO_SUCH_ACCOUNT
    kind = "not_found"


class UnavailableError(UmacctError):
    """The directory or the mail server cannot be reached."""

    exit_code = ExitCode.UNAVAILABLE
    kind = "unavailable"


class TemporaryError(UmacctError):
    """A transient condition (busy server, lock held): retrying later may succeed."""

    exit_code = ExitCode.TEMPORARY_FAILURE
    kind = "temporary"


class ObsoleteMailError(UmacctError):
    """A queued message that a later event made pointless (a link for a replaced address)."""

    exit_code = ExitCode.REFUSED
    kind = "obsolete"


class RefusedError(UmacctError):
    """The policy or the directory's permissions forbid the operation."""

    exit_code = ExitCode.REFUSED
    kind = "refused"


class ConfigError(UmacctError):
    """The configuration is missing, unreadable or invalid, or a secret is missing."""

    exit_code = ExitCode.CONFIG_ERROR
    kind = "config"


class BindRefusedError(ConfigError):
    """The directory refused the tool's bind: invalid credentials (the password or the DN)."""
