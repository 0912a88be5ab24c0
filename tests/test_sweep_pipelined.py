"""The sweep sends a batch's modifies together: what a lost connection or a conflict leaves.

The modifies of a batch are in flight at once (``Directory.modify_many``), each answered,
audited and told in the batch's order. When the connection drops, the modifies sent and
unanswered may or may not have been applied: each is settled on a fresh connection to the
same server (sent again under the same assertion, the entry read back on a conflict), so the
audit log names exactly what the directory holds and only those people are told. What
cannot be settled (no fresh connection) is audited ``unknown``, as one write at a time is.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import tomllib
from collections import Counter
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from command_line import umacct
from days import TODAY, days, month_end, months
from people import add_person, outbox_mails, read
from test_faults_support import (
    MODIFY_RESPONSE,
    STATE_DATE,
    LosingProxy,
    Site,
    accounts_in_grace,
    assert_audit_agrees,
    assert_one_line_error,
    audit_trail,
    departed,
    letters,
    proxies,
    site,
    through_proxy,
)

from umacct.directory import Change
from umacct.policy import active_states
from umacct.services import sweep as sweep_module
from umacct.services.runtime import Runtime
from umacct.services.sweep import SWEEP_BATCH

__all__ = ["proxies", "site"]

PEOPLE = SWEEP_BATCH + 50  # two batches: the second is left for the rerun
LOST = 20  # the answer that never comes back


def _people(site: Site, count: int) -> set[str]:
    domain = site.config.profiles["vacataire"].domain
    uids = [f"pia.{letters(n).lower()}" for n in range(count)]
    site.add_people([departed(uid, "vacataire", month_end(-1), domain) for uid in uids])
    return {f"{uid}@{domain}" for uid in uids}


def _told(site: Site) -> Counter[str]:
    """How many grace mails each account got (they go to the account's own address)."""
    return site.outbox_recipients()


def _written(site: Site) -> dict[str, Counter[str]]:
    """The sweep's audit trail per account, without the pending records naming batches."""
    trail = {}
    for account, counts in audit_trail(site, "sweep").items():
        written = Counter({result: n for result, n in counts.items() if result != "pending"})
        if written:
            trail[account] = written
    return trail


def _named_pending(site: Site) -> set[str]:
    """The accounts a pending record of the sweep named before a batch's writes went."""
    trail = audit_trail(site, "sweep")
    return {account for account, counts in trail.items() if counts["pending"]}


def test_a_connection_lost_in_a_pipelined_batch_audits_and_tells_exactly_what_was_applied(
    site: Site, proxies: list[LosingProxy]
) -> None:
    everyone = _people(site, PEOPLE)
    proxy = LosingProxy(site.directory.port, MODIFY_RESPONSE, LOST)
    proxies.append(proxy)
    through_proxy(site, proxy)

    first = site.run("sweep")
    assert proxy.dropped.is_set()
    assert_one_line_error(first.stderr, (69,), first.returncode)
    in_grace = accounts_in_grace(site)
    # The batch's modifies in flight were settled; those not sent yet, and the next batch, wait.
    assert LOST <= len(in_grace) < SWEEP_BATCH
    assert in_grace <= _named_pending(site)  # each named on disk before its write went
    trail = _written(site)
    assert set(trail) == in_grace  # every change made has its record, and only those
    assert all(counts == Counter(ok=1) for counts in trail.values())  # none left unknown
    assert _told(site) == Counter(dict.fromkeys(in_grace, 1))  # told exactly what was done

    rerun = site.run("sweep")
    assert rerun.returncode == 0, rerun.stderr
    assert accounts_in_grace(site) == everyone
    trail = _written(site)
    assert set(trail) == everyone
    assert all(counts == Counter(ok=1) for counts in trail.values())  # nothing twice
    assert _told(site) == Counter(dict.fromkeys(everyone, 1))


class _NoSecondChance(LosingProxy):
    """A proxy that, once it has cut the connection, lets no other one through: nothing settles."""

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                if self.dropped.is_set():
                    client.close()
                    continue
                server = socket.create_connection(("127.0.0.1", self.target_port))
                threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
                threading.Thread(target=self._answers, args=(server, client), daemon=True).start()


def test_modifies_that_cannot_be_settled_are_audited_unknown_and_nobody_is_told_of_them(
    site: Site, proxies: list[LosingProxy]
) -> None:
    everyone = _people(site, PEOPLE)
    direct = tomllib.loads(site.config_path.read_text(encoding="utf-8"))["directory"]["urls"]
    proxy = _NoSecondChance(site.directory.port, MODIFY_RESPONSE, LOST)
    proxies.append(proxy)
    through_proxy(site, proxy)

    first = site.run("sweep")
    assert_one_line_error(first.stderr, (69,), first.returncode)
    in_grace = accounts_in_grace(site)
    trail = _written(site)
    confirmed = {account for account, counts in trail.items() if counts == Counter(ok=1)}
    uncertain = {account for account, counts in trail.items() if counts == Counter(unknown=1)}
    assert confirmed | uncertain == set(trail)
    assert len(confirmed) == LOST - 1  # the answers read before the cut
    assert uncertain  # the lost one at least, applied all the same
    assert confirmed <= in_grace <= confirmed | uncertain
    assert _told(site) == Counter(dict.fromkeys(confirmed, 1))  # only what is known

    document = tomllib.loads(site.config_path.read_text(encoding="utf-8"))
    document["directory"]["urls"] = direct
    site.config_path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    rerun = site.run("sweep")
    assert rerun.returncode == 0, rerun.stderr
    assert accounts_in_grace(site) == everyone
    assert_audit_agrees(site, "sweep", everyone)
    # A write in doubt that had been applied is not done again (nor audited again).
    trail = _written(site)
    assert all(trail[account] == Counter(unknown=1) for account in in_grace & uncertain)


# --- a conflict in the middle of a batch (in process, on the shared directory) -------------


@pytest.mark.usefixtures("directory_clean")
def test_an_assertion_failure_in_a_pipelined_batch_fails_that_account_alone(
    on: Callable[[date], Runtime], config_path: Path, tmp_path: Path
) -> None:
    setup = on(TODAY)
    people = [
        add_person(
            setup, f"rio.{letters(n).lower()}", profile="vacataire", end_of_activity=days(-1)
        )
        for n in range(12)
    ]
    moved = people[5]
    other_writer = [state.format() for state in active_states(months(-1))]
    real_send = sweep_module.send_changes

    def send_after_another_writer(runtime: Runtime, changes: Any, **options: Any) -> Any:
        # Between the sweep's read and its writes, another tool rewrites one account's state.
        writer = on(TODAY)
        writer.directory.modify(
            moved.dn, [Change("replace", writer.config.attributes.state_date, other_writer)]
        )
        return real_send(runtime, changes, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sweep_module, "send_changes", send_after_another_writer)
        code, _, stderr = umacct("sweep")
    assert code == 75, stderr
    [line] = [line for line in stderr.splitlines() if line.startswith("umacct: error: ")]
    assert moved.dn in line and "changed meanwhile" in line and "LDAP 122" in line

    runtime = on(TODAY)
    audited = [r.account for r in runtime.audit.read() if r.command == "sweep" and r.account]
    others = [person for person in people if person is not moved]
    # Every other account of the batch went on: suspended, audited once, told once.
    assert audited == [person.identifier for person in others]
    for person in others:
        assert read(runtime, person).get(STATE_DATE)[0].startswith("{COMPTE}A:SupannSursis:")
    told = Counter(str(message["To"]) for message in outbox_mails(runtime))
    assert moved.identifier not in told and set(told.values()) == {1} and len(told) == 11
    # The moved account is as the other writer left it; the rerun sees it and suspends it.
    assert read(runtime, moved).get(STATE_DATE) == other_writer
    code, _, stderr = umacct("sweep")
    assert code == 0, stderr
    assert read(runtime, moved).get(STATE_DATE)[0].startswith("{COMPTE}A:SupannSursis:")
    audited = [r.account for r in runtime.audit.read() if r.command == "sweep" and r.account]
    assert sorted(audited) == sorted(person.identifier for person in people)


def test_a_settled_resend_never_undoes_a_write_made_since_the_first_copy(
    on: Callable[[date], Runtime],
) -> None:
    """The first copy applied, the account put back by hand: the resend must not cut it again."""
    from umacct.directory.modifies import ModifyRequest, Settled
    from umacct.services.accounts import iter_accounts
    from umacct.services.changes import PlannedChange, modify_of

    runtime = on(TODAY)
    person = add_person(runtime, "reinstated.meanwhile", extra={"description": ["active"]})
    config = runtime.config
    account = next(iter_accounts(runtime.directory, config, f"(uid={person.uid})", marked=True))
    planned = modify_of(runtime, PlannedChange(account, {"description": ["suspended"]}))
    assert planned.unchanged is not None  # the entry's entryCSN, read with it
    request = ModifyRequest(
        person.dn, (Change("replace", "description", ("suspended",)),), "(description=active)",
        unchanged=planned.unchanged,
    )  # fmt: skip
    batch = runtime.directory.modify_many([request])
    batch.result(0)  # applied; as if its answer had been lost
    runtime.directory.modify(person.dn, [Change("replace", "description", ("active",))])
    assert batch.settle(0, runtime.connect_directory) is Settled.UNKNOWN
    batch.close()
    assert read(runtime, person).get("description") == ["active"]
