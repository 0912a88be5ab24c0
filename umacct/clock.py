"""The clock, injected everywhere a service needs "now" (tests and ``--as-of`` fix it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
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
