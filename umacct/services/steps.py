"""The transitions that write an account, split at their write (``Step``).

What comes before a transition's directory write is done when its ``Step`` is made; the
write and what follows it (the audit, the mail, the notices, the outcome) when it is run.
The commands run each step at once (``umacct.services.lifecycle``); the sweep makes a
batch's steps, sends their writes together, then runs each in order, up to the departure
mail (``MailThen``): a batch's mails go to the mail process together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from umacct.policy import AccountFacts, Stage, evaluate
from umacct.services.accounts import Account, recovery_address, rules_for
from umacct.services.changes import PlannedChange, apply_change
from umacct.services.lifecycle import (
    SAVED_FORWARDING,
    AccountOutcome,
    departure_mail,
    departure_told,
    expire,
    expired_change,
    grace_change,
    outcome,
    save_for_reinstatement,
)

if TYPE_CHECKING:
    from umacct.config import ProfileConfig
    from umacct.directory.modifies import PendingModify
    from umacct.mail.sender import MailRequest
    from umacct.policy import Evaluation
    from umacct.services.runtime import Runtime


@dataclass(frozen=True)
class Step:
    """One account's transition, split at its directory write.

    ``change`` is written (and audited as ``command``, with ``details``), then ``after``
    runs (the mail, the notices, the outcome), each only when the write is done: the sweep
    plans a batch of accounts, sends their writes together, then runs each in order.
    """

    after: Callable[[], AccountOutcome | MailThen | None]
    change: PlannedChange | None = None
    command: str = ""
    details: Mapping[str, object] | None = None
    dry_run: bool = False

    def run(self, runtime: Runtime, sent: PendingModify | None = None) -> AccountOutcome | None:
        """Write the change (``sent``: it went with others, see ``apply_change``), then go on."""
        result = self.run_until_mail(runtime, sent)
        if isinstance(result, MailThen):
            runtime.mailer.send_request(result.mail)
            return result.then()
        return result

    def run_until_mail(
        self, runtime: Runtime, sent: PendingModify | None = None
    ) -> AccountOutcome | MailThen | None:
        """``run``, stopped before a departure mail: the caller sends it, then goes on."""
        if self.change is not None:
            apply_change(
                runtime, self.change, command=self.command, dry_run=self.dry_run,
                details=self.details, sent=sent,
            )  # fmt: skip
        return self.after()


@dataclass(frozen=True)
class MailThen:
    """A step's end that waits for a mail: ``mail`` sent (or queued), then ``then()``.

    ``then`` records what the mail tells (a notice counts from the day it is recorded) and
    gives the outcome; it must not run for a mail that raised (a refused recipient).
    """

    account: Account
    mail: MailRequest
    then: Callable[[], AccountOutcome]


def _departure(
    runtime: Runtime,
    account: Account,
    profile: ProfileConfig,
    end_of_activity: date,
    grace_end: date,
    *,
    dry_run: bool,
    action: str,
    message: str,
) -> AccountOutcome | MailThen:
    """The departure mail, then the outcome ``action`` once the notice is recorded.

    A dry run sends and records nothing: its outcome comes at once.
    """

    def told(evaluated: tuple[ProfileConfig, Evaluation] | None) -> AccountOutcome:
        return outcome(runtime, account, action, message, changed=True, evaluated=evaluated)

    if dry_run:
        return told(None)
    return MailThen(
        account,
        departure_mail(account, profile, grace_end),
        lambda: told(departure_told(runtime, account, profile, end_of_activity)),
    )


def grace_step(
    runtime: Runtime,
    account: Account,
    profile: ProfileConfig,
    end_of_activity: date,
    *,
    command: str,
    dry_run: bool,
    details: dict[str, object],
    notice: bool = True,
) -> Step:
    """``enter_grace`` as a ``Step``: what comes before its write is done here."""
    rules = rules_for(account.profile_key or "", profile)
    policy = runtime.config.policy
    evaluation = evaluate(
        rules,
        AccountFacts(Stage.ACTIVE, end_of_activity),
        runtime.today(),
        purge_after_days=policy.purge_after_days,
        warn_days=tuple(policy.warn_days_before_expiry),
        minimum_notice_days=policy.minimum_notice_days if notice else 0,
    )
    grace_end = evaluation.grace_end if notice else evaluation.policy_grace_end
    assert grace_end is not None  # an end of activity always gives a grace end
    if evaluation.notice_late:
        details = {**details, "late_notice": grace_end.isoformat()}
    change = grace_change(
        runtime,
        account,
        profile,
        end_of_activity,
        grace_end,
        record_end_of_activity=account.end_of_activity != end_of_activity,
    )
    if not dry_run:
        save_for_reinstatement(runtime, account, profile)

    def after() -> AccountOutcome | MailThen:
        if not dry_run:
            runtime.tokens.cancel(account.identifier)
        after = change.simulate(runtime.config)
        if grace_end < runtime.today():  # --no-notice on a grace already over
            return expire(
                runtime, after, grace_end, command=command, dry_run=dry_run, details=details
            )
        late = " (late: notice period)" if evaluation.notice_late and notice else ""
        return _departure(
            runtime, after, profile, end_of_activity, grace_end, dry_run=dry_run,
            action="suspend", message=f"grace period until {grace_end.isoformat()}{late}",
        )  # fmt: skip

    return Step(after, change, command, details, dry_run)


def notice_step(
    runtime: Runtime,
    account: Account,
    profile: ProfileConfig,
    evaluation: Evaluation,
    *,
    command: str,
    dry_run: bool,
    details: dict[str, object],
) -> Step:
    """``lengthen_for_notice`` as a ``Step``."""
    state = account.account_state
    grace_end = evaluation.grace_end
    assert state is not None and state.start is not None and grace_end is not None
    end_of_activity = state.start - timedelta(days=1)
    change = grace_change(runtime, account, profile, end_of_activity, grace_end)
    details = {**details, "late_notice": grace_end.isoformat()}

    def after() -> AccountOutcome | MailThen:
        after = change.simulate(runtime.config)
        message = f"told today: grace period until {grace_end.isoformat()} (late: notice period)"
        return _departure(
            runtime, after, profile, end_of_activity, grace_end, dry_run=dry_run,
            action="notice", message=message,
        )  # fmt: skip

    return Step(after, change, command, details, dry_run)


def expire_step(
    runtime: Runtime,
    account: Account,
    grace_end: date,
    *,
    command: str,
    dry_run: bool,
    details: dict[str, object],
) -> Step:
    """``expire`` as a ``Step``: the forwarding is kept aside before the write."""
    names = runtime.config.attributes
    forwarding = account.values(names.forwarding)
    if forwarding and not dry_run:
        runtime.store.save_values(
            account.identifier, {SAVED_FORWARDING: forwarding}, runtime.clock.now()
        )
    change = expired_change(runtime, account, grace_end)
    expired_on = grace_end + timedelta(days=1)

    def after() -> AccountOutcome:
        if not dry_run:
            runtime.tokens.cancel(account.identifier)
            from umacct.services.profiles import drop_alias_of_expired  # it imports this module

            drop_alias_of_expired(runtime, account)
            _mail_expiry(runtime, account, expired_on)
        after = change.simulate(runtime.config)
        return outcome(
            runtime, after, "expire", f"expired on {expired_on.isoformat()}", changed=True
        )

    return Step(after, change, command, details, dry_run)


def _mail_expiry(runtime: Runtime, account: Account, expired_on: date) -> None:
    """The expiry mail, to the recovery address if there is one."""
    recovery = recovery_address(runtime, account)
    if recovery:
        # Never a day already gone: the data goes at the first purge from that day.
        purge_on = max(
            expired_on + timedelta(days=runtime.config.policy.purge_after_days),
            runtime.today(),
        )
        runtime.mailer.send(
            account.identifier,
            "expired",
            recovery,
            {
                "name": account.display_name,
                "account": account.identifier,
                "expiry_date": expired_on.isoformat(),
                "purge_date": purge_on.isoformat(),
            },
        )
