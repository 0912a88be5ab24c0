"""``umacct localdir``: a throwaway OpenLDAP directory on this machine, for trying the tool."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from umacct.cli.state import get_state

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
) -> None:
    """Start slapd in FOLDER (left running) and write FOLDER/config.toml pointing at it."""
    from umacct.services.localdir import start_local_directory

    state = get_state(ctx)
    started = start_local_directory(
        folder, population=population, seed=seed, durable=durable, supann_schema=supann_schema
    )
    if state.json:
        state.json_result(started)
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

    get_state(ctx).out.out(local_config_path(folder).read_text("utf-8"), end="")


@app.command("stop")
def stop(ctx: typer.Context, folder: FolderOption) -> None:
    """Stop the directory running in FOLDER (its files stay)."""
    from umacct.services.localdir import stop_local_directory

    state = get_state(ctx)
    stopped = stop_local_directory(folder)
    state.info(f"stopped slapd in {folder}" if stopped else f"no directory was running in {folder}")
