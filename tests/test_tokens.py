"""Tokens: entropy, hash-only storage, single use, expiry, rate counting (security.md 1-7)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from umacct.clock import FixedClock
from umacct.errors import ExitCode, InvalidInputError
from umacct.store import SQLiteStore
from umacct.tokens import IssuedToken, TokenPurpose, Tokens, hash_token

T0 = datetime(2027, 6, 30, 8, 0, tzinfo=UTC)
DAY = timedelta(hours=24)
ALICE = "alice.martin@univ.example"
NOT_VALID = "this link is not valid"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path) as opened:
        yield opened


def tokens_at(store: SQLiteStore, instant: datetime) -> Tokens:
    return Tokens(store, FixedClock(instant))


def test_sec01_tokens_come_from_secrets_with_256_bits(store: SQLiteStore) -> None:
    issued = [tokens_at(store, T0).issue(ALICE, TokenPurpose.RESET, DAY) for _ in range(200)]
    for item in issued:
        raw = base64.urlsafe_b64decode(item.token + "=")
        assert len(raw) == 32
        assert len(item.token) == 43
    assert len({item.token for item in issued}) == len(issued)


def test_sec02_tokens_stored_only_as_hash(store: SQLiteStore) -> None:
    issued = tokens_at(store, T0).issue(
        ALICE, TokenPurpose.CONFIRM, DAY, {"address": "alice@perso.example"}
    )
    dump = json.dumps(store.dump(), default=str)
    assert issued.token not in dump
    assert hash_token(issued.token) in dump
    for path in store.data_dir.iterdir():
        assert issued.token.encode() not in path.read_bytes(), path


def test_sec06_issued_token_repr_does_not_show_the_token(store: SQLiteStore) -> None:
    issued = tokens_at(store, T0).issue(ALICE, TokenPurpose.ACTIVATION, DAY)
    assert issued.token not in repr(issued)
    assert issued.token not in str(issued)
    assert "token_id" in repr(issued)


def test_sec03_token_is_single_use(store: SQLiteStore) -> None:
    tokens = tokens_at(store, T0)
    issued = tokens.issue(ALICE, TokenPurpose.ACTIVATION, DAY, {"k": "v"})
    record = tokens.redeem(issued.token, TokenPurpose.ACTIVATION)
    assert record.token_id == issued.token_id
    assert record.account == ALICE
    assert record.used_at == T0
    assert dict(record.payload) == {"k": "v"}
    for attempt in (tokens.redeem, tokens.check):
        with pytest.raises(InvalidInputError, match=NOT_VALID):
            attempt(issued.token, TokenPurpose.ACTIVATION)


def test_sec03_check_does_not_consume(store: SQLiteStore) -> None:
    tokens = tokens_at(store, T0)
    issued = tokens.issue(ALICE, TokenPurpose.RESET, timedelta(hours=1))
    assert tokens.check(issued.token, TokenPurpose.RESET).used_at is None
    assert tokens.check(issued.token, TokenPurpose.RESET).token_id == issued.token_id
    assert tokens.redeem(issued.token, TokenPurpose.RESET).used_at == T0


def test_sec03_reissue_cancels_older_of_same_purpose(store: SQLiteStore) -> None:
    first = tokens_at(store, T0).issue(ALICE, TokenPurpose.RESET, DAY)
    other_purpose = tokens_at(store, T0).issue(ALICE, TokenPurpose.CONFIRM, DAY)
    other_account = tokens_at(store, T0).issue("bob@univ.example", TokenPurpose.RESET, DAY)
    tokens = tokens_at(store, T0 + timedelta(minutes=5))
    second = tokens.issue(ALICE, TokenPurpose.RESET, DAY)
    with pytest.raises(InvalidInputError, match=NOT_VALID):
        tokens.check(first.token, TokenPurpose.RESET)
    assert tokens.check(second.token, TokenPurpose.RESET).token_id == second.token_id
    assert tokens.check(other_purpose.token, TokenPurpose.CONFIRM)
    assert tokens.check(other_account.token, TokenPurpose.RESET)
    assert [r.token_id for r in tokens.pending(ALICE)] == [
        other_purpose.token_id,
        second.token_id,
    ]


def test_sec03_suspension_cancels_all(store: SQLiteStore) -> None:
    tokens = tokens_at(store, T0)
    issued = [tokens.issue(ALICE, purpose, DAY) for purpose in TokenPurpose]
    bob = tokens.issue("bob@univ.example", TokenPurpose.RESET, DAY)
    assert tokens.cancel(ALICE) == len(TokenPurpose)
    assert tokens.pending(ALICE) == []
    for item in issued:
        with pytest.raises(InvalidInputError, match=NOT_VALID):
            tokens.redeem(item.token, item.purpose)
    assert tokens.check(bob.token, TokenPurpose.RESET)
    assert tokens.cancel(ALICE) == 0


def test_sec03_cancel_some_purposes(store: SQLiteStore) -> None:
    tokens = tokens_at(store, T0)
    for purpose in TokenPurpose:
        tokens.issue(ALICE, purpose, DAY)
    assert tokens.cancel(ALICE, [TokenPurpose.RESET, TokenPurpose.CONFIRM]) == 2
    assert [r.purpose for r in tokens.pending(ALICE)] == [
        TokenPurpose.ACTIVATION,
        TokenPurpose.CONFIRM_RECOVERY,
        TokenPurpose.CONFIRM_FORWARDING,
        TokenPurpose.EXTENSION,
    ]
    assert tokens.cancel(ALICE, []) == 0


def test_sec04_expiry_against_the_clock(store: SQLiteStore) -> None:
    issued = tokens_at(store, T0).issue(ALICE, TokenPurpose.ACTIVATION, DAY)
    assert issued.expires_at == T0 + DAY
    just_before = tokens_at(store, T0 + DAY - timedelta(seconds=1))
    assert just_before.check(issued.token, TokenPurpose.ACTIVATION)
    assert just_before.pending(ALICE)
    for late in (T0 + DAY, T0 + DAY + timedelta(days=1)):
        expired = tokens_at(store, late)
        assert expired.pending(ALICE) == []
        for attempt in (expired.check, expired.redeem):
            with pytest.raises(InvalidInputError) as caught:
                attempt(issued.token, TokenPurpose.ACTIVATION)
            assert caught.value.message == (
                "this link expired on 2027-07-01 08:00 UTC; ask for a new one"
            )
            assert caught.value.exit_code == ExitCode.DATA_ERROR


def test_sec04_expired_tokens_are_not_counted_as_cancelled(store: SQLiteStore) -> None:
    tokens_at(store, T0).issue(ALICE, TokenPurpose.RESET, timedelta(hours=1))
    assert tokens_at(store, T0 + timedelta(hours=2)).cancel(ALICE) == 0


@pytest.mark.parametrize("ttl", [DAY + timedelta(seconds=1), timedelta(days=7), timedelta(0)])
def test_sec04_ttl_capped_at_24_hours(store: SQLiteStore, ttl: timedelta) -> None:
    with pytest.raises(InvalidInputError, match="at most 24 h"):
        tokens_at(store, T0).issue(ALICE, TokenPurpose.ACTIVATION, ttl)
    assert store.dump()["tokens"] == []


def test_sec03_unknown_and_wrong_purpose_read_the_same(store: SQLiteStore) -> None:
    tokens = tokens_at(store, T0)
    issued = tokens.issue(ALICE, TokenPurpose.RESET, DAY)
    messages = []
    for token, purpose in [
        (issued.token, TokenPurpose.ACTIVATION),
        ("x" * 43, TokenPurpose.RESET),
        ("", TokenPurpose.RESET),
    ]:
        with pytest.raises(InvalidInputError) as caught:
            tokens.redeem(token, purpose)
        messages.append(caught.value.message)
    assert len(set(messages)) == 1
    assert tokens.check(issued.token, TokenPurpose.RESET)


@settings(max_examples=60)
@given(guess=st.text(max_size=80))
def test_sec03_any_guess_is_refused_without_a_crash(
    tmp_path_factory: pytest.TempPathFactory, guess: str
) -> None:
    with SQLiteStore(tmp_path_factory.mktemp("guess")) as store:
        tokens = tokens_at(store, T0)
        tokens.issue(ALICE, TokenPurpose.RESET, DAY)
        with pytest.raises(InvalidInputError, match=NOT_VALID):
            tokens.redeem(guess, TokenPurpose.RESET)


def test_sec07_rate_counting(store: SQLiteStore) -> None:
    for minutes in (0, 10, 50, 70):
        tokens_at(store, T0 + timedelta(minutes=minutes)).issue(ALICE, TokenPurpose.RESET, DAY)
    tokens_at(store, T0).issue(ALICE, TokenPurpose.CONFIRM, DAY)
    tokens_at(store, T0).issue("bob@univ.example", TokenPurpose.RESET, DAY)
    tokens = tokens_at(store, T0 + timedelta(minutes=75))
    hour_ago = T0 + timedelta(minutes=15)
    assert tokens.issued_since(ALICE, TokenPurpose.RESET, hour_ago) == 2
    assert tokens.issued_since(ALICE, TokenPurpose.RESET, T0) == 4
    assert tokens.issued_since(ALICE, TokenPurpose.CONFIRM, T0) == 1
    assert tokens.issued_since("carol@univ.example", TokenPurpose.RESET, T0) == 0


def test_sec03_concurrent_redeem_only_one_wins(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as setup:
        issued: IssuedToken = tokens_at(setup, T0).issue(ALICE, TokenPurpose.RESET, DAY)
    contenders = 8
    barrier = threading.Barrier(contenders)
    outcomes: list[str] = []
    lock = threading.Lock()

    def contend() -> None:
        with SQLiteStore(tmp_path) as own_store:
            tokens = tokens_at(own_store, T0 + timedelta(minutes=1))
            barrier.wait()
            try:
                tokens.redeem(issued.token, TokenPurpose.RESET)
                outcome = "won"
            except InvalidInputError as exc:
                outcome = exc.message
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=contend) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert outcomes.count("won") == 1
    assert all(o.startswith(NOT_VALID) for o in outcomes if o != "won")
    with SQLiteStore(tmp_path) as after:
        assert len([row for row in after.dump()["tokens"] if row["used_at"]]) == 1


def test_sec03_marking_used_is_a_compare_and_set(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path) as first, SQLiteStore(tmp_path) as second:
        issued = tokens_at(first, T0).issue(ALICE, TokenPurpose.RESET, DAY)
        later = T0 + timedelta(minutes=1)
        # Both see a valid token; only the first mark succeeds.
        assert tokens_at(first, later).check(issued.token, TokenPurpose.RESET)
        assert tokens_at(second, later).check(issued.token, TokenPurpose.RESET)
        assert first.mark_token_used(issued.token_id, later) is True
        assert second.mark_token_used(issued.token_id, later) is False
