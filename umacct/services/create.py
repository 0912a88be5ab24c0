"""``umacct create``: new accounts, one person or a whole intake file, and returning people.

One code path serves both: rows (``IntakeRow``, from the CSV parser or built by
``new_person``) are looked up first, a few hundred per search: the people already known (by
external id, or by names, personal address and profile) and the identifiers already taken;
then they are added in batches, pipelined, so that the cost of an intake is about one add
per person. A person already known is never created twice: an account awaiting activation or
active is reported as existing; an account in its grace period, expired or purged is
reinstated, awaiting a new activation.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Generator, Sequence

from umacct.audit import AuditRecord
from umacct.directory import AddsSent, AlreadyExistsError
from umacct.directory.escape import dn_join
from umacct.errors import InvalidInputError, RefusedError, UmacctError, UnavailableError
from umacct.identifiers import (
    choose_local_part,
    institutional_address,
)
from umacct.intake import IntakeRow
from umacct.mail.mailer import WORKER_BATCH
from umacct.policy import ResourceState, Stage
from umacct.services.accounts import Account, account_attributes, account_from_entry
from umacct.services.addresses import institution_domain_of
from umacct.services.arrivals import (
    PRECREATED,
    ActivationLink,
    Recipient,
    send_activation_link,
    start_activation_links,
)
from umacct.services.changes import PlannedChange, apply_change, audit_uncertain
from umacct.services.create_batches import (
    BatchInFlight,
    BatchPlanned,
    BatchSent,
    Mailing,
    row_keys,
    run_batches,
)
from umacct.services.create_entry import OBJECT_CLASSES, NewEntries
from umacct.services.create_lookup import (
    IdentityKeys,
    Known,
    PurgeSnapshot,
    existing_accounts,
    look_up,
    remember,
)
from umacct.services.create_results import CreateOutcome, NewAccount, RowFailure, row_failure
from umacct.services.profiles import (
    ALIAS_ATTRIBUTE,
    REF_PREVIOUS,
    add_profile_change,
    link_previous_account,
    moves_domain,
    tell_profile_added,
)
from umacct.services.returning import (
    check_archived_names,
    reinstatement,
    tell_previous_addresses,
)
from umacct.services.runtime import Runtime
from umacct.store import PurgeRecord
from umacct.tokens import TokenPurpose

__all__ = [
    "OBJECT_CLASSES",
    "CreateOutcome",
    "RowFailure",
    "create_people",
    "create_person",
]

BATCH_SIZE = 200
"""Rows planned and added together (pipelined), their mail sent while the next batch is added."""
INTAKE_LOCK_WAIT_SECONDS = 10
"""How long a run that creates accounts waits for another one to finish, then exit 75."""
_ADD_ATTEMPTS = 3


# --- use cases --------------------------------------------------------------------------------


def create_person(
    runtime: Runtime, person: IntakeRow, *, send_mail: bool = True, dry_run: bool = False
) -> CreateOutcome:
    """``umacct create``: create one person's account, or report or reinstate the existing one.

    Raises the row's error (InvalidInputError, RefusedError...) instead of reporting it.
    """
    creator = _Creator(runtime, send_mail=send_mail, dry_run=dry_run)
    with _intake_lock(runtime, dry_run=dry_run):
        known = look_up(runtime, [person])
        return creator.create(person, known)


def _intake_lock(runtime: Runtime, *, dry_run: bool) -> contextlib.AbstractContextManager[None]:
    """The intake's lock for a real run (waits a little, then exit 75 naming the holder).

    Two runs that create accounts at once would each find nobody and add the same people.
    """
    if dry_run:
        return contextlib.nullcontext()
    return runtime.store.job_lock("create", wait_seconds=INTAKE_LOCK_WAIT_SECONDS)


def create_people(
    runtime: Runtime,
    rows: Sequence[IntakeRow],
    *,
    send_mail: bool = True,
    dry_run: bool = False,
) -> Generator[CreateOutcome | RowFailure, None, None]:
    """``umacct create --csv``: one result per row, in order, as each row is done.

    A row that fails becomes a RowFailure and the others go on; a directory or store that
    becomes unreachable stops the run (running the same file again completes it).

    The activation mails of a batch go out in the background while the next batch is
    looked up and added; a batch's results come once its mails were sent or queued. A run
    that stops early still waits for the mails already handed over, and queues those the
    relay did not take, before the error goes up.
    """
    creator = _Creator(runtime, send_mail=send_mail, dry_run=dry_run)
    with _intake_lock(runtime, dry_run=dry_run):
        yield from run_batches(runtime, creator, rows, BATCH_SIZE)


# --- the work ---------------------------------------------------------------------------------


def _state_words(state: ResourceState | None) -> str | None:
    return f"{state.state}:{state.substate}" if state else None


class _Creator:
    """One run of ``create``: remembers the identifiers it hands out, checks the audit log once."""

    def __init__(self, runtime: Runtime, *, send_mail: bool, dry_run: bool) -> None:
        self.runtime = runtime
        self.config = runtime.config
        self.send_mail = send_mail
        self.dry_run = dry_run
        self.today = runtime.today()
        self.claimed: set[str] = set()
        self.touched: set[str] = set()
        """Lower-cased DNs of the existing accounts rows of this run matched (and may change)."""
        self._audit_checked = False
        self.purges = PurgeSnapshot(runtime.store)
        self.entries = NewEntries(runtime, self.today)
        self.identity = IdentityKeys(self.config)

    # --- one row --------------------------------------------------------------------------------

    def create(self, row: IntakeRow, known: Known) -> CreateOutcome:
        """Create, report or reinstate the person of one row."""
        planned = self._plan(row, known)
        return self._new(planned, known) if isinstance(planned, NewAccount) else planned

    def expect_mail(self, rows: Sequence[IntakeRow], known: Known) -> None:
        """Start the mail process at once when enough rows are new people to fill its batches."""
        if not self.send_mail or self.dry_run:
            return
        people = known.by_external_id.keys() | known.by_personal_mail.keys()
        new = sum(1 for row in rows if people.isdisjoint(row_keys(row)))
        if new >= WORKER_BATCH:
            self.runtime.mailer.expect_large_batches()

    def plan_batch(self, rows: Sequence[IntakeRow], known: Known) -> BatchPlanned:
        """The rows of a batch planned, in order: each a result, or a new account to add.

        Planning stops before a row that may be the person of a new account planned before
        it in the batch (same external id or personal address): that row is planned once
        the server has added that account, as the first of the next batch.
        """
        self.purges.take(
            rows,
            lambda uid: uid in known.taken or uid in self.claimed,
            self.config.policy.reserved_local_parts,
        )
        planned: list[CreateOutcome | RowFailure | NewAccount] = []
        keys: set[str] = set()
        for row in rows:
            if keys and not keys.isdisjoint(row_keys(row)):
                break
            try:
                item = self._plan(row, known)
            except UmacctError as error:
                planned.append(row_failure(row, error))
                continue
            planned.append(item)
            if isinstance(item, NewAccount):
                keys |= self.identity.of(item.attributes)
        self._recheck_purges(planned, known)
        return BatchPlanned(planned, keys)

    def send_batch(self, batch: BatchPlanned) -> BatchSent:
        """Send the adds of a planned batch's new accounts together (pipelined), unanswered.

        Audit order, so that a crash never loses the record of an entry added: one record
        naming every account about to be added is written and flushed before the adds are
        sent; then, once the server has answered (``confirm``), one record per account
        added, flushed with the next batch's pending record or before any result of the
        batch is reported, whichever comes first (one disk flush a batch).
        """
        new = [item for item in batch.planned if isinstance(item, NewAccount)]
        adds = self._send_adds(new) if new and not self.dry_run else None
        return BatchSent(batch.planned, new, adds, batch.keys if adds else set())

    def confirm(self, sent: BatchSent, known: Known) -> BatchInFlight:
        """Read the answers of a batch's adds, audit them, and start mailing its links."""
        if sent.adds is not None:
            self._read_adds(sent.new, sent.adds, known)
        return BatchInFlight(
            self, sent.planned, sent.new, self._start_links(sent.new), self.runtime.audit.written
        )

    def _recheck_purges(
        self, planned: list[CreateOutcome | RowFailure | NewAccount], known: Known
    ) -> None:
        """A chosen identifier purged since the batch's snapshot gives way to the next free one."""
        chosen = [item for item in planned if isinstance(item, NewAccount)]
        if self.dry_run or not (purged := self.purges.recheck([item.uid for item in chosen])):
            return
        for index, item in enumerate(planned):
            if isinstance(item, NewAccount) and item.uid in purged:
                try:
                    planned[index] = self._prepare(item.row, known)
                except UmacctError as error:
                    planned[index] = row_failure(item.row, error)

    def _send_adds(self, new: list[NewAccount]) -> AddsSent:
        """The pending record written and flushed, then the adds sent."""
        self._check_audit()
        audit = self.runtime.audit
        audit.write([audit.record(
            "create", None, {}, "pending", accounts=[item.identifier for item in new],
            lines=[item.row.line for item in new if item.row.line],
        )])  # fmt: skip
        try:
            return self.runtime.directory.send_adds((item.dn, item.attributes) for item in new)
        except UnavailableError as error:
            self._uncertain(new, error)
            raise

    def _read_adds(self, new: list[NewAccount], adds: AddsSent, known: Known) -> None:
        """Each add's answer: audited and known, or the row's failure.

        A taken identifier is retried alone. Accounts whose answers a lost connection kept are audited as uncertain: a rerun
        completes them.
        """
        audit = self.runtime.audit
        records = []
        retries = []
        answered = 0
        try:
            for item, result in zip(new, adds, strict=True):
                answered += 1
                if result.error is None:
                    records.append(self._create_record(item))
                    remember(known, self.config, item.dn, item.attributes)
                elif isinstance(result.error, AlreadyExistsError):
                    retries.append(item)  # created meanwhile by someone else
                else:
                    item.outcome = row_failure(item.row, result.error)
        except UnavailableError as error:
            self._uncertain(new[answered:], error)
            raise
        finally:
            # Flushed with the next batch's pending record, or before this batch's results.
            audit.write(records, sync=False)
        for item in retries:
            try:
                self._add_one(item, known, _ADD_ATTEMPTS - 1)
            except UmacctError as error:
                item.outcome = row_failure(item.row, error)

    def _uncertain(self, new: list[NewAccount], error: UnavailableError) -> None:
        for item in new:
            details = self._details(item.row)
            audit_uncertain(self.runtime, "create", item.identifier, _changes(item), error, details)

    def _start_links(self, new: list[NewAccount]) -> Mailing:
        """Record the tokens of the accounts just added and start mailing their links."""
        done = [item for item in new if item.outcome is None]
        mailed = [item for item in done if self._mails_link(item.states[0]) and not self.dry_run]
        links = start_activation_links(self.runtime, [
            Recipient(item.identifier, _full_name(item.row), item.row.personal_email)
            for item in mailed
        ]) if mailed else None  # fmt: skip
        return Mailing(done, mailed, links)

    def describe(self, mailing: Mailing) -> None:
        """Wait for the links of a batch, then describe each account added."""
        links = mailing.links.links() if mailing.links else []
        by_item = {id(item): link for item, link in zip(mailing.mailed, links, strict=True)}
        for item in mailing.done:
            item.outcome = self._outcome(
                item.row, item.identifier, item.uid, item.states[0],
                _new_action(item.states), by_item.get(id(item)),
            )  # fmt: skip

    def _plan(self, row: IntakeRow, known: Known) -> CreateOutcome | NewAccount:
        """Report or reinstate the person of one row; or plan their new account."""
        if row.end_of_activity is not None and row.end_of_activity < self.today:
            raise InvalidInputError(
                f"end of activity {row.end_of_activity} is in the past: nothing to create"
            )
        own = institution_domain_of(self.config, row.personal_email)
        if own is not None:
            raise InvalidInputError(
                f"personal address {row.personal_email} is inside the institution's domain "
                f"{own}: the activation link must go to an address outside it"
            )
        matches = existing_accounts(row, known)
        if any(account.dn.lower() in self.touched for account in matches):
            # An earlier row of this run changed it: decide on the account as it is now.
            matches = existing_accounts(row, look_up(self.runtime, [row]))
        self.touched.update(account.dn.lower() for account in matches)
        if len(matches) > 1:
            names = ", ".join(sorted(account.identifier for account in matches))
            raise InvalidInputError(
                f"{self._who(row)} matches {len(matches)} accounts ({names}); fix the directory first"
            )
        if matches:
            result = self._existing(row, matches[0])
            self._reread(matches[0], known)
            return result
        if row.external_id:
            record = self.purges.find(row.external_id)
            if record and (record.external_id or "").casefold() == row.external_id.casefold():
                check_archived_names(row, record)
                return self._restore(row, record)
        return self._prepare(row, known)

    def _reread(self, account: Account, known: Known) -> None:
        """What a row did to an existing account becomes known, as a new look-up would see it.

        The account is read back (a real run may have changed its addresses or profiles) so
        that the later rows of the run match it by its new values.
        """
        if self.dry_run:
            return
        entry = self.runtime.directory.read(account.dn, account_attributes(self.config))
        if entry is not None:
            remember(known, self.config, entry.dn, entry.attributes)

    def _who(self, row: IntakeRow) -> str:
        if row.external_id:
            return f"external id {row.external_id!r}"
        return f"{row.name.given_name} {row.name.surname} <{row.personal_email}> ({row.profile})"

    def _existing(self, row: IntakeRow, account: Account) -> CreateOutcome:
        stage = account.stage
        if stage in (Stage.GRACE, Stage.EXPIRED):
            return self._reinstate(row, account, "reinstated")
        held = {activity.profile_key for activity in account.activities}
        if stage is not Stage.FOREIGN and held and row.profile not in held:
            if moves_domain(self.runtime, account, row.profile):
                return self._new_address(row, account)
            return self._add_profile(row, account)
        if stage is Stage.FOREIGN:
            raise RefusedError(
                f"{account.identifier} ({self._who(row)}) is in state "
                f"{_state_words(account.account_state)} set by another tool; left alone"
            )
        link = None
        message = f"already exists ({stage.value}): nothing created"
        if stage is Stage.CREATED and self.send_mail and not self._link_on_its_way(account):
            # Created by a run that stopped before mailing (server lost mid-batch): the
            # person would otherwise never get a link.
            message = "already exists, awaiting activation with no link on its way"
            if not self.dry_run:
                link = send_activation_link(
                    self.runtime, account.identifier, account.display_name, row.personal_email
                )
                message += f": {link.words(row.personal_email)}"
        return CreateOutcome(
            account=account.identifier,
            uid=account.uid,
            profile=account.profile_key or row.profile,
            state=_state_words(account.account_state),
            action="exists",
            changed=link is not None,
            arrival=row.arrival or self.today,
            activation_expires=link.expires if link else None,
            mail=link.mail if link else None,
            message=message,
            line=row.line or None,
        )

    def _new_address(self, row: IntakeRow, previous: Account) -> CreateOutcome:
        """``new_address_on_profile_change``: a new account in the new profile's domain.

        It is linked to the old one (``supannRefId``), the old address an alias of it until the
        old account expires.
        """
        planned = self._prepare(row, look_up(self.runtime, [row]))
        planned.attributes["supannRefId"] = [f"{REF_PREVIOUS}{previous.identifier}"]
        planned.attributes[ALIAS_ATTRIBUTE] = [previous.identifier]
        created = self._new(planned, look_up(self.runtime, [row]))
        if not self.dry_run:
            link_previous_account(self.runtime, previous, created.account)
        message = (
            f"{created.message}; new address for the {row.profile} profile, linked to "
            f"{previous.identifier}, which stays an alias until that account expires"
        )
        return dataclasses.replace(created, message=message)

    def _add_profile(self, row: IntakeRow, account: Account) -> CreateOutcome:
        """One person, one account: the row's profile joins the ones the account has."""
        self._apply(row, add_profile_change(self.runtime, account, row), profile_added=row.profile)
        if not self.dry_run:
            tell_profile_added(self.runtime, account, row.profile)
        return CreateOutcome(
            account=account.identifier,
            uid=account.uid,
            profile=row.profile,
            state=_state_words(account.account_state),
            action="profile-added",
            changed=True,
            arrival=row.arrival or self.today,
            activation_expires=None,
            mail=None,
            message=f"{'would add' if self.dry_run else 'added'} profile {row.profile} to the "
            "account the person already has",
            line=row.line or None,
        )

    def _link_on_its_way(self, account: Account) -> bool:
        """Whether a usable activation link exists or waits in the mail queue."""
        purpose = TokenPurpose.ACTIVATION
        if any(
            token.purpose is purpose for token in self.runtime.tokens.pending(account.identifier)
        ):
            return True
        return any(
            mail.link_purpose == purpose.value
            for mail in self.runtime.mailer.pending(account.identifier)
        )

    def _prepare(self, row: IntakeRow, known: Known) -> NewAccount:
        """Choose the identifier of a new account (claimed for this run) and its entry."""
        profile = self.config.profiles[row.profile]
        states = self.entries.states(row.arrival)
        uid = choose_local_part(
            row.name.local_part,
            lambda candidate: self._taken(candidate, known),
            self.config.policy.reserved_local_parts,
        )
        identifier = institutional_address(uid, profile.domain)
        dn = dn_join("uid", uid, self.config.directory.people_dn)
        attributes = self.entries.attributes(row, profile, uid, identifier, states)
        self.claimed.add(uid)
        return NewAccount(row, uid, identifier, dn, attributes, states)

    def _new(self, planned: NewAccount, known: Known) -> CreateOutcome:
        """Add one planned account (not in a dry run) and mail its link."""
        if not self.dry_run:
            self._check_audit()
            planned = self._add_one(planned, known, _ADD_ATTEMPTS)
            if planned.outcome is not None:  # created meanwhile by another writer
                assert isinstance(planned.outcome, CreateOutcome)
                return planned.outcome
        self.describe(self._start_links([planned]))
        assert isinstance(planned.outcome, CreateOutcome)
        return planned.outcome

    def _add_one(self, planned: NewAccount, known: Known, attempts: int) -> NewAccount:
        """Add the account; when its identifier was taken meanwhile, the next one.

        Taken meanwhile may mean that another writer created this very person: the person is
        looked up again first, and then reported as existing instead of created twice.
        """
        for _ in range(attempts):
            try:
                self.runtime.directory.add(planned.dn, planned.attributes)
            except AlreadyExistsError:
                fresh = look_up(self.runtime, [planned.row])
                matches = existing_accounts(planned.row, fresh)
                if matches:
                    planned.outcome = self._existing(planned.row, matches[0])
                    return planned
                known.taken |= fresh.taken
                planned = self._prepare(planned.row, known)
                continue
            self.runtime.audit.write([self._create_record(planned)])
            remember(known, self.config, planned.dn, planned.attributes)
            return planned
        raise InvalidInputError(
            f"{self._who(planned.row)}: the identifiers chosen kept being taken meanwhile; "
            "run again"
        )

    def _create_record(self, planned: NewAccount) -> AuditRecord:
        return self.runtime.audit.record_added(
            "create", planned.identifier, planned.attributes, "ok", **self._details(planned.row)
        )

    def _taken(self, candidate: str, known: Known) -> bool:
        # A purged identifier is never handed out again (security 21).
        return (
            candidate in known.taken
            or candidate in self.claimed
            or self.purges.find(candidate) is not None
        )

    def _apply(self, row: IntakeRow, change: PlannedChange, **details: object) -> None:
        """Write a change to an existing person's account for ``row`` (audited first)."""
        if not self.dry_run:
            self._check_audit()
        apply_change(
            self.runtime,
            change,
            command="create",
            dry_run=self.dry_run,
            details={**self._details(row), **details},
        )

    def _details(self, row: IntakeRow) -> dict[str, object]:
        return {"line": row.line} if row.line else {}

    def _check_audit(self) -> None:
        if not self._audit_checked:
            self.runtime.audit.ensure_writable()
            self._audit_checked = True

    # --- returning people ---------------------------------------------------------------------

    def _restore(self, row: IntakeRow, record: PurgeRecord) -> CreateOutcome:
        """A purged person comes back: their archived entry returns, then is reinstated."""
        from umacct.services.purge import restore

        if self.dry_run:
            return CreateOutcome(
                account=record.account,
                uid=record.uid,
                profile=row.profile,
                state="I:SupannCree",
                action="restored",
                changed=True,
                arrival=row.arrival or self.today,
                activation_expires=None,
                mail=None,
                message=f"would be restored from {record.archive} and reinstated",
                line=row.line or None,
            )
        restore(self.runtime, record.account)
        entry = self.runtime.directory.read(record.dn, account_attributes(self.config))
        if entry is None:
            raise InvalidInputError(f"{record.account}: restored but not found at {record.dn}")
        return self._reinstate(row, account_from_entry(entry, self.config), "restored")

    def _reinstate(self, row: IntakeRow, account: Account, action: str) -> CreateOutcome:
        """Back to awaiting activation: the old password goes (others may know it).

        When the row brings another personal address, the previous one is told.
        """
        change, states = reinstatement(self.runtime, account, row, self.today)
        previous = account.values(self.config.attributes.personal_mail)
        self._apply(row, change, reinstated=True)
        if not self.dry_run:
            self.runtime.tokens.cancel(account.identifier)
            tell_previous_addresses(self.runtime, account, previous, row.personal_email)
        after = change.simulate(self.config)
        return self._finish(row, after.identifier, after.uid, states[0], action)

    # --- the end of every path ----------------------------------------------------------------

    def _mails_link(self, state: ResourceState) -> bool:
        return state.substate != PRECREATED and self.send_mail

    def _finish(
        self, row: IntakeRow, identifier: str, uid: str, state: ResourceState, action: str
    ) -> CreateOutcome:
        """Mail the activation link unless pre-created, --no-mail or a dry run; describe it."""
        link = None
        if self._mails_link(state) and not self.dry_run:
            link = send_activation_link(
                self.runtime, identifier, _full_name(row), row.personal_email
            )
        return self._outcome(row, identifier, uid, state, action, link)

    def _outcome(
        self,
        row: IntakeRow,
        identifier: str,
        uid: str,
        state: ResourceState,
        action: str,
        link: ActivationLink | None,
    ) -> CreateOutcome:
        arrival = row.arrival if row.arrival and row.arrival > self.today else self.today
        if state.substate == PRECREATED:
            message = f"pre-created: the activation link goes to {row.personal_email} on {arrival}"
        elif not self.send_mail:
            message = "awaiting activation; no mail sent (send it with 'umacct activate')"
        elif link is None:
            message = f"the activation link would go to {row.personal_email}"
        else:
            message = link.words(row.personal_email)
        return CreateOutcome(
            account=identifier,
            uid=uid,
            profile=row.profile,
            state=_state_words(state),
            action=action,
            changed=True,
            arrival=arrival,
            activation_expires=link.expires if link else None,
            mail=link.mail if link else None,
            message=message,
            line=row.line or None,
        )


def _changes(planned: NewAccount) -> dict[str, dict[str, list[str]]]:
    """The audited changes of a new account: every attribute, from nothing to its values.

    The values are the entry's own lists: the audit record copies them (``AuditLog.record``).
    """
    return {name: {"before": [], "after": values} for name, values in planned.attributes.items()}


def _full_name(row: IntakeRow) -> str:
    return f"{row.name.given_name} {row.name.surname}"


def _new_action(states: Sequence[ResourceState]) -> str:
    return "precreated" if states[0].substate == PRECREATED else "created"
