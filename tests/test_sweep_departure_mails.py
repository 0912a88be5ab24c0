"""A sweep batch's departure mails go to the mail process together, and are waited for.

A batch of ``WORKER_BATCH`` departures or more is handed to the mail process while the next
batch is swept; the batch's notices are recorded (and its outcomes told) once the mail
process said what became of each mail. A smaller batch sends its mail from the sweep's own
process, as one account at a time did. Both ways: a notice only for mail on disk, never for
a mail that raised, and a stop in a later batch leaves no batch before it untold.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from days import TODAY, month_end
from people import add_person, outbox_mails
from test_faults_support import (
    MODIFY_RESPONSE,
    LosingProxy,
    Site,
    accounts_in_grace,
    assert_one_line_error,
    departed,
    letters,
    proxies,
    site,
    through_proxy,
)

from umacct.errors import UmacctError, UnavailableError
from umacct.mail.mailer import WORKER_BATCH, Mailer
from umacct.mail.worker import Handed
from umacct.services import steps
from umacct.services.accounts import DEPARTURE_NOTICE, Account
from umacct.services.runtime import Runtime
from umacct.services.sweep import SWEEP_BATCH, SweepSummary, sweep
from umacct.store import SQLiteStore

__all__ = ["proxies", "site"]


def _people(site: Site, count: int, *, bad_mail: int | None = None) -> list[str]:
    """``count`` people past their end of activity; ``bad_mail``: the one whose address
    no mail can go to (it holds ``=?``), by rank."""
    domain = site.config.profiles["vacataire"].domain
    entries = [
        departed(f"lia.{letters(n).lower()}", "vacataire", month_end(-1), domain)
        for n in range(count)
    ]
    if bad_mail is not None:
        uid = entries[bad_mail]["uid"][0]
        entries[bad_mail]["mail"] = [f"{uid}=?q@{domain}"]
    site.add_people(entries)
    return [entry["mail"][0].lower() for entry in entries]


def _noticed(site: Site, accounts: list[str]) -> set[str]:
    with SQLiteStore(site.data_dir) as store:
        return {account for account in accounts if store.last_notice(account, DEPARTURE_NOTICE)}


@pytest.mark.parametrize("count", [WORKER_BATCH - 1, WORKER_BATCH + 10])
def test_a_departure_mail_that_raises_fails_that_account_alone_and_records_no_notice(
    site: Site, count: int
) -> None:
    everyone = _people(site, count, bad_mail=7)
    bad = everyone[7]
    run = site.run("--json", "sweep")
    assert run.returncode != 0
    assert "Traceback" not in run.stderr and bad in run.stderr
    assert accounts_in_grace(site) == set(everyone)  # the write was made: the next runs tell it
    others = [account for account in everyone if account != bad]
    assert _noticed(site, everyone) == set(others)
    assert site.outbox_recipients() == Counter(dict.fromkeys(others, 1))


def test_a_stop_in_a_later_batch_tells_the_batch_whose_mail_was_with_the_mail_process(
    site: Site, proxies: list[LosingProxy]
) -> None:
    everyone = _people(site, SWEEP_BATCH + WORKER_BATCH + 10)
    first_batch = set(everyone[:SWEEP_BATCH])
    # The 21st answer of the second batch never comes: the sweep stops there.
    proxy = LosingProxy(site.directory.port, MODIFY_RESPONSE, SWEEP_BATCH + 20)
    proxies.append(proxy)
    through_proxy(site, proxy)

    first = site.run("sweep")
    assert proxy.dropped.is_set()
    assert_one_line_error(first.stderr, (69,), first.returncode)
    in_grace = accounts_in_grace(site)
    assert first_batch < in_grace < set(everyone)
    told = site.outbox_recipients()
    assert told == Counter(dict.fromkeys(in_grace, 1))  # told exactly what was done, once
    assert _noticed(site, everyone) == in_grace
    for account in first_batch:  # the first batch's outcomes were told before the error
        assert account in first.stdout

    proxy.close()
    document_url = f"ldap://127.0.0.1:{site.directory.port}"
    text = site.config_path.read_text(encoding="utf-8")
    site.config_path.write_text(text.replace(f"ldap://127.0.0.1:{proxy.port}", document_url))
    rerun = site.run("sweep")
    assert rerun.returncode == 0, rerun.stderr
    assert accounts_in_grace(site) == set(everyone)
    assert site.outbox_recipients() == Counter(dict.fromkeys(everyone, 1))
    assert _noticed(site, everyone) == set(everyone)


@pytest.mark.usefixtures("directory_clean")
def test_a_mail_process_that_dies_leaves_its_batch_queued_and_told_and_the_next_mailed_here(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = on(TODAY)
    people = [
        add_person(first, f"mia.{letters(n).lower()}", end_of_activity=TODAY - timedelta(days=1))
        for n in range(SWEEP_BATCH + WORKER_BATCH + 10)
    ]
    started = Mailer.expect_large_batches

    def start_then_kill(mailer: Mailer) -> None:
        started(mailer)
        worker = mailer._worker
        if worker is not None and worker._process.poll() is None:
            os.kill(worker._process.pid, signal.SIGKILL)
            worker._process.wait()

    monkeypatch.setattr(Mailer, "expect_large_batches", start_then_kill)
    runtime = on(TODAY)
    summary = SweepSummary(runtime.today(), dry_run=False)
    told = list(sweep(runtime, summary))
    runtime.close()
    everyone = [person.identifier for person in people]
    assert [result.account for result in told] == everyone and summary.errors == []
    with SQLiteStore(Path(runtime.config.paths.data_dir)) as store:
        assert all(store.last_notice(account, DEPARTURE_NOTICE) for account in everyone)
    # The first batch's mail waits in the queue for `umacct mail flush`; the rest went from here.
    queued = {mail.account for mail in on(TODAY).mail_queue.pending()}
    mailed = {str(message["To"]) for message in outbox_mails(runtime)}
    assert queued == set(everyone[:SWEEP_BATCH])
    assert mailed == set(everyone[SWEEP_BATCH:])


def _due(on: Callable[[date], Runtime], count: int) -> list[str]:
    first = on(TODAY)
    people = [
        add_person(first, f"noa.{letters(n).lower()}", end_of_activity=TODAY - timedelta(days=1))
        for n in range(count)
    ]
    first.close()
    return [person.identifier for person in people]


def _swept(
    runtime: Runtime, *, stop_after: int | None = None
) -> tuple[list[str], SweepSummary, BaseException | None]:
    """The accounts told, the summary and the error of one sweep (its reader gone early)."""
    summary = SweepSummary(runtime.today(), dry_run=False)
    told: list[str] = []
    results = sweep(runtime, summary)
    try:
        for result in results:
            told.append(result.account)
            if stop_after is not None and len(told) == stop_after:
                results.close()
                break
    except UmacctError as error:
        return told, summary, error
    finally:
        runtime.close()
    return told, summary, None


def _noticed_in(runtime: Runtime, accounts: list[str]) -> set[str]:
    with SQLiteStore(Path(runtime.config.paths.data_dir)) as store:
        return {account for account in accounts if store.last_notice(account, DEPARTURE_NOTICE)}


def _errors_of(summary: SweepSummary) -> set[str]:
    return {error.partition(": ")[0] for error in summary.errors}


@pytest.mark.usefixtures("directory_clean")
def test_after_a_notice_that_stops_the_sweep_every_account_written_is_told_or_listed(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    everyone = _due(on, SWEEP_BATCH + WORKER_BATCH + 10)
    real = steps.departure_told
    calls: list[str] = []

    def store_fails_once(runtime: Runtime, account: Account, *args: Any) -> Any:
        calls.append(account.identifier)
        if len(calls) == 5:
            raise UnavailableError("the state store failed: disk I/O error")
        return real(runtime, account, *args)

    monkeypatch.setattr(steps, "departure_told", store_fails_once)
    runtime = on(TODAY)
    told, summary, error = _swept(runtime)
    assert isinstance(error, UnavailableError)
    stopping = calls[4]
    written = {r.account for r in on(TODAY).audit.read() if r.command == "sweep" and r.account}
    assert set(told) | _errors_of(summary) | {stopping} == written == set(everyone)
    assert _noticed_in(runtime, everyone) == set(told)
    assert set(told) <= {str(message["To"]) for message in outbox_mails(runtime)}


@pytest.mark.usefixtures("directory_clean")
def test_a_mail_process_that_fails_on_a_batch_stops_the_sweep_and_records_none_of_its_notices(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    everyone = _due(on, 3 * SWEEP_BATCH + 10)
    real = Handed.answer
    answered: list[int] = []

    def second_batch_crashes(handed: Handed, answers: object) -> None:
        answered.append(1)
        if len(answered) == 2:  # as the mail process answers when its outbox cannot sync
            answers = ("crash", "Traceback ...\nUnavailableError: outbox: cannot sync")
        real(handed, answers)

    monkeypatch.setattr(Handed, "answer", second_batch_crashes)
    runtime = on(TODAY)
    told, summary, error = _swept(runtime)
    assert isinstance(error, UnavailableError) and "mail process failed" in error.message
    second = set(everyone[SWEEP_BATCH : 2 * SWEEP_BATCH])
    assert not second & _noticed_in(runtime, everyone)  # none known to be on disk
    assert len(second - _errors_of(summary)) == 1  # the one whose error stopped the run
    assert set(told) == _noticed_in(runtime, everyone)
    assert set(everyone[:SWEEP_BATCH]) <= set(told)
    written = {r.account for r in on(TODAY).audit.read() if r.command == "sweep" and r.account}
    assert set(told) | _errors_of(summary) | second == written  # nobody written left unsaid


@pytest.mark.usefixtures("directory_clean")
def test_a_reader_gone_early_leaves_no_mail_handed_over_without_its_notice(
    on: Callable[[date], Runtime],
) -> None:
    everyone = _due(on, 3 * SWEEP_BATCH)
    runtime = on(TODAY)
    told, _, error = _swept(runtime, stop_after=1)
    assert error is None and len(told) == 1
    mailed = {str(message["To"]) for message in outbox_mails(runtime)}
    assert len(mailed) > SWEEP_BATCH  # batches were with the mail process
    assert _noticed_in(runtime, everyone) == mailed
