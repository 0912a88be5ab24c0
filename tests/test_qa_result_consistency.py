"""QA (issue 17): results mean the same thing in every command's JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest
from command_line import umacct
from days import TODAY, month_end
from people import add_person

from umacct.services.helpdesk import list_accounts, show_account
from umacct.services.lifecycle import suspend
from umacct.services.locks import lock
from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")


def test_dry_runs_say_what_would_change(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    gone = add_person(
        runtime, "ana.leroy", profile="autre_personnel", end_of_activity=month_end(-6)
    )
    suspend(runtime, gone.identifier, reason="left", notice=False)
    leaving = add_person(runtime, "bob.leroy", profile="vacataire", end_of_activity=month_end(-1))
    for args in (
        ("purge", gone.identifier, "--dry-run", "--yes", "--reason", "x"),
        ("suspend", leaving.identifier, "--dry-run", "--reason", "x"),
    ):
        code, out, err = umacct("--json", *args)
        assert code == 0, (args, err)
        document = json.loads(out)
        assert (document["changed"], document["dry_run"]) == (True, True), (args, document)


def test_extensions_are_zero_when_known(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "cy.leroy", profile="titulaire")
    result = lock(runtime, person.identifier, kind="technical", reason="x")
    assert result.extensions == 0


def test_list_gives_the_grace_end_show_gives(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "dee.leroy", profile="vacataire", end_of_activity=month_end(-1))
    shown = show_account(runtime, person.identifier).grace_end
    assert shown is not None
    rows = [row for row in list_accounts(runtime) if row.account == person.identifier]
    assert [row.grace_end for row in rows] == [shown]
