"""Which accounts a mailed confirmation link may still change: not locked, not expired."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from command_line import umacct
from days import TODAY
from people import LINK, add_person, mail_text, outbox_mails, read

from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")


def _last_confirm_token(runtime: Runtime) -> str:
    found = [LINK.search(mail_text(mail)) for mail in outbox_mails(runtime)]
    tokens = [match.group(2) for match in found if match and match.group(1) == "confirm"]
    return tokens[-1]


@pytest.mark.parametrize("awaiting", [False, True])
def test_a_recovery_address_is_confirmed_for_an_active_account_or_one_awaiting_activation(
    on: Callable[[date], Runtime], awaiting: bool
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "conf.stage", awaiting_activation=awaiting)
    code, _, err = umacct("set-recovery", person.identifier, "conf.new@example.org")
    assert code == 0, err
    code, _, err = umacct("set-recovery", "--token", _last_confirm_token(runtime))
    assert code == 0, err
    assert "conf.new@example.org" in str(read(runtime, person).get("supannMailPerso"))


def test_a_recovery_address_is_not_confirmed_once_the_account_is_locked(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "conf.locked")
    assert umacct("set-recovery", person.identifier, "conf.bad@example.org")[0] == 0
    token = _last_confirm_token(runtime)
    assert umacct("lock", person.identifier, "--kind", "administrative", "--reason", "x")[0] == 0
    code, _, err = umacct("set-recovery", "--token", token)
    assert code in (65, 77), err  # the lock cancelled the link, or it is refused: never stored
    assert "conf.bad@example.org" not in str(read(runtime, person).get("supannMailPerso"))
