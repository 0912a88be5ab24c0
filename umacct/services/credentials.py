"""Passwords: activation, reset (by the helpdesk or self-service) and change by the person.

A password reaches the directory only through Password Modify (security 12), after the
policy of ``umacct.passwords`` (security 8, 9, 11). A link is redeemed only after the password
is set, so that a failure never leaves a used link and no password; a redeemed link cannot
be used again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from umacct.errors import (
    ConfigError,
    InvalidInputError,
    RefusedError,
    TemporaryError,
    UmacctError,
    UnavailableError,
)
from umacct.passwords import PasswordContext, check_password
from umacct.policy import Stage, active_states
from umacct.services.accounts import Account, account_named, find_account, recovery_address
from umacct.services.addresses import personal_address, recovery_targets
from umacct.services.arrivals import anticipated_states, arrival_day
from umacct.services.changes import PlannedChange, apply_change
from umacct.services.lifecycle import state_targets
from umacct.services.links import LinkSent, send_link
from umacct.tokens import TokenPurpose, TokenRecord

if TYPE_CHECKING:
    from umacct.services.runtime import Runtime

SELF_SERVICE_SECONDS = 1.0
SELF_SERVICE_ANSWER = (
    "If this account exists, a link has been sent to its recovery address "
    "(or, for an account not yet activated, to the personal address). "
    "If nothing arrives, contact the helpdesk."
)
NO_RECOVERY = "no recovery address: check the person's identity, then set-recovery"
# Failures that say nothing about the account asked for: the front end must show "try later".
_SERVICE_FAILURES = (UnavailableError, TemporaryError, ConfigError)
_PASSWORD_STAGES = (Stage.ACTIVE, Stage.GRACE)


@dataclass(frozen=True)
class PasswordSet:
    """A password set through a link or changed by the person."""

    account: str
    action: str
    message: str
    recovery_set: str | None = None
    """The recovery address the activation filled in, if there was none."""


def password_context(runtime: Runtime, account: Account) -> PasswordContext:
    """What the password policy needs to know about the person."""
    return PasswordContext(
        identifier=account.identifier,
        uid=account.uid,
        given_name=account.given_name,
        surname=account.surname,
        min_length=runtime.config.policy.password_min_length,
    )


def _stage_words(account: Account) -> str:
    state = account.account_state
    if state is None:
        return "has no account state"
    since = f" since {state.start.isoformat()}" if state.start else ""
    return f"is {account.stage.value} ({state.state}:{state.substate}{since})"


# --- links --------------------------------------------------------------------------------


def send_activation(runtime: Runtime, key: str) -> LinkSent:
    """Mail a new activation link to the personal address (``umacct activate ACCOUNT``).

    The previous link stops working. Refused (exit 77) unless the account awaits activation.
    """
    account = account_named(runtime, key)
    if account.stage not in (Stage.CREATED, Stage.PRECREATED):
        raise RefusedError(
            f"{account.identifier} {_stage_words(account)}: only an account awaiting "
            "activation gets an activation link (use 'umacct reset' for a forgotten password)"
        )
    return _mail_activation(runtime, account)


def _mail_activation(runtime: Runtime, account: Account) -> LinkSent:
    address = personal_address(runtime.config, account)
    if address is None:
        attribute = runtime.config.attributes.personal_mail
        raise InvalidInputError(f"{account.identifier} has no personal address ({attribute})")
    params = {"name": account.display_name, "account": account.identifier}
    return send_link(
        runtime, account.identifier, "activation", address, params, TokenPurpose.ACTIVATION
    )


def send_reset(runtime: Runtime, key: str) -> LinkSent:
    """Mail a reset link to the recovery address (``umacct reset ACCOUNT``, helpdesk).

    Without a recovery address: InvalidInputError (exit 65) telling the helpdesk what to do.
    """
    account = account_named(runtime, key)
    if account.stage not in _PASSWORD_STAGES:
        advice = (
            "send an activation link with 'umacct activate'"
            if account.stage is Stage.CREATED
            else "its logins are refused"
        )
        raise RefusedError(f"{account.identifier} {_stage_words(account)}: {advice}")
    return _mail_reset(runtime, account)


def _mail_reset(runtime: Runtime, account: Account) -> LinkSent:
    address = recovery_address(runtime, account)
    if address is None:
        raise InvalidInputError(f"{account.identifier}: {NO_RECOVERY}")
    params = {"name": account.display_name, "account": account.identifier}
    return send_link(runtime, account.identifier, "reset", address, params, TokenPurpose.RESET)


def self_service_reset(
    runtime: Runtime, key: str, *, minimum_seconds: float = SELF_SERVICE_SECONDS
) -> str:
    """The public "problème de connexion" request (``umacct reset ACCOUNT --self-service``).

    The answer is the same text, whether or not the account exists or has a recovery address,
    and it never comes before ``minimum_seconds`` (security 7). At most ``[tokens]
    reset_per_hour`` links per account per hour. An account awaiting activation gets a fresh
    activation link at its personal address instead. Only failures of the directory, the
    store or the configuration, which say nothing about the account, are raised.
    """
    started = time.monotonic()
    try:
        _self_service(runtime, key)
    except _SERVICE_FAILURES:
        raise
    except UmacctError:
        pass  # unknown, ambiguous, no address...: the same answer, on purpose
    finally:
        remaining = minimum_seconds - (time.monotonic() - started)
        if remaining > 0:
            time.sleep(remaining)
    return SELF_SERVICE_ANSWER


def _self_service(runtime: Runtime, key: str) -> None:
    account = find_account(runtime.directory, runtime.config, key)
    if account.stage is Stage.CREATED:
        purpose = TokenPurpose.ACTIVATION
    elif account.stage in _PASSWORD_STAGES:
        purpose = TokenPurpose.RESET
    else:
        return
    an_hour_ago = runtime.clock.now() - timedelta(hours=1)
    if runtime.tokens.issued_since(account.identifier, purpose, an_hour_ago) >= (
        runtime.config.tokens.reset_per_hour
    ):
        runtime.audit.append(
            "self-service-reset", account.identifier, {}, "rate-limited", purpose=purpose.value
        )
        return
    # Anyone may type the address on the public page: a new link would cancel the one the
    # owner is about to open. While one is valid, nothing new is sent (the helpdesk's
    # 'umacct reset ACCOUNT' still replaces it).
    if any(token.purpose is purpose for token in runtime.tokens.pending(account.identifier)):
        runtime.audit.append(
            "self-service-reset", account.identifier, {}, "link-pending", purpose=purpose.value
        )
        return
    if purpose is TokenPurpose.ACTIVATION:
        _mail_activation(runtime, account)
    else:
        _mail_reset(runtime, account)


# --- passwords ----------------------------------------------------------------------------


def _account_of_token(runtime: Runtime, record: TokenRecord, stages: tuple[Stage, ...]) -> Account:
    account = find_account(runtime.directory, runtime.config, record.account)
    if account.stage not in stages:
        raise RefusedError(
            f"{account.identifier} {_stage_words(account)}: this link no longer applies"
        )
    return account


def activate(runtime: Runtime, token: str, password: str) -> PasswordSet:
    """The person chooses their first password (``umacct activate --token``).

    The token is checked, then the password policy; the password is set, the token redeemed,
    and ``COMPTE`` and ``MAIL`` become ``A:SupannActif:<today>:``; the personal address
    becomes the recovery address when there is none.
    """
    record = runtime.tokens.check(token, TokenPurpose.ACTIVATION)
    account = _account_of_token(runtime, record, (Stage.CREATED, Stage.PRECREATED))
    chosen = check_password(password, password_context(runtime, account))
    runtime.audit.ensure_writable()
    with runtime.tokens.redeemed(token, TokenPurpose.ACTIVATION):
        runtime.directory.password_modify(account.dn, chosen)
    names = runtime.config.attributes
    arrival = arrival_day(account)
    states = (
        anticipated_states(runtime.today(), arrival)  # in use before the activity starts
        if arrival is not None and arrival > runtime.today()
        else active_states(runtime.today())
    )
    targets = state_targets(runtime, account, states)
    recovery_set = None
    personal = personal_address(runtime.config, account)
    if recovery_address(runtime, account) is None and personal is not None:
        targets[names.recovery_mail] = recovery_targets(runtime.config, account, personal)
        recovery_set = personal
    apply_change(
        runtime,
        PlannedChange(account, targets),
        command="activate",
        details={"via": "activation link"},
    )
    return PasswordSet(
        account.identifier, "activate", f"{account.identifier} activated", recovery_set
    )


def reset_with_token(runtime: Runtime, token: str, password: str) -> PasswordSet:
    """The person sets a new password through a reset link (``umacct reset --token``).

    The recovery address is told that the password changed (never the password).
    """
    record = runtime.tokens.check(token, TokenPurpose.RESET)
    account = _account_of_token(runtime, record, _PASSWORD_STAGES)
    chosen = check_password(password, password_context(runtime, account))
    runtime.audit.ensure_writable()
    with runtime.tokens.redeemed(token, TokenPurpose.RESET):
        runtime.directory.password_modify(account.dn, chosen)
    runtime.audit.append("reset", account.identifier, {}, "ok", via="reset link")
    runtime.tokens.cancel(account.identifier, [TokenPurpose.RESET])  # any other reset link
    _tell_password_changed(runtime, account)
    return PasswordSet(account.identifier, "reset", f"password of {account.identifier} reset")


def change_password(runtime: Runtime, key: str, old: str, new: str) -> PasswordSet:
    """The person changes their own password (``umacct passwd ACCOUNT``).

    The old password is checked by a bind as the person (RefusedError, exit 77, when wrong),
    the new one by the policy (InvalidInputError, exit 65, with the reason).
    """
    account = account_named(runtime, key)
    if not old:
        raise InvalidInputError("the current password is empty")
    if not runtime.directory.check_password(account.dn, old):
        raise RefusedError(
            f"{account.identifier}: the current password is wrong, or the account cannot log in"
        )
    chosen = check_password(new, password_context(runtime, account))
    if chosen == old:
        raise InvalidInputError("the new password is the current one")
    runtime.audit.ensure_writable()
    runtime.directory.password_modify(account.dn, chosen, old)
    runtime.audit.append("passwd", account.identifier, {}, "ok", via="current password")
    runtime.tokens.cancel(account.identifier, [TokenPurpose.RESET])  # a password changed: stale
    _tell_password_changed(runtime, account)
    return PasswordSet(account.identifier, "passwd", f"password of {account.identifier} changed")


def _tell_password_changed(runtime: Runtime, account: Account) -> None:
    address = recovery_address(runtime, account)
    if address is not None:
        params = {"name": account.display_name, "account": account.identifier}
        runtime.mailer.send(account.identifier, "password_changed", address, params)
