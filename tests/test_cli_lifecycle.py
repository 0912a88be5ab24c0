"""The departure commands through the real CLI: JSON output, exit codes, no change on refusal."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY, month_end
from people import add_person, compte, read

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
            65,
            "--end-of-activity",
        ),
        (
            ["suspend", "cli.three", "--end-of-activity", "yesterday", "--reason", "x"],
            65,
            "--end-of-activity",
        ),
        (["sweep", "--as-of", "2026-13-01"], 65, "--as-of"),
        (["suspend"], 2, "give either ACCOUNT or --due"),
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
    assert out == f"{person.identifier}\twould suspend\tgrace period until {grace_end}\n"
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
