"""The tool's files: who may write them, and how the ones it writes are opened.

Every file the tool trusts must be writable by nobody but root and the user running the tool
(security requirement 31): another user who could rewrite the configuration or the CA file
could point the tool at a server of their own and collect the bind password; one who could
rewrite a template puts words in the tool's mail; one who could write the data dir forges its
state, its queue and its audit trail. A refusal is a ``ConfigError`` (exit 78) naming the file
and the command that fixes it.

- Files the tool only reads (configuration, CA file, templates) may be symbolic links
  (Debian's ``/etc/ssl/certs/*.pem`` are): the file a link leads to is checked, and so is every
  folder crossed on the way, the links' own folders included (``find_read_problem``).
- Files the tool writes (data dir, state store, mail queue, audit log, archives, outbox) are
  opened without following a symbolic link (``O_NOFOLLOW``) and what was opened is checked
  with ``fstat`` (``open_private_file``); a file of someone else's is refused, never chmod-ed.
  A folder the tool writes in must be a real folder (``ensure_private_dir``).

Kept apart from the modules that open those files, so that a reader can tell whether one
exists without loading SQLite.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from umacct.errors import ConfigError, UnavailableError

STATE_FILE = "state.db"
QUEUE_FILE = "mailqueue.db"
AUDIT_FILE = "audit.jsonl"
OUTBOX_DIR = "outbox"
ARCHIVE_DIR = "archive"
_SQLITE_SIDE_FILES = ("", "-journal", "-wal", "-shm")
WEB_SESSIONS_FILE = "web.db"
"""The web front door's sessions and rate-limit counters (``umacct serve``)."""
DATA_FILES = (
    *(
        f"{database}{suffix}"
        for database in (STATE_FILE, QUEUE_FILE, WEB_SESSIONS_FILE)
        for suffix in _SQLITE_SIDE_FILES
    ),
    f"{QUEUE_FILE}.lock",
    AUDIT_FILE,
)
"""The files the tool keeps in its data dir; each is checked whenever the folder is."""
DATA_FOLDERS = (OUTBOX_DIR, ARCHIVE_DIR)

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH
_MAX_LINKS = 40
_NOT_A_FOLDER = "is not a folder"


@dataclass(frozen=True)
class FileProblem:
    """Why a file cannot be trusted, and the one command that fixes it."""

    path: Path
    problem: str
    fix: str

    def message(self, what: str) -> str:
        """One line: what the file is, the file, the problem and the fix."""
        return f"{what} {_shown(self.path)}: {self.problem}; {self.fix}"


def _shown(path: Path | str) -> str:
    text = str(path)
    return text if text.isprintable() else repr(text)


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return f"gid {gid}"


def _trusted_owner(uid: int) -> bool:
    return uid in (0, os.geteuid())


def _trusted_owners() -> str:
    return "root" if os.geteuid() == 0 else f"root or {_user(os.geteuid())}"


def _writers(info: os.stat_result) -> tuple[str, str] | None:
    """Who besides the owner may write (words, chmod argument), or None."""
    bits = info.st_mode & _OTHERS_WRITE
    if not bits:
        return None
    if bits & stat.S_IWOTH:
        return "every user", "o-w,g-w" if bits & stat.S_IWGRP else "o-w"
    return f"the group {_group(info.st_gid)}", "g-w"


def _object_problem(path: Path, real: Path, info: os.stat_result, why: str) -> FileProblem | None:
    """The file (or folder) itself: owned by root or the tool's user, written by no one else."""
    shown_real = _shown(real)
    link = "" if real == path else f" (a link to {shown_real})"
    mode = f"mode {stat.S_IMODE(info.st_mode):04o}"
    if not _trusted_owner(info.st_uid):
        return FileProblem(
            path,
            f"owned by {_user(info.st_uid)}{link}, not by {_trusted_owners()}: {why}",
            f"chown {_user(os.geteuid())} {shown_real}",
        )
    writers = _writers(info)
    if writers:
        return FileProblem(
            path,
            f"writable by {writers[0]}{link} ({mode}): {why}",
            f"chmod {writers[1]} {shown_real}",
        )
    return None


def _folder_problem(path: Path, folder: str, info: os.stat_result) -> FileProblem | None:
    """A folder crossed on the way: whoever may write it could replace what it holds."""
    where = _shown(folder)
    if not _trusted_owner(info.st_uid):
        return FileProblem(
            path,
            f"a parent folder, {where}, is owned by {_user(info.st_uid)}, who could replace it",
            f"chown {_user(os.geteuid())} {where}, or move the file",
        )
    writers = _writers(info)
    if writers and not info.st_mode & stat.S_ISVTX:  # sticky, as /tmp: only owners unlink
        mode = f"mode {stat.S_IMODE(info.st_mode):04o}"
        return FileProblem(
            path,
            f"a parent folder is writable by {writers[0]} ({where}, {mode}), "
            "who could replace the file",
            f"chmod {writers[1]} {where}, or move the file",
        )
    return None


def _traverse(
    path: Path, *, follow_last: bool
) -> tuple[list[tuple[str, os.stat_result]], Path, os.stat_result | None]:
    """The folders crossed to reach ``path``, where it leads, and what is there (None: nothing).

    Symbolic links on the way are followed as the system would follow them, and every folder
    crossed is listed, those holding the links included: whoever may write any of them could
    swap the file. A link as the last component is followed only with ``follow_last``. When
    the path does not exist the folders end with the deepest one that does. (Plain strings:
    this runs for every file at every start of the tool.)
    """
    folders = [("/", os.stat("/"))]
    current = "/"
    pending = [name for name in reversed(os.path.abspath(path).split("/")) if name]
    links = 0
    while pending:
        name = pending.pop()
        if name == ".":
            continue
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = f"{current.rstrip('/')}/{name}"
        try:
            info = os.lstat(candidate)
        except (FileNotFoundError, NotADirectoryError):
            return folders, Path(candidate), None
        last = not pending
        if stat.S_ISLNK(info.st_mode) and (follow_last or not last):
            links += 1
            if links > _MAX_LINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(path))
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = "/"
            pending.extend(name for name in reversed(target.split("/")) if name)
            continue
        if last:
            return folders, Path(candidate), info
        if not stat.S_ISDIR(info.st_mode):
            return folders, Path(candidate), None
        folders.append((candidate, info))
        current = candidate
    return folders, Path(current), os.lstat(current)


def find_read_problem(path: Path, why: str) -> FileProblem | None:
    """Why a file the tool reads (configuration, CA, template) cannot be trusted, or None.

    A missing file has no problem here (whoever reads it says so); the folders that do exist
    on its way are still checked, since whoever may write them could create it.
    """
    try:
        folders, real, info = _traverse(path, follow_last=True)
    except OSError as exc:
        return FileProblem(path, f"cannot be checked: {exc.strerror}", "fix the path")
    for folder, folder_info in folders:
        problem = _folder_problem(path, folder, folder_info)
        if problem:
            return problem
    return _object_problem(path, real, info, why) if info is not None else None


def check_read_file(path: Path, what: str, why: str) -> None:
    """Raise ``ConfigError`` (exit 78) unless the file the tool reads is trusted."""
    problem = find_read_problem(path, why)
    if problem:
        raise ConfigError(problem.message(what))


def find_read_folder_problem(folder: Path, why: str) -> FileProblem | None:
    """The folder (``[mail] templates_dir``) and every file in it, as ``find_read_problem``."""
    problem = find_read_problem(folder, why)
    if problem or not folder.is_dir():
        return problem
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        return FileProblem(folder, f"cannot be listed: {exc.strerror}", "fix its permissions")
    for entry in entries:
        # The folder's way is checked: a plain file needs only its own check, a link its way.
        try:
            info = os.lstat(entry)
        except OSError:
            continue  # gone meanwhile
        if stat.S_ISLNK(info.st_mode):
            problem = find_read_problem(entry, why)
        else:
            problem = _object_problem(entry, entry, info, why)
        if problem:
            return problem
    return None


# --- files the tool writes -----------------------------------------------------------------


def _written_problem(
    path: Path, info: os.stat_result, *, folder: bool | None
) -> FileProblem | None:
    """A file or folder the tool writes, as found (never through a link).

    ``folder`` None: of either kind (a wrong kind is for the module that opens it to report).
    """
    if stat.S_ISLNK(info.st_mode):
        try:
            target = f" to {_shown(os.readlink(path))}"
        except OSError:
            target = ""
        return FileProblem(
            path,
            f"is a symbolic link{target}: the tool writes only into files of its own",
            f"remove the link (rm {_shown(path)})",
        )
    if folder is True and not stat.S_ISDIR(info.st_mode):
        return FileProblem(path, _NOT_A_FOLDER, f"move it away ({_shown(path)})")
    if folder is False and not stat.S_ISREG(info.st_mode):
        return FileProblem(path, "is not a regular file", f"move it away ({_shown(path)})")
    return _object_problem(path, path, info, "that user could forge what the tool keeps there")


def find_written_problem(path: Path, *, folder: bool = False) -> FileProblem | None:
    """Why a file the tool writes (or its folders) cannot be trusted, or None; missing is fine."""
    try:
        folders, parent, parent_info = _traverse(path.parent, follow_last=True)
        if parent_info is not None:
            folders.append((str(parent), parent_info))
        for crossed, crossed_info in folders:
            problem = _folder_problem(path, crossed, crossed_info)
            if problem:
                return problem
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None  # what cannot be made there is reported by whoever makes it
    except OSError as exc:
        return FileProblem(path, f"cannot be checked: {exc.strerror}", "fix the path")
    return _written_problem(path, info, folder=folder)


def ensure_private_dir(path: Path, what: str = "data dir") -> None:
    """Create the folder the tool writes in (mode 0700, with its parents), or check it.

    An existing folder must be a real folder (not a symbolic link), owned by root or the tool's
    user and writable by no one else, reached through folders no one else may write; the
    tool's own files in it (``DATA_FILES``, ``DATA_FOLDERS``) must be the same. A refusal is a
    ``ConfigError``; a folder that cannot be made is an ``UnavailableError``.
    """
    problem = find_written_problem(path, folder=True)
    if problem and problem.problem == _NOT_A_FOLDER:
        raise UnavailableError(
            f"{what} {_shown(path)}: cannot create the directory: a file of that name exists"
        )
    if problem:
        raise ConfigError(problem.message(what))
    if not os.path.lexists(path):
        _make_private_dir(path, what)
        return
    for name in (*DATA_FILES, *DATA_FOLDERS):
        entry = path / name
        try:
            info = os.lstat(entry)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise UnavailableError(f"{what} {_shown(entry)}: cannot check: {exc.strerror}") from exc
        problem = _written_problem(entry, info, folder=None)
        if problem:
            raise ConfigError(problem.message(what))


def _make_private_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(mode=0o700, parents=True)
        # mkdir's mode is filtered by the umask; make sure the result is exactly 0700.
        path.chmod(0o700)
    except FileExistsError:
        if not path.is_dir():
            raise UnavailableError(
                f"{what} {_shown(path)}: cannot create the directory: a file of that name exists"
            ) from None
    except OSError as exc:
        raise UnavailableError(
            f"{what} {_shown(path)}: cannot create the directory: {exc.strerror}"
        ) from exc


def open_private_file(path: Path, what: str, flags: int = os.O_RDWR, *, create: bool = True) -> int:
    """Open (creating it, mode 0600) a file the tool writes; return the descriptor.

    A symbolic link is never followed (``O_NOFOLLOW``): one planted at the path is refused and
    its target left untouched. What was opened must be a regular file owned by root or the
    tool's user that no one else may write (``fstat``); read access for others is taken away
    from a file of the tool's user. A refusal is a ``ConfigError`` (exit 78), a file that
    cannot be opened an ``UnavailableError``. With ``create`` False (reading), a missing file
    raises ``FileNotFoundError``.
    """
    try:
        fd = os.open(
            path, flags | (os.O_CREAT if create else 0) | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except OSError as exc:
        if not create and exc.errno == errno.ENOENT:
            raise
        if exc.errno == errno.ELOOP:
            with_link = find_written_problem(path)
            if with_link:
                raise ConfigError(with_link.message(what)) from None
        raise UnavailableError(
            f"{what} {_shown(path)}: cannot open ({exc.strerror}); fix the path or its permissions"
        ) from exc
    try:
        info = os.fstat(fd)
        problem = _written_problem(path, info, folder=False)
        if problem:
            raise ConfigError(problem.message(what))
        if info.st_mode & 0o077 and info.st_uid == os.geteuid():
            os.fchmod(fd, 0o600)
    except BaseException:
        os.close(fd)
        raise
    return fd
