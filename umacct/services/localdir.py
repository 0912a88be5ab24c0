"""Start and stop a local directory for people to try the tool (the demo's first step)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from umacct.config import parse_config

CONFIG_NAME = "config.toml"
PASSWORD_NAME = "bind-password"  # noqa: S105 (a file name)


@dataclass(frozen=True)
class StartedDirectory:
    """What a user needs to point the tool at a freshly started local directory."""

    url: str
    pid: int
    folder: Path
    config_path: Path
    password_file: Path
    people: int


def local_config_path(folder: Path) -> Path:
    """The configuration file written next to a local directory."""
    return folder / CONFIG_NAME


def start_local_directory(
    folder: Path,
    *,
    population: int = 0,
    seed: int = 1,
    durable: bool = False,
    supann_schema: bool = True,
) -> StartedDirectory:
    """Start slapd in ``folder`` (left running), write its config and its bind password file."""
    from umacct.localdir import start

    folder = folder.resolve()
    directory = start(
        folder,
        population=population,
        seed=seed,
        durable=durable,
        supann_schema=supann_schema,
        detach=True,
    )
    settings = directory.config_dict(folder / "data")
    parse_config(settings)  # the launcher must hand out a valid configuration
    config_path = local_config_path(folder)
    config_path.write_text(tomli_w.dumps(settings), encoding="utf-8")
    password_file = folder / PASSWORD_NAME
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(directory.bind_password)
    return StartedDirectory(
        directory.url, directory.pid, folder, config_path, password_file, population
    )


def stop_local_directory(folder: Path) -> bool:
    """Stop the directory running in ``folder``; False when none was running."""
    from umacct.localdir import attach

    try:
        directory = attach(folder.resolve())
    except FileNotFoundError:
        return False
    if not directory.is_running():
        return False
    directory.stop()
    return True
