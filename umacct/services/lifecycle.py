"""Departure: the states an account goes through, and ``suspend`` and ``extend``.

The transitions (grace, expired, active again) are built here once and used by the manual
commands and by the daily sweep alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from umacct.config import ProfileConfig
from umacct.errors import InvalidInputError, RefusedError
from umacct.mail.sender import MailRequest
from umacct.policy import (
    ActionKind,
    Stage,
    active_states,
    expired_states,
    expiry_instant,
    grace_states,
    replace_state_dates,
    replace_statuses,
    to_generalized_time,
    to_supann_date,
)
from umacct.policy import (
    extend as policy_extend,
)
from umacct.services.accounts import (
    DEPARTURE_NOTICE,
    Account,
    account_facts,
    account_named,
    departure_key,
    evaluate_account,
    profile_of,
    rules_for,
)
from umacct.services.changes import PlannedChange, apply_change
from umacct.tokens import TokenPurpose

if TYPE_CHECKING:
    from umacct.policy import Evaluation, ResourceState
    from umacct.services.runtime import Runtime
    from umacct.services.steps import Step


SAVED_AFFILIATIONS = "affiliations"
SAVED_PRIMARY_AFFILIATION = "primary_affiliation"
SAVED_FORWARDING = "forwarding"
SAVED_STATE_DATES = "state_dates"
SAVED_STATES = "states"
SAVED_END_OF_ACTIVITY = "end_of_activity"
"""The end-date attribute's values before a suspension wrote its own (``suspend
--end-of-activity``): an undone suspension puts them back, or the next sweep suspends again."""
WARNING_NOTICE = "expiry_warning"
DEPARTURE_MAIL_KINDS = ("grace_started", "expiry_warning")
"""Mail that an undone suspension makes obsolete, dropped from the queue."""


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
    runtime: Runtime,
    account: Account,
    action: str,
    message: str,
    *,
    changed: bool,
    evaluated: tuple[ProfileConfig, Evaluation] | None = None,
) -> AccountOutcome:
    """Describe an account as it stands after ``action`` (re-evaluated for today).

    ``evaluated``: the account's evaluation for a profile, made since the last change (it
    is used when that is the account's profile).
    """
    state = account.account_state
    profile = runtime.config.profiles.get(account.profile_key or "")
    evaluation = None
    if evaluated is not None and profile is not None and evaluated[0] is profile:
        evaluation = evaluated[1]
    elif profile:
        evaluation = evaluate_account(runtime, account, profile)
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


def _done(step: Step, runtime: Runtime) -> AccountOutcome:
    result = step.run(runtime)
    assert result is not None  # the transitions' steps always end with an outcome
    return result


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
    """An end of activity as SUPANN date attributes hold it: the date at ``000000Z``."""
    return to_supann_date(end_of_activity)


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


def save_for_reinstatement(runtime: Runtime, account: Account, profile: ProfileConfig) -> None:
    """Keep the affiliations, state and end date the account had before its departure."""
    names = runtime.config.attributes
    now = runtime.clock.now()
    runtime.store.save_values(
        account.identifier,
        {
            SAVED_AFFILIATIONS: account.values(names.affiliation),
            SAVED_PRIMARY_AFFILIATION: account.values(names.primary_affiliation),
            SAVED_STATE_DATES: account.values(names.state_date),
            SAVED_STATES: account.values(names.state),
            SAVED_END_OF_ACTIVITY: account.values(profile.end_date_attribute),
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
    notice: bool = True,
) -> AccountOutcome:
    """Start the grace period, tell the person, and send any warning already due.

    The grace ends on the profile's date, or later so that the person gets the minimum
    notice from today ("late: notice period"). ``notice=False`` (``suspend --no-notice``)
    cuts at the profile's date: an account whose grace is already over then expires at once.
    """
    from umacct.services.steps import grace_step

    step = grace_step(
        runtime, account, profile, end_of_activity,
        command=command, dry_run=dry_run, details=details, notice=notice,
    )  # fmt: skip
    return _done(step, runtime)


def lengthen_for_notice(
    runtime: Runtime,
    account: Account,
    profile: ProfileConfig,
    evaluation: Evaluation,
    *,
    command: str,
    dry_run: bool,
    details: dict[str, object],
) -> AccountOutcome:
    """An account in grace never told, with fewer days left than the notice: tell it now.

    Its grace end moves to ``today + minimum_notice_days`` (state and ``pwdEndTime``), and it
    gets the departure mail and any warning due, in this run.
    """
    from umacct.services.steps import notice_step

    step = notice_step(
        runtime, account, profile, evaluation, command=command, dry_run=dry_run, details=details
    )
    return _done(step, runtime)


def departure_mail(account: Account, profile: ProfileConfig, grace_end: date) -> MailRequest:
    """The departure mail of ``account``, whose grace period ends on ``grace_end``."""
    return MailRequest(
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


def departure_told(
    runtime: Runtime, account: Account, profile: ProfileConfig, end_of_activity: date
) -> tuple[ProfileConfig, Evaluation]:
    """Once the departure mail is sent or queued: the notice recorded, then any warning due.

    The notice counts from today. Returns the account's evaluation made once the notice is
    recorded (``outcome`` takes it).
    """
    now = runtime.clock.now()
    key = departure_key(end_of_activity)
    recorded = runtime.store.record_notice(account.identifier, DEPARTURE_NOTICE, key, now)
    # Just recorded, the notice is the one a look-up would find: from now's day.
    day = now.astimezone(ZoneInfo(runtime.config.policy.timezone)).date()
    evaluation = evaluate_account(runtime, account, profile, (key, day) if recorded else None)
    if evaluation.action_due is not None and evaluation.action_due.kind is ActionKind.WARN:
        send_warning(
            runtime, account, evaluation, evaluation.action_due.warn_days or 0, dry_run=False
        )
    return profile, evaluation


def send_warning(
    runtime: Runtime, account: Account, evaluation: Evaluation, days: int, *, dry_run: bool
) -> AccountOutcome | None:
    """The expiry warning for ``days`` days, once per grace end (None: already sent)."""
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
    extendable = evaluation.extension_allowed and profile.extendable
    link: dict[str, str] = {}
    if extendable:  # the request's link, valid until the grace end; older ones cancelled
        from umacct.services.extensions import issue_extension_link

        link["link"], _ = issue_extension_link(runtime, account.identifier, grace_end)
        link["link_purpose"] = "extension"
    runtime.mailer.send(
        account.identifier,
        "expiry_warning",
        account.identifier,
        {
            "name": account.display_name,
            "account": account.identifier,
            "expiry_date": expires_on.isoformat(),
            "extendable": "yes" if extendable else "no",
        },
        **link,
    )
    runtime.store.record_notice(account.identifier, WARNING_NOTICE, key, runtime.clock.now())
    runtime.audit.append(
        "sweep", account.identifier, {}, "ok", notice=f"expiry warning, {days} days"
    )
    return outcome(runtime, account, "warn", message, changed=True)


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
    from umacct.services.steps import expire_step

    step = expire_step(
        runtime, account, grace_end, command=command, dry_run=dry_run, details=details
    )
    return _done(step, runtime)


# --- commands -------------------------------------------------------------------------------


def suspend(
    runtime: Runtime,
    key: str,
    *,
    end_of_activity: date | None = None,
    reason: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    notice: bool = True,
) -> AccountOutcome:
    """Start an account's grace period (``umacct suspend ACCOUNT``).

    The end of activity is the one given, else the profile's end-date attribute, else
    yesterday. A date still to come is only recorded: the daily sweep starts the grace
    period the day after. Repeating the command changes nothing; another end of activity for
    an account in grace moves its grace period (and tells the person). ``notice=False``
    (``--no-notice``) cuts at the profile's date, without the minimum notice.
    """
    account = account_named(runtime, key)
    profile = profile_of(account, runtime.config)
    today = runtime.today()
    stage = account.stage
    if stage in (Stage.GRACE, Stage.EXPIRED):
        return _already_departed(
            runtime, account, profile, end_of_activity, reason=reason, dry_run=dry_run
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
    if not notice:
        details["no_notice"] = True
    return enter_grace(
        runtime,
        account,
        profile,
        chosen,
        command="suspend",
        dry_run=dry_run,
        details=details,
        notice=notice,
    )


def _already_departed(
    runtime: Runtime,
    account: Account,
    profile: ProfileConfig,
    end_of_activity: date | None,
    *,
    reason: str | None,
    dry_run: bool,
) -> AccountOutcome:
    """``suspend`` on an account in grace or expired: nothing, or the grace moved to a new date."""
    state = account.account_state
    since = state.start if state else None
    since_words = since.isoformat() if since else "an unknown date"
    current = since - timedelta(days=1) if since else None
    if end_of_activity is None or end_of_activity == current:
        return outcome(
            runtime,
            account,
            "none",
            f"already {account.stage.value} since {since_words}",
            changed=False,
        )
    if account.stage is Stage.EXPIRED:
        raise RefusedError(
            f"{account.identifier} expired on {since_words}: a new end of activity cannot "
            "reopen it here; for a person who is back, run `umacct create` (returning person), "
            "or `umacct extend --force` to give it a grace period again"
        )
    if end_of_activity >= runtime.today():
        raise RefusedError(
            f"{account.identifier} is in its grace period since {since_words}; the end of "
            f"activity {end_of_activity.isoformat()} is still to come: run `umacct unsuspend "
            f"{account.identifier} --reason ...` and record the new date"
        )
    details: dict[str, object] = {
        "previous_end_of_activity": current.isoformat() if current else None
    }
    if reason:
        details["reason"] = reason
    return enter_grace(
        runtime,
        account,
        profile,
        end_of_activity,
        command="suspend",
        dry_run=dry_run,
        details=details,
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
    account = account_named(runtime, key)
    profile = profile_of(account, runtime.config)
    rules = rules_for(account.profile_key or "", profile)
    facts = account_facts(runtime, account)
    grant = policy_extend(
        rules,
        facts,
        runtime.today(),
        force=force,
        minimum_notice_days=runtime.config.policy.minimum_notice_days,
    )
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
    if not dry_run:  # a granted extension ends the links that asked for one
        runtime.tokens.cancel(account.identifier, [TokenPurpose.EXTENSION])
    after = change.simulate(runtime.config)
    return outcome(
        runtime,
        after,
        "extend",
        f"grace period extended until {grant.grace_end.isoformat()}",
        changed=True,
    )
