"""Activation, reset, password change, recovery address and forwarding, against slapd and SMTP."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from days import TODAY, days, ymd
from people import (
    NEW_PASSWORD,
    OTHER_PASSWORD,
    add_person,
    compte,
    last_mail_to,
    read,
    runtime_on,
    snapshot,
    token_in_mail,
)
from smtp_fixtures import SmtpTestServer

from umacct.errors import InvalidInputError, NotFoundError, RefusedError, UsageError
from umacct.services.addresses import (
    clear_forwarding,
    confirm_forwarding,
    confirm_recovery,
    request_forwarding,
    request_recovery,
    set_forwarding_now,
    set_recovery_now,
)
from umacct.services.credentials import (
    NO_RECOVERY,
    activate,
    change_password,
    reset_with_token,
    self_service_reset,
    send_activation,
    send_reset,
)
from umacct.services.links import flush_mail
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")


@pytest.fixture
def today(on: Callable[[date], Runtime], mail_relay: SmtpTestServer) -> Runtime:
    """A runtime for the real date, with mail going to the loopback relay."""
    return on(TODAY)


# --- activation and reset, end to end ---------------------------------------------------


def test_activate_then_reset_end_to_end(today: Runtime, mail_relay: SmtpTestServer) -> None:
    person = add_person(today, "lea.moreau", awaiting_activation=True)
    personal = "lea.moreau@example.net"
    sent = send_activation(today, person.identifier)
    assert sent.sent and sent.recipient == personal
    assert sent.expires_at - today.clock.now() == timedelta(hours=24)
    token = token_in_mail(mail_relay, personal, "activation")

    result = activate(today, token, NEW_PASSWORD)
    assert result.action == "activate"
    entry = read(today, person)
    assert compte(entry) == f"{{COMPTE}}A:SupannActif:{ymd(TODAY)}:"
    assert f"{{MAIL}}A:SupannActif:{ymd(TODAY)}:" in entry.get("supannRessourceEtatDate")
    assert today.directory.check_password(person.dn, NEW_PASSWORD)
    assert not today.directory.check_password(person.dn, person.password)

    send_reset(today, person.identifier)
    reset_token = token_in_mail(mail_relay, personal, "reset")
    reset_with_token(today, reset_token, OTHER_PASSWORD)
    assert today.directory.check_password(person.dn, OTHER_PASSWORD)
    assert not today.directory.check_password(person.dn, NEW_PASSWORD)
    subject, body = last_mail_to(mail_relay, personal)
    assert "mot de passe" in subject.lower()
    assert OTHER_PASSWORD not in body
    assert [record.command for record in today.audit.read(account=person.identifier)] == [
        "activation-link", "activate", "reset-link", "reset",
    ]  # fmt: skip


def test_sec12_password_is_stored_hashed(today: Runtime, mail_relay: SmtpTestServer) -> None:
    person = add_person(today, "ian.roux", awaiting_activation=True)
    send_activation(today, person.identifier)
    activate(today, token_in_mail(mail_relay, "ian.roux@example.net", "activation"), NEW_PASSWORD)
    stored = today.directory.read(person.dn, ["userPassword"])
    assert stored is not None
    assert all(value.startswith("{") for value in stored.get("userPassword"))
    assert NEW_PASSWORD not in str(stored.get("userPassword"))


def test_activation_sets_labelled_recovery_address(
    config_path: Path, mail_relay: SmtpTestServer
) -> None:
    runtime = _prive_runtime(config_path)
    try:
        person = add_person(runtime, "eva.blanc", awaiting_activation=True)
        send_activation(runtime, person.identifier)
        token = token_in_mail(mail_relay, "eva.blanc@example.net", "activation")
        result = activate(runtime, token, NEW_PASSWORD)
        assert result.recovery_set == "eva.blanc@example.net"
        assert read(runtime, person).get("supannMailPrive") == ["{SECOURS}eva.blanc@example.net"]
    finally:
        runtime.close()


def _prive_runtime(config_path: Path) -> Runtime:
    config = runtime_on(config_path, TODAY).config
    attributes = dataclasses.replace(config.attributes, recovery_mail="supannMailPrive")
    return runtime_on(dataclasses.replace(config, attributes=attributes), TODAY)


# --- tokens (security 1-7) -------------------------------------------------------------------


def test_sec03_new_activation_link_cancels_the_previous(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "noe.petit", awaiting_activation=True)
    send_activation(today, person.identifier)
    first = token_in_mail(mail_relay, "noe.petit@example.net", "activation")
    send_activation(today, person.identifier)
    second = token_in_mail(mail_relay, "noe.petit@example.net", "activation")
    before = snapshot(today, person)
    with pytest.raises(InvalidInputError, match="not valid"):
        activate(today, first, NEW_PASSWORD)
    assert snapshot(today, person) == before
    activate(today, second, NEW_PASSWORD)


def test_sec03_a_link_works_once(today: Runtime, mail_relay: SmtpTestServer) -> None:
    person = add_person(today, "ada.gros", awaiting_activation=True)
    send_activation(today, person.identifier)
    token = token_in_mail(mail_relay, "ada.gros@example.net", "activation")
    activate(today, token, NEW_PASSWORD)
    before = snapshot(today, person)
    with pytest.raises(InvalidInputError, match="not valid"):
        activate(today, token, OTHER_PASSWORD)
    assert snapshot(today, person) == before
    assert today.directory.check_password(person.dn, NEW_PASSWORD)


def test_sec04_activation_link_expires_after_24_hours(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    runtime = on(days(-1))
    person = add_person(runtime, "max.faure", awaiting_activation=True)
    send_activation(runtime, person.identifier)
    token = token_in_mail(mail_relay, "max.faure@example.net", "activation")
    later = on(TODAY)
    before = snapshot(later, person)
    with pytest.raises(InvalidInputError, match="expired"):
        activate(later, token, NEW_PASSWORD)
    assert snapshot(later, person) == before


def test_sec04_reset_link_lasts_one_hour(today: Runtime, mail_relay: SmtpTestServer) -> None:
    person = add_person(today, "tom.vidal", extra={"supannMailPerso": ["tom@example.net"]})
    sent = send_reset(today, person.identifier)
    assert sent.expires_at - today.clock.now() == timedelta(hours=1)


def test_sec06_no_token_in_audit_or_queue(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    today = on(TODAY)
    person = add_person(today, "rui.costa", awaiting_activation=True)
    mail_relay.stop()
    send_activation(today, person.identifier)
    queued = today.mailer.pending()
    mail_relay.start()
    flush_mail(on(TODAY))
    token = token_in_mail(mail_relay, "rui.costa@example.net", "activation")
    audit_text = today.config.paths.audit_log_path.read_text(encoding="utf-8")
    assert token not in audit_text
    assert queued and all(token not in str(mail.params) for mail in queued)


def test_sec07_self_service_reset_same_answer_whatever_the_account(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    with_recovery = add_person(today, "ana.soler")
    without = add_person(today, "bob.klein")
    today.directory.modify(without.dn, [_remove("supannMailPerso")])
    answers, durations = [], []
    for key in (with_recovery.identifier, without.identifier, "nobody@umontpellier.fr", "x)("):
        started = time.monotonic()
        answers.append(self_service_reset(today, key, minimum_seconds=0.4))
        durations.append(time.monotonic() - started)
    assert len(set(answers)) == 1
    assert min(durations) >= 0.4
    assert max(durations) - min(durations) < 0.3
    assert [mail.rcpt_tos for mail in mail_relay.received] == [["ana.soler@example.net"]]


def _remove(attribute: str) -> Any:
    from umacct.directory import Change

    return Change("replace", attribute, ())


def test_sec07_self_service_reset_is_rate_limited(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "cleo.marin")
    for number in range(5):
        self_service_reset(today, person.identifier, minimum_seconds=0)
        if number < 3:  # the owner uses each link: the next request may send another
            token = token_in_mail(mail_relay, "cleo.marin@example.net", "reset")
            with contextlib.suppress(InvalidInputError):
                reset_with_token(today, token, f"{NEW_PASSWORD} {number}")
    assert len(mail_relay.received) - 3 == today.config.tokens.reset_per_hour == 3
    records = today.audit.read(account=person.identifier)
    assert [r.result for r in records if r.command == "self-service-reset"] == [
        "rate-limited",
        "rate-limited",
    ]


def test_sec38_self_service_never_kills_the_owners_unexpired_link(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "ines.owner")
    self_service_reset(today, person.identifier, minimum_seconds=0)
    owners = token_in_mail(mail_relay, "ines.owner@example.net", "reset")
    for _ in range(10):  # someone else keeps typing her address on the public page
        self_service_reset(today, person.identifier, minimum_seconds=0)
    assert len(mail_relay.received) == 1
    reset_with_token(today, owners, NEW_PASSWORD)
    assert today.directory.check_password(person.dn, NEW_PASSWORD)


def test_self_service_sends_activation_to_account_awaiting_it(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "jade.henry", awaiting_activation=True)
    self_service_reset(today, person.identifier, minimum_seconds=0)
    token = token_in_mail(mail_relay, "jade.henry@example.net", "activation")
    activate(today, token, NEW_PASSWORD)


# --- refusals ---------------------------------------------------------------------------------


def test_activate_refuses_an_active_account(today: Runtime, mail_relay: SmtpTestServer) -> None:
    person = add_person(today, "hugo.simon")
    before = snapshot(today, person)
    with pytest.raises(RefusedError, match="awaiting activation"):
        send_activation(today, person.identifier)
    assert snapshot(today, person) == before
    assert not mail_relay.received


def test_sec09_weak_password_refused_with_reason_and_link_kept(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "lina.morel", awaiting_activation=True)
    send_activation(today, person.identifier)
    token = token_in_mail(mail_relay, "lina.morel@example.net", "activation")
    before = snapshot(today, person)
    for weak, reason in (
        ("Password2024!", "commonly used"),
        ("lina.morel-in-montpellier", "your"),
        ("short", "at least 12"),
        ("", "empty"),
    ):
        with pytest.raises(InvalidInputError, match=reason):
            activate(today, token, weak)
    assert snapshot(today, person) == before
    activate(today, token, NEW_PASSWORD)


def test_reset_without_recovery_address(today: Runtime, mail_relay: SmtpTestServer) -> None:
    person = add_person(today, "paul.roy")
    today.directory.modify(person.dn, [_remove("supannMailPerso")])
    before = snapshot(today, person)
    with pytest.raises(InvalidInputError, match=re.escape(NO_RECOVERY)):
        send_reset(today, person.identifier)
    assert snapshot(today, person) == before


def test_reset_refuses_an_account_awaiting_activation(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "zoe.lenoir", awaiting_activation=True)
    with pytest.raises(RefusedError, match="activate"):
        send_reset(today, person.identifier)


def test_unknown_account_is_not_found(today: Runtime) -> None:
    with pytest.raises(NotFoundError):
        send_activation(today, "nobody@umontpellier.fr")


# --- passwd -----------------------------------------------------------------------------------


def test_passwd_changes_password_after_checking_the_old_one(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "omar.diallo")
    before = snapshot(today, person)
    with pytest.raises(RefusedError, match="current password"):
        change_password(today, person.identifier, "not the password at all", NEW_PASSWORD)
    with pytest.raises(InvalidInputError, match="commonly used"):
        change_password(today, person.identifier, person.password, "Password2024!")
    with pytest.raises(InvalidInputError, match="empty"):
        change_password(today, person.identifier, "", NEW_PASSWORD)
    assert snapshot(today, person) == before
    change_password(today, person.identifier, person.password, NEW_PASSWORD)
    assert today.directory.check_password(person.dn, NEW_PASSWORD)
    assert not today.directory.check_password(person.dn, person.password)


# --- recovery address (security 13, 14) ---------------------------------------------------------


def test_sec14_recovery_address_stored_only_once_confirmed(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "ines.garcia")
    request_recovery(today, person.identifier, "Ines.G@Example.COM")
    assert read(today, person).get("supannMailPerso") == ["ines.garcia@example.net"]
    token = token_in_mail(mail_relay, "Ines.G@example.com", "confirm")
    result = confirm_recovery(today, token)
    assert result.changed and result.previous == "ines.garcia@example.net"
    assert read(today, person).get("supannMailPerso") == ["Ines.G@example.com"]
    subject, _ = last_mail_to(mail_relay, "ines.garcia@example.net")
    assert "secours" in subject.lower()
    with pytest.raises(InvalidInputError, match="not valid"):
        confirm_recovery(today, token)


@pytest.mark.parametrize(
    "address",
    ["x@umontpellier.fr", "x@etu.umontpellier.fr", "x@lab.umontpellier.fr", "bad\n@example.net", "no-at"],
)  # fmt: skip
def test_sec13_recovery_address_refused(
    today: Runtime, mail_relay: SmtpTestServer, address: str
) -> None:
    person = add_person(today, "remi.fabre")
    before = snapshot(today, person)
    with pytest.raises(InvalidInputError):
        request_recovery(today, person.identifier, address)
    with pytest.raises(InvalidInputError):
        set_recovery_now(today, person.identifier, address, reason="id card seen")
    assert snapshot(today, person) == before
    assert not mail_relay.received


def test_recovery_without_confirmation_needs_a_reason_and_is_audited(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "yan.perrin")
    before = snapshot(today, person)
    with pytest.raises(UsageError, match="--reason"):
        set_recovery_now(today, person.identifier, "yan@example.org", reason=None)
    assert snapshot(today, person) == before
    set_recovery_now(today, person.identifier, "yan@example.org", reason="ID card at the desk")
    assert read(today, person).get("supannMailPerso") == ["yan@example.org"]
    record = today.audit.read(account=person.identifier)[-1]
    assert record.command == "set-recovery"
    assert record.details["reason"] == "ID card at the desk"


def test_recovery_in_supann_mail_prive_keeps_other_labels(
    config_path: Path, mail_relay: SmtpTestServer
) -> None:
    runtime = _prive_runtime(config_path)
    try:
        person = add_person(
            runtime,
            "sam.lucas",
            extra={"supannMailPrive": ["{PERSO}sam@example.net", "{SECOURS}old@example.net"]},
        )
        request_recovery(runtime, person.identifier, "new@example.org")
        confirm_recovery(runtime, token_in_mail(mail_relay, "new@example.org", "confirm"))
        assert sorted(read(runtime, person).get("supannMailPrive")) == [
            "{PERSO}sam@example.net",
            "{SECOURS}new@example.org",
        ]
        last_mail_to(mail_relay, "old@example.net")
        assert read(runtime, person).get("supannMailPerso") == ["sam.lucas@example.net"]
    finally:
        runtime.close()


# --- forwarding -------------------------------------------------------------------------------------


def test_sec14_forwarding_confirmed_then_notice_to_the_mailbox(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "vera.adam")
    request_forwarding(today, person.identifier, "vera@example.org")
    assert read(today, person).get("mailForwardingAddress") == []
    confirm_forwarding(today, token_in_mail(mail_relay, "vera@example.org", "confirm"))
    assert read(today, person).get("mailForwardingAddress") == ["vera@example.org"]
    _, body = last_mail_to(mail_relay, person.identifier)
    assert "vera@example.org" in body
    off = clear_forwarding(today, person.identifier)
    assert off.changed and read(today, person).get("mailForwardingAddress") == []
    assert not clear_forwarding(today, person.identifier).changed


def test_a_recovery_link_does_not_confirm_a_forwarding(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "kim.noel")
    request_recovery(today, person.identifier, "kim@example.org")
    token = token_in_mail(mail_relay, "kim@example.org", "confirm")
    before = snapshot(today, person)
    with pytest.raises(InvalidInputError, match="does not confirm"):
        confirm_forwarding(today, token)
    assert snapshot(today, person) == before


def test_forwarding_to_itself_or_in_a_loop_is_refused(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    first = add_person(today, "ali.ben")
    second = add_person(
        today, "eve.roche", extra={"mailForwardingAddress": ["ali.ben@umontpellier.fr"]}
    )
    before = snapshot(today, first)
    with pytest.raises(InvalidInputError, match="itself"):
        request_forwarding(today, first.identifier, "ALI.BEN@umontpellier.fr")
    with pytest.raises(InvalidInputError, match="loop"):
        request_forwarding(today, first.identifier, second.identifier)
    with pytest.raises(InvalidInputError, match="loop"):
        set_forwarding_now(today, first.identifier, second.identifier, reason="asked at desk")
    assert snapshot(today, first) == before
    assert not mail_relay.received


def test_forwarding_follows_a_bounded_chain(today: Runtime, mail_relay: SmtpTestServer) -> None:
    start = add_person(today, "ugo.start")
    previous = start.identifier
    for index in range(3):
        hop = add_person(today, f"hop.n{index}", extra={"mailForwardingAddress": [previous]})
        previous = hop.identifier
    with pytest.raises(InvalidInputError, match="loop"):
        set_forwarding_now(today, start.identifier, previous, reason="test")
    set_forwarding_now(today, start.identifier, "ugo@example.org", reason="asked at desk")


def test_token_for_unused_purpose_is_refused(today: Runtime) -> None:
    person = add_person(today, "gil.huet", awaiting_activation=True)
    issued = today.tokens.issue(person.identifier, TokenPurpose.RESET, timedelta(hours=1))
    with pytest.raises(InvalidInputError, match="not valid"):
        activate(today, issued.token, NEW_PASSWORD)
