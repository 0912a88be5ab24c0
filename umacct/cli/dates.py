"""Dates typed on the command line."""

from __future__ import annotations

from datetime import date

from umacct.errors import InvalidInputError


def parse_day(text: str | None, option: str) -> date | None:
    """A ``YYYY-MM-DD`` (or ``DD/MM/YYYY``) option value; None when the option was not given."""
    if text is None:
        return None
    from umacct.intake import parse_date

    try:
        return parse_date(text)
    except InvalidInputError as error:
        raise InvalidInputError(f"{option}: {error.message}") from None
