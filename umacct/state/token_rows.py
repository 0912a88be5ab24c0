"""Recording a batch of new tokens in SQLite with a few statements, whatever the batch's size.

Each statement's step lets go of the GIL; while the intake's mail thread composes messages,
taking it back may wait a switch interval (5 ms), so 400 statements for a batch of 200 tokens
cost far more than their SQL. The batch is the same rows, ids and cancellations either way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

TokenRow = tuple[str, str, str, str, str, str]
"""account, purpose, token_hash, issued_at, expires_at, payload: as stored."""

_CHUNK = 1000
"""Rows per statement at most: 6,000 parameters, fewer where the SQLite library allows fewer."""


def insert_token_rows(conn: sqlite3.Connection, rows: Sequence[TokenRow]) -> list[int]:
    """Insert each token after cancelling its account's pending ones of that purpose; the ids.

    When the tokens share one purpose and one instant and name each account once, no token
    of the batch can cancel another: one UPDATE for every account, then one INSERT, give the
    very rows, ids (in order) and cancellations of one UPDATE and one INSERT per token.
    """
    if not _independent(rows):
        return [_insert_one(conn, row) for row in rows]
    ids: list[int] = []
    # A library built with a lower limit (999 before SQLite 3.32) takes smaller statements.
    size = max(1, min(_CHUNK, (conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) - 2) // 6))
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        purpose, issued_at = chunk[0][1], chunk[0][3]
        marks = ", ".join("?" * len(chunk))  # placeholders only: the values are parameters
        conn.execute(
            f"UPDATE tokens SET cancelled_at = ? WHERE purpose = ? AND account IN ({marks})"  # noqa: S608
            " AND used_at IS NULL AND cancelled_at IS NULL",
            (issued_at, purpose, *(row[0] for row in chunk)),
        )
        # VALUES rows are inserted in their order; RETURNING's order is not promised, hence
        # the ids are matched by their (unique) hash.
        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))  # placeholders only
        returned = conn.execute(
            "INSERT INTO tokens (account, purpose, token_hash, issued_at, expires_at, payload)"  # noqa: S608
            f" VALUES {values} RETURNING id, token_hash",
            [value for row in chunk for value in row],
        ).fetchall()
        by_hash = {token_hash: int(token_id) for token_id, token_hash in returned}
        ids.extend(by_hash[row[2]] for row in chunk)
    return ids


def _independent(rows: Sequence[TokenRow]) -> bool:
    if not rows:
        return False
    purpose, issued_at = rows[0][1], rows[0][3]
    return len({row[0] for row in rows}) == len(rows) and all(
        row[1] == purpose and row[3] == issued_at for row in rows
    )


def _insert_one(conn: sqlite3.Connection, row: TokenRow) -> int:
    conn.execute(
        "UPDATE tokens SET cancelled_at = ? WHERE account = ? AND purpose = ?"
        " AND used_at IS NULL AND cancelled_at IS NULL",
        (row[3], row[0], row[1]),
    )
    # fetchall steps the statement to its end before the commit.
    [(token_id,)] = conn.execute(
        "INSERT INTO tokens (account, purpose, token_hash, issued_at, expires_at, payload)"
        " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        row,
    ).fetchall()
    return int(token_id)
