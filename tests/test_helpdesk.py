"""Helpdesk, end to end against slapd: show, explain, list, audit (services and CLI)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY, days, month_end, ymd
from people import add_person, day_after, read, rewrite_config

from umacct.errors import InvalidInputError, NotFoundError
from umacct.services.explain import explain
from umacct.services.helpdesk import list_accounts, read_audit, show_account
from umacct.services.lifecycle import suspend
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")


def cli(*args: str) -> tuple[int, str, str]:
    """Run the CLI on the test's today; return the exit code, stdout and stderr."""
    return umacct(*args)


def test_show_gives_everything_on_one_account(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime,
        "ana.lopez",
        profile="titulaire",
        end_of_activity=month_end(-3),
        extra={"supannAliasLogin": ["alopez"], "mailForwardingAddress": ["ana@example.net"]},
    )
    suspend(runtime, person.identifier, reason="retired")
    runtime.tokens.issue(person.identifier, TokenPurpose.RESET, timedelta(hours=24))
    view = show_account(runtime, "alopez")
    assert view.account == person.identifier
    assert (view.stage, view.substate) == ("grace", "SupannSursis")
    grace_end = month_end(9)  # titulaire: 12 months
    assert view.grace_end == grace_end
    assert view.extendable and view.extensions_used == 0
    assert view.recovery_address == "ana.lopez@example.net"
    assert view.forwarding == ["ana@example.net"]
    assert view.password_changed is not None
    assert [link.purpose for link in view.pending_links] == ["reset"]
    assert view.recent_audit[-1].command == "suspend"

    code, out, _ = cli("--json", "show", "ana.lopez")
    assert code == 0
    document = json.loads(out)
    assert document["account"] == person.identifier
    assert document["grace_end"] == grace_end.isoformat()
    assert document["pending_links"][0]["purpose"] == "reset"
    assert "token" not in json.dumps(document["pending_links"])
    assert len(document["recent_audit"]) == 1
    code, out, _ = cli("show", person.identifier)
    assert code == 0 and "SupannSursis" in out


def test_show_creates_no_state_store_nor_mail_queue(on: Callable[[date], Runtime]) -> None:
    """A read makes no files: ``show`` used to create an empty state store and mail queue."""
    runtime = on(TODAY)
    add_person(runtime, "ida.roux")
    data = Path(runtime.config.paths.data_dir)
    code, out, _ = cli("--json", "show", "ida.roux")
    assert code == 0
    assert (json.loads(out)["pending_links"], json.loads(out)["queued_mail"]) == ([], [])
    assert not (data / "state.db").exists() and not (data / "mailqueue.db").exists()


def test_ambiguous_alias_lists_candidates_and_changes_nothing(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    first = add_person(runtime, "bo.chen", extra={"supannAliasLogin": ["bchen"]})
    second = add_person(runtime, "bea.chen", extra={"supannAliasLogin": ["bchen"]})
    before = [read(runtime, first), read(runtime, second)]
    with pytest.raises(InvalidInputError, match="ambiguous"):
        show_account(runtime, "bchen")
    for command in ("show", "explain"):
        code, _, err = cli("--json", command, "bchen")
        assert code == 65
        error = json.loads(err)
        assert first.identifier in error["message"] and second.identifier in error["message"]
        assert error["candidates"] == sorted([first.identifier, second.identifier])
    code, _, err = cli("suspend", "bchen", "--reason", "x", "--json")  # a write command too
    assert (code, json.loads(err)["candidates"]) == (
        65,
        sorted([first.identifier, second.identifier]),
    )
    assert [read(runtime, first), read(runtime, second)] == before


def test_unknown_account_exits_67(on: Callable[[date], Runtime]) -> None:
    on(TODAY)
    with pytest.raises(NotFoundError):
        show_account(on(TODAY), "nobody@umontpellier.fr")
    assert cli("show", "nobody@umontpellier.fr")[0] == 67
    assert cli("explain", "nobody")[0] == 67


def test_explain_vacataire_in_words(on: Callable[[date], Runtime]) -> None:
    ended = month_end(-1)
    grace_end = month_end(5)  # vacataire: 6 months
    runtime = on(day_after(ended))
    person = add_person(runtime, "cy.dupont", profile="vacataire", end_of_activity=ended)
    suspend(runtime, person.identifier)
    result = explain(runtime, person.identifier)
    assert result.rule == (
        f"profile vacataire: 6 months after the end of activity on {ended.isoformat()}, so "
        f"mail and login stop after {grace_end.isoformat()}; this profile cannot be extended"
    )
    assert any(event.text == "end of activity" for event in result.happened)
    expires_on = day_after(grace_end)
    assert any(e.day == expires_on and "expires" in e.text for e in result.upcoming)
    assert result.can_log_in

    after_expiry = day_after(expires_on).isoformat()
    code, out, _ = cli("--json", "explain", person.identifier, "--as-of", after_expiry)
    assert code == 0
    document = json.loads(out)
    assert document["as_of"] == after_expiry
    assert any("due now" in event["text"] for event in document["upcoming"])
    code, out, _ = cli("explain", person.identifier)  # piped: the same plain words
    assert code == 0 and "cannot be extended" in out
    assert "What happens next:" in out and "\t" not in out


def test_explain_names_what_blocks_a_login(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    waiting = add_person(runtime, "dee.martin", awaiting_activation=True, since=TODAY)
    blockers = explain(runtime, waiting.identifier).login_blockers
    assert blockers and "no activation link is valid" in blockers[0]
    assert blockers[0].endswith(f"send a new one: `umacct activate {waiting.identifier}`")
    runtime.tokens.issue(waiting.identifier, TokenPurpose.ACTIVATION, timedelta(hours=24))
    assert "valid until" in explain(runtime, waiting.identifier).login_blockers[0]

    # vacataire, 6 months: the grace ended month_end(-2).
    gone = add_person(runtime, "eli.bernard", profile="vacataire", end_of_activity=month_end(-8))
    suspend(runtime, gone.identifier, notice=False, reason="cut")
    words = " | ".join(explain(runtime, gone.identifier).login_blockers)
    assert "grace period over" in words and "password expired" in words
    assert "the next sweep reactivates it" in words  # vacataire: not extendable

    locked = add_person(
        runtime,
        "fay.morel",
        state_values=[f"{{COMPTE}}S:SupannVerrouAdministratif:{ymd(days(-330))}:"],
    )
    result = explain(runtime, locked.identifier)
    assert not result.can_log_in
    assert result.login_blockers[0] == (
        f"locked: state S:SupannVerrouAdministratif since {days(-330).isoformat()}; to undo: "
        f"`umacct unlock {locked.identifier} --reason ...`"
    )
    foreign = add_person(
        runtime, "gus.petit", state_values=[f"{{COMPTE}}S:SupannAutre:{ymd(days(-3))}:"]
    )
    assert "locked by another tool" in explain(runtime, foreign.identifier).login_blockers[0]


def _identifiers(rows: object) -> set[str]:
    return {row.account for row in rows}  # type: ignore[attr-defined]


def test_list_filters_on_the_server(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    active = add_person(runtime, "gil.roux", profile="titulaire")
    student = add_person(runtime, "hal.petit", profile="etudiant")
    leaving = add_person(runtime, "ida.faure", profile="vacataire", end_of_activity=month_end(-1))
    grace_end = month_end(5)  # vacataire: 6 months; logins stop 151 to 184 days from now
    suspend(runtime, leaving.identifier)
    waiting = add_person(runtime, "jo.blanc", awaiting_activation=True)
    everyone = {active.identifier, student.identifier, leaving.identifier, waiting.identifier}
    assert _identifiers(list_accounts(runtime)) == everyone
    assert _identifiers(list_accounts(runtime, profile="etudiant")) == {student.identifier}
    assert _identifiers(list_accounts(runtime, stage="grace")) == {leaving.identifier}
    assert _identifiers(list_accounts(runtime, stage="created")) == {waiting.identifier}
    assert _identifiers(list_accounts(runtime, stage="active")) == {
        active.identifier,
        student.identifier,
    }
    assert _identifiers(list_accounts(runtime, expiring_within=200)) == {leaving.identifier}
    assert _identifiers(list_accounts(runtime, expiring_within=30)) == set()

    code, out, err = cli("--json", "list", "--state", "grace")
    assert code == 0, err
    rows = json.loads(out)
    assert [row["account"] for row in rows] == [leaving.identifier]
    assert rows[0]["grace_end"] == grace_end.isoformat()
    code, out, _ = cli("list", "--format", "csv", "--profile", "titulaire")
    assert code == 0
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert [row["account"] for row in parsed] == [active.identifier]
    code, out, _ = cli("list", "--format", "json", "--profile", "heberge_en")
    assert code == 0 and json.loads(out) == []
    code, out, _ = cli("list")
    assert code == 0 and "gil.roux" in out


def test_list_refuses_bad_filters_before_the_directory(on: Callable[[date], Runtime]) -> None:
    on(TODAY)
    for args in (["--profile", "alien"], ["--expiring-within", "-3"]):
        code, _, err = cli("list", *args)
        assert code == 2, (args, err)
        assert err.startswith("umacct: error:")
    for args in (["--state", "sleeping"], ["--state", "*)(uid=*"]):
        code, _, err = cli("list", *args)
        assert code == 2, (args, err)  # a state not among the choices: the command line
        assert "--state" in err


def test_list_table_is_capped_and_says_so(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = on(TODAY)
    for uid in ("ka.one", "kb.two", "kc.three"):
        add_person(runtime, uid)
    monkeypatch.setattr("umacct.cli.output.TABLE_ROW_LIMIT", 2)
    code, out, err = cli("list", "--format", "table")
    assert code == 0
    assert "1 more rows not shown" in err and "--format csv" in err
    code, out, _ = cli("list", "--format", "csv")
    assert len(out.strip().splitlines()) == 4
    code, out, err = cli("list")  # not a terminal: tab-separated rows, none held back
    assert len(out.strip().splitlines()) == 4
    assert "not shown" not in err


def test_audit_reads_the_log(on: Callable[[date], Runtime]) -> None:
    ended = month_end(-1)
    day = day_after(ended)
    runtime = on(day)
    person = add_person(
        runtime,
        "lea.noel",
        profile="titulaire",
        end_of_activity=ended,
        extra={"supannAliasLogin": ["lnoel"]},
    )
    other = add_person(runtime, "max.garnier", profile="titulaire", end_of_activity=ended)
    suspend(runtime, person.identifier)
    suspend(runtime, other.identifier)
    entries = read_audit(runtime, account="lnoel")
    assert [entry.account for entry in entries] == [person.identifier]
    assert read_audit(runtime, since=day_after(day)) == []
    assert read_audit(runtime, actor="nobody-here") == []

    code, out, _ = cli("--json", "audit", "--account", person.identifier)
    assert code == 0
    records = json.loads(out)
    assert records[0]["command"] == "suspend"
    assert "supannRessourceEtatDate" in records[0]["changes"]
    code, out, _ = cli("audit", "--format", "csv")
    assert code == 0
    assert len(list(csv.DictReader(io.StringIO(out)))) == 2
    assert cli("audit", "--since", "not-a-day")[0] == 2


def test_read_commands_change_nothing(on: Callable[[date], Runtime], config_path: Path) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "ned.rey")
    before = read(runtime, person)
    for args in (["show", "ned.rey"], ["explain", "ned.rey"], ["list"], ["audit"]):
        assert cli("--json", *args)[0] == 0
    assert read(runtime, person) == before
    assert runtime.audit.read() == []
    assert runtime.mailer.pending() == []


# --- purged accounts, and the audit with the directory down ---------------------------------


def _purged(runtime: Runtime, uid: str) -> str:
    person = add_person(runtime, uid, profile="autre_personnel", end_of_activity=month_end(-10))
    assert cli("suspend", person.identifier, "--no-notice", "--reason", "cut")[0] == 0
    assert cli("purge", person.identifier, "--yes", "--reason", "gone")[0] == 0
    return person.identifier


def test_show_and_explain_say_an_account_was_purged(on: Callable[[date], Runtime]) -> None:
    identifier = _purged(on(TODAY), "paul.purge")
    for key in (identifier, "paul.purge"):
        code, out, err = cli("show", key, "--json")
        assert code == 0, err
        document = json.loads(out)
        assert (document["account"], document["stage"]) == (identifier, "purged")
        assert document["archive"].endswith(".ldif")
        assert document["restore"] == f"umacct restore {identifier} --reason TEXT"
    code, out, err = cli("show", identifier, "--format", "table")
    assert code == 0 and "(purged)" in out and "umacct restore" in out
    code, out, err = cli("explain", identifier)
    assert code == 0, err
    assert f"{identifier} on {TODAY.isoformat()} (purged)" in out
    assert ".ldif" in out and f"umacct restore {identifier}" in out
    code, out, err = cli("explain", identifier, "--json")
    assert (code, json.loads(out)["stage"]) == (0, "purged")
    assert cli("show", "never.was@umontpellier.fr")[0] == 67


def test_list_state_purged_lists_the_purged_accounts(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    identifier = _purged(runtime, "pia.purge")
    add_person(runtime, "still.here")
    code, out, err = cli("list", "--state", "purged", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["account"], row["stage"], row["profile"]) == (
        identifier,
        "purged",
        "autre_personnel",
    )
    assert json.loads(cli("list", "--state", "PURGED", "--profile", "titulaire", "--json")[1]) == []
    assert cli("list", "--state", "purged", "--expiring-within", "3d")[0] == 2
    assert cli("restore", identifier, "--reason", "mistake")[0] == 0
    assert json.loads(cli("list", "--state", "purged", "--json")[1]) == []


def test_audit_of_one_account_works_with_the_directory_down(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "ada.down", end_of_activity=month_end(-1))
    assert cli("suspend", person.identifier, "--reason", "left")[0] == 0
    gone = _purged(runtime, "gil.down")
    rewrite_config(config_path, directory={"urls": ["ldap://127.0.0.1:9"], "connect_timeout": 1})
    for key, identifier in ((person.identifier, person.identifier), ("ada.down", person.identifier),
                            ("gil.down", gone)):  # fmt: skip
        code, out, err = cli("audit", "--account", key, "--json")
        assert code == 0, (key, err)
        records = json.loads(out)
        assert records and {record["account"] for record in records} == {identifier}
    assert cli("show", person.identifier)[0] == 69  # the directory itself is needed there
