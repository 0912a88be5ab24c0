"""``purge`` and ``restore``: archive then delete an expired account; put it back from its archive.

Never a deletion without its archive (security 20): the whole entry is written as LDIF
(mode 0600) and flushed to disk first. The identifier stays reserved (security 21).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from umacct.directory import Entry
from umacct.errors import InvalidInputError, NotFoundError, RefusedError, UnavailableError
from umacct.ldif import LdifEntry, entry_to_ldif, parse_ldif
from umacct.policy import Stage, expired_states, replace_state_dates, replace_statuses
from umacct.services.accounts import (
    Account,
    account_from_entry,
    check_account_key,
    find_account,
    iter_accounts,
)
from umacct.services.changes import audit_uncertain
from umacct.services.lifecycle import AccountOutcome, outcome
from umacct.services.runtime import Runtime
from umacct.store import PurgeRecord

ARCHIVE_DIR = "archive"
# Attributes the server maintains itself: archived for the record, never written back.
_SERVER_MAINTAINED = {
    "pwdchangedtime",
    "pwdlastsuccess",
    "pwdaccountlockedtime",
    "pwdfailuretime",
    "pwdhistory",
}
_NOT_RESTORED = {"userpassword", *_SERVER_MAINTAINED}


def purgeable_on(runtime: Runtime, account: Account) -> date | None:
    """The first day the account may be purged, or None when it is not expired."""
    state = account.account_state
    if account.stage is not Stage.EXPIRED or state is None or state.start is None:
        return None
    return state.start + timedelta(days=runtime.config.policy.purge_after_days)


def purge_account(runtime: Runtime, account: Account, *, dry_run: bool = False) -> AccountOutcome:
    """Archive the entry, delete it, remember its identifier; refuse if not purgeable yet."""
    first_day = purgeable_on(runtime, account)
    if first_day is None:
        raise RefusedError(
            f"{account.identifier} is not expired (state: {account.stage.value}); only expired accounts are purged"
        )
    if runtime.today() < first_day:
        raise RefusedError(
            f"{account.identifier} can be purged from {first_day.isoformat()} "
            f"({runtime.config.policy.purge_after_days} days after its expiry)"
        )
    if dry_run:
        return outcome(runtime, account, "purge", "would be archived and deleted", changed=False)
    entry = runtime.directory.read(
        account.dn, ["*", "pwdEndTime", "pwdChangedTime", "pwdLastSuccess"]
    )
    if entry is None:
        raise NotFoundError(f"{account.identifier} disappeared from the directory meanwhile")
    runtime.audit.ensure_writable()
    archive = write_archive(runtime, account, LdifEntry(entry.dn, entry.attributes))
    changes = {name: {"before": values, "after": []} for name, values in entry.attributes.items()}
    try:
        runtime.directory.delete(account.dn)
    except UnavailableError as error:
        # The entry may be gone: its identifier is reserved all the same (security 21); if
        # it is still there, the next purge archives and deletes it again.
        _remember_purge(runtime, account, entry, archive)
        audit_uncertain(
            runtime, "purge", account.identifier, changes, error, {"archive": str(archive)}
        )
        raise
    _remember_purge(runtime, account, entry, archive)
    runtime.audit.append("purge", account.identifier, changes, "ok", archive=str(archive))
    return outcome(runtime, account, "purge", f"archived to {archive} and deleted", changed=True)


def _remember_purge(runtime: Runtime, account: Account, entry: Entry, archive: Path) -> None:
    """Reserve the identifier, keep the way to the archive, cancel the account's links."""
    profile = runtime.config.profiles.get(account.profile_key or "")
    external_id = entry.first(profile.external_id_attribute) if profile else None
    runtime.store.record_purge(
        PurgeRecord(
            account.identifier,
            account.uid,
            account.dn,
            archive,
            runtime.clock.now(),
            external_id=external_id,
        )
    )
    runtime.tokens.cancel(account.identifier)


def write_archive(runtime: Runtime, account: Account, entry: LdifEntry) -> Path:
    """Write the entry's LDIF (0600) and flush it to disk; raise before any deletion if that fails."""
    folder = runtime.data_dir / ARCHIVE_DIR
    stamp = runtime.clock.now().strftime("%Y%m%dT%H%M%SZ")
    path = folder / f"{account.identifier}-{stamp}.ldif"
    data = entry_to_ldif(entry).encode("utf-8")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(28, "short write")
            os.fsync(fd)
        finally:
            os.close(fd)
        directory_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory_fd)
        finally:
            os.close(directory_fd)
    except OSError as exc:
        # The cleanup can fail the same way (the folder is a file, the disk went away).
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        reason = (
            f"{folder} is not a folder" if folder.exists() and not folder.is_dir() else exc.strerror
        )
        raise UnavailableError(
            f"cannot write the archive {path}: {reason}; nothing was deleted"
        ) from exc
    return path


def purge(runtime: Runtime, key: str, *, dry_run: bool = False) -> AccountOutcome:
    """``umacct purge ACCOUNT``: archive and delete one expired account."""
    account = find_account(runtime.directory, runtime.config, key)
    return purge_account(runtime, account, dry_run=dry_run)


def purgeable_accounts(runtime: Runtime) -> Iterator[Account]:
    """Expired accounts past their purge date (server-side filter on pwdEndTime)."""
    from umacct.services.sweep import purge_filter

    for account in iter_accounts(
        runtime.directory, runtime.config, purge_filter(runtime, runtime.today())
    ):
        first_day = purgeable_on(runtime, account)
        if first_day is not None and first_day <= runtime.today():
            yield account


def purge_expired(
    runtime: Runtime, *, limit: int, dry_run: bool = False
) -> Iterator[AccountOutcome]:
    """``umacct purge --expired``: at most ``limit`` accounts (security 19)."""
    if limit < 1:
        raise InvalidInputError("--limit must be 1 or more")
    for count, account in enumerate(purgeable_accounts(runtime)):
        if count >= limit:
            return
        yield purge_account(runtime, account, dry_run=dry_run)


def restore(runtime: Runtime, key: str) -> AccountOutcome:
    """``umacct restore ACCOUNT``: put a purged account back, expired, with no usable password."""
    cleaned = check_account_key(key)
    record = runtime.store.find_purge(cleaned)
    if record is None:
        raise NotFoundError(
            f"no purged account {cleaned!r} (see the archives in {runtime.data_dir / ARCHIVE_DIR})"
        )
    if record.restored_at is not None and runtime.directory.read(record.dn, ["uid"]) is not None:
        raise RefusedError(
            f"{record.account} was already restored on {record.restored_at:%Y-%m-%d}"
        )
    try:
        text = record.archive.read_text("utf-8")
    except OSError as exc:
        raise UnavailableError(f"cannot read the archive {record.archive}: {exc.strerror}") from exc
    entries = list(parse_ldif(text))
    if len(entries) != 1:
        raise InvalidInputError(f"{record.archive}: expected one entry, found {len(entries)}")
    archived = entries[0]
    attributes = {
        name: values
        for name, values in archived.attributes.items()
        if name.lower() not in _NOT_RESTORED
    }
    # Expired from today: the purge delay starts again, so the next sweep does not purge it.
    names = runtime.config.attributes
    restarted = expired_states(runtime.today() - timedelta(days=1))
    for name, values in list(attributes.items()):
        if name.lower() == names.state_date.lower():
            attributes[name] = replace_state_dates(values, restarted)
        elif name.lower() == names.state.lower():
            attributes[name] = replace_statuses(values, restarted)
    runtime.audit.ensure_writable()
    changes = {name: {"before": [], "after": values} for name, values in attributes.items()}
    try:
        runtime.directory.add(archived.dn, attributes)
    except UnavailableError as error:
        details = {"archive": str(record.archive)}
        audit_uncertain(runtime, "restore", record.account, changes, error, details)
        raise
    runtime.store.mark_restored(record.account, runtime.clock.now())
    runtime.audit.append("restore", record.account, changes, "ok", archive=str(record.archive))
    entry = runtime.directory.read(archived.dn, ["*", "pwdEndTime"])
    assert entry is not None
    account = account_from_entry(entry, runtime.config)
    profile = runtime.config.profiles.get(account.profile_key or "")
    reopen = "`umacct create` with the person's intake row reinstates it (activation link sent)"
    if profile is not None and profile.extendable:
        reopen += (
            f", or `umacct extend {account.identifier} --force --reason ...` gives it a grace "
            f"period, then `umacct reset {account.identifier}` a password"
        )
    return outcome(
        runtime,
        account,
        "restore",
        f"restored from {record.archive}: expired, with no usable password; to reopen it, {reopen}",
        changed=True,
    )
