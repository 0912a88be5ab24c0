"""Instants as the state stores them (SQLite or the directory branch): UTC ISO 8601 text of a fixed width."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def to_stored_time(instant: datetime) -> str:
    """UTC ISO 8601 text with microseconds: fixed width, so text order is time order."""
    if instant.tzinfo is None:
        raise ValueError(f"a timezone-aware datetime is required, got {instant!r}")
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def from_stored_time(text: str | None) -> datetime | None:
    """The instant ``to_stored_time`` wrote, or None."""
    return None if text is None else datetime.fromisoformat(text)


def read_stored_time(value: object) -> datetime | None:
    """The instant of a record's value (the directory branch's JSON); None if it holds none."""
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


class StoredTimes:
    """``to_stored_time`` of each instant, worked out once (a batch's tokens share two)."""

    def __init__(self) -> None:
        # By offset too: two times of one zone that differ only by ``fold`` (the hour a
        # clock goes back) are equal as datetimes, an hour apart as instants.
        self._texts: dict[tuple[datetime, timedelta | None], str] = {}

    def __getitem__(self, instant: datetime) -> str:
        key = (instant, instant.utcoffset())
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = to_stored_time(instant)
        return text
