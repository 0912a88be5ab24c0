"""Safe on a real directory: notice before any cut-off, caps on mass changes, undoable steps.

Every test runs against the real slapd, through the command line where a user would type it,
on the test's clock (today plus offsets: the runs shifted with faketime exercise other days).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY, days, month_end, ymd
from people import (
    Person,
    add_person,
    compte,
    generalized,
    legacy_generalized,
    mail_text,
    outbox_mails,
    read,
    rewrite_config,
)

from umacct.directory import Change
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

pytestmark = pytest.mark.usefixtures("directory_clean")
NOTICE = 30  # [policy] minimum_notice_days, the default


def sweep_json(day: date = TODAY, *args: str) -> list[dict[str, object]]:
    code, out, err = umacct("--json", "sweep", *args, day=day)
    assert code == 0, err
    document: list[dict[str, object]] = json.loads(out)
    return document


def mails_to(runtime: Runtime, person: Person) -> list[str]:
    return [str(m["Subject"]) for m in outbox_mails(runtime) if m["To"] == person.identifier]


# --- notice before any cut-off -----------------------------------------------------------------


def test_an_old_directory_gets_notice_not_an_expiry_on_the_first_night(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    # Activity ended two years ago; nobody acted on it: the account still works.
    old = add_person(runtime, "old.timer", profile="autre_personnel", end_of_activity=days(-730))
    [result] = sweep_json(TODAY, "--purge")
    assert (result["account"], result["action"]) == (old.identifier, "suspend")
    grace_end = days(NOTICE)
    assert result["grace_end"] == grace_end.isoformat()
    assert "late: notice period" in str(result["message"])
    entry = read(runtime, old)
    assert compte(entry) == f"{{COMPTE}}A:SupannSursis:{ymd(days(-729))}:{ymd(grace_end)}"
    assert entry.first("pwdEndTime") is not None
    assert runtime.directory.check_password(old.dn, old.password)  # still usable
    [subject] = mails_to(runtime, old)
    assert "reste ouvert" in subject
    code, out, _ = umacct("explain", old.identifier)
    assert code == 0 and "late: notice period" in out
    # The next nights only warn until the notice has run: no cut-off, no purge.
    actions = [r["action"] for n in range(1, NOTICE + 1) for r in sweep_json(days(n), "--purge")]
    assert actions == ["warn", "warn"]  # 30 and 7 days before
    [expired] = sweep_json(days(NOTICE + 1), "--purge")
    assert expired["action"] == "expire"
    assert compte(read(runtime, old)).startswith(
        f"{{COMPTE}}I:SupannExpire:{ymd(days(NOTICE + 1))}"
    )
    closed = [m for m in outbox_mails(runtime) if "est fermé" in str(m["Subject"])]
    [closing] = closed
    body = mail_text(closing)
    assert "annoncé" not in body.lower() and "announced" not in body.lower()
    purge_day = days(NOTICE + 1 + 30)
    assert purge_day.strftime("%Y") in body
    # Purge counts from the real cut-off, never from the back-dated end of the grace.
    assert [r["action"] for r in sweep_json(days(NOTICE + 2), "--purge")] == []
    [purged] = sweep_json(purge_day, "--purge")
    assert purged["action"] == "purge"


def test_the_warning_already_due_is_sent_in_the_run_that_suspends(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    rewrite_config(config_path, policy={"minimum_notice_days": 3})
    runtime = on(TODAY)
    # Ends so that the grace end falls inside the 30-day warning window today.
    leaving = add_person(
        runtime, "late.hr", profile="autre_personnel", end_of_activity=month_end(-3)
    )
    code, _, err = umacct("suspend", leaving.identifier, "--reason", "left")
    assert code == 0, err
    subjects = mails_to(runtime, leaving)
    assert len(subjects) == 2, subjects
    assert "reste ouvert" in subjects[0] and "va être fermé" in subjects[1]


def test_an_account_in_grace_never_told_is_told_and_lengthened(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    end, grace_end = days(-80), days(5)
    told_nothing = add_person(
        runtime,
        "no.notice",
        profile="autre_personnel",
        end_of_activity=end,
        state_values=[
            f"{{COMPTE}}A:SupannSursis:{ymd(end + timedelta(days=1))}:{ymd(grace_end)}",
            f"{{MAIL}}A:SupannSursis:{ymd(end + timedelta(days=1))}:{ymd(grace_end)}",
        ],
    )
    [result] = sweep_json()
    assert result["action"] == "notice"
    assert result["grace_end"] == days(NOTICE).isoformat()
    assert compte(read(runtime, told_nothing)).endswith(ymd(days(NOTICE)))
    assert len(mails_to(runtime, told_nothing)) == 1
    assert sweep_json() == []


def test_a_grace_the_directory_already_enforced_expires_on_its_real_date(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(days(-60))
    person = add_person(
        runtime, "cron.missed", profile="autre_personnel", end_of_activity=days(-200)
    )
    code, _, err = umacct("suspend", person.identifier, "--reason", "left", day=days(-60))
    assert code == 0, err
    grace_end = date.fromisoformat(
        str(json.loads(umacct("--json", "show", person.identifier)[1])["grace_end"])
    )
    assert grace_end < TODAY  # cron did not run since: the directory refuses the login already
    [result] = sweep_json(TODAY, "--purge")
    assert result["action"] == "expire"
    real_cut = grace_end + timedelta(days=1)
    assert compte(read(on(TODAY), person)).startswith(f"{{COMPTE}}I:SupannExpire:{ymd(real_cut)}")


def test_suspend_with_an_end_far_in_the_past_gives_notice_unless_no_notice(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    kept = add_person(runtime, "kept.on", profile="autre_personnel")
    cut = add_person(runtime, "cut.now", profile="autre_personnel")
    long_ago = days(-400).isoformat()
    code, out, err = umacct(
        "--json", "suspend", kept.identifier, "--end-of-activity", long_ago, "--reason", "left"
    )
    assert code == 0, err
    assert json.loads(out)["grace_end"] == days(NOTICE).isoformat()
    code, out, err = umacct(
        "--json", "suspend", cut.identifier, "--end-of-activity", long_ago, "--no-notice",
        "--reason", "charter abuse: cut at the policy date",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["action"] == "expire"
    assert not runtime.directory.check_password(cut.dn, cut.password)
    records = [r for r in runtime.audit.read(account=cut.identifier) if r.details.get("no_notice")]
    assert [r.command for r in records] == ["suspend", "suspend"]  # the grace, then the expiry
    assert all("charter abuse" in str(r.details["reason"]) for r in records)


# --- no mass change by accident ----------------------------------------------------------------


def test_a_run_over_the_cap_changes_nothing_and_exits_77(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    rewrite_config(config_path, policy={"max_changes_per_run": 2})
    runtime = on(TODAY)
    people = [
        add_person(runtime, f"wave.{n}", profile="vacataire", end_of_activity=days(-2))
        for n in range(3)
    ]
    before = [read(runtime, p) for p in people]
    for command in (["sweep"], ["suspend", "--due"]):
        code, out, err = umacct(*command)
        assert code == 77, err
        assert "3 accounts" in err and "--max-changes 3" in err and "--dry-run" in err
        assert out == ""
    assert [read(runtime, p) for p in people] == before
    assert outbox_mails(runtime) == []
    code, _, err = umacct("sweep", "--max-changes", "3")
    assert code == 0, err
    assert all(compte(read(runtime, p)).startswith("{COMPTE}A:SupannSursis") for p in people)


def test_sweep_purge_obeys_the_limit_and_says_how_many_are_left(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    expired = [
        f"{{COMPTE}}I:SupannExpire:{ymd(days(-90))}:",
        f"{{MAIL}}I:SupannExpire:{ymd(days(-90))}:",
    ]
    gone = [
        add_person(
            runtime, f"gone.{n}", profile="autre_personnel", end_of_activity=days(-200),
            state_values=expired, extra={"pwdEndTime": [generalized(days(-90))]},
        )
        for n in range(3)
    ]  # fmt: skip
    code, out, err = umacct("--json", "sweep", "--purge", "--limit", "2")
    assert code == 0, err
    assert [r["action"] for r in json.loads(out)] == ["purge", "purge"]
    assert "1 more purgeable" in err
    left = [p for p in gone if runtime.directory.read(p.dn, ["uid"]) is not None]
    assert len(left) == 1


def test_purge_of_one_account_asks_and_needs_a_reason(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    expired = [f"{{COMPTE}}I:SupannExpire:{ymd(days(-90))}:"]
    person = add_person(runtime, "one.gone", state_values=expired, end_of_activity=days(-200))
    assert umacct("purge", person.identifier, "--yes")[0] == 2  # no --reason
    code, _, err = umacct("purge", person.identifier, "--reason", "left")
    assert code == 77 and "--yes" in err  # no terminal to ask
    assert runtime.directory.read(person.dn, ["uid"]) is not None
    code, _, err = umacct("purge", person.identifier, "--yes", "--reason", "left")
    assert code == 0, err
    assert runtime.directory.read(person.dn, ["uid"]) is None


@pytest.mark.parametrize(
    "command",
    [
        ["extend", "{x}"],
        ["purge", "{x}", "--yes"],
        ["purge", "--expired", "--yes"],
        ["restore", "{x}"],
        ["unsuspend", "{x}"],
        ["suspend", "{x}"],
        ["set-recovery", "{x}", "new@example.org", "--no-confirm"],
        ["redirect", "{x}", "new@example.org", "--no-confirm"],
    ],
)
def test_reason_is_required_where_a_person_decides(
    on: Callable[[date], Runtime], command: list[str]
) -> None:
    person = add_person(on(TODAY), "why.not", end_of_activity=days(-3))
    before = read(on(TODAY), person)
    code, _, err = umacct(*[person.identifier if part == "{x}" else part for part in command])
    assert code == 2, err
    assert "--reason" in err
    assert read(on(TODAY), person) == before


# --- mistakes that can be undone ---------------------------------------------------------------


def test_unsuspend_puts_the_account_back_as_it_was(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "back.again", profile="titulaire", end_of_activity=days(-1))
    active_state = compte(read(runtime, person))
    affiliations = sorted(read(runtime, person).get("eduPersonAffiliation"))
    assert umacct("suspend", person.identifier, "--reason", "HR error")[0] == 0
    runtime.tokens.issue(person.identifier, TokenPurpose.RESET, timedelta(hours=1))
    code, out, err = umacct("--json", "unsuspend", person.identifier, "--reason", "HR error")
    assert code == 0, err
    assert json.loads(out)["action"] == "unsuspend"
    entry = read(runtime, person)
    assert compte(entry) == active_state
    assert sorted(entry.get("eduPersonAffiliation")) == affiliations
    assert entry.get("pwdEndTime") == []
    assert runtime.tokens.pending(person.identifier) == []
    assert umacct("unsuspend", person.identifier, "--reason", "again")[0] == 77


def test_an_undone_suspension_takes_back_the_end_date_it_wrote(
    on: Callable[[date], Runtime],
) -> None:
    """``suspend --end-of-activity`` then ``unsuspend``: the next sweep used to suspend again."""
    runtime = on(TODAY)
    person = add_person(runtime, "hr.mistake", profile="titulaire")
    ended = month_end(-5).isoformat()
    code, _, err = umacct(
        "suspend", person.identifier, "--end-of-activity", ended, "--reason", "contract ended"
    )
    assert code == 0, err
    assert read(runtime, person).get("supannEmpDateFin") != []
    assert umacct("unsuspend", person.identifier, "--reason", "HR list was wrong")[0] == 0
    entry = read(runtime, person)
    assert entry.get("supannEmpDateFin") == []
    assert compte(entry).startswith("{COMPTE}A:SupannActif")
    code, out, err = umacct("sweep")
    assert (code, out) == (0, ""), err
    assert compte(read(runtime, person)).startswith("{COMPTE}A:SupannActif")

    dated = add_person(runtime, "hr.dated", profile="titulaire", end_of_activity=month_end(-1))
    before = read(runtime, dated).get("supannEmpDateFin")
    assert umacct("suspend", dated.identifier, "--reason", "left")[0] == 0
    assert umacct("unsuspend", dated.identifier, "--reason", "back")[0] == 0
    assert read(runtime, dated).get("supannEmpDateFin") == before  # HR's own date is kept


def test_unsuspend_refuses_expired_and_purged_accounts_naming_the_way(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    expired = [f"{{COMPTE}}I:SupannExpire:{ymd(days(-90))}:"]
    person = add_person(runtime, "too.late", state_values=expired, end_of_activity=days(-200))
    code, _, err = umacct("unsuspend", person.identifier, "--reason", "x")
    assert code == 77 and "umacct create" in err
    assert umacct("purge", person.identifier, "--yes", "--reason", "left")[0] == 0
    code, _, err = umacct("unsuspend", person.identifier, "--reason", "x")
    assert code == 77 and "umacct restore" in err


def test_suspend_with_another_end_of_activity_moves_the_grace(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "new.date", profile="vacataire", end_of_activity=month_end(-1))
    assert umacct("suspend", person.identifier, "--reason", "left")[0] == 0
    first = compte(read(runtime, person))
    earlier = month_end(-2)
    code, out, err = umacct(
        "--json", "suspend", person.identifier, "--end-of-activity", earlier.isoformat(),
        "--reason", "HR corrected the date",
    )  # fmt: skip
    assert code == 0, err
    document = json.loads(out)
    assert document["changed"] is True
    assert compte(read(runtime, person)) != first
    assert compte(read(runtime, person)).startswith(
        f"{{COMPTE}}A:SupannSursis:{ymd(earlier + timedelta(days=1))}"
    )
    assert read(runtime, person).first("supannEmpDateFin") == generalized(earlier)


def test_extend_renews_it_does_not_stack(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "twice.asked", profile="titulaire", end_of_activity=days(-1))
    assert umacct("suspend", person.identifier, "--reason", "left")[0] == 0
    code, _, err = umacct("extend", person.identifier, "--reason", "asked")
    assert code == 0, err
    before = read(runtime, person)
    code, _, err = umacct("extend", person.identifier, "--reason", "asked again")
    assert code == 77
    assert "already extended to" in err
    assert read(runtime, person) == before
    assert umacct("extend", person.identifier, "--reason", "admin", "--force")[0] == 0


def test_restore_names_the_next_step(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    expired = [f"{{COMPTE}}I:SupannExpire:{ymd(days(-90))}:"]
    person = add_person(runtime, "re.stored", profile="titulaire", state_values=expired)
    assert umacct("purge", person.identifier, "--yes", "--reason", "left")[0] == 0
    code, out, err = umacct("restore", person.identifier, "--reason", "purged by mistake")
    assert code == 0, err
    assert "umacct create" in out and f"umacct reset {person.identifier}" in out


# --- dates in SUPANN attributes ----------------------------------------------------------------


def test_supann_end_dates_are_written_at_midnight_utc_and_read_in_both_forms(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    later = month_end(2)
    person = add_person(runtime, "date.form", profile="titulaire")
    code, _, err = umacct(
        "suspend", person.identifier, "--end-of-activity", later.isoformat(), "--reason", "ends"
    )
    assert code == 0, err
    assert read(runtime, person).first("supannEmpDateFin") == f"{later:%Y%m%d}000000Z"
    legacy = add_person(runtime, "date.legacy", profile="titulaire")
    runtime.directory.modify(
        legacy.dn, [Change("replace", "supannEmpDateFin", (legacy_generalized(later),))]
    )
    for who in (person, legacy):
        code, out, _ = umacct("--json", "show", who.identifier)
        assert json.loads(out)["end_of_activity"] == later.isoformat()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("minimum_notice_days", -1),
        ("minimum_notice_days", "30"),
        ("max_changes_per_run", 0),
        ("max_changes_per_run", -5),
    ],
)
def test_bad_safety_settings_fail_config_check_with_78(
    config_path: Path, key: str, value: object
) -> None:
    rewrite_config(config_path, policy={key: value})
    code, _, err = umacct("config", "check")
    assert code == 78, err
    assert key in err


def test_a_purgeable_account_is_marked_awaiting_deletion_then_purged(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    expired = [f"{{COMPTE}}I:SupannExpire:{ymd(days(-90))}:"]
    person = add_person(
        runtime, "await.del", state_values=expired, extra={"pwdEndTime": [generalized(days(-90))]}
    )
    [marked] = sweep_json()
    assert marked["action"] == "awaiting-deletion"
    assert compte(read(runtime, person)) == f"{{COMPTE}}I:SupannSupprCompte:{ymd(TODAY)}:"
    assert [r["action"] for r in sweep_json()] == ["purgeable"]
    [purged] = sweep_json(TODAY, "--purge")
    assert purged["action"] == "purge"
    assert runtime.directory.read(person.dn, ["uid"]) is None


def test_a_control_character_in_a_name_never_stops_the_mail_a_change_sends(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "ctl.name", profile="vacataire", end_of_activity=days(-2))
    runtime.directory.modify(person.dn, [Change("replace", "sn", ("Na\x1b[31mme\u202e",))])
    code, _, err = umacct("suspend", person.identifier, "--reason", "left")
    assert code == 0, err
    [mail] = [m for m in outbox_mails(runtime) if m["To"] == person.identifier]
    assert "\x1b" not in mail_text(mail) and "\u202e" not in mail_text(mail)
