"""Extension requests: the person asks, the profile grants at once or the helpdesk decides.

The expiry warning of an extendable profile carries a link (``[links] extension``) valid
until the grace end; the logged-in account page offers the same request. A profile with
``extension_approval = "auto"`` (the default of an extendable profile: "reconductible sur
demande") grants it at once; ``"review"`` files it for ``umacct extension grant|refuse ID``
and tells ``[mail] helpdesk``. Every grant goes through ``umacct extend``'s own service
(``umacct.services.lifecycle.extend``): an extension renews, it does not stack. The person
is mailed the outcome either way; every step is audited.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from umacct.audit import current_actor
from umacct.errors import InvalidInputError, NotFoundError, ObsoleteMailError, RefusedError
from umacct.policy import Stage, expiry_instant
from umacct.services.accounts import (
    Account,
    account_named,
    evaluate_account,
    find_account,
    profile_of,
)
from umacct.services.lifecycle import extend
from umacct.services.links import build_link
from umacct.state.extension_requests import (
    GRANTED,
    PENDING,
    REFUSED,
    STATUSES,
    ExtensionRequest,
    is_request_id,
    new_request,
)
from umacct.tokens import EXTENSION_MAX_TTL, IssuedToken, TokenPurpose

if TYPE_CHECKING:
    from umacct.config import ProfileConfig
    from umacct.services.runtime import Runtime

AUTO, REVIEW = "auto", "review"
VIA_LINK, VIA_ACCOUNT = "link", "account"


@dataclass(frozen=True)
class ExtensionStatus:
    """Where an account stands for an extension request (the pages show it)."""

    account: str
    profile: str | None
    extendable: bool
    approval: str
    """``auto`` or ``review``."""
    in_grace: bool
    grace_end: date | None
    allowed: bool
    refusal: str | None
    """The policy's reason when no extension can be asked today."""
    pending: ExtensionRequest | None
    """The request waiting for the helpdesk, if any."""
    last_refused: ExtensionRequest | None = None
    """A request refused for the current grace end (it is not asked again)."""


@dataclass(frozen=True)
class ExtensionAnswer:
    """What became of a person's request: granted now, or waiting for the helpdesk."""

    request: ExtensionRequest
    account: str
    granted: bool
    grace_end: date | None
    """The new grace end when granted, else the current one."""
    message: str


@dataclass(frozen=True)
class ExtensionDecision:
    """What ``extension grant`` or ``extension refuse`` did (or would do)."""

    request_id: str
    account: str
    action: str
    status: str
    grace_end: date | None
    changed: bool
    message: str


def approval_of(profile: ProfileConfig) -> str:
    """How the profile's requests are decided: ``auto`` unless it says ``review``."""
    return profile.extension_approval or AUTO


# --- where an account stands ------------------------------------------------------------------


def status_of(runtime: Runtime, account: Account) -> ExtensionStatus:
    """The account's extension status today (read only)."""
    profile = profile_of(account, runtime.config)
    evaluation = evaluate_account(runtime, account, profile)
    requests = runtime.store.extension_requests(account=account.identifier)
    pending = next((r for r in requests if r.status == PENDING), None)
    refused = next(
        (
            r
            for r in reversed(requests)
            if r.status == REFUSED and r.grace_end == evaluation.grace_end
        ),
        None,
    )
    refusal = evaluation.extension_refusal
    if refused is not None and refusal is None:
        refusal = refused_words(runtime, refused)
    return ExtensionStatus(
        account=account.identifier,
        profile=account.profile_key,
        extendable=profile.extendable,
        approval=approval_of(profile),
        in_grace=evaluation.stage_today is Stage.GRACE,
        grace_end=evaluation.grace_end,
        allowed=evaluation.extension_allowed and refused is None and pending is None,
        refusal=refusal,
        pending=pending,
        last_refused=refused,
    )


def refused_words(runtime: Runtime, request: ExtensionRequest) -> str:
    """The refusal of a request in words (the helpdesk's reason)."""
    asked = local_day(runtime, request.requested_at).isoformat()
    day = local_day(runtime, request.decided_at).isoformat() if request.decided_at else "?"
    return f"the request of {asked} was refused on {day}: {request.reason or 'no reason given'}"


def extension_status(runtime: Runtime, key: str) -> ExtensionStatus:
    """The extension status of the account named by ``key``."""
    return status_of(runtime, find_account(runtime.directory, runtime.config, key))


def look_at_link(runtime: Runtime, token: str) -> ExtensionStatus:
    """The status of the account an extension link is for; the link stays unused."""
    record = runtime.tokens.check(token, TokenPurpose.EXTENSION)
    return extension_status(runtime, record.account)


def pending_request(runtime: Runtime, account: str) -> ExtensionRequest | None:
    """The account's request waiting for a decision, if any (``explain``)."""
    return next(iter(runtime.store.extension_requests(account=account, status=PENDING)), None)


def pending_words(runtime: Runtime, request: ExtensionRequest) -> str:
    """A waiting request in words, with the commands that decide it (``explain``)."""
    asked = local_day(runtime, request.requested_at).isoformat()
    return (
        f"extension request {request.request_id} of {asked} waits for a decision: "
        f"umacct extension grant {request.request_id} (or refuse {request.request_id} "
        "--reason TEXT)"
    )


# --- the link of the expiry warning -----------------------------------------------------------


def issue_extension_link(
    runtime: Runtime, account: str, grace_end: date | None = None
) -> tuple[str, IssuedToken]:
    """A fresh extension link, valid until the grace end; the older ones are cancelled.

    Without ``grace_end`` (a queued warning sent later) the account is looked at again:
    ObsoleteMailError when no extension can be asked any more.
    """
    if grace_end is None:
        status = extension_status(runtime, account)
        if not status.allowed or status.grace_end is None:
            raise ObsoleteMailError(
                f"{account}: no extension can be asked now ({status.refusal or 'not in grace'})"
            )
        grace_end = status.grace_end
    ends = expiry_instant(grace_end, runtime.config.policy.timezone)
    lifetime = min(ends - runtime.clock.now(), EXTENSION_MAX_TTL)
    if lifetime.total_seconds() <= 0:
        raise ObsoleteMailError(f"{account}: the grace period ended on {grace_end.isoformat()}")
    issued = runtime.tokens.issue(account, TokenPurpose.EXTENSION, lifetime)
    return build_link(runtime.config, TokenPurpose.EXTENSION, issued.token), issued


# --- the person asks --------------------------------------------------------------------------


def request_by_link(runtime: Runtime, token: str) -> ExtensionAnswer:
    """The form of the extension link: the link is used, the request filed (or granted).

    A refusal by the policy leaves the link usable (nothing was asked).
    """
    with runtime.tokens.redeemed(token, TokenPurpose.EXTENSION) as record:
        return file_request(runtime, record.account, via=VIA_LINK)


def request_extension(runtime: Runtime, key: str) -> ExtensionAnswer:
    """The logged-in account page's request."""
    return file_request(runtime, key, via=VIA_ACCOUNT)


def file_request(runtime: Runtime, key: str, *, via: str) -> ExtensionAnswer:
    """File the account's request: granted at once (``auto``) or kept for review.

    Refused (RefusedError, exit 77) with the policy's reason when no extension can be asked.
    A request already waiting is returned as it is (asking twice files one request).
    """
    account = find_account(runtime.directory, runtime.config, key)
    status = status_of(runtime, account)
    if status.pending is not None:
        return ExtensionAnswer(
            status.pending, account.identifier, False, status.grace_end,
            f"the request of {local_day(runtime, status.pending.requested_at).isoformat()} is "
            "waiting for the helpdesk",
        )  # fmt: skip
    if not status.allowed or status.grace_end is None:
        raise RefusedError(status.refusal or "no extension can be asked for this account")
    runtime.audit.ensure_writable()
    now = runtime.clock.now()
    request = new_request(account.identifier, status.grace_end, now, via)
    if status.approval == AUTO:
        granted = extend(
            runtime, account.identifier, reason=f"extension request {request.request_id}"
        )
        decided = replace(
            request, status=GRANTED, decided_by=AUTO, decided_at=now,
            granted_until=granted.grace_end,
        )  # fmt: skip
        stored = runtime.store.add_extension_request(decided)
        _audit(runtime, "extension-request", decided, via=via)
        _tell(runtime, account, decided)
        return ExtensionAnswer(stored, account.identifier, True, granted.grace_end, granted.message)
    stored = runtime.store.add_extension_request(request)
    if stored.status != PENDING:
        raise RefusedError(refused_words(runtime, stored))
    _audit(runtime, "extension-request", stored, via=via)
    _tell_helpdesk(runtime, account, stored)
    _tell(runtime, account, stored)
    return ExtensionAnswer(
        stored, account.identifier, False, status.grace_end,
        f"extension request {stored.request_id} filed: it waits for the helpdesk",
    )  # fmt: skip


# --- the helpdesk decides ---------------------------------------------------------------------


def list_requests(runtime: Runtime, status: str | None = PENDING) -> list[ExtensionRequest]:
    """The requests of a status (None: all), oldest first."""
    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"status {status!r}: expected one of {', '.join(STATUSES)}")
    return runtime.store.extension_requests(status=status)


def find_request(runtime: Runtime, request_id: str) -> ExtensionRequest:
    """The request ``ID``: InvalidInputError (65) for a malformed one, NotFoundError (67)."""
    wanted = request_id.strip().lower()
    if not is_request_id(wanted):
        raise InvalidInputError(
            f"{request_id!r} is not an extension request id (10 hex digits, as "
            "'umacct extension list' shows)"
        )
    request = runtime.store.find_extension_request(wanted)
    if request is None:
        raise NotFoundError(f"no extension request {wanted}")
    return request


def _undecided(runtime: Runtime, request_id: str) -> ExtensionRequest:
    request = find_request(runtime, request_id)
    if request.status != PENDING:
        day = local_day(runtime, request.decided_at).isoformat() if request.decided_at else "?"
        raise RefusedError(
            f"extension request {request.request_id} was already {request.status} on {day} "
            f"by {request.decided_by or 'unknown'}"
        )
    return request


def _actor() -> str:
    user, sudo_user = current_actor()
    return sudo_user or user


def grant_request(runtime: Runtime, request_id: str, *, dry_run: bool = False) -> ExtensionDecision:
    """``umacct extension grant ID``: the extension granted (``extend``), the person told."""
    request = _undecided(runtime, request_id)
    reason = f"extension request {request.request_id}"
    planned = extend(runtime, request.account, reason=reason, dry_run=True)  # the policy first
    if dry_run:
        return ExtensionDecision(
            request.request_id, request.account, "grant", PENDING, planned.grace_end, False,
            f"would grant: {planned.message}",
        )  # fmt: skip
    runtime.audit.ensure_writable()
    decided = replace(
        request, status=GRANTED, decided_by=_actor(), decided_at=runtime.clock.now(),
        granted_until=planned.grace_end,
    )  # fmt: skip
    if not runtime.store.decide_extension_request(decided):
        _undecided(runtime, request_id)  # decided meanwhile (another host): says by whom
        raise RefusedError(f"extension request {request.request_id} was decided meanwhile")
    try:
        granted = extend(runtime, request.account, reason=reason)
    except BaseException:
        runtime.store.reopen_extension_request(decided)
        raise
    _audit(runtime, "extension-grant", decided)
    account = account_named(runtime, request.account)
    _tell(runtime, account, decided)
    return ExtensionDecision(
        request.request_id, request.account, "grant", GRANTED, granted.grace_end, True,
        granted.message,
    )  # fmt: skip


def refuse_request(
    runtime: Runtime, request_id: str, *, reason: str, dry_run: bool = False
) -> ExtensionDecision:
    """``umacct extension refuse ID --reason TEXT``: the request closed, the person told why."""
    request = _undecided(runtime, request_id)
    if not reason.strip():
        raise InvalidInputError("a refusal needs its reason (--reason TEXT)")
    account = account_named(runtime, request.account)
    if dry_run:
        return ExtensionDecision(
            request.request_id, request.account, "refuse", PENDING, request.grace_end, False,
            f"would refuse: {reason}",
        )  # fmt: skip
    runtime.audit.ensure_writable()
    decided = replace(
        request, status=REFUSED, reason=reason, decided_by=_actor(),
        decided_at=runtime.clock.now(),
    )  # fmt: skip
    if not runtime.store.decide_extension_request(decided):
        _undecided(runtime, request_id)
        raise RefusedError(f"extension request {request.request_id} was decided meanwhile")
    _audit(runtime, "extension-refuse", decided)
    _tell(runtime, account, decided)
    return ExtensionDecision(
        request.request_id, request.account, "refuse", REFUSED, request.grace_end, True,
        f"refused: {reason}",
    )  # fmt: skip


# --- audit and mail ---------------------------------------------------------------------------


def _audit(runtime: Runtime, command: str, request: ExtensionRequest, **more: object) -> None:
    details: dict[str, object] = {"request": request.request_id, "status": request.status}
    if request.granted_until:
        details["granted_until"] = request.granted_until.isoformat()
    if request.reason:
        details["reason"] = request.reason
    runtime.audit.append(command, request.account, {}, request.status, **details, **more)


_KINDS = {GRANTED: "extension_granted", REFUSED: "extension_refused", PENDING: "extension_pending"}


def _tell(runtime: Runtime, account: Account, request: ExtensionRequest) -> None:
    """The person's mail: granted (the new date), refused (the reason), or waiting."""
    params = {
        "name": account.display_name,
        "account": account.identifier,
        "request_id": request.request_id,
        "requested_date": local_day(runtime, request.requested_at).isoformat(),
        "grace_end_date": (request.granted_until or request.grace_end).isoformat(),
        "expiry_date": expiry_day(request.granted_until or request.grace_end).isoformat(),
    }
    if request.status == REFUSED:
        params["reason"] = request.reason or ""
    runtime.mailer.send(account.identifier, _KINDS[request.status], account.identifier, params)


def _tell_helpdesk(runtime: Runtime, account: Account, request: ExtensionRequest) -> None:
    helpdesk = runtime.config.mail.helpdesk
    if not helpdesk:
        return
    profile = runtime.config.profiles.get(account.profile_key or "")
    runtime.mailer.send(
        account.identifier,
        "extension_review",
        helpdesk,
        {
            "name": account.display_name,
            "account": account.identifier,
            "profile": profile.label if profile else (account.profile_key or ""),
            "request_id": request.request_id,
            "requested_date": local_day(runtime, request.requested_at).isoformat(),
            "grace_end_date": request.grace_end.isoformat(),
        },
    )


def expiry_day(grace_end: date) -> date:
    """The first day the account no longer works."""
    return grace_end + timedelta(days=1)


def local_day(runtime: Runtime, instant: datetime) -> date:
    """The day of ``instant`` in the policy's time zone."""
    return instant.astimezone(ZoneInfo(runtime.config.policy.timezone)).date()
