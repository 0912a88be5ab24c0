"""``purge`` and ``restore``: archive then delete an expired account; put it back from its archive.

Never a deletion without its archive (security 20): the whole entry is written as LDIF
(mode 0600, exact: security 28) and flushed to disk first, under a name made safe from the
identifier inside the archive folder (security 29); its SHA-256 goes in the store with the
purge. The identifier stays reserved (security 21). A restore trusts the archive only as far
as that digest and the server's schema allow (security 30).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

from umacct.datadir import ensure_private_dir
from umacct.directory import Entry, Subschema
from umacct.due_filters import purge_filter
from umacct.errors import InvalidInputError, NotFoundError, RefusedError, UnavailableError
from umacct.ldif import LdifEntry, entry_to_ldif, parse_ldif
from umacct.policy import (
    AWAITING_DELETION,
    Stage,
    expired_states,
    expiry_instant,
    replace_state_dates,
    replace_statuses,
    to_generalized_time,
)
from umacct.services.accounts import (
    Account,
    account_from_entry,
    account_named,
    check_account_key,
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
_NOT_RESTORED = {"userpassword", "pwdendtime", *_SERVER_MAINTAINED}
_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._@-")
_MAX_NAME_LENGTH = 120


def purgeable_on(runtime: Runtime, account: Account) -> date | None:
    """The first day the account may be purged, or None when it is not expired."""
    state = account.account_state
    if account.stage is not Stage.EXPIRED or state is None or state.start is None:
        return None
    if state.substate == AWAITING_DELETION:
        return state.start
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
    if dry_run:  # "changed" tells what the run would change; "dry_run" that it did not
        return outcome(runtime, account, "purge", "would be archived and deleted", changed=True)
    entry = runtime.directory.read(
        account.dn, ["*", "pwdEndTime", "pwdChangedTime", "pwdLastSuccess"]
    )
    if entry is None:
        raise NotFoundError(f"{account.identifier} disappeared from the directory meanwhile")
    runtime.audit.ensure_writable()
    archive, digest = write_archive(
        runtime, account, LdifEntry(entry.dn, entry.attributes, entry.binary)
    )
    changes = {
        entry.spelled(name): {"before": list(values), "after": []}
        for name, values in entry.attributes.items()
    }
    for name, raw in entry.binary.items():
        changes.setdefault(entry.spelled(name), {"before": [], "after": []})["before"] += [
            f"({len(value)} bytes)" for value in raw
        ]
    try:
        runtime.directory.delete(account.dn)
    except UnavailableError as error:
        # The entry may be gone: its identifier is reserved all the same (security 21); if
        # it is still there, the next purge archives and deletes it again.
        _remember_purge(runtime, account, entry, archive, digest)
        audit_uncertain(
            runtime, "purge", account.identifier, changes, error, {"archive": str(archive)}
        )
        raise
    _remember_purge(runtime, account, entry, archive, digest)
    runtime.audit.append(
        "purge", account.identifier, changes, "ok", archive=str(archive), archive_sha256=digest
    )
    return outcome(runtime, account, "purge", f"archived to {archive} and deleted", changed=True)


def _remember_purge(
    runtime: Runtime, account: Account, entry: Entry, archive: Path, digest: str
) -> None:
    """Reserve the identifier, keep the way to the archive and its digest, cancel the links."""
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
            archive_sha256=digest,
        )
    )
    runtime.tokens.cancel(account.identifier)


class ArchiveError(InvalidInputError):
    """One entry's archive cannot be written (the others' may): skip it, delete nothing."""


def archive_name(identifier: str) -> str:
    """The file-name form of an identifier (security 29): never a ``/``, never ``..``.

    ``[a-z0-9._@-]`` stay as they are, except a ``.`` first or after another ``.`` and a
    ``-`` first; every other character is ``%xx`` per UTF-8 byte (``%`` included, so two
    identifiers never share a name). A form longer than 120 characters is cut and ends with
    a digest of the whole identifier.
    """
    pieces: list[str] = []
    previous = ""
    for char in identifier:
        plain = char in _NAME_CHARACTERS and not (
            (char == "." and previous in ("", ".")) or (char == "-" and not previous)
        )
        pieces.append(char if plain else "".join(f"%{b:02x}" for b in _utf8(char)))
        previous = char
    name = "".join(pieces)
    if len(name) <= _MAX_NAME_LENGTH:
        return name
    kept = ""
    for piece in pieces:
        if len(kept) + len(piece) > _MAX_NAME_LENGTH - 22:
            break
        kept += piece
    return f"{kept}--{hashlib.sha256(_utf8(identifier)).hexdigest()[:20]}"


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def write_archive(runtime: Runtime, account: Account, entry: LdifEntry) -> tuple[Path, str]:
    """Write the entry's LDIF (0600), flush it to disk; its path and SHA-256 (hex).

    Raises before any deletion if that fails: ``ArchiveError`` when it is this entry's
    archive that cannot be written, ``UnavailableError`` when the folder or the disk fails.
    """
    folder = runtime.config.paths.archive_path
    try:
        data = entry_to_ldif(entry).encode("utf-8")
    except InvalidInputError as exc:
        raise ArchiveError(f"cannot archive {account.identifier!r}: {exc.message}") from exc
    try:
        ensure_private_dir(folder, "archive folder")  # never through a link, nor someone else's
    except UnavailableError as exc:
        raise UnavailableError(f"{exc.message}; nothing was deleted") from exc
    try:
        inside = folder.resolve(strict=True)
    except OSError as exc:
        raise _unavailable(folder, folder, exc) from exc
    stamp = runtime.clock.now().strftime("%Y%m%dT%H%M%SZ")
    base = f"{archive_name(account.identifier)}-{stamp}"
    for suffix in ("", *(f"-{n}" for n in range(2, 10))):
        path = folder / f"{base}{suffix}.ldif"
        if path.resolve().parent != inside:
            raise ArchiveError(f"the archive of {account.identifier!r} would leave {folder}")
        try:
            _write_new_file(path, data)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno in (errno.ENAMETOOLONG, errno.EFBIG):
                raise ArchiveError(
                    f"cannot write the archive {path}: {exc.strerror}; nothing was deleted"
                ) from exc
            raise _unavailable(folder, path, exc) from exc
        try:
            _sync_folder(folder)
        except OSError as exc:
            raise _unavailable(folder, path, exc) from exc
        return path, hashlib.sha256(data).hexdigest()
    raise ArchiveError(f"{folder} already holds {base}.ldif and 8 more: nothing was deleted")


def _write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` (never an existing file or link), write ``data``, flush it to disk."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        # The cleanup can fail the same way (the disk went away).
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
        raise


def _sync_folder(folder: Path) -> None:
    directory_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)


def _unavailable(folder: Path, path: Path, exc: OSError) -> UnavailableError:
    reason = (
        f"{folder} is not a folder" if folder.exists() and not folder.is_dir() else exc.strerror
    )
    return UnavailableError(f"cannot write the archive {path}: {reason}; nothing was deleted")


def purge(runtime: Runtime, key: str, *, dry_run: bool = False) -> AccountOutcome:
    """``umacct purge ACCOUNT``: archive and delete one expired account."""
    account = account_named(runtime, key)
    return purge_account(runtime, account, dry_run=dry_run)


def purgeable_accounts(runtime: Runtime) -> Iterator[Account]:
    """Expired accounts past their purge date (server-side filter on pwdEndTime)."""
    for account in iter_accounts(
        runtime.directory, runtime.config, purge_filter(runtime.config, runtime.today())
    ):
        first_day = purgeable_on(runtime, account)
        if first_day is not None and first_day <= runtime.today():
            yield account


def purge_expired(
    runtime: Runtime, *, limit: int, dry_run: bool = False, ignore_replication_lag: bool = False
) -> Iterator[AccountOutcome]:
    """``umacct purge --expired``: at most ``limit`` accounts (security 19).

    An account whose archive cannot be written is skipped with its own ``error`` line and
    kept; the others go on, and the run ends with ``ArchiveError`` (exit 65) naming them.
    A real run deletes nothing while the directory's providers disagree (exit 75), unless
    ``ignore_replication_lag`` (audited): a restore not replicated yet would be missed.
    """
    if limit < 1:
        raise InvalidInputError("--limit must be 1 or more")
    if not dry_run:
        from umacct.services.replication import require_providers_in_sync

        require_providers_in_sync(runtime, ignore_lag=ignore_replication_lag, command="purge")
    skipped: list[str] = []
    for count, account in enumerate(purgeable_accounts(runtime)):
        if count >= limit:
            break
        try:
            result = purge_account(runtime, account, dry_run=dry_run)
        except ArchiveError as error:
            skipped.append(account.identifier)
            result = outcome(
                runtime, account, "error", f"not purged: {error.message}", changed=False
            )
        yield result
    if skipped:
        raise ArchiveError(
            f"{len(skipped)} account(s) not purged, their archives could not be written "
            f"(nothing of theirs was deleted): {', '.join(map(repr, skipped))}"
        )


def restore(
    runtime: Runtime, key: str, *, accept_unverified: bool = False, dry_run: bool = False
) -> AccountOutcome:
    """``umacct restore ACCOUNT``: put a purged account back, expired, with no usable password.

    Trusted only as far as it deserves (security 30): the archive must match the SHA-256 the
    store recorded at purge time (65 otherwise; an old record without one is refused, 77,
    unless ``accept_unverified``); it is written only at the DN of the purge record, and only
    its ordinary user attributes (``restored_attributes``), expired from today.
    """
    cleaned = check_account_key(key)
    record = runtime.store.find_purge(cleaned)
    if record is None:
        raise NotFoundError(
            f"no purged account {cleaned!r} (see the archives in {runtime.config.paths.archive_path})"
        )
    if runtime.directory.read(record.dn, ["uid"]) is not None:
        if record.restored_at is not None:
            raise RefusedError(
                f"{record.account} was already restored on {record.restored_at:%Y-%m-%d}"
            )
        raise RefusedError(
            f"an entry is at {record.dn} again (its identifier handed out meanwhile by a host "
            "that did not know of the purge?): nothing restored; see who holds it"
        )
    archived = verified_archive(record, accept_unverified=accept_unverified)
    attributes, left_out = restored_attributes(runtime, record, archived)
    if dry_run:
        lowered = {name.lower(): values for name, values in attributes.items()}
        account = account_from_entry(Entry(record.dn, lowered), runtime.config)
        return outcome(
            runtime, account, "restore", f"would be restored from {record.archive}", changed=True
        )
    runtime.audit.ensure_writable()
    changes = {name: {"before": [], "after": values} for name, values in attributes.items()}
    details = {
        "archive": str(record.archive),
        "archive_sha256": record.archive_sha256 or "none recorded (accepted unverified)",
        "not_restored": left_out,
    }
    try:
        runtime.directory.add(record.dn, attributes)
    except UnavailableError as error:
        audit_uncertain(runtime, "restore", record.account, changes, error, details)
        raise
    runtime.store.mark_restored(record.account, runtime.clock.now())
    runtime.audit.append("restore", record.account, changes, "ok", **details)
    entry = runtime.directory.read(record.dn, ["*", "pwdEndTime"])
    assert entry is not None
    account = account_from_entry(entry, runtime.config)
    return outcome(
        runtime,
        account,
        "restore",
        _restored_message(runtime, account, record, left_out),
        changed=True,
    )


def _restored_message(
    runtime: Runtime, account: Account, record: PurgeRecord, left_out: list[str]
) -> str:
    profile = runtime.config.profiles.get(account.profile_key or "")
    reopen = "`umacct create` with the person's intake row reinstates it (activation link sent)"
    if profile is not None and profile.extendable:
        reopen += (
            f", or `umacct extend {account.identifier} --force --reason ...` gives it a grace "
            f"period, then `umacct reset {account.identifier}` a password"
        )
    unusual = [item for item in left_out if item.split(" ")[0].lower() not in _NOT_RESTORED]
    dropped = f"; not restored: {', '.join(unusual)}" if unusual else ""
    return (
        f"restored from {record.archive}: expired, with no usable password{dropped}; "
        f"to reopen it, {reopen}"
    )


def verified_archive(record: PurgeRecord, *, accept_unverified: bool = False) -> LdifEntry:
    """The one entry of the purge's archive, once its bytes match the digest of the record.

    Exit 65 when they do not (the file changed since the purge: nothing vouches for any of
    it) or when the entry is not the purged account (another DN, uid or identifier); exit 77
    for a purge recorded before digests were kept, unless ``accept_unverified``.
    """
    try:
        data = record.archive.read_bytes()
    except OSError as exc:
        raise UnavailableError(f"cannot read the archive {record.archive}: {exc.strerror}") from exc
    if record.archive_sha256 is None:
        if not accept_unverified:
            raise RefusedError(
                f"{record.account} was purged before archives got a recorded SHA-256: nothing "
                f"shows {record.archive} is unchanged; check it, then restore with "
                "--accept-unverified-archive"
            )
    elif not hmac.compare_digest(hashlib.sha256(data).hexdigest(), record.archive_sha256):
        raise InvalidInputError(
            f"{record.archive} is not the archive written when {record.account} was purged "
            "(its SHA-256 differs: changed or damaged); nothing restored"
        )
    try:
        entries = list(parse_ldif(data.decode("utf-8")))
    except UnicodeDecodeError:
        raise InvalidInputError(f"{record.archive}: not UTF-8 text") from None
    if len(entries) != 1:
        raise InvalidInputError(f"{record.archive}: expected one entry, found {len(entries)}")
    archived = entries[0]
    if archived.dn.lower() != record.dn.lower():
        raise InvalidInputError(
            f"{record.archive} holds {archived.dn!r}, not {record.dn!r} that was purged; nothing restored"
        )
    return archived


def restored_attributes(
    runtime: Runtime, record: PurgeRecord, archived: LdifEntry
) -> tuple[dict[str, list[str]], list[str]]:
    """What a restore writes, and what it leaves out (``name (why)``).

    Written: each attribute type the server's schema knows (by name, alias or OID, merged
    under its first name), unless it is operational, a password or password-policy type
    (``userPassword`` and its subtypes, any ``*password*``, any ``pwd*``) or the forwarding
    (an expired account has none); ``objectClass`` keeps only the tool's classes and their
    superiors. The state becomes expired from today and ``pwdEndTime`` is set again, so the
    account stays expired (the directory refuses its logins). Binary values stay in the
    archive. The uid and identifier must be those of the purge record (65 otherwise).
    """
    from umacct.services.create import OBJECT_CLASSES

    schema = runtime.directory.subschema()
    names = runtime.config.attributes
    managed = {
        (schema.attribute_name(name) or name).lower(): name
        for name in (names.state, names.state_date, names.forwarding, "pwdEndTime")
    }
    classes = set().union(*(schema.class_lineage(name) for name in OBJECT_CLASSES))
    kept: dict[str, list[str]] = {}
    left_out = [f"{name} (binary, kept in the archive)" for name in archived.binary]
    for description, values in archived.attributes.items():
        base, semicolon, options = description.partition(";")
        name = schema.attribute_name(base)
        why = _not_restored(schema, name)
        if name is None or why is not None:
            left_out.append(f"{description} ({why})")
            continue
        refused = [
            value
            for value in (values if name.lower() == "objectclass" else [])
            if (schema.class_name(value) or value).lower() not in classes
        ]
        left_out += [f"objectClass {value!r} (not a class of the tool)" for value in refused]
        if managed.get(name.lower()) == names.forwarding:
            left_out.append(f"{description} (an expired account has no forwarding)")
            continue
        target = kept.setdefault(f"{name}{semicolon}{options}", [])
        target.extend(value for value in values if value not in target and value not in refused)
    _check_identity(record, kept)
    # Expired from today: the purge delay starts again, so the next sweep does not purge it.
    restarted = expired_states(runtime.today() - timedelta(days=1))
    for key, name in managed.items():
        current = next((v for k, v in kept.items() if k.lower() == key), [])
        kept = {k: v for k, v in kept.items() if k.lower() != key}
        if name == names.state_date:
            kept[name] = replace_state_dates(current, restarted)
        elif name == names.state:
            kept[name] = replace_statuses(current, restarted)
    end = expiry_instant(runtime.today() - timedelta(days=1), runtime.config.policy.timezone)
    kept["pwdEndTime"] = [to_generalized_time(end)]
    return {name: values for name, values in kept.items() if values}, left_out


def _not_restored(schema: Subschema, name: str | None) -> str | None:
    """Why an attribute type is never restored, or None when it may be."""
    if name is None:
        return "unknown to the schema"
    if schema.is_operational(name):
        return "operational"
    if any("password" in item or item.startswith("pwd") for item in schema.attribute_lineage(name)):
        return "password or password policy"
    return None


def _check_identity(record: PurgeRecord, kept: dict[str, list[str]]) -> None:
    def first(name: str) -> str | None:
        return next(
            (values[0] for key, values in kept.items() if key.lower() == name and values), None
        )

    uid = first("uid") or ""
    identifier = (first("mail") or uid or record.dn).lower()
    if uid != record.uid or identifier != record.account:
        raise InvalidInputError(
            f"{record.archive} is for {identifier!r} (uid {uid!r}), not the purged "
            f"{record.account} (uid {record.uid!r}); nothing restored"
        )
