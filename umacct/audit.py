"""The append-only audit log: who changed what, when, before and after (security.md 22).

One JSON object per line in ``audit.jsonl`` (mode 0600). Lines are only ever appended
(``O_APPEND``, then ``fsync``); secrets are redacted before a line is written. A change
must not happen when its audit line cannot be written: services call ``ensure_writable``
before changing anything, and ``append`` raises ``UnavailableError`` when a write fails.
"""

from __future__ import annotations

import contextlib
import getpass
import itertools
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

from umacct.clock import Clock
from umacct.config import SECRET_WORDS
from umacct.datadir import ensure_private_dir
from umacct.errors import UnavailableError

REDACTED = "<redacted>"

Changes = Mapping[str, Mapping[str, list[str]]]


@dataclass(frozen=True)
class AuditRecord:
    """One line of the audit log."""

    time: datetime
    actor: str
    sudo_user: str | None
    command: str
    account: str | None
    changes: Changes
    result: str
    details: Mapping[str, object]

    def to_json(self) -> str:
        """Render the record as one line of JSON, without the newline."""
        document = {
            "time": self.time.isoformat(),
            "actor": self.actor,
            "sudo_user": self.sudo_user,
            "command": self.command,
            "account": self.account,
            "changes": {name: dict(change) for name, change in self.changes.items()},
            "result": self.result,
            "details": dict(self.details),
        }
        # ensure_ascii keeps every line plain ASCII; default=str covers dates and paths.
        return json.dumps(document, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, line: str) -> AuditRecord:
        """Parse one line of the log; ``ValueError`` if it is not a record."""
        document = json.loads(line)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        try:
            return cls(
                time=datetime.fromisoformat(document["time"]),
                actor=str(document["actor"]),
                sudo_user=document.get("sudo_user"),
                command=str(document["command"]),
                account=document.get("account"),
                changes=document.get("changes") or {},
                result=str(document["result"]),
                details=document.get("details") or {},
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or malformed field: {exc}") from exc


def is_secret_name(name: str) -> bool:
    """Whether an attribute or detail named so holds a secret (userPassword, *token*...)."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def redact_changes(changes: Changes) -> dict[str, dict[str, list[str]]]:
    """Copy the changes with every value of a secret attribute replaced by ``<redacted>``.

    An empty list stays empty, so the log still tells that a secret was set or removed.
    """
    redacted: dict[str, dict[str, list[str]]] = {}
    for name, change in changes.items():
        secret = is_secret_name(name)
        redacted[name] = {
            side: ([REDACTED] if values else []) if secret else list(values)
            for side, values in change.items()
        }
    return redacted


def redact_details(details: Mapping[str, object]) -> dict[str, object]:
    """Copy the details with the value of every secret key (at any depth) replaced."""
    return {
        key: REDACTED if is_secret_name(key) else _redact_value(value)
        for key, value in details.items()
    }


def _redact_value(value: object) -> object:
    if isinstance(value, Mapping):
        return redact_details({str(k): v for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


def diff_changes(
    before: Mapping[str, Sequence[str]], after: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, list[str]]]:
    """Build the ``changes`` mapping for the attributes whose values differ.

    Attribute names compare without case and values without order, as in LDAP; the name is
    spelt as in ``after`` when it is there. Attributes are listed in name order.
    """
    names: dict[str, str] = {name.lower(): name for name in before}
    names.update({name.lower(): name for name in after})
    before_by_key = {name.lower(): list(values) for name, values in before.items()}
    after_by_key = {name.lower(): list(values) for name, values in after.items()}
    changes: dict[str, dict[str, list[str]]] = {}
    for key in sorted(names):
        old, new = before_by_key.get(key, []), after_by_key.get(key, [])
        if sorted(old) != sorted(new):
            changes[names[key]] = {"before": old, "after": new}
    return changes


def current_actor() -> tuple[str, str | None]:
    """Return the OS user running the tool, and the user behind ``sudo`` if any."""
    try:
        actor = getpass.getuser()
    except (OSError, KeyError):
        actor = str(os.getuid())
    return actor, os.environ.get("SUDO_USER") or None


class AuditLog:
    """The audit log file at ``path``, stamped with the injected clock."""

    def __init__(
        self, path: Path, clock: Clock, run_details: Mapping[str, object] | None = None
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._run_details = dict(run_details or {})
        """Details every record of this run carries (a replay's ``forced_date``)."""
        self._group_every = 0
        self._unsynced = 0

    @contextlib.contextmanager
    def group_commit(self, every: int = 100) -> Iterator[None]:
        """Within the block, flush to disk once per ``every`` records and at its end.

        Each record still reaches the file at once (a process that dies loses none); only
        the disk flush is shared, which spares the nightly sweep one fsync per change.
        """
        if self._group_every:
            yield  # already grouping: the outer block flushes
            return
        self._group_every = every
        try:
            yield
        finally:
            self._group_every = 0
            if self._unsynced:
                self._unsynced = 0
                fd = self._open_for_append()
                try:
                    os.fsync(fd)
                except OSError as exc:
                    raise UnavailableError(
                        f"audit log {self.path}: cannot flush: {exc.strerror}"
                    ) from exc
                finally:
                    os.close(fd)

    def ensure_writable(self) -> None:
        """Raise ``UnavailableError`` unless the log can be opened for append (creating it)."""
        os.close(self._open_for_append())

    def append(
        self,
        command: str,
        account: str | None,
        changes: Changes,
        result: str = "ok",
        **details: object,
    ) -> AuditRecord:
        """Write one record (secrets redacted), flushed to disk; return what was written."""
        record = self.record(command, account, changes, result, **details)
        self.write([record])
        return record

    def record(
        self,
        command: str,
        account: str | None,
        changes: Changes,
        result: str = "ok",
        **details: object,
    ) -> AuditRecord:
        """Build a record stamped now, secrets redacted, without writing it (see ``write``)."""
        actor, sudo_user = current_actor()
        return AuditRecord(
            time=self._clock.now(),
            actor=actor,
            sudo_user=sudo_user,
            command=command,
            account=account,
            changes=MappingProxyType(redact_changes(changes)),
            result=result,
            details=MappingProxyType(redact_details({**self._run_details, **details})),
        )

    def write(self, records: Sequence[AuditRecord]) -> None:
        """Append ``records`` in one write and one disk flush (bulk commands write by batch)."""
        if not records:
            return
        data = b"".join(record.to_json().encode("ascii") + b"\n" for record in records)
        fd = self._open_for_append()
        try:
            size = os.fstat(fd).st_size
            # After a torn write (a crash mid-line) start on a new line, so the fragment
            # does not swallow this record.
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            _write_all(fd, data)
            self._unsynced += len(records)
            if self._unsynced >= self._group_every:
                os.fsync(fd)
                self._unsynced = 0
        except OSError as exc:
            raise UnavailableError(f"audit log {self.path}: cannot write: {exc.strerror}") from exc
        finally:
            os.close(fd)

    def read(
        self,
        *,
        account: str | None = None,
        since: datetime | None = None,
        actor: str | None = None,
        limit_last: int | None = None,
    ) -> list[AuditRecord]:
        """Return the records that match every filter given, oldest first.

        ``actor`` matches the OS user or the sudo user; ``limit_last`` keeps the last N, read
        from the end of the log (``show`` stays quick on a log of years). Lines that are not
        records (a write torn by a crash) are skipped. A missing log has no records.
        """

        def wanted(record: AuditRecord) -> bool:
            return (
                (account is None or record.account == account)
                and (since is None or record.time >= since)
                and (actor is None or actor in (record.actor, record.sudo_user))
            )

        if limit_last is None:
            return [record for record in self._records(account) if wanted(record)]
        matching = (
            record for record in self._records(account, newest_first=True) if wanted(record)
        )
        return list(itertools.islice(matching, limit_last))[::-1]

    def _records(
        self, mentioning: str | None, *, newest_first: bool = False
    ) -> Iterator[AuditRecord]:
        # A line that does not even contain the account cannot be about it: skipping it
        # before parsing keeps ``show`` fast on a log of millions of lines.
        needle = json.dumps(mentioning)[1:-1].encode("ascii") if mentioning is not None else b""
        try:
            with self.path.open("rb") as log:
                for line in _lines_from_end(log) if newest_first else log:
                    if not line.strip() or needle not in line:
                        continue
                    try:
                        yield AuditRecord.from_json(line.decode("utf-8", errors="replace"))
                    except ValueError:
                        continue
        except FileNotFoundError:
            return
        except OSError as exc:
            raise UnavailableError(f"audit log {self.path}: cannot read: {exc.strerror}") from exc

    def _open_for_append(self) -> int:
        try:
            ensure_private_dir(self.path.parent)
        except UnavailableError as exc:
            raise UnavailableError(f"audit log {self.path}: {exc.message}") from exc
        try:
            return os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise UnavailableError(
                f"audit log {self.path}: cannot open for append ({exc.strerror}); "
                "fix the path or its permissions"
            ) from exc


def _lines_from_end(log: BinaryIO, block_size: int = 1 << 16) -> Iterator[bytes]:
    """The lines of ``log``, the last first, read backwards one block at a time."""
    position = log.seek(0, os.SEEK_END)
    partial = b""
    while position > 0:
        size = min(block_size, position)
        position -= size
        log.seek(position)
        lines = (log.read(size) + partial).split(b"\n")
        partial = lines[0]  # it may begin in the block before
        yield from reversed(lines[1:])
    yield partial


def _write_all(fd: int, data: bytes) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]
