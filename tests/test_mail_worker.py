"""Large batches composed and sent by the mail process: same outcomes as a thread's."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from collections.abc import Iterator
from email.parser import BytesParser
from pathlib import Path

import pytest
from smtp_fixtures import SmtpTestServer, relay_asking_login, smtp_server
from test_mail_fast import CLOCK, PERSON, make_config, requests, smtp_config

from umacct.config import Config
from umacct.errors import InvalidInputError
from umacct.mail.mailer import WORKER_BATCH, Mailer
from umacct.mail.queue import MailQueue
from umacct.mail.sender import MailRequest
from umacct.mail.transport import OutboxTransport, transport_from_config
from umacct.mail.worker import MailWorker

__all__ = ["smtp_server"]


@dataclasses.dataclass
class Workers:
    """The mail processes a Mailer started (through its ``worker`` factory)."""

    config: Config
    started: list[MailWorker] = dataclasses.field(default_factory=list)

    def __call__(self) -> MailWorker:
        worker = MailWorker(self.config, CLOCK, None)
        self.started.append(worker)
        return worker


@contextlib.contextmanager
def mailer_for(config: Config, queue: MailQueue) -> Iterator[tuple[Mailer, Workers]]:
    """A Mailer as the runtime makes one, its mail process and transport closed after."""
    workers = Workers(config)
    with transport_from_config(config, None, CLOCK) as transport:
        mailer = Mailer(config, transport, queue, CLOCK, worker=workers)
        try:
            yield mailer, workers
        finally:
            mailer.close()


def relay_config(tmp_path: Path, relay: SmtpTestServer, **smtp: object) -> Config:
    """The tests' configuration, mail through ``relay`` (``smtp``: more ``[mail.smtp]``)."""
    config = make_config(tmp_path)
    settings = dataclasses.replace(smtp_config(relay), **smtp)  # type: ignore[arg-type]
    return dataclasses.replace(config, mail=dataclasses.replace(config.mail, smtp=settings))


@pytest.fixture
def queue(tmp_path: Path) -> Iterator[MailQueue]:
    with MailQueue(tmp_path / "q.db") as opened:
        yield opened


def test_a_large_batch_goes_to_the_mail_process_and_comes_back_in_order(
    tmp_path: Path, smtp_server: SmtpTestServer, queue: MailQueue
) -> None:
    config = relay_config(tmp_path, smtp_server)
    with mailer_for(config, queue) as (mailer, workers):
        small = mailer.start(requests(WORKER_BATCH - 1)).results()
        assert workers.started == []  # a small batch stays in this process
        large = mailer.start(requests(WORKER_BATCH, start=100)).results()
        mailer.close()
        assert [worker._process.returncode for worker in workers.started] == [0]
        assert all(result.sent and result.delivery == "smtp" for result in [*small, *large])
        assert len({result.message_id for result in large}) == WORKER_BATCH
        received = {mail.rcpt_tos[0] for mail in smtp_server.received}
        assert received == {
            f"p{n}@example.net" for n in [*range(WORKER_BATCH - 1), *range(100, 100 + WORKER_BATCH)]
        }
        assert queue.pending() == []


def test_once_the_mail_process_runs_a_small_batch_goes_to_it_too(
    tmp_path: Path, smtp_server: SmtpTestServer, queue: MailQueue
) -> None:
    config = relay_config(tmp_path, smtp_server)
    with mailer_for(config, queue) as (mailer, workers):
        assert mailer.hand_over(requests(WORKER_BATCH - 1)) is None  # nothing sent: no process
        assert smtp_server.received == [] and workers.started == []
        large = mailer.hand_over(requests(WORKER_BATCH, start=100))
        small = mailer.start(requests(3, start=200))
        handed_small = mailer.hand_over(requests(2, start=300))
        assert large is not None and handed_small is not None
        assert not small.in_thread and not handed_small.in_thread
        outcomes = [*large.outcomes(), *small.outcomes(), *handed_small.outcomes()]
        mailer.close()
    assert len(workers.started) == 1
    assert all(not isinstance(each, Exception) and each.sent for each in outcomes)
    assert len(smtp_server.received) == WORKER_BATCH + 5


def test_large_batches_are_handed_over_without_waiting_and_answered_in_order(
    tmp_path: Path, smtp_server: SmtpTestServer, queue: MailQueue
) -> None:
    config = relay_config(tmp_path, smtp_server)
    with mailer_for(config, queue) as (mailer, workers):
        batches = [mailer.start(requests(WORKER_BATCH, start=100 * n)) for n in range(4)]
        assert not all(batch.done for batch in batches)  # the first one was not waited for
        results = [batch.results() for batch in batches]
        mailer.close()
    assert len(workers.started) == 1
    assert all(result.sent for batch in results for result in batch)
    received = [mail.rcpt_tos[0] for mail in smtp_server.received]
    assert sorted(received) == sorted(
        f"p{100 * n + k}@example.net" for n in range(4) for k in range(WORKER_BATCH)
    )
    ids = [result.message_id for batch in results for result in batch]
    assert len(set(ids)) == len(ids)


def test_the_mail_process_writes_the_outbox_and_syncs_it_per_batch(
    tmp_path: Path, queue: MailQueue
) -> None:
    config = make_config(tmp_path)
    config = dataclasses.replace(config, mail=dataclasses.replace(config.mail, transport="outbox"))
    with mailer_for(config, queue) as (mailer, workers):
        results = mailer.start(requests(WORKER_BATCH)).results()
        mailer.close()
        assert len(workers.started) == 1
        assert all(result.sent and result.delivery == "outbox" for result in results)
        files = sorted(Path(config.outbox_dir).glob("*.eml"))
        assert len(files) == WORKER_BATCH
        assert all(file.stat().st_mode & 0o777 == 0o600 for file in files)
        parsed = BytesParser().parsebytes(files[0].read_bytes())
        assert parsed["Message-ID"] in {result.message_id for result in results}
        assert isinstance(mailer._sender._transport, OutboxTransport)  # this process's, unused


def test_sec2_relay_down_in_the_mail_process_queues_the_batch_and_opens_the_breaker(
    tmp_path: Path, smtp_server: SmtpTestServer, queue: MailQueue
) -> None:
    config = relay_config(tmp_path, smtp_server)
    with mailer_for(config, queue) as (mailer, _):
        smtp_server.stop()
        results = mailer.start(requests(WORKER_BATCH)).results()
        assert not any(result.sent for result in results)
        assert mailer.relay_failure is not None  # the child's failure reached this process
        queued = queue.pending()
        assert [mail.account for mail in queued] == [f"p{n}@um.fr" for n in range(WORKER_BATCH)]
        assert all("token" not in repr(mail.params) for mail in queued)
        mailer.close()


def test_a_message_refused_in_the_mail_process_is_raised_after_the_others(
    tmp_path: Path, smtp_server: SmtpTestServer, queue: MailQueue
) -> None:
    config = relay_config(tmp_path, smtp_server)
    with mailer_for(config, queue) as (mailer, _):
        batch = requests(WORKER_BATCH)
        batch.insert(3, MailRequest("bad@um.fr", "suspended", "a\nb@example.net", PERSON))
        with pytest.raises(InvalidInputError):
            mailer.start(batch).results()
        mailer.close()
        assert len(smtp_server.received) == WORKER_BATCH
        assert queue.pending() == []


def test_a_mail_process_that_died_leaves_its_batch_queued_and_the_next_sent_here(
    tmp_path: Path, smtp_server: SmtpTestServer, queue: MailQueue
) -> None:
    config = relay_config(tmp_path, smtp_server)
    with mailer_for(config, queue) as (mailer, workers):
        mailer.start(requests(WORKER_BATCH)).results()
        [worker] = workers.started
        os.kill(worker._process.pid, signal.SIGKILL)
        worker._process.wait()
        lost = mailer.start(requests(WORKER_BATCH, start=100)).results()
        assert not any(result.sent for result in lost)
        assert all("mail process stopped" in (result.error or "") for result in lost)
        assert mailer.relay_failure is None  # the relay did not fail: the next batch goes out
        after = mailer.start(requests(WORKER_BATCH, start=200)).results()
        mailer.close()
        assert all(result.sent for result in after)
        assert len(workers.started) == 1  # not started again in this run
        assert len(queue.pending()) == WORKER_BATCH
        received = {mail.rcpt_tos[0] for mail in smtp_server.received}
        assert "p100@example.net" not in received and "p200@example.net" in received


def test_closing_waits_for_the_mail_process_and_reaps_it(tmp_path: Path) -> None:
    worker = MailWorker(make_config(tmp_path), CLOCK, None)
    assert worker.usable
    worker.close()
    assert worker._process.returncode == 0


def test_the_mail_process_logs_in_to_a_relay_that_asks_with_the_password_given(
    tmp_path: Path, queue: MailQueue
) -> None:
    relay = relay_asking_login(b"relay-secret")
    relay.start()
    try:
        config = relay_config(tmp_path, relay, username="umacct")
        worker = MailWorker(config, CLOCK, "relay-secret")
        with transport_from_config(config, "relay-secret", CLOCK) as transport:
            mailer = Mailer(config, transport, queue, CLOCK, worker=lambda: worker)
            results = mailer.start(requests(WORKER_BATCH)).results()
            mailer.close()
        assert all(result.sent for result in results)
        assert len(relay.received) == WORKER_BATCH
    finally:
        relay.stop()
