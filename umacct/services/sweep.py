"""The daily sweep: suspend what is due, warn, expire, reactivate, list or purge.

Each group of accounts is found with a server-side filter on an ordered date attribute
(the profile's end of activity, ppolicy's ``pwdEndTime``), so the cost follows the number
of accounts due, not the directory's size. Running it twice the same day changes nothing.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from umacct.directory.escape import (
    filter_and,
    filter_eq,
    filter_ge,
    filter_le,
    filter_not,
    filter_or,
    filter_prefix,
)
from umacct.errors import UmacctError
from umacct.policy import ActionKind, Evaluation, Stage, to_generalized_time
from umacct.services.accounts import Account, evaluate_account, iter_accounts, profile_of
from umacct.services.arrivals import arrival_day, arrivals_due, arrive
from umacct.services.changes import apply_change
from umacct.services.lifecycle import (
    AccountOutcome,
    active_change,
    enter_grace,
    expire,
    outcome,
)
from umacct.services.purge import purge_account
from umacct.services.runtime import Runtime

GRACE_PREFIX = "{COMPTE}A:SupannSursis:"
EXPIRED_PREFIX = "{COMPTE}I:SupannExpire:"
WARNING_NOTICE = "expiry_warning"


@dataclass
class SweepSummary:
    """Counts by action, and the accounts that failed (the sweep goes on after a failure)."""

    as_of: date
    dry_run: bool
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    def add(self, result: AccountOutcome) -> None:
        """Count one account's outcome."""
        self.counts[result.action] += 1


def _midnight(runtime: Runtime, day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(runtime.config.policy.timezone))


def _time(runtime: Runtime, day: date, *, last_second: bool = False) -> str:
    """GeneralizedTime of ``day`` 00:00 local (or the second before, for ``<=`` bounds)."""
    instant = _midnight(runtime, day) - (timedelta(seconds=1) if last_second else timedelta())
    return to_generalized_time(instant)


def suspension_filter(runtime: Runtime, as_of: date) -> str:
    """Accounts whose end of activity is before ``as_of`` and that are not in grace or later."""
    config = runtime.config
    state = config.attributes.state_date
    by_profile = [
        filter_and(
            filter_eq(config.directory.profile_attribute, key),
            filter_le(profile.end_date_attribute, _time(runtime, as_of, last_second=True)),
        )
        for key, profile in config.profiles.items()
    ]
    return filter_and(
        filter_or(*by_profile),
        filter_not(filter_prefix(state, GRACE_PREFIX)),
        filter_not(filter_prefix(state, EXPIRED_PREFIX)),
    )


def grace_filter(runtime: Runtime, as_of: date) -> str:
    """Accounts in grace whose expiry is within the longest warning period (or past)."""
    horizon = as_of + timedelta(days=max(runtime.config.policy.warn_days_before_expiry, default=0))
    return filter_and(
        filter_prefix(runtime.config.attributes.state_date, GRACE_PREFIX),
        filter_le("pwdEndTime", _time(runtime, horizon)),
    )


def purge_filter(runtime: Runtime, as_of: date) -> str:
    """Expired accounts whose expiry is at least ``purge_after_days`` old."""
    oldest = as_of - timedelta(days=runtime.config.policy.purge_after_days)
    return filter_and(
        filter_prefix(runtime.config.attributes.state_date, EXPIRED_PREFIX),
        filter_le("pwdEndTime", _time(runtime, oldest)),
    )


def reactivation_filter(runtime: Runtime, as_of: date) -> str:
    """Accounts in grace or expired whose end of activity moved to ``as_of`` or later."""
    config = runtime.config
    state = config.attributes.state_date
    by_profile = [
        filter_and(
            filter_eq(config.directory.profile_attribute, key),
            filter_ge(profile.end_date_attribute, _time(runtime, as_of)),
        )
        for key, profile in config.profiles.items()
    ]
    return filter_and(
        filter_or(*by_profile),
        filter_or(filter_prefix(state, GRACE_PREFIX), filter_prefix(state, EXPIRED_PREFIX)),
    )


def due_accounts(runtime: Runtime, as_of: date) -> Iterator[Account]:
    """Every account some step of the sweep may concern, each once (arrivals first)."""
    seen: set[str] = set()
    for account in arrivals_due(runtime):
        seen.add(account.dn.lower())
        yield account
    for search_filter in (
        suspension_filter(runtime, as_of),
        reactivation_filter(runtime, as_of),
        grace_filter(runtime, as_of),
        purge_filter(runtime, as_of),
    ):
        for account in iter_accounts(runtime.directory, runtime.config, search_filter):
            if account.dn.lower() not in seen:
                seen.add(account.dn.lower())
                yield account


def sweep(
    runtime: Runtime, summary: SweepSummary, *, purge: bool = False
) -> Iterator[AccountOutcome]:
    """Run the daily sweep for ``summary.as_of``; yield one outcome per account acted on."""
    with contextlib.ExitStack() as stack:
        if not summary.dry_run:
            stack.enter_context(runtime.store.job_lock("sweep"))
            stack.enter_context(runtime.audit.group_commit())
        for account in due_accounts(runtime, summary.as_of):
            try:
                result = _sweep_one(runtime, account, summary.dry_run, purge=purge)
            except UmacctError as error:
                if error.exit_code in (69, 75):
                    raise  # the directory or the store is gone: stop, a rerun completes the work
                summary.errors.append(f"{account.identifier}: {error.message}")
                continue
            if result is not None:
                summary.add(result)
                yield result


def _sweep_one(
    runtime: Runtime, account: Account, dry_run: bool, *, purge: bool
) -> AccountOutcome | None:
    arrival = arrival_day(account) if account.stage is Stage.PRECREATED else None
    if arrival is not None and arrival <= runtime.today():
        return arrive(runtime, account, dry_run=dry_run)
    if account.stage is Stage.FOREIGN:
        return outcome(
            runtime, account, "skipped", "state set by another tool: left alone", changed=False
        )
    profile = profile_of(account, runtime.config)
    evaluation = evaluate_account(runtime, account, profile)
    action = evaluation.action_due
    if action is None:
        return None
    details: dict[str, object] = {"sweep": runtime.today().isoformat()}
    kind = action.kind
    if kind in (ActionKind.SUSPEND, ActionKind.SUSPEND_AND_EXPIRE):
        assert account.end_of_activity is not None
        return enter_grace(
            runtime,
            account,
            profile,
            account.end_of_activity,
            command="sweep",
            dry_run=dry_run,
            details=details,
        )
    if kind is ActionKind.EXPIRE:
        assert evaluation.grace_end is not None
        return expire(
            runtime,
            account,
            evaluation.grace_end,
            command="sweep",
            dry_run=dry_run,
            details=details,
        )
    if kind is ActionKind.WARN:
        return _warn(runtime, account, evaluation, action.warn_days or 0, dry_run=dry_run)
    if kind is ActionKind.REACTIVATE:
        change = active_change(runtime, account, profile, runtime.today())
        apply_change(runtime, change, command="sweep", dry_run=dry_run, details=details)
        return outcome(
            runtime, account, "reactivate", "end of activity moved: active again", changed=True
        )
    if kind is ActionKind.PURGE:
        if purge:
            return purge_account(runtime, account, dry_run=dry_run)
        return outcome(runtime, account, "purgeable", "purgeable (run with --purge)", changed=False)
    return None


def _warn(
    runtime: Runtime, account: Account, evaluation: Evaluation, days: int, *, dry_run: bool
) -> AccountOutcome | None:
    grace_end = evaluation.grace_end
    assert grace_end is not None
    key = f"{grace_end.isoformat()}:{days}"
    if runtime.store.has_notice(account.identifier, WARNING_NOTICE, key):
        return None
    expires_on = grace_end + timedelta(days=1)
    message = f"warned: login and mail stop on {expires_on.isoformat()} ({days}-day notice)"
    if dry_run:
        return outcome(runtime, account, "warn", message, changed=False)
    profile = profile_of(account, runtime.config)
    runtime.mailer.send(
        account.identifier,
        "expiry_warning",
        account.identifier,
        {
            "name": account.display_name,
            "account": account.identifier,
            "expiry_date": expires_on.isoformat(),
            "extendable": "yes" if evaluation.extension_allowed and profile.extendable else "no",
        },
    )
    runtime.store.record_notice(account.identifier, WARNING_NOTICE, key, runtime.clock.now())
    runtime.audit.append(
        "sweep", account.identifier, {}, "ok", notice=f"expiry warning, {days} days"
    )
    return outcome(runtime, account, "warn", message, changed=True)


def suspend_due(runtime: Runtime, *, dry_run: bool = False) -> Iterator[AccountOutcome]:
    """``umacct suspend --due``: start the grace period of every account past its end of activity."""
    for account in iter_accounts(
        runtime.directory, runtime.config, suspension_filter(runtime, runtime.today())
    ):
        if account.stage is Stage.FOREIGN:
            yield outcome(
                runtime, account, "skipped", "state set by another tool: left alone", changed=False
            )
            continue
        profile = profile_of(account, runtime.config)
        assert account.end_of_activity is not None  # the filter only finds accounts that have one
        yield enter_grace(
            runtime,
            account,
            profile,
            account.end_of_activity,
            command="suspend",
            dry_run=dry_run,
            details={},
        )
