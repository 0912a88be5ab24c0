"""A local directory's folder across runs: start the stopped one again, or wipe it first.

``umacct localdir start`` on a folder that holds a stopped directory restarts it with its
data (entries, the tool's audit log, archives and state beside it); ``--reset`` wipes the
instance's files first, and only those.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from umacct.errors import RefusedError
from umacct.localdir.slapd import DATABASE_FOLDER, STATE_FILE, LocalDirectory, attach

INSTANCE_FILES = (
    STATE_FILE, "slapd.d", DATABASE_FOLDER, "slapd.pid", "slapd.args", "tls",
    "config.toml", "bind-password", "data",  # what ``umacct localdir start`` writes beside them
)  # fmt: skip
"""Everything an instance keeps in its folder: the database (``slapd-data``; in ``data`` for
a folder made before it), and the tool's own data dir ``data`` (audit log, archives, state)."""


def holds_instance(folder: Path) -> bool:
    """Whether ``folder`` holds a directory started before (running or stopped)."""
    return (Path(folder).absolute() / STATE_FILE).is_file()


def restart_stopped(folder: Path, ready_timeout: float = 10.0) -> LocalDirectory:
    """Start again, with its data, the stopped directory in ``folder`` (left running).

    RefusedError when it runs already; NotFoundError when the folder holds none.
    """
    directory = attach(folder)
    if directory.is_running():
        raise RefusedError(
            f"{directory.folder}: a local directory is already running there (pid "
            f"{directory.pid}); stop it first"
        )
    directory.restart(ready_timeout)
    return directory


def wipe_instance(folder: Path) -> list[str]:
    """Remove a stopped instance's files from ``folder`` (the names of INSTANCE_FILES only).

    Its database, the tool's data dir beside it (audit log, archives, state), its
    configuration and bind password go; anything else in the folder stays. A link is
    removed, never followed. Returns the names removed.
    """
    folder = Path(folder).absolute()
    if holds_instance(folder) and attach(folder).is_running():
        raise RefusedError(f"{folder}: a local directory is running there; stop it first")
    removed = []
    for name in INSTANCE_FILES:
        path = folder / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        else:
            continue
        removed.append(name)
    return removed
