"""The command line's rough edges a new sysadmin found (issue 17): prompts on the terminal,
tables that fit it, our own words for a bad value, usage errors that exit 2, one --format."""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from command_line import runner, umacct
from days import TODAY, clock_on, days, month_end
from people import add_person
from terminal import run_on_terminal

from umacct.cli.app import COMMANDS, app
from umacct.cli.option_values import expectation
from umacct.environment import Environment
from umacct.services.runtime import Runtime

ENDED = month_end(-1)


# --- 1. a hidden prompt goes to the terminal itself ------------------------------------------


@pytest.mark.usefixtures("directory_clean")
def test_the_password_prompt_is_on_the_terminal_with_stdout_and_stderr_redirected(
    on: Callable[[date], Runtime], config_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``umacct --json show X > out.json 2> err.txt`` in an ssh session: asked on the screen."""
    person = add_person(on(TODAY), "rough.prompt")
    password = os.environ["UMACCT_BIND_PASSWORD"]
    monkeypatch.delenv("UMACCT_BIND_PASSWORD")
    run = run_on_terminal(
        ["--json", "show", person.identifier],
        on_terminal=("stdin",),
        answers={"Password for ": password},
    )
    assert run.code == 0, (run.screen, run.stderr)
    assert "Password for cn=" in run.screen
    assert password not in run.screen  # not echoed
    assert "Password" not in run.stderr
    assert json.loads(run.stdout)["account"] == person.identifier


# --- 3. our own words for a refused value, on every command ---------------------------------


def _all_commands() -> Iterator[tuple[list[str], object]]:
    group = app_group()
    stack: list[tuple[list[str], object]] = [([name], group.commands[name]) for name in COMMANDS]
    while stack:
        path, command = stack.pop()
        yield path, command
        for name, sub in (getattr(command, "commands", None) or {}).items():
            stack.append(([*path, name], sub))


def app_group() -> object:
    from typer.main import get_command

    return get_command(app)


def _bad_values(param: object) -> list[str]:
    from umacct.cli.option_values import choices_of

    if choices_of(param) is not None:  # type: ignore[arg-type]
        return ["bogus"]
    info = param.type_descriptor.parameter_info  # type: ignore[attr-defined]
    values = ["abc"]
    if info.min is not None:
        values.append(str(info.min - 1))
    if info.max is not None:
        values.append(str(info.max + 1))
    return values


def _refusals() -> list[tuple[list[str], str]]:
    cases = []
    for path, command in _all_commands():
        arguments = [p for p in command.params if p.param_type_name == "argument"]  # type: ignore[attr-defined]
        for param in command.params:  # type: ignore[attr-defined]
            if expectation(param) is None:
                continue
            for bad in _bad_values(param):
                if param.param_type_name == "option":
                    cases.append(([*path, param.opts[0], bad], param.opts[0]))
                else:
                    before = ["x"] * arguments.index(param)
                    cases.append(([*path, *before, bad], param.name.upper()))
    return cases


REFUSALS = _refusals()


def test_the_walk_finds_the_options_of_the_issue() -> None:
    typed = {" ".join(args) for args, _ in REFUSALS}
    for expected in (
        "list --state bogus",
        "purge --limit 0",
        "purge --limit abc",
        "serve --port abc",
        "sweep --max-changes 0",
        "sweep --format bogus",
        "lock --kind bogus",
        "secret set bogus",
    ):
        assert expected in typed


@pytest.mark.parametrize(("args", "name"), REFUSALS, ids=[" ".join(a) for a, _ in REFUSALS])
def test_a_refused_value_is_one_line_in_our_words(args: list[str], name: str) -> None:
    code, out, err = umacct(*args)
    assert code == 2, err
    assert out == ""
    assert "Input should" not in err and "Value error" not in err
    assert err.startswith(f"umacct: error: {name}: expected "), err
    assert err.count("\n") == 1, err


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["purge", "--limit", "abc"], "--limit: expected a whole number of 1 or more, got 'abc'"),
        (["sweep", "--max-changes", "0"], "--max-changes: expected a whole number of 1 or more"),
        (["serve", "--port", "abc"], "--port: expected a whole number from 1 to 65535"),
        (["list", "--state", "bogus"], "--state: expected one of active, grace, expired"),
        (["--format", "bogus", "list"], "--format: expected one of table, tsv, json, csv"),
    ],
    ids=" ".join,
)
def test_the_words_of_the_issue(args: list[str], line: str) -> None:
    code, _, err = umacct(*args)
    assert code == 2
    assert err.startswith(f"umacct: error: {line}"), err


def test_a_refused_value_with_json_is_a_json_error() -> None:
    code, out, err = umacct("--json", "purge", "--limit", "abc")
    assert (code, out) == (2, "")
    assert json.loads(err) == {
        "error": "usage",
        "message": "--limit: expected a whole number of 1 or more, got 'abc'",
        "exit_code": 2,
    }


def test_number_options_show_n_in_the_help() -> None:
    code, out, _ = umacct("purge", "--help")
    assert code == 0
    assert "--limit N" in out
    assert "int range" not in out


# --- 4. usage errors exit 2, profiles in any case -------------------------------------------


@pytest.mark.usefixtures("directory_clean")
@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["sweep", "--dry-run", "--as-of", "2027-13-01"], "--as-of"),
        (["explain", "x", "--as-of", "2027-13-01"], "--as-of"),
        (["audit", "--since", "yesterday"], "--since"),
        (["list", "--expiring-within", "abc"], "--expiring-within"),
        (["report", "stale-passwords", "--older-than", "abc"], "--older-than"),
        (["report", "pending-activation", "--older-than", "abc"], "--older-than"),
        (["list", "--profile", "nosuch"], "--profile"),
    ],
    ids=" ".join,
)
def test_a_bad_option_value_is_a_usage_error(
    config_path: Path, args: list[str], option: str
) -> None:
    code, out, err = umacct(*args)
    assert code == 2, err
    assert out == ""
    assert err.startswith(f"umacct: error: {option}: "), err
    assert err.count("\n") == 1


@pytest.mark.usefixtures("directory_clean")
def test_profile_keys_in_any_case(on: Callable[[date], Runtime], config_path: Path) -> None:
    person = add_person(on(TODAY), "rough.case", profile="titulaire")
    code, out, err = umacct("list", "--profile", "TITULAIRE", "--format", "json")
    assert code == 0, err
    assert [row["account"] for row in json.loads(out)] == [person.identifier]


@pytest.mark.usefixtures("directory_clean")
def test_create_takes_a_profile_key_in_any_case(config_path: Path) -> None:
    code, out, err = umacct(
        "create", "--given-name", "Ana", "--surname", "Case", "--profile", "Vacataire",
        "--personal-email", "ana.case@example.net", "--no-mail", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["profile"] == "vacataire"


@pytest.mark.usefixtures("directory_clean")
def test_audit_since_takes_a_duration(on: Callable[[date], Runtime], config_path: Path) -> None:
    person = add_person(on(TODAY), "rough.audit", end_of_activity=ENDED)
    code, _, err = umacct("suspend", person.identifier, "--reason", "left")
    assert code == 0, err
    for since in ("30d", "1d", TODAY.isoformat()):
        code, out, err = umacct("audit", "--since", since, "--format", "json")
        assert code == 0, err
        assert any(entry["account"] == person.identifier for entry in json.loads(out)), since


# --- 5. --format does not depend on where it is typed ---------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["sweep", "--format", "csv"],
        ["--format", "csv", "sweep"],
        ["--format", "tsv", "sweep"],
        ["create", "--format", "csv"],
        ["--format", "csv", "create"],
    ],
    ids=" ".join,
)
def test_a_write_command_refuses_csv_wherever_format_is_typed(
    config_path: Path, args: list[str]
) -> None:
    code, out, err = umacct(*args)
    assert code == 2, err
    assert out == ""
    fmt = args[args.index("--format") + 1]
    assert err == f"umacct: error: --format: expected one of table, json, got {fmt!r}\n"


# --- 2. tables that fit the terminal ------------------------------------------------------


class Screen(io.StringIO):
    """A terminal's stdout: what the tool draws there, as wide as COLUMNS."""

    def isatty(self) -> bool:
        return True


def on_screen(width: int, *args: str) -> tuple[int, str, str]:
    """Run ``umacct ARGS`` with stdout on a terminal ``width`` columns wide."""
    screen, errors = Screen(), io.StringIO()
    environment = Environment(
        clock=clock_on(TODAY),
        environ={**os.environ, "COLUMNS": str(width)},
        stdout_stream=screen,
        stderr_stream=errors,
    )
    result = runner.invoke(app, list(args), obj=environment)
    return result.exit_code, ANSI.sub("", screen.getvalue()), errors.getvalue()


ANSI = re.compile(r"\x1b\[[0-9;]*m")


LONG = "jean-christophe.dupont-moreau"


def _lines_with(text: str, value: str) -> list[str]:
    return [line for line in text.splitlines() if value in line]


@pytest.mark.usefixtures("directory_clean")
@pytest.mark.parametrize("width", [80, 100, 160])
def test_list_on_a_terminal_fits_and_never_cuts_an_identifier_or_a_day(
    on: Callable[[date], Runtime], config_path: Path, width: int
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "lea.dubois", profile="titulaire", end_of_activity=days(30))
    code, out, err = on_screen(width, "list", "--profile", "titulaire")
    assert code == 0, err
    assert all(len(line) <= width for line in out.splitlines()), out
    assert _lines_with(out, person.identifier), out  # on one line, whole
    header = next(line for line in out.splitlines() if "account" in line)
    assert header.count("┃") >= 3  # more than the account: a real table
    if width >= 160:
        assert days(30).isoformat() in out  # the end of activity, whole
    left_out = [line for line in err.splitlines() if "left out" in line]
    if width < 160:
        assert left_out == [left_out[0]] and left_out[0].endswith(
            "columns left out: --format tsv shows all"
        ), err
    for line in out.splitlines():  # no column drawn zero-wide (two borders side by side)
        assert "││" not in line and "┃┃" not in line, out


@pytest.mark.usefixtures("directory_clean")
def test_audit_on_80_columns_keeps_the_account_on_one_line(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), LONG, end_of_activity=ENDED)
    assert umacct("suspend", person.identifier, "--reason", "left")[0] == 0
    code, out, err = on_screen(80, "audit", "--account", person.identifier)
    assert code == 0, err
    assert _lines_with(out, person.identifier), out
    assert all(len(line) <= 80 for line in out.splitlines()), out


# --- 5. localdir speaks JSON; 6. directory set pipes as directory show ----------------------


def test_localdir_config_and_stop_give_json(tmp_path: Path) -> None:
    from umacct.services.localdir import local_config_path

    local_config_path(tmp_path).write_text('[directory]\nurls = ["ldap://127.0.0.1:1"]\n', "utf-8")
    code, out, err = umacct("localdir", "config", "--dir", str(tmp_path), "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["config"]["directory"]["urls"] == ["ldap://127.0.0.1:1"]
    assert document["path"] == str(local_config_path(tmp_path))


def test_localdir_stop_gives_json(tmp_path: Path) -> None:
    folder = tmp_path / "ldap"
    code, _, err = umacct("localdir", "start", "--dir", str(folder), "--json")
    assert code == 0, err
    try:
        code, out, err = umacct("localdir", "stop", "--dir", str(folder), "--json")
    finally:
        umacct("localdir", "stop", "--dir", str(folder))
    assert code == 0, err
    assert json.loads(out) == {"folder": str(folder), "stopped": True, "dry_run": False}


@pytest.mark.usefixtures("directory_clean")
def test_directory_set_off_a_terminal_is_tab_separated(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), "rough.staff", profile="titulaire")
    code, out, err = umacct("directory", "set", person.identifier, "roomNumber=B204")
    assert code == 0, err
    _, shown, _ = umacct("directory", "show", person.identifier)
    assert out == shown
    assert "roomNumber\tB204" in out.splitlines()


# --- 7. a dry run says what it would do, once, in the conditional ---------------------------


def test_every_dry_run_phrase_is_conditional() -> None:
    from umacct.cli.dry_run import DETAILS, would
    from umacct.services.lifecycle import AccountOutcome

    for action in DETAILS:
        result = AccountOutcome(
            account="a@x", profile="vacataire", state="A", substate="SupannVerrouTechnique",
            end_of_activity=days(-10), grace_end=days(20), extendable=False, extensions=0,
            changed=True, action=action, message="expired on 2000-01-01",
        )  # fmt: skip
        head, details = would(result)
        assert head.startswith("would ") and "-" not in head.removeprefix("would "), head
        assert "would" in details or action == "profile-ended", (action, details)
        assert "2000-01-01" not in details  # not the service's past-tense message
    expire = AccountOutcome(
        account="a@x", profile="vacataire", state="I", substate="SupannExpire",
        end_of_activity=days(-200), grace_end=days(-1), extendable=False, extensions=0,
        changed=True, action="expire", message=f"expired on {TODAY.isoformat()}",
    )  # fmt: skip
    assert would(expire) == ("would expire", f"login and mail would stop on {TODAY.isoformat()}")


def test_the_dry_run_summary_says_would_once_with_verbs() -> None:
    from umacct.cli.lifecycle_cmd import _sweep_summary
    from umacct.services.sweep import SweepSummary

    summary = SweepSummary(TODAY, True)
    summary.counts["profile-ended"] += 2
    summary.counts["suspend"] += 1
    line = _sweep_summary(summary)
    assert "would end a profile 2, suspend 1" in line
    assert line.count("would") == 1 and "profile-ended" not in line


@pytest.mark.usefixtures("directory_clean")
def test_lock_dry_run_says_what_it_would_do(
    on: Callable[[date], Runtime], config_path: Path
) -> None:
    person = add_person(on(TODAY), "rough.lock")
    code, out, err = umacct(
        "lock", person.identifier, "--kind", "technical", "--reason", "x", "--dry-run"
    )
    assert code == 0, err
    assert out == (
        f"{person.identifier}: would lock: the directory would refuse its logins "
        "(technical, the person is not told)\n"
    )


@pytest.mark.usefixtures("directory_clean")
@pytest.mark.parametrize("json_output", [False, True])
def test_answering_no_at_the_purge_says_nothing_deleted(
    on: Callable[[date], Runtime], config_path: Path, json_output: bool
) -> None:
    runtime = on(TODAY)
    person = add_person(
        runtime, "rough.keep", profile="autre_personnel", end_of_activity=month_end(-10)
    )
    assert umacct("suspend", person.identifier, "--no-notice", "--reason", "cut")[0] == 0
    args = ["purge", person.identifier, "--reason", "x", *(["--json"] if json_output else [])]
    run = run_on_terminal(args, on_terminal=("stdin", "stderr"), answers={"[y/N]": "n"})
    assert run.code == 0, run.screen
    assert "nothing deleted" in run.screen
    if json_output:
        assert run.stdout == ""
    from people import read

    assert read(runtime, person)


# --- 8. the small ones -------------------------------------------------------------------


def test_secret_set_help_lists_every_kind() -> None:
    from umacct.secrets import SecretKind

    code, out, _ = umacct("secret", "set", "--help")
    assert code == 0
    words = " ".join(out.split())
    for kind in SecretKind:
        assert f"{kind.value} (" in words or f"{kind.value}," in words, (kind, words)


@pytest.mark.usefixtures("directory_clean")
def test_mail_flush_with_nothing_queued_says_nothing_to_send(config_path: Path) -> None:
    code, out, err = umacct("mail", "flush")
    assert code == 0, err
    assert out == "nothing to send\n"


@pytest.mark.usefixtures("directory_clean")
def test_a_repeated_create_says_it_once(config_path: Path) -> None:
    args = (
        "create", "--given-name", "Rita", "--surname", "Twice", "--profile", "vacataire",
        "--personal-email", "rita.twice@example.net", "--no-mail",
    )  # fmt: skip
    assert umacct(*args)[0] == 0
    code, out, err = umacct(*args)
    assert code == 0, err
    [line] = err.splitlines()
    assert line.startswith(f"{out.strip()}: already exists ("), line
    assert line.count("exists") == 1, line


def test_help_completes_command_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_UMACCT_COMPLETE", "complete_bash")
    for words, cword, expected in (
        ("umacct help sh", "2", ["show"]),
        ("umacct help report f", "3", ["forwarding"]),
    ):
        monkeypatch.setenv("COMP_WORDS", words)
        monkeypatch.setenv("COMP_CWORD", cword)
        result = runner.invoke(app, [], prog_name="umacct")
        assert result.stdout.split() == expected, (words, result.stdout)


@pytest.mark.parametrize("width", [80, 100, 160])
def test_a_report_table_never_splits_a_day_nor_draws_a_column_zero_wide(width: int) -> None:
    from umacct.cli.output import Output, OutputFormat, render_rows

    notes: list[str] = []
    screen = Screen()
    out = Output(screen, color=False, note=notes.append, width=width)
    columns = ["account", "profile", "created", "link_expired", "personal_address", "note"]
    rows = [
        {
            "account": f"{LONG}@umontpellier.fr",
            "profile": "contractuel",
            "created": days(-3),
            "link_expired": "2026-05-16 09:00:00 CEST",
            "personal_address": "jean-christophe.dupont-moreau@example.net",
            "note": "never activated: send a new link with umacct activate",
        }
    ]
    render_rows(out, rows, columns, OutputFormat.TABLE)
    text = ANSI.sub("", screen.getvalue())
    assert all(len(line) <= width for line in text.splitlines()), text
    assert _lines_with(text, rows[0]["account"]), text
    assert _lines_with(text, days(-3).isoformat()), text
    if "link expired" in text or "link" in text:
        assert _lines_with(text, "2026-05-16 09:00:00 CEST"), text
    assert not any("││" in line or "┃┃" in line for line in text.splitlines()), text
    if notes:
        assert notes == [notes[0]] and notes[0].endswith("left out: --format tsv shows all")
