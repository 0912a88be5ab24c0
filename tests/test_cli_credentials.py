"""The credential and mail commands through the CLI: --json parsed, exit codes, nothing changed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from command_line import umacct as run_cli
from days import TODAY, ymd
from people import (
    NEW_PASSWORD,
    OTHER_PASSWORD,
    add_person,
    compte,
    read,
    snapshot,
    token_in_mail,
)
from smtp_fixtures import SmtpTestServer

from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")


@dataclass(frozen=True)
class Run:
    """One run of the tool: exit code, outputs, and stdout parsed as JSON (if any)."""

    exit_code: int
    stdout: str
    stderr: str
    document: Any


def umacct(*args: str, stdin: str | None = None) -> Run:
    """Run the tool with --json, on the test's clock."""
    code, out, err = run_cli("--json", *args, stdin=stdin)
    document = json.loads(out) if out.strip() else None
    return Run(code, out, err, document)


def error_of(result: Run) -> dict[str, Any]:
    """The JSON error line on stderr."""
    document: dict[str, Any] = json.loads(result.stderr.strip().splitlines()[-1])
    return document


@pytest.fixture
def today(on: Callable[[date], Runtime], mail_relay: SmtpTestServer) -> Runtime:
    """A runtime for the real date, to add people and look at them."""
    return on(TODAY)


def test_cli_activate_passwd_reset_end_to_end(today: Runtime, mail_relay: SmtpTestServer) -> None:
    person = add_person(today, "mila.bonnet", awaiting_activation=True)
    sent = umacct("activate", person.identifier)
    assert sent.exit_code == 0, sent.stderr
    assert sent.document["recipient"] == "mila.bonnet@example.net"
    assert sent.document["sent"] is True
    token = token_in_mail(mail_relay, "mila.bonnet@example.net", "activation")
    assert token not in sent.stdout  # security 6

    done = umacct("activate", "--token", token, "--password-stdin", stdin=NEW_PASSWORD + "\n")
    assert done.exit_code == 0, done.stderr
    assert done.document["action"] == "activate"
    assert compte(read(today, person)) == f"{{COMPTE}}A:SupannActif:{ymd(TODAY)}:"
    assert today.directory.check_password(person.dn, NEW_PASSWORD)

    changed = umacct(
        "passwd", person.uid, "--password-stdin", stdin=f"{NEW_PASSWORD}\n{OTHER_PASSWORD}\n"
    )
    assert changed.exit_code == 0, changed.stderr
    assert today.directory.check_password(person.dn, OTHER_PASSWORD)

    assert umacct("reset", person.identifier).exit_code == 0
    reset_token = token_in_mail(mail_relay, "mila.bonnet@example.net", "reset")
    again = umacct("reset", "--token", reset_token, "--password-stdin", stdin=NEW_PASSWORD)
    assert again.exit_code == 0, again.stderr
    assert today.directory.check_password(person.dn, NEW_PASSWORD)
    assert not today.directory.check_password(person.dn, OTHER_PASSWORD)


def test_cli_refusals_give_their_exit_code_and_change_nothing(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    active = add_person(today, "theo.caron")
    waiting = add_person(today, "lou.renard", awaiting_activation=True)
    umacct("activate", waiting.identifier)
    token = token_in_mail(mail_relay, "lou.renard@example.net", "activation")
    before = (snapshot(today, active), snapshot(today, waiting), len(mail_relay.received))
    cases: list[tuple[tuple[str, ...], str | None, int, str]] = [
        (("activate", "nobody@umontpellier.fr"), None, 67, "no account"),
        (("activate", active.identifier), None, 77, "awaiting activation"),
        (("activate", "--token", token, "--password-stdin"), "Password2024!\n", 65, "common"),
        (("activate", "--token", "forged", "--password-stdin"), NEW_PASSWORD, 65, "not valid"),
        (("activate", "--token", token), None, 65, "--password-stdin"),
        (("passwd", active.uid, "--password-stdin"), f"wrong-one-here\n{NEW_PASSWORD}\n", 77, "current"),
        (("passwd", active.uid, "--password-stdin"), "only-one-line\n", 65, "one per line"),
        (("set-recovery", active.uid, "me@etu.umontpellier.fr"), None, 65, "inside the institution"),
        (("set-recovery", active.uid, "me@example.org", "--no-confirm"), None, 2, "--reason"),
        (("redirect", active.uid, active.identifier), None, 65, "itself"),
        (("redirect", active.uid, "not an address"), None, 65, "not valid"),
        (("set-recovery", "--token", token), None, 65, "not valid"),
    ]  # fmt: skip
    for args, stdin, code, words in cases:
        result = umacct(*args, stdin=stdin)
        assert result.exit_code == code, (args, result.stderr)
        assert words in error_of(result)["message"], (args, result.stderr)
    assert (snapshot(today, active), snapshot(today, waiting), len(mail_relay.received)) == before


def test_cli_reset_without_recovery_address_exits_65(today: Runtime) -> None:
    from umacct.directory import Change

    person = add_person(today, "eloi.pons")
    today.directory.modify(person.dn, [Change("replace", "supannMailPerso", ())])
    before = snapshot(today, person)
    result = umacct("reset", person.identifier)
    assert result.exit_code == 65
    assert error_of(result)["message"].endswith(
        "no recovery address: check the person's identity, then set-recovery"
    )
    assert snapshot(today, person) == before


def test_cli_usage_errors(today: Runtime) -> None:
    assert umacct("activate").exit_code == 2
    assert umacct("redirect", "someone").exit_code == 2
    assert umacct("reset", "a", "--token", "t").exit_code == 2


def test_sec10_no_command_takes_a_password_argument() -> None:
    for command in ("activate", "reset", "passwd"):
        _, help_text, _ = run_cli(command, "--help")
        assert "--password " not in help_text and "--password=" not in help_text


def test_sec07_cli_self_service_same_output_and_exit_code(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "ruth.lebon")
    outputs = []
    for key in (person.identifier, "nobody@umontpellier.fr"):
        started = time.monotonic()
        result = umacct("reset", key, "--self-service")
        outputs.append((result.exit_code, result.stdout, time.monotonic() - started >= 1.0))
    assert outputs[0] == outputs[1] == (0, outputs[0][1], True)
    assert len(mail_relay.received) == 1


def test_cli_recovery_and_forwarding_with_confirmation(
    today: Runtime, mail_relay: SmtpTestServer
) -> None:
    person = add_person(today, "abel.mercier")
    asked = umacct("set-recovery", person.uid, "abel@example.org")
    assert asked.exit_code == 0 and asked.document["purpose"] == "confirm"
    confirmed = umacct(
        "set-recovery", "--token", token_in_mail(mail_relay, "abel@example.org", "confirm")
    )
    assert confirmed.exit_code == 0, confirmed.stderr
    assert confirmed.document["address"] == "abel@example.org"

    assert umacct("redirect", person.uid, "abel.fwd@example.org").exit_code == 0
    token = token_in_mail(mail_relay, "abel.fwd@example.org", "confirm")
    started = umacct("redirect", "--token", token)
    assert started.exit_code == 0, started.stderr
    assert read(today, person).get("mailForwardingAddress") == ["abel.fwd@example.org"]
    stopped = umacct("redirect", person.uid, "--off")
    assert stopped.document["changed"] is True
    desk = umacct(
        "redirect", person.uid, "abel.other@example.org", "--no-confirm", "--reason", "ID seen"
    )
    assert desk.exit_code == 0 and desk.document["changed"] is True


def test_cli_mail_list_and_flush(today: Runtime, mail_relay: SmtpTestServer) -> None:
    person = add_person(today, "iris.colin", awaiting_activation=True)
    mail_relay.stop()
    queued = umacct("activate", person.identifier)
    assert queued.exit_code == 0 and queued.document["sent"] is False
    listed = umacct("mail", "list", "--format", "json")
    assert [(row["account"], row["kind"]) for row in listed.document] == [
        (person.identifier, "activation")
    ]
    assert "token" not in listed.stdout
    down = umacct("mail", "flush")
    assert down.exit_code == 69
    assert down.document["remaining"] == 1
    mail_relay.start()
    flushed = umacct("mail", "flush")
    assert flushed.exit_code == 0 and flushed.document["sent"] == 1
    assert run_cli("mail", "list", "--format", "csv")[1].count("\n") == 1
    token = token_in_mail(mail_relay, "iris.colin@example.net", "activation")
    done = umacct("activate", "--token", token, "--password-stdin", stdin=NEW_PASSWORD)
    assert done.exit_code == 0, done.stderr
