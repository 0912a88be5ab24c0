r"""The append-only audit log: who changed what, when, before and after (security.md 22).

One JSON object per line in ``audit.jsonl`` (mode 0600). Lines are only ever appended
(``O_APPEND``, then ``fsync``); secrets are redacted before a line is written. A change
must not happen when its audit line cannot be written: services call ``ensure_writable``
before changing anything, and ``append`` raises ``UnavailableError`` when a write fails.

Who acted comes from the operating system, never from ``$LOGNAME`` or ``$USER``, and the
user behind ``sudo`` is recorded beside it (requirement 32, ``current_actor``). Secret
attributes are known by schema, whatever their spelling (requirement 33,
``umacct.secret_attributes``). Control and invisible characters in any text are written
as escapes (``\x1b``, ``\u202e``): reading the log never hands one to a terminal. The log
is opened without following a symbolic link and must belong to the tool's user
(requirement 31, ``umacct.datadir.open_private_file``).

With ``[audit] syslog``, each record is also sent, as one datagram, to the system logger's
socket (``[audit] syslog_socket``, ``/dev/log``), before it is written to the file: the file
is the record, syslog a copy. A record the logger did not get says so in the file
(``"syslog": "not sent: ..."``), the run stops sending for the rest of its records, and
``AuditLog.warnings`` gives the one line the command says on stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import pwd
import socket
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

from umacct.audit_lines import record_line
from umacct.audit_syslog import SYSLOG_SOCKET, os_words, send_line, syslog_connection
from umacct.clock import Clock
from umacct.datadir import ensure_private_dir, open_private_file
from umacct.errors import UnavailableError
from umacct.secret_attributes import is_secret_attribute

REDACTED = "<redacted>"
UNVERIFIED_SUDO_USER = "unverified_sudo_user"
"""The detail that keeps a ``$SUDO_USER`` whose ``$SUDO_UID`` does not match it."""
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_MAX_CLAIM = 64

Changes = Mapping[str, Mapping[str, list[str]]]
"""Texts only, in a record (``AuditLog`` escapes every value to one): ``audit_lines`` writes a
record's changes by orjson, whose way with a date or a float is not json's."""


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
        return self.to_line().decode("ascii")

    def to_line(self) -> bytes:
        """The record as one line of JSON in ASCII, without the newline (what the log holds).

        ``umacct.audit_lines`` writes it (json's text, by orjson where that is the same).
        """
        return record_line(self._document, self.changes, self.details)

    def _document(self, changes: object, details: object) -> dict[str, object]:
        return {
            "time": self.time.isoformat(),
            "actor": self.actor,
            "sudo_user": self.sudo_user,
            "command": self.command,
            "account": self.account,
            "changes": changes,
            "result": self.result,
            "details": details,
        }

    @classmethod
    def from_json(cls, line: str) -> AuditRecord:
        """Parse one line of the log; ``ValueError`` if it is not a record."""
        document = json.loads(line)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        # Escaped again: a line written by an older version, or by hand, holds no control
        # character either once read.
        try:
            return cls(
                time=datetime.fromisoformat(document["time"]),
                actor=escape_controls(str(document["actor"])),
                sudo_user=_escaped_or_none(document.get("sudo_user")),
                command=escape_controls(str(document["command"])),
                account=_escaped_or_none(document.get("account")),
                changes=_escape_changes(document.get("changes") or {}),
                result=escape_controls(str(document["result"])),
                details=_escape_details(document.get("details") or {}),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"missing or malformed field: {exc}") from exc


def escape_controls(text: str) -> str:
    r"""``text`` with control, format and line-separator characters written as escapes.

    C0 and C1 controls, DEL, bidi overrides, zero-width characters, U+2028/U+2029 become
    ``\xNN``, ``\uNNNN`` or ``\UNNNNNNNN``; nothing else changes, so that a clean text is
    kept as it is. Escaping twice gives the same text.
    """
    if text.isprintable():
        return text
    return "".join(
        _escaped(c) if unicodedata.category(c) in _ESCAPED_CATEGORIES else c for c in text
    )


def _escaped(character: str) -> str:
    code = ord(character)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _escaped_or_none(value: object) -> str | None:
    return None if value is None else escape_controls(str(value))


def _escape_value(value: object) -> object:
    if isinstance(value, str):
        return escape_controls(value)
    if isinstance(value, os.PathLike):
        return escape_controls(str(value))
    if isinstance(value, Mapping):
        return _escape_details({str(k): v for k, v in value.items()})
    if isinstance(value, list | tuple):
        return [_escape_value(item) for item in value]
    return value


def _escape_details(details: Mapping[str, object]) -> dict[str, object]:
    return {escape_controls(str(key)): _escape_value(value) for key, value in details.items()}


def _escape_changes(changes: Changes) -> dict[str, dict[str, list[str]]]:
    return {
        escape_controls(str(name)): {
            escape_controls(str(side)): _escape_texts(values) for side, values in change.items()
        }
        for name, change in changes.items()
    }


def _audited_changes(changes: Changes) -> dict[str, dict[str, list[str]]]:
    """``_escape_changes(redact_changes(changes))``, tested in one go when all is clean.

    A bulk intake's record holds some fifteen attributes: when every name and side is a
    ``str`` and every text of the record, joined, is printable, escaping would keep each as
    it is; otherwise each is escaped as ``_escape_changes`` does.
    """
    redacted: dict[str, dict[str, list[str]]] = {}
    texts: list[str] = []
    exact = True
    for name, change in changes.items():
        secret = is_secret_name(name)
        exact = exact and type(name) is str
        sides: dict[str, list[str]] = {}
        for side, values in change.items():
            kept = ([REDACTED] if values else []) if secret else list(values)
            sides[side] = kept
            exact = exact and type(side) is str
            texts.append(side)
            texts += kept
        texts.append(name)
        redacted[name] = sides
    return _escaped_unless_printable(redacted, texts, exact)


def _escaped_unless_printable(
    redacted: dict[str, dict[str, list[str]]], texts: list[str], exact: bool
) -> dict[str, dict[str, list[str]]]:
    """``redacted`` as it is when all its texts are ``str`` and printable, else escaped."""
    try:
        if exact and "".join(texts).isprintable():
            return redacted
    except TypeError:  # not all texts
        pass
    return _escape_changes(redacted)


def _audited_entry(attributes: Mapping[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    """``_audited_changes`` of an entry added: ``{name: {"before": [], "after": values}}``.

    Built directly, without the walk of two sides per attribute (a bulk intake's record).
    """
    redacted: dict[str, dict[str, list[str]]] = {}
    texts: list[str] = []
    exact = True
    for name, values in attributes.items():
        kept = ([REDACTED] if values else []) if is_secret_name(name) else list(values)
        redacted[name] = {"before": [], "after": kept}
        exact = exact and type(name) is str
        texts.append(name)
        texts += kept
    return _escaped_unless_printable(redacted, texts, exact)


_PLAIN_DETAIL_TYPES = frozenset({int, bool, float, type(None)})


def _audited_details(details: Mapping[str, object]) -> dict[str, object]:
    """``_escape_details(redact_details(details))``, without the walk for flat details.

    Flat: every key a printable ``str``, every value a ``str`` or a number, bool or None (a
    row's ``line``); anything else (lists, mappings, paths) takes the general walk.
    """
    audited: dict[str, object] = {}
    for key, value in details.items():
        kind = type(value)
        if type(key) is not str or not key.isprintable():
            return _escape_details(redact_details(details))
        if is_secret_name(key):
            audited[key] = REDACTED
        elif kind is str:
            audited[key] = escape_controls(value)  # type: ignore[arg-type]
        elif kind in _PLAIN_DETAIL_TYPES:
            audited[key] = value
        else:
            return _escape_details(redact_details(details))
    return audited


def _escape_texts(values: Iterable[object]) -> list[str]:
    """``escape_controls`` of each value, as text; texts that are all printable as they are.

    The hot path of a bulk intake's records (fifteen attributes a new account): one test of
    the values joined, rather than one call a value.
    """
    texts = list(values)
    try:
        if "".join(texts).isprintable():  # type: ignore[arg-type]
            return texts  # type: ignore[return-value]
    except TypeError:  # not all texts
        pass
    return [escape_controls(str(value)) for value in texts]


def is_secret_name(name: str) -> bool:
    """Whether an attribute or detail named so holds a secret, in any spelling (requirement 33).

    ``userPassword``, ``2.5.4.35``, ``USERPASSWORD;binary``, ``authPassword``, ``pwdHistory``,
    ``sambaNTPassword``... and any name holding a secret word (``*password*``, ``*token*``).
    """
    return is_secret_attribute(name)


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


@dataclass(frozen=True)
class Actor:
    """Who runs the tool: the OS user, and the user behind ``sudo`` when it is verified."""

    user: str
    sudo_user: str | None = None
    unverified_sudo_user: str | None = None
    """A ``$SUDO_USER`` whose ``$SUDO_UID`` is missing or is not that user's uid."""


def os_actor(environ: Mapping[str, str] | None = None) -> Actor:
    """The user of the process's real uid (``pwd``), and the user who ran ``sudo``.

    ``$LOGNAME``, ``$USER`` and ``$USERNAME`` are never read: anyone sets them. ``sudo`` sets
    ``$SUDO_USER`` and ``$SUDO_UID`` together, whether the target is root or a service user
    (``sudo -u umacct``); the name is recorded as the sudo user only when ``$SUDO_UID`` is
    that user's uid, in decimal digits as sudo writes it. A name that does not match is kept apart as unverified, escaped and
    cut at 64 characters: never taken for the person who acted (nor matched by
    ``umacct audit --actor``), yet a forged environment leaves its trace.
    """
    env = os.environ if environ is None else environ
    uid = os.getuid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = f"uid {uid}"
    claimed = env.get("SUDO_USER") or ""
    if not claimed:
        return Actor(escape_controls(user))
    try:
        # Compared as sudo writes it: digits only (int() would also take " 1" or an Arabic-Indic one).
        verified = str(pwd.getpwnam(claimed).pw_uid) == env.get("SUDO_UID")
    except (KeyError, ValueError):
        verified = False
    if verified:
        return Actor(escape_controls(user), escape_controls(claimed))
    return Actor(escape_controls(user), unverified_sudo_user=escape_controls(claimed[:_MAX_CLAIM]))


SYSLOG_DETAIL = "syslog"
"""The detail of a record the system logger did not get: ``not sent: <why>``."""
_SYSLOG_PRIORITY = 4 * 8 + 6  # facility auth (4), severity info (6), as syslog(3) writes it


def _syslog_line(record: AuditRecord) -> bytes:
    """``<38>umacct[PID]: {json}``: the logger stamps the time it received it (journald, rsyslog)."""
    return f"<{_SYSLOG_PRIORITY}>umacct[{os.getpid()}]: {record.to_json()}".encode("ascii")


def _noted(record: AuditRecord, problem: str) -> AuditRecord:
    details = {**record.details, SYSLOG_DETAIL: escape_controls(f"not sent: {problem}")}
    return dataclasses.replace(record, details=MappingProxyType(details))


def current_actor() -> tuple[str, str | None]:
    """Return the OS user running the tool, and the verified user behind ``sudo`` if any."""
    actor = os_actor()
    return actor.user, actor.sudo_user


class AuditLog:
    """The audit log file at ``path``, stamped with the injected clock."""

    def __init__(
        self,
        path: Path,
        clock: Clock,
        run_details: Mapping[str, object] | None = None,
        *,
        syslog: bool = False,
        syslog_socket: str | os.PathLike[str] = SYSLOG_SOCKET,
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._run_details = dict(run_details or {})
        """Details every record of this run carries (a replay's ``forced_date``)."""
        self._syslog = syslog
        """Also send each record to syslog (``[audit] syslog``)."""
        self._syslog_socket = os.fspath(syslog_socket)
        self._syslog_failure: str | None = None
        """Why the logger stopped taking records in this run: none is sent after it."""
        self._not_sent = 0
        self._syslog_reasons: list[str] = []
        self._group_every = 0
        self._written = 0
        """Records this log wrote in this run; ``_flushed`` of them are on disk."""
        self._flushed = 0
        self._actor: Actor | None = None
        self._folder_checked = False

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
            self.sync()

    @property
    def written(self) -> int:
        """How many records this log wrote so far (``sync(through=...)`` takes it)."""
        return self._written

    def sync(self, through: int | None = None) -> None:
        """Flush to disk what was written without a flush (``write(..., sync=False)``).

        ``through``: only if the first ``through`` records (``written``) are not on disk yet.
        """
        if self._flushed >= (self._written if through is None else through):
            return
        self._flushed = self._written
        fd = self._open_for_append()
        try:
            os.fsync(fd)
        except OSError as exc:
            raise UnavailableError(f"audit log {self.path}: cannot flush: {exc.strerror}") from exc
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
        return self.write([record])[0]

    def record(
        self,
        command: str,
        account: str | None,
        changes: Changes,
        result: str = "ok",
        **details: object,
    ) -> AuditRecord:
        """Build a record stamped now, secrets redacted, without writing it (see ``write``).

        Every text is escaped (``escape_controls``); the actor is looked up once per log.
        """
        return self._record(command, account, _audited_changes(changes), result, details)

    def _record(
        self,
        command: str,
        account: str | None,
        audited: dict[str, dict[str, list[str]]],
        result: str,
        details: Mapping[str, object],
    ) -> AuditRecord:
        if self._actor is None:
            self._actor = os_actor()
        actor = self._actor
        claims = (
            {UNVERIFIED_SUDO_USER: actor.unverified_sudo_user} if actor.unverified_sudo_user else {}
        )
        return AuditRecord(
            time=self._clock.now(),
            actor=actor.user,
            sudo_user=actor.sudo_user,
            command=escape_controls(command),
            account=_escaped_or_none(account),
            changes=MappingProxyType(audited),
            result=escape_controls(result),
            details=MappingProxyType(_audited_details({**self._run_details, **details, **claims})),
        )

    def record_added(
        self,
        command: str,
        account: str | None,
        attributes: Mapping[str, list[str]],
        result: str = "ok",
        **details: object,
    ) -> AuditRecord:
        """``record`` of an entry added: each attribute from nothing to its values."""
        return self._record(command, account, _audited_entry(attributes), result, details)

    def write(self, records: Sequence[AuditRecord], *, sync: bool = True) -> list[AuditRecord]:
        """Append ``records`` in one write and one disk flush (bulk commands write by batch).

        ``sync=False`` leaves the flush to the next write that makes one, or to ``sync()``:
        the records are in the file at once, on the disk with the next flush.

        Return what was written: with ``[audit] syslog``, a record the logger did not get
        carries ``"syslog": "not sent: ..."``.
        """
        if not records:
            return []
        if self._syslog:
            records = self._copy_to_syslog(records)
        data = b"".join(record.to_line() + b"\n" for record in records)
        fd = self._open_for_append()
        try:
            size = os.fstat(fd).st_size
            # After a torn write (a crash mid-line) start on a new line, so the fragment
            # does not swallow this record.
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            _write_all(fd, data)
            self._written += len(records)
            if sync and self._written - self._flushed >= self._group_every:
                os.fsync(fd)
                self._flushed = self._written
        except OSError as exc:
            raise UnavailableError(f"audit log {self.path}: cannot write: {exc.strerror}") from exc
        finally:
            os.close(fd)
        return list(records)

    def _copy_to_syslog(self, records: Sequence[AuditRecord]) -> list[AuditRecord]:
        """Send each record to the logger; those it did not get, noted so (for the file)."""
        where = self._syslog_socket
        connection: socket.socket | None = None
        stream = False
        if self._syslog_failure is None:
            try:
                connection, stream = syslog_connection(where)
            except OSError as exc:
                self._syslog_failure = f"cannot reach {where}: {os_words(exc)}"
        kept = []
        try:
            for record in records:
                problem = self._syslog_failure
                if connection is not None and problem is None:
                    problem = send_line(connection, stream, _syslog_line(record), where)
                    if problem is not None and not problem.startswith("too long"):
                        self._syslog_failure = problem
                if problem is None:
                    kept.append(record)
                    continue
                self._not_sent += 1
                if problem not in self._syslog_reasons:
                    self._syslog_reasons.append(problem)
                kept.append(_noted(record, problem))
        finally:
            if connection is not None:
                connection.close()
        return kept

    @property
    def warnings(self) -> list[str]:
        """One line for the command to say when records of this run did not reach syslog."""
        if not self._not_sent:
            return []
        count = f"{self._not_sent} audit record{'s' if self._not_sent > 1 else ''}"
        return [
            f"{count} not sent to syslog ({'; '.join(self._syslog_reasons)}): kept in "
            f"{self.path} only (it says so); 'umacct doctor' checks [audit] syslog_socket"
        ]

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
        # Records hold escaped text: so must what they are compared with.
        account = _escaped_or_none(account)
        actor = _escaped_or_none(actor)

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
            # Read as it is written: never through a link, never a file of someone else's.
            fd = open_private_file(self.path, "audit log", os.O_RDONLY, create=False)
            with os.fdopen(fd, "rb") as log:
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
        # The folder is checked (and made) once per log; the file at every opening, without
        # following a link (a link planted there is refused, its target left untouched).
        if not self._folder_checked:
            ensure_private_dir(self.path.parent, "audit log folder")
            self._folder_checked = True
        return open_private_file(self.path, "audit log", os.O_RDWR | os.O_APPEND)


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
