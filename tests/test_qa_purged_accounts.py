"""QA (issue 17): every command that takes an ACCOUNT says a purged one was purged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from command_line import umacct
from days import TODAY, month_end
from people import add_person

from umacct.services.lifecycle import suspend
from umacct.services.purge import purge
from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")


def _purged(runtime: Runtime, uid: str) -> str:
    person = add_person(runtime, uid, profile="autre_personnel", end_of_activity=month_end(-6))
    suspend(runtime, person.identifier, reason="left", notice=False)
    purge(runtime, person.identifier)
    return person.identifier


@pytest.mark.parametrize(
    "command",
    [
        ["purge", "--yes", "--reason", "again"],
        ["activate"],
        ["reset"],
        ["extend", "--reason", "asked"],
        ["lock", "--kind", "technical", "--reason", "x"],
        ["unlock", "--reason", "x"],
        ["suspend", "--reason", "left"],
        ["set-recovery", "@", "someone@example.org"],
        ["redirect", "@", "someone@example.org"],
        ["directory", "show", "@"],
        ["directory", "set", "@", "title=Ingénieur"],
    ],
)
def test_a_purged_account_is_named_purged(
    on: Callable[[date], Runtime], command: list[str]
) -> None:
    account = _purged(on(TODAY), "ida.vidal")
    name, *rest = command
    args = [name, *(account if part == "@" else part for part in rest)]
    if "@" not in command:
        args.insert(1, account)
    code, out, err = umacct(*args)
    assert code == 67, (args, code, out, err)
    assert f"{account} was purged on {TODAY.isoformat()}" in err, err
    assert f"umacct restore {account} --reason" in err, err


def test_unsuspend_keeps_its_documented_refusal(on: Callable[[date], Runtime]) -> None:
    account = _purged(on(TODAY), "jo.vidal")
    code, _, err = umacct("unsuspend", account, "--reason", "x")
    assert code == 77 and f"umacct restore {account}" in err, err


def test_an_unknown_account_is_still_unknown(on: Callable[[date], Runtime]) -> None:
    on(TODAY)
    code, _, err = umacct("reset", "nobody.here@umontpellier.fr")
    assert code == 67 and "no account" in err and "purged" not in err, err
