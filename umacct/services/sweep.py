"""The daily sweep: suspend what is due, warn, expire, reactivate, list or purge.

Each group of accounts is found with a server-side filter on an ordered date attribute
(the profile's end of activity, ppolicy's ``pwdEndTime``), so the cost follows the number
of accounts due, not the directory's size. Running it twice the same day changes nothing.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

from umacct.due_filters import steps_filter, suspension_filter
from umacct.errors import InvalidInputError, RefusedError, UmacctError
from umacct.mail.mailer import WORKER_BATCH
from umacct.policy import ActionKind, Stage, awaiting_deletion_states
from umacct.services.accounts import Account, evaluate_account, iter_accounts, profile_of
from umacct.services.arrivals import arrival_day, arrivals_due, arrive
from umacct.services.changes import PlannedChange, send_changes
from umacct.services.lifecycle import (
    AccountOutcome,
    active_change,
    enter_grace,
    outcome,
    send_warning,
    state_targets,
)
from umacct.services.profiles import drop_ended_profile_affiliations, ended_profile_affiliations
from umacct.services.purge import purge_account
from umacct.services.runtime import Runtime
from umacct.services.steps import MailThen, Step, expire_step, grace_step, notice_step

if TYPE_CHECKING:
    from umacct.config import ProfileConfig


@dataclass
class SweepSummary:
    """Counts by action, and the accounts that failed (the sweep goes on after a failure)."""

    as_of: date
    dry_run: bool
    counts: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    purges_left: int = 0
    """Accounts still purgeable when the purge cap (``--limit``) stopped the purge."""

    def add(self, result: AccountOutcome) -> None:
        """Count one account's outcome."""
        self.counts[result.action] += 1


def due_accounts(runtime: Runtime, as_of: date) -> Iterator[Account]:
    """Every account some step of the sweep may concern, each once (arrivals first).

    Two searches: the arrivals, then one OR of the other steps' filters. On a server without
    the README's indexes each search reads every entry, so one OR costs less than a search
    per step (bench/RESULTS.md); the accounts come in the server's order, not step by step.
    """
    seen: set[str] = set()
    for account in arrivals_due(runtime, marked=True):
        seen.add(account.dn.lower())
        yield account
    steps = steps_filter(runtime.config, as_of)
    for account in iter_accounts(runtime.directory, runtime.config, steps, marked=True):
        if account.dn.lower() not in seen:
            yield account


_CUTS = frozenset(
    {ActionKind.SUSPEND, ActionKind.SUSPEND_AND_EXPIRE, ActionKind.EXPIRE, ActionKind.PURGE}
)


def cuts_due(
    runtime: Runtime, *, purge: bool, purge_limit: int, accounts: Iterable[Account] | None = None
) -> int:
    """How many accounts the sweep would suspend, expire or purge today (no change made).

    ``accounts``: the accounts due today, already read (else they are searched for).
    """
    count = purges = 0
    due = accounts if accounts is not None else due_accounts(runtime, runtime.today())
    for account in due:
        if account.stage in (Stage.FOREIGN, Stage.PRECREATED):
            continue
        try:
            action = evaluate_account(runtime, account, profile_of(account, runtime.config))
        except UmacctError:
            continue  # the real run reports it
        kind = action.action_due.kind if action.action_due else None
        if kind is None and ended_profile_affiliations(runtime, account) is not None:
            count += 1
        if kind is ActionKind.PURGE:
            if purge and purges < purge_limit:
                purges += 1
                count += 1
        elif kind in _CUTS:
            count += 1
    return count


def check_change_cap(runtime: Runtime, count: int, max_changes: int | None, what: str) -> None:
    """Refuse (exit 77) a run that would cut more accounts than the cap, before any change."""
    cap = max_changes if max_changes is not None else runtime.config.policy.max_changes_per_run
    if count > cap:
        raise RefusedError(
            f"this {what} would suspend, expire or purge {count} accounts, more than the cap "
            f"of {cap} ([policy] max_changes_per_run): nothing changed. Check the list with "
            f"--dry-run; if the wave is real, run again with --max-changes {count}"
        )


def sweep(
    runtime: Runtime,
    summary: SweepSummary,
    *,
    purge: bool = False,
    purge_limit: int = 100,
    max_changes: int | None = None,
    ignore_replication_lag: bool = False,
) -> Iterator[AccountOutcome]:
    """Run the daily sweep for ``summary.as_of``; yield one outcome per account acted on.

    At most ``purge_limit`` accounts are purged (the rest stay purgeable: ``purges_left``).
    A real run that would suspend, expire or purge more than ``max_changes`` accounts
    (default ``[policy] max_changes_per_run``) is refused before any change, and so is one
    while the providers of ``[directory] urls`` disagree (exit 75), unless
    ``ignore_replication_lag`` (audited).
    """
    if purge_limit < 1:
        raise InvalidInputError("--limit must be 1 or more")
    with contextlib.ExitStack() as stack:
        kept: list[Account] | None = None
        if not summary.dry_run:
            from umacct.services.replication import require_providers_in_sync

            require_providers_in_sync(runtime, ignore_lag=ignore_replication_lag)
            stack.enter_context(runtime.store.job_lock("sweep"))
            kept = _kept_due(runtime, summary.as_of)
            count = cuts_due(runtime, purge=purge, purge_limit=purge_limit, accounts=kept)
            check_change_cap(runtime, count, max_changes, "sweep")
            stack.enter_context(runtime.audit.group_commit())
            if not purge and (kept is None or len(kept) >= WORKER_BATCH):
                # Its start-up (an interpreter) overlaps the first batch, not the first mails.
                runtime.mailer.expect_large_batches()
        due = iter(kept if kept is not None else due_accounts(runtime, summary.as_of))
        purged = 0
        waiting: list[_Departures] = []
        """The batches before, oldest first: their departure mails with the mail process."""
        stopped: UmacctError | None = None
        try:
            while stopped is None and (batch := list(itertools.islice(due, SWEEP_BATCH))):
                results: list[AccountOutcome] = []
                with _batched(runtime, dry_run=summary.dry_run, purge=purge):
                    if summary.dry_run or purge:
                        purged, stopped = _sweep_each(
                            runtime, batch, summary, results,
                            purge=purge, purge_limit=purge_limit, purged=purged,
                        )  # fmt: skip
                    else:
                        results, stopped = _sweep_batch(runtime, batch, summary, waiting)
                # Their mail is on disk and their state committed: these results can be told.
                yield from results
            if waiting:  # the last batches' mail, still with the mail process
                with _batched(runtime, dry_run=False, purge=False):
                    results, stopped_late = _settle(waiting, summary, everything=True)
                yield from results
                stopped = stopped or stopped_late
        except BaseException:
            _settle_unheard(runtime, waiting, summary)
            raise
        if stopped is not None:
            raise stopped


def _sweep_each(
    runtime: Runtime,
    batch: list[Account],
    summary: SweepSummary,
    results: list[AccountOutcome],
    *,
    purge: bool,
    purge_limit: int,
    purged: int,
) -> tuple[int, UmacctError | None]:
    """A batch swept one account at a time (a dry run, a purge).

    Returns the purges made so far and the error that stops the sweep.
    """
    for account in batch:
        capped = purge and purged >= purge_limit
        try:
            result = _sweep_step(
                runtime, account, summary.dry_run, purge=purge and not capped, mark=not capped
            ).run(runtime)
        except UmacctError as error:
            if _stops(error):
                return purged, error
            summary.errors.append(f"{account.identifier}: {error.message}")
            continue
        if result is None:
            continue
        if result.action == "purge":
            purged += 1
        elif capped and result.action == "purgeable":
            summary.purges_left += 1
            continue
        summary.add(result)
        results.append(result)
    return purged, None


def _sweep_batch(
    runtime: Runtime, batch: list[Account], summary: SweepSummary, waiting: list[_Departures]
) -> tuple[list[AccountOutcome], UmacctError | None]:
    """A batch swept with its writes together, its departure mails handed over together.

    Returns the outcomes told now, and the error that stops the sweep. The mail process
    composes and writes a batch's mails while this process sweeps the next ones: a batch
    whose mails are all answered is told (its notices recorded) with the next batch done,
    at most ``MAILS_BEHIND`` batches later; one whose mails went from here, at once.
    """
    ended: list[AccountOutcome | MailThen] = []
    stopped = _sweep_pipelined(runtime, batch, summary, ended)
    waiting.append(_Departures(runtime, ended))
    return _settle(waiting, summary, everything=stopped is not None, stopped=stopped)


MAILS_BEHIND = 2
"""Batches whose departure mails may be with the mail process, untold, while the sweep goes on."""


def _settle(
    waiting: list[_Departures],
    summary: SweepSummary,
    *,
    everything: bool,
    stopped: UmacctError | None = None,
) -> tuple[list[AccountOutcome], UmacctError | None]:
    """Tell the oldest batches of ``waiting``, in order, and take them out of it.

    Those whose mails are answered, and those over ``MAILS_BEHIND`` (waited for); all of
    them with ``everything`` or after a stopping error.
    """
    told: list[AccountOutcome] = []
    while waiting and (everything or waiting[0].done or len(waiting) > MAILS_BEHIND):
        outcomes, stopped_here = waiting.pop(0).settle(summary)
        told += outcomes
        stopped = stopped or stopped_here
        everything = everything or stopped is not None
    return told, stopped


def _settle_unheard(runtime: Runtime, waiting: list[_Departures], summary: SweepSummary) -> None:
    """After a run stopped from outside (its reader gone, Ctrl-C, an error): the notices.

    The batches whose mails the mail process has get them recorded all the same (once it
    answered), untold.
    """
    if waiting:
        with contextlib.suppress(UmacctError), _batched(runtime, dry_run=False, purge=False):
            _settle(waiting, summary, everything=True)


class _Departures:
    """A batch's outcomes, some waiting for their departure mail (``MailThen``).

    The mails go to the mail process together (``Mailer.hand_over``); a batch too small
    for it, or a run without it, sends each from here when settled. Either way a notice is
    recorded only once its mail was sent or queued, and never for a mail that raised.
    """

    def __init__(self, runtime: Runtime, ended: list[AccountOutcome | MailThen]) -> None:
        self._runtime = runtime
        self._ended = ended
        mails = [item.mail for item in ended if isinstance(item, MailThen)]
        self._handed = runtime.mailer.hand_over(mails) if mails else None

    @property
    def done(self) -> bool:
        """Whether ``settle`` would not wait (the mail process answered, or has nothing)."""
        return self._handed is None or self._handed.done

    def settle(self, summary: SweepSummary) -> tuple[list[AccountOutcome], UmacctError | None]:
        """The outcomes, in order, each once its mail went; the error that stops the sweep.

        As one account at a time did: after a stopping error (the store gone) each account
        whose write went is still mailed and its notice tried, its failure listed.
        """
        sent = iter(self._handed.outcomes() if self._handed else [])
        told: list[AccountOutcome] = []
        stopped: UmacctError | None = None
        for item in self._ended:
            if not isinstance(item, MailThen):
                told.append(item)
                continue
            try:
                result = (
                    next(sent) if self._handed else self._runtime.mailer.send_request(item.mail)
                )
                if isinstance(result, UmacctError):
                    raise result
                outcome_told = item.then()
            except UmacctError as error:
                if stopped is None and _stops(error):
                    stopped = error
                else:
                    summary.errors.append(f"{item.account.identifier}: {error.message}")
                continue
            summary.add(outcome_told)
            told.append(outcome_told)
        return told, stopped


def _stops(error: UmacctError) -> bool:
    """Whether ``error`` stops the sweep: the directory or the store is gone (a rerun completes)."""
    return error.exit_code in (69, 75)


def _sweep_pipelined(
    runtime: Runtime,
    batch: list[Account],
    summary: SweepSummary,
    results: list[AccountOutcome | MailThen],
) -> UmacctError | None:
    """Sweep ``batch`` with its writes in flight together; the error that stops the sweep.

    Each account's step is planned first, in order (what comes before its write); then the
    writes go, and each step is run in order, its write's answer read as it comes: audits,
    mail and outcomes come in the batch's order, as one at a time. After a stopping error
    the steps whose write went are still run (their writes settled, audited and told);
    the others wait for the rerun.
    """
    planned: list[Step | UmacctError] = []
    for account in batch:
        try:
            planned.append(_sweep_step(runtime, account, False, purge=False))
        except UmacctError as error:
            planned.append(error)
            if _stops(error):
                break
    steps = [step for step in planned if isinstance(step, Step) and step.change is not None]
    try:
        sent = send_changes(
            runtime, [step.change for step in steps if step.change is not None], command="sweep"
        )
    except UmacctError:
        sent = {}  # nothing went: each step writes on its own, and meets the error itself
    stopped: UmacctError | None = None
    try:
        for account, step in zip(batch, planned, strict=False):
            pending = sent.get(id(step.change)) if isinstance(step, Step) else None
            if stopped is not None and (pending is None or not pending.was_sent):
                continue  # not written: left for the rerun
            try:
                if isinstance(step, UmacctError):
                    raise step
                result = step.run_until_mail(runtime, pending)
            except UmacctError as error:
                if stopped is None and _stops(error):
                    stopped = error
                    for pending_modify in sent.values():  # one batch: what is unsent stays so
                        pending_modify.batch.halt()
                else:
                    summary.errors.append(f"{account.identifier}: {error.message}")
                continue
            if isinstance(result, AccountOutcome):
                summary.add(result)
            if result is not None:
                results.append(result)
    finally:
        batches = {id(pending.batch): pending.batch for pending in sent.values()}
        for modifies in batches.values():
            modifies.close()
    lost = next((modifies.lost for modifies in batches.values() if modifies.lost), None)
    return stopped or lost


SWEEP_BATCH = 100
"""Accounts swept together: their outbox files synced once, their state committed once."""
KEPT_DUE = 2_000
"""Up to this many due accounts, the list counted for the change cap is the one swept."""


def _kept_due(runtime: Runtime, as_of: date) -> list[Account] | None:
    """The accounts due, read once for both the cap and the sweep; None when too many."""
    if as_of != runtime.today():
        return None
    kept = list(itertools.islice(due_accounts(runtime, as_of), KEPT_DUE + 1))
    return kept if len(kept) <= KEPT_DUE else None


@contextlib.contextmanager
def _batched(runtime: Runtime, *, dry_run: bool, purge: bool) -> Iterator[None]:
    """The state writes of a batch of accounts in one commit, after its mail reached the disk.

    Mail first, state after: a notice is recorded only for mail that is queued (a process
    that dies in between sends the notice again on the next run, never records one unsent).
    A run with ``--purge`` commits each write at once: a purged identifier is recorded
    before the next account is touched (security 21), whatever happens to the process.
    """
    if dry_run or purge:
        yield
        return
    with runtime.store.batch(), runtime.mailer.batch():
        yield


def _sweep_step(
    runtime: Runtime, account: Account, dry_run: bool, *, purge: bool, mark: bool = True
) -> Step:
    """What the sweep does to ``account`` today, planned up to its write (if it makes one)."""
    arrival = arrival_day(account)
    if arrival is not None and arrival <= runtime.today():
        return Step(lambda: arrive(runtime, account, dry_run=dry_run))
    if account.stage is Stage.FOREIGN:
        return Step(
            lambda: outcome(
                runtime, account, "skipped", "state set by another tool: left alone", changed=False
            )
        )
    profile = profile_of(account, runtime.config)
    evaluation = evaluate_account(runtime, account, profile)
    action = evaluation.action_due
    if action is None:
        return Step(lambda: _ended_activity(runtime, account, dry_run=dry_run))
    details: dict[str, object] = {"sweep": runtime.today().isoformat()}
    kind = action.kind
    if kind is ActionKind.NOTICE:
        return notice_step(
            runtime, account, profile, evaluation, command="sweep", dry_run=dry_run, details=details
        )
    if kind in (ActionKind.SUSPEND, ActionKind.SUSPEND_AND_EXPIRE):
        assert account.end_of_activity is not None
        return grace_step(
            runtime,
            account,
            profile,
            account.end_of_activity,
            command="sweep",
            dry_run=dry_run,
            details=details,
        )
    if kind is ActionKind.EXPIRE:
        assert evaluation.grace_end is not None
        return expire_step(
            runtime,
            account,
            evaluation.grace_end,
            command="sweep",
            dry_run=dry_run,
            details=details,
        )
    if kind is ActionKind.WARN:
        warn_days = action.warn_days or 0
        return Step(lambda: send_warning(runtime, account, evaluation, warn_days, dry_run=dry_run))
    if kind is ActionKind.REACTIVATE:
        change = active_change(runtime, account, profile, runtime.today())
        return Step(
            lambda: outcome(
                runtime, account, "reactivate", "end of activity moved: active again", changed=True
            ),
            change, "sweep", details, dry_run,
        )  # fmt: skip
    if kind is ActionKind.PURGE:
        return _purge_step(runtime, account, dry_run, details, purge=purge, mark=mark)
    return Step(lambda: None)


def _purge_step(
    runtime: Runtime,
    account: Account,
    dry_run: bool,
    details: dict[str, object],
    *,
    purge: bool,
    mark: bool,
) -> Step:
    """A purgeable account: purged (``--purge``), else marked for the other tools, once."""
    if purge:
        return Step(lambda: purge_account(runtime, account, dry_run=dry_run))
    if account.facts().awaiting_deletion or not mark:
        return Step(
            lambda: outcome(
                runtime, account, "purgeable", "purgeable (run with --purge)", changed=False
            )
        )
    change = PlannedChange(
        account, state_targets(runtime, account, awaiting_deletion_states(runtime.today()))
    )
    return Step(
        lambda: outcome(
            runtime,
            change.simulate(runtime.config),
            "awaiting-deletion",
            "purgeable: marked I:SupannSupprCompte for other tools (purged with --purge)",
            changed=True,
        ),
        change, "sweep", details, dry_run,
    )  # fmt: skip


def _ended_activity(runtime: Runtime, account: Account, *, dry_run: bool) -> AccountOutcome | None:
    """One activity of a person with several ended: its own affiliations go, the account stays."""
    ended = ended_profile_affiliations(runtime, account)
    if ended is None:
        return None
    profile_key, gone = ended
    change = drop_ended_profile_affiliations(runtime, account, profile_key, gone, dry_run=dry_run)
    return outcome(
        runtime,
        change.simulate(runtime.config),
        "profile-ended",
        f"{profile_key} ended: {', '.join(gone)} removed; the other activities go on",
        changed=True,
    )


def suspend_due(
    runtime: Runtime,
    *,
    dry_run: bool = False,
    max_changes: int | None = None,
    ignore_replication_lag: bool = False,
) -> Iterator[AccountOutcome]:
    """``umacct suspend --due``: start the grace period of every account past its end of activity.

    The same policy as the sweep decides, account by account: a person with another activity
    still going on (a student who also taught) is not suspended, and nor is an account the
    policy has nothing to start for. Refused before any change when more accounts are due
    than the cap, or while the directory's providers disagree (see ``sweep``).
    """
    if not dry_run:
        from umacct.services.replication import require_providers_in_sync

        require_providers_in_sync(runtime, ignore_lag=ignore_replication_lag, command="suspend")
    due_filter = suspension_filter(runtime.config, runtime.today())
    if not dry_run:
        count = sum(
            1
            for account in iter_accounts(runtime.directory, runtime.config, due_filter)
            if _suspension_due(runtime, account) is not None
        )
        check_change_cap(runtime, count, max_changes, "suspension")
    for account in iter_accounts(runtime.directory, runtime.config, due_filter):
        if account.stage is Stage.FOREIGN:
            yield outcome(
                runtime, account, "skipped", "state set by another tool: left alone", changed=False
            )
            continue
        due = _suspension_due(runtime, account)
        if due is None:
            continue
        profile, end_of_activity = due
        yield enter_grace(
            runtime,
            account,
            profile,
            end_of_activity,
            command="suspend",
            dry_run=dry_run,
            details={},
        )


def _suspension_due(runtime: Runtime, account: Account) -> tuple[ProfileConfig, date] | None:
    """The profile and end of activity of an account whose grace the policy starts today."""
    if account.stage is Stage.FOREIGN or account.end_of_activity is None:
        return None
    profile = profile_of(account, runtime.config)
    action = evaluate_account(runtime, account, profile).action_due
    if action is None or action.kind not in (ActionKind.SUSPEND, ActionKind.SUSPEND_AND_EXPIRE):
        return None
    return profile, account.end_of_activity
