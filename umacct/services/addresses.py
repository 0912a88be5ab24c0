"""The recovery address and mail forwarding: set after a confirmation link (security 13, 14).

A new address is stored only once its owner opened the link sent to it, unless the helpdesk
checked the person's identity (``--no-confirm --reason``, audited). The attribute names come
from the configuration; with ``supannMailPrive`` the recovery address is the ``{SECOURS}``
value and the other labelled values are kept as they are.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from umacct.config import Config
from umacct.errors import InvalidInputError, RefusedError, UsageError
from umacct.policy import Stage
from umacct.services.accounts import Account, account_named, find_account, recovery_address
from umacct.services.changes import PlannedChange, apply_change
from umacct.services.links import CONFIRM_ADDRESS, CONFIRM_CHANGE, LinkSent, send_link
from umacct.tokens import TokenPurpose

if TYPE_CHECKING:
    from umacct.services.runtime import Runtime

RECOVERY = "recovery"
FORWARDING = "forwarding"
RECOVERY_LABEL = "SECOURS"
PERSONAL_LABEL = "PERSO"
LABELLED_ATTRIBUTES = frozenset({"supannmailprive"})
MAX_FORWARD_LOOKUPS = 20
"""How many institutional addresses a loop check follows before it refuses the chain."""


@dataclass(frozen=True)
class AddressChange:
    """A recovery address or forwarding target stored (or cleared)."""

    account: str
    action: str
    address: str | None
    previous: str | None
    changed: bool
    message: str


# --- reading labelled values ---------------------------------------------------------------


def _split_label(value: str) -> tuple[str | None, str]:
    if value.startswith("{") and "}" in value:
        label, _, address = value[1:].partition("}")
        return label.upper(), address
    return None, value


def personal_address(config: Config, account: Account) -> str | None:
    """The personal address: the first unlabelled value, or the ``{PERSO}`` one."""
    for value in account.values(config.attributes.personal_mail):
        label, address = _split_label(value)
        if address and label in (None, PERSONAL_LABEL):
            return address
    return None


def recovery_targets(config: Config, account: Account, address: str) -> list[str]:
    """The recovery attribute's new values with ``address`` as the recovery address.

    A labelled attribute (``supannMailPrive``) keeps its other values and gets
    ``{SECOURS}address``; a plain one (``supannMailPerso``) holds the address alone.
    """
    attribute = config.attributes.recovery_mail
    if attribute.lower() not in LABELLED_ATTRIBUTES:
        return [address]
    kept = [
        value for value in account.values(attribute) if _split_label(value)[0] != RECOVERY_LABEL
    ]
    return [*kept, f"{{{RECOVERY_LABEL}}}{address}"]


# --- checks --------------------------------------------------------------------------------


def institution_domain_of(config: Config, address: str) -> str | None:
    """The configured profile domain that holds ``address`` (subdomains too), if any."""
    domain = address.rpartition("@")[2].lower()
    for own in sorted({profile.domain.lower() for profile in config.profiles.values()}):
        if domain == own or domain.endswith(f".{own}"):
            return own
    return None


def checked_recovery_address(config: Config, email: str) -> str:
    """A valid recovery address, normalised; never one of the institution's own."""
    from umacct.intake import validate_email  # the intake's checks, loaded only when needed

    address = validate_email(email)
    own = institution_domain_of(config, address)
    if own is not None:
        raise InvalidInputError(
            f"recovery address {address} is inside the institution's domain {own}: "
            "it must be a personal address outside it"
        )
    return address


def without_subaddress(address: str, delimiter: str) -> str:
    """The address lower-cased, without its ``+tag`` (``[mail] recipient_delimiter``)."""
    local, at, domain = address.lower().rpartition("@")
    if delimiter and delimiter in local:
        local = local.split(delimiter, 1)[0]
    return f"{local}{at}{domain}"


def _own_addresses(account: Account, delimiter: str) -> set[str]:
    return {
        without_subaddress(address, delimiter)
        for address in (account.identifier, *account.values("mail"))
    }


def check_forwarding_target(runtime: Runtime, account: Account, email: str) -> str:
    """A valid forwarding target, normalised, that is not the account and makes no loop.

    Institutional addresses are followed through the directory (their own forwarding), at
    most ``MAX_FORWARD_LOOKUPS`` of them; a chain that comes back to the account is refused.
    """
    from umacct.directory.escape import filter_eq
    from umacct.intake import validate_email

    target = validate_email(email)
    delimiter = runtime.config.mail.recipient_delimiter
    own = _own_addresses(account, delimiter)
    start = without_subaddress(target, delimiter)
    if start in own:
        raise InvalidInputError(f"{account.identifier} cannot forward its mail to itself")
    forwarding = runtime.config.attributes.forwarding
    pending, seen, lookups = deque([start]), {start}, 0
    while pending:
        address = pending.popleft()
        if institution_domain_of(runtime.config, address) is None:
            continue
        lookups += 1
        if lookups > MAX_FORWARD_LOOKUPS:
            raise InvalidInputError(
                f"forwarding to {target} follows more than {MAX_FORWARD_LOOKUPS} "
                "institutional forwards: refused"
            )
        entries = runtime.directory.search(
            runtime.config.directory.base_dn, filter_eq("mail", address), ["mail", forwarding]
        )
        for entry in entries:
            for forward in (without_subaddress(v, delimiter) for v in entry.get(forwarding)):
                if forward in own:
                    raise InvalidInputError(
                        f"forwarding {account.identifier} to {target} makes a loop: "
                        f"{address} forwards back to it"
                    )
                if forward not in seen:
                    seen.add(forward)
                    pending.append(forward)
    return target


def _required_reason(reason: str | None) -> str:
    cleaned = (reason or "").strip()
    if not cleaned:
        raise UsageError("--no-confirm needs --reason (the identity check, for the audit)")
    return cleaned


_CONFIRM_PURPOSES = {
    RECOVERY: TokenPurpose.CONFIRM_RECOVERY,
    FORWARDING: TokenPurpose.CONFIRM_FORWARDING,
}


_CONFIRMABLE = (Stage.PRECREATED, Stage.CREATED, Stage.ACTIVE, Stage.GRACE)
"""The stages in which a mailed confirmation link may still store its address: not locked,
not expired (an account awaiting activation may have its recovery address confirmed)."""


def _confirm_purpose(runtime: Runtime, token: str, change: str) -> TokenPurpose:
    """The purpose the token was issued for: this change's own, or a legacy confirmation."""
    own = _CONFIRM_PURPOSES[change]
    for purpose in (own, *(p for p in _CONFIRM_PURPOSES.values() if p is not own)):
        try:
            runtime.tokens.check(token, purpose)
        except InvalidInputError:
            continue
        if purpose is own:
            return own
        raise InvalidInputError(f"this link does not confirm a {change} address")
    legacy = runtime.tokens.check(token, TokenPurpose.CONFIRM)
    if legacy.payload.get("kind") != change:
        raise InvalidInputError(f"this link does not confirm a {change} address")
    return TokenPurpose.CONFIRM


def _confirmed(runtime: Runtime, token: str, change: str) -> tuple[Account, str, TokenPurpose]:
    purpose = _confirm_purpose(runtime, token, change)
    record = runtime.tokens.check(token, purpose)
    account = find_account(runtime.directory, runtime.config, record.account)
    if account.stage not in _CONFIRMABLE:  # locked or expired since the link was mailed
        raise RefusedError(
            f"{account.identifier} is {account.stage.value}: the link can no longer be confirmed"
        )
    return account, record.payload["address"], purpose


def _confirm_params(account: Account, change: str, address: str) -> dict[str, str]:
    return {
        "name": account.display_name,
        "account": account.identifier,
        CONFIRM_CHANGE: change,
        CONFIRM_ADDRESS: address,
    }


# --- recovery address ----------------------------------------------------------------------


def request_recovery(runtime: Runtime, key: str, email: str) -> LinkSent:
    """Mail a confirmation link to a new recovery address (``umacct set-recovery ACCOUNT EMAIL``).

    Nothing is stored until the link is opened (``confirm_recovery``).
    """
    account = account_named(runtime, key)
    address = checked_recovery_address(runtime.config, email)
    params = _confirm_params(account, RECOVERY, address)
    return send_link(
        runtime,
        account.identifier,
        "confirm_recovery",
        address,
        params,
        TokenPurpose.CONFIRM_RECOVERY,
    )


def confirm_recovery(runtime: Runtime, token: str) -> AddressChange:
    """Store the recovery address a confirmation link names (``set-recovery --token``)."""
    account, address, purpose = _confirmed(runtime, token, RECOVERY)
    address = checked_recovery_address(runtime.config, address)
    with runtime.tokens.redeemed(token, purpose):
        return _store_recovery(runtime, account, address, {"confirmed": "link"})


def set_recovery_now(
    runtime: Runtime, key: str, email: str, *, reason: str | None
) -> AddressChange:
    """Store a recovery address without confirmation, after the helpdesk checked the identity."""
    cleaned_reason = _required_reason(reason)
    account = account_named(runtime, key)
    address = checked_recovery_address(runtime.config, email)
    return _store_recovery(
        runtime, account, address, {"confirmed": "helpdesk", "reason": cleaned_reason}
    )


def _store_recovery(
    runtime: Runtime, account: Account, address: str, details: dict[str, object]
) -> AddressChange:
    previous = recovery_address(runtime, account)
    targets = {
        runtime.config.attributes.recovery_mail: recovery_targets(runtime.config, account, address)
    }
    differences = apply_change(
        runtime, PlannedChange(account, targets), command="set-recovery", details=details
    )
    if previous is not None and previous.lower() != address.lower():
        # Links mailed to the old address die with it (it may be the attacker's).
        runtime.tokens.cancel(
            account.identifier,
            [TokenPurpose.RESET, TokenPurpose.CONFIRM_RECOVERY, TokenPurpose.CONFIRM],
        )
        params = {"name": account.display_name, "account": account.identifier}
        runtime.mailer.send(account.identifier, "recovery_changed_old", previous, params)
    return AddressChange(
        account.identifier,
        "set-recovery",
        address,
        previous,
        bool(differences),
        f"recovery address of {account.identifier}: {address}",
    )


# --- forwarding ----------------------------------------------------------------------------


def _forwardable(account: Account) -> Account:
    if account.stage is Stage.EXPIRED:
        raise RefusedError(f"{account.identifier} is expired: its mail is no longer delivered")
    return account


def request_forwarding(runtime: Runtime, key: str, email: str) -> LinkSent:
    """Mail a confirmation link to a forwarding target (``umacct redirect ACCOUNT EMAIL``)."""
    account = _forwardable(account_named(runtime, key))
    target = check_forwarding_target(runtime, account, email)
    params = _confirm_params(account, FORWARDING, target)
    return send_link(
        runtime,
        account.identifier,
        "confirm_forwarding",
        target,
        params,
        TokenPurpose.CONFIRM_FORWARDING,
    )


def confirm_forwarding(runtime: Runtime, token: str) -> AddressChange:
    """Start the forwarding a confirmation link names (``redirect --token``); checked again."""
    account, target, purpose = _confirmed(runtime, token, FORWARDING)
    _forwardable(account)
    target = check_forwarding_target(runtime, account, target)
    with runtime.tokens.redeemed(token, purpose):
        return _store_forwarding(runtime, account, target, {"confirmed": "link"})


def set_forwarding_now(
    runtime: Runtime, key: str, email: str, *, reason: str | None
) -> AddressChange:
    """Start forwarding without confirmation, after the helpdesk checked the identity."""
    cleaned_reason = _required_reason(reason)
    account = _forwardable(account_named(runtime, key))
    target = check_forwarding_target(runtime, account, email)
    return _store_forwarding(
        runtime, account, target, {"confirmed": "helpdesk", "reason": cleaned_reason}
    )


def clear_forwarding(runtime: Runtime, key: str) -> AddressChange:
    """Stop forwarding (``umacct redirect ACCOUNT --off``); repeating it changes nothing."""
    account = account_named(runtime, key)
    attribute = runtime.config.attributes.forwarding
    previous = account.values(attribute)
    differences = apply_change(runtime, PlannedChange(account, {attribute: []}), command="redirect")
    runtime.tokens.cancel(account.identifier, [TokenPurpose.CONFIRM_FORWARDING])
    message = (
        f"forwarding of {account.identifier} stopped"
        if differences
        else f"{account.identifier} had no forwarding"
    )
    return AddressChange(
        account.identifier,
        "redirect-off",
        None,
        previous[0] if previous else None,
        bool(differences),
        message,
    )


def _store_forwarding(
    runtime: Runtime, account: Account, target: str, details: dict[str, object]
) -> AddressChange:
    attribute = runtime.config.attributes.forwarding
    previous = account.values(attribute)
    differences = apply_change(
        runtime,
        PlannedChange(account, {attribute: [target]}),
        command="redirect",
        details=details,
    )
    if details.get("confirmed") == "helpdesk":  # a pending confirmation is obsolete now
        runtime.tokens.cancel(account.identifier, [TokenPurpose.CONFIRM_FORWARDING])
    if differences:
        params = {"name": account.display_name, "account": account.identifier, "address": target}
        runtime.mailer.send(account.identifier, "forwarding_set", account.identifier, params)
    return AddressChange(
        account.identifier,
        "redirect",
        target,
        previous[0] if previous else None,
        bool(differences),
        f"mail of {account.identifier} forwarded to {target}",
    )
