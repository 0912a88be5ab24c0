"""The departure policy: grace periods by profile, warnings, expiry, purge and extensions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from umacct.errors import InvalidInputError, RefusedError
from umacct.policy import (
    AccountFacts,
    Action,
    ActionKind,
    Evaluation,
    ProfileRules,
    ResourceState,
    Stage,
    Transition,
    count_extensions,
    engine,
    evaluate,
    expired_states,
    extend,
    extended_grace_end,
    grace_end_for,
    grace_states,
)

DAY = timedelta(days=1)
TITULAIRE = ProfileRules("titulaire", 12, extendable=True, extension_months=12, max_extensions=2)
CONTRACTUEL = ProfileRules("contractuel", 12, extendable=True, extension_months=12)
AUTRE = ProfileRules("autre", 3)
VACATAIRE = ProfileRules("vacataire", 6)
HEBERGE = ProfileRules("heberge", 6)
ETUDIANT = ProfileRules("etudiant", 4)
PROFILES = [TITULAIRE, CONTRACTUEL, AUTRE, VACATAIRE, HEBERGE, ETUDIANT]
PURGE = 30
WARN = [30, 7]

profiles = st.sampled_from(PROFILES)
days = st.dates(min_value=date(2000, 1, 1), max_value=date(2080, 12, 31))


def run(rules: ProfileRules, facts: AccountFacts, today: date) -> Evaluation:
    return evaluate(rules, facts, today, purge_after_days=PURGE, warn_days=WARN)


def in_grace(
    rules: ProfileRules, end_of_activity: date, grace_end: date | None = None
) -> AccountFacts:
    grace_end = grace_end or grace_end_for(rules, end_of_activity)
    return AccountFacts.from_state(grace_states(end_of_activity, grace_end)[0], end_of_activity)


def expired(end_of_activity: date | None, grace_end: date) -> AccountFacts:
    return AccountFacts.from_state(expired_states(grace_end)[0], end_of_activity)


# --- grace periods ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "grace_end"),
    [
        (TITULAIRE, date(2027, 6, 30)),
        (CONTRACTUEL, date(2027, 6, 30)),
        (AUTRE, date(2026, 9, 30)),
        (VACATAIRE, date(2026, 12, 31)),
        (HEBERGE, date(2026, 12, 31)),
        (ETUDIANT, date(2026, 10, 31)),
    ],
)
def test_grace_period_of_every_profile(rules: ProfileRules, grace_end: date) -> None:
    assert grace_end_for(rules, date(2026, 6, 30)) == grace_end


@pytest.mark.parametrize(
    ("end_of_activity", "grace_end"),
    [
        (date(2026, 6, 30), date(2026, 12, 31)),
        (date(2026, 8, 31), date(2027, 2, 28)),
        (date(2027, 8, 31), date(2028, 2, 29)),
    ],
)
def test_vacataire_examples_of_the_spec(end_of_activity: date, grace_end: date) -> None:
    assert grace_end_for(VACATAIRE, end_of_activity) == grace_end


def test_vacataire_mail_and_login_stop_after_2026_12_31() -> None:
    facts = in_grace(VACATAIRE, date(2026, 6, 30))
    last_day = run(VACATAIRE, facts, date(2026, 12, 31))
    assert last_day.stage_today is Stage.GRACE
    assert last_day.grace_end == date(2026, 12, 31)
    assert last_day.expires_on == date(2027, 1, 1)
    assert last_day.action_due == Action(ActionKind.WARN, 7)
    assert last_day.next_transition == Transition(Action(ActionKind.EXPIRE), date(2027, 1, 1))
    first_day = run(VACATAIRE, facts, date(2027, 1, 1))
    assert first_day.stage_today is Stage.EXPIRED
    assert first_day.action_due == Action(ActionKind.EXPIRE)
    assert first_day.purgeable_on == date(2027, 1, 31)


def test_extension_adds_whole_months_from_the_old_grace_end() -> None:
    assert extended_grace_end(TITULAIRE, date(2027, 2, 27)) == date(2028, 2, 27)
    assert extended_grace_end(TITULAIRE, date(2027, 2, 28)) == date(2028, 2, 29)
    # iterated one extension at a time, not derived from the end of activity in one step
    end_of_activity = date(2026, 1, 30)
    grace_end = grace_end_for(TITULAIRE, end_of_activity)
    assert extended_grace_end(TITULAIRE, grace_end, 2) == extended_grace_end(
        TITULAIRE, extended_grace_end(TITULAIRE, grace_end)
    )


@given(profiles, days)
def test_grace_is_whole_months_starting_the_day_after(
    rules: ProfileRules, end_of_activity: date
) -> None:
    grace_end = grace_end_for(rules, end_of_activity)
    expected = end_of_activity + DAY + relativedelta(months=rules.grace_months) - DAY
    assert grace_end == expected


# --- active accounts ----------------------------------------------------------------------


def test_active_account_without_end_of_activity_has_nothing_due() -> None:
    evaluation = run(
        TITULAIRE, AccountFacts(Stage.ACTIVE, None, stage_since=date(2020, 9, 1)), date(2026, 6, 1)
    )
    assert evaluation == Evaluation(
        Stage.ACTIVE, None, None, None, 0, False,
        "account is not in its grace period (state: active)", None, None,
    )  # fmt: skip


@given(profiles, days, st.integers(min_value=-400, max_value=1200))
def test_active_account_moves_through_grace_to_expiry_by_dates(
    rules: ProfileRules, end_of_activity: date, offset: int
) -> None:
    today = end_of_activity + DAY * offset
    facts = AccountFacts(Stage.ACTIVE, end_of_activity, stage_since=date(1999, 9, 1))
    evaluation = run(rules, facts, today)
    grace_end = grace_end_for(rules, end_of_activity)
    assert evaluation.grace_end == grace_end
    assert evaluation.expires_on == grace_end + DAY
    assert evaluation.purgeable_on == grace_end + DAY * (1 + PURGE)
    if today <= end_of_activity:
        assert evaluation.stage_today is Stage.ACTIVE
        assert evaluation.action_due is None
        assert evaluation.next_transition == Transition(
            Action(ActionKind.SUSPEND), end_of_activity + DAY
        )
    elif today <= grace_end:
        assert evaluation.stage_today is Stage.GRACE
        assert evaluation.action_due == Action(ActionKind.SUSPEND)
    else:
        assert evaluation.stage_today is Stage.EXPIRED
        assert evaluation.action_due == Action(ActionKind.SUSPEND_AND_EXPIRE)


def test_day_of_end_of_activity_is_still_active_and_next_day_is_due_for_grace() -> None:
    facts = AccountFacts(Stage.ACTIVE, date(2026, 6, 30))
    assert run(VACATAIRE, facts, date(2026, 6, 30)).action_due is None
    due = run(VACATAIRE, facts, date(2026, 7, 1))
    assert (due.stage_today, due.action_due) == (Stage.GRACE, Action(ActionKind.SUSPEND))
    assert due.next_transition == Transition(Action(ActionKind.WARN, 30), date(2026, 12, 2))


def test_late_suspension_holds_back_the_warning_already_due() -> None:
    due = run(VACATAIRE, AccountFacts(Stage.ACTIVE, date(2026, 6, 30)), date(2026, 12, 20))
    assert due.action_due == Action(ActionKind.SUSPEND)
    assert due.next_transition == Transition(Action(ActionKind.WARN, 30), date(2026, 12, 20))


def test_account_seen_after_its_whole_grace_is_suspended_and_expired_on_the_same_run() -> None:
    due = run(AUTRE, AccountFacts(Stage.ACTIVE, date(2026, 1, 31)), date(2026, 6, 1))
    assert due.stage_today is Stage.EXPIRED
    assert due.grace_end == date(2026, 4, 30)
    assert due.action_due == Action(ActionKind.SUSPEND_AND_EXPIRE)
    assert due.next_transition == Transition(Action(ActionKind.PURGE), date(2026, 5, 31))


@pytest.mark.parametrize("stage", [Stage.CREATED, Stage.PRECREATED])
def test_never_activated_accounts_follow_the_same_departure_path(stage: Stage) -> None:
    facts = AccountFacts(stage, date(2026, 6, 30))
    assert run(VACATAIRE, facts, date(2026, 6, 1)).stage_today is stage
    assert run(VACATAIRE, facts, date(2026, 7, 1)).action_due == Action(ActionKind.SUSPEND)


# --- warnings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "due", "next_step"),
    [
        (date(2026, 12, 1), None, Transition(Action(ActionKind.WARN, 30), date(2026, 12, 2))),
        (date(2026, 12, 2), Action(ActionKind.WARN, 30), Transition(Action(ActionKind.WARN, 7), date(2026, 12, 25))),
        (date(2026, 12, 10), Action(ActionKind.WARN, 30), Transition(Action(ActionKind.WARN, 7), date(2026, 12, 25))),
        (date(2026, 12, 24), Action(ActionKind.WARN, 30), Transition(Action(ActionKind.WARN, 7), date(2026, 12, 25))),
        (date(2026, 12, 25), Action(ActionKind.WARN, 7), Transition(Action(ActionKind.EXPIRE), date(2027, 1, 1))),
        (date(2026, 12, 31), Action(ActionKind.WARN, 7), Transition(Action(ActionKind.EXPIRE), date(2027, 1, 1))),
    ],
)  # fmt: skip
def test_warning_due_is_the_smallest_whose_date_has_come(
    today: date, due: Action | None, next_step: Transition
) -> None:
    evaluation = run(VACATAIRE, in_grace(VACATAIRE, date(2026, 6, 30)), today)
    assert evaluation.action_due == due
    assert evaluation.next_transition == next_step


@given(
    profiles,
    days,
    st.integers(min_value=0, max_value=400),
    st.lists(st.integers(min_value=1, max_value=120), max_size=4),
)
def test_warning_rule(
    rules: ProfileRules, end_of_activity: date, offset: int, warn_days: list[int]
) -> None:
    facts = in_grace(rules, end_of_activity)
    today = end_of_activity + DAY * (1 + offset)
    evaluation = evaluate(rules, facts, today, purge_after_days=PURGE, warn_days=warn_days)
    grace_end = grace_end_for(rules, end_of_activity)
    if today > grace_end:
        assert evaluation.action_due == Action(ActionKind.EXPIRE)
        return
    reached = [d for d in warn_days if today >= grace_end + DAY - DAY * d]
    expected = Action(ActionKind.WARN, min(reached)) if reached else None
    assert evaluation.action_due == expected
    assert evaluation.next_transition is not None
    assert evaluation.next_transition.on > today


# --- expiry and purge ---------------------------------------------------------------------


def test_purge_comes_purge_after_days_after_expiry() -> None:
    facts = expired(date(2026, 6, 30), date(2026, 12, 31))
    assert facts.expired_on == date(2027, 1, 1)
    before = run(VACATAIRE, facts, date(2027, 1, 30))
    assert before.action_due is None
    assert before.next_transition == Transition(Action(ActionKind.PURGE), date(2027, 1, 31))
    on_the_day = run(VACATAIRE, facts, date(2027, 1, 31))
    assert on_the_day.action_due == Action(ActionKind.PURGE)
    assert on_the_day.next_transition is None
    assert on_the_day.purgeable_on == date(2027, 1, 31)
    immediate = evaluate(VACATAIRE, facts, date(2027, 1, 1), purge_after_days=0, warn_days=WARN)
    assert immediate.action_due == Action(ActionKind.PURGE)


def test_expired_account_without_dates_is_never_purged() -> None:
    facts = AccountFacts.from_state(ResourceState.parse("{COMPTE}I:SupannExpire::"), None)
    evaluation = run(VACATAIRE, facts, date(2030, 1, 1))
    assert evaluation.stage_today is Stage.EXPIRED
    assert evaluation.action_due is None
    assert evaluation.purgeable_on is None


@pytest.mark.parametrize("stage_facts", ["grace", "expired"])
def test_person_back_in_activity_is_reactivated_not_expired_or_purged(stage_facts: str) -> None:
    if stage_facts == "grace":
        facts = in_grace(VACATAIRE, date(2026, 6, 30))
    else:
        facts = expired(date(2026, 6, 30), date(2026, 12, 31))
    back = AccountFacts(
        facts.stage, date(2027, 8, 31), facts.grace_end, facts.expired_on, facts.stage_since
    )
    evaluation = run(VACATAIRE, back, date(2027, 3, 1))
    assert evaluation.stage_today is Stage.ACTIVE
    assert evaluation.action_due == Action(ActionKind.REACTIVATE)
    assert evaluation.grace_end == date(2028, 2, 29)
    assert evaluation.next_transition == Transition(Action(ActionKind.SUSPEND), date(2027, 9, 1))


@pytest.mark.parametrize(
    "value", [None, "{COMPTE}S:SupannVerrouille:20240101:", "{COMPTE}I:SupannSupprDonnees::"]
)
def test_foreign_and_unknown_states_are_left_alone(value: str | None) -> None:
    state = ResourceState.parse(value) if value else None
    facts = AccountFacts.from_state(state, date(2020, 1, 1))
    evaluation = run(TITULAIRE, facts, date(2026, 1, 1))
    assert evaluation.stage_today in (Stage.FOREIGN, Stage.UNKNOWN)
    assert evaluation.action_due is None
    assert evaluation.next_transition is None
    assert not evaluation.extension_allowed


# --- extensions ---------------------------------------------------------------------------


@given(st.sampled_from([TITULAIRE, CONTRACTUEL]), days, st.integers(min_value=0, max_value=6))
def test_extension_count_round_trips(
    rules: ProfileRules, end_of_activity: date, extensions: int
) -> None:
    grace_end = extended_grace_end(rules, grace_end_for(rules, end_of_activity), extensions)
    assert count_extensions(rules, end_of_activity, grace_end) == extensions
    evaluation = run(rules, in_grace(rules, end_of_activity, grace_end), end_of_activity + DAY)
    assert evaluation.extensions_granted == extensions


def test_hand_edited_grace_end_has_no_extension_count() -> None:
    assert count_extensions(TITULAIRE, date(2026, 6, 30), date(2027, 7, 3)) is None
    assert count_extensions(TITULAIRE, date(2026, 6, 30), date(2027, 6, 1)) is None
    assert count_extensions(VACATAIRE, date(2026, 6, 30), date(2027, 1, 5)) is None
    assert count_extensions(VACATAIRE, date(2026, 6, 30), date(2026, 12, 31)) == 0


def test_irregular_count_refuses_when_the_profile_has_a_maximum() -> None:
    facts = in_grace(TITULAIRE, date(2026, 6, 30), date(2027, 7, 3))
    evaluation = run(TITULAIRE, facts, date(2027, 1, 1))
    assert evaluation.extensions_granted is None
    assert not evaluation.extension_allowed
    assert "cannot be told from the account's dates" in (evaluation.extension_refusal or "")
    with pytest.raises(RefusedError, match="correct them first"):
        extend(TITULAIRE, facts, date(2027, 1, 1))


def test_irregular_count_still_extends_without_a_maximum() -> None:
    facts = in_grace(CONTRACTUEL, date(2026, 6, 30), date(2027, 7, 3))
    grant = extend(CONTRACTUEL, facts, date(2027, 1, 1))
    assert grant.grace_end == date(2028, 7, 3)
    assert grant.extensions_granted is None


def test_extension_in_grace() -> None:
    facts = in_grace(TITULAIRE, date(2026, 6, 30))
    evaluation = run(TITULAIRE, facts, date(2027, 6, 1))
    assert (evaluation.extension_allowed, evaluation.extension_refusal) == (True, None)
    grant = extend(TITULAIRE, facts, date(2027, 6, 1))
    assert grant.previous_grace_end == date(2027, 6, 30)
    assert grant.grace_end == date(2028, 6, 30)
    assert (grant.extensions_applied, grant.extensions_granted) == (1, 1)


@pytest.mark.parametrize(
    ("rules", "facts", "today", "reason"),
    [
        (VACATAIRE, in_grace(VACATAIRE, date(2026, 6, 30)), date(2026, 8, 1),
         "profile vacataire is not extendable"),
        (TITULAIRE, expired(date(2025, 12, 31), date(2026, 12, 31)), date(2027, 1, 5),
         "account expired on 2027-01-01"),
        (TITULAIRE, in_grace(TITULAIRE, date(2025, 12, 31)), date(2027, 1, 1),
         "account expired on 2027-01-01"),
        (TITULAIRE, AccountFacts(Stage.ACTIVE, date(2027, 6, 30)), date(2026, 1, 1),
         "account is not in its grace period (state: active)"),
        (TITULAIRE, AccountFacts(Stage.CREATED), date(2026, 1, 1),
         "account is not in its grace period (state: created)"),
        (TITULAIRE, in_grace(TITULAIRE, date(2024, 6, 30), date(2027, 6, 30)), date(2027, 1, 1),
         "profile titulaire allows at most 2 extensions and 2 were granted"),
    ],
)  # fmt: skip
def test_extension_refusals_say_why(
    rules: ProfileRules, facts: AccountFacts, today: date, reason: str
) -> None:
    evaluation = run(rules, facts, today)
    assert evaluation.extension_refusal == reason
    assert not evaluation.extension_allowed
    with pytest.raises(RefusedError) as refused:
        extend(rules, facts, today)
    assert refused.value.message == reason


def test_active_account_past_its_end_of_activity_can_be_extended() -> None:
    grant = extend(TITULAIRE, AccountFacts(Stage.ACTIVE, date(2026, 6, 30)), date(2026, 9, 1))
    assert grant.grace_end == date(2028, 6, 30)
    assert grant.extensions_granted == 1


def test_forced_extension_of_an_expired_account_counts_from_the_old_grace_end() -> None:
    facts = expired(date(2025, 12, 31), date(2026, 12, 31))
    grant = extend(TITULAIRE, facts, date(2027, 1, 5), force=True)
    assert grant.previous_grace_end == date(2026, 12, 31)
    assert grant.grace_end == date(2027, 12, 31)
    assert (grant.extensions_applied, grant.extensions_granted) == (1, 1)


def test_forced_extension_of_a_long_expired_account_applies_whole_extensions_up_to_today() -> None:
    facts = expired(date(2023, 12, 31), date(2024, 12, 31))
    grant = extend(CONTRACTUEL, facts, date(2026, 3, 1), force=True)
    assert grant.grace_end == date(2026, 12, 31)
    assert (grant.extensions_applied, grant.extensions_granted) == (2, 2)
    assert count_extensions(CONTRACTUEL, date(2023, 12, 31), grant.grace_end) == 2
    with pytest.raises(RefusedError, match="at most 2 extensions and 0 were granted; 3 would"):
        extend(TITULAIRE, facts, date(2027, 3, 1), force=True)


def test_force_does_not_override_the_profile_or_the_maximum() -> None:
    with pytest.raises(RefusedError, match="not extendable"):
        extend(
            VACATAIRE, expired(date(2026, 6, 30), date(2026, 12, 31)), date(2027, 2, 1), force=True
        )
    used_up = expired(date(2023, 6, 30), date(2026, 6, 30))
    with pytest.raises(RefusedError, match="2 were granted"):
        extend(TITULAIRE, used_up, date(2026, 7, 2), force=True)


# --- the whole life, day by day -----------------------------------------------------------


def apply(action: Action | None, facts: AccountFacts, evaluation: Evaluation) -> AccountFacts:
    """What the sweep writes, read back as the directory would give it."""
    if action is None or action.kind in (ActionKind.WARN, ActionKind.PURGE):
        return facts
    assert evaluation.grace_end is not None and facts.end_of_activity is not None
    if action.kind is ActionKind.SUSPEND:
        state = grace_states(facts.end_of_activity, evaluation.grace_end)[0]
    else:
        state = expired_states(evaluation.grace_end)[0]
    return AccountFacts.from_state(ResourceState.parse(state.format()), facts.end_of_activity)


@settings(max_examples=40)
@given(profiles, days, st.integers(min_value=0, max_value=3))
def test_daily_sweep_follows_the_policy(
    rules: ProfileRules, end_of_activity: date, missed_every: int
) -> None:
    facts = AccountFacts(Stage.ACTIVE, end_of_activity)
    grace_end = grace_end_for(rules, end_of_activity)
    purged_on = None
    today = end_of_activity - DAY * 3
    while purged_on is None:
        evaluation = run(rules, facts, today)
        facts = apply(evaluation.action_due, facts, evaluation)
        expected = Stage.ACTIVE if today <= end_of_activity else Stage.GRACE
        if today > grace_end:
            expected = Stage.EXPIRED
        assert evaluation.stage_today is expected
        assert facts.stage is expected
        if evaluation.action_due == Action(ActionKind.PURGE):
            purged_on = today
        today += DAY * (1 + (missed_every and today.day % (missed_every + 2) == 0))
    assert purged_on >= grace_end + DAY * (1 + PURGE)
    assert purged_on - (grace_end + DAY * (1 + PURGE)) <= DAY


# --- memo and validation ------------------------------------------------------------------


@given(
    profiles,
    st.sampled_from(list(Stage)),
    st.one_of(st.none(), days),
    st.one_of(st.none(), days),
    st.one_of(st.none(), days),
    days,
)
def test_memoised_evaluations_equal_fresh_ones(
    rules: ProfileRules,
    stage: Stage,
    end: date | None,
    grace_end: date | None,
    since: date | None,
    today: date,
) -> None:
    facts = AccountFacts(stage, end, grace_end, since, since)
    twin = ProfileRules(
        rules.key,
        rules.grace_months,
        rules.extendable,
        rules.extension_months,
        rules.max_extensions,
    )
    first = run(rules, facts, today)
    engine._memo.clear()
    assert run(twin, facts, today) == first
    assert run(rules, facts, today) is run(rules, facts, today)


def test_dates_at_the_ends_of_the_calendar_are_invalid_input() -> None:
    facts = AccountFacts(Stage.GRACE, None, date.max, stage_since=date.min)
    with pytest.raises(InvalidInputError, match="ends of the calendar"):
        run(TITULAIRE, facts, date(2026, 1, 1))


@pytest.mark.parametrize(
    "arguments",
    [("", 6), ("x", 0), ("x", 12, True, 0), ("x", 12, True, 12, -1)],
)
def test_meaningless_rules_are_invalid_input(arguments: tuple[object, ...]) -> None:
    with pytest.raises(InvalidInputError):
        ProfileRules(*arguments)  # type: ignore[arg-type]


@given(profiles, st.sampled_from(list(Stage)), *[st.one_of(st.none(), st.dates())] * 3, st.dates())
def test_any_dates_give_an_evaluation_or_invalid_input(
    rules: ProfileRules,
    stage: Stage,
    end: date | None,
    grace_end: date | None,
    since: date | None,
    today: date,
) -> None:
    facts = AccountFacts(stage, end, grace_end, since, since)
    try:
        evaluation = run(rules, facts, today)
    except InvalidInputError:
        return
    assert evaluation.extension_allowed is (evaluation.extension_refusal is None)


def test_an_account_awaiting_deletion_is_purgeable_since_its_state_began() -> None:
    state = ResourceState("COMPTE", "I", "SupannSupprCompte", date(2026, 8, 1))
    facts = AccountFacts.from_state(state, date(2025, 12, 31))
    assert facts.stage is Stage.EXPIRED and facts.awaiting_deletion
    evaluation = run(VACATAIRE, facts, date(2026, 8, 1))
    assert evaluation.action_due == Action(ActionKind.PURGE)
    assert evaluation.purgeable_on == date(2026, 8, 1)
