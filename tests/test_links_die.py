"""Links: one use even at the same instant, dead once a change makes them pointless, never in argv.

Security requirements 25 (one link, one use, at the same instant), 26 (links die with the
change that should kill them) and 27 (the token can come on stdin).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY
from people import NEW_PASSWORD, OTHER_PASSWORD, add_person, token_in_mail
from smtp_fixtures import SmtpTestServer

from umacct.clock import SystemClock
from umacct.config import load_config
from umacct.directory import Directory
from umacct.errors import InvalidInputError, UnavailableError
from umacct.services.addresses import (
    confirm_forwarding,
    confirm_recovery,
    request_forwarding,
    request_recovery,
    set_recovery_now,
)
from umacct.services.credentials import change_password, reset_with_token, send_reset
from umacct.services.lifecycle import suspend
from umacct.services.links import flush_mail
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")


# --- 25: one link, one use -----------------------------------------------------------------


def test_sec25_two_redemptions_at_the_same_instant_one_wins_and_its_password_stays(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    setup = on(TODAY)
    person = add_person(setup, "twin.click")
    send_reset(setup, person.identifier)
    token = token_in_mail(mail_relay, "twin.click@example.net", "reset")
    runtimes = [on(TODAY), on(TODAY)]
    passwords = [NEW_PASSWORD, OTHER_PASSWORD]
    start = threading.Barrier(2)
    outcomes: list[str | None] = [None, None]

    def redeem(index: int) -> None:
        start.wait()
        try:
            reset_with_token(runtimes[index], token, passwords[index])
            outcomes[index] = "ok"
        except InvalidInputError as error:
            outcomes[index] = error.message
        finally:
            runtimes[index].close()  # its store lives in this thread

    threads = [threading.Thread(target=redeem, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes.count("ok") == 1, outcomes
    winner = outcomes.index("ok")
    assert setup.directory.check_password(person.dn, passwords[winner])
    assert not setup.directory.check_password(person.dn, passwords[1 - winner])
    resets = [r for r in setup.audit.read(account=person.identifier) if r.command == "reset"]
    assert len(resets) == 1


def test_sec25_a_failed_change_leaves_the_link_usable(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "net.down")
    send_reset(runtime, person.identifier)
    token = token_in_mail(mail_relay, "net.down@example.net", "reset")

    def down(self: Directory, *args: object, **kwargs: object) -> None:
        raise UnavailableError("the directory went away")

    with monkeypatch.context() as patch:
        patch.setattr(Directory, "password_modify", down)
        with pytest.raises(UnavailableError):
            reset_with_token(runtime, token, NEW_PASSWORD)
    reset_with_token(on(TODAY), token, NEW_PASSWORD)
    assert runtime.directory.check_password(person.dn, NEW_PASSWORD)


# --- 26: links die with the change that should kill them ---------------------------------


def test_sec26_a_new_recovery_address_kills_the_links_sent_to_the_old_one(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "hacked.mail")
    send_reset(runtime, person.identifier)
    stale = token_in_mail(mail_relay, "hacked.mail@example.net", "reset")
    set_recovery_now(runtime, person.identifier, "safe@example.org", reason="mailbox hacked")
    with pytest.raises(InvalidInputError, match="not valid"):
        reset_with_token(runtime, stale, NEW_PASSWORD)


def test_sec26_any_password_change_kills_pending_reset_links(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "pass.changed")
    send_reset(runtime, person.identifier)
    stale = token_in_mail(mail_relay, "pass.changed@example.net", "reset")
    change_password(runtime, person.identifier, person.password, NEW_PASSWORD)
    with pytest.raises(InvalidInputError, match="not valid"):
        reset_with_token(runtime, stale, OTHER_PASSWORD)
    assert runtime.directory.check_password(person.dn, NEW_PASSWORD)


def test_sec26_recovery_and_forwarding_confirmations_do_not_cancel_each_other(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "two.asks")
    request_recovery(runtime, person.identifier, "rescue@example.org")
    recovery = token_in_mail(mail_relay, "rescue@example.org", "confirm")
    request_forwarding(runtime, person.identifier, "away@example.org")
    forwarding = token_in_mail(mail_relay, "away@example.org", "confirm")
    with pytest.raises(InvalidInputError, match="does not confirm a forwarding"):
        confirm_forwarding(runtime, recovery)
    confirm_recovery(runtime, recovery)
    confirm_forwarding(runtime, forwarding)
    purposes = {TokenPurpose.CONFIRM_RECOVERY, TokenPurpose.CONFIRM_FORWARDING}
    assert not [t for t in runtime.tokens.pending(person.identifier) if t.purpose in purposes]


@pytest.mark.parametrize("event", ["suspended", "recovery replaced", "newer link"])
def test_sec26_mail_flush_drops_a_queued_link_a_later_event_made_obsolete(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer, event: str
) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime, "queued.link", profile="vacataire", end_of_activity=TODAY - timedelta(days=2)
    )
    mail_relay.stop()
    send_reset(runtime, person.identifier)
    [queued] = runtime.queued_mail(person.identifier)
    mail_relay.start()
    later = on(TODAY)
    if event == "suspended":
        suspend(later, person.identifier, reason="left", notice=False)
    elif event == "recovery replaced":
        set_recovery_now(later, person.identifier, "new.safe@example.org", reason="hacked")
    else:
        send_reset(later, person.identifier)
    before = len(mail_relay.received)
    report = flush_mail(on(TODAY))
    assert [d.id for d in report.dropped] == [queued.id], report
    assert not [
        m
        for m in mail_relay.received[before:]
        if "queued.link@example.net" in m.rcpt_tos
        and "reset?token" in m.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    ]
    assert not runtime.queued_mail(person.identifier) or all(
        m.id != queued.id for m in runtime.queued_mail(person.identifier)
    )
    code, _, err = umacct("mail", "flush")
    assert code == 0, err


# --- 27: the token on stdin ----------------------------------------------------------------


def test_sec27_the_token_and_the_password_come_on_stdin(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "stdin.token")
    send_reset(runtime, person.identifier)
    token = token_in_mail(mail_relay, "stdin.token@example.net", "reset")
    code, _, err = umacct(
        "reset", "--token-stdin", "--password-stdin", stdin=f"{token}\n{NEW_PASSWORD}\n"
    )
    assert code == 0, err
    assert runtime.directory.check_password(person.dn, NEW_PASSWORD)
    assert umacct("reset", "--token", "x", "--token-stdin", stdin="y\n")[0] == 2
    assert umacct("reset", "--token-stdin", "--password-stdin", stdin="\n")[0] == 65


def test_sec27_no_token_in_the_process_list_when_it_comes_on_stdin(
    mail_relay: SmtpTestServer, config_path: Path, request: pytest.FixtureRequest
) -> None:
    import os
    import sys

    # The child process reads the machine's clock: the link is made by the same clock, so
    # that it has not expired by the time the child redeems it, whatever the hour.
    runtime = Runtime(load_config(config_path), clock=SystemClock())
    request.addfinalizer(runtime.close)
    person = add_person(runtime, "ps.listing")
    send_reset(runtime, person.identifier)
    token = token_in_mail(mail_relay, "ps.listing@example.net", "reset")
    process = subprocess.Popen(
        [sys.executable, "-m", "umacct", "reset", "--token-stdin", "--password-stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    with open(f"/proc/{process.pid}/cmdline", "rb") as handle:
        assert token.encode() not in handle.read()
    _, stderr = process.communicate(f"{token}\n{NEW_PASSWORD}\n", timeout=60)
    assert process.returncode == 0, stderr
    assert runtime.directory.check_password(person.dn, NEW_PASSWORD)


@pytest.mark.parametrize(
    "command",
    [
        ["activate"],
        ["reset"],
        ["set-recovery"],
        ["redirect"],
    ],
)
def test_sec27_every_command_that_takes_a_token_takes_it_on_stdin(command: list[str]) -> None:
    code, out, _ = umacct(*command, "--help")
    assert code == 0 and "--token-stdin" in out


@pytest.mark.parametrize("tag", ["+spam", "+", "+a+b"])
def test_sec35_a_forward_to_itself_is_refused_with_a_subaddress_too(
    on: Callable[[date], Runtime], tag: str
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "self.loop")
    local, _, domain = person.identifier.partition("@")
    tagged = f"{local}{tag}@{domain.upper()}"
    with pytest.raises(InvalidInputError, match="itself"):
        request_forwarding(runtime, person.identifier, tagged)
    other = add_person(
        runtime, "loop.back", extra={"mailForwardingAddress": [f"{local}+x@{domain}"]}
    )
    with pytest.raises(InvalidInputError, match="loop"):
        request_forwarding(
            runtime, person.identifier, f"{other.identifier.partition('@')[0]}+y@{domain}"
        )
