"""Links sent by mail (activation, reset, address confirmation) and the mail queue.

A link is built only from the configured https base (security 5) and a freshly issued
token; the token exists in memory just long enough to be put in the message (security 6).
When the relay is down the message is queued without its link, and ``flush_mail`` issues a
fresh one when it finally goes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from umacct.config import Config, parse_duration
from umacct.errors import InvalidInputError, NotFoundError, ObsoleteMailError
from umacct.mail.transport import OUTBOX_WORDS
from umacct.tokens import IssuedToken, TokenPurpose

if TYPE_CHECKING:
    from umacct.mail.mailer import FlushReport
    from umacct.mail.queue import QueuedMail
    from umacct.services.runtime import Runtime

CONFIRM_CHANGE = "change"
"""The mail parameter (and token payload key) saying what a confirmation link confirms."""
CONFIRM_ADDRESS = "address"
LINK_TOKEN = "link_token"  # noqa: S105 (a parameter name)
"""The mail parameter naming the token a message's link was issued with (id, then expiry):
a flush knows from it whether a later change cancelled that link."""


@dataclass(frozen=True)
class LinkSent:
    """A link mailed (or queued) for an account; never the token itself."""

    account: str
    purpose: str
    recipient: str
    expires_at: datetime
    sent: bool
    """True when the relay took it; False when it waits in the queue for ``mail flush`` (the
    relay failed) or was written to the outbox (``delivery``)."""
    message: str
    delivery: str
    """``smtp`` (the relay took it), ``outbox`` (written to the outbox folder, not sent) or
    ``queued`` (the relay failed: ``umacct mail flush`` sends it)."""


def link_lifetime(config: Config, purpose: TokenPurpose) -> timedelta:
    """How long a link of ``purpose`` stays valid (``[tokens] <purpose>_ttl``)."""
    return timedelta(seconds=parse_duration(getattr(config.tokens, f"{purpose.link_kind}_ttl")))


def build_link(config: Config, purpose: TokenPurpose, token: str) -> str:
    """The page the person opens: the configured https base with the token in it."""
    base: str = getattr(config.links, purpose.link_kind)
    return base.replace("{token}", token)


def confirm_payload(params: Mapping[str, str]) -> dict[str, str]:
    """What a confirmation token remembers, read from the mail parameters that carry it."""
    change, address = params.get(CONFIRM_CHANGE), params.get(CONFIRM_ADDRESS)
    if not change or not address:
        raise InvalidInputError("a confirmation mail names no change or no address")
    return {"kind": change, "address": address}


def issue_link(
    runtime: Runtime,
    account: str,
    purpose: TokenPurpose,
    payload: Mapping[str, str] | None = None,
) -> tuple[str, IssuedToken]:
    """Issue a token (cancelling the account's older ones of that purpose); the link and token."""
    if purpose is TokenPurpose.EXTENSION:  # valid until the grace end, if one can be asked
        from umacct.services.extensions import issue_extension_link

        return issue_extension_link(runtime, account)
    issued = runtime.tokens.issue(account, purpose, link_lifetime(runtime.config, purpose), payload)
    return build_link(runtime.config, purpose, issued.token), issued


def send_link(
    runtime: Runtime,
    account: str,
    kind: str,
    recipient: str,
    params: Mapping[str, str],
    purpose: TokenPurpose,
) -> LinkSent:
    """Issue a link and mail it with the template ``kind``; queue it when the relay fails.

    The issuance is audited (without the token) so that the helpdesk can see who was sent what.
    """
    payload = confirm_payload(params) if purpose.link_kind == "confirm" else None
    runtime.audit.ensure_writable()
    link, issued = issue_link(runtime, account, purpose, payload)
    expires_at = issued.expires_at
    marked = {**params, LINK_TOKEN: _marker(issued)}
    result = runtime.mailer.send(
        account, kind, recipient, marked, link=link, link_purpose=purpose.link_kind
    )
    runtime.audit.append(
        f"{purpose.link_kind}-link",
        account,
        {},
        "sent" if result.sent else "queued",
        recipient=recipient,
        expires_at=expires_at.isoformat(),
    )
    if result.sent and result.delivery == "outbox":
        message = f"{purpose.link_kind} link for {recipient} {OUTBOX_WORDS}"
    elif result.sent:
        message = f"{purpose.link_kind} link sent to {recipient}"
    else:
        message = (
            f"{purpose.link_kind} link queued for {recipient} ({result.error}); "
            "'umacct mail flush' sends it when the relay is back"
        )
    delivery = (result.delivery or "smtp") if result.sent else "queued"
    return LinkSent(
        account, purpose.link_kind, recipient, expires_at, result.delivered, message, delivery
    )


def flush_mail(runtime: Runtime, *, limit: int | None = None) -> FlushReport:
    """Send the queued mail; a queued link gets a fresh token of its purpose (``mail flush``).

    Before a fresh link is issued the account is looked at again: a link that a later event
    made obsolete (the account changed stage, the recovery or personal address it was for
    was replaced, a newer link was issued since) is dropped from the queue and reported.
    """

    def fresh_link(mail: QueuedMail) -> str:
        purpose = queued_purpose(mail)
        check_still_wanted(runtime, mail, purpose)
        payload = confirm_payload(mail.params) if purpose.link_kind == "confirm" else None
        link, issued = issue_link(runtime, mail.account, purpose, payload)
        # Should this send fail too, the next flush judges the link it holds now.
        runtime.mail_queue.set_param(mail.id, LINK_TOKEN, _marker(issued))
        return link

    return runtime.mailer.flush(fresh_link, limit=limit)


def queued_purpose(mail: QueuedMail) -> TokenPurpose:
    """The token purpose of a queued link (a confirmation's comes from what it confirms)."""
    assert mail.link_purpose is not None  # only queued links are issued again
    if mail.link_purpose != "confirm":
        return TokenPurpose(mail.link_purpose)
    change = mail.params.get(CONFIRM_CHANGE)
    return (
        TokenPurpose.CONFIRM_FORWARDING if change == "forwarding" else TokenPurpose.CONFIRM_RECOVERY
    )


def check_still_wanted(runtime: Runtime, mail: QueuedMail, purpose: TokenPurpose) -> None:
    """Raise ObsoleteMailError when a later event made the queued link pointless."""
    from umacct.policy import Stage
    from umacct.services.accounts import find_account, recovery_address
    from umacct.services.addresses import personal_address

    try:
        account = find_account(runtime.directory, runtime.config, mail.account)
    except NotFoundError:
        raise ObsoleteMailError(f"{mail.account} no longer exists") from None
    wanted = {
        TokenPurpose.ACTIVATION: ((Stage.CREATED,), personal_address(runtime.config, account)),
        TokenPurpose.RESET: ((Stage.ACTIVE, Stage.GRACE), recovery_address(runtime, account)),
    }
    stages, address = wanted.get(purpose, ((Stage.ACTIVE, Stage.GRACE), mail.recipient))
    if account.stage not in stages:
        raise ObsoleteMailError(f"{mail.account} is {account.stage.value} now")
    if address is None or address.lower() != mail.recipient.lower():
        raise ObsoleteMailError(f"{mail.recipient} is no longer the address for this link")
    if _cancelled_since(runtime, mail):
        raise ObsoleteMailError(
            "a later change cancelled this link (suspension, new address, newer link)"
        )


def _marker(issued: IssuedToken) -> str:
    return f"{issued.token_id} {issued.expires_at.isoformat()}"


def _cancelled_since(runtime: Runtime, mail: QueuedMail) -> bool:
    """Whether the token the queued link was issued with died before its expiry."""
    marker = mail.params.get(LINK_TOKEN, "")
    token_id, _, expiry = marker.partition(" ")
    if not token_id.isdigit() or not expiry:
        return False  # queued before links were marked: judged by stage and address only
    if runtime.clock.now() >= datetime.fromisoformat(expiry):
        return False  # it only expired waiting: a fresh one is what the person needs
    pending = {token.token_id for token in runtime.tokens.pending(mail.account)}
    return int(token_id) not in pending
