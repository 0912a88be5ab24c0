"""The directory filters of the accounts each lifecycle step may concern (sweep and purge).

Each group of accounts is found with a server-side filter on an ordered date attribute (the
profile's end of activity, ppolicy's ``pwdEndTime``), so the cost follows the number of
accounts due, not the directory's size (README, "Performance and directory indexes"). The
sweep and the purge both use them; neither imports the other for them. Each takes the
configuration and the day only.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from umacct.config import Config, ProfileConfig
from umacct.directory.escape import (
    filter_and,
    filter_eq,
    filter_ge,
    filter_le,
    filter_not,
    filter_or,
    filter_prefix,
    filter_present,
)
from umacct.policy import supann_date_bound, to_generalized_time
from umacct.policy.dates import ONE_DAY

GRACE_PREFIX = "{COMPTE}A:SupannSursis:"
EXPIRED_PREFIX = "{COMPTE}I:SupannExpire:"
DELETION_PREFIX = "{COMPTE}I:SupannSupprCompte:"


def _time(config: Config, day: date) -> str:
    """GeneralizedTime of ``day`` 00:00 local (``pwdEndTime`` bounds)."""
    zone = ZoneInfo(config.policy.timezone)
    return to_generalized_time(datetime(day.year, day.month, day.day, tzinfo=zone))


def _end_filter(profile: ProfileConfig, bound: str, *, upper: bool) -> str:
    """The end-date test of a profile, ordered on its date attribute.

    A composite value (``[datefin=...]``) cannot be ordered by the server: its holders are
    all looked at.
    """
    if profile.end_date_match is not None:
        return filter_present(profile.end_date_attribute)
    if upper:
        return filter_le(profile.end_date_attribute, bound)
    return filter_ge(profile.end_date_attribute, bound)


def suspension_filter(config: Config, as_of: date) -> str:
    """Accounts whose end of activity is before ``as_of`` and that are not in grace or later."""
    state = config.attributes.state_date
    by_profile = [
        filter_and(
            filter_eq(config.directory.profile_attribute, key),
            _end_filter(profile, supann_date_bound(as_of - ONE_DAY, upper=True), upper=True),
        )
        for key, profile in config.profiles.items()
    ]
    return filter_and(
        filter_or(*by_profile),
        filter_not(filter_prefix(state, GRACE_PREFIX)),
        filter_not(filter_prefix(state, EXPIRED_PREFIX)),
        filter_not(filter_prefix(state, DELETION_PREFIX)),
    )


def grace_filter(config: Config, as_of: date) -> str:
    """Accounts in grace whose expiry is within the warning or notice period (or past).

    Also those with no ``pwdEndTime`` at all (a grace written by another tool): the directory
    enforces nothing for them yet, so the tool must look at their dates.
    """
    policy = config.policy
    ahead = max([*policy.warn_days_before_expiry, policy.minimum_notice_days])
    horizon = as_of + timedelta(days=ahead)
    return filter_and(
        filter_prefix(config.attributes.state_date, GRACE_PREFIX),
        filter_or(
            filter_le("pwdEndTime", _time(config, horizon)),
            filter_not(filter_present("pwdEndTime")),
        ),
    )


def purge_filter(config: Config, as_of: date) -> str:
    """Expired accounts whose expiry is at least ``purge_after_days`` old."""
    oldest = as_of - timedelta(days=config.policy.purge_after_days)
    state = config.attributes.state_date
    return filter_or(
        filter_and(
            filter_prefix(state, EXPIRED_PREFIX), filter_le("pwdEndTime", _time(config, oldest))
        ),
        filter_prefix(state, DELETION_PREFIX),
    )


def reactivation_filter(config: Config, as_of: date) -> str:
    """Accounts in grace or expired whose end of activity moved to ``as_of`` or later."""
    state = config.attributes.state_date
    by_profile = [
        filter_and(
            filter_eq(config.directory.profile_attribute, key),
            _end_filter(profile, supann_date_bound(as_of, upper=False), upper=False),
        )
        for key, profile in config.profiles.items()
    ]
    return filter_and(
        filter_or(*by_profile),
        filter_or(
            filter_prefix(state, GRACE_PREFIX),
            filter_prefix(state, EXPIRED_PREFIX),
            filter_prefix(state, DELETION_PREFIX),
        ),
    )


def steps_filter(config: Config, as_of: date) -> str:
    """One OR of the suspension, reactivation, grace and purge filters (one search, not four)."""
    return filter_or(
        suspension_filter(config, as_of),
        reactivation_filter(config, as_of),
        grace_filter(config, as_of),
        purge_filter(config, as_of),
    )
