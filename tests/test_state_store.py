"""The ``Store`` contract, held by both backends: state.db (SQLite) and the directory branch.

Each test runs twice, on a fresh ``SQLiteStore`` and on a ``DirectoryStore`` of a branch of
its own in the session directory; ``other`` is a second store on the same state (another
process, or another host).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_state_support import bound, branch, directory_store

from umacct.directory import Directory
from umacct.errors import ExitCode, InvalidInputError, TemporaryError
from umacct.localdir import LocalDirectory
from umacct.state.directory_store import DirectoryStore
from umacct.state.stored_times import to_stored_time
from umacct.store import NewToken, PurgeRecord, SQLiteStore, Store

__all__ = ["branch", "directory_store"]

T0 = datetime(2027, 6, 30, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
BACKENDS = ["sqlite", "directory"]


@pytest.fixture(params=BACKENDS)
def stores(
    request: pytest.FixtureRequest, tmp_path: Path, slapd: LocalDirectory
) -> Iterator[tuple[Store, Callable[[], Store]]]:
    """A store, and a way to open another one on the same state."""
    opened: list[Store | Directory] = []
    if request.param == "sqlite":

        def other() -> Store:
            store = SQLiteStore(tmp_path / "data")
            opened.append(store)
            return store

        first = other()
    else:
        first = request.getfixturevalue("directory_store")
        opener = bound(slapd)

        def other() -> Store:
            directory = opener()
            opened.append(directory)
            return DirectoryStore(directory, first.state_dn, connect=opener)

    yield first, other
    for resource in opened:
        resource.close()


@pytest.fixture
def store(stores: tuple[Store, Callable[[], Store]]) -> Store:
    return stores[0]


def token(account: str, purpose: str = "reset", at: datetime = T0, n: int = 0) -> NewToken:
    """A token to record, valid for an hour; its hash stands for a random token's."""
    digest = hashlib.sha256(f"{account} {purpose} {at} {n}".encode()).hexdigest()
    return NewToken(account, purpose, digest, at, at + HOUR, {"n": str(n)})


# --- tokens ---------------------------------------------------------------------------------


def test_sec03_sec25_sec40_a_token_is_used_once_even_from_another_store(
    stores: tuple[Store, Callable[[], Store]],
) -> None:
    store, other = stores
    [token_id] = store.issue_tokens([token("a@x.org")])
    elsewhere = other()
    found = elsewhere.find_token(token("a@x.org").token_hash)
    assert found is not None and found.token_id == token_id
    assert elsewhere.mark_token_used(token_id, T0 + timedelta(minutes=5)) is True
    assert store.mark_token_used(token_id, T0 + timedelta(minutes=6)) is False
    used = store.find_token(token("a@x.org").token_hash)
    assert used is not None and used.used_at == T0 + timedelta(minutes=5)
    assert store.pending_tokens("a@x.org", T0) == []


def test_a_released_token_is_usable_again(store: Store) -> None:
    [token_id] = store.issue_tokens([token("a@x.org")])
    used_at = T0 + timedelta(minutes=1)
    assert store.mark_token_used(token_id, used_at)
    store.release_token(token_id, used_at + timedelta(seconds=1))  # not that use: no change
    assert store.pending_tokens("a@x.org", T0) == []
    store.release_token(token_id, used_at)
    assert [t.token_id for t in store.pending_tokens("a@x.org", T0)] == [token_id]
    assert store.mark_token_used(token_id, used_at)


def test_an_expired_token_cannot_be_used(store: Store) -> None:
    [token_id] = store.issue_tokens([token("a@x.org")])
    assert store.mark_token_used(token_id, T0 + HOUR) is False
    assert store.pending_tokens("a@x.org", T0 + HOUR) == []


def test_sec03_a_new_token_cancels_the_older_of_its_purpose_only(store: Store) -> None:
    first, kept = store.issue_tokens([token("a@x.org"), token("a@x.org", "activation")])
    later = T0 + timedelta(minutes=10)
    [second] = store.issue_tokens([token("a@x.org", at=later, n=1)])
    pending = store.pending_tokens("a@x.org", later)
    assert [t.token_id for t in pending] == [kept, second]
    old = store.find_token(token("a@x.org").token_hash)
    assert old is not None and old.cancelled_at == later
    assert store.mark_token_used(first, later) is False


def test_many_tokens_at_once_and_the_last_of_an_account_wins(store: Store) -> None:
    accounts = [f"p{n}@x.org" for n in range(120)]
    ids = store.issue_tokens([token(account) for account in accounts])
    assert len(set(ids)) == len(accounts)
    assert all(len(store.pending_tokens(a, T0)) == 1 for a in accounts[::17])
    twice = store.issue_tokens([token("z@x.org", n=1), token("z@x.org", n=2)])
    assert [t.token_id for t in store.pending_tokens("z@x.org", T0)] == [twice[1]]


def test_cancel_counts_and_filters_by_purpose(store: Store) -> None:
    store.issue_tokens([token("a@x.org"), token("a@x.org", "activation"), token("b@x.org")])
    assert store.cancel_tokens("a@x.org", [], T0) == 0
    assert store.cancel_tokens("a@x.org", ["activation"], T0) == 1
    assert [t.purpose for t in store.pending_tokens("a@x.org", T0)] == ["reset"]
    assert store.cancel_tokens("a@x.org", None, T0) == 1
    assert store.cancel_tokens("a@x.org", None, T0) == 0
    assert len(store.pending_tokens("b@x.org", T0)) == 1


def test_tokens_issued_since_count_used_and_cancelled_ones(store: Store) -> None:
    for n in range(3):
        store.issue_tokens([token("a@x.org", at=T0 + timedelta(minutes=n), n=n)])
    assert store.count_tokens_issued("a@x.org", "reset", T0) == 3
    assert store.count_tokens_issued("a@x.org", "reset", T0 + timedelta(minutes=1)) == 2
    assert store.count_tokens_issued("a@x.org", "activation", T0) == 0
    assert store.count_tokens_issued("A@x.org", "reset", T0) == 0  # identifiers are exact


def test_unknown_tokens_are_not_found(store: Store) -> None:
    assert store.find_token("0" * 64) is None
    assert store.find_token("") is None
    assert store.mark_token_used(12345, T0) is False
    store.release_token(12345, T0)


# --- notices --------------------------------------------------------------------------------


def test_notice_is_recorded_once_across_stores(stores: tuple[Store, Callable[[], Store]]) -> None:
    store, other = stores
    key = "expiry in 30 days for grace_end 2027-06-30"
    assert store.record_notice("a@x.org", "expiry-warning", key, T0) is True
    later = T0 + timedelta(days=1)
    assert other().record_notice("a@x.org", "expiry-warning", key, later) is False
    assert store.record_notice("b@x.org", "expiry-warning", key, later) is True
    assert store.has_notice("a@x.org", "expiry-warning", key)
    assert not store.has_notice("a@x.org", "expiry-warning", "another key")
    assert store.notice_sent_at("a@x.org", "expiry-warning", key) == T0
    assert store.notice_sent_at("c@x.org", "expiry-warning", key) is None


def test_last_notice_is_the_latest_of_the_kind(store: Store) -> None:
    assert store.last_notice("a@x.org", "reminder") is None
    for days in (0, 30, 10):
        store.record_notice("a@x.org", "reminder", f"r{days}", T0 + timedelta(days=days))
    store.record_notice("a@x.org", "other", "x", T0 + timedelta(days=99))
    store.record_notice("b@x.org", "reminder", "y", T0 + timedelta(days=99))
    assert store.last_notice("a@x.org", "reminder") == T0 + timedelta(days=30)


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_notice("a@x.org", "warn", "k", datetime(2027, 1, 1))


# Identifiers, kinds and keys the store must keep apart whatever they hold: filter and DN
# specials, spaces, case, non-ASCII letters.
TEXT = st.text(
    alphabet=st.sampled_from(list("aZé ß*()\\,=+<>#;\"'@.-_/0")), min_size=1, max_size=12
).filter(lambda text: text.strip() != "")


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(account=TEXT, kind=TEXT, key=st.text(max_size=40))
def test_any_text_is_a_notice_of_its_own(store: Store, account: str, kind: str, key: str) -> None:
    store.record_notice(account, kind, key, T0)
    assert store.has_notice(account, kind, key)
    assert store.record_notice(account, kind, key, T0) is False
    assert store.last_notice(account, kind) == T0
    never = "\u2603"  # not in the alphabet: no example recorded it
    assert not store.has_notice(account + never, kind, key)
    assert not store.has_notice(account, kind, key + never)
    assert store.last_notice(account + never, kind) is None
    assert store.last_notice(account, kind + never) is None


# --- purges and saved values ------------------------------------------------------------------


def test_sec21_purged_identifiers_are_remembered_by_every_store(
    stores: tuple[Store, Callable[[], Store]], tmp_path: Path
) -> None:
    store, other = stores
    assert store.find_purge("jean.martin@example.org") is None
    record = PurgeRecord(
        "jean.martin@example.org", "jean.martin", "uid=jean.martin,ou=people",
        tmp_path / "a.ldif", T0, external_id="P4711",
    )  # fmt: skip
    store.record_purge(record)
    elsewhere = other()
    for key in ("JEAN.MARTIN", "jean.martin@example.org", "p4711"):
        found = elsewhere.find_purge(key)
        assert found is not None and found.account == record.account, key
        assert found.restored_at is None and found.archive == tmp_path / "a.ldif"
    assert elsewhere.find_purge("jean") is None
    assert elsewhere.find_purge("jean.martin*") is None
    elsewhere.mark_restored("jean.martin@example.org", T0 + HOUR)
    found = store.find_purge("jean.martin")
    assert found is not None and found.restored_at == T0 + HOUR
    store.record_purge(dataclasses.replace(record, purged_at=T0 + 2 * HOUR))  # purged again
    found = store.find_purge("jean.martin")
    assert found is not None and found.restored_at is None and found.purged_at == T0 + 2 * HOUR


def test_sec30_a_purge_keeps_the_sha256_of_its_archive(store: Store, tmp_path: Path) -> None:
    digest = "ab" * 32
    record = PurgeRecord("a@x.org", "a", "uid=a,ou=people", tmp_path / "a.ldif", T0)
    store.record_purge(dataclasses.replace(record, archive_sha256=digest))
    found = store.find_purge("a")
    assert found is not None and found.archive_sha256 == digest


def test_saved_values_round_trip_and_are_replaced(
    stores: tuple[Store, Callable[[], Store]],
) -> None:
    store, other = stores
    assert store.saved_values("a@x.org", "affiliations") is None
    store.save_values("a@x.org", {"affiliations": ["member", "staff"], "primary": []}, T0)
    assert other().saved_values("a@x.org", "affiliations") == ["member", "staff"]
    assert store.saved_values("a@x.org", "primary") == []
    store.save_values("a@x.org", {"affiliations": ["affiliate"]}, T0 + HOUR)
    assert other().saved_values("a@x.org", "affiliations") == ["affiliate"]
    assert store.saved_values("b@x.org", "affiliations") is None


# --- job locks --------------------------------------------------------------------------------


def test_job_lock_held_elsewhere_is_a_temporary_error(
    stores: tuple[Store, Callable[[], Store]],
) -> None:
    store, other = stores
    elsewhere = other()
    with store.job_lock("sweep"):
        with pytest.raises(TemporaryError, match=r"another sweep is running \(.+\); try again later") as caught, elsewhere.job_lock("sweep"):  # fmt: skip
            pass
        assert caught.value.exit_code == ExitCode.TEMPORARY_FAILURE
        with elsewhere.job_lock("create"):  # another job
            pass
    with elsewhere.job_lock("sweep"):
        pass


def test_job_lock_is_given_back_when_the_job_fails(store: Store) -> None:
    with pytest.raises(RuntimeError), store.job_lock("sweep"):
        raise RuntimeError("the job failed")
    with store.job_lock("sweep"):
        pass


def test_job_lock_names_are_checked(store: Store) -> None:
    for bad in ("../escape", "", "Sweep", "a/b", "a,b"):
        with pytest.raises(InvalidInputError), store.job_lock(bad):
            pass


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(account=TEXT, uid=TEXT, external_id=st.none() | TEXT)
def test_any_identifier_finds_its_tombstone(
    store: Store, tmp_path: Path, account: str, uid: str, external_id: str | None
) -> None:
    record = PurgeRecord(account, uid, f"uid={uid}", tmp_path / "x.ldif", T0, None, external_id)
    store.record_purge(record)
    for key in (account, uid, external_id):
        if key is not None:
            upper = key.upper()
            found = store.find_purge(upper if upper.lower() == key.lower() else key)
            assert found is not None and key.lower() in {
                found.account.lower(),
                found.uid.lower(),
                (found.external_id or "").lower(),
            }
    assert store.find_purge(uid + "\u2603") is None


def test_issuing_no_token_does_nothing(store: Store) -> None:
    assert store.issue_tokens([]) == []


@pytest.mark.parametrize(("account", "uid"), [("x  y@x.org", "x y@x.org"), (" a", "a")])
def test_identifiers_the_directory_compares_as_one_make_one_tombstone(
    store: Store, tmp_path: Path, account: str, uid: str
) -> None:
    store.record_purge(PurgeRecord(account, uid, "uid=a", tmp_path / "a.ldif", T0))
    for key in (account, uid):
        found = store.find_purge(key)
        assert found is not None and found.account == account


def test_tokens_issued_in_the_hour_a_clock_goes_back_keep_their_own_instants(
    store: Store,
) -> None:
    # 02:30 twice in Paris on 2026-10-25: equal as datetimes, an hour apart as instants.
    paris = ZoneInfo("Europe/Paris")
    first = datetime(2026, 10, 25, 2, 30, tzinfo=paris)
    second = first.replace(fold=1)
    store.issue_tokens([
        NewToken("a@x.org", "reset", hashlib.sha256(b"1").hexdigest(), first, first + HOUR, {}),
        NewToken("b@x.org", "reset", hashlib.sha256(b"2").hexdigest(), second, second + HOUR, {}),
    ])  # fmt: skip
    stored = {row["account"]: row["issued_at"] for row in store.dump()["tokens"]}
    assert stored == {"a@x.org": to_stored_time(first), "b@x.org": to_stored_time(second)}
    assert stored["a@x.org"] != stored["b@x.org"]
