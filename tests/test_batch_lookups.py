"""The intake's and the sweep's directory work per batch, not per account (issue 18).

The look-ups a run makes beside the writes are one search per batch of rows (an OR filter of
the batch's values), with answers identical to the look-up of one row at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from days import TODAY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from people import add_person, outbox_mails

from umacct.cli.intake_report import warnings_for, warnings_for_all
from umacct.directory import Directory, Entry
from umacct.directory.escape import AnyEqual
from umacct.errors import UnavailableError
from umacct.identifiers import PersonName
from umacct.intake import read_intake
from umacct.services import create_lookup
from umacct.services.create import CreateOutcome, create_people
from umacct.services.create_lookup import HOMONYMS_PER_SEARCH, NamesWanted, homonyms_of
from umacct.services.lifecycle import DEPARTURE_NOTICE, suspend
from umacct.services.runtime import Runtime
from umacct.services.search import homonyms
from umacct.services.sweep import SWEEP_BATCH, SweepSummary, sweep
from umacct.store import NewToken, SQLiteStore

pytestmark = pytest.mark.usefixtures("directory_clean")


class CountingDirectory:
    """The real directory, counting the searches made through it (everything else passes)."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory
        self.searches: list[str] = []

    def search(
        self, base: str, filter: str | AnyEqual, *args: Any, **options: Any
    ) -> Iterator[Entry]:
        self.searches.append(str(filter))
        return self._directory.search(base, filter, *args, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._directory, name)


def counted(runtime: Runtime) -> CountingDirectory:
    """Count the searches ``runtime`` makes from now on."""
    spy = CountingDirectory(runtime.directory)
    runtime._directory = spy  # type: ignore[assignment]
    return spy


FULLWIDTH = {code: code + 0xFEE0 for code in range(0x21, 0x7F)}
"""ASCII to the compatibility forms NFKC turns back into it."""

NAMES = [
    ("Jean", "Martin"), ("JEAN", "martin"), ("Zoé", "Lefèvre"), ("Zoe", "Lefevre"),
    ("Anne-Lætitia", "d'Étienne"), ("Jean", "Dupont"), ("Хлоя", "Иванова"), ("Loïc", "Le Goff"),
    # Where Python's case folding and the directory's caseIgnoreMatch part ways: ß and ss,
    # the dotted capital I, the final sigma, compatibility forms; spaces the directory drops.
    ("Hans", "Straße"), ("Hans", "STRASSE"), ("İlker", "Yilmaz"), ("ilker", "YILMAZ"),
    ("Loïc", "  Le   Goff "), ("Loic", "Le\tGoff"), ("Jean".translate(FULLWIDTH), "Martin".translate(FULLWIDTH)), ("ﬁona", "Le Goff"),
    ("Fiona", "LE GOFF"),
]  # fmt: skip


@pytest.mark.parametrize("read_all", [True, False], ids=["read-all", "or-searches"])
def test_homonyms_of_many_people_answer_as_one_at_a_time(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch, read_all: bool
) -> None:
    if not read_all:  # the directory holds more accounts than 0 a person: OR searches
        monkeypatch.setattr(create_lookup, "READ_ALL_PER_PERSON", 0)
    runtime = on(TODAY)
    add_person(runtime, "jean.martin")
    add_person(runtime, "jean.martin2", extra={"sn": ["MARTIN"], "givenName": ["jean"]})
    add_person(runtime, "zoe.lefevre", extra={"sn": ["Lefèvre"], "givenName": ["Zoé"]})
    # Same names under another identifier: found by sn and givenName only.
    add_person(runtime, "zl", extra={"sn": ["Lefevre"], "givenName": ["Zoe"]})
    add_person(runtime, "jean.martinez", extra={"sn": ["Martinez"], "givenName": ["Jean"]})
    add_person(runtime, "loic.le-goff", extra={"sn": ["Le Goff"], "givenName": ["Loïc"]})
    add_person(runtime, "hs", extra={"sn": ["Strasse"], "givenName": ["Hans"]})
    add_person(runtime, "iy", extra={"sn": ["Yilmaz"], "givenName": ["İlker"]})
    add_person(runtime, "fl", extra={"sn": ["Le Goff"], "givenName": ["Fiona"]})
    add_person(runtime, "fl2", extra={"sn": ["le goff"], "givenName": ["ﬁona"]})
    wanted = [
        NamesWanted(given, surname, besides)
        for given, surname in NAMES
        for besides in ("jean.martin2@umontpellier.fr", "nobody@umontpellier.fr")
    ]
    one_by_one = [
        homonyms(runtime, person.given_name, person.surname, besides=person.besides)
        for person in wanted
    ]
    spy = counted(runtime)
    assert homonyms_of(runtime, wanted) == one_by_one
    # Reading every account, or the read stopped at the first entry and one OR search; then
    # a base search per account whose names only the directory can compare.
    confirmations = [found for found in spy.searches if found.startswith("(&(sn=")]
    assert len(spy.searches) - len(confirmations) == (1 if read_all else 2)
    assert len(confirmations) <= 12  # each account and names asked once
    assert one_by_one[16] == [] and one_by_one[18] == ["hs@umontpellier.fr"]  # ß is not ss
    assert one_by_one[0] == ["jean.martin@umontpellier.fr"]
    # The directory's equality keeps accents: zl is found for the names it holds as written.
    assert one_by_one[5] == ["zoe.lefevre@umontpellier.fr"]
    assert one_by_one[7] == ["zl@umontpellier.fr", "zoe.lefevre@umontpellier.fr"]
    assert one_by_one[12] == []  # names that make no identifier


SPELLINGS = st.lists(
    st.sampled_from(["a", "A", "e", "é", "É", "e\u0301", "ß", "ss", "SS", "İ", "i", "I", "\u0131",
                     "ﬁ", "fi", "\uff25", " ", "  ", "-", "'", "\t", "ς", "\u03c3", "Σ"]),
    min_size=1, max_size=3,
).map("".join)  # fmt: skip


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.sampled_from(["Hans", "HANS", " hans", "Hans\t"]), SPELLINGS),
                min_size=1, max_size=6))  # fmt: skip
def test_homonyms_of_agree_with_the_directory_on_any_spelling(
    homonym_directory: Runtime, spellings: list[tuple[str, str]]
) -> None:
    wanted = [NamesWanted(given, f"Le{surname}", "nobody@x") for given, surname in spellings]
    one_by_one = [
        homonyms(homonym_directory, person.given_name, person.surname, besides=person.besides)
        for person in wanted
    ]
    assert homonyms_of(homonym_directory, wanted) == one_by_one


@pytest.fixture
def homonym_directory(on: Callable[[date], Runtime]) -> Runtime:
    """A directory whose accounts' names differ by the spellings case folding confuses."""
    runtime = on(TODAY)
    names = ["ss", "ß", "SS", "İ", "i", "I", "\u0131", "ﬁ", "fi", "é", "e\u0301", "E", "\u03c3",
             "ς", " a", "a", "a  b", "-a", "'a"]  # fmt: skip
    for number, name in enumerate(names):
        add_person(runtime, f"h{number}", extra={"sn": [f"Le{name}"], "givenName": ["Hans"]})
    return runtime


def test_homonyms_of_a_large_intake_take_one_search_per_batch(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(create_lookup, "READ_ALL_PER_PERSON", 0)
    runtime = on(TODAY)
    add_person(runtime, "jean.martin")
    wanted = [NamesWanted("Jean", "Martin", f"j{n}@x") for n in range(HOMONYMS_PER_SEARCH + 1)]
    spy = counted(runtime)
    found = homonyms_of(runtime, wanted)
    assert found == [["jean.martin@umontpellier.fr"]] * len(wanted)
    assert spy.searches[0] == "(supannCodePopulation=*)"  # stopped at its first entry
    assert len(spy.searches) == 3


def test_homonyms_read_every_account_only_in_a_directory_small_for_the_intake(
    on: Callable[[date], Runtime],
) -> None:
    """At most 10 accounts a wanted person are read; beyond, the read stops (abandoned)."""
    runtime = on(TODAY)
    add_person(runtime, "jean.martin")
    for n in range(2, 2 + create_lookup.READ_ALL_PER_PERSON):
        add_person(runtime, f"other{n}", extra={"sn": [f"Other{n}"], "givenName": ["Ann"]})
    wanted = [NamesWanted("Jean", "Martin", "j@x")]
    spy = counted(runtime)
    assert homonyms_of(runtime, wanted) == [["jean.martin@umontpellier.fr"]]
    assert len(spy.searches) == 2  # 11 accounts for one person: read stopped, one OR search
    spy.searches.clear()
    assert homonyms_of(runtime, wanted * 2) == [["jean.martin@umontpellier.fr"]] * 2
    assert spy.searches == ["(supannCodePopulation=*)"]  # 11 accounts for two: read them all


def _intake(rows: Sequence[tuple[str, str, str]]) -> bytes:
    lines = ["given_name;surname;profile;personal_email"]
    lines += [f"{given};{surname};vacataire;{mail}" for given, surname, mail in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def test_intake_warnings_take_one_search_for_the_whole_report(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    add_person(runtime, "jean.martin")
    rows = [("Jean", "Martin", f"jm{n}@example.net") for n in range(5)]
    rows += [("Élise", f"Nom{n}", f"e{n}@example.net") for n in range(40)]
    intake = read_intake(_intake(rows), profiles=runtime.config.profiles)
    results = [
        item for item in create_people(runtime, intake.rows, send_mail=False)
        if isinstance(item, CreateOutcome)
    ]  # fmt: skip
    names: dict[int, PersonName] = {row.line: row.name for row in intake.rows}
    named = [(result, names[result.line or 0]) for result in results]
    one_by_one = [
        warning for result, name in named for warning in warnings_for(runtime, result, name)
    ]
    spy = counted(runtime)
    together = warnings_for_all(runtime, named)
    assert together == one_by_one
    assert len(spy.searches) == 1
    accounts = [warning.account for warning in together]
    assert accounts == [f"jean.martin{n}@umontpellier.fr" for n in range(2, 7)]
    assert "jean.martin@umontpellier.fr" in together[0].warning


# --- the intake's look-ups: every row before the first add -------------------------------------


class EventsDirectory(CountingDirectory):
    """The real directory, noting the order of searches and batches of adds."""

    def __init__(self, directory: Directory) -> None:
        super().__init__(directory)
        self.events: list[str] = []

    def search(
        self, base: str, filter: str | AnyEqual, *args: Any, **options: Any
    ) -> Iterator[Entry]:
        self.events.append("search")
        return super().search(base, filter, *args, **options)

    def send_adds(self, *args: Any, **options: Any) -> Any:
        self.events.append("add")
        return self._directory.send_adds(*args, **options)


def _filler(count: int) -> list[tuple[str, str, str]]:
    return [("Élise", f"Nom{n}", f"e{n}@example.net") for n in range(count)]


def test_an_intake_looks_every_row_up_before_its_first_add(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    add_person(runtime, "elise.nom3")
    intake = read_intake(_intake(_filler(450)), profiles=runtime.config.profiles)
    spy = EventsDirectory(runtime.directory)
    runtime._directory = spy  # type: ignore[assignment]
    results = list(create_people(runtime, intake.rows, send_mail=False))
    assert [r.action for r in results if isinstance(r, CreateOutcome)] == ["created"] * 450
    first_add = spy.events.index("add")
    assert spy.events.count("add") == 6  # batches of 200, 125, 63, 31, 25, 6
    assert "search" not in spy.events[first_add:]  # no look-up reads what the run added
    assert spy.events[:first_add].count("search") <= 3 * 3  # three per 200 rows at most
    assert results[3].account == "elise.nom32@umontpellier.fr"  # the taken one was seen


def test_the_same_person_in_two_batches_gets_one_account(on: Callable[[date], Runtime]) -> None:
    runtime = on(TODAY)
    rows = [
        ("Léa", "Dubois", "lea@example.net"),
        *_filler(250),
        ("Léa", "Dubois", "lea@example.net"),
    ]
    data = [line + ";" for line in _intake(rows).decode().splitlines()]
    data[0] += "external_id"
    data[1] += "E1"  # the first row has an external id, the last one none
    intake = read_intake(("\n".join(data) + "\n").encode(), profiles=runtime.config.profiles)
    assert len(intake.rows) == len(rows)
    results = [r for r in create_people(runtime, intake.rows) if isinstance(r, CreateOutcome)]
    assert (results[0].action, results[-1].action) == ("created", "exists")
    assert results[-1].account == results[0].account == "lea.dubois@umontpellier.fr"


def test_an_account_a_row_changed_is_seen_changed_by_the_later_rows(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    back = add_person(
        runtime, "rui.costa", end_of_activity=TODAY - timedelta(days=40),
        extra={"supannEmpId": ["P7"], "sn": ["Costa"], "givenName": ["Rui"]},
    )  # fmt: skip
    suspend(runtime, back.identifier)
    # The first row reinstates him with a new personal address; a later one (no id) gives
    # that address: the same person, already back, not a second account.
    rows = [("Rui", "Costa", "rui@example.org"), *_filler(250), ("Rui", "Costa", "rui@example.org")]
    data = [line + ";" for line in _intake(rows).decode().splitlines()]
    data[0] += "external_id"
    data[1] += "P7"
    intake = read_intake(("\n".join(data) + "\n").encode(), profiles=runtime.config.profiles)
    results = [r for r in create_people(runtime, intake.rows) if isinstance(r, CreateOutcome)]
    assert (results[0].action, results[0].account) == ("reinstated", back.identifier)
    assert (results[-1].action, results[-1].account) == ("exists", back.identifier)


# --- the sweep's state writes, per batch of accounts ------------------------------------------


def test_a_store_batch_commits_once_at_its_end_and_each_write_stays_whole(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    with SQLiteStore(tmp_path) as store, SQLiteStore(tmp_path) as other:
        with store.batch():
            assert store.record_notice("a@x", "departure", "k1", now)
            with store.batch():  # joins the outer batch
                store.save_values("a@x", {"affiliations": ["staff"]}, now)
            assert store.has_notice("a@x", "departure", "k1")  # the batch sees its writes
            assert not other.has_notice("a@x", "departure", "k1")  # others, not yet
            # The second token has the first one's hash: the write fails half-way through.
            twins = [token("b@x", "same-hash", now), token("c@x", "same-hash", now)]
            with pytest.raises(UnavailableError):
                store.issue_tokens(twins)
            assert store.find_token("same-hash") is None  # the failed write left nothing
        assert other.has_notice("a@x", "departure", "k1")
        assert other.saved_values("a@x", "affiliations") == ["staff"]
        assert other.find_token("same-hash") is None


def test_a_one_statement_write_that_fails_half_way_leaves_nothing_in_a_batch(
    tmp_path: Path,
) -> None:
    # Written without a savepoint (one statement): SQLite undoes the statement by itself.
    now = datetime.now(UTC)
    with SQLiteStore(tmp_path) as store, SQLiteStore(tmp_path) as other:
        with store.batch():
            store.save_values("a@x", {"kept": ["1"]}, now)
            broken: dict[str | None, list[str]] = {"first": ["2"], None: ["3"]}  # NOT NULL
            with pytest.raises(UnavailableError):
                store.save_values("b@x", broken, now)  # type: ignore[arg-type]
            assert store.saved_values("b@x", "first") is None  # its first row undone too
            assert store.record_notice("b@x", "departure", "k", now)
        assert other.saved_values("a@x", "kept") == ["1"]
        assert other.saved_values("b@x", "first") is None
        assert other.has_notice("b@x", "departure", "k")


def token(account: str, token_hash: str, now: datetime) -> NewToken:
    """A reset token to record."""
    return NewToken(account, "reset", token_hash, now, now + timedelta(hours=1), {})


def test_the_sweep_reports_a_batch_once_its_mail_and_state_are_on_disk(
    on: Callable[[date], Runtime],
) -> None:
    first = on(TODAY)
    people = [
        add_person(first, f"due.person{n}", end_of_activity=TODAY - timedelta(days=1))
        for n in range(SWEEP_BATCH + 5)
    ]
    runtime = on(TODAY)
    summary = SweepSummary(runtime.today(), dry_run=False)
    results = sweep(runtime, summary)
    head = next(results)
    assert head.action == "suspend"
    # The whole first batch is done, its mail in the outbox and its notices committed (the
    # second too: the first one's mail went to the mail process, and was waited for with it).
    with SQLiteStore(Path(runtime.config.paths.data_dir)) as other:
        told = {p.identifier for p in people if other.last_notice(p.identifier, DEPARTURE_NOTICE)}
    mailed = {str(message["To"]) for message in outbox_mails(runtime)}
    assert {p.identifier for p in people[:SWEEP_BATCH]} <= told
    assert head.account in told and told <= mailed  # a notice only for mail on disk
    rest = list(results)
    assert len(rest) == len(people) - 1 and summary.errors == []
    assert len(outbox_mails(runtime)) == len(people)


def test_an_account_deleted_before_its_names_are_confirmed_is_no_homonym(
    on: Callable[[date], Runtime],
) -> None:
    runtime = on(TODAY)
    person = add_person(runtime, "hs", extra={"sn": ["Strasse"], "givenName": ["Hans"]})
    directory = runtime.directory

    class DeletingFirst(CountingDirectory):
        def search(
            self, base: str, filter: str | AnyEqual, *args: Any, **options: Any
        ) -> Iterator[Entry]:
            if options.get("scope") == "base":  # the confirmation: the account goes first
                directory.delete(base)
            return super().search(base, filter, *args, **options)

    runtime._directory = DeletingFirst(directory)  # type: ignore[assignment]
    assert homonyms_of(runtime, [NamesWanted("Hans", "STRAßE", "nobody@x")]) == [[]]
    assert directory.read(person.dn, ["uid"]) is None
