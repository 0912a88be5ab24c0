"""``umacct create`` through the command line, against slapd, with ``--json`` parsed."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from command_line import umacct

from umacct.config import load_config
from umacct.localdir import LocalDirectory
from umacct.store import SQLiteStore

pytestmark = pytest.mark.usefixtures("directory_clean")

ONE = [
    "create", "--given-name", "Anaïs", "--surname", "Nguyễn", "--profile", "etudiant",
    "--personal-email", "anais@example.net", "--external-id", "E77",
]  # fmt: skip


@dataclass(frozen=True)
class Run:
    """One run of the tool: exit code, stdout and stderr kept apart."""

    exit_code: int
    stdout: str
    stderr: str


def run(*args: str) -> Run:
    """Invoke the CLI on the test's clock (today); stdout and stderr kept apart."""
    return Run(*umacct(*args, catch_exceptions=False))


def state_of(slapd: LocalDirectory, config_path: Path) -> tuple[str, object, list[str]]:
    """People subtree, state store and outbox: what a refused command must not touch."""
    people = slapd.run_root(
        "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", slapd.people_dn, "*", "+"
    )
    config = load_config(config_path)
    with SQLiteStore(Path(config.paths.data_dir)) as store:
        dump = store.dump()
    outbox = (
        sorted(p.name for p in config.outbox_dir.glob("*")) if config.outbox_dir.exists() else []
    )
    return people, dump, outbox


def test_create_prints_the_identifier_and_json_has_the_fields(config_path: Path) -> None:
    plain = run(*ONE)
    assert plain.exit_code == 0, plain.stderr
    assert plain.stdout.strip() == "anais.nguyen@etu.umontpellier.fr"
    again = run("--json", *ONE)
    assert again.exit_code == 0
    document = json.loads(again.stdout)
    assert document["account"] == "anais.nguyen@etu.umontpellier.fr"
    assert document["uid"] == "anais.nguyen" and document["profile"] == "etudiant"
    assert (document["action"], document["changed"], document["state"]) == (
        "exists", False, "I:SupannCree",
    )  # fmt: skip
    assert "activation_expires" in document


def test_sec6_the_token_is_not_printed(config_path: Path) -> None:
    result = run("--json", *ONE)
    document = json.loads(result.stdout)
    assert document["activation_expires"] and document["mail"] == "outbox"  # not "sent"
    assert "token" not in result.stdout and "token=" not in result.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--personal-email", "x@example.net\nBcc: y@evil.test"], 65, "line breaks"),
        (["--profile", "astronaut"], 2, "--profile: expected one of"),
        (["--end-of-activity", "31/02/2027"], 2, "does not exist"),
        (["--surname", "\u202e"], 65, "invisible"),
    ],
)
def test_bad_input_exits_with_its_code_and_changes_nothing(
    config_path: Path, slapd: LocalDirectory, args: list[str], code: int, message: str
) -> None:
    before = state_of(slapd, config_path)
    options = dict(zip(ONE[1::2], ONE[2::2], strict=True))
    options.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = run("--json", "create", *[item for pair in options.items() for item in pair])
    assert result.exit_code == code, result.stdout
    error = json.loads(result.stderr)
    assert message in error["message"] and error["exit_code"] == code
    assert len(result.stderr.strip().splitlines()) == 1
    assert state_of(slapd, config_path) == before


def test_missing_options_and_csv_with_a_person_are_usage_errors(config_path: Path) -> None:
    assert run("create", "--given-name", "A").exit_code == 2
    assert run("create", "--csv", "x.csv", "--surname", "B").exit_code == 2


def test_foreign_state_exits_77(config_path: Path, slapd: LocalDirectory) -> None:
    slapd.run_root(
        "ldapadd",
        ldif=(
            f"dn: uid=anais.nguyen,{slapd.people_dn}\nobjectClass: inetOrgPerson\n"
            "objectClass: supannPerson\nuid: anais.nguyen\ncn: Anais Nguyen\nsn: Nguyen\n"
            "givenName: Anais\n"
            "supannEtuId: E77\nsupannRessourceEtatDate: {COMPTE}S:SupannVerrouille:20260101:\n"
        ),
    )
    result = run(*ONE)
    assert result.exit_code == 77
    assert "set by another tool" in result.stderr


def test_csv_intake_reports_bad_lines_exits_65_and_is_idempotent(
    config_path: Path, slapd: LocalDirectory, tmp_path: Path
) -> None:
    rows = ["given_name,surname,profile,personal_email,external_id,arrival"]
    for number in range(120):
        rows.append(f"Léa,Petit{number % 7},etudiant,l{number}@example.net,S{number},")
    rows[10] = "Léa,Petit,etudiant,broken-address,S9,"
    rows[50] = "Léa,Petit,nobody,l49@example.net,S49,"
    intake = tmp_path / "rentree.csv"
    intake.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    first = run("--json", "create", "--csv", str(intake), "--no-mail")
    assert first.exit_code == 65
    report = json.loads(first.stdout)
    assert [error["line"] for error in report["errors"]] == [11, 51]
    assert "personal_email" in report["errors"][0]["reason"]
    assert report["summary"] == {"created": 118, "failed": 2}
    assert {r["line"] for r in report["results"]} == set(range(2, 122)) - {11, 51}
    before = state_of(slapd, config_path)
    second = run("--json", "create", "--csv", str(intake), "--no-mail")
    assert json.loads(second.stdout)["summary"] == {"exists": 118, "failed": 2}
    assert state_of(slapd, config_path) == before


def test_csv_text_output_and_dry_run(
    config_path: Path, slapd: LocalDirectory, tmp_path: Path
) -> None:
    intake = tmp_path / "in.csv"
    intake.write_bytes(
        "prénom;nom;profil;mail_perso\nJosé;Muñoz;vacataire;j@example.net\n".encode("cp1252")
    )
    before = state_of(slapd, config_path)
    result = run("create", "--csv", str(intake), "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split("\t")[:3] == ["line 2", "jose.munoz@umontpellier.fr", "would create"]
    assert "(dry run)" in result.stderr and "would create 1" in result.stderr
    assert "failed 0" in result.stderr
    assert state_of(slapd, config_path) == before


def test_unreadable_or_malformed_file_exits_65_and_creates_nothing(
    config_path: Path, slapd: LocalDirectory, tmp_path: Path
) -> None:
    before = state_of(slapd, config_path)
    assert run("create", "--csv", str(tmp_path / "missing.csv")).exit_code == 65
    bad = tmp_path / "bad.csv"
    bad.write_text("prenom;nom;profil;mail_perso;date_fn\nA;B;etudiant;a@example.net;\n")
    result = run("create", "--csv", str(bad))
    assert result.exit_code == 65 and "unknown column" in result.stderr
    assert state_of(slapd, config_path) == before


# --- warnings, refused rows handed back, extra columns ---------------------------------------


def test_a_second_account_for_the_same_names_is_warned_about(
    config_path: Path, slapd: LocalDirectory
) -> None:
    first = run(
        "create", "--given-name", "Jean", "--surname", "Martin", "--profile", "vacataire",
        "--personal-email", "jean@example.net",
    )  # fmt: skip
    assert first.exit_code == 0, first.stderr
    assert "warning" not in first.stderr
    second = run(
        "create", "--given-name", "Jean", "--surname", "Martin", "--profile", "vacataire",
        "--personal-email", "jean.martin.bis@example.net",
    )  # fmt: skip
    assert second.exit_code == 0, second.stderr
    assert second.stdout.strip() == "jean.martin2@umontpellier.fr"
    assert "warning: jean.martin2@umontpellier.fr: same names as jean.martin@umontpellier.fr" in (
        second.stderr
    )
    intake = config_path.parent / "homonyms.csv"
    intake.write_text(
        "prenom;nom;profil;mail_perso\nJEAN;Martin;vacataire;jm3@example.net\n", "utf-8"
    )
    report = json.loads(run("create", "--csv", str(intake), "--json").stdout)
    [warning] = report["warnings"]
    assert warning["line"] == 2 and warning["account"] == "jean.martin3@umontpellier.fr"
    assert "jean.martin2@umontpellier.fr" in warning["warning"]


def test_a_shortened_identifier_is_warned_about(config_path: Path, slapd: LocalDirectory) -> None:
    given, surname = "Marie-Antoinette-Josèphe-Jeanne", "de Habsbourg-Lorraine-et-Bourbon-Parme"
    result = run(
        "create", "--given-name", given, "--surname", surname, "--profile", "vacataire",
        "--personal-email", "marie@example.net", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    [warning] = document["warnings"]
    local = document["account"].split("@")[0]
    assert warning["warning"].startswith(f"identifier shortened to {local} (the names make ")


@pytest.mark.parametrize(
    ("header", "reason", "delimiter", "encoding"),
    [
        ("prenom;nom;profil;mail_perso;service", "motif", ";", "cp1252"),
        ("given_name,surname,profile,personal_email,service", "reason", ",", "utf-8"),
    ],
)
def test_rejects_hands_the_refused_rows_back_with_the_reason(
    config_path: Path,
    slapd: LocalDirectory,
    tmp_path: Path,
    header: str,
    reason: str,
    delimiter: str,
    encoding: str,
) -> None:
    rows = [
        ["Léa", "Dubois", "etudiant", "lea@example.net", "=1+1"],
        ["Hugo", "Petit", "etudiant", "not-an-address", "IT"],
        ["Zoé", "Roux", "alien", "zoe@example.net", "RH"],
    ]
    intake = tmp_path / "intake.csv"
    lines = [header, *(delimiter.join(row) for row in rows)]
    intake.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    refused = tmp_path / "refused.csv"
    result = run("create", "--csv", str(intake), "--rejects", str(refused))
    assert result.exit_code == 65
    assert "unknown column" in result.stderr  # an extra column stops the whole file...
    assert not refused.exists()
    result = run(
        "create", "--csv", str(intake), "--rejects", str(refused), "--ignore-unknown-columns"
    )
    assert result.exit_code == 65, result.stderr  # ...unless told to skip it
    assert "columns ignored: service" in result.stderr
    assert result.stdout.split("\t")[1] == "lea.dubois@etu.umontpellier.fr"
    assert f"refused rows written to {refused}" in result.stderr
    assert refused.stat().st_mode & 0o777 == 0o600
    back = list(csv.reader(io.StringIO(refused.read_bytes().decode(encoding)), delimiter=delimiter))
    assert back[0] == [*header.split(delimiter), reason]
    assert [row[:5] for row in back[1:]] == rows[1:]
    assert "not-an-address" in back[1][5] and "unknown profile 'alien'" in back[2][5]
