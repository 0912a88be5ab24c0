"""The tool's data folder (``[paths] data_dir``): the files it holds, created private.

Kept apart from the modules that open those files, so that a reader can tell whether one
exists without loading SQLite.
"""

from __future__ import annotations

from pathlib import Path

from umacct.errors import UnavailableError

STATE_FILE = "state.db"
QUEUE_FILE = "mailqueue.db"


def ensure_private_dir(path: Path) -> None:
    """Create ``path`` (and its parents) if missing; a directory created here is mode 0700."""
    if path.is_dir():
        return
    try:
        path.mkdir(mode=0o700, parents=True)
        # mkdir's mode is filtered by the umask; make sure the result is exactly 0700.
        path.chmod(0o700)
    except FileExistsError:
        if not path.is_dir():
            raise UnavailableError(
                f"{path}: cannot create the directory: a file of that name exists"
            ) from None
    except OSError as exc:
        raise UnavailableError(f"{path}: cannot create the directory: {exc.strerror}") from exc
