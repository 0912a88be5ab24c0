"""``find_purges``: the purges of a whole batch of keys in one look-up, on both stores, with
the very answers ``find_purge`` gives key by key (latest purge, restored or not, by
identifier, uid or external id, case aside)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from days import TODAY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_state_support import branch, directory_store

from umacct.intake import read_intake
from umacct.localdir import LocalDirectory
from umacct.services.create import create_people
from umacct.services.runtime import Runtime
from umacct.state.directory_store import PURGE_SEARCH_CHUNK, DirectoryStore
from umacct.store import PURGE_KEYS_PER_QUERY, PurgeRecord, SQLiteStore, Store

__all__ = ["branch", "directory_store"]

T0 = datetime(2027, 6, 30, 8, 0, tzinfo=UTC)
# Few letters, so that keys collide (case, accents, spaces, a dot, letters that fold oddly).
KEY = st.text(alphabet="aAbBéÉ .İßK", min_size=0, max_size=3)
NAME = st.text(alphabet="aAbBéÉ .İßK", min_size=1, max_size=3)
PURGE = st.tuples(NAME, NAME, st.none() | KEY, st.integers(0, 2), st.booleans())


@pytest.fixture(params=["sqlite", "directory"])
def store(request: pytest.FixtureRequest, tmp_path: Path, slapd: LocalDirectory) -> Iterator[Store]:
    if request.param == "sqlite":
        opened = SQLiteStore(tmp_path / "data")
        yield opened
        opened.close()
    else:
        yield request.getfixturevalue("directory_store")


def _record(store: Store, purge: tuple[str, str, str | None, int, bool], folder: Path) -> None:
    account, uid, external_id, hours, restored = purge
    at = T0 + timedelta(hours=hours)  # equal instants: the tie is broken as find_purge does
    store.record_purge(
        PurgeRecord(account, uid, f"uid={uid}", folder / "x.ldif", at, external_id=external_id)
    )
    if restored:
        store.mark_restored(account, at + timedelta(minutes=5))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(purges=st.lists(PURGE, max_size=6), keys=st.lists(KEY, max_size=12))
def test_find_purges_answers_as_find_purge_key_by_key(
    store: Store, tmp_path: Path, purges: list[tuple[str, str, str | None, int, bool]],
    keys: list[str],
) -> None:  # fmt: skip
    for purge in purges:
        _record(store, purge, tmp_path)
    asked = keys + [key.upper() for key in keys] + [p[0] for p in purges] + [p[1] for p in purges]
    asked += [p[2] for p in purges if p[2] is not None]
    assert store.find_purges(asked) == {key: store.find_purge(key) for key in asked}


def test_find_purges_of_more_keys_than_one_look_up_takes(store: Store, tmp_path: Path) -> None:
    chunk = PURGE_SEARCH_CHUNK if isinstance(store, DirectoryStore) else PURGE_KEYS_PER_QUERY
    recorded = range(0, 2 * chunk + 5, 7)
    for n in recorded:
        _record(store, (f"p{n}@x.org", f"p{n}", f"E{n}" if n % 2 else None, n % 3, False), tmp_path)
    keys = [f"P{n}" for n in range(2 * chunk + 5)] + [f"e{n}" for n in range(2 * chunk + 5)]
    found = store.find_purges(keys)
    assert found == {key: store.find_purge(key) for key in keys}
    assert sum(record is not None for record in found.values()) == len(recorded) + sum(
        n % 2 for n in recorded
    )
    assert store.find_purges([]) == {}


# --- the intake's use of it --------------------------------------------------------------------


class _PurgedMeanwhile:
    """A real store, with a purge recorded by "another run" just after the batch's snapshot."""

    def __init__(self, store: Store, purge: PurgeRecord) -> None:
        self.store, self.purge, self.snapshots = store, purge, 0

    def find_purges(self, keys: Iterable[str]) -> dict[str, PurgeRecord | None]:
        found = self.store.find_purges(keys)
        self.snapshots += 1
        if self.snapshots == 1:
            self.store.record_purge(self.purge)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


@pytest.mark.usefixtures("directory_clean")
def test_sec21_an_identifier_purged_after_the_batch_snapshot_is_not_handed_out(
    on: Callable[[date], Runtime], tmp_path: Path
) -> None:
    runtime = on(TODAY)
    people = runtime.config.directory.people_dn
    gone = PurgeRecord("jean.martin@etu.umontpellier.fr", "jean.martin",
                       f"uid=jean.martin,{people}", tmp_path / "j.ldif", T0)  # fmt: skip
    meanwhile = _PurgedMeanwhile(runtime.store, gone)
    runtime._store = meanwhile  # type: ignore[assignment]
    text = (
        "given_name;surname;profile;personal_email\n"
        "Jean;Martin;etudiant;jm@example.net\nZoé;Brun;etudiant;zb@example.net\n"
    )
    rows = read_intake(text.encode(), profiles=runtime.config.profiles).rows
    results = list(create_people(runtime, rows, send_mail=False))
    assert [getattr(result, "uid", None) for result in results] == ["jean.martin2", "zoe.brun"]
    assert meanwhile.snapshots == 2  # the batch's snapshot, then the check of the uids chosen
    assert runtime.directory.read(f"uid=jean.martin,{people}", ["uid"]) is None
