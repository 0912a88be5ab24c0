"""The clock, injected everywhere a service needs "now" (tests and ``--as-of`` fix it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    """Tells the current instant, always timezone-aware."""

    def now(self) -> datetime:
        """The current instant, in UTC."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        """The current instant, in UTC."""
        return datetime.now(UTC)


@dataclass(frozen=True)
class FixedClock:
    """A clock that always says the same instant (tests, ``--as-of``)."""

    instant: datetime

    def now(self) -> datetime:
        """The fixed instant."""
        return self.instant


def local_today(clock: Clock, timezone: str) -> date:
    """Today's date in the policy's time zone."""
    return clock.now().astimezone(ZoneInfo(timezone)).date()


@dataclass(frozen=True)
class ShiftedClock:
    """Another clock moved by a fixed offset: it keeps running (``--as-of``)."""

    base: Clock
    offset: timedelta

    def now(self) -> datetime:
        """The base clock's instant, moved by the offset."""
        return self.base.now() + self.offset


def clock_on_day(clock: Clock, day: date, timezone: str) -> Clock:
    """A clock that says ``day`` at the time of day ``clock`` says now (in ``timezone``).

    The target is placed on the local wall clock, so that a day across a change of daylight
    saving time keeps its date; the offset is taken between instants (in UTC), since two
    datetimes of one zone subtract as wall times.
    """
    zone = ZoneInfo(timezone)
    now = clock.now().astimezone(zone)
    if now.date() == day:
        return clock
    moved = datetime.combine(day, now.timetz().replace(tzinfo=None), tzinfo=zone)
    return ShiftedClock(clock, moved.astimezone(UTC) - now.astimezone(UTC))
