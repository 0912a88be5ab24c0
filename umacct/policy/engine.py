"""The departure policy: a pure function of (profile rules, account facts, today).

After the end of activity an account enters a grace period of whole calendar months that
depends on the profile; then it expires; some days later it may be purged. Some profiles may
extend the grace period on request. ``evaluate`` tells, for one account and one day, where the
account should be, what the daily sweep must do today and what comes next; ``extend`` grants
an extension or says in words why not.

Decisions the policy page leaves open, taken here:

* Pre-created and created (never activated) accounts follow the same departure path as active
  ones: when the end of activity passes they are due for the grace period, then expiry.
* Nobody loses access with less than ``minimum_notice_days`` of notice, counted from the day
  the tool first tells them (``AccountFacts.notified_on``, or today when it tells them in this
  run). An account found active after its whole grace period (an old directory, late HR data)
  enters the grace period until ``max(policy grace end, notice day + minimum_notice_days)``:
  "late: notice period", never a back-dated expiry. An account in grace that was never told and
  has fewer days left than the notice is due for ``NOTICE``: its grace end moves to
  ``today + minimum_notice_days`` and it is told. One whose grace end has already passed (the
  directory enforced ``pwdEndTime``) expires on its real date. With ``minimum_notice_days``
  0, an account first seen after its whole grace period is due for ``SUSPEND_AND_EXPIRE``:
  the grace state with its true dates, then the expired state.
* An account in grace or expired whose end of activity is today or later again (the person
  came back, the contract was renewed) is due for ``REACTIVATE`` instead of expiry or purge.
* The number of extensions granted is derived from the dates: the stored grace end must be
  the grace end after k whole extensions of the grace period that followed the end of activity
  (the day before the grace state's start), that period lengthened to the notice floor when
  the notice rule lengthened it. When no k fits, someone edited the dates by hand:
  the count is ``None``, and a profile with a maximum then refuses extensions until an
  administrator corrects the dates (a profile without maximum still extends).
* An extension renews, it does not stack: it is allowed only while the current grace end is
  less than ``extension_months`` away from today, and adds ``extension_months`` to it.
* ``force`` lets an administrator extend an expired account, or one whose grace end is still
  far. The new grace end still counts from the old one, whole extension by whole extension,
  until it reaches today; each one counts towards the maximum. Counting from today instead
  would leave dates from which the number of extensions can no longer be derived.

Evaluations are memoised: the result depends only on the inputs that matter for the account's
stage (not, say, on the activation date of an active account), and an ``Evaluation`` is
immutable, so accounts with the same dates share one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache

from umacct.errors import InvalidInputError, RefusedError
from umacct.policy.dates import ONE_DAY, add_months, end_of_months_after
from umacct.policy.states import AWAITING_DELETION, ResourceState, Stage, stage_of

# Far above any real number of extensions; bounds the search when the dates are irregular.
_MAX_EXTENSIONS_SCANNED = 1000
_MEMO_LIMIT = 65_536
_LIVE_STAGES = frozenset({Stage.PRECREATED, Stage.CREATED, Stage.ACTIVE})
_GRACE = Stage.GRACE
_EXPIRED = Stage.EXPIRED


class ActionKind(StrEnum):
    """What the daily sweep does to an account."""

    SUSPEND = "suspend"
    """End of activity passed: write the grace state (end of activity + 1 day to grace end)."""
    SUSPEND_AND_EXPIRE = "suspend_and_expire"
    """Without minimum notice, end of activity and grace both passed: grace state, then expire."""
    NOTICE = "notice"
    """In grace, never told, fewer days left than the notice: move the grace end, tell them."""
    EXPIRE = "expire"
    """Grace period over: write the expired state (grace end + 1 day)."""
    WARN = "warn"
    """Send the expiry warning for ``warn_days`` days, unless already sent."""
    PURGE = "purge"
    """Expired for ``purge_after_days`` days: archive and delete."""
    REACTIVATE = "reactivate"
    """The end of activity moved to today or later: the account is active again."""


@dataclass(frozen=True, slots=True)
class Action:
    """One thing to do to an account; ``warn_days`` tells which warning for ``WARN``."""

    kind: ActionKind
    warn_days: int | None = None


@dataclass(frozen=True, slots=True)
class Transition:
    """A dated step of the policy."""

    action: Action
    on: date


@dataclass(frozen=True, slots=True)
class ProfileRules:
    """The departure rules of one profile (population)."""

    key: str
    grace_months: int
    extendable: bool = False
    extension_months: int = 0
    max_extensions: int | None = None
    """None: without limit."""

    def __post_init__(self) -> None:
        """Refuse rules that would make the arithmetic meaningless."""
        if not self.key:
            raise InvalidInputError("a profile needs a key")
        if self.grace_months < 1:
            raise InvalidInputError(f"profile {self.key}: grace_months must be 1 or more")
        if self.extendable and self.extension_months < 1:
            raise InvalidInputError(f"profile {self.key}: extension_months must be 1 or more")
        if self.max_extensions is not None and self.max_extensions < 0:
            raise InvalidInputError(f"profile {self.key}: max_extensions must be 0 or more")


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """What the directory says about one account, as the policy needs it."""

    stage: Stage
    end_of_activity: date | None = None
    """The end of activity the directory holds now (staff, student or external end date)."""
    grace_end: date | None = None
    """The end date of the stored grace state (``A:SupannSursis``)."""
    expired_on: date | None = None
    """The start date of the stored expired state (``I:SupannExpire``)."""
    stage_since: date | None = None
    """The start date of the stored state, whatever it is."""
    notified_on: date | None = None
    """The day the tool first told the person of this departure (None: never)."""
    awaiting_deletion: bool = False
    """Expired and marked ``I:SupannSupprCompte``: purgeable since the state's start."""
    cut_off: date | None = None
    """The day the directory stopped the login (``pwdEndTime``'s day), for an account marked
    awaiting deletion: its real expiry, which the marking's own date no longer tells."""

    @classmethod
    def from_state(
        cls,
        account_state: ResourceState | None,
        end_of_activity: date | None,
        notified_on: date | None = None,
        cut_off: date | None = None,
    ) -> AccountFacts:
        """Facts from the account's ``COMPTE`` state and its end of activity."""
        stage = stage_of(account_state)
        if account_state is None:
            return cls(stage, end_of_activity, notified_on=notified_on)
        return cls(
            stage,
            end_of_activity,
            grace_end=account_state.end if stage is Stage.GRACE else None,
            expired_on=account_state.start if stage is Stage.EXPIRED else None,
            stage_since=account_state.start,
            notified_on=notified_on,
            awaiting_deletion=account_state.substate == AWAITING_DELETION,
            cut_off=cut_off if account_state.substate == AWAITING_DELETION else None,
        )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Where an account stands on a given day, and what is due."""

    stage_today: Stage
    """Where the account should be today (an active account past its end of activity: grace)."""
    grace_end: date | None
    """Last day the account is usable (policy time zone), or None when there is no end yet."""
    expires_on: date | None
    purgeable_on: date | None
    extensions_granted: int | None
    """Derived from the dates; None when they do not follow from the rules (hand-edited)."""
    extension_allowed: bool
    extension_refusal: str | None
    next_transition: Transition | None
    """The step that follows the due action, or the next dated step when nothing is due.

    Its date is today or earlier only when a step due today must happen first (a warning held
    back by the suspension, a purge after a late expiry).
    """
    action_due: Action | None
    """What the daily sweep must do today."""
    policy_grace_end: date | None = None
    """The grace end the profile's rules alone give (before the notice rule and extensions)."""
    notice_late: bool = False
    """The grace end was moved past the profile's to give the minimum notice."""


@dataclass(frozen=True, slots=True)
class ExtensionGrant:
    """The outcome of an extension: the new grace end and how it was reached."""

    grace_end: date
    previous_grace_end: date
    extensions_applied: int
    """1, or more when an administrator forced the extension of a long-expired account."""
    extensions_granted: int | None
    """The total after this grant; None when the previous count could not be derived."""


_SUSPEND = Action(ActionKind.SUSPEND)
_NOTICE = Action(ActionKind.NOTICE)
_SUSPEND_AND_EXPIRE = Action(ActionKind.SUSPEND_AND_EXPIRE)
_EXPIRE = Action(ActionKind.EXPIRE)
_PURGE = Action(ActionKind.PURGE)
_REACTIVATE = Action(ActionKind.REACTIVATE)


@cache
def _warn_action(days: int) -> Action:
    return Action(ActionKind.WARN, days)


def grace_end_for(rules: ProfileRules, end_of_activity: date) -> date:
    """Last usable day after ``end_of_activity``: ``grace_months`` whole months from the next day.

    A vacataire (6 months) whose activity ends on 2026-06-30 may use the account through
    2026-12-31; ends of month clamp (2026-08-31 gives 2027-02-28, 2027-08-31 gives 2028-02-29).
    """
    return end_of_months_after(end_of_activity, rules.grace_months)


def deciding_activity(activities: Sequence[tuple[ProfileRules, date | None]]) -> int:
    """Which of a person's activities decides the account's departure (its index).

    The account stays active while any activity continues: one with no end decides (the
    account has no departure yet); otherwise the one whose grace period ends last, an
    extendable one on a tie (so that the person keeps the right to ask for more).
    """
    if not activities:
        raise InvalidInputError("an account needs at least one activity")
    best = 0
    best_key: tuple[date, bool] | None = None
    for index, (rules, end) in enumerate(activities):
        if end is None:
            return index
        key = (grace_end_for(rules, end), rules.extendable)
        if best_key is None or key > best_key:
            best, best_key = index, key
    return best


def extended_grace_end(rules: ProfileRules, grace_end: date, times: int = 1) -> date:
    """The grace end after ``times`` more extensions, applied one after the other."""
    for _ in range(times):
        grace_end = end_of_months_after(grace_end, rules.extension_months)
    return grace_end


def count_extensions(
    rules: ProfileRules, end_of_activity: date, grace_end: date, notice_floor: date | None = None
) -> int | None:
    """How many extensions lead from ``end_of_activity`` to ``grace_end``; None if none fits.

    The first grace end is the profile's, or ``notice_floor`` when that is later (the notice
    rule lengthened it).
    """
    current = grace_end_for(rules, end_of_activity)
    if notice_floor is not None and notice_floor > current:
        current = notice_floor
    if not rules.extendable:
        return 0 if current == grace_end else None
    for count in range(_MAX_EXTENSIONS_SCANNED + 1):
        if current >= grace_end:
            return count if current == grace_end else None
        current = end_of_months_after(current, rules.extension_months)
    return None


def extension_opens_on(rules: ProfileRules, grace_end: date) -> date:
    """The first day an extension may be asked: ``extension_months`` before the grace end."""
    return add_months(grace_end, -rules.extension_months) + ONE_DAY


def _extension_refusal(
    rules: ProfileRules,
    stage_today: Stage,
    grace_end: date | None,
    extensions_granted: int | None,
    today: date,
    *,
    force: bool = False,
) -> str | None:
    """Why an extension is refused, in words; None when it is allowed."""
    if not rules.extendable:
        return f"profile {rules.key} is not extendable"
    if stage_today is Stage.EXPIRED and not force:
        when = f" on {(grace_end + ONE_DAY).isoformat()}" if grace_end is not None else ""
        return f"account expired{when}"
    if stage_today not in (Stage.GRACE, Stage.EXPIRED):
        return f"account is not in its grace period (state: {stage_today})"
    if grace_end is None:
        return "the end of the account's grace period is unknown: correct its state first"
    opens_on = extension_opens_on(rules, grace_end)
    if today < opens_on and not force:
        already = "already extended" if extensions_granted else "the grace period runs"
        return (
            f"{already} to {grace_end.isoformat()}: an extension renews, it does not stack; "
            f"it can be asked from {opens_on.isoformat()} (--force for an administrator)"
        )
    limit = rules.max_extensions
    if limit is not None:
        if extensions_granted is None:
            return (
                f"profile {rules.key} allows at most {limit} extensions and the number granted "
                f"cannot be told from the account's dates (grace end {grace_end.isoformat()} "
                "does not follow from its end of activity): correct them first"
            )
        if extensions_granted >= limit:
            return (
                f"profile {rules.key} allows at most {limit} extensions "
                f"and {extensions_granted} were granted"
            )
    return None


def _evaluation(
    rules: ProfileRules,
    stage_today: Stage,
    grace_end: date | None,
    purge_after_days: int,
    extensions_granted: int | None,
    next_transition: Transition | None,
    action_due: Action | None,
    today: date,
    expires_on: date | None = None,
    policy_grace_end: date | None = None,
) -> Evaluation:
    if expires_on is None and grace_end is not None:
        expires_on = grace_end + ONE_DAY
    purgeable_on = None if expires_on is None else expires_on + ONE_DAY * purge_after_days
    refusal = _extension_refusal(rules, stage_today, grace_end, extensions_granted, today)
    policy_end = policy_grace_end if policy_grace_end is not None else grace_end
    late = grace_end is not None and policy_end is not None and grace_end > policy_end
    return Evaluation(
        stage_today,
        grace_end,
        expires_on,
        purgeable_on,
        extensions_granted,
        refusal is None,
        refusal,
        next_transition,
        action_due,
        policy_end,
        late and extensions_granted == 0,
    )


def _grace_steps(
    expires_on: date, today: date, warn_days: tuple[int, ...]
) -> tuple[Action | None, Transition]:
    """The warning due today (smallest reached), and the next dated step after today."""
    days_left = (expires_on - today).days
    due: int | None = None
    upcoming: int | None = None
    for days in warn_days:
        if days >= days_left:
            if due is None or days < due:
                due = days
        elif upcoming is None or days > upcoming:
            upcoming = days
    after = (
        Transition(_warn_action(upcoming), expires_on - ONE_DAY * upcoming)
        if upcoming is not None
        else Transition(_EXPIRE, expires_on)
    )
    return (None if due is None else _warn_action(due)), after


def _resumed(
    rules: ProfileRules, end_of_activity: date, today: date, purge_after_days: int
) -> Evaluation:
    """An account in grace or expired whose activity goes on again."""
    return _evaluation(
        rules,
        Stage.ACTIVE,
        grace_end_for(rules, end_of_activity),
        purge_after_days,
        0,
        Transition(_SUSPEND, end_of_activity + ONE_DAY),
        _REACTIVATE,
        today,
    )


def _evaluate_live(
    rules: ProfileRules,
    stage: Stage,
    end_of_activity: date | None,
    today: date,
    purge_after_days: int,
    warn_days: tuple[int, ...],
    notice_days: int,
) -> Evaluation:
    """Pre-created, created and active accounts."""
    if end_of_activity is None:
        return _evaluation(rules, stage, None, purge_after_days, 0, None, None, today)
    policy_end = grace_end_for(rules, end_of_activity)
    if today <= end_of_activity:
        step = Transition(_SUSPEND, end_of_activity + ONE_DAY)
        return _evaluation(rules, stage, policy_end, purge_after_days, 0, step, None, today)
    # Suspended today, told today: the notice counts from today.
    grace_end = max(policy_end, today + ONE_DAY * notice_days) if notice_days else policy_end
    if today > grace_end:  # no minimum notice: the grace is written, then expires at once
        step = Transition(_PURGE, grace_end + ONE_DAY * (1 + purge_after_days))
        return _evaluation(
            rules,
            Stage.EXPIRED,
            grace_end,
            purge_after_days,
            0,
            step,
            _SUSPEND_AND_EXPIRE,
            today,
        )
    warning, after = _grace_steps(grace_end + ONE_DAY, today, warn_days)
    # A warning due today is sent by the same run, right after the suspension.
    step = after if warning is None else Transition(warning, today)
    return _evaluation(
        rules,
        Stage.GRACE,
        grace_end,
        purge_after_days,
        0,
        step,
        _SUSPEND,
        today,
        policy_grace_end=policy_end,
    )


def _evaluate_grace(
    rules: ProfileRules,
    end_of_activity: date | None,
    stored_grace_end: date | None,
    grace_start: date | None,
    notified_on: date | None,
    today: date,
    purge_after_days: int,
    warn_days: tuple[int, ...],
    notice_days: int,
) -> Evaluation:
    """Accounts in grace; ``grace_start`` is the stored start of the grace state."""
    if end_of_activity is not None and end_of_activity >= today:
        return _resumed(rules, end_of_activity, today, purge_after_days)
    # The grace followed the day before its start; the end of activity may have changed since.
    grace_origin = end_of_activity if grace_start is None else grace_start - ONE_DAY
    policy_end = None if grace_origin is None else grace_end_for(rules, grace_origin)
    floor = None if notified_on is None else notified_on + ONE_DAY * notice_days
    grace_end = stored_grace_end
    granted: int | None = None
    if grace_end is None:
        if policy_end is None:
            return _evaluation(rules, Stage.GRACE, None, purge_after_days, None, None, None, today)
        grace_end = policy_end if floor is None else max(policy_end, floor)
    elif grace_origin is not None:
        granted = count_extensions(rules, grace_origin, grace_end, floor)
    expires_on = grace_end + ONE_DAY
    if today >= expires_on:
        # The directory already refuses the login (pwdEndTime): it expires on its real date.
        step = Transition(_PURGE, expires_on + ONE_DAY * purge_after_days)
        return _evaluation(
            rules,
            Stage.EXPIRED,
            grace_end,
            purge_after_days,
            granted,
            step,
            _EXPIRE,
            today,
            policy_grace_end=policy_end,
        )
    if notified_on is None and (grace_end - today).days < notice_days:
        noticed_end = today + ONE_DAY * notice_days
        warning, after = _grace_steps(noticed_end + ONE_DAY, today, warn_days)
        step = after if warning is None else Transition(warning, today)
        return _evaluation(
            rules,
            Stage.GRACE,
            noticed_end,
            purge_after_days,
            0,
            step,
            _NOTICE,
            today,
            policy_grace_end=policy_end,
        )
    warning, after = _grace_steps(expires_on, today, warn_days)
    return _evaluation(
        rules,
        Stage.GRACE,
        grace_end,
        purge_after_days,
        granted,
        after,
        warning,
        today,
        policy_grace_end=policy_end,
    )


def _evaluate_expired(
    rules: ProfileRules,
    end_of_activity: date | None,
    expired_on: date | None,
    stored_grace_end: date | None,
    awaiting_deletion: bool,
    cut_off: date | None,
    notified_on: date | None,
    today: date,
    purge_after_days: int,
    notice_days: int,
) -> Evaluation:
    """Expired accounts; purge counts from the recorded expiry date (the real cut-off).

    One awaiting deletion (``I:SupannSupprCompte``) expired on its ``cut_off`` (``pwdEndTime``);
    without it, ``purge_after_days`` before the marking (the day it was purgeable).
    """
    if end_of_activity is not None and end_of_activity >= today:
        return _resumed(rules, end_of_activity, today, purge_after_days)
    if awaiting_deletion and expired_on is not None:
        expired_on = cut_off if cut_off is not None else expired_on - ONE_DAY * purge_after_days
    grace_end = stored_grace_end
    if grace_end is None and expired_on is not None:
        grace_end = expired_on - ONE_DAY
    granted = None
    policy_end = None
    if grace_end is not None and end_of_activity is not None:
        policy_end = grace_end_for(rules, end_of_activity)
        floor = None if notified_on is None else notified_on + ONE_DAY * notice_days
        granted = count_extensions(rules, end_of_activity, grace_end, floor)
    expires_on = expired_on
    if expires_on is None and grace_end is not None:
        expires_on = grace_end + ONE_DAY
    step: Transition | None = None
    action: Action | None = None
    if expires_on is not None:
        purgeable_on = expires_on + ONE_DAY * purge_after_days
        if today >= purgeable_on:
            action = _PURGE
        else:
            step = Transition(_PURGE, purgeable_on)
    return _evaluation(
        rules,
        Stage.EXPIRED,
        grace_end,
        purge_after_days,
        granted,
        step,
        action,
        today,
        expires_on,
        policy_grace_end=policy_end,
    )


def _evaluate_untouched(
    rules: ProfileRules, stage: Stage, today: date, purge_after_days: int
) -> Evaluation:
    """Foreign and unknown states: reported, never changed (no extension granted by the tool)."""
    return _evaluation(rules, stage, None, purge_after_days, 0, None, None, today)


# Keyed on the rules' identity (hashing a dataclass is slow); the value keeps the rules alive,
# so no other object can take their id while the entry exists.
_memo: dict[tuple[object, ...], tuple[ProfileRules, Evaluation]] = {}


def evaluate(
    rules: ProfileRules,
    facts: AccountFacts,
    today: date,
    *,
    purge_after_days: int,
    warn_days: Sequence[int],
    minimum_notice_days: int = 0,
) -> Evaluation:
    """Where the account should be ``today``, what the sweep must do, and what comes next.

    ``today`` is the date in the policy's time zone; ``purge_after_days`` (0 or more),
    ``warn_days`` (positive) and ``minimum_notice_days`` (0 or more) come from the site's
    settings. A warning "for d days" is due from
    ``d`` days before the expiry date through the grace end; the smallest reached is reported,
    every day, and the caller records what it sent.
    """
    warn = warn_days if type(warn_days) is tuple else tuple(warn_days)
    stage = facts.stage
    compute: Callable[..., Evaluation]
    inputs: tuple[object, ...]
    if stage is _GRACE:
        compute = _evaluate_grace
        inputs = (
            facts.end_of_activity,
            facts.grace_end,
            facts.stage_since,
            facts.notified_on,
            today,
            purge_after_days,
            warn,
            minimum_notice_days,
        )
    elif stage is _EXPIRED:
        compute = _evaluate_expired
        inputs = (
            facts.end_of_activity,
            facts.expired_on,
            facts.grace_end,
            facts.awaiting_deletion,
            facts.cut_off,
            facts.notified_on,
            today,
            purge_after_days,
            minimum_notice_days,
        )
    elif stage in _LIVE_STAGES:
        compute = _evaluate_live
        inputs = (stage, facts.end_of_activity, today, purge_after_days, warn, minimum_notice_days)
    else:
        compute = _evaluate_untouched
        inputs = (stage, today, purge_after_days)
    key = (compute, id(rules), inputs)
    known = _memo.get(key)
    if known is not None and known[0] is rules:
        return known[1]
    try:
        evaluation = compute(rules, *inputs)
    except OverflowError:
        raise InvalidInputError(f"dates too close to the ends of the calendar: {facts}") from None
    if len(_memo) >= _MEMO_LIMIT:
        _memo.clear()
    _memo[key] = (rules, evaluation)
    return evaluation


def extend(
    rules: ProfileRules,
    facts: AccountFacts,
    today: date,
    *,
    force: bool = False,
    minimum_notice_days: int = 0,
) -> ExtensionGrant:
    """Grant one extension of the grace period, or raise RefusedError saying why not.

    Allowed when the profile is extendable, the account is in its grace period today and
    fewer than ``max_extensions`` were granted. With ``force`` an expired account is extended
    too, by as many whole extensions as it takes to reach today (each one counts).
    An active account whose end of activity has passed is in grace today and may be extended;
    the caller writes the grace state with the new end.
    """
    evaluation = evaluate(
        rules,
        facts,
        today,
        purge_after_days=0,
        warn_days=(),
        minimum_notice_days=minimum_notice_days,
    )
    granted = evaluation.extensions_granted
    previous = evaluation.grace_end
    refusal = _extension_refusal(
        rules, evaluation.stage_today, previous, granted, today, force=force
    )
    if refusal is not None or previous is None:
        raise RefusedError(refusal or "the end of the account's grace period is unknown")
    applied = 1
    new_end = extended_grace_end(rules, previous)
    while new_end < today:
        applied += 1
        new_end = extended_grace_end(rules, new_end)
    limit = rules.max_extensions
    if limit is not None and granted is not None and granted + applied > limit:
        raise RefusedError(
            f"profile {rules.key} allows at most {limit} extensions and {granted} were granted; "
            f"{applied} would be needed to reach {today.isoformat()}"
        )
    total = None if granted is None else granted + applied
    return ExtensionGrant(new_end, previous, applied, total)
