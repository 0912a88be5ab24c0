"""``list --state purged`` lists the purges of every host (the store's), not this host's log."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest
from command_line import umacct
from days import TODAY, month_end
from people import add_person
from test_state_support import Host, branch, on_host, two_hosts

from umacct.services.helpdesk import list_purged
from umacct.services.lifecycle import suspend
from umacct.services.purge import purge
from umacct.services.runtime import Runtime

__all__ = ["branch", "on_host", "two_hosts"]

pytestmark = pytest.mark.usefixtures("directory_clean")


def test_an_account_purged_on_a_is_listed_on_b(
    two_hosts: tuple[Host, Host], on_host: Callable[[Host, date], Runtime]
) -> None:
    a, b = two_hosts
    on_a = on_host(a, TODAY)
    gone = add_person(on_a, "lou.vidal", profile="autre_personnel", end_of_activity=month_end(-6))
    also = add_person(on_a, "max.vidal", profile="autre_personnel", end_of_activity=month_end(-6))
    for person in (gone, also):
        suspend(on_a, person.identifier, reason="left", notice=False)
        purge(on_a, person.identifier)
    on_b = on_host(b, TODAY)
    rows = list(list_purged(on_b))
    assert [row.account for row in rows] == [gone.identifier, also.identifier]
    assert (rows[0].name, rows[0].profile) == ("Lou Vidal", "autre_personnel")  # its archive
    assert [row.account for row in list_purged(on_b, profile="etudiant")] == []

    record = on_b.store.find_purge(also.identifier)
    assert record is not None
    record.archive.unlink()  # an archive gone: the uid is all that is known
    code, out, err = umacct("--config", str(b.config_path), "list", "--state", "purged", "--json")
    assert code == 0, err
    listed = {row["account"]: row for row in json.loads(out)}
    assert listed[also.identifier]["name"] == "max.vidal"
    assert listed[gone.identifier]["stage"] == "purged"
