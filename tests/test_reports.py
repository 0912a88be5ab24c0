"""Reports, end to end against slapd and a real SMTP server: rows, formats and reminders."""

from __future__ import annotations

import csv
import io
import json
import os
import tomllib
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from command_line import umacct
from days import TODAY, days
from people import add_person, read
from smtp_fixtures import SmtpTestServer

from umacct.directory import Change
from umacct.errors import InvalidInputError
from umacct.services.reports import (
    DomainCount,
    external_forwards,
    forwards_by_domain,
    missing_recovery,
    pending_activations,
    stale_passwords,
)
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")

FAR = days(410)  # passwords set today are more than a year old then


def cli(*args: str, day: date = TODAY) -> tuple[int, str, str]:
    """Run the CLI on ``day``; return the exit code, stdout and stderr."""
    return umacct(*args, day=day)


def _rewrite(config_path: Path, **tables: dict[str, Any]) -> None:
    document = tomllib.loads(config_path.read_text("utf-8"))
    document.update(tables)
    config_path.write_bytes(tomli_w.dumps(document).encode("utf-8"))
    os.chmod(config_path, 0o600)


@pytest.fixture
def smtp_config(config_path: Path, smtp_server: SmtpTestServer) -> SmtpTestServer:
    """Mail goes to the loopback SMTP server."""
    smtp = {"host": smtp_server.host, "port": smtp_server.port, "security": "none"}
    _rewrite(config_path, mail={"transport": "smtp", "smtp": smtp})
    return smtp_server


def test_stale_passwords_and_reminders_once_per_period(
    on: Callable[[date], Runtime], smtp_config: SmtpTestServer
) -> None:
    setup = on(TODAY)
    first = add_person(setup, "ana.lopez", profile="titulaire")
    second = add_person(setup, "bo.chen", profile="etudiant")
    add_person(setup, "cy.dupont", awaiting_activation=True)  # no password in use: not listed
    assert list(stale_passwords(setup)) == []

    later = on(FAR)
    rows = {row.account: row for row in stale_passwords(later)}
    assert set(rows) == {first.identifier, second.identifier}
    assert rows[first.identifier].password_changed is not None

    dry = {row.account: row.notice for row in stale_passwords(later, notify=True, dry_run=True)}
    assert set(dry.values()) == {"would send"}
    assert smtp_config.received == []

    sent = {row.account: row.notice for row in stale_passwords(later, notify=True)}
    assert set(sent.values()) == {"sent"}
    recipients = sorted(rcpt for mail in smtp_config.received for rcpt in mail.rcpt_tos)
    assert recipients == sorted([first.identifier, second.identifier])
    assert "mot de passe" in str(smtp_config.received[0].message["Subject"])

    again = {row.notice for row in stale_passwords(later, notify=True)}
    assert again == {f"already reminded on {FAR.isoformat()}"}
    assert len(smtp_config.received) == 2
    month_later = on(FAR + timedelta(days=31))
    assert {row.notice for row in stale_passwords(month_later, notify=True)} == {"sent"}
    assert len(smtp_config.received) == 4


def test_stale_passwords_cli(on: Callable[[date], Runtime], smtp_config: SmtpTestServer) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "dee.martin", profile="titulaire")
    # slapd stamps the password change with its own clock, at the real time of day: the
    # report runs tomorrow so that "--older-than 0s" surely covers it.
    tomorrow = days(1)
    code, out, _ = cli("--json", "report", "stale-passwords", day=tomorrow)
    assert code == 0 and json.loads(out) == []
    every = ["--older-than", "0s", "--notify", "--dry-run"]
    code, out, _ = cli("--json", "report", "stale-passwords", *every, day=tomorrow)
    assert code == 0
    assert json.loads(out) == [
        {
            "account": person.identifier,
            "name": "Dee Martin",
            "profile": "titulaire",
            "stage": "active",
            "password_changed": json.loads(out)[0]["password_changed"],
            "notice": "would send",
            "dry_run": True,  # every JSON result of a dry run says so
        }
    ]
    assert smtp_config.received == []
    assert runtime.store.last_notice(person.identifier, "reminder_stale_password") is None
    code, _, err = cli("report", "stale-passwords", "--older-than", "a year")
    assert code == 2 and "--older-than" in err


def test_missing_recovery_with_plain_addresses(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    without = add_person(runtime, "eli.bernard", profile="titulaire")
    runtime.directory.modify(without.dn, [Change("delete", "supannMailPerso")])
    add_person(runtime, "fay.morel", profile="titulaire")
    assert [row.account for row in missing_recovery(runtime)] == [without.identifier]
    code, out, _ = cli("report", "missing-recovery", "--format", "csv")
    assert code == 0
    assert [row["account"] for row in csv.DictReader(io.StringIO(out))] == [without.identifier]


def test_missing_recovery_with_labelled_values(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    _rewrite(config_path, attributes={"recovery_mail": "supannMailPrive"})
    runtime = on(TODAY)
    labelled_only = add_person(
        runtime, "gil.roux", extra={"supannMailPrive": ["{PERSO}gil@example.net"]}
    )
    add_person(runtime, "hal.petit", extra={"supannMailPrive": ["{SECOURS}hal@example.net"]})
    add_person(
        runtime,
        "ida.faure",
        extra={"supannMailPrive": ["{PERSO}ida@example.net", "ida@example.org"]},
    )
    none_at_all = add_person(runtime, "jo.blanc")
    waiting = add_person(runtime, "kim.leroy", awaiting_activation=True)
    found = {row.account for row in missing_recovery(runtime)}
    assert found == {labelled_only.identifier, none_at_all.identifier}
    assert waiting.identifier not in found
    code, out, _ = cli("--json", "report", "missing-recovery")
    assert code == 0
    assert {row["account"] for row in json.loads(out)} == found


def test_missing_recovery_reminder_goes_to_the_institutional_address(
    on: Callable[[date], Runtime], smtp_config: SmtpTestServer
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "lea.noel", profile="titulaire")
    runtime.directory.modify(person.dn, [Change("delete", "supannMailPerso")])
    code, out, _ = cli("--json", "report", "missing-recovery", "--notify")
    assert code == 0
    assert (json.loads(out)[0]["notice"], json.loads(out)[0]["dry_run"]) == ("sent", False)
    assert smtp_config.received[0].rcpt_tos == [person.identifier]
    code, out, _ = cli("--json", "report", "missing-recovery", "--notify")
    assert json.loads(out)[0]["notice"].startswith("already reminded on")
    assert len(smtp_config.received) == 1


def test_pending_activation(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    six_days_ago = days(-6)  # more than the default 24 hours, less than 30 days
    forgotten = add_person(runtime, "max.garnier", awaiting_activation=True, since=six_days_ago)
    add_person(runtime, "ned.rey", awaiting_activation=True, since=TODAY)
    relinked = add_person(runtime, "oda.vidal", awaiting_activation=True, since=six_days_ago)
    runtime.tokens.issue(relinked.identifier, TokenPurpose.ACTIVATION, timedelta(hours=24))
    add_person(runtime, "pia.simon")
    rows = list(pending_activations(runtime))
    assert [(row.account, row.created_on) for row in rows] == [(forgotten.identifier, six_days_ago)]
    assert list(pending_activations(runtime, older_than="30d")) == []
    code, out, _ = cli("--json", "report", "pending-activation")
    assert code == 0
    assert [row["account"] for row in json.loads(out)] == [forgotten.identifier]
    with pytest.raises(InvalidInputError):
        list(pending_activations(runtime, older_than="soon"))


def test_forwarding_by_domain(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    for uid, target in (
        ("quy.tran", "quy@gmail.com"),
        ("rita.blum", "rita@gmail.com"),
        ("sam.ortiz", "sam@example.net"),
        ("tom.weil", "tom.weil@etu.umontpellier.fr"),
    ):
        add_person(runtime, uid, extra={"mailForwardingAddress": [target]})
    add_person(runtime, "uma.klein")
    assert forwards_by_domain(external_forwards(runtime)) == [
        DomainCount("gmail.com", 2),
        DomainCount("example.net", 1),
    ]
    code, out, _ = cli("--json", "report", "forwarding")
    assert code == 0
    assert json.loads(out) == [
        {"domain": "gmail.com", "forwards": 2},
        {"domain": "example.net", "forwards": 1},
    ]
    code, out, _ = cli("report", "forwarding", "--detail", "--format", "csv")
    assert code == 0
    detail = list(csv.DictReader(io.StringIO(out)))
    assert sorted(row["address"] for row in detail) == [
        "quy@gmail.com",
        "rita@gmail.com",
        "sam@example.net",
    ]
    code, out, _ = cli("report", "forwarding")
    assert code == 0 and "gmail.com" in out


def test_reports_change_nothing_without_notify(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "vic.hugo", extra={"mailForwardingAddress": ["v@example.net"]})
    runtime.directory.modify(person.dn, [Change("delete", "supannMailPerso")])
    before = read(runtime, person)
    for report in ("stale-passwords", "missing-recovery", "pending-activation", "forwarding"):
        assert cli("--json", "report", report)[0] == 0
    assert read(runtime, person) == before
    assert runtime.audit.read() == []
    assert runtime.mailer.pending() == []
    assert runtime.store.last_notice(person.identifier, "reminder_missing_recovery") is None
