"""Every command teaches through --help, and every read command offers the output formats."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
import tomli_w
import typer
from typer.main import get_command
from typer.testing import CliRunner

from umacct.cli.app import COMMANDS, app
from umacct.services.runtime import Runtime

runner = CliRunner()

# Commands that print data people may want in a script take --format table|json|csv.
READ_COMMANDS = {
    "doctor", "search", "show", "explain", "list", "audit", "directory show", "mail list",
    "report stale-passwords", "report missing-recovery", "report pending-activation", "report forwarding",
    "extension list",
}  # fmt: skip


def _walk(command: object, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in subcommands.items():
            yield from _walk(sub, (*path, name))
    else:
        yield path, command


ALL_COMMANDS = [path for path, _ in _walk(get_command(app))]


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) >= 3, f"{' '.join(path)} --help says too little"
    options = [line.split()[0] for line in lines if line.lstrip().startswith("-")]
    assert len(options) == len(set(options)), f"an option listed twice: {options}"
    assert "--install-completion" not in result.stdout  # the top-level --help has it


@pytest.mark.parametrize(
    "path", sorted(p for p in ALL_COMMANDS if " ".join(p) in READ_COMMANDS), ids=" ".join
)
def test_read_commands_take_format(path: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert "--format" in result.stdout


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_every_command_takes_json_and_format_after_it(path: tuple[str, ...]) -> None:
    """``umacct show X --json``: where people type it; write commands take --format json too."""
    for options in (["--json"], ["--format", "json"], ["-f", "JSON"]):
        result = runner.invoke(app, [*path, *options, "--help"])
        assert result.exit_code == 0, (options, result.output)
        assert "--json" in result.stdout and "--format" in result.stdout


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_umacct_help_command_is_the_commands_own_help(path: tuple[str, ...]) -> None:
    """``umacct help COMMAND``: generated from the same text as ``COMMAND --help``."""
    own = runner.invoke(app, [*path, "--help"])
    through_help = runner.invoke(app, ["help", *path])
    assert through_help.exit_code == 0, through_help.output
    assert through_help.stdout.rstrip("\n") == own.stdout.rstrip("\n")


def test_umacct_help_of_an_unknown_command_is_a_usage_error() -> None:
    result = runner.invoke(app, ["help", "no-such-command"])
    assert result.exit_code == 2
    assert result.stdout == "" and "no command 'no-such-command'" in result.stderr


# What each read command needs to run on the test directory (ACCOUNT is a titulaire).
READ_ARGUMENTS = {
    "doctor": [], "search": ["meta json"], "show": ["ACCOUNT"], "explain": ["ACCOUNT"], "list": [], "audit": [],
    "directory show": ["ACCOUNT"], "mail list": [], "report stale-passwords": [],
    "report missing-recovery": [], "report pending-activation": [], "report forwarding": [],
    "extension list": [],
}  # fmt: skip


def test_the_live_list_covers_every_read_command() -> None:
    assert set(READ_ARGUMENTS) == READ_COMMANDS


@pytest.mark.usefixtures("directory_clean")
@pytest.mark.parametrize("command", sorted(READ_COMMANDS))
def test_every_read_command_gives_json_with_json_after_it(
    command: str, on: Callable[[date], Runtime], config_path: Path
) -> None:
    from command_line import umacct
    from days import TODAY
    from people import add_person

    person = add_person(on(TODAY), "meta.json", profile="titulaire")
    arguments = [person.identifier if a == "ACCOUNT" else a for a in READ_ARGUMENTS[command]]
    code, out, err = umacct(*command.split(), *arguments, "--json")
    assert code in (0, 1) if command == "doctor" else code == 0, err
    json.loads(out)


def test_the_command_table_matches_the_commands() -> None:
    """``--help`` lists COMMANDS without importing the modules: names and helps must not drift."""
    group = get_command(app)
    for name, (_, summary) in COMMANDS.items():
        assert group.commands[name].get_short_help_str(10_000) == summary, name
    for module in {module for module, _ in COMMANDS.values()}:
        registered = typer.Typer()
        importlib.import_module(module).register(registered)
        names = {
            info.name for info in [*registered.registered_commands, *registered.registered_groups]
        }
        assert names == {name for name, (owner, _) in COMMANDS.items() if owner == module}


@pytest.mark.parametrize(
    ("args", "loaded"), [(["--help"], []), (["show", "--help"], ["umacct.cli.helpdesk_cmd"])]
)
def test_a_command_imports_only_its_own_module(args: list[str], loaded: list[str]) -> None:
    script = (
        "import runpy, sys\n"
        "try:\n    runpy.run_module('umacct', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.endswith('_cmd')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    )
    assert result.stdout.splitlines()[-1] == repr(loaded)


def test_the_collector_is_back_when_the_command_runs() -> None:
    """``main`` holds the cyclic collector during the start-up only: a long command needs it."""
    script = (
        "import gc, sys, umacct.config\n"
        "def probe(*args):\n"
        "    print('collector', gc.isenabled(), gc.get_freeze_count() > 0)\n"
        "    sys.exit(0)\n"
        "umacct.config.load_config = probe\n"
        "sys.argv = ['umacct', 'config', 'show']\n"
        "from umacct.cli.app import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True
    )
    assert (result.returncode, result.stdout) == (0, "collector True True\n"), result.stderr


def test_top_help_lists_exit_codes() -> None:
    result = runner.invoke(app, ["--help"])
    for code in ("65", "67", "69", "75", "77", "78"):
        assert f" {code}  " in result.stdout


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.startswith("umacct ")


def test_no_core_module_imports_the_cli_libraries() -> None:
    """The core returns data; only umacct/cli may import typer, rich or click."""
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "umacct"
    offenders = []
    for source in package.rglob("*.py"):
        if "cli" in source.relative_to(package).parts:
            continue
        text = source.read_text("utf-8")
        for library in ("typer", "rich", "click"):
            if f"import {library}" in text or f"from {library}" in text:
                offenders.append(f"{source.relative_to(package)} imports {library}")
    assert offenders == []


def test_only_the_directory_adapter_imports_ldap3() -> None:
    from pathlib import Path

    package = Path(__file__).resolve().parent.parent / "umacct"
    offenders = [
        str(source.relative_to(package))
        for source in package.rglob("*.py")
        if "directory" not in source.relative_to(package).parts
        and (
            "import ldap3" in source.read_text("utf-8") or "from ldap3" in source.read_text("utf-8")
        )
    ]
    assert offenders == []


def test_a_reader_that_goes_away_is_not_an_internal_error(tmp_path: Path) -> None:
    """``umacct config show | head -1``: no "unexpected BrokenPipeError" on stderr."""
    import subprocess
    import sys

    from helpers import minimal_config

    config = tmp_path / "config.toml"
    config.write_text(tomli_w.dumps(minimal_config()), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "umacct", "--config", str(config), "config", "show"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader leaves before the tool writes
    with process.stderr:
        error = process.stderr.read().decode()
    process.wait(timeout=30)
    assert "unexpected" not in error


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["sweep", "--help"],
        ["config", "show"],
        ["sweep", "--dry-run"],
        ["--json", "create", "--csv", "{folder}/people.csv", "--dry-run"],
        ["localdir", "config", "--dir", "{folder}"],
    ],
)
def test_a_command_with_plain_options_does_not_load_pydantic(
    args: list[str], tmp_path: Path
) -> None:
    """typer checks option values through pydantic, whose import costs a command ~70 ms.

    A text, an absent value, a number's default or a path needs no pydantic: the command's
    start-up does without it (a number typed on the command line still goes through it).
    """
    import subprocess
    import sys

    from helpers import minimal_config

    config = tmp_path / "config.toml"
    config.write_text(tomli_w.dumps(minimal_config()), encoding="utf-8")
    (tmp_path / "people.csv").write_text("given_name;surname;profile\n", encoding="utf-8")
    args = [arg.format(folder=tmp_path) for arg in args]
    probe = (
        "import sys, runpy; sys.argv = ['umacct', *sys.argv[1:]]\n"
        "try:\n    runpy.run_module('umacct', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print('pydantic' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, "--config", str(config), *args],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.stderr.splitlines()[-1] == "False", done.stderr


def test_a_path_option_is_still_checked_as_typer_checks_it(tmp_path: Path) -> None:
    """``--dir`` refuses a file (``file_okay=False``): the check holds without pydantic."""
    from typer.testing import CliRunner

    from umacct.cli.app import app

    a_file = tmp_path / "file"
    a_file.write_text("", encoding="utf-8")
    result = CliRunner().invoke(app, ["localdir", "config", "--dir", str(a_file)])
    assert result.exit_code == 2
    assert "is a file" in result.output


def test_no_module_much_over_six_hundred_lines() -> None:
    """Modules stay small enough to read whole (the largest are split before they pass 700)."""
    package = Path(__file__).resolve().parent.parent / "umacct"
    sizes = {
        str(path.relative_to(package)): len(path.read_text("utf-8").splitlines())
        for path in package.rglob("*.py")
    }
    assert not {name: size for name, size in sizes.items() if size > 700}
