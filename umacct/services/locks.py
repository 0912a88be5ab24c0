"""Locks (``umacct lock`` / ``unlock``): SUPANN's ``S:SupannVerrou...`` states, enforced by ppolicy.

A lock writes ``{COMPTE}S:SupannVerrouTechnique`` (a compromised account) or
``...Administratif`` (a charter abuse), and the same for ``MAIL``; the directory refuses the
logins through ppolicy's ``pwdAccountLockedTime`` (``000001010000Z``: until an administrator
unlocks it). Pending links are cancelled. The person is told of an administrative lock at the
recovery address; not of a technical one (whoever holds the account would read it). The
state before the lock is kept aside, and ``unlock`` puts it back. The sweep leaves locked
accounts alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from umacct.errors import RefusedError
from umacct.policy import LOCK_SUBSTATES, active_states, locked_states
from umacct.services.accounts import account_named, recovery_address
from umacct.services.changes import PlannedChange, apply_change
from umacct.services.lifecycle import AccountOutcome, outcome, state_targets

if TYPE_CHECKING:
    from umacct.services.runtime import Runtime

PERMANENT_LOCK = "000001010000Z"
"""ppolicy's value for "locked until an administrator unlocks"."""
SAVED_BEFORE_LOCK = "state_dates_before_lock"
SAVED_STATUS_BEFORE_LOCK = "states_before_lock"
_OURS = frozenset(LOCK_SUBSTATES.values())


def lock(
    runtime: Runtime, key: str, *, kind: str, reason: str, dry_run: bool = False
) -> AccountOutcome:
    """Lock an account (``umacct lock ACCOUNT --kind technical|administrative --reason``)."""
    account = account_named(runtime, key)
    state = account.account_state
    if state is not None and state.state == "S":
        if state.substate == LOCK_SUBSTATES.get(kind):
            return outcome(runtime, account, "none", f"already locked ({kind})", changed=False)
        if state.substate not in _OURS:
            raise RefusedError(
                f"{account.identifier} is locked ({state.substate}) by another tool: left alone"
            )
    names = runtime.config.attributes
    targets = state_targets(runtime, account, locked_states(kind, runtime.today()))
    targets["pwdAccountLockedTime"] = [PERMANENT_LOCK]
    change = PlannedChange(account, targets)
    if not dry_run and (state is None or state.state != "S"):
        runtime.store.save_values(
            account.identifier,
            {
                SAVED_BEFORE_LOCK: account.values(names.state_date),
                SAVED_STATUS_BEFORE_LOCK: account.values(names.state),
            },
            runtime.clock.now(),
        )
    apply_change(
        runtime, change, command="lock", dry_run=dry_run, details={"kind": kind, "reason": reason}
    )
    if not dry_run:
        runtime.tokens.cancel(account.identifier)
        recovery = recovery_address(runtime, account)
        if kind == "administrative" and recovery:
            params = {"name": account.display_name, "account": account.identifier}
            runtime.mailer.send(account.identifier, "account_locked", recovery, params)
    told = "the person is told" if kind == "administrative" else "the person is not told"
    return outcome(
        runtime,
        change.simulate(runtime.config),
        "lock",
        f"locked ({kind}): logins refused by the directory; {told}",
        changed=True,
    )


def unlock(runtime: Runtime, key: str, *, reason: str, dry_run: bool = False) -> AccountOutcome:
    """Put back the state the account had before ``umacct lock`` (``umacct unlock``)."""
    account = account_named(runtime, key)
    state = account.account_state
    if state is None or state.state != "S" or state.substate not in _OURS:
        words = f"{state.state}:{state.substate}" if state else "no state"
        raise RefusedError(f"{account.identifier} is not locked by umacct ({words})")
    names = runtime.config.attributes
    saved = runtime.store.saved_values(account.identifier, SAVED_BEFORE_LOCK)
    saved_status = runtime.store.saved_values(account.identifier, SAVED_STATUS_BEFORE_LOCK)
    if saved:
        targets: dict[str, list[str]] = {
            names.state_date: saved,
            names.state: saved_status or [],
        }
    else:
        targets = state_targets(runtime, account, active_states(runtime.today()))
    targets["pwdAccountLockedTime"] = []
    change = PlannedChange(account, targets)
    apply_change(runtime, change, command="unlock", dry_run=dry_run, details={"reason": reason})
    return outcome(
        runtime,
        change.simulate(runtime.config),
        "unlock",
        "unlocked: as before the lock",
        changed=True,
    )
