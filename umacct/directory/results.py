"""The one table that turns LDAP result codes (RFC 4511 and extensions) into the tool's errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from umacct.directory.errors import AlreadyExistsError, ConflictError
from umacct.errors import (
    ConfigError,
    InvalidInputError,
    NotFoundError,
    RefusedError,
    TemporaryError,
    UmacctError,
    UnavailableError,
)

SUCCESS = 0
REFERRAL = 10
NO_SUCH_OBJECT = 32
INVALID_CREDENTIALS = 49

# Choices that are not obvious: busy(51) may pass, so it is temporary; unavailable(52) is
# the server saying it cannot serve at all; unwillingToPerform(53) is slapd refusing for
# good (read-only database, forbidden operation), so retrying would not help; a referral(10)
# means a read-only replica came first in the configured URLs.
RESULT_ERRORS: Mapping[int, tuple[type[UmacctError], str]] = {
    1: (UmacctError, "operations error"),
    2: (UmacctError, "protocol error"),
    3: (TemporaryError, "time limit exceeded"),
    4: (TemporaryError, "size limit exceeded, the results would be incomplete"),
    7: (ConfigError, "authentication method not supported"),
    8: (ConfigError, "stronger authentication required"),
    10: (
        ConfigError,
        "referred to another server (a read-only replica? list the provider "
        "first, or set [directory] follow_referrals = true)",
    ),
    11: (TemporaryError, "administrative limit exceeded"),
    12: (RefusedError, "a critical control is not supported by the server"),
    13: (ConfigError, "confidentiality required: the server wants TLS"),
    16: (InvalidInputError, "no such attribute or value"),
    17: (InvalidInputError, "undefined attribute type"),
    18: (InvalidInputError, "inappropriate matching"),
    19: (InvalidInputError, "constraint violation"),
    20: (InvalidInputError, "attribute or value already present"),
    21: (InvalidInputError, "invalid attribute syntax"),
    32: (NotFoundError, "no such entry"),
    34: (InvalidInputError, "invalid DN syntax"),
    48: (RefusedError, "inappropriate authentication"),
    49: (RefusedError, "invalid credentials"),
    50: (RefusedError, "insufficient access rights"),
    51: (TemporaryError, "server busy"),
    52: (UnavailableError, "server unavailable"),
    53: (RefusedError, "server unwilling to perform"),
    54: (UmacctError, "loop detected"),
    64: (InvalidInputError, "naming violation"),
    65: (InvalidInputError, "object class violation"),
    66: (RefusedError, "not allowed on an entry that has children"),
    67: (InvalidInputError, "not allowed on the naming attribute"),
    68: (AlreadyExistsError, "entry already exists"),
    69: (InvalidInputError, "object class modifications prohibited"),
    71: (RefusedError, "affects several servers"),
    80: (UmacctError, "other server error"),
    122: (ConflictError, "the entry changed meanwhile, retry"),
    123: (RefusedError, "authorization denied"),
}


def result_error(operation: str, target: str, result: Mapping[str, Any]) -> UmacctError:
    """The error for an ldap3 result dict whose code is not success.

    The text names the operation, the DN (or other target), the meaning, the code and the
    server's diagnostic message, e.g. ``modify uid=x,ou=people,...: no such entry (LDAP 32)``.
    """
    code = int(result.get("result", -1))
    error_class, meaning = RESULT_ERRORS.get(code, (UmacctError, "unexpected result"))
    text = f"{operation} {target or '(root DSE)'}: {meaning} (LDAP {code})"
    diagnostic = str(result.get("message") or "").strip()
    if diagnostic:
        text += f": {diagnostic}"
    referrals = result.get("referrals")
    if referrals:
        text += f" [referrals: {', '.join(str(r) for r in referrals)}]"
    return error_class(text)


def check_result(operation: str, target: str, result: Mapping[str, Any]) -> None:
    """Raise the mapped error unless the result is success."""
    if result.get("result") != SUCCESS:
        raise result_error(operation, target, result)
