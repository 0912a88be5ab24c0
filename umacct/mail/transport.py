"""Where composed messages go: an outbox folder of ``.eml`` files, or an SMTP relay."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from umacct.clock import Clock, SystemClock
from umacct.closing import Closing
from umacct.config import Config
from umacct.datadir import ensure_private_dir
from umacct.errors import ConfigError, UnavailableError

if TYPE_CHECKING:
    from umacct.mail.compose import OutgoingMessage

# An outbox file is created as mkstemp creates one: new (O_EXCL), through no link, not inherited.
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NAME_ATTEMPTS = 100


class Transport(Protocol):
    """Delivers messages; used as a context manager so that connections get closed."""

    def send(self, message: OutgoingMessage) -> None:
        """Deliver one message or raise an UmacctError subclass."""
        ...

    def close(self) -> None:
        """Release what the transport holds (a connection); it may be used again after."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


OUTBOX_WORDS = "written to the outbox (not sent)"
"""What the outbox transport does with a message: it delivers nothing by itself."""
_SENT_TO = re.compile(r"\bsent to (?P<recipient>\S+)")


def outbox_wording(text: str) -> str:
    """A message about mail "sent to X", as the outbox transport really handled it.

    ``activation link sent to x@example.net`` becomes ``activation link for x@example.net
    written to the outbox (not sent)``: nobody receives it until someone delivers the folder.
    """
    return _SENT_TO.sub(lambda found: f"for {found['recipient']} {OUTBOX_WORDS}", text)


class OutboxTransport(Closing):
    """Writes each message to its own ``.eml`` file (mode 0600) in a private folder (0700).

    File names start with the UTC time and a per-transport sequence number, so that a
    plain sort lists them in sending order; a random suffix keeps concurrent runs apart.
    """

    _unsynced: list[str] | None = None
    """Inside ``batch()``: the files written and not yet synced to disk."""

    def __init__(self, folder: Path, clock: Clock | None = None) -> None:
        self.folder = folder
        self._clock = clock or SystemClock()
        self._sequence = itertools.count(1)
        self._folder_checked = False

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Within the block, files are written at once and synced together at its end.

        Each file and then the folder are synced once the block ends (also on an error), so
        that a batch's messages are on disk before the caller records them as sent.
        """
        if self._unsynced is not None:
            yield
            return
        self._unsynced = []
        try:
            yield
        finally:
            written, self._unsynced = self._unsynced, None
            if written:
                self._sync(written)

    def _sync(self, written: list[str]) -> None:
        try:
            if _sync_file_system(self.folder):
                return
            for path in [*written, str(self.folder)]:
                descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
        except OSError as exc:
            raise UnavailableError(f"outbox {self.folder}: cannot sync: {exc.strerror}") from exc

    def send(self, message: OutgoingMessage) -> None:
        """Write the message atomically (temporary file, then rename)."""
        self._ensure_folder()
        try:
            descriptor, temporary, final = self._create_temporary()
            try:
                try:
                    view = memoryview(message.data)
                    while view:
                        view = view[os.write(descriptor, view) :]
                    if self._unsynced is None:
                        os.fsync(descriptor)
                finally:
                    os.close(descriptor)
                os.replace(temporary, final)
                if self._unsynced is not None:
                    self._unsynced.append(final)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            raise UnavailableError(f"outbox {self.folder}: cannot write: {exc.strerror}") from exc

    def _create_temporary(self) -> tuple[int, str, str]:
        """A new temporary file (open for writing, and its path) and the name it will get.

        What ``tempfile.mkstemp`` did, without its random-name machinery: the file is created
        with O_EXCL (never over a file or link already there) and O_NOFOLLOW, mode 0600
        whatever the umask. Its name is the message's file name (UTC time, sequence, random
        suffix) behind a dot; a name already taken (a crashed run's leftover, or a concurrent
        run's by a 1 in 2**32 chance) gets another suffix.
        """
        folder = str(self.folder)
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%S%fZ")
        sequence = next(self._sequence)
        for _ in range(_NAME_ATTEMPTS):
            name = f"{stamp}-{sequence:06d}-{secrets.token_hex(4)}.eml"
            temporary = f"{folder}/.{name}.tmp"
            try:
                descriptor = os.open(temporary, _CREATE_FLAGS, 0o600)
            except FileExistsError:
                continue
            return descriptor, temporary, f"{folder}/{name}"
        raise FileExistsError(errno.EEXIST, "no free file name after several tries", folder)

    def _ensure_folder(self) -> None:
        # Made 0700 when missing; else it must be a real folder (not a link) of the tool's
        # user that no one else may write. Checked once per transport: each message is
        # then created new (O_EXCL, no link followed) and renamed over no link.
        if self._folder_checked and self.folder.is_dir():
            return
        ensure_private_dir(self.folder, "outbox")
        self._folder_checked = True


def _sync_file_system(folder: Path) -> bool:
    """``syncfs(2)`` of the file system holding ``folder``: one call for a batch's files.

    Linux only (through the C library); False when it is missing or fails, and the caller
    then syncs each file. Since Linux 5.8 it reports the write errors of the file system.
    """
    import ctypes  # only where a batch is synced

    function = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    if function is None:
        return False
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return int(function(descriptor)) == 0
    finally:
        os.close(descriptor)


def transport_from_config(
    config: Config, smtp_password: str | None, clock: Clock | None = None
) -> Transport:
    """The transport ``[mail] transport`` names; the outbox stamps its files with ``clock``."""
    if config.mail.transport == "smtp":
        from umacct.mail.smtp import SmtpTransport  # smtplib and ssl only for a relay

        return SmtpTransport(config.mail.smtp, smtp_password)
    if config.mail.transport == "outbox":
        return OutboxTransport(config.outbox_dir, clock)
    raise ConfigError(
        f"[mail] transport: expected 'outbox' or 'smtp', got {config.mail.transport!r}"
    )
