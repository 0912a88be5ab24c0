"""``umacct localdir``: a throwaway OpenLDAP directory on this machine, for trying the tool."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from umacct.cli.output import as_row, dumps_json
from umacct.cli.state import AppState, get_state
from umacct.errors import NotFoundError

if TYPE_CHECKING:
    from umacct.services.localdir import StartedDirectory

app = typer.Typer(
    help="Start, describe and stop a throwaway local OpenLDAP directory (demo, tests, benchmarks).",
    no_args_is_help=True,
)


def register(parent: typer.Typer) -> None:
    """Add the ``localdir`` group to the application."""
    parent.add_typer(app, name="localdir")


FolderOption = Annotated[
    Path,
    typer.Option("--dir", "-d", help="Folder that holds the directory's files.", file_okay=False),
]


@app.command("start")
def start(
    ctx: typer.Context,
    folder: FolderOption,
    population: Annotated[
        int, typer.Option(min=0, help="Sample people to generate, across all profiles.")
    ] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the generated population.")] = 1,
    durable: Annotated[bool, typer.Option(help="Sync writes to disk, as in production.")] = False,
    supann_schema: Annotated[bool, typer.Option(help="Load the SUPANN schema.")] = True,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Wipe the stopped directory FOLDER holds (entries, audit log, archives, "
            "state) and start a new one.",
        ),
    ] = False,
) -> None:
    """Start slapd in FOLDER (left running) and write FOLDER/config.toml pointing at it.

    A folder that holds a stopped directory: it starts again with its data (entries, the
    tool's audit log, archives and state); --reset wipes them first and builds a new one.
    """
    from umacct.localdir.instances import holds_instance, wipe_instance
    from umacct.services.localdir import start_local_directory

    state = get_state(ctx)
    if holds_instance(folder) and not reset:
        _restart(state, folder)
        return
    if reset:
        removed = wipe_instance(folder)
        if removed:
            state.info(f"wiped {folder}: {', '.join(removed)}")
    started = start_local_directory(
        folder, population=population, seed=seed, durable=durable, supann_schema=supann_schema
    )
    _started(state, started, folder, restarted=False)


def _restart(state: AppState, folder: Path) -> None:
    from umacct.localdir.instances import restart_stopped
    from umacct.services.localdir import (
        PASSWORD_NAME,
        StartedDirectory,
        local_config_path,
    )

    config_path, password_file = (
        local_config_path(folder.absolute()),
        folder.absolute() / PASSWORD_NAME,
    )
    if not (config_path.is_file() and password_file.is_file()):
        raise NotFoundError(
            f"{folder}: the directory's {config_path.name} or {password_file.name} is missing: "
            "start a new one with --reset"
        )
    directory = restart_stopped(folder)
    state.info(
        f"{folder} holds a stopped directory: started again with its data "
        "(--population and the other options apply to a new one: --reset)"
    )
    started = StartedDirectory(
        directory.url, directory.pid, directory.folder, config_path, password_file, 0
    )
    _started(state, started, folder, restarted=True)


def _started(state: AppState, started: StartedDirectory, folder: Path, *, restarted: bool) -> None:
    if state.json:
        state.json_result({**as_row(started), "restarted": restarted})
        return
    state.out.out(f"export UMACCT_CONFIG={started.config_path}")
    state.out.out(f"export UMACCT_BIND_PASSWORD=$(cat {started.password_file})")
    state.info(
        f"slapd pid {started.pid} on {started.url}; stop it with 'umacct localdir stop -d {folder}'"
    )


@app.command("config")
def config(ctx: typer.Context, folder: FolderOption) -> None:
    """Print the configuration file written for the directory running in FOLDER."""
    from umacct.services.localdir import local_config_path

    path = local_config_path(folder)
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise NotFoundError(
            f"{path}: {exc.strerror}: no local directory was started in {folder} "
            f"('umacct localdir start --dir {folder}')"
        ) from None
    state = get_state(ctx)
    if state.json:
        import tomllib

        state.out.out(dumps_json({"path": path, "config": tomllib.loads(text)}))
        return
    state.out.out(text, end="")


@app.command("stop")
def stop(ctx: typer.Context, folder: FolderOption) -> None:
    """Stop the directory running in FOLDER (its files stay)."""
    from umacct.services.localdir import stop_local_directory

    state = get_state(ctx)
    stopped = stop_local_directory(folder)
    if state.json:
        state.json_result({"folder": folder, "stopped": bool(stopped)})
        return
    state.info(f"stopped slapd in {folder}" if stopped else f"no directory was running in {folder}")
