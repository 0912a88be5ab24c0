"""Dates and durations written out in French and in English, without the C locale.

The system locale of a server is rarely ``fr_FR`` and ``strftime`` depends on it, so mail
text is built from our own month names.
"""

from __future__ import annotations

from datetime import date

from umacct.errors import InvalidInputError

_FRENCH_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip
_ENGLISH_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def french_date(day: date) -> str:
    """``26 novembre 2026``; the first of the month is ``1er`` as French usage wants."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {_FRENCH_MONTHS[day.month - 1]} {day.year}"


def english_date(day: date) -> str:
    """``26 November 2026``."""
    return f"{day.day} {_ENGLISH_MONTHS[day.month - 1]} {day.year}"


def parse_iso_date(text: str, name: str) -> date:
    """Read a ``YYYY-MM-DD`` mail parameter, or raise InvalidInputError naming it."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"mail parameter {name!r}: expected a date YYYY-MM-DD, got {text!r}"
        ) from None


def french_duration(seconds: int) -> str:
    """A link lifetime in French: ``24 heures``, ``1 heure``, ``30 minutes``."""
    value, in_hours = _hours_or_minutes(seconds)
    word = "heure" if in_hours else "minute"
    return f"{value} {word if value == 1 else word + 's'}"


def english_duration(seconds: int) -> str:
    """A link lifetime in English: ``24 hours``, ``1 hour``, ``30 minutes``."""
    value, in_hours = _hours_or_minutes(seconds)
    word = "hour" if in_hours else "minute"
    return f"{value} {word if value == 1 else word + 's'}"


def _hours_or_minutes(seconds: int) -> tuple[int, bool]:
    # Link lifetimes are 1 minute to 24 hours (config.py checks it): no days needed.
    if seconds % 3600 == 0:
        return seconds // 3600, True
    return max(1, seconds // 60), False
