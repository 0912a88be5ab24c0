"""The sweep reads its due accounts in two searches, each account once (issue 18).

Without the README's indexes every search reads every entry: the arrivals are one search and
the suspension, reactivation, grace and purge steps one OR filter, not four searches.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from days import TODAY, month_end
from people import add_person, compte, generalized, read
from test_batch_lookups import counted

from umacct.directory import Change
from umacct.services.runtime import Runtime
from umacct.services.sweep import SweepSummary, due_accounts, sweep

pytestmark = pytest.mark.usefixtures("directory_clean")


def test_the_due_accounts_are_two_searches_and_each_account_comes_once(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    due = add_person(runtime, "ana.due", end_of_activity=TODAY - timedelta(days=3))
    back = add_person(runtime, "ben.back", profile="etudiant", end_of_activity=month_end(-1))
    add_person(runtime, "carl.calm", end_of_activity=TODAY + timedelta(days=300))
    summary = SweepSummary(runtime.today(), dry_run=False)
    assert len(list(sweep(runtime, summary))) == 2
    assert compte(read(runtime, back)).startswith("{COMPTE}A:SupannSursis")
    # In grace, his end of activity moved later: the reactivation filter selects him, and
    # so does the grace filter (no pwdEndTime left by another tool). He comes once.
    runtime.directory.modify(
        back.dn,
        [
            Change("replace", "supannEtuDateFin", (generalized(month_end(11)),)),
            Change("delete", "pwdEndTime", ()),
        ],
    )
    spy = counted(runtime)
    found = [account.identifier for account in due_accounts(runtime, TODAY)]
    assert len(spy.searches) == 2
    assert found == [back.identifier]
    assert due.identifier not in found  # swept already: in grace, not due again
