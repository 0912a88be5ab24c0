"""Departure: the states an account goes through, and ``suspend`` and ``extend``.

The transitions (grace, expired, active again) are built here once and used by the manual
commands and by the daily sweep alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from umacct.config import ProfileConfig
from umacct.errors import InvalidInputError, RefusedError
from umacct.policy import (
    AccountFacts,
    ActionKind,
    Stage,
    active_states,
    evaluate,
    expired_states,
    expiry_instant,
    grace_states,
    replace_state_dates,
    replace_statuses,
    to_generalized_time,
)
from umacct.policy import (
    extend as policy_extend,
)
from umacct.services.accounts import (
    Account,
    evaluate_account,
    find_account,
    profile_of,
    recovery_address,
    rules_for,
)
from umacct.services.changes import PlannedChange, apply_change

if TYPE_CHECKING:
    from umacct.policy import ResourceState
    from umacct.services.runtime import Runtime

SAVED_AFFILIATIONS = "affiliations"
SAVED_PRIMARY_AFFILIATION = "primary_affiliation"
SAVED_FORWARDING = "forwarding"


@dataclass(frozen=True)
class AccountOutcome:
    """What a lifecycle command did (or would do) to one account."""

    account: str
    profile: str | None
    state: str | None
    substate: str | None
    end_of_activity: date | None
    grace_end: date | None
    extendable: bool
    extensions: int | None
    changed: bool
    action: str
    message: str


def outcome(
    runtime: Runtime, account: Account, action: str, message: str, *, changed: bool
) -> AccountOutcome:
    """Describe an account as it stands after ``action`` (re-evaluated for today)."""
    state = account.account_state
    profile = runtime.config.profiles.get(account.profile_key or "")
    evaluation = evaluate_account(runtime, account, profile) if profile else None
    return AccountOutcome(
        account=account.identifier,
        profile=account.profile_key,
        state=state.state if state else None,
        substate=state.substate if state else None,
        end_of_activity=account.end_of_activity,
        grace_end=evaluation.grace_end if evaluation else None,
        extendable=bool(evaluation and evaluation.extension_allowed),
        extensions=evaluation.extensions_granted if evaluation else None,
        changed=changed,
        action=action,
        message=message,
    )


# --- transitions ----------------------------------------------------------------------------


def state_targets(
    runtime: Runtime, account: Account, states: Sequence[ResourceState]
) -> dict[str, list[str]]:
    """The state attributes of ``account`` with ``states`` in place of their resources' values."""
    names = runtime.config.attributes
    return {
        names.state_date: replace_state_dates(account.values(names.state_date), states),
        names.state: replace_statuses(account.values(names.state), states),
    }


def _end_time(runtime: Runtime, grace_end: date) -> list[str]:
    return [to_generalized_time(expiry_instant(grace_end, runtime.config.policy.timezone))]


def grace_change(
    runtime: Runtime,
    account: Account,
    profile: ProfileConfig,
    end_of_activity: date,
    grace_end: date,
    *,
    record_end_of_activity: bool = False,
) -> PlannedChange:
    """Grace period: limited access until ``grace_end``, the directory refusing binds after it."""
    names = runtime.config.attributes
    in_grace = list(profile.affiliations_in_grace)
    targets = state_targets(runtime, account, grace_states(end_of_activity, grace_end))
    targets["pwdEndTime"] = _end_time(runtime, grace_end)
    targets[names.affiliation] = in_grace
    targets[names.primary_affiliation] = in_grace[:1]
    if record_end_of_activity:
        targets[profile.end_date_attribute] = [end_of_activity_value(runtime, end_of_activity)]
    return PlannedChange(account, targets)


def end_of_activity_value(runtime: Runtime, end_of_activity: date) -> str:
    """An end of activity as GeneralizedTime: midnight starting that day, local time, in UTC."""
    return to_generalized_time(
        expiry_instant(end_of_activity - timedelta(days=1), runtime.config.policy.timezone)
    )


def expired_change(runtime: Runtime, account: Account, grace_end: date) -> PlannedChange:
    """Expired: no login, no mail, no forwarding (kept aside for a reinstatement)."""
    targets = state_targets(runtime, account, expired_states(grace_end))
    targets["pwdEndTime"] = _end_time(runtime, grace_end)
    targets[runtime.config.attributes.forwarding] = []
    return PlannedChange(account, targets)


def active_change(
    runtime: Runtime, account: Account, profile: ProfileConfig, since: date
) -> PlannedChange:
    """Active again: the end of activity moved, the saved affiliations come back."""
    names = runtime.config.attributes
    saved = runtime.store.saved_values(account.identifier, SAVED_AFFILIATIONS)
    saved_primary = runtime.store.saved_values(account.identifier, SAVED_PRIMARY_AFFILIATION)
    targets = state_targets(runtime, account, active_states(since))
    targets["pwdEndTime"] = []
    targets[names.affiliation] = saved if saved is not None else list(profile.affiliations)
    targets[names.primary_affiliation] = (
        saved_primary if saved_primary is not None else list(profile.affiliations[:1])
    )
    return PlannedChange(account, targets)


def save_for_reinstatement(runtime: Runtime, account: Account) -> None:
    """Keep the affiliations (and forwarding) the account had before its departure."""
    names = runtime.config.attributes
    now = runtime.clock.now()
    runtime.store.save_values(
        account.identifier,
        {
            SAVED_AFFILIATIONS: account.values(names.affiliation),
            SAVED_PRIMARY_AFFILIATION: account.values(names.primary_affiliation),
        },
        now,
    )


def _extendable(profile: ProfileConfig) -> str:
    return "yes" if profile.extendable else "no"


def enter_grace(
    runtime: Runtime,
    account: Account,
    profile: ProfileConfig,
    end_of_activity: date,
    *,
    command: str,
    dry_run: bool,
    details: dict[str, object],
) -> AccountOutcome:
    """Start the grace period (and expire at once if it is already over)."""
    rules = rules_for(account.profile_key or "", profile)
    facts = AccountFacts(Stage.ACTIVE, end_of_activity)
    policy = runtime.config.policy
    evaluation = evaluate(
        rules, facts, runtime.today(), purge_after_days=policy.purge_after_days, warn_days=()
    )
    grace_end = evaluation.grace_end
    assert grace_end is not None  # an end of activity always gives a grace end
    change = grace_change(
        runtime,
        account,
        profile,
        end_of_activity,
        grace_end,
        record_end_of_activity=account.end_of_activity != end_of_activity,
    )
    if not dry_run:
        save_for_reinstatement(runtime, account)
    apply_change(runtime, change, command=command, dry_run=dry_run, details=details)
    if not dry_run:
        runtime.tokens.cancel(account.identifier)
    expire_too = (
        evaluation.action_due is not None
        and evaluation.action_due.kind is ActionKind.SUSPEND_AND_EXPIRE
    )
    if expire_too:
        refreshed = change.simulate(runtime.config)
        return expire(
            runtime, refreshed, grace_end, command=command, dry_run=dry_run, details=details
        )
    if not dry_run:
        runtime.mailer.send(
            account.identifier,
            "grace_started",
            account.identifier,
            {
                "name": account.display_name,
                "account": account.identifier,
                "grace_end_date": grace_end.isoformat(),
                "extendable": _extendable(profile),
            },
        )
    after = change.simulate(runtime.config)
    return outcome(
        runtime, after, "suspend", f"grace period until {grace_end.isoformat()}", changed=True
    )


def expire(
    runtime: Runtime,
    account: Account,
    grace_end: date,
    *,
    command: str,
    dry_run: bool,
    details: dict[str, object],
) -> AccountOutcome:
    """End the grace period: login and mail stop; forwarding is removed and kept aside."""
    names = runtime.config.attributes
    forwarding = account.values(names.forwarding)
    if forwarding and not dry_run:
        runtime.store.save_values(
            account.identifier, {SAVED_FORWARDING: forwarding}, runtime.clock.now()
        )
    change = expired_change(runtime, account, grace_end)
    apply_change(runtime, change, command=command, dry_run=dry_run, details=details)
    expired_on = grace_end + timedelta(days=1)
    if not dry_run:
        runtime.tokens.cancel(account.identifier)
        recovery = recovery_address(runtime, account)
        if recovery:
            purge_on = expired_on + timedelta(days=runtime.config.policy.purge_after_days)
            runtime.mailer.send(
                account.identifier,
                "expired",
                recovery,
                {
                    "name": account.display_name,
                    "account": account.identifier,
                    "expiry_date": expired_on.isoformat(),
                    "purge_date": purge_on.isoformat(),
                },
            )
    after = change.simulate(runtime.config)
    return outcome(runtime, after, "expire", f"expired on {expired_on.isoformat()}", changed=True)


# --- commands -------------------------------------------------------------------------------


def suspend(
    runtime: Runtime,
    key: str,
    *,
    end_of_activity: date | None = None,
    reason: str | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> AccountOutcome:
    """Start an account's grace period (``umacct suspend ACCOUNT``).

    The end of activity is the one given, else the profile's end-date attribute, else
    today. A date still to come is only recorded: the daily sweep starts the grace period
    the day after. Repeating the command changes nothing.
    """
    account = find_account(runtime.directory, runtime.config, key)
    profile = profile_of(account, runtime.config)
    today = runtime.today()
    stage = account.stage
    if stage in (Stage.GRACE, Stage.EXPIRED):
        state = account.account_state
        since = state.start.isoformat() if state and state.start else "an unknown date"
        return outcome(
            runtime, account, "none", f"already {stage.value} since {since}", changed=False
        )
    if stage is Stage.FOREIGN and not force:
        raise RefusedError(
            f"{account.identifier} is in state {_state_words(account)} set by another tool; "
            "left alone (--force to suspend it anyway)"
        )
    chosen = end_of_activity or account.end_of_activity or today - timedelta(days=1)
    details: dict[str, object] = {"reason": reason} if reason else {}
    if force and stage is Stage.FOREIGN:
        details["forced"] = True
    if chosen >= today:
        return _schedule(runtime, account, profile, chosen, dry_run=dry_run, details=details)
    return enter_grace(
        runtime, account, profile, chosen, command="suspend", dry_run=dry_run, details=details
    )


def _schedule(
    runtime: Runtime,
    account: Account,
    profile: ProfileConfig,
    end_of_activity: date,
    *,
    dry_run: bool,
    details: dict[str, object],
) -> AccountOutcome:
    change = PlannedChange(
        account, {profile.end_date_attribute: [end_of_activity_value(runtime, end_of_activity)]}
    )
    differences = apply_change(runtime, change, command="suspend", dry_run=dry_run, details=details)
    start = (end_of_activity + timedelta(days=1)).isoformat()
    after = change.simulate(runtime.config)
    return outcome(
        runtime,
        after,
        "schedule",
        f"end of activity {end_of_activity.isoformat()} recorded: the grace period starts on {start}",
        changed=bool(differences),
    )


def _state_words(account: Account) -> str:
    state = account.account_state
    return f"{state.state}:{state.substate}" if state else "unknown"


def extend(
    runtime: Runtime,
    key: str,
    *,
    reason: str | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> AccountOutcome:
    """Add ``extension_months`` to an account's grace period (``umacct extend ACCOUNT``).

    Refused (RefusedError, exit 77) with the reason in words when the profile is not
    extendable, the account is not in its grace period, or the maximum is reached; ``force``
    lets an administrator extend an expired account.
    """
    account = find_account(runtime.directory, runtime.config, key)
    profile = profile_of(account, runtime.config)
    rules = rules_for(account.profile_key or "", profile)
    facts = account.facts()
    grant = policy_extend(rules, facts, runtime.today(), force=force)
    start = account.account_state.start if account.account_state else None
    if facts.stage is Stage.GRACE and start is not None:
        end_of_activity = start - timedelta(days=1)
    elif facts.end_of_activity is not None:
        end_of_activity = facts.end_of_activity
    else:
        raise InvalidInputError(
            f"{account.identifier}: the end of activity is unknown; cannot extend"
        )
    change = grace_change(runtime, account, profile, end_of_activity, grant.grace_end)
    details: dict[str, object] = {"previous_grace_end": grant.previous_grace_end.isoformat()}
    if reason:
        details["reason"] = reason
    if force:
        details["forced"] = True
    apply_change(runtime, change, command="extend", dry_run=dry_run, details=details)
    after = change.simulate(runtime.config)
    return outcome(
        runtime,
        after,
        "extend",
        f"grace period extended until {grant.grace_end.isoformat()}",
        changed=True,
    )
