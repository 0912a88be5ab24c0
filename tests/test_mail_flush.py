"""Mail the relay refused stays queued; ``flush_mail`` sends it with fresh links; nothing is undone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from days import TODAY
from people import NEW_PASSWORD, add_person, read, token_in_mail
from smtp_fixtures import SmtpTestServer

from umacct.errors import InvalidInputError
from umacct.services.addresses import (
    confirm_forwarding,
    confirm_recovery,
    request_forwarding,
    request_recovery,
)
from umacct.services.credentials import activate, change_password, send_activation
from umacct.services.links import flush_mail
from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")


def test_password_change_is_kept_when_the_notice_cannot_be_sent(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "nina.leroy")
    mail_relay.stop()
    change_password(runtime, person.identifier, person.password, NEW_PASSWORD)
    assert runtime.directory.check_password(person.dn, NEW_PASSWORD)
    [waiting] = runtime.queued_mail(person.identifier)
    assert (waiting.kind, waiting.recipient, waiting.link_purpose) == (
        "password_changed", "nina.leroy@example.net", None,
    )  # fmt: skip

    mail_relay.start()
    report = flush_mail(on(TODAY))
    assert (report.sent, report.remaining, report.stopped) == (1, 0, None)
    assert mail_relay.received[0].rcpt_tos == ["nina.leroy@example.net"]
    assert not runtime.queued_mail()


def test_sec03_a_flushed_activation_link_replaces_the_queued_one(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "olga.marty", awaiting_activation=True)
    mail_relay.stop()
    sent = send_activation(runtime, person.identifier)
    assert not sent.sent and "mail flush" in sent.message
    [first_token] = runtime.tokens.pending(person.identifier)

    down = flush_mail(on(TODAY))
    assert down.stopped is not None and down.remaining == 1

    mail_relay.start()
    assert flush_mail(on(TODAY)).sent == 1
    token = token_in_mail(mail_relay, "olga.marty@example.net", "activation")
    [fresh] = runtime.tokens.pending(person.identifier)
    assert fresh.token_id != first_token.token_id
    activate(runtime, token, NEW_PASSWORD)
    assert runtime.directory.check_password(person.dn, NEW_PASSWORD)


def test_flushed_confirmation_links_confirm_what_was_asked(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "paco.rey")
    mail_relay.stop()
    request_recovery(runtime, person.identifier, "paco@example.org")
    mail_relay.start()
    flush_mail(on(TODAY))
    recovery_token = token_in_mail(mail_relay, "paco@example.org", "confirm")
    with pytest.raises(InvalidInputError, match="does not confirm"):
        confirm_forwarding(runtime, recovery_token)
    confirm_recovery(runtime, recovery_token)
    assert read(runtime, person).get("supannMailPerso") == ["paco@example.org"]

    later = on(TODAY)
    mail_relay.stop()
    request_forwarding(later, person.identifier, "fwd@example.org")
    mail_relay.start()
    flush_mail(on(TODAY))
    confirm_forwarding(runtime, token_in_mail(mail_relay, "fwd@example.org", "confirm"))
    assert read(runtime, person).get("mailForwardingAddress") == ["fwd@example.org"]
