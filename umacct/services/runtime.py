"""What every use case needs, made once per run and opened only when first used.

The CLI builds one ``Runtime`` per command; tests build it with a fixed clock. The directory
connection, the state store, the audit log and the mailer are adapters behind small
interfaces, opened lazily so that a command that needs none of them stays fast.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from umacct.clock import Clock, SystemClock, local_today
from umacct.config import Config, state_backend
from umacct.datadir import QUEUE_FILE, STATE_FILE
from umacct.errors import UmacctError
from umacct.secrets import Prompt, SecretKind, find_secret

if TYPE_CHECKING:
    from umacct.audit import AuditLog
    from umacct.directory import Directory
    from umacct.mail.mailer import Mailer
    from umacct.mail.queue import MailQueue, QueuedMail
    from umacct.mail.transport import Transport
    from umacct.mail.worker import MailWorker
    from umacct.store import Store
    from umacct.tokens import TokenRecord, Tokens


@dataclass
class Runtime:
    """The configuration, the clock and the lazily opened adapters of one run."""

    config: Config
    clock: Clock = field(default_factory=SystemClock)
    prompt: Prompt | None = None
    audit_details: dict[str, object] = field(default_factory=dict)
    """Details every audit record of this run carries (``forced_date`` on a replay)."""
    _directory: Directory | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)
    _audit: AuditLog | None = field(default=None, repr=False)
    _tokens: Tokens | None = field(default=None, repr=False)
    _mailer: Mailer | None = field(default=None, repr=False)
    _transport: Transport | None = field(default=None, repr=False)
    _queue: MailQueue | None = field(default=None, repr=False)

    @property
    def data_dir(self) -> Path:
        """The tool's own data folder."""
        return Path(self.config.paths.data_dir)

    def today(self) -> date:
        """Today in the policy's time zone, as the run's clock says (``--as-of`` moves it)."""
        return local_today(self.clock, self.config.policy.timezone)

    @property
    def directory(self) -> Directory:
        """The directory connection (bound as the tool's service account)."""
        if self._directory is None:
            self._directory = self.connect_directory()
        return self._directory

    def connect_directory(self) -> Directory:
        """A new connection, bound as the tool (the run's own is ``directory``)."""
        from umacct.directory import connect, needs_password

        if not needs_password(self.config.directory):  # SASL EXTERNAL over ldapi: no password
            return connect(self.config.directory, None)
        password = find_secret(SecretKind.DIRECTORY, self.config, self.prompt)
        return connect(self.config.directory, password.value)

    def forget_lost_directory(self) -> None:
        """The run's connection was lost: the next use of ``directory`` opens a fresh one."""
        lost, self._directory = self._directory, None
        if lost is not None:
            with contextlib.suppress(UmacctError, OSError):  # lost: closing it may fail too
                lost.close()

    @property
    def directory_url(self) -> str | None:
        """The server this run reached, if it connected at all."""
        return self._directory.url if self._directory is not None else None

    @property
    def state_in_directory(self) -> bool:
        """Whether the state store is the directory's state branch (else ``state.db``)."""
        return state_backend(self.config) == "directory"

    @property
    def store(self) -> Store:
        """The state store (tokens, notices, locks, purged identifiers, saved values).

        In the directory under ``[directory] state_dn`` (shared by every host), or in
        ``<data_dir>/state.db`` with ``[state] backend = "sqlite"`` (docs/state.md).
        """
        if self._store is None:
            if self.state_in_directory:
                from umacct.state.directory_store import DirectoryStore

                assert self.config.directory.state_dn is not None  # checked by the config
                self._store = DirectoryStore(
                    self.directory, self.config.directory.state_dn, connect=self.connect_directory
                )
            else:
                from umacct.store import SQLiteStore

                self._store = SQLiteStore(self.data_dir)
        return self._store

    def _no_state_yet(self) -> bool:
        """Whether no state exists to read: no state.db (reading it must not make one)."""
        return (
            self._store is None
            and not self.state_in_directory
            and not (self.data_dir / STATE_FILE).exists()
        )

    @property
    def audit(self) -> AuditLog:
        """The append-only audit log."""
        if self._audit is None:
            from umacct.audit import AuditLog

            self._audit = AuditLog(
                self.config.paths.audit_log_path,
                self.clock,
                self.audit_details,
                syslog=self.config.audit.syslog,
                syslog_socket=self.config.audit.syslog_socket,
            )
        return self._audit

    @property
    def tokens(self) -> Tokens:
        """Activation, reset and confirmation tokens."""
        if self._tokens is None:
            from umacct.tokens import Tokens

            self._tokens = Tokens(self.store, self.clock)
        return self._tokens

    @property
    def mailer(self) -> Mailer:
        """Outgoing mail, queued when the transport fails."""
        if self._mailer is None:
            from umacct.mail.mailer import Mailer
            from umacct.mail.transport import transport_from_config

            smtp_password = None
            if self.config.mail.transport == "smtp" and self.config.mail.smtp.username:
                smtp_password = find_secret(SecretKind.SMTP, self.config, self.prompt).value
            self._transport = transport_from_config(self.config, smtp_password, self.clock)
            self._mailer = Mailer(
                self.config,
                self._transport,
                self.mail_queue,
                self.clock,
                worker=functools.partial(_mail_worker, self.config, self.clock, smtp_password),
            )
        return self._mailer

    @property
    def mail_queue(self) -> MailQueue:
        """The queue of mail not sent yet (reading it needs no mail server nor its password)."""
        if self._queue is None:
            from umacct.mail.queue import MailQueue

            self._queue = MailQueue(self.data_dir / QUEUE_FILE)
        return self._queue

    def pending_links(self, account: str) -> list[TokenRecord]:
        """The account's usable links; with no state store yet there are none (none is made)."""
        if self._tokens is None and self._no_state_yet():
            return []
        return self.tokens.pending(account)

    def notice_day(self, account: str, kind: str, key: str) -> date | None:
        """The day (policy time zone) a notice was recorded; None if never (none is made)."""
        if self._no_state_yet():
            return None
        sent = self.store.notice_sent_at(account, kind, key)
        if sent is None:
            return None
        return sent.astimezone(ZoneInfo(self.config.policy.timezone)).date()

    def queued_mail(self, account: str | None = None) -> list[QueuedMail]:
        """The unsent messages (of one account), oldest first; none without a queue file.

        Reading creates nothing: with no mail queue yet there is nothing to list.
        """
        if self._queue is None and not (self.data_dir / QUEUE_FILE).exists():
            return []
        return self.mail_queue.pending(account=account)

    def mail_queue_drop(self, account: str, kinds: Sequence[str]) -> int:
        """Drop the account's unsent mail of these kinds (none is made without a queue file)."""
        if self._queue is None and not (self.data_dir / QUEUE_FILE).exists():
            return 0
        return self.mail_queue.discard_kinds(account, kinds)

    @property
    def warnings(self) -> list[str]:
        """What the run tells its user besides its result (an audit copy syslog did not get)."""
        return self._audit.warnings if self._audit is not None else []

    def close(self) -> None:
        """Close whatever was opened."""
        if self._mailer is not None:
            self._mailer.close()
        if self._transport is not None:
            self._transport.close()
        if self._queue is not None:
            self._queue.close()
        if self._store is not None:
            self._store.close()  # before the directory: the directory store uses it
        if self._directory is not None:
            self._directory.close()
        self._directory = self._store = self._mailer = self._transport = self._queue = None


def _mail_worker(config: Config, clock: Clock, smtp_password: str | None) -> MailWorker:
    from umacct.mail.worker import MailWorker

    return MailWorker(config, clock, smtp_password)
