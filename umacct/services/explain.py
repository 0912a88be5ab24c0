"""``umacct explain``: an account's timeline in plain words, and what blocks a login today.

The words come from the same policy evaluation the daily sweep acts on, so what the helpdesk
reads is what the tool will do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from umacct.errors import InvalidInputError
from umacct.policy import (
    AWAITING_DELETION,
    LOCK_SUBSTATES,
    Action,
    ActionKind,
    ResourceState,
    Stage,
    find_state,
    grace_end_for,
)
from umacct.services.accounts import Account, account_named, evaluate_account, rules_for
from umacct.services.helpdesk import instant_of
from umacct.tokens import TokenPurpose

if TYPE_CHECKING:
    from umacct.audit import AuditRecord
    from umacct.config import ProfileConfig
    from umacct.policy import Evaluation
    from umacct.services.runtime import Runtime

HISTORY_AUDIT_ENTRIES = 10


@dataclass(frozen=True)
class TimelineEvent:
    """Something that happened or will happen to the account, on a day."""

    day: date | None
    text: str


@dataclass(frozen=True)
class ProfileActivity:
    """One of the person's profiles: its end, the grace end it alone gives, whether it decides."""

    profile: str
    end_of_activity: date | None
    grace_end: date | None
    extendable: bool
    decides: bool


@dataclass(frozen=True)
class Explanation:
    """The answer to "what happens to this account, and why can't they log in"."""

    account: str
    as_of: date
    profile: str | None
    stage: str
    rule: str
    """The rule that decides the account's end, in words."""
    profiles: list[ProfileActivity]
    """Every profile the person holds (several for a doctoral student who teaches, say)."""
    happened: list[TimelineEvent]
    upcoming: list[TimelineEvent]
    login_blockers: list[str]
    """Why a login fails on ``as_of``; empty when nothing in the tool's view blocks it."""
    can_log_in: bool
    extendable: bool
    """Whether an extension can be granted today (the same answer as ``show``)."""
    extension_refusal: str | None
    """Why not, in words (None when it can, as in ``show``)."""


def _months(count: int) -> str:
    return f"{count} month{'s' if count != 1 else ''}"


def _extension_words(profile: ProfileConfig, evaluation: Evaluation | None) -> str:
    if not profile.extendable:
        return "this profile cannot be extended"
    limit = (
        f"at most {profile.max_extensions} times"
        if profile.max_extensions is not None
        else "with no limit"
    )
    used = evaluation.extensions_granted if evaluation else None
    used_words = f"; {used} used so far" if used else ""
    words = f"it can be extended by {_months(profile.extension_months)} on request ({limit}{used_words})"
    if evaluation is None:
        return words
    if evaluation.extension_allowed:
        return f"{words}; an extension can be asked now"
    return f"{words}; not now: {evaluation.extension_refusal}"


def _end_of_activity(account: Account) -> date | None:
    """The end of activity: the day before the grace state started, else the directory's date."""
    state = account.account_state
    if account.stage is Stage.GRACE and state is not None and state.start is not None:
        return state.start - timedelta(days=1)
    return account.end_of_activity


def rule_words(
    account: Account, profile: ProfileConfig | None, evaluation: Evaluation | None
) -> str:
    """The departure rule of the account's profile, applied to its dates, in one sentence."""
    key = account.profile_key
    if profile is None or key is None:
        return f"no departure rule: the profile {key!r} is not configured"
    head = f"profile {key}: {_months(profile.grace_months)} after the end of activity"
    end = _end_of_activity(account)
    grace_end = evaluation.grace_end if evaluation else None
    if end is None or grace_end is None:
        body = (
            f"{head}, which is not recorded yet ({profile.end_date_attribute} is empty), "
            "so nothing is scheduled"
        )
    else:
        body = f"{head} on {end.isoformat()}, so mail and login stop after {grace_end.isoformat()}"
        if evaluation is not None and evaluation.notice_late:
            policy_end = evaluation.policy_grace_end
            assert policy_end is not None  # set whenever the notice lengthened the grace
            body = (
                f"{head} on {end.isoformat()} gave {policy_end.isoformat()}; late: notice "
                f"period, so mail and login stop after {grace_end.isoformat()}"
            )
    return f"{body}; {_extension_words(profile, evaluation)}"


_STATE_WORDS = {
    Stage.PRECREATED: "created in advance, not operational yet",
    Stage.CREATED: "account created, awaiting activation by the person",
    Stage.ACTIVE: "account active",
    Stage.GRACE: "grace period started: limited access (institutional mail, account management)",
    Stage.EXPIRED: "account expired: mail and login stopped",
}


def _action_words(action: Action) -> str:
    match action.kind:
        case ActionKind.SUSPEND:
            return (
                "the grace period starts (limited access: institutional mail, account management)"
            )
        case ActionKind.SUSPEND_AND_EXPIRE:
            return "the grace period is written with its true dates and the account expires at once"
        case ActionKind.NOTICE:
            return (
                "the person is told, and the grace period lengthened to the minimum notice "
                "(late: notice period)"
            )
        case ActionKind.EXPIRE:
            return "the account expires: mail and login stop"
        case ActionKind.WARN:
            return f"warning mail: the account expires in {action.warn_days} days"
        case ActionKind.PURGE:
            return "the account may be purged (archived, then deleted)"
        case ActionKind.REACTIVATE:
            return "the account becomes active again (its end of activity moved)"


def _history(runtime: Runtime, account: Account) -> list[TimelineEvent]:
    events: list[TimelineEvent] = []
    state = account.account_state
    if state is not None and state.substate == AWAITING_DELETION:
        # The marking's date is not the expiry's: that one is the day pwdEndTime cut the login.
        events.append(TimelineEvent(account.cut_off, _STATE_WORDS[Stage.EXPIRED]))
        events.append(
            TimelineEvent(state.start, "marked for deletion (I:SupannSupprCompte) by the sweep")
        )
    elif state is not None:
        words = _STATE_WORDS.get(
            account.stage, f"state {state.state}:{state.substate} set by another tool"
        )
        events.append(TimelineEvent(state.start, words))
    end = _end_of_activity(account)
    if end is not None and end < runtime.today():
        events.append(TimelineEvent(end, "end of activity"))
    zone = ZoneInfo(runtime.config.policy.timezone)
    for attribute, words in (
        ("pwdChangedTime", "password last changed"),
        ("pwdLastSuccess", "last successful login"),
    ):
        instant = instant_of(account, attribute)
        if instant is not None:
            events.append(TimelineEvent(instant.astimezone(zone).date(), words))
    state_attribute = runtime.config.attributes.state_date
    for record in runtime.audit.read(account=account.identifier, limit_last=HISTORY_AUDIT_ENTRIES):
        events.append(
            TimelineEvent(record.time.astimezone(zone).date(), audit_words(record, state_attribute))
        )
    return sorted(events, key=lambda event: event.day or date.min)


_STEP_WORDS = {
    "SupannSursis": "grace period started",
    "SupannExpire": "account expired",
    "SupannSupprCompte": "marked for deletion (I:SupannSupprCompte)",
    "SupannActif": "account active",
    "SupannAnticipe": "account active before the arrival day",
    "SupannCree": "account created, awaiting activation",
    "SupannPrecree": "account created in advance",
    "SupannVerrouTechnique": "locked (technical)",
    "SupannVerrouAdministratif": "locked (administrative)",
}


def _compte_state(values: object) -> ResourceState | None:
    if not isinstance(values, list):
        return None
    try:
        return find_state(str(value) for value in values)
    except InvalidInputError:
        return None


def audit_words(record: AuditRecord, state_attribute: str) -> str:
    """What an audit record did, in words: "sweep: grace period started", not "sweep: ok"."""
    what: list[str] = []
    notice = record.details.get("notice")
    if isinstance(notice, str) and notice.startswith("expiry warning, "):
        what.append(f"warning sent ({notice.removeprefix('expiry warning, ')})")
    elif isinstance(notice, str):
        what.append(notice)
    change = {name.lower(): value for name, value in record.changes.items()}.get(
        state_attribute.lower()
    )
    if change is not None:
        before, after = _compte_state(change.get("before")), _compte_state(change.get("after"))
        if after is not None and after != before:
            words = _STEP_WORDS.get(after.substate, f"state {after.state}:{after.substate}")
            if before is not None and before.substate == after.substate == "SupannSursis":
                words = f"grace period moved to {after.end.isoformat() if after.end else '?'}"
            elif (
                after.substate == "SupannActif"
                and before is not None
                and before.stage
                in (
                    Stage.GRACE,
                    Stage.EXPIRED,
                )
            ):
                words = "account active again"
            what.append(words)
    elif record.changes and not what:
        what.append(f"changed {', '.join(sorted(record.changes))}")
    actor = "" if record.command == "sweep" else f" by {record.actor}"
    reason = record.details.get("reason")
    suffix = f" ({reason})" if reason else ""
    result = "" if record.result == "ok" else f" [{record.result}]"
    if not what:
        return f"{record.command}{actor}: {record.result}{suffix}"
    return f"{record.command}{actor}: {'; '.join(what)}{result}{suffix}"


def _arrival(runtime: Runtime, account: Account) -> list[TimelineEvent]:
    """A pre-created account's arrival day: it becomes operational and its link is mailed."""
    state = account.account_state
    if account.stage is not Stage.PRECREATED or state is None or state.end is None:
        return []
    arrival = state.end + timedelta(days=1)
    return [
        TimelineEvent(
            max(arrival, runtime.today()),
            "arrival: the daily sweep makes the account operational and mails the activation "
            "link to the personal address",
        )
    ]


def _upcoming(
    runtime: Runtime, account: Account, evaluation: Evaluation | None
) -> list[TimelineEvent]:
    """What comes from today on: sorted by day, each event once, nothing of the past."""
    today = runtime.today()
    events: list[TimelineEvent] = _arrival(runtime, account)
    if evaluation is None:
        return events
    due = evaluation.action_due
    if due is not None and due.kind is ActionKind.PURGE:
        events.append(
            TimelineEvent(
                today,
                f"due now: {_action_words(due)}: `umacct sweep --purge` (the nightly job, if it "
                f"runs with --purge) or `umacct purge {account.identifier} --reason ...`",
            )
        )
    elif due is not None:
        events.append(
            TimelineEvent(today, f"due now, done by the next daily sweep: {_action_words(due)}")
        )
    transition = evaluation.next_transition
    if transition is not None:
        events.append(TimelineEvent(transition.on, _action_words(transition.action)))
    if evaluation.grace_end is not None and evaluation.grace_end >= today:
        events.append(TimelineEvent(evaluation.grace_end, "last day of mail and login"))
    events += _warnings_to_come(runtime, evaluation)
    if evaluation.expires_on is not None and evaluation.expires_on > today:
        events.append(
            TimelineEvent(evaluation.expires_on, _action_words(Action(ActionKind.EXPIRE)))
        )
    if evaluation.purgeable_on is not None and evaluation.purgeable_on > today:
        # One event per fact: the purge day (the same words as the dated step).
        events.append(
            TimelineEvent(evaluation.purgeable_on, _action_words(Action(ActionKind.PURGE)))
        )
    unique = {
        (event.day, event.text): event
        for event in events
        if event.day is not None and event.day >= today
    }
    return sorted(unique.values(), key=lambda event: (event.day or date.min, event.text))


def _warnings_to_come(runtime: Runtime, evaluation: Evaluation) -> list[TimelineEvent]:
    """Every expiry warning still to send (not only the next one), on the day it goes out.

    A warning whose day falls before the grace period starts goes out with its start.
    """
    expires_on = evaluation.expires_on
    if expires_on is None or evaluation.stage_today is Stage.EXPIRED:
        return []
    today = runtime.today()
    transition = evaluation.next_transition
    starts = (
        transition.on
        if transition is not None and transition.action.kind is ActionKind.SUSPEND
        else today
    )
    events = []
    for days in sorted(set(runtime.config.policy.warn_days_before_expiry), reverse=True):
        day = max(expires_on - timedelta(days=days), starts)
        if today < day < expires_on:
            events.append(TimelineEvent(day, _action_words(Action(ActionKind.WARN, days))))
    return events


def login_blockers(runtime: Runtime, account: Account) -> list[str]:
    """What stops the person from logging in, in words, with the command that helps."""
    blockers: list[str] = []
    state = account.account_state
    since = f" since {state.start.isoformat()}" if state and state.start else ""
    name = account.identifier
    ours = state is not None and state.state == "S" and state.substate in LOCK_SUBSTATES.values()
    match account.stage:
        case Stage.CREATED:
            blockers.append(_activation_words(runtime, account))
        case Stage.PRECREATED:
            arrival = f" until {state.end + timedelta(days=1)}" if state and state.end else ""
            blockers.append(
                f"pre-created{since}: not operational{arrival} (the arrival day); to open it "
                f"now: `umacct activate {name}`"
            )
        case Stage.EXPIRED:
            blockers.append(f"grace period over: expired{since}; {_expired_help(runtime, account)}")
        case Stage.FOREIGN if ours:
            assert state is not None
            blockers.append(
                f"locked: state {state.state}:{state.substate}{since}; to undo: "
                f"`umacct unlock {name} --reason ...`"
            )
        case Stage.FOREIGN if state is not None:
            blockers.append(f"locked by another tool: state {state.state}:{state.substate}{since}")
        case Stage.UNKNOWN:
            blockers.append("the account has no state: it was never set up by this tool")
        case _:
            pass
    moment = runtime.clock.now()
    locked = instant_of(account, "pwdAccountLockedTime")
    if locked is not None and locked <= moment and not ours:
        blockers.append(
            "locked by the password policy (pwdAccountLockedTime is set: too many failed "
            "logins; it ends after the policy's pwdLockoutDuration)"
        )
    password_end = instant_of(account, "pwdEndTime")
    if password_end is not None and password_end <= moment:
        blockers.append(
            f"password expired: the directory refuses logins since {password_end.isoformat()} "
            "(pwdEndTime)"
        )
    return blockers


def _expired_help(runtime: Runtime, account: Account) -> str:
    profile = runtime.config.profiles.get(account.profile_key or "")
    if profile is not None and profile.extendable:
        return f"to give a grace period again: `umacct extend {account.identifier} --force --reason ...`"
    return (
        "once the end of activity moves (a returning person), the next sweep reactivates it; "
        "or `umacct create` takes the person back"
    )


def _activation_words(runtime: Runtime, account: Account) -> str:
    links = [
        link
        for link in runtime.pending_links(account.identifier)
        if link.purpose is TokenPurpose.ACTIVATION
    ]
    command = f"`umacct activate {account.identifier}`"
    if links:
        return (
            "awaiting activation: the activation link sent is valid until "
            f"{links[-1].expires_at.isoformat()} (a new one, which replaces it: {command})"
        )
    return (
        "awaiting activation, and no activation link is valid (expired unused or never sent): "
        f"send a new one: {command}"
    )


def profile_activities(runtime: Runtime, account: Account) -> list[ProfileActivity]:
    """Each profile the account holds, with the grace end it alone would give."""
    found = []
    for activity in account.activities:
        settings = runtime.config.profiles[activity.profile_key]
        end = activity.end_of_activity
        grace_end = grace_end_for(rules_for(activity.profile_key, settings), end) if end else None
        found.append(
            ProfileActivity(
                activity.profile_key,
                end,
                grace_end,
                settings.extendable,
                activity.profile_key == account.profile_key,
            )
        )
    return found


def several_profiles_words(today: date, activities: list[ProfileActivity]) -> str:
    """Which of several profiles decides, in words ("etudiant until ... keeps it open")."""
    deciding = next(a for a in activities if a.decides)
    others = [a for a in activities if not a.decides]
    if deciding.end_of_activity is None:
        head = f"{deciding.profile} (no end recorded) keeps the account open"
    elif deciding.end_of_activity >= today:
        head = f"{deciding.profile} until {deciding.end_of_activity.isoformat()} keeps the account open"
    else:
        head = (
            f"{deciding.profile}, ended on {deciding.end_of_activity.isoformat()}, gives the "
            "latest grace end"
        )
    parts = []
    for other in others:
        if other.end_of_activity is None:
            parts.append(f"{other.profile} has no end recorded")
        elif other.end_of_activity < today:
            parts.append(
                f"the {other.profile} activity ended on {other.end_of_activity.isoformat()}"
            )
        else:
            parts.append(f"{other.profile} until {other.end_of_activity.isoformat()}")
    return "; ".join([head, *parts])


def explain(runtime: Runtime, key: str) -> Explanation:
    """The account's timeline and today's login blockers (``umacct explain ACCOUNT``)."""
    account = account_named(runtime, key)
    profile = runtime.config.profiles.get(account.profile_key or "")
    evaluation = evaluate_account(runtime, account, profile) if profile else None
    blockers = login_blockers(runtime, account)
    activities = profile_activities(runtime, account)
    rule = rule_words(account, profile, evaluation)
    if len(activities) > 1:
        rule = f"{several_profiles_words(runtime.today(), activities)}; {rule}"
    upcoming = _upcoming(runtime, account, evaluation)
    from umacct.services.extensions import pending_request, pending_words

    pending = pending_request(runtime, account.identifier)
    if pending is not None:  # the helpdesk's decision comes first
        upcoming.insert(0, TimelineEvent(runtime.today(), pending_words(runtime, pending)))
    return Explanation(
        account=account.identifier,
        as_of=runtime.today(),
        profile=account.profile_key,
        stage=account.stage.value,
        rule=rule,
        profiles=activities,
        happened=_history(runtime, account),
        upcoming=upcoming,
        login_blockers=blockers,
        can_log_in=not blockers,
        extendable=bool(evaluation and evaluation.extension_allowed),
        extension_refusal=evaluation.extension_refusal if evaluation else None,
    )
