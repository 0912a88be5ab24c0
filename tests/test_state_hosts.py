"""Two hosts, one directory: two configurations, two data folders, one state branch.

Host A is the admin host (sweeps, purges, mails links), host B the web host (redeems them),
or two helpdesk machines: whatever one does, the other sees, and losing A's data folder
loses no pending link and no purged identifier.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY, days, month_end, months
from people import (
    LINK,
    NEW_PASSWORD,
    OTHER_PASSWORD,
    add_person,
    day_after,
    mail_text,
    outbox_mails,
    read,
)
from test_faults_support import departed, letters, wait_until
from test_state_support import Host, branch, on_host, two_hosts

from umacct.datadir import STATE_FILE
from umacct.errors import InvalidInputError
from umacct.localdir import LocalDirectory
from umacct.services.create import create_person
from umacct.services.create_input import new_person
from umacct.services.credentials import reset_with_token, send_reset
from umacct.services.lifecycle import suspend
from umacct.services.purge import purge
from umacct.services.runtime import Runtime
from umacct.services.sweep import SweepSummary, sweep
from umacct.state.directory_store import DirectoryStore
from umacct.store import SQLiteStore

__all__ = ["branch", "on_host", "two_hosts"]

pytestmark = pytest.mark.usefixtures("directory_clean")

Hosts = tuple[Host, Host]
OnHost = Callable[[Host, date], Runtime]
TOOL = [sys.executable, "-m", "umacct"]


def link_token(runtime: Runtime, purpose: str) -> str:
    """The token of the last link this host mailed (its outbox)."""
    found = LINK.search(mail_text(outbox_mails(runtime)[-1]))
    assert found is not None and found.group(1) == purpose
    return found.group(2)


def test_the_directory_backend_keeps_nothing_in_the_data_folder(
    two_hosts: Hosts, on_host: OnHost
) -> None:
    a, _ = two_hosts
    runtime = on_host(a, TODAY)
    assert isinstance(runtime.store, DirectoryStore)
    person = add_person(runtime, "no.file", profile="titulaire")
    send_reset(runtime, person.identifier)
    assert runtime.tokens.pending(person.identifier)
    assert not (a.data_dir / STATE_FILE).exists()


def test_sec03_sec40_a_link_mailed_from_a_is_redeemed_on_b_and_dead_on_a(
    two_hosts: Hosts, on_host: OnHost
) -> None:
    a, b = two_hosts
    on_a, on_b = on_host(a, TODAY), on_host(b, TODAY)
    person = add_person(on_a, "link.across", profile="titulaire")
    send_reset(on_a, person.identifier)
    token = link_token(on_a, "reset")
    reset_with_token(on_b, token, NEW_PASSWORD)
    assert on_b.directory.check_password(person.dn, NEW_PASSWORD)
    with pytest.raises(InvalidInputError, match="not valid"):
        reset_with_token(on_a, token, OTHER_PASSWORD)
    with pytest.raises(InvalidInputError, match="not valid"):
        reset_with_token(on_b, token, OTHER_PASSWORD)
    assert on_a.directory.check_password(person.dn, NEW_PASSWORD)


def test_sec03_a_link_cancelled_on_b_is_dead_on_a(two_hosts: Hosts, on_host: OnHost) -> None:
    a, b = two_hosts
    on_a, on_b = on_host(a, TODAY), on_host(b, TODAY)
    person = add_person(on_a, "link.cancelled", profile="titulaire")
    send_reset(on_a, person.identifier)
    first = link_token(on_a, "reset")
    send_reset(on_b, person.identifier)  # the helpdesk of B sends a new one
    with pytest.raises(InvalidInputError, match="not valid"):
        reset_with_token(on_a, first, NEW_PASSWORD)
    reset_with_token(on_a, link_token(on_b, "reset"), NEW_PASSWORD)


def test_sec21_sec40_an_identifier_purged_on_a_is_not_handed_out_by_b(
    two_hosts: Hosts, on_host: OnHost
) -> None:
    a, b = two_hosts
    on_a = on_host(a, TODAY)
    gone = add_person(on_a, "ines.roux", profile="autre_personnel", end_of_activity=month_end(-6))
    suspend(on_a, gone.identifier, reason="left", notice=False)
    purge(on_a, gone.identifier)
    on_b = on_host(b, TODAY)
    comer = new_person(
        on_b.config, given_name="Inès", surname="Roux", profile="vacataire",
        personal_email="ines.roux@example.net", end_of_activity=months(4),
    )  # fmt: skip
    assert create_person(on_b, comer).uid == "ines.roux2"
    recorded = on_b.store.find_purge("ines.roux")
    assert recorded is not None and recorded.archive_sha256 is not None


def test_a_suspension_on_a_is_undone_on_b_with_the_saved_affiliations(
    two_hosts: Hosts, on_host: OnHost
) -> None:
    a, b = two_hosts
    on_a = on_host(a, TODAY)
    unusual = ["member", "employee", "researcher"]  # not the profile's: only the store knows
    person = add_person(
        on_a, "back.again", profile="titulaire", end_of_activity=days(-1),
        extra={"eduPersonAffiliation": unusual, "eduPersonPrimaryAffiliation": ["researcher"]},
    )  # fmt: skip
    code, _, err = umacct("--config", str(a.config_path), "suspend", person.identifier,
                          "--reason", "HR error")  # fmt: skip
    assert code == 0, err
    assert read(on_a, person).get("eduPersonAffiliation") != unusual
    code, out, err = umacct("--config", str(b.config_path), "--json", "unsuspend",
                            person.identifier, "--reason", "HR error")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["action"] == "unsuspend"
    entry = read(on_host(b, TODAY), person)
    assert sorted(entry.get("eduPersonAffiliation")) == sorted(unusual)
    assert entry.get("eduPersonPrimaryAffiliation") == ["researcher"]


def test_sec40_deleting_a_data_folder_loses_no_pending_link_nor_purged_identifier(
    two_hosts: Hosts, on_host: OnHost
) -> None:
    a, b = two_hosts
    on_a = on_host(a, TODAY)
    person = add_person(on_a, "lost.host", profile="titulaire")
    send_reset(on_a, person.identifier)
    token = link_token(on_a, "reset")
    gone = add_person(on_a, "ines.roux", profile="autre_personnel", end_of_activity=month_end(-6))
    suspend(on_a, gone.identifier, reason="left", notice=False)
    purge(on_a, gone.identifier)
    on_a.close()
    shutil.rmtree(a.data_dir)  # the admin VM is lost
    again = on_host(a, TODAY)  # rebuilt from its configuration alone
    assert len(again.tokens.pending(person.identifier)) == 1
    assert again.store.find_purge("ines.roux") is not None
    reset_with_token(on_host(b, TODAY), token, NEW_PASSWORD)
    assert again.directory.check_password(person.dn, NEW_PASSWORD)


# --- sweeps on two hosts -----------------------------------------------------------------------

SWEEP_PEOPLE = 1500  # enough for host A's sweep to still run when host B's starts


def _spawn(host: Host, slapd: LocalDirectory, *args: str) -> subprocess.Popen[str]:
    environment = {**os.environ, "UMACCT_CONFIG": str(host.config_path),
                   "UMACCT_BIND_PASSWORD": slapd.bind_password}  # fmt: skip
    return subprocess.Popen(
        [*TOOL, *args], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _audit(host: Host) -> list[dict[str, object]]:
    path = host.data_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _recipients(host: Host) -> Counter[str]:
    counts: Counter[str] = Counter()
    for message in (host.data_dir / "outbox").glob("*.eml"):
        to = next(line for line in message.read_text().splitlines() if line.startswith("To: "))
        counts[to.removeprefix("To: ").strip()] += 1
    return counts


def test_sec40_two_sweeps_on_two_hosts_at_once_change_each_account_once(
    two_hosts: Hosts, slapd: LocalDirectory
) -> None:
    a, b = two_hosts
    domain = a.config.profiles["vacataire"].domain
    people = [
        departed(f"two.{letters(n).lower()}", "vacataire", month_end(-1), domain)
        for n in range(SWEEP_PEOPLE)
    ]
    blocks = []
    for attributes in people:
        lines = [f"dn: uid={attributes['uid'][0]},{slapd.people_dn}"]
        lines += [f"{name}: {value}" for name, values in attributes.items() for value in values]
        blocks.append("\n".join(lines))
    slapd.run_root("ldapadd", ldif="\n\n".join(blocks) + "\n")
    first = _spawn(a, slapd, "sweep", "--max-changes", str(SWEEP_PEOPLE))
    wait_until(lambda: len(_audit(a)) >= 5, "host A's sweep at work")
    second = _spawn(b, slapd, "sweep", "--max-changes", str(SWEEP_PEOPLE))
    _, err_b = second.communicate(timeout=120)
    still_running = first.poll() is None
    _, err_a = first.communicate(timeout=120)
    assert still_running, "host A's sweep ended too early for the test to mean anything"
    assert second.returncode == 75, err_b
    assert "another sweep is running (host " in err_b
    assert first.returncode == 0, err_a
    third = _spawn(b, slapd, "sweep")  # B's next run, once A is done: nothing left to do
    assert third.communicate(timeout=120)[0] is not None and third.returncode == 0
    suspended = Counter(
        str(record["account"])
        for host in (a, b)
        for record in _audit(host)
        if record["command"] == "sweep" and "supannRessourceEtatDate" in record["changes"]  # type: ignore[operator]
    )
    assert len(suspended) == SWEEP_PEOPLE and set(suspended.values()) == {1}
    mails = _recipients(a) + _recipients(b)
    assert len(mails) == SWEEP_PEOPLE and set(mails.values()) == {1}


def test_a_warning_sent_by_one_host_is_not_sent_again_by_the_other(
    two_hosts: Hosts, on_host: OnHost
) -> None:
    a, b = two_hosts
    ended = month_end(-1)
    warning_day = day_after(month_end(5)) - timedelta(days=30)  # vacataire: 6 months of grace
    person = add_person(on_host(a, ended), "warned.once", profile="vacataire",
                        end_of_activity=ended)  # fmt: skip

    def run(host: Host, day: date) -> list[str]:
        runtime = on_host(host, day)
        summary = SweepSummary(runtime.today(), False)
        return [outcome.action for outcome in sweep(runtime, summary)]

    assert run(a, day_after(ended)) == ["suspend"]
    assert run(b, warning_day) == ["warn"]
    assert run(a, warning_day) == []
    warnings = [
        message for host in (a, b) for message in outbox_mails(on_host(host, warning_day))
        if message["To"] == person.identifier
    ]  # fmt: skip
    assert len(warnings) == 2  # the departure notice (from A), then one warning (from B)


def test_with_sqlite_the_other_host_mails_again(
    two_hosts: Hosts, on_host: OnHost, tmp_path: Path
) -> None:
    """The case the directory backend fixes: two state.db files, a notice sent twice."""
    a, b = two_hosts
    for host in (a, b):
        text = host.config_path.read_text().replace('backend = "directory"', 'backend = "sqlite"')
        host.config_path.write_text(text)
    ended = month_end(-1)
    warning_day = day_after(month_end(5)) - timedelta(days=30)
    add_person(on_host(a, ended), "warned.twice", profile="vacataire", end_of_activity=ended)
    runtime = on_host(a, day_after(ended))
    assert isinstance(runtime.store, SQLiteStore)
    summary = SweepSummary(runtime.today(), False)
    assert [o.action for o in sweep(runtime, summary)] == ["suspend"]
    on_b = on_host(b, warning_day)
    # B's state.db does not know the notice A sent: B sends the departure notice again.
    assert [o.action for o in sweep(on_b, SweepSummary(on_b.today(), False))] == ["notice"]
