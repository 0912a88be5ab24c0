"""The command line as a sysadmin's hands and scripts use it: options where people type them,
output that pipes, quiet cron jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY, month_end
from hypothesis import given
from hypothesis import strategies as st
from people import add_person, read
from terminal import run_on_terminal

from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")

ENDED = month_end(-1)


# --- --json and --format after the command -----------------------------------------------


@pytest.mark.parametrize(
    "options", [["--json"], ["--format", "json"], ["-f", "JSON"]], ids=" ".join
)
def test_json_after_a_read_command(
    on: Callable[[date], Runtime], config_path: Path, options: list[str]
) -> None:
    person = add_person(on(TODAY), "erg.one")
    code, out, err = umacct("show", person.identifier, *options)
    assert code == 0, err
    assert json.loads(out)["account"] == person.identifier


def test_json_before_the_command_still_works(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), "erg.two")
    for args in (["--json", "show", person.identifier], ["--format", "json", "show", "erg.two"]):
        code, out, err = umacct(*args)
        assert code == 0, err
        assert json.loads(out)["account"] == person.identifier


@pytest.mark.parametrize("options", [["--json"], ["--format", "json"]], ids=" ".join)
def test_write_commands_take_format_json_after_the_command(
    on: Callable[[date], Runtime], config_path: Path, options: list[str]
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "erg.three", end_of_activity=ENDED)
    code, out, err = umacct("suspend", person.identifier, "--reason", "left", *options)
    assert code == 0, err
    document = json.loads(out)
    assert (document["account"], document["substate"]) == (person.identifier, "SupannSursis")


def test_an_error_after_json_typed_last_is_json(config_path: Path) -> None:
    code, out, err = umacct("show", "nobody@umontpellier.fr", "--json")
    assert code == 67
    assert out == ""
    assert json.loads(err)["exit_code"] == 67


def test_format_table_after_a_write_command_is_the_plain_text(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), "erg.four", end_of_activity=ENDED)
    code, out, err = umacct(
        "suspend", person.identifier, "--reason", "x", "--dry-run", "--format", "table"
    )
    assert code == 0, err
    assert out.startswith(f"{person.identifier}: ")
    assert compte_unchanged(on(TODAY), person)


def compte_unchanged(runtime: Runtime, person: object) -> bool:
    from people import Person, compte

    assert isinstance(person, Person)
    return compte(read(runtime, person)).startswith("{COMPTE}A:SupannActif")


# --- stdout is data only: prompts on the terminal ------------------------------------------


def test_the_bind_password_prompt_is_not_on_stdout(
    on: Callable[[date], Runtime], config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``umacct --json show X | jq``: the prompt is on the screen, stdout is the document."""
    person = add_person(on(TODAY), "erg.prompt")
    password = os.environ["UMACCT_BIND_PASSWORD"]
    monkeypatch.delenv("UMACCT_BIND_PASSWORD")
    run = run_on_terminal(
        ["--json", "show", person.identifier],
        on_terminal=("stdin", "stderr"),
        answers={"Password for ": password},
    )
    assert run.code == 0, run.screen
    assert "Password for cn=" in run.screen
    assert json.loads(run.stdout)["account"] == person.identifier


def test_created_identifiers_go_to_stdout_under_a_progress_bar(
    config_path: Path, tmp_path: Path
) -> None:
    """``create --csv F > created.txt`` with stderr on a terminal: the file gets them all."""
    rows = [f"Tom{n};Progress;vacataire;tom{n}@example.net" for n in range(3)]
    intake = tmp_path / "intake.csv"
    intake.write_text("prenom;nom;profil;mail_perso\n" + "\n".join(rows) + "\n", "utf-8")
    run = run_on_terminal(["create", "--csv", str(intake), "--no-mail"], on_terminal=("stderr",))
    assert run.code == 0, run.screen
    created = [line.split("\t")[1] for line in run.stdout.splitlines()]
    assert created == [f"tom{n}.progress@umontpellier.fr" for n in range(3)]
    assert "tom0.progress" not in run.screen


# --- off a terminal nothing is cut --------------------------------------------------------

LONG_UID = "maximilienne-alexandrine.de-la-tour-dauvergne-montmorency"


def test_a_table_piped_is_tab_separated_whole_values(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), LONG_UID, profile="titulaire")
    code, out, err = umacct("list")
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split("\t")[:3] == ["account", "uid", "name"]
    [row] = rows
    cells = row.split("\t")
    assert cells[:2] == [person.identifier, LONG_UID]
    assert len(cells) == len(header.split("\t"))
    assert "…" not in out


def test_a_table_asked_for_off_a_terminal_is_drawn_whole(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), LONG_UID, profile="titulaire")
    code, out, err = umacct("list", "--format", "table")
    assert code == 0, err
    assert person.identifier in out and "…" not in out


def test_on_a_narrow_terminal_the_account_is_never_cut(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), LONG_UID, profile="titulaire")
    run = run_on_terminal(["list"], columns=100)
    assert run.code == 0, run.screen
    assert person.identifier in run.screen
    assert "─" in run.screen  # a table, drawn for a person


def test_a_confirmation_is_asked_on_stderr_not_stdout(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime, "erg.ask", profile="autre_personnel", end_of_activity=month_end(-10)
    )
    assert umacct("suspend", person.identifier, "--no-notice", "--reason", "cut")[0] == 0
    run = run_on_terminal(
        ["purge", person.identifier, "--reason", "gone"],
        on_terminal=("stdin", "stderr"),
        answers={"Archive and delete": "n"},
    )
    assert run.code == 0, run.screen
    assert "Archive and delete" in run.screen and "Archive" not in run.stdout
    assert read(runtime, person)


# --- | head, Ctrl-C, usage errors ---------------------------------------------------------


def test_a_reader_that_goes_away_ends_the_command_quietly(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    runtime = on(TODAY)
    for n in range(3):
        add_person(runtime, f"erg.head{n}")
    process = subprocess.Popen(
        [sys.executable, "-m", "umacct", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # | head that has read all it wanted
    with process.stderr:
        error = process.stderr.read().decode()
    assert process.wait(timeout=60) in (0, 141)
    assert error == ""


def test_ctrl_c_at_a_prompt_exits_130_without_a_traceback(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), "erg.intr")
    run = run_on_terminal(["passwd", person.identifier], interrupt_at="Current password")
    assert run.code == 130, run.screen
    assert "Traceback" not in run.screen and "Aborted" not in run.screen


@pytest.mark.parametrize(
    "args",
    [
        ["list", "--state", "sleeping"],
        ["purge", "--expired", "--yes", "--limit", "0", "--reason", "x"],
        ["sweep", "--purge", "--limit", "0"],
        ["mail", "flush", "--limit", "0"],
    ],
    ids=" ".join,
)
def test_usage_errors_exit_2_and_change_nothing(
    on: Callable[[date], Runtime], config_path: Path, args: list[str]
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "erg.usage", end_of_activity=month_end(-10))
    before = read(runtime, person)
    code, out, err = umacct(*args)
    assert code == 2, err
    assert out == ""
    assert read(runtime, person) == before
    assert runtime.audit.read() == []


def test_state_values_in_any_case(on: Callable[[date], Runtime], config_path: Path) -> None:
    person = add_person(on(TODAY), "erg.case")
    for value in ("active", "ACTIVE", "Active"):
        code, out, err = umacct("list", "--state", value, "--json")
        assert code == 0, err
        assert [row["account"] for row in json.loads(out)] == [person.identifier]


@pytest.mark.parametrize("value", ["30d", "1y", "12h", "2w", "400", "0d"])
def test_one_duration_syntax_for_every_option(
    on: Callable[[date], Runtime], config_path: Path, value: str
) -> None:
    for args in (
        ["list", "--expiring-within", value],
        ["report", "stale-passwords", "--older-than", value],
        ["report", "pending-activation", "--older-than", value],
    ):
        code, _out, err = umacct(*args, "--json")
        assert code == 0, (args, err)


@pytest.mark.parametrize("value", ["a year", "-3", "3x", "", "1.5d", "30 days", "9" * 12 + "d"])
def test_a_bad_duration_names_the_option_and_the_syntax(config_path: Path, value: str) -> None:
    for option, args in (
        ("--expiring-within", ["list"]),
        ("--older-than", ["report", "stale-passwords"]),
    ):
        code, out, err = umacct(*args, option, value)
        assert code == 2, err
        assert out == ""
        [line] = err.splitlines()
        assert line.startswith(f"umacct: error: {option}: expected a number and a unit")


@given(st.text(max_size=12))
def test_a_duration_is_read_or_refused_with_the_option_named(text: str) -> None:
    from umacct.cli.params import parse_duration
    from umacct.errors import UsageError

    try:
        parsed = parse_duration(text, "--older-than")
    except UsageError as error:
        assert error.message.startswith("--older-than: expected ")
    else:
        assert parsed is not None and parsed.total_seconds() >= 0


@given(st.integers(0, 10**6), st.sampled_from(["s", "m", "h", "d", "w", "y", "D", ""]))
def test_a_number_and_a_unit_is_that_long(number: int, unit: str) -> None:
    from datetime import timedelta

    from umacct.cli.params import parse_duration

    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000, "": 86400}
    assert parse_duration(f"{number}{unit}", "-x") == timedelta(
        seconds=number * seconds[unit.lower()]
    )


# --- the sweep: quiet cron ----------------------------------------------------------------


def test_a_sweep_with_nothing_to_do_prints_nothing_at_all(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    add_person(on(TODAY), "erg.calm")
    assert umacct("sweep") == (0, "", "")
    assert umacct("sweep", "--dry-run") == (0, "", "")


def test_purgeable_accounts_are_summarised_not_listed_every_night(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime, "erg.purgeable", profile="autre_personnel", end_of_activity=month_end(-10)
    )
    assert umacct("suspend", person.identifier, "--no-notice", "--reason", "cut")[0] == 0
    code, out, err = umacct("sweep")  # the first night marks it for other tools: a change
    assert out.split("\t")[:2] == [person.identifier, "awaiting-deletion"]
    assert umacct("sweep") == (0, "", "")  # still purgeable, unchanged: nothing to mail
    code, out, err = umacct("-v", "sweep")
    assert (code, out) == (0, "")
    assert "still purgeable 1" in err and person.identifier not in err
    code, out, err = umacct("sweep", "--json")
    [item] = json.loads(out)
    assert (item["action"], item["changed"], item["dry_run"]) == ("purgeable", False, False)
    code, out, err = umacct("sweep", "--purge", "--dry-run")
    assert out == f"{person.identifier}\twould purge\tthe account would be archived and deleted\n"
    assert read(runtime, person)
    code, out, err = umacct("sweep", "--purge")
    assert code == 0, err
    assert out.split("\t")[:2] == [person.identifier, "purge"]
    assert "purge 1" in err


def test_a_dry_run_says_what_it_would_do(on: Callable[[date], Runtime], config_path: Path) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "erg.dry", end_of_activity=ENDED)
    code, out, err = umacct("suspend", person.identifier, "--reason", "x", "--dry-run")
    assert code == 0, err
    assert out.startswith(f"{person.identifier}: would suspend: ")
    code, out, err = umacct("suspend", person.identifier, "--reason", "x", "--dry-run", "--json")
    assert json.loads(out)["dry_run"] is True
    code, out, err = umacct("suspend", person.identifier, "--reason", "x", "--json")
    assert json.loads(out)["dry_run"] is False
    assert compte_unchanged(runtime, person) is False


# --- times in the policy's zone; attribute names as the schema spells them ------------------


def test_show_gives_times_in_the_policy_zone_with_the_zone_named(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    from datetime import timedelta

    from days import PARIS, clock_on

    from umacct.tokens import TokenPurpose

    runtime = on(TODAY)
    person = add_person(runtime, "erg.zone")
    runtime.tokens.issue(person.identifier, TokenPurpose.RESET, timedelta(hours=1))
    issued = clock_on(TODAY).now().astimezone(PARIS)
    code, out, err = umacct("show", person.identifier, "--format", "table")
    assert code == 0, err
    [links] = [line for line in out.splitlines() if line.startswith("pending links")]
    assert f"issued {issued:%Y-%m-%d %H:%M:%S %Z}" in links  # 09:00 in Paris, named
    code, out, err = umacct("audit", "--account", person.identifier)
    assert code == 0, err


def test_the_audit_shows_attribute_names_as_the_schema_spells_them(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime, "erg.case.audit", profile="autre_personnel", end_of_activity=month_end(-10)
    )
    assert umacct("suspend", person.identifier, "--no-notice", "--reason", "cut")[0] == 0
    assert umacct("purge", person.identifier, "--yes", "--reason", "gone")[0] == 0
    raw = [record.changes for record in runtime.audit.read(account=person.identifier)]
    assert any("supannMailPerso" in changes for changes in raw)  # the log itself, for grep
    assert not any(
        name != name.lower() and name.lower() in changes for changes in raw for name in changes
    )
    log = Path(runtime.config.paths.audit_log_path).read_text("utf-8")
    assert '"supannMailPerso"' in log and '"supannmailperso"' not in log
    code, out, err = umacct("audit", "--account", person.identifier, "--json")
    assert code == 0, err
    names = {name for record in json.loads(out) for name in record["changes"]}
    assert "supannMailPerso" in names and "supannmailperso" not in names
    code, out, err = umacct("audit", "--account", person.identifier)
    assert "supannMailPerso" in out and "supannmailperso" not in out


# --- mail: the outbox says what it does ------------------------------------------------------


def test_with_the_outbox_messages_say_the_mail_was_not_sent(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), "erg.outbox", awaiting_activation=True)
    code, out, err = umacct("activate", person.identifier)
    assert code == 0, err
    assert "written to the outbox (not sent)" in out and " sent to " not in out
    code, out, err = umacct(
        "create", "--given-name", "Oscar", "--surname", "Boite", "--profile", "vacataire",
        "--personal-email", "oscar@example.net",
    )  # fmt: skip
    assert code == 0, err
    assert "written to the outbox (not sent)" in err


def test_with_a_relay_messages_say_sent(on: Callable[[date], Runtime], mail_relay: object) -> None:
    person = add_person(on(TODAY), "erg.relay", awaiting_activation=True)
    code, out, err = umacct("activate", person.identifier)
    assert code == 0, err
    assert f"sent to {person.uid}@example.net" in out and "outbox" not in out


def test_config_init_explains_the_transport_choice(tmp_path: Path) -> None:
    code, out, err = umacct("config", "init", str(tmp_path / "config.toml"))
    assert code == 0, err
    assert out == ""
    assert 'transport = "outbox"' in err and "sends nothing" in err and "[mail.smtp]" in err


@pytest.mark.parametrize("command", ["activate", "reset"])
def test_a_dead_link_is_said_before_a_password_is_asked(
    on: Callable[[date], Runtime], config_path: Path, command: str
) -> None:
    add_person(on(TODAY), "erg.link")
    run = run_on_terminal([command, "--token", "no-such-token-0123456789"], columns=100)
    assert run.code == 65, run.screen
    assert "this link is not valid" in run.screen
    assert "password" not in run.screen.lower()  # nobody typed one for nothing


# --- CSV for French Excel ---------------------------------------------------------------------


def test_csv_excel_is_semicolons_and_utf8_with_a_bom(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    import csv
    import io

    person = add_person(on(TODAY), "zoé.lefèvre".replace("é", "e").replace("è", "e"))
    for args in (["list"], ["show", person.identifier], ["audit"]):
        code, out, err = umacct(*args, "--format", "csv-excel")
        assert code == 0, err
        assert out.startswith("\ufeff")
        rows = list(csv.reader(io.StringIO(out.removeprefix("\ufeff")), delimiter=";"))
        assert rows[0][0] in ("account", "time")
    code, out, _ = umacct("list", "--format", "csv-excel")
    assert person.identifier in out.splitlines()[1].split(";")[0]
    assert umacct("--format", "csv-excel", "list")[1] == out
    raw = subprocess.run(
        [sys.executable, "-m", "umacct", "list", "--format", "csv-excel"],
        capture_output=True,
        check=True,
    ).stdout
    assert raw.startswith(b"\xef\xbb\xbfaccount;") and raw.endswith(b"\r\n")
    assert "zoe.lefevre" in raw.decode("utf-8-sig")


# --- shell completion and help --------------------------------------------------------------


def _complete(words: str) -> list[str]:
    from typer.testing import CliRunner

    from umacct.cli.app import app

    env = {
        "_UMACCT_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    result = CliRunner().invoke(app, [], env=env, prog_name="umacct")
    assert result.exit_code == 0, result.output
    return result.output.split()


def test_shell_completion_of_states_profiles_and_formats(config_path: Path) -> None:
    assert "purged" in _complete("umacct list --state ") and "grace" in _complete(
        "umacct list --state gr"
    )
    assert _complete("umacct list --profile vac") == ["vacataire"]
    assert "titulaire" in _complete("umacct create --profile ")
    assert _complete(f"umacct --config {config_path} list --profile etu") == ["etudiant"]
    assert "csv-excel" in _complete("umacct audit --format ")
    assert _complete("umacct suspend --format ") == ["table", "json"]


def test_profile_completion_without_a_configuration_offers_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("UMACCT_CONFIG", str(tmp_path / "missing.toml"))
    assert _complete("umacct list --profile ") == []


def test_sec37_tab_separated_rows_escape_what_would_forge_a_cell_or_a_line(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    from umacct.directory import Change

    runtime = on(TODAY)
    person = add_person(runtime, "erg.tsv")
    hostile = "Tab\there\nnew line \x1b[2J \u202e"
    runtime.directory.modify(person.dn, [Change("replace", "sn", (hostile,))])
    runtime.directory.modify(person.dn, [Change("replace", "givenName", ("Ok",))])
    code, out, err = umacct("list")
    assert code == 0, err
    header, row = out.splitlines()
    assert len(row.split("\t")) == len(header.split("\t"))
    code, out, err = umacct("show", person.identifier)
    assert code == 0, err
    assert all(len(line.split("\t")) == 2 for line in out.splitlines())
    [surname] = [line.split("\t")[1] for line in out.splitlines() if line.startswith("surname\t")]
    assert surname == "Tab\\x09here\\x0anew line \\x1b[2J \\u202e"
