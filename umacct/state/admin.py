"""``umacct state init`` and ``umacct state migrate``: the branch made, a state.db moved in.

Migration copies every row of ``<data_dir>/state.db`` into the branch, record by record,
and never overwrites: a record already there (migrated before, or written since by a host
using the directory) stays as it is. Running it again therefore adds nothing, and two
hosts' files can be migrated one after the other. The file is left in place for the
administrator to remove once satisfied (the directory backend never reads it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from umacct.datadir import STATE_FILE
from umacct.directory import AlreadyExistsError, Directory
from umacct.directory.escape import rdn_value
from umacct.errors import ConfigError, NotFoundError, RefusedError
from umacct.state.branch import (
    EXTENSIONS,
    NOTICES,
    PURGED,
    SAVED,
    TOKENS,
    Attributes,
    branch_entries,
    decode,
    encode,
    record_attributes,
    record_dn,
    record_key,
    unit_dn,
)
from umacct.state.directory_store import (
    CANCELLED,
    PENDING,
    USED,
    purge_keys,
    token_attributes,
    token_id_of,
)
from umacct.state.extension_requests import add_unit, migrated_item

if TYPE_CHECKING:
    from umacct.services.runtime import Runtime

_ACL_HINT = "the tool's DN needs write access there (docs/state.md gives the ACL)"


@dataclass(frozen=True)
class InitReport:
    """What ``state init`` found and made."""

    state_dn: str
    created: list[str]
    existing: list[str]


@dataclass
class MigratedKind:
    """One kind of record: how many rows the file held, how many were (or would be) added."""

    kind: str
    rows: int = 0
    added: int = 0
    already_there: int = 0


@dataclass
class MigrationReport:
    """What ``state migrate`` did (or, with ``--dry-run``, would do)."""

    source: str
    state_dn: str
    dry_run: bool
    found: bool
    """Whether there was a state.db to migrate."""
    kinds: list[MigratedKind] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    """Purged identifiers the file holds that a live account already has again (handed out
    by a host that did not know of the purge): the tombstone is kept, the account left."""


def configured_branch(runtime: Runtime) -> str:
    """``[directory] state_dn``, or ConfigError saying it is needed."""
    state_dn = runtime.config.directory.state_dn
    if not state_dn:
        raise ConfigError(
            "no state branch configured: set [directory] state_dn (e.g. ou=umacct,ou=system,"
            f"{runtime.config.directory.base_dn}); docs/state.md"
        )
    return state_dn


def init_branch(directory: Directory, state_dn: str) -> InitReport:
    """Add the branch and its units where missing (idempotent)."""
    created, existing = [], []
    try:
        entries = branch_entries(state_dn)
    except ValueError as error:
        raise ConfigError(f"[directory] state_dn: {error}") from None
    for dn, attributes in entries:
        try:
            directory.add(dn, attributes)
            created.append(dn)
        except AlreadyExistsError:
            existing.append(dn)
        except NotFoundError:
            raise ConfigError(
                f"the entry above the state branch {state_dn} does not exist: create it, or "
                "choose a state_dn below an existing entry"
            ) from None
        except RefusedError as error:
            raise RefusedError(f"{error.message}; {_ACL_HINT}") from None
    return InitReport(state_dn, created, existing)


def init_state(runtime: Runtime) -> InitReport:
    """``umacct state init``: the configured branch, made where missing."""
    return init_branch(runtime.directory, configured_branch(runtime))


def migrate_state(runtime: Runtime, *, dry_run: bool = False) -> MigrationReport:
    """``umacct state migrate``: the data folder's state.db copied into the branch, once."""
    from umacct.store import SQLiteStore

    state_dn = configured_branch(runtime)
    source = runtime.data_dir / STATE_FILE
    report = MigrationReport(str(source), state_dn, dry_run, found=source.exists())
    if not report.found:
        return report  # opening the store would make an empty file: nothing to move
    with SQLiteStore(runtime.data_dir) as legacy:
        rows = legacy.dump()
    directory = runtime.directory
    if not dry_run:
        init_branch(directory, state_dn)
    taken_ids = {int(record["id"]) for record in _records(directory, state_dn, TOKENS)}
    plans = {
        TOKENS: [_token_item(state_dn, row, taken_ids) for row in rows.get("tokens", [])],
        NOTICES: [_notice_item(state_dn, row) for row in rows.get("notices", [])],
        PURGED: [_purge_item(state_dn, row) for row in rows.get("purged", [])],
        SAVED: [_saved_item(state_dn, row) for row in rows.get("saved_values", [])],
    }
    requests = [migrated_item(state_dn, row) for row in rows.get("extension_requests", [])]
    plans[EXTENSIONS] = [item for item in requests if item is not None]
    if plans[EXTENSIONS] and not dry_run:
        add_unit(directory, state_dn)  # a branch made before requests existed lacks it
    for unit, items in plans.items():
        report.kinds.append(_migrate_unit(directory, state_dn, unit, items, dry_run=dry_run))
    report.reused = _reused_identifiers(runtime, rows.get("purged", []))
    return report


def _reused_identifiers(runtime: Runtime, purged: Iterable[Mapping[str, Any]]) -> list[str]:
    """The purged (not restored) identifiers a live account holds again, sorted."""
    from umacct.directory.escape import filter_eq, filter_or

    reused = []
    for row in purged:
        if row.get("restored_at") or not row.get("account"):
            continue
        search = filter_or(
            filter_eq("mail", str(row["account"])), filter_eq("uid", str(row["uid"]))
        )
        found = runtime.directory.search(runtime.config.directory.people_dn, search, ["uid"])
        if any(True for _ in found):
            reused.append(str(row["account"]))
    return sorted(reused)


def _migrate_unit(
    directory: Directory,
    state_dn: str,
    unit: str,
    items: Sequence[tuple[str, Attributes]],
    *,
    dry_run: bool,
) -> MigratedKind:
    counted = MigratedKind(unit, rows=len(items))
    present = _names(directory, state_dn, unit)
    fresh: dict[str, Attributes] = {}
    for dn, attributes in items:
        name = rdn_value(dn).lower()
        if name in present or dn in fresh:
            counted.already_there += 1
        else:
            fresh[dn] = attributes
    if dry_run:
        counted.added = len(fresh)
        return counted
    failure = None
    for result in directory.add_many(fresh.items()):
        if result.error is None:
            counted.added += 1
        elif isinstance(result.error, AlreadyExistsError):
            counted.already_there += 1  # written meanwhile by a host using the directory
        else:
            failure = failure or result.error
    if failure is not None:
        raise failure
    return counted


def _names(directory: Directory, state_dn: str, unit: str) -> set[str]:
    """The names of the unit's records (none while the unit does not exist: a dry run)."""
    try:
        return {
            rdn_value(entry.dn).lower()
            for entry in directory.search(unit_dn(state_dn, unit), "(objectClass=*)", [],
                                          scope="one")
        }  # fmt: skip
    except NotFoundError:
        return set()


def _records(directory: Directory, state_dn: str, unit: str) -> Iterable[dict[str, Any]]:
    try:
        entries = list(
            directory.search(unit_dn(state_dn, unit), "(objectClass=*)", ["description"],
                             scope="one")
        )  # fmt: skip
    except NotFoundError:
        return []
    return [record for entry in entries if (record := decode(entry.get("description")))]


def _token_item(state_dn: str, row: Mapping[str, Any], taken: set[int]) -> tuple[str, Attributes]:
    token_hash = str(row["token_hash"])
    # A queued mail names its link's token by id: keep it, unless another file's token has it.
    token_id = int(row["id"]) if int(row["id"]) not in taken else token_id_of(token_hash)
    taken.add(token_id)
    record = {
        "id": token_id, "account": row["account"], "purpose": row["purpose"],
        "token_hash": token_hash, "issued_at": row["issued_at"], "expires_at": row["expires_at"],
        "payload": json.loads(row["payload"] or "{}"),
    }  # fmt: skip
    if row["used_at"]:
        state = f"{USED} {row['used_at']}"
    elif row["cancelled_at"]:
        state = f"{CANCELLED} {row['cancelled_at']}"
    else:
        state = PENDING
    return record_dn(state_dn, TOKENS, token_hash), token_attributes(record, state)


def _notice_item(state_dn: str, row: Mapping[str, Any]) -> tuple[str, Attributes]:
    record = {key: row[key] for key in ("account", "kind", "key", "sent_at")}
    name = record_key(row["account"], row["kind"], row["key"])
    return record_dn(state_dn, NOTICES, name), record_attributes(
        name, [row["account"]], encode(record)
    )


def _purge_item(state_dn: str, row: Mapping[str, Any]) -> tuple[str, Attributes]:
    record = {
        key: row.get(key)
        for key in ("account", "uid", "dn", "external_id", "archive", "archive_sha256",
                    "purged_at", "restored_at")
    }  # fmt: skip
    name = record_key(str(row["account"]).lower())
    return record_dn(state_dn, PURGED, name), record_attributes(
        name, purge_keys(record), encode(record)
    )


def _saved_item(state_dn: str, row: Mapping[str, Any]) -> tuple[str, Attributes]:
    record = {
        "account": row["account"], "name": row["name"],
        "values": json.loads(row["value_list"]), "saved_at": row["saved_at"],
    }  # fmt: skip
    name = record_key(row["account"], row["name"])
    return record_dn(state_dn, SAVED, name), record_attributes(
        name, [row["account"]], encode(record)
    )
