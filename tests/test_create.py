"""``create`` end to end against slapd: one person, returning people, arrivals, CSV intake."""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import tomli_w
from days import TODAY, days, month_end, months, ymd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from people import STATE_REGEX, add_person, compte, generalized, outbox_mails, read, runtime_on

from umacct.clock import FixedClock
from umacct.config import load_config
from umacct.errors import InvalidInputError, RefusedError
from umacct.intake import IntakeRow, read_intake
from umacct.localdir import LocalDirectory
from umacct.services.arrivals import arrivals_due, arrive, send_activation_link
from umacct.services.create import CreateOutcome, RowFailure, create_people, create_person
from umacct.services.create_input import new_person
from umacct.services.lifecycle import suspend
from umacct.services.purge import purge
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

if TYPE_CHECKING:
    from smtp_fixtures import SmtpTestServer

pytestmark = pytest.mark.usefixtures("directory_clean")

TOKEN_IN_LINK = re.compile(r"https://ent\.example\.org/activation\?token=([A-Za-z0-9_-]+)")


def person(
    runtime: Runtime, given: str = "Jean", surname: str = "Martin", **extra: Any
) -> IntakeRow:
    """A valid person for ``create_person``."""
    fields: dict[str, Any] = {
        "profile": "vacataire",
        "personal_email": "jean.martin@example.net",
    }
    fields.update(extra)
    return new_person(runtime.config, given_name=given, surname=surname, **fields)


def token_in(message: EmailMessage) -> str:
    """The token of the activation link in a delivered message."""
    body = message.get_body(("plain",))
    assert body is not None
    match = TOKEN_IN_LINK.search(body.get_content())
    assert match, "no activation link in the message"
    return match.group(1)


def snapshot(slapd: LocalDirectory, runtime: Runtime) -> tuple[str, object, list[str], list[Any]]:
    """Everything a failed command must leave alone: people, store, outbox, mail queue."""
    people = slapd.run_root(
        "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", slapd.people_dn, "*", "+"
    )
    folder = runtime.config.outbox_dir
    outbox = sorted(p.name for p in folder.glob("*")) if folder.exists() else []
    return people, runtime.store.dump(), outbox, runtime.mailer.pending()


# --- one person -------------------------------------------------------------------------------


def test_create_writes_the_supann_entry_and_mails_the_link(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    result = create_person(
        runtime,
        person(
            runtime,
            "Zoé",
            "Le  Floc\u0027h",
            profile="etudiant",
            personal_email="Zoe@Example.NET",
            external_id="E2026001",
            end_of_activity=month_end(9),
        ),
    )
    assert result.account == "zoe.le-floch@etu.umontpellier.fr"
    assert (result.uid, result.action, result.state, result.changed) == (
        "zoe.le-floch", "created", "I:SupannCree", True,
    )  # fmt: skip
    entry = runtime.directory.read(
        f"uid=zoe.le-floch,{runtime.config.directory.people_dn}", ["*", "pwdEndTime"]
    )
    assert entry is not None
    assert sorted(entry.get("objectClass")) == ["eduPerson", "inetOrgPerson", "supannPerson"]
    assert entry.get("mail") == ["zoe.le-floch@etu.umontpellier.fr"]
    assert entry.get("eduPersonPrincipalName") == ["zoe.le-floch@etu.umontpellier.fr"]
    assert entry.get("givenName") == ["Zoé"]
    assert entry.get("sn") == ["Le Floc'h"]
    assert entry.get("cn") == entry.get("displayName") == ["Zoé Le Floc'h"]
    assert entry.get("supannCodePopulation") == ["etudiant"]
    assert sorted(entry.get("eduPersonAffiliation")) == ["member", "student"]
    assert entry.get("eduPersonPrimaryAffiliation") == ["member"]
    assert entry.get("supannMailPerso") == ["Zoe@example.net"]
    assert entry.get("supannEtuId") == ["E2026001"]
    assert entry.get("supannEtuDateFin") == [generalized(month_end(9))]
    assert sorted(entry.get("supannRessourceEtatDate")) == [
        f"{{COMPTE}}I:SupannCree:{ymd(TODAY)}:",
        f"{{MAIL}}I:SupannCree:{ymd(TODAY)}:",
    ]
    assert sorted(entry.get("supannRessourceEtat")) == [
        "{COMPTE}I:SupannCree",
        "{MAIL}I:SupannCree",
    ]
    assert all(re.match(STATE_REGEX, v) for v in entry.get("supannRessourceEtatDate"))
    assert entry.get("userPassword") == [] and entry.get("pwdEndTime") == []
    [mail] = outbox_mails(runtime)
    assert mail["To"] == "Zoe@example.net"
    assert runtime.tokens.check(token_in(mail), TokenPurpose.ACTIVATION).account == result.account
    assert result.activation_expires == runtime.clock.now() + timedelta(hours=24)
    [record] = runtime.audit.read(account=result.account)
    assert record.command == "create" and record.changes["uid"]["after"] == ["zoe.le-floch"]


def test_collision_gets_a_suffix_from_2(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    add_person(runtime, "jean.martin")
    first = create_person(runtime, person(runtime, personal_email="jm1@example.net"))
    second = create_person(runtime, person(runtime, personal_email="jm2@example.net"))
    assert (first.uid, second.uid) == ("jean.martin2", "jean.martin3")


def test_sec21_purged_identifier_is_never_handed_out_again(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    # Left six months ago: three months of grace, expired (cut without notice, as an admin
    # may), then purgeable a month later.
    gone = add_person(
        runtime, "ines.roux", profile="autre_personnel", end_of_activity=month_end(-6)
    )
    suspend(runtime, gone.identifier, reason="left", notice=False)
    purge(runtime, gone.identifier)
    result = create_person(runtime, person(runtime, "Inès", "Roux", end_of_activity=months(4)))
    assert result.uid == "ines.roux2"


def test_reserved_local_part_gets_a_suffix(config_path: Path) -> None:
    config = load_config(config_path)
    reserved = dataclasses.replace(config.policy, reserved_local_parts=["jean.martin"])
    runtime = runtime_on(dataclasses.replace(config, policy=reserved), TODAY)
    try:
        assert create_person(runtime, person(runtime)).uid == "jean.martin2"
    finally:
        runtime.close()


def test_no_mail_sends_nothing_and_issues_no_token(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    result = create_person(runtime, person(runtime), send_mail=False)
    assert result.activation_expires is None and result.mail is None
    assert outbox_mails(runtime) == [] and runtime.tokens.pending(result.account) == []


# --- tokens and mail (security 1-6) -------------------------------------------------------------


@pytest.fixture
def smtp_runtime(
    config_path: Path, smtp_server: SmtpTestServer
) -> Iterator[Callable[[date], Runtime]]:
    """Runtimes whose mail goes to the loopback SMTP server."""
    import tomllib

    document = tomllib.loads(config_path.read_text())
    document["mail"] = {
        "transport": "smtp",
        "smtp": {
            "host": smtp_server.host,
            "port": smtp_server.port,
            "security": "none",
            "timeout": 5,
        },
    }
    config_path.write_text(tomli_w.dumps(document))
    made: list[Runtime] = []

    def make(day: date) -> Runtime:
        made.append(runtime_on(config_path, day))
        return made[-1]

    yield make
    for runtime in made:
        runtime.close()


def test_sec1_sec5_link_through_smtp_carries_a_long_token_on_the_configured_base(
    smtp_runtime: Callable[[date], Runtime], smtp_server: SmtpTestServer
) -> None:
    runtime = smtp_runtime(TODAY)
    result = create_person(runtime, person(runtime))
    [received] = smtp_server.received
    assert received.rcpt_tos == ["jean.martin@example.net"]
    token = token_in(received.message)
    assert len(token) >= 43  # 32 random bytes, base64url: 256 bits
    assert runtime.tokens.check(token, TokenPurpose.ACTIVATION).account == result.account
    assert result.mail == "sent"


def test_sec2_sec6_no_usable_token_in_directory_store_audit_or_outbox_names(
    on: Callable[[date], Runtime], directory_clean: LocalDirectory
) -> None:
    runtime = on(TODAY)
    create_person(runtime, person(runtime))
    token = token_in(outbox_mails(runtime)[0])
    people, store, names, _ = snapshot(directory_clean, runtime)
    assert token not in people and token not in repr(store) and token not in "".join(names)
    assert token not in runtime.config.paths.audit_log_path.read_text()


def test_sec3_a_new_link_cancels_the_previous_one(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    result = create_person(runtime, person(runtime))
    first = token_in(outbox_mails(runtime)[0])
    send_activation_link(runtime, result.account, "Jean Martin", "jean.martin@example.net")
    second = token_in(outbox_mails(runtime)[1])
    with pytest.raises(InvalidInputError, match="not valid"):
        runtime.tokens.check(first, TokenPurpose.ACTIVATION)
    runtime.tokens.check(second, TokenPurpose.ACTIVATION)


def test_sec4_the_activation_link_expires_after_24_hours(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    create_person(runtime, person(runtime))
    token = token_in(outbox_mails(runtime)[0])
    later = dataclasses.replace(
        runtime, clock=FixedClock(runtime.clock.now() + timedelta(hours=24))
    )
    later._tokens = None  # a fresh Tokens on the later clock, same store
    with pytest.raises(InvalidInputError, match="expired"):
        later.tokens.check(token, TokenPurpose.ACTIVATION)


# --- bad input changes nothing (security 13, 16) ------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"personal_email": "jean@example.net\r\nBcc: x@evil.test"}, "line breaks"),
        ({"personal_email": "not an address"}, "not valid"),
        ({"profile": "astronaut"}, "unknown profile"),
        ({"external_id": "E1)(uid=*"}, "external id"),
        ({"end_of_activity": months(1), "arrival": months(2)}, "before --arrival"),
    ],
)
def test_sec13_sec16_bad_input_is_refused_before_any_change(
    on: Callable[[date], Runtime],
    directory_clean: LocalDirectory,
    fields: dict[str, Any],
    message: str,
) -> None:
    runtime = on(TODAY)
    before = snapshot(directory_clean, runtime)
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        create_person(runtime, person(runtime, **fields))
    assert snapshot(directory_clean, runtime) == before


def test_past_end_of_activity_creates_nothing(
    on: Callable[[date], Runtime], directory_clean: LocalDirectory
) -> None:
    runtime = on(TODAY)
    before = snapshot(directory_clean, runtime)
    with pytest.raises(InvalidInputError, match="in the past"):
        create_person(runtime, person(runtime, end_of_activity=months(-11)))
    assert snapshot(directory_clean, runtime) == before


def test_sec16_filter_characters_in_an_address_match_nothing_else(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    add_person(runtime, "jean.martin", extra={"supannMailPerso": ["ab@example.net"]})
    result = create_person(runtime, person(runtime, personal_email="a*@example.net"))
    assert result.action == "created" and result.uid == "jean.martin2"


# --- returning people ---------------------------------------------------------------------------


def test_same_external_id_active_is_reported_not_created(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    add_person(runtime, "ana.diaz", extra={"supannEmpId": ["P42"]})
    result = create_person(runtime, person(runtime, "Ana", "Diaz", external_id="p42"))
    assert (result.action, result.changed, result.account) == (
        "exists", False, "ana.diaz@umontpellier.fr",
    )  # fmt: skip
    assert outbox_mails(runtime) == []


def test_returning_person_in_grace_is_reinstated_awaiting_activation(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    back = add_person(
        runtime, "rui.costa", profile="vacataire", end_of_activity=month_end(-1),
        extra={"supannEmpId": ["P7"]},
    )  # fmt: skip
    suspend(runtime, back.identifier)
    assert runtime.directory.check_password(back.dn, back.password)  # grace: still usable
    result = create_person(
        runtime,
        person(runtime, "Rui", "Costa", external_id="P7", personal_email="rui@example.org",
               end_of_activity=month_end(7)),
    )  # fmt: skip
    assert (result.action, result.account, result.state) == (
        "reinstated", back.identifier, "I:SupannCree",
    )  # fmt: skip
    entry = read(runtime, back)
    assert compte(entry) == f"{{COMPTE}}I:SupannCree:{ymd(TODAY)}:"
    assert entry.get("pwdEndTime") == []
    assert sorted(entry.get("eduPersonAffiliation")) == ["employee", "member", "teacher"]
    assert entry.get("supannEmpDateFin") == [generalized(month_end(7))]
    assert entry.get("supannMailPerso") == ["rui@example.org"]
    assert not runtime.directory.check_password(back.dn, back.password)  # the old one is gone
    [mail] = [m for m in outbox_mails(runtime) if m["To"] == "rui@example.org"]
    runtime.tokens.check(token_in(mail), TokenPurpose.ACTIVATION)
    assert runtime.audit.read(account=back.identifier)[-1].changes["userPassword"]["after"] == []


def test_returning_purged_person_is_restored_then_reinstated(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    gone = add_person(
        runtime, "eva.klein", profile="autre_personnel", end_of_activity=month_end(-6),
        extra={"supannEmpId": ["P99"]},
    )  # fmt: skip
    suspend(runtime, gone.identifier, reason="left", notice=False)
    purge(runtime, gone.identifier)
    result = create_person(
        runtime, person(runtime, "Eva", "Klein", external_id="P99", profile="autre_personnel")
    )
    assert (result.action, result.account) == ("restored", gone.identifier)
    assert compte(read(runtime, gone)) == f"{{COMPTE}}I:SupannCree:{ymd(TODAY)}:"


def test_foreign_state_is_refused(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    add_person(
        runtime, "lou.bert", extra={"supannEmpId": ["P5"]},
        state_values=["{COMPTE}S:SupannVerrouAdministratif:20260101:"],
    )  # fmt: skip
    with pytest.raises(RefusedError, match="set by another tool"):
        create_person(runtime, person(runtime, "Lou", "Bert", external_id="P5"))


# --- arrival day --------------------------------------------------------------------------------


def test_precreated_until_arrival_then_the_sweep_sends_the_link(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(days(-6))
    result = create_person(runtime, person(runtime, arrival=TODAY))
    assert (result.action, result.state, result.mail) == ("precreated", "I:SupannPrecree", None)
    entry = runtime.directory.read(
        f"uid={result.uid},{runtime.config.directory.people_dn}", ["supannRessourceEtatDate"]
    )
    assert entry is not None
    precreated = f"{{COMPTE}}I:SupannPrecree:{ymd(days(-6))}:{ymd(days(-1))}"
    assert precreated in entry.get("supannRessourceEtatDate")
    assert outbox_mails(runtime) == []
    assert list(arrivals_due(on(days(-1)))) == []
    arrival_day = on(TODAY)
    [due] = list(arrivals_due(arrival_day))
    dry = arrive(arrival_day, due, dry_run=True)
    assert dry.substate == "SupannCree" and outbox_mails(arrival_day) == []
    done = arrive(arrival_day, due)
    assert (done.action, done.substate) == ("arrive", "SupannCree")
    [mail] = outbox_mails(arrival_day)
    arrival_day.tokens.check(token_in(mail), TokenPurpose.ACTIVATION)
    assert list(arrivals_due(arrival_day)) == []


# --- intake -------------------------------------------------------------------------------------

HEADER = "prenom;nom;profil;mail_perso;id_externe;date_fin;arrivee\n"
# The end of activity of the intake rows, as a French spreadsheet writes it.
END = f"{month_end(9):%d/%m/%Y}"


def intake_text(count: int) -> tuple[str, dict[int, str]]:
    """``count`` good rows with a broken row every 25 lines; the broken lines and why."""
    lines = [HEADER]
    broken: dict[int, str] = {}
    for number in range(count):
        line = len(lines) + 1
        if number % 25 == 7:
            lines.append(f"Bad;Row{number};vacataire;not-an-address;;;\n")
            broken[line] = "personal_email"
        elif number % 25 == 13:
            lines.append(f"Élise;Nom{number};martian;e{number}@example.net;;;\n")
            broken[line] = "unknown profile"
        else:
            profile = "etudiant" if number % 2 else "vacataire"
            lines.append(
                f"Élise;Nom{number % 40};{profile};e{number}@example.net;X{number};{END};\n"
            )
    return "".join(lines), broken


def run_intake(runtime: Runtime, text: str, **options: bool) -> list[CreateOutcome | RowFailure]:
    intake = read_intake(text.encode("cp1252"), profiles=runtime.config.profiles)
    results: list[CreateOutcome | RowFailure] = [
        RowFailure(e.line, e.reason) for e in intake.errors
    ]
    return results + list(create_people(runtime, intake.rows, **options))


def test_intake_of_hundreds_with_broken_rows_then_again_creates_nothing_twice(
    on: Callable[[date], Runtime], directory_clean: LocalDirectory
) -> None:
    runtime = on(TODAY)
    text, broken = intake_text(300)
    results = run_intake(runtime, text, send_mail=False)
    failures = {r.line: r.reason for r in results if isinstance(r, RowFailure)}
    assert sorted(failures) == sorted(broken)
    for line, reason in broken.items():
        assert reason in failures[line]
    created = [r for r in results if isinstance(r, CreateOutcome)]
    assert len(created) == 300 - len(broken)
    assert {r.action for r in created} == {"created"}
    assert len({r.uid for r in created}) == len(created)  # same names: suffixes, none reused
    assert {r.uid for r in created if r.uid.startswith("elise.nom1")} >= {
        "elise.nom1",
        "elise.nom12",
    }
    before = snapshot(directory_clean, runtime)
    again = [r for r in run_intake(runtime, text, send_mail=False) if isinstance(r, CreateOutcome)]
    assert {r.action for r in again} == {"exists"}
    assert sorted(r.account for r in again) == sorted(r.account for r in created)
    assert snapshot(directory_clean, runtime) == before


def test_intake_dry_run_changes_nothing_and_still_numbers_duplicates(
    on: Callable[[date], Runtime], directory_clean: LocalDirectory
) -> None:
    runtime = on(TODAY)
    before = snapshot(directory_clean, runtime)
    text = HEADER + "Jo;Lee;vacataire;a@example.net;;;\nJo;Lee;vacataire;b@example.net;;;\n"
    results = run_intake(runtime, text, dry_run=True)
    assert [r.uid for r in results if isinstance(r, CreateOutcome)] == ["jo.lee", "jo.lee2"]
    assert snapshot(directory_clean, runtime) == before


def test_intake_without_external_id_is_idempotent_on_names_address_and_profile(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    text = HEADER + "Jo;Lee;vacataire;a@example.net;;;\n"
    [first] = run_intake(runtime, text)
    [second] = run_intake(runtime, text)
    assert isinstance(first, CreateOutcome) and isinstance(second, CreateOutcome)
    assert (first.action, second.action, second.account) == ("created", "exists", first.account)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(["Jo", "Jö", "JO", "Jó"]), min_size=1, max_size=6))
def test_same_folded_names_in_one_run_all_get_distinct_identifiers(
    on: Callable[[date], Runtime], directory_clean: LocalDirectory, givens: list[str]
) -> None:
    runtime = on(TODAY)
    text = HEADER + "".join(
        f"{g};Lee;vacataire;p{i}@example.net;;;\n" for i, g in enumerate(givens)
    )
    results = run_intake(runtime, text, dry_run=True)
    uids = [r.uid for r in results if isinstance(r, CreateOutcome)]
    assert uids == ["jo.lee"] + [f"jo.lee{n}" for n in range(2, len(givens) + 1)]


def test_thousand_rows_timing(
    on: Callable[[date], Runtime], capsys: pytest.CaptureFixture[str]
) -> None:
    runtime = on(TODAY)
    text = HEADER + "".join(
        f"Prénom{n};Nom{n % 300};etudiant;p{n}@example.net;T{n};;\n" for n in range(1000)
    )
    started = time.perf_counter()
    results = run_intake(runtime, text)
    elapsed = time.perf_counter() - started
    assert sum(isinstance(r, CreateOutcome) and r.mail == "outbox" for r in results) == 1000
    with capsys.disabled():
        print(f"\n1000-row intake with mail (outbox): {elapsed:.2f} s at {datetime.now(UTC):%H:%M}")
