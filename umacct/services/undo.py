"""Undoing a suspension: ``umacct unsuspend ACCOUNT`` puts the account back as it was."""

from __future__ import annotations

from typing import TYPE_CHECKING

from umacct.config import ProfileConfig
from umacct.errors import NotFoundError, RefusedError
from umacct.policy import Stage
from umacct.services.accounts import Account, check_account_key, find_account, profile_of
from umacct.services.changes import PlannedChange, apply_change
from umacct.services.lifecycle import (
    DEPARTURE_MAIL_KINDS,
    SAVED_END_OF_ACTIVITY,
    SAVED_FORWARDING,
    SAVED_STATE_DATES,
    SAVED_STATES,
    AccountOutcome,
    active_change,
    outcome,
)

if TYPE_CHECKING:
    from umacct.services.runtime import Runtime


def unsuspend(runtime: Runtime, key: str, *, reason: str, dry_run: bool = False) -> AccountOutcome:
    """Undo a suspension (``umacct unsuspend ACCOUNT``): the account is as before its grace.

    Its state, affiliations and forwarding come back from what the suspension kept aside,
    ``pwdEndTime`` goes, and links and unsent departure mail are cancelled. Refused (77)
    once the account expired, and for a purged one: other commands then apply.
    """
    cleaned = check_account_key(key)
    try:
        account = find_account(runtime.directory, runtime.config, cleaned)
    except NotFoundError:
        if runtime.store.find_purge(cleaned) is not None:
            raise RefusedError(
                f"{cleaned} was purged: `umacct restore {cleaned} --reason ...` puts it back"
            ) from None
        raise
    profile = profile_of(account, runtime.config)
    if account.stage is not Stage.GRACE:
        state = account.account_state
        since = f" since {state.start.isoformat()}" if state and state.start else ""
        extra = (
            "; `umacct extend --force` gives it a grace period again, `umacct create` takes a "
            "returning person back"
            if account.stage is Stage.EXPIRED
            else ""
        )
        raise RefusedError(
            f"{account.identifier} is not in its grace period (state: "
            f"{account.stage.value}{since}): nothing to undo{extra}"
        )
    change = reinstated_change(runtime, account, profile)
    apply_change(runtime, change, command="unsuspend", dry_run=dry_run, details={"reason": reason})
    if not dry_run:
        runtime.tokens.cancel(account.identifier)
        runtime.mail_queue_drop(account.identifier, DEPARTURE_MAIL_KINDS)
    after = change.simulate(runtime.config)
    return outcome(runtime, after, "unsuspend", "suspension undone: active as before", changed=True)


def reinstated_change(runtime: Runtime, account: Account, profile: ProfileConfig) -> PlannedChange:
    """The account as the suspension found it: kept state, affiliations and forwarding."""
    names = runtime.config.attributes
    store = runtime.store
    change = active_change(runtime, account, profile, runtime.today())
    targets = dict(change.targets)
    saved_dates = store.saved_values(account.identifier, SAVED_STATE_DATES)
    saved_states = store.saved_values(account.identifier, SAVED_STATES)
    if saved_dates:
        targets[names.state_date] = saved_dates
        targets[names.state] = saved_states or []
    forwarding = store.saved_values(account.identifier, SAVED_FORWARDING)
    if forwarding and not account.values(names.forwarding):
        targets[names.forwarding] = forwarding
    end_dates = store.saved_values(account.identifier, SAVED_END_OF_ACTIVITY)
    if end_dates is not None:
        targets[profile.end_date_attribute] = end_dates
    return PlannedChange(account, targets)
