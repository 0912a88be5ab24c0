"""The good-practice reports, and the reminder mail at most once per person per period.

Stale passwords, missing recovery addresses, activations never done, external forwards.

Each report is a server-side filter first, streamed, with a check in Python only where a
filter cannot say it (a state's start date, a labelled recovery value). Rows come in no
particular order.

Decisions:

* Stale passwords cover accounts in use (active or in their grace period). An account in use
  with no ``pwdChangedTime`` counts as stale too: its password was set before the password
  policy recorded changes, so its age is unknown. Its reminder names the day the account
  became active, the latest day the password can have been set without a recorded change.
* Missing recovery covers active accounts only (an account in its grace period is leaving).
* A pending activation is an account awaiting activation since a day wholly older than the
  threshold and holding no valid activation link: its link expired unused (or never went).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar
from zoneinfo import ZoneInfo

from umacct.config import parse_duration
from umacct.directory.escape import (
    filter_and,
    filter_le,
    filter_not,
    filter_or,
    filter_prefix,
    filter_present,
)
from umacct.errors import InvalidInputError, UmacctError
from umacct.policy import Stage, to_generalized_time
from umacct.services.accounts import Account, iter_accounts, recovery_address
from umacct.services.helpdesk import instant_of, stage_filter
from umacct.tokens import TokenPurpose

if TYPE_CHECKING:
    from umacct.services.runtime import Runtime

STALE_PASSWORD_NOTICE = "reminder_stale_password"  # noqa: S105 (a mail kind)
MISSING_RECOVERY_NOTICE = "reminder_missing_recovery"
RECOVERY_LABEL = "{SECOURS}"


@dataclass(frozen=True)
class StalePassword:
    """An account in use whose password was not changed for too long."""

    account: str
    name: str
    profile: str | None
    stage: str
    password_changed: datetime | None
    """None: no change recorded by the password policy."""
    notice: str | None = None
    dry_run: bool | None = None
    """With ``--notify``: whether the reminders were only planned (None without it)."""


@dataclass(frozen=True)
class MissingRecovery:
    """An active account without a recovery address."""

    account: str
    name: str
    profile: str | None
    active_since: date | None
    notice: str | None = None
    dry_run: bool | None = None
    """With ``--notify``: whether the reminders were only planned (None without it)."""


@dataclass(frozen=True)
class PendingActivation:
    """An account created but never activated, whose activation link is no longer valid."""

    account: str
    name: str
    profile: str | None
    created_on: date | None


@dataclass(frozen=True)
class ExternalForward:
    """Mail of an account forwarded outside the institution."""

    account: str
    address: str
    domain: str


@dataclass(frozen=True)
class DomainCount:
    """How many external forwards go to one domain."""

    domain: str
    forwards: int


class _Notifiable(Protocol):
    @property
    def notice(self) -> str | None: ...


RowT = TypeVar("RowT", bound=_Notifiable)


def _duration(value: str | timedelta, option: str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    try:
        return timedelta(seconds=parse_duration(value))
    except ValueError:
        raise InvalidInputError(
            f"{option}: expected a duration such as 30d, 12h or 90m, got {value!r}"
        ) from None


def _in_use(runtime: Runtime) -> str:
    return filter_or(stage_filter(runtime, Stage.ACTIVE), stage_filter(runtime, Stage.GRACE))


def _local_day(runtime: Runtime, instant: datetime) -> date:
    return instant.astimezone(ZoneInfo(runtime.config.policy.timezone)).date()


# --- stale passwords ----------------------------------------------------------------------


def _stale_passwords(
    runtime: Runtime, older_than: str | timedelta
) -> Iterator[tuple[Account, StalePassword]]:
    cutoff = runtime.clock.now() - _duration(older_than, "--older-than")
    search = filter_and(
        _in_use(runtime),
        filter_or(
            filter_le("pwdChangedTime", to_generalized_time(cutoff)),
            filter_not(filter_present("pwdChangedTime")),
        ),
    )
    for account in iter_accounts(runtime.directory, runtime.config, search):
        yield (
            account,
            StalePassword(
                account=account.identifier,
                name=account.display_name,
                profile=account.profile_key,
                stage=account.stage.value,
                password_changed=instant_of(account, "pwdChangedTime"),
            ),
        )


def _stale_password_params(runtime: Runtime, account: Account) -> dict[str, str] | None:
    changed = instant_of(account, "pwdChangedTime")
    state = account.account_state
    day = _local_day(runtime, changed) if changed else (state.start if state else None)
    if day is None:
        return None
    return {
        "name": account.display_name,
        "account": account.identifier,
        "changed_date": day.isoformat(),
    }


def stale_passwords(
    runtime: Runtime,
    *,
    older_than: str | timedelta = "365d",
    notify: bool = False,
    dry_run: bool = False,
) -> Iterator[StalePassword]:
    """Accounts in use whose password is older than ``older_than`` (``report stale-passwords``).

    With ``notify`` each person gets the reminder at their institutional address, at most
    once per ``[reports] notify_every_days``.
    """
    found = _stale_passwords(runtime, older_than)
    if not notify:
        return (row for _, row in found)
    return _notify_each(
        runtime, found, STALE_PASSWORD_NOTICE, _stale_password_params, dry_run=dry_run
    )


# --- missing recovery ---------------------------------------------------------------------


def missing_recovery_filter(runtime: Runtime) -> str:
    """Active accounts that may lack a recovery address (confirmed in Python).

    No ``{SECOURS}`` value, and either no value at all or only labelled ones; an entry with
    an unlabelled value among labelled ones passes the filter and is dropped afterwards.
    """
    attribute = runtime.config.attributes.recovery_mail
    return filter_and(
        stage_filter(runtime, Stage.ACTIVE),
        filter_not(filter_prefix(attribute, RECOVERY_LABEL)),
        filter_or(filter_not(filter_present(attribute)), filter_prefix(attribute, "{")),
    )


def _missing_recovery(runtime: Runtime) -> Iterator[tuple[Account, MissingRecovery]]:
    for account in iter_accounts(
        runtime.directory, runtime.config, missing_recovery_filter(runtime)
    ):
        if recovery_address(runtime, account) is not None:
            continue
        state = account.account_state
        yield (
            account,
            MissingRecovery(
                account=account.identifier,
                name=account.display_name,
                profile=account.profile_key,
                active_since=state.start if state else None,
            ),
        )


def _missing_recovery_params(runtime: Runtime, account: Account) -> dict[str, str]:
    return {"name": account.display_name, "account": account.identifier}


def missing_recovery(
    runtime: Runtime, *, notify: bool = False, dry_run: bool = False
) -> Iterator[MissingRecovery]:
    """Active accounts without a recovery address (``report missing-recovery``)."""
    found = _missing_recovery(runtime)
    if not notify:
        return (row for _, row in found)
    return _notify_each(
        runtime, found, MISSING_RECOVERY_NOTICE, _missing_recovery_params, dry_run=dry_run
    )


# --- reminders ----------------------------------------------------------------------------


def _notify_each(
    runtime: Runtime,
    found: Iterable[tuple[Account, RowT]],
    kind: str,
    params_of: Callable[[Runtime, Account], dict[str, str] | None],
    *,
    dry_run: bool,
) -> Iterator[RowT]:
    """Send the ``kind`` reminder to each account's institutional address; say what became of it."""
    now = runtime.clock.now()
    period = timedelta(days=runtime.config.reports.notify_every_days)
    for account, row in found:
        yield replace(  # type: ignore[type-var]
            row,
            notice=_remind(runtime, account, kind, params_of, now, period, dry_run=dry_run),
            dry_run=dry_run,
        )


def _remind(
    runtime: Runtime,
    account: Account,
    kind: str,
    params_of: Callable[[Runtime, Account], dict[str, str] | None],
    now: datetime,
    period: timedelta,
    *,
    dry_run: bool,
) -> str:
    last = runtime.store.last_notice(account.identifier, kind)
    if last is not None and now - last < period:
        return f"already reminded on {_local_day(runtime, last).isoformat()}"
    params = params_of(runtime, account)
    if params is None:
        return "not sent: the date of the last change is unknown"
    if dry_run:
        return "would send"
    try:
        result = runtime.mailer.send(account.identifier, kind, account.identifier, params)
    except UmacctError as error:
        return f"not sent: {error.message}"
    runtime.store.record_notice(account.identifier, kind, now.isoformat(), now)
    return "sent" if result.sent else "queued"


# --- pending activation -------------------------------------------------------------------


def pending_activations(
    runtime: Runtime, *, older_than: str | timedelta = "24h"
) -> Iterator[PendingActivation]:
    """Accounts awaiting activation for longer than ``older_than`` with no valid link left."""
    cutoff_day = _local_day(runtime, runtime.clock.now() - _duration(older_than, "--older-than"))
    search = stage_filter(runtime, Stage.CREATED)
    for account in iter_accounts(runtime.directory, runtime.config, search):
        state = account.account_state
        created_on = state.start if state else None
        if created_on is not None and created_on >= cutoff_day:
            continue
        pending = runtime.tokens.pending(account.identifier)
        if any(link.purpose is TokenPurpose.ACTIVATION for link in pending):
            continue
        yield PendingActivation(
            account=account.identifier,
            name=account.display_name,
            profile=account.profile_key,
            created_on=created_on,
        )


# --- forwarding ---------------------------------------------------------------------------


def _is_internal(domain: str, institutional: Iterable[str]) -> bool:
    return any(domain == own or domain.endswith(f".{own}") for own in institutional)


def external_forwards(runtime: Runtime) -> Iterator[ExternalForward]:
    """Every forward to a domain outside the profiles' institutional domains."""
    institutional = {profile.domain.lower() for profile in runtime.config.profiles.values()}
    attribute = runtime.config.attributes.forwarding
    search = filter_present(attribute)
    for account in iter_accounts(runtime.directory, runtime.config, search):
        for address in account.values(attribute):
            domain = address.rpartition("@")[2].strip().lower()
            if not _is_internal(domain, institutional):
                yield ExternalForward(account.identifier, address, domain)


def forwards_by_domain(forwards: Iterable[ExternalForward]) -> list[DomainCount]:
    """Count forwards by domain, most used first (only the counts are kept in memory)."""
    counts = Counter(forward.domain for forward in forwards)
    return [
        DomainCount(domain, count)
        for domain, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]
