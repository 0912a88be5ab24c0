"""Job locks across hosts: leases in the directory, renewed while held, taken over when stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from faketime_support import UNDER_FAKETIME
from test_state_support import bound, branch, directory_store

from umacct.directory import Change
from umacct.errors import ConfigError, TemporaryError
from umacct.localdir import LocalDirectory
from umacct.state.branch import LOCKS, record_attributes, record_dn
from umacct.state.directory_store import DirectoryStore
from umacct.state.leases import Lease

# libfaketime shifts the monotonic clock that thread waits and timers use too: the renewal
# thread of a lease cannot be judged under it (`make test-later-dates`). What a lease does
# does not depend on the calendar; the plain `make test` runs these.
pytestmark = pytest.mark.skipif(
    UNDER_FAKETIME, reason="libfaketime shifts the monotonic clock that lease renewals wait on"
)


__all__ = ["branch", "directory_store"]

_HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from umacct.config import parse_config
    from umacct.directory import connect
    from umacct.localdir import attach
    from umacct.state.directory_store import DirectoryStore
    local = attach(Path(sys.argv[1]))
    settings = parse_config(local.config_dict(Path("unused"))).directory
    opener = lambda: connect(settings, local.bind_password)
    store = DirectoryStore(opener(), sys.argv[2], connect=opener, lease_seconds=float(sys.argv[3]))
    with store.job_lock("sweep"):
        print("held", flush=True)
        sys.stdin.read()
    """
)


@pytest.fixture
def holder(
    slapd: LocalDirectory, branch: str
) -> Iterator[Callable[[float], subprocess.Popen[str]]]:
    """Start a process holding the sweep's lease on the test's branch."""
    started: list[subprocess.Popen[str]] = []

    def start(lease_seconds: float = 60) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(slapd.folder), branch, str(lease_seconds)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(process)
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        if process.stdin is not None and not process.stdin.closed:
            process.stdin.close()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def _write_lease(store: DirectoryStore, lease: Lease) -> None:
    store.directory.add(
        record_dn(store.state_dn, LOCKS, "sweep"), record_attributes("sweep", [], lease.text())
    )


def test_a_lease_held_by_another_process_is_refused_naming_it(
    directory_store: DirectoryStore, holder: Callable[[float], subprocess.Popen[str]]
) -> None:
    process = holder(60)
    with pytest.raises(TemporaryError) as caught, directory_store.job_lock("sweep"):
        pass
    assert f"pid {process.pid})" in caught.value.message
    assert caught.value.message.startswith("another sweep is running (host ")
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(timeout=10) == 0
    with directory_store.job_lock("sweep"):  # given back at the end of the job
        pass


def test_a_lease_can_be_waited_for(
    directory_store: DirectoryStore, holder: Callable[[float], subprocess.Popen[str]]
) -> None:
    process = holder(60)
    assert process.stdin is not None
    threading.Timer(0.5, process.stdin.close).start()  # the holder's job ends in 0.5 s
    began = time.monotonic()
    with directory_store.job_lock("sweep", wait_seconds=20):
        assert 0.5 <= time.monotonic() - began < 15
    assert process.wait(timeout=10) == 0


def test_the_lease_of_a_killed_process_of_this_host_is_taken_over_at_once(
    directory_store: DirectoryStore, holder: Callable[[float], subprocess.Popen[str]]
) -> None:
    process = holder(600)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with directory_store.job_lock("sweep"):  # no waiting for the 10 minutes
        pass


def test_a_live_lease_of_another_host_is_refused_until_it_runs_out(
    directory_store: DirectoryStore,
) -> None:
    now = datetime.now(UTC)
    _write_lease(directory_store, Lease("admin-vm", 1, "n", now, now + timedelta(seconds=1.5)))
    with pytest.raises(TemporaryError, match=r"\(host admin-vm, pid 1\)"), directory_store.job_lock("sweep"):  # fmt: skip
        pass
    with directory_store.job_lock("sweep", wait_seconds=10):  # a lost host's lease runs out
        pass


def test_a_lease_past_its_end_is_taken_over(directory_store: DirectoryStore) -> None:
    past = datetime.now(UTC) - timedelta(minutes=5)
    _write_lease(directory_store, Lease("lost-vm", 4242, "n", past, past + timedelta(seconds=60)))
    with directory_store.job_lock("sweep"):
        entry = directory_store.directory.read(
            record_dn(directory_store.state_dn, LOCKS, "sweep"), ["description"]
        )
        assert entry is not None and "lost-vm" not in entry.get("description")[0]


def test_a_garbled_lease_is_taken_over(directory_store: DirectoryStore) -> None:
    directory_store.directory.add(
        record_dn(directory_store.state_dn, LOCKS, "sweep"),
        record_attributes("sweep", [], "not a lease"),
    )
    with directory_store.job_lock("sweep"):
        pass


def test_a_held_lease_is_renewed_past_its_length(
    slapd: LocalDirectory, branch: str, directory_store: DirectoryStore
) -> None:
    opener = bound(slapd)
    with opener() as first_connection, opener() as second_connection:
        short = DirectoryStore(first_connection, branch, connect=opener, lease_seconds=1.5)
        other = DirectoryStore(second_connection, branch, connect=opener, lease_seconds=1.5)
        with short.job_lock("sweep"):
            time.sleep(3.5)  # more than twice the lease: only its renewals keep it
            with pytest.raises(TemporaryError), other.job_lock("sweep"):
                pass
        with other.job_lock("sweep"):
            pass


def test_of_many_contenders_one_holds_the_lease_at_a_time(
    slapd: LocalDirectory, branch: str
) -> None:
    opener = bound(slapd)
    holding, most, errors = [0], [0], []
    guard = threading.Lock()

    def contend() -> None:
        with opener() as connection:
            store = DirectoryStore(connection, branch, connect=opener)
            for _ in range(5):
                try:
                    with store.job_lock("sweep", wait_seconds=30):
                        with guard:
                            holding[0] += 1
                            most[0] = max(most[0], holding[0])
                        time.sleep(0.01)
                        with guard:
                            holding[0] -= 1
                except Exception as error:
                    errors.append(error)

    threads = [threading.Thread(target=contend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and most[0] == 1


def test_a_lease_taken_over_meanwhile_is_not_given_back_by_its_old_holder(
    directory_store: DirectoryStore,
) -> None:
    dn = record_dn(directory_store.state_dn, LOCKS, "sweep")
    with directory_store.job_lock("sweep"):
        now = datetime.now(UTC)
        newer = Lease("web-vm", 7, "m", now, now + timedelta(minutes=5))
        directory_store.directory.modify(dn, [Change("replace", "description", (newer.text(),))])
    entry = directory_store.directory.read(dn, ["description"])
    assert entry is not None and entry.get("description") == [newer.text()]


def test_a_missing_branch_is_a_configuration_error_naming_state_init(
    slapd: LocalDirectory,
) -> None:
    with bound(slapd)() as connection:
        store = DirectoryStore(connection, f"ou=missing,{slapd.state_dn}")
        with pytest.raises(ConfigError, match="umacct state init"), store.job_lock("sweep"):
            pass
        with pytest.raises(ConfigError, match="umacct state init"):
            store.record_notice("a@x.org", "k", "k", datetime.now(UTC))
        with pytest.raises(ConfigError, match="umacct state init"):
            store.pending_tokens("a@x.org", datetime.now(UTC))


def test_an_error_of_the_job_itself_goes_through(directory_store: DirectoryStore) -> None:
    from umacct.errors import NotFoundError

    with pytest.raises(NotFoundError, match="no account"), directory_store.job_lock("sweep"):
        raise NotFoundError("no account x")
    with directory_store.job_lock("sweep"):
        pass
