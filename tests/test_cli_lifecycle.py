"""The departure commands through the real CLI: JSON output, exit codes, no change on refusal."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY, month_end
from people import Person, add_person, compte, read, rewrite_config

from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")

KEYS = {
    "account",
    "profile",
    "state",
    "substate",
    "end_of_activity",
    "grace_end",
    "extendable",
    "extensions",
    "changed",
}
ENDED = month_end(-1)  # last month's last day: in grace today whatever the profile


def test_suspend_json_has_the_contract_keys(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), "cli.one", profile="titulaire", end_of_activity=ENDED)
    code, out, err = umacct("--json", "suspend", person.identifier, "--reason", "left")
    assert code == 0, err
    document = json.loads(out)
    assert set(document) >= KEYS
    assert document["substate"] == "SupannSursis"
    assert document["grace_end"] == month_end(11).isoformat()  # titulaire: 12 months
    assert document["extendable"] is True
    assert document["extensions"] == 0


def test_extend_refusal_exit_77_and_no_change(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "cli.two", profile="vacataire", end_of_activity=ENDED)
    assert umacct("suspend", person.identifier, "--reason", "left")[0] == 0
    before = read(runtime, person)
    code, out, err = umacct("extend", person.identifier, "--reason", "asked")
    assert code == 77
    assert out == ""
    assert err.strip() == "umacct: error: profile vacataire is not extendable"
    assert read(runtime, person) == before


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["suspend", "nobody@umontpellier.fr", "--reason", "x"],
            67,
            "no account 'nobody@umontpellier.fr'",
        ),
        (
            ["suspend", "cli.three", "--end-of-activity", "2026-02-30", "--reason", "x"],
            2,
            "--end-of-activity",
        ),
        (
            ["suspend", "cli.three", "--end-of-activity", "yesterday", "--reason", "x"],
            2,
            "--end-of-activity",
        ),
        (["sweep", "--as-of", "2026-13-01"], 2, "--as-of"),
        (["suspend"], 2, "give one of ACCOUNT, --due or --csv FILE"),
        (["suspend", "cli.three"], 2, "--reason"),
        (["purge", "--expired", "--reason", "x"], 77, "confirm with --yes"),
        (["restore", "never.purged", "--reason", "x"], 67, "no purged account"),
        (["suspend", "*)(uid=*", "--reason", "x"], 67, "no account"),
    ],
)
def test_bad_input_clear_error_and_no_change(
    on: Callable[[date], Runtime], config_path: Path, args: list[str], code: int, message: str
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "cli.three", end_of_activity=ENDED)
    before = read(runtime, person)
    got, _out, err = umacct(*args)
    assert got == code, err
    assert message in err
    assert (
        sum("rror" in line for line in err.splitlines()) == 1
    )  # one error line (usage adds a hint)
    assert read(runtime, person) == before
    assert runtime.audit.read() == []


def test_sweep_lines_and_summary(on: Callable[[date], Runtime], config_path: Path) -> None:
    runtime = on(TODAY)
    # etudiant, 6 months: first seen in grace, which ends more than 30 days from now (no
    # warning due yet).
    person = add_person(runtime, "cli.four", profile="etudiant", end_of_activity=month_end(-4))
    today = TODAY.isoformat()
    code, out, err = umacct("sweep", "--as-of", today, "--dry-run")
    assert code == 0, err
    grace_end = month_end(2).isoformat()
    assert (
        out == f"{person.identifier}\twould suspend\tthe grace period would run until {grace_end}\n"
    )
    assert "(dry run)" in err and "would suspend 1" in err
    assert compte(read(runtime, person)).startswith("{COMPTE}A:SupannActif")
    code, out, err = umacct("--json", "sweep", "--as-of", today)
    assert code == 0
    assert [(item["action"], item["dry_run"]) for item in json.loads(out)] == [("suspend", False)]
    code, out, err = umacct("--json", "sweep", "--as-of", today)
    assert json.loads(out) == []
    assert err == ""  # nothing changed: nothing for cron to mail
    code, out, err = umacct("-v", "sweep", "--as-of", today)
    assert (code, out) == (0, "")
    assert "nothing changed" in err


def test_purge_and_restore_through_the_cli(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime, "cli.five", profile="autre_personnel", end_of_activity=month_end(-10)
    )
    assert umacct("suspend", person.identifier, "--no-notice", "--reason", "cut")[0] == 0
    code, out, _ = umacct("--json", "purge", "--expired", "--dry-run")
    assert [item["account"] for item in json.loads(out)] == [person.identifier]
    assert read(runtime, person)
    code, out, err = umacct("purge", "--expired", "--yes", "--reason", "left long ago")
    assert code == 0, err
    assert runtime.directory.read(person.dn, ["uid"]) is None
    code, out, err = umacct("--json", "restore", person.identifier, "--reason", "a mistake")
    assert code == 0, err
    assert json.loads(out)["substate"] == "SupannExpire"


def test_verbose_names_the_directory_server_used(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), "cli.six", end_of_activity=ENDED)
    code, _out, err = umacct("-v", "suspend", person.identifier, "--dry-run", "--reason", "x")
    assert code == 0
    assert "directory: ldap://127.0.0.1:" in err
    assert "directory:" not in umacct("suspend", person.identifier, "--dry-run", "--reason", "x")[2]


# --- suspend --csv: the HR departures list ------------------------------------------------


def _departures(on: Callable[[date], Runtime], tmp_path: Path) -> tuple[Runtime, list[str], Path]:
    runtime = on(TODAY)
    by_uid = add_person(runtime, "dep.one")
    by_alias = add_person(runtime, "dep.two", extra={"supannAliasLogin": ["dtwo"]})
    by_id = add_person(runtime, "dep.three", extra={"supannEmpId": ["RH-303"]})
    ended = ENDED.strftime("%d/%m/%Y")
    text = (
        "compte;date_fin;motif\r\n"
        f"dep.one;{ended};fin de contrat\r\n"
        f"dtwo;{ENDED.isoformat()};\r\n"
        f"RH-303;;démission\r\n"
        f"nobody.here;{ended};x\r\n"
        f"dep.one;{ended};again\r\n"
        "dep.four;31/02/2026;x\r\n"
    )
    path = tmp_path / "departs.csv"
    path.write_bytes(text.encode("cp1252"))
    return runtime, [by_uid.identifier, by_alias.identifier, by_id.identifier], path


def test_suspend_csv_runs_the_departures_list_like_the_intake(
    on: Callable[[date], Runtime], config_path: Path, tmp_path: Path
) -> None:
    runtime, identifiers, path = _departures(on, tmp_path)
    before = [compte(read(runtime, p)) for p in _people(runtime, identifiers)]
    code, out, err = umacct("suspend", "--csv", str(path), "--reason", "HR list", "--dry-run")
    assert code == 65, err
    assert [line.split("\t")[1] for line in out.splitlines()] == identifiers
    assert all(line.split("\t")[2] == "would suspend" for line in out.splitlines())
    assert [compte(read(runtime, p)) for p in _people(runtime, identifiers)] == before
    code, out, err = umacct("suspend", "--csv", str(path), "--reason", "HR list", "--json")
    assert code == 65, err
    report = json.loads(out)
    assert report["encoding"] == "cp1252" and report["dry_run"] is False
    assert [r["account"] for r in report["results"]] == identifiers
    assert {r["substate"] for r in report["results"]} == {"SupannSursis"}
    assert [(e["line"], e["reason"][:20]) for e in report["errors"]] == [
        (5, "no account 'nobody.h"),
        (6, "duplicate of line 2 "),
        (7, "end_of_activity: dat"),
    ]
    reasons = {r.account: r.details.get("reason") for r in runtime.audit.read()}
    assert reasons[identifiers[0]] == "fin de contrat" and reasons[identifiers[1]] == "HR list"


def _people(runtime: Runtime, identifiers: list[str]) -> list[Person]:
    return [
        Person(
            i.split("@")[0], i, f"uid={i.split('@')[0]},{runtime.config.directory.people_dn}", ""
        )
        for i in identifiers
    ]


def test_suspend_csv_obeys_the_change_cap_and_needs_a_reason(
    on: Callable[[date], Runtime], config_path: Path, tmp_path: Path
) -> None:
    runtime, _, path = _departures(on, tmp_path)
    rewrite_config(config_path, policy={"max_changes_per_run": 2})
    code, out, err = umacct("suspend", "--csv", str(path), "--reason", "HR list")
    assert code == 77 and "--max-changes 4" in err and out == ""
    assert runtime.audit.read() == []
    code, out, err = umacct("suspend", "--csv", str(path), "--max-changes", "4")
    assert code == 65
    assert "line 3: no reason: give one in the file or --reason" in err
    path.write_bytes(b"who;when\r\nx;y\r\n")
    code, out, err = umacct("suspend", "--csv", str(path), "--reason", "x")
    assert code == 65 and "unknown column 'who'" in err


def test_suspend_csv_hands_the_refused_rows_back_and_skips_extra_columns(
    on: Callable[[date], Runtime], config_path: Path, tmp_path: Path
) -> None:
    """As the intake: ``--rejects FILE`` (the rows as written, plus ``motif``) and
    ``--ignore-unknown-columns`` for an HR export with columns of its own."""
    _, identifiers, path = _departures(on, tmp_path)
    text = path.read_bytes().decode("cp1252").splitlines()
    extra = [f"{line};service" if number == 0 else f"{line};RH" for number, line in enumerate(text)]
    path.write_bytes(("\r\n".join(extra) + "\r\n").encode("cp1252"))
    code, out, err = umacct("suspend", "--csv", str(path), "--reason", "HR list", "--dry-run")
    assert code == 65 and "unknown column 'service'" in err and out == ""
    rejects = tmp_path / "refus.csv"
    code, out, err = umacct(
        "suspend", "--csv", str(path), "--reason", "HR list", "--ignore-unknown-columns",
        "--rejects", str(rejects),
    )  # fmt: skip
    assert code == 65, err
    assert [line.split("\t")[1] for line in out.splitlines()] == identifiers
    assert "columns ignored: service" in err and f"refused rows written to {rejects}" in err
    written = rejects.read_bytes().decode("cp1252").splitlines()
    assert written[0] == f"{extra[0]};motif"
    assert [row.split(";")[0] for row in written[1:]] == ["nobody.here", "dep.one", "dep.four"]
    assert written[1].startswith(f"{extra[4]};no account")
    assert oct(rejects.stat().st_mode & 0o777) == "0o600"
    code, _, err = umacct("suspend", identifiers[0], "--reason", "x", "--rejects", str(rejects))
    assert code == 2 and "--rejects and --ignore-unknown-columns go with --csv FILE" in err
