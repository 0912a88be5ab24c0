"""Arrival day: the activation link, and pre-created accounts becoming operational.

An account created ahead of its holder's arrival is pre-created
(``{COMPTE}I:SupannPrecree:<created>:<last day before the arrival>``); on the arrival day
the daily sweep makes it ``I:SupannCree`` and mails the activation link to the personal
address (``arrivals_due`` then ``arrive``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from umacct.directory.escape import filter_or, filter_prefix
from umacct.errors import RefusedError
from umacct.policy import (
    ACCOUNT,
    MAILBOX,
    ResourceState,
    Stage,
    active_states,
)
from umacct.services.accounts import Account, iter_accounts
from umacct.services.addresses import personal_address
from umacct.services.changes import PlannedChange, apply_change
from umacct.services.lifecycle import AccountOutcome, outcome, state_targets
from umacct.services.links import build_link, link_lifetime
from umacct.services.runtime import Runtime
from umacct.tokens import TokenPurpose

if TYPE_CHECKING:
    from umacct.mail.mailer import MailBatch, SendResult

PRECREATED_PREFIX = "{COMPTE}I:SupannPrecree:"
PRECREATED = "SupannPrecree"
ANTICIPATED_PREFIX = "{COMPTE}A:SupannAnticipe:"
ANTICIPATED = "SupannAnticipe"


@dataclass(frozen=True)
class ActivationLink:
    """An activation link just issued and mailed (the link itself is never kept)."""

    expires: datetime
    mail: str
    """``sent`` (the relay took it), ``outbox`` (written to the outbox folder, not sent) or
    ``queued`` (the relay did not take it yet: ``umacct mail flush``)."""

    def words(self, to: str) -> str:
        """``activation link sent to X``, or where it really went."""
        if self.mail == "outbox":
            from umacct.mail.transport import OUTBOX_WORDS

            return f"activation link for {to} {OUTBOX_WORDS}"
        return f"activation link {self.mail} to {to}"


def send_activation_link(runtime: Runtime, account: str, name: str, to: str) -> ActivationLink:
    """Issue an activation token (older ones stop working) and mail its link to ``to``."""
    [link] = start_activation_links(runtime, [Recipient(account, name, to)]).links()
    return link


@dataclass(frozen=True)
class Recipient:
    """Who an activation link is for: the account, the person's name, the address it goes to."""

    account: str
    name: str
    to: str


class PendingLinks:
    """Activation links whose tokens are recorded and whose mails are on their way."""

    def __init__(self, expires: Sequence[datetime], batch: MailBatch) -> None:
        self._expires = expires
        self._batch = batch

    def links(self) -> list[ActivationLink]:
        """Wait for the mails: one link each, sent or queued (see ``MailBatch.results``)."""
        results = self._batch.results()
        return [
            ActivationLink(expires, _mail_state(result))
            for expires, result in zip(self._expires, results, strict=True)
        ]


def _mail_state(result: SendResult) -> str:
    if result.sent:
        return "outbox" if result.delivery == "outbox" else "sent"
    return "queued"


def start_activation_links(runtime: Runtime, recipients: Sequence[Recipient]) -> PendingLinks:
    """Record an activation token for each recipient now; mail the links in the background.

    The caller must collect ``links()`` before it returns: only then are the mails the
    relay did not take queued.
    """
    from umacct.mail.sender import MailRequest  # the mail package is imported only when mailing

    config = runtime.config
    issued = runtime.tokens.issue_many(
        [recipient.account for recipient in recipients],
        TokenPurpose.ACTIVATION,
        link_lifetime(config, TokenPurpose.ACTIVATION),
    )
    batch = runtime.mailer.start([
        MailRequest(
            recipient.account,
            "activation",
            recipient.to,
            {"name": recipient.name, "account": recipient.account},
            link=build_link(config, TokenPurpose.ACTIVATION, token.token),
            link_purpose=TokenPurpose.ACTIVATION.value,
        )
        for recipient, token in zip(recipients, issued, strict=True)
    ])  # fmt: skip
    return PendingLinks([token.expires_at for token in issued], batch)


def arrival_states(created: date, arrival: date | None) -> tuple[ResourceState, ...]:
    """``COMPTE`` and ``MAIL`` states of a new account: pre-created until the arrival, else created.

    Pre-created ends the day before the arrival (``{COMPTE}I:SupannPrecree:<created>:<end>``).
    """
    if arrival is not None and arrival > created:
        last_day = arrival - timedelta(days=1)
        return tuple(
            ResourceState(resource, "I", "SupannPrecree", created, last_day)
            for resource in (ACCOUNT, MAILBOX)
        )
    return tuple(
        ResourceState(resource, "I", "SupannCree", created) for resource in (ACCOUNT, MAILBOX)
    )


def arrival_day(account: Account) -> date | None:
    """The arrival day of a pre-created or anticipated account, else None.

    It is the day after its state ends.
    """
    state = account.account_state
    if state is None or state.end is None:
        return None
    if account.stage is Stage.PRECREATED or state.substate == ANTICIPATED:
        return state.end + timedelta(days=1)
    return None


def anticipated_states(today: date, arrival: date) -> tuple[ResourceState, ...]:
    """``{X}A:SupannAnticipe:<today>:<arrival - 1>``: in use before the activity starts."""
    return tuple(
        ResourceState(resource, "A", ANTICIPATED, today, arrival - timedelta(days=1))
        for resource in (ACCOUNT, MAILBOX)
    )


def arrivals_due(runtime: Runtime, *, marked: bool = False) -> Iterator[Account]:
    """Pre-created accounts whose arrival day has come (today or missed earlier).

    ``marked``: as ``iter_accounts`` takes it.

    A pre-created state without an end date (written by another tool) names no arrival day:
    such accounts are left alone.
    """
    today = runtime.today()
    state = runtime.config.attributes.state_date
    search_filter = filter_or(
        filter_prefix(state, PRECREATED_PREFIX), filter_prefix(state, ANTICIPATED_PREFIX)
    )
    for account in iter_accounts(runtime.directory, runtime.config, search_filter, marked=marked):
        arrival = arrival_day(account)
        if arrival is not None and arrival <= today:
            yield account


def arrive(
    runtime: Runtime, account: Account, *, dry_run: bool = False, command: str = "sweep"
) -> AccountOutcome:
    """The arrival day of a pre-created account: awaiting activation, and its link mailed.

    RefusedError for an account that is not pre-created.
    """
    state = account.account_state
    if state is not None and state.substate == ANTICIPATED:
        since = arrival_day(account) or runtime.today()
        active = PlannedChange(account, state_targets(runtime, account, active_states(since)))
        apply_change(runtime, active, command=command, dry_run=dry_run, details={"arrival": True})
        return outcome(
            runtime, active.simulate(runtime.config), "arrive", "arrived: active", changed=True
        )
    if account.stage is not Stage.PRECREATED:
        raise RefusedError(f"{account.identifier} is not pre-created ({account.stage.value})")
    change = PlannedChange(
        account, state_targets(runtime, account, arrival_states(runtime.today(), None))
    )
    apply_change(runtime, change, command=command, dry_run=dry_run, details={"arrival": True})
    address = personal_address(runtime.config, account)
    if address is None:
        message = "arrived; no personal address: send the link with 'umacct activate' once set"
    elif dry_run:
        message = f"arrives: the activation link would go to {address}"
    else:
        link = send_activation_link(runtime, account.identifier, account.display_name, address)
        message = f"arrived: {link.words(address)}"
    return outcome(runtime, change.simulate(runtime.config), "arrive", message, changed=True)
