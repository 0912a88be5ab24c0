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
from umacct.errors import InvalidInputError
from umacct.tokens import TokenPurpose

if TYPE_CHECKING:
    from umacct.mail.mailer import FlushReport
    from umacct.services.runtime import Runtime

CONFIRM_CHANGE = "change"
"""The mail parameter (and token payload key) saying what a confirmation link confirms."""
CONFIRM_ADDRESS = "address"


@dataclass(frozen=True)
class LinkSent:
    """A link mailed (or queued) for an account; never the token itself."""

    account: str
    purpose: str
    recipient: str
    expires_at: datetime
    sent: bool
    """False when the relay failed: the message waits in the queue for ``mail flush``."""
    message: str


def link_lifetime(config: Config, purpose: TokenPurpose) -> timedelta:
    """How long a link of ``purpose`` stays valid (``[tokens] <purpose>_ttl``)."""
    return timedelta(seconds=parse_duration(getattr(config.tokens, f"{purpose.value}_ttl")))


def build_link(config: Config, purpose: TokenPurpose, token: str) -> str:
    """The page the person opens: the configured https base with the token in it."""
    base: str = getattr(config.links, purpose.value)
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
) -> tuple[str, datetime]:
    """Issue a token (cancelling the account's older ones of that purpose); return link and expiry."""
    issued = runtime.tokens.issue(account, purpose, link_lifetime(runtime.config, purpose), payload)
    return build_link(runtime.config, purpose, issued.token), issued.expires_at


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
    payload = confirm_payload(params) if purpose is TokenPurpose.CONFIRM else None
    runtime.audit.ensure_writable()
    link, expires_at = issue_link(runtime, account, purpose, payload)
    result = runtime.mailer.send(
        account, kind, recipient, params, link=link, link_purpose=purpose.value
    )
    runtime.audit.append(
        f"{purpose.value}-link",
        account,
        {},
        "sent" if result.sent else "queued",
        recipient=recipient,
        expires_at=expires_at.isoformat(),
    )
    if result.sent:
        message = f"{purpose.value} link sent to {recipient}"
    else:
        message = (
            f"{purpose.value} link queued for {recipient} ({result.error}); "
            "'umacct mail flush' sends it when the relay is back"
        )
    return LinkSent(account, purpose.value, recipient, expires_at, result.sent, message)


def flush_mail(runtime: Runtime, *, limit: int | None = None) -> FlushReport:
    """Send the queued mail; a queued link gets a fresh token of its purpose (``mail flush``)."""

    def fresh_link(account: str, purpose: str, params: Mapping[str, str]) -> str:
        chosen = TokenPurpose(purpose)
        payload = confirm_payload(params) if chosen is TokenPurpose.CONFIRM else None
        link, _ = issue_link(runtime, account, chosen, payload)
        return link

    return runtime.mailer.flush(fresh_link, limit=limit)
