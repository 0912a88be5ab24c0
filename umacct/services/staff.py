"""Staff-only rights: the antispam level of their mailbox and their own directory data.

Only accounts whose profile has ``staff = true`` may use them. Values are checked against
the syntax the server's schema gives each attribute before anything is written, and every
change goes through ``apply_change`` (one modify, audited).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from umacct.config import AntispamConfig
from umacct.errors import ConfigError, InvalidInputError, NotFoundError, RefusedError
from umacct.services.accounts import (
    Account,
    account_attributes,
    account_from_entry,
    account_named,
    profile_of,
)
from umacct.services.changes import PlannedChange, apply_change

if TYPE_CHECKING:
    from umacct.services.runtime import Runtime

SYNTAX_DIRECTORY_STRING = "1.3.6.1.4.1.1466.115.121.1.15"
SYNTAX_IA5_STRING = "1.3.6.1.4.1.1466.115.121.1.26"
SYNTAX_INTEGER = "1.3.6.1.4.1.1466.115.121.1.27"
SYNTAX_POSTAL_ADDRESS = "1.3.6.1.4.1.1466.115.121.1.41"
SYNTAX_TELEPHONE_NUMBER = "1.3.6.1.4.1.1466.115.121.1.50"

_PHONE = re.compile(r"^\+?[0-9 ().\-/]+$")
_MIN_PHONE_DIGITS = 3
_INTEGER = re.compile(r"^-?(0|[1-9][0-9]*)$")
_MAX_VALUE_LENGTH = 1024
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


@dataclass(frozen=True)
class AntispamLevel:
    """The antispam level of a staff mailbox."""

    account: str
    attribute: str
    level: str | None
    """The configured level whose value the entry holds; None when it holds none or another."""
    value: str | None
    levels: list[str]
    changed: bool = False


@dataclass(frozen=True)
class DirectoryData:
    """The attributes staff may edit in their own entry, and their values."""

    account: str
    attributes: dict[str, list[str]]
    changed: list[str]
    """The attributes this command changed (empty for ``show``)."""


def require_staff(runtime: Runtime, account: Account) -> None:
    """RefusedError (exit 77) naming the profile unless the account's profile is staff."""
    profile = profile_of(account, runtime.config)
    if not profile.staff:
        raise RefusedError(
            f"{account.identifier}: staff only, and profile {account.profile_key} "
            f"({profile.label}) is not a staff profile"
        )


def _read_with(runtime: Runtime, account: Account, extra: Sequence[str]) -> Account:
    """The account read (again) with ``extra`` attributes too, so a change can compare them."""
    entry = runtime.directory.read(account.dn, [*account_attributes(runtime.config), *extra])
    if entry is None:
        raise NotFoundError(f"{account.identifier} disappeared from the directory meanwhile")
    return account_from_entry(entry, runtime.config)


def _changed(
    runtime: Runtime, change: PlannedChange, extra: Sequence[str], *, dry_run: bool
) -> Account:
    """The account after ``change``: simulated for a dry run, else read back with ``extra``."""
    if dry_run:
        return change.simulate(runtime.config)
    return _read_with(runtime, change.account, extra)


def _staff_account(runtime: Runtime, key: str, extra: Sequence[str]) -> Account:
    account = _read_with(runtime, account_named(runtime, key), extra)
    require_staff(runtime, account)
    return account


# --- antispam -----------------------------------------------------------------------------


def antispam_settings(runtime: Runtime) -> AntispamConfig:
    """The ``[antispam]`` table; ConfigError when the site has none."""
    settings = runtime.config.antispam
    if settings is None:
        raise ConfigError(
            "no [antispam] table in the configuration: no standard attribute holds an "
            "antispam level, so the site must name its attribute and levels "
            '(attribute = "...", levels = { name = "value", ... })'
        )
    if not settings.levels:
        raise ConfigError("[antispam] levels is empty: configure at least one level")
    return settings


def _level_of(settings: AntispamConfig, value: str | None) -> str | None:
    if value is None:
        return None
    return next((name for name, held in settings.levels.items() if held == value), None)


def antispam(
    runtime: Runtime, key: str, level: str | None = None, *, dry_run: bool = False
) -> AntispamLevel:
    """Show the antispam level of a staff mailbox, or set it to ``level`` (``umacct antispam``)."""
    settings = antispam_settings(runtime)
    if level is not None and level not in settings.levels:
        raise InvalidInputError(
            f"unknown antispam level {level!r}: expected one of {', '.join(settings.levels)}"
        )
    account = _staff_account(runtime, key, [settings.attribute])
    changed = False
    if level is not None:
        change = PlannedChange(account, {settings.attribute: [settings.levels[level]]})
        differences = apply_change(
            runtime, change, command="antispam", dry_run=dry_run, details={"level": level}
        )
        changed = bool(differences)
        if changed:
            account = _changed(runtime, change, [settings.attribute], dry_run=dry_run)
    value = account.entry.first(settings.attribute)
    return AntispamLevel(
        account=account.identifier,
        attribute=settings.attribute,
        level=_level_of(settings, value),
        value=value,
        levels=list(settings.levels),
        changed=changed,
    )


# --- directory data -----------------------------------------------------------------------


def _check_text(value: str) -> str | None:
    if any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in value):
        return (
            "control characters and invisible ones (line breaks, tabs, bidi overrides, "
            "zero-width characters...) are not allowed"
        )
    if not value.strip():
        return "an empty or blank value is not allowed"
    return None


def _check_telephone(value: str) -> str | None:
    digits = sum(ch.isdigit() for ch in value)
    if not _PHONE.match(value) or digits < _MIN_PHONE_DIGITS or "+" in value[1:]:
        return "not a telephone number (digits, spaces, + ( ) . - / only, e.g. +33 4 67 14 30 30)"
    return None


def _check_ia5(value: str) -> str | None:
    if not value.isascii():
        return "only ASCII characters are allowed"
    return None


def _check_integer(value: str) -> str | None:
    return None if _INTEGER.match(value) else "not an integer"


def _check_postal_address(value: str) -> str | None:
    if any(not line.strip() for line in value.split("$")):
        return (
            "lines are separated by '$' and none may be empty (e.g. 'Bât. 4 $ 34090 Montpellier')"
        )
    return None


_SYNTAX_CHECKS: Mapping[str, Callable[[str], str | None]] = {
    SYNTAX_TELEPHONE_NUMBER: _check_telephone,
    SYNTAX_IA5_STRING: _check_ia5,
    SYNTAX_INTEGER: _check_integer,
    SYNTAX_POSTAL_ADDRESS: _check_postal_address,
}
"""Checks by syntax OID, on top of the text check every value gets (Directory String: that only)."""


def check_value(attribute: str, syntax: str | None, value: str) -> None:
    """InvalidInputError, naming the attribute, when ``value`` does not fit the ``syntax``.

    Syntaxes not checked here are left to the server, which refuses what does not fit.
    """
    problem = _check_text(value) if len(value) <= _MAX_VALUE_LENGTH else "too long"
    check = _SYNTAX_CHECKS.get(syntax or "")
    if problem is None and check is not None:
        problem = check(value)
    if problem is not None:
        raise InvalidInputError(f"{attribute}={value!r}: {problem}")


def _editable_name(runtime: Runtime, attribute: str) -> str:
    """The configured spelling of an editable attribute; RefusedError for any other."""
    editable = runtime.config.staff.editable_attributes
    for name in editable:
        if name.lower() == attribute.strip().lower():
            return name
    raise RefusedError(
        f"{attribute!r} is not editable by staff (editable: {', '.join(editable) or 'none'})"
    )


def parse_assignments(runtime: Runtime, pairs: Sequence[str]) -> dict[str, list[str]]:
    """``ATTR=VALUE`` pairs -> attribute -> new values (repeat ATTR for several; ``ATTR=`` clears).

    Every pair is checked (name editable, value fitting the server's syntax) before anything
    is written: one bad pair and nothing changes.
    """
    if not pairs:
        raise InvalidInputError("give at least one ATTR=VALUE (ATTR= removes the attribute)")
    parsed: list[tuple[str, str]] = []
    for pair in pairs:
        name, sign, value = pair.partition("=")
        if not sign or not name.strip():
            raise InvalidInputError(f"{pair!r}: expected ATTR=VALUE")
        parsed.append((_editable_name(runtime, name), value.strip()))
    syntaxes = runtime.directory.subschema().syntaxes
    targets: dict[str, list[str]] = {}
    for name, value in parsed:
        values = targets.setdefault(name, [])
        if value:
            check_value(name, syntaxes.get(name.lower()), value)
            values.append(value)
    return targets


def _editable_values(runtime: Runtime, account: Account) -> dict[str, list[str]]:
    return {name: account.values(name) for name in runtime.config.staff.editable_attributes}


def show_directory_data(runtime: Runtime, key: str) -> DirectoryData:
    """The editable attributes of a staff member's entry (``umacct directory show``)."""
    account = _staff_account(runtime, key, runtime.config.staff.editable_attributes)
    return DirectoryData(account.identifier, _editable_values(runtime, account), [])


def set_directory_data(
    runtime: Runtime, key: str, pairs: Sequence[str], *, dry_run: bool = False
) -> DirectoryData:
    """Change editable attributes of a staff member's entry in one modify (``directory set``)."""
    editable = runtime.config.staff.editable_attributes
    account = _staff_account(runtime, key, editable)
    change = PlannedChange(account, parse_assignments(runtime, pairs))
    differences = apply_change(runtime, change, command="directory set", dry_run=dry_run)
    after = _changed(runtime, change, editable, dry_run=dry_run) if differences else account
    return DirectoryData(after.identifier, _editable_values(runtime, after), sorted(differences))
