"""An intake's batches overlap: a batch is planned and sent while the server adds the one before.

The overlap must never let a row miss the person a batch still unanswered is adding: that
row would create the same person twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from days import TODAY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from umacct.directory.adapter import AddResult
from umacct.intake import IntakeRow, read_intake
from umacct.services import create
from umacct.services import runtime as runtime_module
from umacct.services.create import CreateOutcome, create_people
from umacct.services.create_batches import LAST_BATCH, next_batch_size
from umacct.services.runtime import Runtime

pytestmark = pytest.mark.usefixtures("directory_clean")
HEADER = "given_name;surname;profile;personal_email;end_of_activity;external_id;arrival\n"
SURNAMES = ["Martin", "Dubois", "Lefèvre", "Noël", "Hébert", "Le Goff", "Da Silva", "Brun"]
_runs = itertools.count()


class _LoggedAdds:
    """The adds of one batch, noting when its answers start to be read."""

    def __init__(self, adds: Any, number: int, events: list[str]) -> None:
        self._adds, self._number, self._events = adds, number, events
        self._read = False

    def __iter__(self) -> Iterator[AddResult]:
        return self

    def __next__(self) -> AddResult:
        if not self._read:
            self._read = True
            self._events.append(f"read {self._number}")
        result: AddResult = next(self._adds)
        return result

    def close(self) -> None:
        self._adds.close()


def _logging_adds(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    events: list[str] = []
    send_adds = runtime.directory.send_adds

    def logged(*args: Any, **options: Any) -> _LoggedAdds:
        number = sum(event.startswith("send") for event in events) + 1
        events.append(f"send {number}")
        return _LoggedAdds(send_adds(*args, **options), number, events)

    monkeypatch.setattr(runtime.directory, "send_adds", logged)
    return events


def _rows(runtime: Runtime, count: int) -> list[IntakeRow]:
    text = HEADER + "".join(
        f"Élise;{SURNAMES[n % 8]}{n};etudiant;overlap{n}@example.net;;O{n};\n" for n in range(count)
    )
    return read_intake(text.encode(), profiles=runtime.config.profiles).rows


def _in_batches_of_4(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> tuple[Runtime, list[str]]:
    """A runtime whose intakes go by 4 rows, and the log of its batches' sends and reads."""
    monkeypatch.setattr(create, "BATCH_SIZE", 4)
    runtime = on(TODAY)
    return runtime, _logging_adds(runtime, monkeypatch)


def test_a_batch_is_sent_before_the_answers_of_the_one_before_are_read(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, events = _in_batches_of_4(on, monkeypatch)
    results = list(create_people(runtime, _rows(runtime, 10), send_mail=False))
    assert [r.action for r in results if isinstance(r, CreateOutcome)] == ["created"] * 10
    # The server always has a batch to add while the next is planned and sent.
    assert events == ["send 1", "send 2", "read 1", "send 3", "read 2", "read 3"]


def test_a_batch_is_told_once_two_more_were_confirmed(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its results wait for its mail: the mail process gets two batches' time for it."""
    runtime, events = _in_batches_of_4(on, monkeypatch)
    results = create_people(runtime, _rows(runtime, 14), send_mail=False)
    next(results)
    assert events == ["send 1", "send 2", "read 1", "send 3", "read 2", "send 4", "read 3"]
    assert len(list(results)) == 13


def test_the_mail_process_starts_before_the_first_batch_of_new_people(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its start-up overlaps the first batches, instead of holding up their mail."""
    monkeypatch.setattr(create, "WORKER_BATCH", 3)
    runtime, events = _in_batches_of_4(on, monkeypatch)
    start_worker = runtime_module._mail_worker

    def logged(*args: Any) -> Any:
        events.append("mail process")
        return start_worker(*args)

    monkeypatch.setattr(runtime_module, "_mail_worker", logged)
    assert len(list(create_people(runtime, _rows(runtime, 6)))) == 6
    assert events[:2] == ["mail process", "send 1"]
    events.clear()
    rerun = on(TODAY)
    again = list(create_people(rerun, _rows(rerun, 6)))  # the same people: nobody new
    assert {r.action for r in again if isinstance(r, CreateOutcome)} == {"exists"}
    assert events == []


@pytest.mark.parametrize("batch_size", [2, 4])
def test_a_person_on_two_rows_gets_one_account_in_one_batch_or_two(
    on: Callable[[date], Runtime], monkeypatch: pytest.MonkeyPatch, batch_size: int
) -> None:
    """The second row waits for the add of the first: in the batch after, or cut from it."""
    monkeypatch.setattr(create, "BATCH_SIZE", batch_size)
    runtime = on(TODAY)
    events = _logging_adds(runtime, monkeypatch)
    text = HEADER + (
        "Jean;Martin;titulaire;jean@example.net;;J1;\n"
        "Zoé;Brun;titulaire;zoe@example.net;;;\n"
        "Jean;Martin;vacataire;jean@example.net;;;\n"  # his address, another profile
        "Zoé;Brun;vacataire;zoe@example.net;;;\n"
    )
    rows = read_intake(text.encode(), profiles=runtime.config.profiles).rows
    results = list(create_people(runtime, rows, send_mail=False))
    outcomes = [r for r in results if isinstance(r, CreateOutcome)]
    assert [r.action for r in outcomes] == ["created", "created", "profile-added", "profile-added"]
    assert outcomes[2].account == outcomes[0].account
    assert outcomes[3].account == outcomes[1].account
    assert events == ["send 1", "read 1"]  # the rows after added nobody


ROWS = st.lists(
    # A person (of 3) in a profile (of 3 with the same domain), first found by external id.
    st.tuples(st.integers(0, 2), st.sampled_from(["titulaire", "contractuel", "vacataire"])),
    min_size=1,
    max_size=9,
    unique=True,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ROWS, st.integers(1, 4), st.booleans())
def test_a_person_on_several_rows_gets_one_account_whatever_the_batches(
    on: Callable[[date], Runtime],
    monkeypatch: pytest.MonkeyPatch,
    rows: list[tuple[int, str]],
    batch_size: int,
    first_by_id: bool,
) -> None:
    monkeypatch.setattr(create, "BATCH_SIZE", batch_size)
    runtime = on(TODAY)
    run = next(_runs)
    lines, seen = [], set()
    for person, profile in rows:
        external = f"R{run}P{person}" if first_by_id and person not in seen else ""
        seen.add(person)
        lines.append(
            f"Anaïs;{SURNAMES[person]}{run};{profile};r{run}p{person}@example.net;;{external};\n"
        )
    read = read_intake((HEADER + "".join(lines)).encode(), profiles=runtime.config.profiles)
    results = list(create_people(runtime, read.rows, send_mail=False))
    accounts: dict[int, set[str]] = {}
    for (person, _), result in zip(rows, results, strict=True):
        assert isinstance(result, CreateOutcome), result
        accounts.setdefault(person, set()).add(result.account)
    assert all(len(found) == 1 for found in accounts.values()), accounts
    actions = [r.action for r in results if isinstance(r, CreateOutcome)]
    assert actions.count("created") == len(accounts)
    assert actions.count("profile-added") == len(rows) - len(accounts)


@given(st.integers(1, 10_000), st.integers(1, 400))
def test_the_batches_cover_every_row_in_order_and_end_small(count: int, batch_size: int) -> None:
    sizes, left = [], count
    while left:
        size = min(left, next_batch_size(left, batch_size))
        sizes.append(size)
        left -= size
    assert sum(sizes) == count
    assert all(0 < size <= batch_size for size in sizes)
    assert sizes[-1] <= max(LAST_BATCH, 1) or sizes == [count]
    assert len(sizes) <= -(-count // batch_size) + max(batch_size // LAST_BATCH, 1).bit_length() + 1
