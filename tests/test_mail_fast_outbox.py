"""The outbox's files, created without mkstemp: new, private, never through a link, whole."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest

from umacct.clock import FixedClock
from umacct.errors import UnavailableError
from umacct.mail import transport
from umacct.mail.compose import OutgoingMessage
from umacct.mail.transport import OutboxTransport

CLOCK = FixedClock(datetime(2026, 11, 2, 8, 30, 0, 123456, tzinfo=UTC))
STAMP = "20261102T083000123456Z"
MESSAGE = OutgoingMessage("a@b.org", "c@d.org", "<1@b.org>", b"Subject: x\n\n" + b"y" * 70_000)


@pytest.fixture
def no_umask() -> Iterator[None]:
    """A umask that takes nothing away: the files' 0600 must come from the tool."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def entries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


@pytest.mark.usefixtures("no_umask")
@pytest.mark.parametrize("batched", [False, True])
def test_each_message_is_one_private_file_with_its_whole_bytes(
    tmp_path: Path, batched: bool
) -> None:
    folder = tmp_path / "outbox"
    with OutboxTransport(folder, CLOCK) as outbox:
        if batched:
            with outbox.batch():
                for _ in range(3):
                    outbox.send(MESSAGE)
        else:
            for _ in range(3):
                outbox.send(MESSAGE)
    names = entries(folder)
    assert [name[: len(STAMP) + 7] for name in names] == [f"{STAMP}-00000{n}" for n in (1, 2, 3)]
    assert all(name.endswith(".eml") for name in names)
    assert len({name[-12:] for name in names}) == 3  # random suffixes
    for name in names:
        info = (folder / name).lstat()
        assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
        assert (folder / name).read_bytes() == MESSAGE.data
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_a_planted_link_or_file_is_never_written_through(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    folder.mkdir(mode=0o700)
    target = tmp_path / "target"
    target.write_bytes(b"untouched")
    # The first two names the transport would take are taken: a link and a file.
    (folder / f".{STAMP}-000001-00000000.eml.tmp").symlink_to(target)
    (folder / f".{STAMP}-000001-11111111.eml.tmp").write_bytes(b"leftover")
    suffixes = iter(["00000000", "11111111", "22222222"])
    with (
        mock.patch.object(transport.secrets, "token_hex", lambda _: next(suffixes)),
        OutboxTransport(folder, CLOCK) as outbox,
    ):
        outbox.send(MESSAGE)
    assert target.read_bytes() == b"untouched"
    assert (folder / f".{STAMP}-000001-11111111.eml.tmp").read_bytes() == b"leftover"
    assert (folder / f"{STAMP}-000001-22222222.eml").read_bytes() == MESSAGE.data


def test_no_free_name_is_unavailable_and_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    folder.mkdir(mode=0o700)
    (folder / f".{STAMP}-000001-00000000.eml.tmp").write_bytes(b"leftover")
    with (
        mock.patch.object(transport.secrets, "token_hex", lambda _: "00000000"),
        OutboxTransport(folder, CLOCK) as outbox,
        pytest.raises(UnavailableError, match=r"outbox .*: cannot write"),
    ):
        outbox.send(MESSAGE)
    assert entries(folder) == [f".{STAMP}-000001-00000000.eml.tmp"]


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"

    def disk_full(descriptor: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    with (
        mock.patch.object(transport.os, "write", disk_full),
        OutboxTransport(folder, CLOCK) as outbox,
        pytest.raises(UnavailableError, match="cannot write: No space left on device"),
    ):
        outbox.send(MESSAGE)
    assert entries(folder) == []


def test_a_short_write_is_completed(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    real_write = os.write

    def short_write(descriptor: int, data: memoryview) -> int:
        return real_write(descriptor, data[:1000])

    with (
        mock.patch.object(transport.os, "write", short_write),
        OutboxTransport(folder, CLOCK) as outbox,
    ):
        outbox.send(MESSAGE)
    [name] = entries(folder)
    assert (folder / name).read_bytes() == MESSAGE.data


def test_a_batch_is_synced_file_by_file_without_syncfs(tmp_path: Path) -> None:
    folder = tmp_path / "outbox"
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append(descriptor)
        real_fsync(descriptor)

    with (
        mock.patch.object(transport, "_sync_file_system", lambda _: False),
        mock.patch.object(transport.os, "fsync", recording_fsync),
        OutboxTransport(folder, CLOCK) as outbox,
    ):
        with outbox.batch():
            for _ in range(4):
                outbox.send(MESSAGE)
            assert synced == []  # nothing synced before the batch ends
        assert len(synced) == 5  # the four files, then the folder
    assert len(entries(folder)) == 4
