"""Dates typed on the command line."""

from __future__ import annotations

from datetime import date

from umacct.errors import InvalidInputError, UsageError


def parse_day(text: str | None, option: str) -> date | None:
    """A ``YYYY-MM-DD`` (or ``DD/MM/YYYY``) option value; None when the option was not given.

    A day that is not one is a bad command line: UsageError (exit 2) naming the option.
    """
    if text is None:
        return None
    from umacct.intake import parse_date

    try:
        return parse_date(text)
    except InvalidInputError as error:
        raise UsageError(f"{option}: {error.message}") from None


def parse_day_or_duration(text: str | None, option: str, today: date) -> date | None:
    """A day (``YYYY-MM-DD``) or a duration back from today (``30d``, as params.py reads it)."""
    if text is None:
        return None
    import re

    from umacct.cli.params import DURATION_SYNTAX, parse_duration

    if re.fullmatch(r"\s*\d{1,9}\s*[smhdwy]?\s*", text.lower()):
        duration = parse_duration(text, option)
        assert duration is not None
        return today - duration
    try:
        return parse_day(text, option)
    except UsageError:
        raise UsageError(
            f"{option}: expected a date (YYYY-MM-DD) or a duration ({DURATION_SYNTAX}), got {text!r}"
        ) from None
