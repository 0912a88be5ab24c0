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

from umacct.mail.mailer import WORKER_BATCH, Mailer
from umacct.services.accounts import DEPARTURE_NOTICE
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
