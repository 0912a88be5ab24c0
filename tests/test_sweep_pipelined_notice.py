"""A departure notice just recorded is not looked up again: the evaluation is the same.

``departure_told`` records the notice, then evaluates the account with the key and day it
just wrote (``account_facts(..., notified=...)``) instead of reading them back from the
store. Compared here, on any account state, end of activity, clock instant and key, with
the evaluation that reads the store.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from people import generalized

from umacct.clock import FixedClock
from umacct.config import load_config
from umacct.directory import Entry
from umacct.policy import active_states, expired_states, grace_states
from umacct.services.accounts import (
    DEPARTURE_NOTICE,
    account_from_entry,
    departure_key,
    evaluate_account,
)
from umacct.services.runtime import Runtime

_NUMBERS = itertools.count()
_DAYS = st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    stage=st.sampled_from(["active", "grace", "grace-open", "expired"]),
    end=_DAYS,
    grace_days=st.integers(min_value=1, max_value=800),
    offset=st.integers(min_value=-5, max_value=900),
    moment=st.integers(min_value=0, max_value=86_400 * 1_000_000 - 1),
    zone=st.sampled_from(["Europe/Paris", "Pacific/Kiritimati", "America/Adak", "UTC"]),
    same_key=st.booleans(),
    profile=st.sampled_from(["titulaire", "vacataire", "etudiant", "autre_personnel"]),
)
def test_the_notice_just_recorded_gives_the_evaluation_the_store_gives(
    config_path: Path,
    stage: str,
    end: date,
    grace_days: int,
    offset: int,
    moment: int,
    zone: str,
    same_key: bool,
    profile: str,
) -> None:
    loaded = load_config(config_path)
    config = dataclasses.replace(loaded, policy=dataclasses.replace(loaded.policy, timezone=zone))
    states = {
        "active": active_states(end - timedelta(days=300)),
        "grace": grace_states(end, end + timedelta(days=grace_days)),
        # A grace state without its end (another tool's): the notice's day sets the end.
        "grace-open": tuple(
            dataclasses.replace(state, end=None)
            for state in grace_states(end, end + timedelta(days=grace_days))
        ),
        "expired": expired_states(end + timedelta(days=grace_days)),
    }[stage]
    settings_ = config.profiles[profile]
    uid = f"notice{next(_NUMBERS)}"
    entry = Entry(
        f"uid={uid},{config.directory.people_dn}",
        {
            "uid": [uid],
            "mail": [f"{uid}@{settings_.domain}"],
            config.directory.profile_attribute.lower(): [profile],
            config.attributes.state_date.lower(): [state.format() for state in states],
            settings_.end_date_attribute.lower(): [generalized(end)],
        },
    )
    account = account_from_entry(entry, config)
    # Told on a day near the account's dates: where the notice moves the grace end.
    now = datetime.combine(end, time(), UTC) + timedelta(days=offset, microseconds=moment)
    runtime = Runtime(config, clock=FixedClock(now.astimezone(ZoneInfo(zone))))
    try:
        key = departure_key(end if same_key else end - timedelta(days=1))
        instant = runtime.clock.now()
        recorded = runtime.store.record_notice(account.identifier, DEPARTURE_NOTICE, key, instant)
        assert recorded
        day = instant.astimezone(ZoneInfo(zone)).date()
        told = evaluate_account(runtime, account, settings_, (key, day))
        looked_up = evaluate_account(runtime, account, settings_)
        assert told == looked_up
    finally:
        runtime.close()
