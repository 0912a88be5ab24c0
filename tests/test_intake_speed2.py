"""The intake's second round of fast paths, each compared with the way it replaces."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from umacct.state import token_rows
from umacct.state.token_rows import TokenRow, insert_token_rows
from umacct.store import _MIGRATIONS


def _tokens_table() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for statement in _MIGRATIONS[0][:2]:
        conn.execute(statement)
    return conn


_rows = st.tuples(
    st.sampled_from(["a@x.fr", "b@x.fr", "c@x.fr", "d@x.fr"]),
    st.sampled_from(["activation", "reset"]),
    st.sampled_from(["2027-01-01T08:00:00.000000Z", "2027-01-01T09:00:00.000000Z"]),
    st.sampled_from(["{}", '{"a": "b"}']),
)
_batches = st.lists(
    st.tuples(st.lists(_rows, max_size=6), st.booleans(), st.booleans()), max_size=6
)


@settings(max_examples=300, deadline=None)
@given(_batches, st.integers(min_value=1, max_value=3))
def test_a_batch_of_tokens_gives_the_rows_ids_and_cancellations_of_one_by_one(
    batches: list[tuple[list[tuple[str, str, str, str]], bool, bool]], chunk: int
) -> None:
    fast, slow = _tokens_table(), _tokens_table()
    serial = 0
    token_rows._CHUNK, before = chunk, token_rows._CHUNK
    try:
        for drawn, use_first, uniform in batches:
            rows = drawn
            if uniform and drawn:  # the intake's case: one purpose, one instant, each account once
                first = drawn[0]
                accounts = {row[0]: row[3] for row in drawn}
                rows = [(a, first[1], first[2], p) for a, p in accounts.items()]
            batch: list[TokenRow] = []
            for account, purpose, issued, payload in rows:
                serial += 1
                batch.append((account, purpose, f"h{serial}", issued, "2027-01-02", payload))
            got = insert_token_rows(fast, batch)
            expected = [token_rows._insert_one(slow, row) for row in batch]
            assert got == expected
            if use_first and got:
                for conn in (fast, slow):
                    conn.execute("UPDATE tokens SET used_at = 'x' WHERE id = ?", (got[0],))
            assert _table(fast) == _table(slow)
    finally:
        token_rows._CHUNK = before


def _table(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return conn.execute("SELECT * FROM tokens ORDER BY id").fetchall()
