"""Locks: the directory refuses the login; unlock puts back what was there; the sweep leaves it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from command_line import umacct
from days import TODAY, month_end
from people import add_person, compte, outbox_mails, read

from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")


@pytest.mark.parametrize(
    ("kind", "substate", "told"),
    [
        ("technical", "SupannVerrouTechnique", False),
        ("administrative", "SupannVerrouAdministratif", True),
    ],
)
def test_lock_refuses_logins_cancels_links_and_unlock_puts_it_back(
    on: Callable[[date], Runtime], kind: str, substate: str, told: bool
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, f"lock.{kind}", profile="vacataire", end_of_activity=month_end(-1))
    before = compte(read(runtime, person))
    runtime.tokens.issue(person.identifier, TokenPurpose.RESET, timedelta(hours=1))
    code, _, err = umacct("--json", "lock", person.identifier, "--kind", kind, "--reason", "abuse")
    assert code == 0, err
    entry = read(runtime, person)
    assert compte(entry) == f"{{COMPTE}}S:{substate}:{TODAY:%Y%m%d}:"
    assert not runtime.directory.check_password(person.dn, person.password)
    assert runtime.tokens.pending(person.identifier) == []
    mails = [m for m in outbox_mails(runtime) if "verrouillé" in str(m["Subject"])]
    assert bool(mails) is told
    assert json.loads(umacct("--json", "sweep")[1]) == [] or all(
        r["action"] == "skipped" for r in json.loads(umacct("--json", "sweep")[1])
    )
    assert compte(read(runtime, person)).startswith(f"{{COMPTE}}S:{substate}")
    code, _, err = umacct("unlock", person.identifier, "--reason", "cleared")
    assert code == 0, err
    assert compte(read(runtime, person)) == before
    assert runtime.directory.check_password(person.dn, person.password)


def test_lock_and_unlock_need_a_reason_and_refuse_foreign_locks(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime, "foreign.lock", state_values=["{COMPTE}S:SupannVerrouille:20260101:"]
    )
    assert umacct("lock", person.identifier, "--kind", "technical")[0] == 2
    assert umacct("lock", person.identifier, "--kind", "weird", "--reason", "x")[0] == 2
    assert umacct("lock", person.identifier, "--kind", "technical", "--reason", "x")[0] == 77
    assert umacct("unlock", person.identifier, "--reason", "x")[0] == 77
