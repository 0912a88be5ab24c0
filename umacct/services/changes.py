"""One way to change an account: compare, check the audit log, write atomically, audit.

Every use case that modifies an entry goes through ``apply_change`` so that each change is
compared with what was read (nothing is written when nothing differs), guarded against a
concurrent writer by the assertion control, and recorded in the audit log, before and after.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from umacct.config import Config
from umacct.directory.escape import filter_and, filter_eq, filter_not, filter_present
from umacct.directory.modifies import ModifyRequest, PendingModify, Settled
from umacct.errors import UnavailableError
from umacct.services.accounts import CHANGE_MARK, Account, account_from_entry
from umacct.services.runtime import Runtime

UNCERTAIN = "unknown"
"""The audit result of a write whose answer never came back (the connection broke)."""


@dataclass(frozen=True)
class PlannedChange:
    """The new values of some attributes of one account (an empty list removes the attribute)."""

    account: Account
    targets: Mapping[str, Sequence[str]]

    def differences(self) -> dict[str, tuple[list[str], list[str]]]:
        """Attribute -> (before, after), for the attributes whose values really change."""
        changed: dict[str, tuple[list[str], list[str]]] = {}
        for attribute, after in self.targets.items():
            before = self.account.values(attribute)
            if sorted(before) != sorted(after):
                changed[attribute] = (before, list(after))
        return changed

    def simulate(self, config: Config) -> Account:
        """The account as it reads after the change (or would, for a dry run).

        A change is applied whole or refused (assertion control), so this is what the
        directory holds: no need to read the entry back.
        """
        attributes = dict(self.account.entry.attributes)
        for attribute, values in self.targets.items():
            attributes[attribute.lower()] = list(values)
        return account_from_entry(replace(self.account.entry, attributes=attributes), config)


def guard_filter(runtime: Runtime, account: Account) -> str:
    """An assertion that the entry's state is still the one we read (compare-and-swap)."""
    attribute = runtime.config.attributes.state_date
    values = account.values(attribute)
    if not values:
        return filter_not(filter_present(attribute))
    return filter_and(*(filter_eq(attribute, value) for value in values))


def modify_of(
    runtime: Runtime,
    change: PlannedChange,
    differences: Mapping[str, tuple[list[str], list[str]]] | None = None,
) -> ModifyRequest:
    """The modify that writes ``change``: its differences replaced, under the state's guard."""
    from umacct.directory import Change

    return ModifyRequest(
        change.account.dn,
        tuple(
            Change("replace", attribute, tuple(after))
            for attribute, (_, after) in (differences or change.differences()).items()
        ),
        guard_filter(runtime, change.account),
        unchanged=_unchanged_filter(change.account),
    )


def _unchanged_filter(account: Account) -> str | None:
    marks = account.values(CHANGE_MARK)
    return filter_eq(CHANGE_MARK, marks[0]) if len(marks) == 1 else None


def send_changes(
    runtime: Runtime, changes: Sequence[PlannedChange], *, command: str
) -> dict[int, PendingModify]:
    """Send the writes of ``changes`` ahead of their audit (see ``apply_change``'s ``sent``).

    First one ``pending`` audit record, on disk, names the accounts about to be written (as
    a bulk intake's does): a process killed before the writes' own records leaves that
    trace. Returns, by ``id()`` of each change that differs from what was read, its modify
    in flight; ``close()`` the batch of any of them once every one was applied
    (``apply_change``).
    """
    writes = [(change, differences) for change in changes if (differences := change.differences())]
    if not writes:
        return {}
    audit = runtime.audit
    audit.write([audit.record(
        command, None, {}, "pending", accounts=[change.account.identifier for change, _ in writes]
    )])  # fmt: skip
    batch = runtime.directory.modify_many(
        [modify_of(runtime, change, differences) for change, differences in writes]
    )
    return {id(change): PendingModify(batch, index) for index, (change, _) in enumerate(writes)}


def apply_change(
    runtime: Runtime,
    change: PlannedChange,
    *,
    command: str,
    dry_run: bool = False,
    details: Mapping[str, object] | None = None,
    sent: PendingModify | None = None,
) -> dict[str, tuple[list[str], list[str]]]:
    """Write the change (unless ``dry_run``) and audit it; return what differed.

    The audit log is checked writable before the directory is touched, so that a change is
    never made without its record (security 22). A concurrent change of the account's state
    makes the directory refuse the write (ConflictError, exit 75): run the command again.
    A connection lost during the write is audited as ``unknown`` (see ``audit_uncertain``)
    and raised (UnavailableError, exit 69).

    ``sent``: the write already went (``send_changes``, with others): its answer is read
    here. Its connection lost, the write is settled on a fresh one (``ModifyBatch.settle``):
    applied after all, it is audited as done and the loss is left to the batch to raise;
    never sent, it is not audited; undecidable, it is audited ``unknown`` as above.
    """
    differences = change.differences()
    if not differences or dry_run:
        return differences
    audited = {
        attribute: {"before": before, "after": after}
        for attribute, (before, after) in differences.items()
    }
    identifier = change.account.identifier
    if sent is None:
        runtime.audit.ensure_writable()
        directory = runtime.directory  # connecting first: a failure here sent nothing
        request = modify_of(runtime, change, differences)
        try:
            directory.modify(request.dn, request.changes, assertion=request.assertion)
        except UnavailableError as error:
            audit_uncertain(runtime, command, identifier, audited, error, details)
            raise
    else:
        try:
            sent.result()
        except UnavailableError as error:
            settled = sent.settle(runtime.connect_directory)
            if settled is Settled.NOT_SENT:
                raise
            if settled is Settled.UNKNOWN:
                audit_uncertain(runtime, command, identifier, audited, error, details)
                raise
            # Applied after all: what follows the write (an expiry's alias, the notices)
            # must not meet the lost connection.
            runtime.forget_lost_directory()
    runtime.audit.append(command, identifier, audited, "ok", **dict(details or {}))
    return differences


def audit_uncertain(
    runtime: Runtime,
    command: str,
    account: str,
    changes: Mapping[str, Mapping[str, list[str]]],
    error: UnavailableError,
    details: Mapping[str, object] | None = None,
) -> None:
    """Record a write whose answer was lost: the server may have applied it or not.

    The connection broke after the request left, so only the directory knows whether the
    change was made; this record keeps every change in the directory matched by a line.
    """
    runtime.audit.append(
        command,
        account,
        changes,
        UNCERTAIN,
        **dict(details or {}),
        error=error.message,
        note="the directory may or may not have applied this change; a rerun completes it",
    )
