"""A run starts once the file system has forgotten the files the last run deleted.

ext4 mounted without a journal (``EXT4-fs ... without journal`` in ``dmesg``, as on this kind
of virtual machine) passes over every inode freed in the last 60 seconds (360 while its
inode-table block is not written yet) when it allocates one: after thousands of files were
deleted, each new file in the same block group costs a walk past all of them. The tool's
outbox files were created 0.27 ms apiece (strace, median) in an intake started right after
such a deletion, against 0.04 ms otherwise, and the bare outbox intake of 3,000 took 2.8 s
instead of 2.15 s (same process, later rounds). A file system with a journal, the usual
server's, does not do this.

A bench run deletes the folders it retired when it ends (``bench.common.fresh_folder``), so a
run started just after another would pay for them: after a clean-up of a thousand files or
more, the next run waits until ``SETTLE_SECONDS`` have passed since it. Deletions by
anything else (a test run, an emptied outbox) are not seen; the note also gives the time a
file took to create just before the run, which shows them only when they fall in the block
group probed.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bench.common import CLEANED, OUT, fresh_folder

SETTLE_SECONDS = 360.0
PROBE_FILES = 300
_MESSAGE = b"x" * 2500  # about an activation mail


def creation_seconds(folder: Path) -> float:
    """The time per file to create ``PROBE_FILES`` files as the outbox does (kept, not deleted).

    Each is created new under a hidden name (O_EXCL), written, closed and renamed.
    """
    fresh_folder(folder)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    started = time.perf_counter()
    for number in range(PROBE_FILES):
        temporary = folder / f".{number:06d}.eml.tmp"
        descriptor = os.open(temporary, flags, 0o600)
        try:
            os.write(descriptor, _MESSAGE)
        finally:
            os.close(descriptor)
        os.replace(temporary, folder / f"{number:06d}.eml")
    return (time.perf_counter() - started) / PROBE_FILES


def settle() -> str:
    """Wait for the last run's deletions to be forgotten; the note for the results."""
    waited = 0.0
    if CLEANED.exists():
        waited = max(0.0, SETTLE_SECONDS - (time.time() - CLEANED.stat().st_mtime))
    if waited:
        print(
            f"waiting {waited:.0f} s: the last bench run deleted its files "
            f"{SETTLE_SECONDS - waited:.0f} s ago (bench/file_system.py says why)",
            file=sys.stderr,
            flush=True,
        )
        time.sleep(waited)
    seconds = creation_seconds(OUT / "file-creation-probe")
    note = (
        f"file creation just before the run: {seconds * 1000:.3f} ms a file (`bench.file_system`)"
    )
    return note + (f", after waiting {waited:.0f} s for the last run's deletions" if waited else "")


if __name__ == "__main__":
    print(f"{creation_seconds(OUT / 'file-creation-probe') * 1000:.3f} ms a file")
