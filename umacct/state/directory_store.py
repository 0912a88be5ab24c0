"""The ``Store`` in the directory: one entry per token, notice, purge, saved value set, lock.

Every host configured with the same ``[directory] state_dn`` shares one state: a link mailed
from one host is redeemed on another, an identifier purged on one is reserved on all, and a
host's data folder holds nothing that cannot be lost (docs/state.md). The layout of the
branch is in ``umacct.state.branch``; job locks are leases (``umacct.state.leases``).

What makes each operation safe when several hosts run at once:

- a notice, a purge, a lock is recorded by an **add**: of two hosts, one gets
  ``entryAlreadyExists``;
- a token is redeemed (or cancelled) by **one modify** that deletes its exact ``pending``
  value and adds ``used <instant>``, guarded by the assertion control on ``pending``: of two
  hosts, the second gets ``assertionFailed`` and the link is refused there;
- releasing it (the change it allowed failed) is the reverse modify, guarded the same way.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from umacct.closing import Closing
from umacct.directory import AlreadyExistsError, Change, ConflictError, Directory, Entry
from umacct.directory.escape import filter_and, filter_eq, filter_or
from umacct.errors import ConfigError, InvalidInputError, NotFoundError, RefusedError
from umacct.state.branch import (
    NOTICES,
    PURGED,
    RECORD_ATTRIBUTES,
    RECORD_UNITS,
    SAVED,
    TOKENS,
    decode,
    encode,
    record_attributes,
    record_dn,
    record_key,
    search_keys,
    unit_dn,
)
from umacct.state.extension_requests import DirectoryExtensionRequests
from umacct.state.leases import LEASE_SECONDS, Leases
from umacct.state.stored_times import read_stored_time, to_stored_time
from umacct.store import _LOCK_NAME, NewToken, PurgeRecord, StoredToken

PENDING = "pending"
USED = "used"
CANCELLED = "cancelled"
SEARCH_CHUNK = 50
"""Accounts per search when tokens are issued to many at once (one OR filter)."""
ID_KEY = "token-id "
PURGE_SEARCH_CHUNK = 200
"""Keys per search of ``find_purges`` (one OR filter of ``cn`` values)."""

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _branch_needed(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Say how to make a missing branch or unit (exit 78), which rights a refusal lacks (77)."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except NotFoundError as error:
            store = args[0]
            assert isinstance(store, DirectoryStore)
            raise store.missing_branch(error) from None
        except RefusedError as error:
            store = args[0]
            assert isinstance(store, DirectoryStore)
            raise RefusedError(
                f"{error.message}; the tool's DN needs read and write access to "
                f"{store.state_dn} (docs/state.md gives the ACL)"
            ) from None

    return wrapper


def token_id_of(token_hash: str) -> int:
    """The id of a token issued in the directory: 63 bits of its hash (same on every host)."""
    return int(token_hash[:16], 16) >> 1


def _marker(values: Sequence[str]) -> tuple[str, datetime | None]:
    """A token's state among its description values: (pending|used|cancelled, when)."""
    for value in values:
        word, _, when = value.partition(" ")
        if word in (PENDING, USED, CANCELLED):
            return word, read_stored_time(when)
    return CANCELLED, None  # no state: never usable


@dataclass(frozen=True)
class _TokenEntry:
    dn: str
    token: StoredToken
    state: str


def _token_from(entry: Entry) -> _TokenEntry | None:
    record = decode(entry.get("description"))
    if record is None:
        return None
    state, when = _marker(entry.get("description"))
    try:
        token = StoredToken(
            token_id=int(record["id"]), account=str(record["account"]),
            purpose=str(record["purpose"]), token_hash=str(record["token_hash"]),
            issued_at=datetime.fromisoformat(record["issued_at"]),
            expires_at=datetime.fromisoformat(record["expires_at"]),
            used_at=when if state == USED else None,
            cancelled_at=when if state == CANCELLED else None,
            payload={str(k): str(v) for k, v in dict(record.get("payload") or {}).items()},
        )  # fmt: skip
    except (KeyError, TypeError, ValueError):
        return None
    return _TokenEntry(entry.dn, token, state)


def token_record(token: NewToken, token_id: int) -> dict[str, Any]:
    """The JSON record of a token (never the token: its hash)."""
    return {
        "id": token_id, "account": token.account, "purpose": token.purpose,
        "token_hash": token.token_hash, "issued_at": to_stored_time(token.issued_at),
        "expires_at": to_stored_time(token.expires_at), "payload": dict(token.payload),
    }  # fmt: skip


def token_attributes(record: Mapping[str, Any], state: str) -> dict[str, list[str]]:
    """The entry of a token: named by its hash, found by its account and its id."""
    keys = [str(record["account"]), f"{ID_KEY}{record['id']}"]
    return record_attributes(str(record["token_hash"]), keys, encode(record), state)


def purge_record(purge: PurgeRecord) -> dict[str, Any]:
    """The JSON record of a purge (a tombstone: the identifier stays reserved)."""
    return {
        "account": purge.account, "uid": purge.uid, "dn": purge.dn,
        "external_id": purge.external_id, "archive": str(purge.archive),
        "archive_sha256": purge.archive_sha256, "purged_at": to_stored_time(purge.purged_at),
        "restored_at": to_stored_time(purge.restored_at) if purge.restored_at else None,
    }  # fmt: skip


def purge_keys(record: Mapping[str, Any]) -> list[str | None]:
    """What a purge is found by: its identifier, uid and external id."""
    return [record["account"], record["uid"], record.get("external_id")]


def _purge_from(record: Mapping[str, Any]) -> PurgeRecord:
    return PurgeRecord(
        account=str(record["account"]), uid=str(record["uid"]), dn=str(record["dn"]),
        archive=Path(record["archive"]), purged_at=datetime.fromisoformat(record["purged_at"]),
        restored_at=read_stored_time(record.get("restored_at")), external_id=record.get("external_id"),
        archive_sha256=record.get("archive_sha256"),
    )  # fmt: skip


class DirectoryStore(Closing, DirectoryExtensionRequests):
    """The ``Store`` under ``state_dn``, through the tool's bound directory connection.

    ``directory`` is the run's connection (the store does not close it); ``connect`` opens
    another one, for the thread that renews a held job lock. Token writes go where the run's
    connection went: the first reachable of ``[directory] urls``.
    """

    def __init__(
        self,
        directory: Directory,
        state_dn: str,
        *,
        connect: Callable[[], Directory] | None = None,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.directory = directory
        self.state_dn = state_dn
        self._leases = Leases(directory, state_dn, connect=connect, lease_seconds=lease_seconds)
        self._token_dns: dict[int, str] = {}

    def close(self) -> None:
        """Nothing to release: the connection belongs to the run."""

    # --- tokens ---------------------------------------------------------------------------

    @_branch_needed
    def issue_tokens(self, tokens: Sequence[NewToken]) -> list[int]:
        """Record each token and cancel its account's pending ones of that purpose; their ids.

        The pending tokens are cancelled first, then the new ones added (pipelined): a
        failure in between leaves no link usable that should not be, at worst none.
        """
        wanted = {(token.account, token.purpose): token for token in tokens}  # the last wins
        records = [token_record(token, token_id_of(token.token_hash)) for token in tokens]
        accounts = sorted({account for account, _ in wanted})
        for found in self._tokens_of(accounts, pending_only=True):
            token = wanted.get((found.token.account, found.token.purpose))
            if token is not None:
                self._set_state(found.dn, PENDING, f"{CANCELLED} {to_stored_time(token.issued_at)}")
        items = []
        for token, record in zip(tokens, records, strict=True):
            superseded = wanted[(token.account, token.purpose)] is not token
            state = f"{CANCELLED} {to_stored_time(token.issued_at)}" if superseded else PENDING
            dn = record_dn(self.state_dn, TOKENS, token.token_hash)
            items.append((dn, token_attributes(record, state)))
            self._token_dns[record["id"]] = dn
        for result in self.directory.add_many(items):
            if result.error is not None:
                raise result.error
        return [int(record["id"]) for record in records]

    @_branch_needed
    def find_token(self, token_hash: str) -> StoredToken | None:
        """Return the token with this hash, if any."""
        try:
            dn = record_dn(self.state_dn, TOKENS, token_hash)
        except ValueError:
            return None  # not even a name: no such token
        found = self._read_token(dn)
        return found.token if found is not None else None

    @_branch_needed
    def mark_token_used(self, token_id: int, now: datetime) -> bool:
        """Mark a pending, unexpired token used, in one guarded modify; False if it was not."""
        stamp = to_stored_time(now)
        found = self._token_by_id(token_id)
        if found is None or found.state != PENDING or found.token.expires_at <= now:
            return False
        return self._set_state(found.dn, PENDING, f"{USED} {stamp}")

    @_branch_needed
    def release_token(self, token_id: int, used_at: datetime) -> None:
        """Undo ``mark_token_used`` of that instant: the token is pending again.

        When the directory cannot be reached the token stays used: the person asks for a
        new link (the change it allowed failed, and said so).
        """
        dn = self._token_dns.get(token_id)
        if dn is None:
            found = self._token_by_id(token_id)
            if found is None:
                return
            dn = found.dn
        self._set_state(dn, f"{USED} {to_stored_time(used_at)}", PENDING)

    @_branch_needed
    def cancel_tokens(self, account: str, purposes: Sequence[str] | None, now: datetime) -> int:
        """Cancel the account's pending tokens (of these purposes, or all); return how many."""
        stamp = to_stored_time(now)
        if purposes is not None and not purposes:
            return 0
        cancelled = 0
        for found in self._tokens_of([account], pending_only=True):
            token = found.token
            if token.expires_at <= now or (purposes is not None and token.purpose not in purposes):
                continue
            cancelled += self._set_state(found.dn, PENDING, f"{CANCELLED} {stamp}")
        return cancelled

    @_branch_needed
    def pending_tokens(self, account: str, now: datetime) -> list[StoredToken]:
        """List the account's tokens neither used, cancelled nor expired at ``now``."""
        to_stored_time(now)
        tokens = [
            found.token
            for found in self._tokens_of([account], pending_only=True)
            if found.token.expires_at > now
        ]
        return sorted(tokens, key=lambda token: (token.issued_at, token.token_id))

    @_branch_needed
    def count_tokens_issued(self, account: str, purpose: str, since: datetime) -> int:
        """How many tokens of this purpose were issued to the account from ``since`` on."""
        to_stored_time(since)
        return sum(
            1
            for found in self._tokens_of([account])
            if found.token.purpose == purpose and found.token.issued_at >= since
        )

    def _tokens_of(
        self, accounts: Sequence[str], *, pending_only: bool = False
    ) -> Iterator[_TokenEntry]:
        """The tokens of these accounts (exact identifiers), a chunk of accounts per search."""
        for start in range(0, len(accounts), SEARCH_CHUNK):
            chunk = accounts[start : start + SEARCH_CHUNK]
            wanted = set(chunk)
            search = filter_or(*(filter_eq("cn", account) for account in chunk))
            if pending_only:
                search = filter_and(search, filter_eq("description", PENDING))
            for entry in self._search(TOKENS, search):
                found = _token_from(entry)
                if found is not None and found.token.account in wanted:
                    self._token_dns[found.token.token_id] = found.dn
                    yield found

    def _read_token(self, dn: str) -> _TokenEntry | None:
        entry = self.directory.read(dn, RECORD_ATTRIBUTES)
        found = _token_from(entry) if entry is not None else None
        if found is not None:
            self._token_dns[found.token.token_id] = found.dn
        return found

    def _token_by_id(self, token_id: int) -> _TokenEntry | None:
        dn = self._token_dns.get(token_id)
        if dn is not None:
            return self._read_token(dn)
        for entry in self._search(TOKENS, filter_eq("cn", f"{ID_KEY}{token_id}")):
            found = _token_from(entry)
            if found is not None and found.token.token_id == token_id:
                self._token_dns[token_id] = found.dn
                return found
        return None

    def _set_state(self, dn: str, old: str, new: str) -> bool:
        """Replace a token's state value ``old`` by ``new`` only if it still is ``old``."""
        try:
            self.directory.modify(
                dn,
                [Change("delete", "description", (old,)), Change("add", "description", (new,))],
                assertion=filter_eq("description", old),
            )
        except (ConflictError, NotFoundError):
            return False  # another host (or run) changed it first
        return True

    # --- notices --------------------------------------------------------------------------

    def _notice_dn(self, account: str, kind: str, key: str) -> str:
        return record_dn(self.state_dn, NOTICES, record_key(account, kind, key))

    @_branch_needed
    def record_notice(self, account: str, kind: str, key: str, now: datetime) -> bool:
        """Record that a notice was sent; False if this (account, kind, key) already was."""
        record = {"account": account, "kind": kind, "key": key, "sent_at": to_stored_time(now)}
        name = record_key(account, kind, key)
        try:
            self.directory.add(
                self._notice_dn(account, kind, key),
                record_attributes(name, [account], encode(record)),
            )
        except AlreadyExistsError:
            return False
        return True

    @_branch_needed
    def has_notice(self, account: str, kind: str, key: str) -> bool:
        """Whether this (account, kind, key) notice was already recorded."""
        return self.directory.read(self._notice_dn(account, kind, key), []) is not None

    @_branch_needed
    def notice_sent_at(self, account: str, kind: str, key: str) -> datetime | None:
        """When this (account, kind, key) notice was recorded, if it was."""
        entry = self.directory.read(self._notice_dn(account, kind, key), ["description"])
        record = decode(entry.get("description")) if entry is not None else None
        return read_stored_time(record.get("sent_at")) if record is not None else None

    @_branch_needed
    def last_notice(self, account: str, kind: str) -> datetime | None:
        """When the account last got a notice of this kind, if ever."""
        sent = [
            read_stored_time(record.get("sent_at"))
            for record in self._records(NOTICES, filter_eq("cn", account))
            if record.get("account") == account and record.get("kind") == kind
        ]
        return max((instant for instant in sent if instant is not None), default=None)

    # --- batches --------------------------------------------------------------------------

    def batch(self) -> contextlib.AbstractContextManager[None]:
        """The ``Store`` batch: here each write is already its own directory write.

        The server makes each one durable as it applies it (with ``olcDbNoSync`` off), so
        there is nothing to keep for the block's end; writes are not yet pipelined.
        """
        return contextlib.nullcontext()

    # --- job locks ------------------------------------------------------------------------

    def job_lock(
        self, name: str, wait_seconds: float = 0
    ) -> contextlib.AbstractContextManager[None]:
        """Hold the lease of a job (e.g. the daily sweep) for the ``with`` block, on every host.

        Without ``wait_seconds`` a lease held elsewhere raises ``TemporaryError`` at once;
        with it, the lease is tried again until that many seconds have passed.
        """
        if not _LOCK_NAME.match(name):
            raise InvalidInputError(f"invalid job name {name!r} (lowercase letters, digits, -, _)")
        return self._locked(name, wait_seconds)

    @contextlib.contextmanager
    def _locked(self, name: str, wait_seconds: float) -> Iterator[None]:
        stack = contextlib.ExitStack()
        try:
            stack.enter_context(self._leases.hold(name, wait_seconds))
        except NotFoundError as error:
            raise self.missing_branch(error) from None
        with stack:  # an error of the job itself goes through untouched
            yield

    def missing_branch(self, error: NotFoundError) -> ConfigError:
        """The error for a branch or unit that does not exist."""
        return ConfigError(
            f"the state branch {self.state_dn} is missing or incomplete ({error.message}); "
            "create it with 'umacct state init'"
        )

    # --- purged accounts and saved values ---------------------------------------------------

    def _purge_dn(self, account: str) -> str:
        return record_dn(self.state_dn, PURGED, record_key(account.lower()))

    @_branch_needed
    def record_purge(self, purge: PurgeRecord) -> None:
        """Remember a purged account: its identifier stays reserved, its archive findable."""
        record = purge_record(purge)
        record["restored_at"] = None
        self._put(self._purge_dn(purge.account), record_key(purge.account.lower()),
                  purge_keys(record), record)  # fmt: skip

    @_branch_needed
    def find_purge(self, account_or_uid: str) -> PurgeRecord | None:
        """The purge of this identifier, uid or external id, restored or not, if any."""
        key = account_or_uid.lower()
        if not key:
            return None
        matches = [
            _purge_from(record)
            for record in self._records(PURGED, filter_eq("cn", account_or_uid))
            if key in {str(value).lower() for value in purge_keys(record) if value}
        ]
        return max(matches, key=lambda purge: purge.purged_at, default=None)

    @_branch_needed
    def find_purges(self, keys: Iterable[str]) -> dict[str, PurgeRecord | None]:
        """``find_purge`` of every key at once: one OR search per ``PURGE_SEARCH_CHUNK`` keys.

        The server finds the records by ``cn`` as it would for each key alone; each record is
        then checked exactly against the keys, and each key keeps its latest purge (the first
        of equals in the server's order, as ``find_purge``). A key that is only spaces is
        looked up alone (slapd's answer for it is its own).
        """
        given = list(dict.fromkeys(keys))
        searched = [key for key in given if key.split()]
        found: dict[str, list[PurgeRecord]] = {}
        for start in range(0, len(searched), PURGE_SEARCH_CHUNK):
            chunk = searched[start : start + PURGE_SEARCH_CHUNK]
            wanted = {key.lower() for key in chunk}
            search = filter_or(*(filter_eq("cn", key) for key in chunk))
            for record in self._records(PURGED, search):
                purge = None
                for value in dict.fromkeys(str(v).lower() for v in purge_keys(record) if v):
                    if value in wanted:
                        purge = purge or _purge_from(record)
                        found.setdefault(value, []).append(purge)
        return {
            key: max(found.get(key.lower(), []), key=lambda purge: purge.purged_at, default=None)
            if key.split()
            else self.find_purge(key)
            for key in given
        }

    @_branch_needed
    def purges(self) -> list[PurgeRecord]:
        """Every purge recorded, restored or not, oldest first (``list --state purged``)."""
        found = [_purge_from(record) for record in self._records(PURGED, "(objectClass=*)")]
        return sorted(found, key=lambda purge: purge.purged_at)

    @_branch_needed
    def mark_restored(self, account: str, now: datetime) -> None:
        """Note that a purged account was put back."""
        stamp = to_stored_time(now)
        dn = self._purge_dn(account)
        entry = self.directory.read(dn, ["description"])
        record = decode(entry.get("description")) if entry is not None else None
        if record is None or record.get("account") != account:
            return
        record["restored_at"] = stamp
        self.directory.modify(dn, [Change("replace", "description", (encode(record),))])

    @_branch_needed
    def save_values(self, account: str, values: Mapping[str, Sequence[str]], now: datetime) -> None:
        """Keep lists of values for later, by name: one entry per (account, name)."""
        saved_at = to_stored_time(now)
        for name, kept in values.items():
            record = {"account": account, "name": name, "values": list(kept), "saved_at": saved_at}
            self._put(self._saved_dn(account, name), record_key(account, name), [account], record)

    @_branch_needed
    def saved_values(self, account: str, name: str) -> list[str] | None:
        """The values saved under this name, or None."""
        entry = self.directory.read(self._saved_dn(account, name), ["description"])
        record = decode(entry.get("description")) if entry is not None else None
        if record is None or not isinstance(record.get("values"), list):
            return None
        return [str(value) for value in record["values"]]

    def _saved_dn(self, account: str, name: str) -> str:
        return record_dn(self.state_dn, SAVED, record_key(account, name))

    def _put(
        self, dn: str, name: str, keys: Sequence[str | None], record: Mapping[str, Any]
    ) -> None:
        """Add the record's entry, or replace its record (and keys) when it exists."""
        try:
            self.directory.add(dn, record_attributes(name, keys, encode(record)))
        except AlreadyExistsError:
            self.directory.modify(dn, [
                Change("replace", "cn", tuple(search_keys(name, keys))),
                Change("replace", "description", (encode(record),)),
            ])  # fmt: skip

    # --- inspection -----------------------------------------------------------------------

    @_branch_needed
    def dump(self) -> dict[str, list[dict[str, object]]]:
        """Every record of every unit, ordered, for comparing the state before and after."""
        result: dict[str, list[dict[str, object]]] = {}
        for unit in RECORD_UNITS:
            rows: list[dict[str, object]] = []
            for entry in self._search(unit, "(objectClass=*)"):
                record = decode(entry.get("description")) or {}
                if unit == TOKENS:
                    found = _token_from(entry)
                    record = {**record, "state": found.state if found else None}
                rows.append({"entry": entry.first("cn"), **record})
            result[unit] = sorted(rows, key=lambda row: str(row["entry"]))
        return result

    def _search(self, unit: str, search: str) -> Iterable[Entry]:
        return self.directory.search(
            unit_dn(self.state_dn, unit), search, RECORD_ATTRIBUTES, scope="one"
        )

    def _records(self, unit: str, search: str) -> Iterator[dict[str, Any]]:
        for entry in self._search(unit, search):
            record = decode(entry.get("description"))
            if record is not None:
                yield record
