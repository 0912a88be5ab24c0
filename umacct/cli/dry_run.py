"""What a dry run says: what it would do, in the conditional, from the action word.

The services' messages tell what was done ("expired on ...", "locked (technical): ..."); a
dry run does not prefix them with "would" ("would expire: expired on ...") but says, once,
what the command would do to the account, from the action and the facts of the outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from umacct.services.lifecycle import AccountOutcome

VERBS: Mapping[str, str] = {
    "suspend": "suspend",
    "notice": "tell late",
    "warn": "warn",
    "expire": "expire",
    "purge": "purge",
    "awaiting-deletion": "mark for deletion",
    "profile-ended": "end a profile",
    "reactivate": "reactivate",
    "arrive": "activate on arrival",
    "schedule": "schedule",
    "lock": "lock",
    "unlock": "unlock",
    "unsuspend": "unsuspend",
    "extend": "extend",
    "restore": "restore",
}
"""The verb of each action word, as a dry run says it after "would"."""


def verb(action: str) -> str:
    """``profile-ended``: ``end a profile``; an action without a verb of its own as it is."""
    return VERBS.get(action, action.replace("-", " "))


def _stop(result: AccountOutcome) -> str:
    if result.grace_end is None:
        return "login and mail would stop"
    return f"login and mail would stop on {(result.grace_end + timedelta(days=1)).isoformat()}"


def _lock_kind(result: AccountOutcome) -> str:
    substate = result.substate or ""
    if "Technique" in substate:
        return "technical, the person is not told"
    if "Administratif" in substate:
        return "administrative"
    return "locked"


def _schedule(result: AccountOutcome) -> str:
    if result.end_of_activity is None:
        return "the end of activity would be recorded"
    start = (result.end_of_activity + timedelta(days=1)).isoformat()
    return (
        f"the end of activity {result.end_of_activity.isoformat()} would be recorded; "
        f"the grace period would start on {start}"
    )


def _late(result: AccountOutcome) -> str:
    return " (late: notice period)" if "late: notice period" in result.message else ""


def _until(result: AccountOutcome) -> str:
    return f" until {result.grace_end.isoformat()}" if result.grace_end else ""


DETAILS: Mapping[str, Callable[[AccountOutcome], str]] = {
    "suspend": lambda r: f"the grace period would run{_until(r)}{_late(r)}",
    "notice": lambda r: f"the person would be told: grace period{_until(r)} (late: notice period)",
    "warn": lambda r: f"a warning would be mailed: {_stop(r)}",
    "expire": _stop,
    "purge": lambda r: "the account would be archived and deleted",
    "awaiting-deletion": lambda r: (
        "it would be marked I:SupannSupprCompte for other tools (purged with --purge)"
    ),
    "profile-ended": lambda r: (
        "the ended profile's affiliations would be removed; the other activities go on"
    ),
    "reactivate": lambda r: "the end of activity moved: it would be active again",
    "arrive": lambda r: "it would be active from today",
    "schedule": _schedule,
    "lock": lambda r: f"the directory would refuse its logins ({_lock_kind(r)})",
    "unlock": lambda r: "it would be as before the lock",
    "unsuspend": lambda r: "it would be active as before",
    "extend": lambda r: f"the grace period would be extended{_until(r)}",
}


def would(result: AccountOutcome) -> tuple[str, str]:
    """``("would expire", "login and mail would stop on 2027-01-01")`` for a planned change."""
    details = DETAILS.get(result.action)
    return f"would {verb(result.action)}", details(result) if details else result.message
