"""SUPANN resource states: parsing, formatting, and the values the tool writes.

``supannRessourceEtatDate`` holds one value per resource, ``{RESOURCE}STATE:SUBSTATE:START:END``
with every colon kept and dates as ``YYYYMMDD``; ``supannRessourceEtat`` holds the short form
``{RESOURCE}STATE`` or ``{RESOURCE}STATE:SUBSTATE``. The account is the ``COMPTE`` resource and
the mailbox the ``MAIL`` resource; other resources belong to other tools and are kept untouched.

Reading is lenient: any value of the right shape parses, whatever its state, and resource names
are compared without regard to case (they are stored upper case). Writing is strict: only the
states of the SUPANN table can be formatted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from types import MappingProxyType

from umacct.errors import InvalidInputError
from umacct.policy.dates import ONE_DAY, format_state_date, parse_state_date

ACCOUNT = "COMPTE"
MAILBOX = "MAIL"

STATE_DATE_PATTERN = re.compile(r"^\{([^}]+)\}([^:]+):([^:]*):([^:]*):([^:]*)$")
"""The pattern other tools parse ``supannRessourceEtatDate`` with; every value written matches."""
_SHORT_STATE_PATTERN = re.compile(r"^\{([^}]+)\}([^:]+)(?::([^:]*))?$")
_WRITABLE_RESOURCE = re.compile(r"^[A-Z0-9_-]+$")

SUBSTATES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "A": frozenset({"SupannAnticipe", "SupannActif", "SupannSursis"}),
        "I": frozenset(
            {
                "SupannPrecree",
                "SupannCree",
                "SupannExpire",
                "SupannInactif",
                "SupannSupprDonnees",
                "SupannSupprCompte",
            }
        ),
        "S": frozenset({"SupannVerrouille", "SupannVerrouAdministratif", "SupannVerrouTechnique"}),
    }
)
"""The SUPANN sub-states allowed under each state (A active, I inactive, S suspended)."""

NONEXISTENT_SUBSTATES = frozenset(
    {"SupannCompteNonActive", "SupannPrerempli", "SupannSupprime", "SupannSuspendu"}
)
"""Names seen in the wild that the standard does not define; never written."""


class Stage(StrEnum):
    """Where an account is in its life, as read from its ``COMPTE`` state."""

    PRECREATED = "precreated"
    CREATED = "created"
    ACTIVE = "active"
    GRACE = "grace"
    EXPIRED = "expired"
    FOREIGN = "foreign"
    """A valid or unknown state written by another tool (a lock, a deletion stage...): left alone."""
    UNKNOWN = "unknown"
    """No ``COMPTE`` state at all."""


_STAGE_OF_STATE: Mapping[tuple[str, str], Stage] = MappingProxyType(
    {
        ("I", "SupannPrecree"): Stage.PRECREATED,
        ("I", "SupannCree"): Stage.CREATED,
        ("A", "SupannActif"): Stage.ACTIVE,
        ("A", "SupannAnticipe"): Stage.ACTIVE,
        ("A", "SupannSursis"): Stage.GRACE,
        ("I", "SupannExpire"): Stage.EXPIRED,
        ("I", "SupannSupprCompte"): Stage.EXPIRED,
    }
)
AWAITING_DELETION = "SupannSupprCompte"
"""The sub-state of an expired account whose purge delay is over: it awaits deletion."""


def _check_writable(resource: str, state: str, substate: str | None) -> None:
    if not _WRITABLE_RESOURCE.match(resource):
        raise InvalidInputError(f"resource name {resource!r} is not upper-case letters and digits")
    if substate is None:
        if state not in SUBSTATES:
            raise InvalidInputError(f"{state!r} is not a SUPANN state (A, I or S)")
        return
    if substate not in SUBSTATES.get(state, ()):
        raise InvalidInputError(f"{state}:{substate} is not a SUPANN state and sub-state")


@dataclass(frozen=True, slots=True)
class ResourceState:
    """One ``supannRessourceEtatDate`` value: a resource's state, sub-state and dates."""

    resource: str
    state: str
    substate: str
    start: date | None = None
    end: date | None = None

    @classmethod
    def parse(cls, value: str) -> ResourceState:
        """Read a value; raise InvalidInputError, quoting it, when it is malformed.

        Any state and sub-state are accepted (other tools write their own); the resource
        name is upper-cased.
        """
        match = STATE_DATE_PATTERN.match(value)
        if not match:
            raise InvalidInputError(
                f"malformed supannRessourceEtatDate value {value!r} "
                "(expected {RESOURCE}STATE:SUBSTATE:YYYYMMDD:YYYYMMDD)"
            )
        resource, state, substate, start, end = match.groups()
        try:
            return cls(
                resource.upper(), state, substate, parse_state_date(start), parse_state_date(end)
            )
        except InvalidInputError as error:
            raise InvalidInputError(
                f"malformed supannRessourceEtatDate value {value!r}: {error.message}"
            ) from None

    def format(self) -> str:
        """The value to write; raise InvalidInputError unless it is a SUPANN state we may write."""
        _check_writable(self.resource, self.state, self.substate)
        if self.start is not None and self.end is not None and self.end < self.start:
            raise InvalidInputError(f"{self.resource} state ends ({self.end}) before it starts")
        return (
            f"{{{self.resource}}}{self.state}:{self.substate}:"
            f"{format_state_date(self.start)}:{format_state_date(self.end)}"
        )

    def short(self) -> ResourceStatus:
        """The same state without dates, as ``supannRessourceEtat`` holds it."""
        return ResourceStatus(self.resource, self.state, self.substate or None)

    @property
    def stage(self) -> Stage:
        """The account stage this state means when it is the ``COMPTE`` state."""
        return _STAGE_OF_STATE.get((self.state, self.substate), Stage.FOREIGN)


@dataclass(frozen=True, slots=True)
class ResourceStatus:
    """One ``supannRessourceEtat`` value: ``{RESOURCE}STATE`` or ``{RESOURCE}STATE:SUBSTATE``."""

    resource: str
    state: str
    substate: str | None = None

    @classmethod
    def parse(cls, value: str) -> ResourceStatus:
        """Read a value; raise InvalidInputError, quoting it, when it is malformed."""
        match = _SHORT_STATE_PATTERN.match(value)
        if not match:
            raise InvalidInputError(
                f"malformed supannRessourceEtat value {value!r} "
                "(expected {RESOURCE}STATE or {RESOURCE}STATE:SUBSTATE)"
            )
        resource, state, substate = match.groups()
        return cls(resource.upper(), state, substate or None)

    def format(self) -> str:
        """The value to write; raise InvalidInputError unless it is a SUPANN state we may write."""
        _check_writable(self.resource, self.state, self.substate)
        suffix = f":{self.substate}" if self.substate is not None else ""
        return f"{{{self.resource}}}{self.state}{suffix}"


def resource_of(value: str) -> str | None:
    """The resource a state value is about (upper case), or None when it names none."""
    if not value.startswith("{"):
        return None
    closing = value.find("}")
    return value[1:closing].upper() if closing > 1 else None


def find_state(values: Iterable[str], resource: str = ACCOUNT) -> ResourceState | None:
    """The state of ``resource`` among ``supannRessourceEtatDate`` values, or None if absent.

    Values of other resources are not parsed. Raises InvalidInputError when the resource's
    value is malformed or when it has more than one value.
    """
    wanted = resource.upper()
    found = [value for value in values if resource_of(value) == wanted]
    if len(found) > 1:
        raise InvalidInputError(f"{wanted} has {len(found)} state values: {found!r}")
    return ResourceState.parse(found[0]) if found else None


def stage_of(account_state: ResourceState | None) -> Stage:
    """The stage of an account given its ``COMPTE`` state (None: no state, ``unknown``)."""
    return Stage.UNKNOWN if account_state is None else account_state.stage


def replace_resource_values(values: Iterable[str], new_values: Sequence[str]) -> list[str]:
    """Swap in ``new_values``, dropping the old values of the resources they name.

    Values of every other resource, and values that name no resource, are kept as they were
    and in their order; the new values come last.
    """
    replaced = set()
    for value in new_values:
        resource = resource_of(value)
        if resource is None:
            raise InvalidInputError(f"state value {value!r} names no resource")
        replaced.add(resource)
    kept = [value for value in values if resource_of(value) not in replaced]
    return kept + list(new_values)


def replace_state_dates(values: Iterable[str], states: Iterable[ResourceState]) -> list[str]:
    """New ``supannRessourceEtatDate`` values with ``states`` replacing their resources' values."""
    return replace_resource_values(values, [state.format() for state in states])


def replace_statuses(values: Iterable[str], states: Iterable[ResourceState]) -> list[str]:
    """New ``supannRessourceEtat`` values with ``states`` (short form) replacing their resources'."""
    return replace_resource_values(values, [state.short().format() for state in states])


def _account_and_mailbox(
    state: str, substate: str, start: date | None, end: date | None
) -> tuple[ResourceState, ...]:
    return (
        ResourceState(ACCOUNT, state, substate, start, end),
        ResourceState(MAILBOX, state, substate, start, end),
    )


def precreated_states(on: date) -> tuple[ResourceState, ...]:
    """``{COMPTE}I:SupannPrecree:<on>:``: created ahead of the person's arrival."""
    return (ResourceState(ACCOUNT, "I", "SupannPrecree", on),)


def created_states(on: date) -> tuple[ResourceState, ...]:
    """``{COMPTE}I:SupannCree:<on>:``: operational, awaiting activation by the person."""
    return (ResourceState(ACCOUNT, "I", "SupannCree", on),)


def active_states(since: date) -> tuple[ResourceState, ...]:
    """``{COMPTE}A:SupannActif:<since>:`` and the same for ``MAIL``."""
    return _account_and_mailbox("A", "SupannActif", since, None)


def grace_states(end_of_activity: date, grace_end: date) -> tuple[ResourceState, ...]:
    """``{X}A:SupannSursis:<end of activity + 1 day>:<grace end>`` for ``COMPTE`` and ``MAIL``."""
    return _account_and_mailbox("A", "SupannSursis", end_of_activity + ONE_DAY, grace_end)


def expired_states(grace_end: date) -> tuple[ResourceState, ...]:
    """``{X}I:SupannExpire:<grace end + 1 day>:`` for ``COMPTE`` and ``MAIL``."""
    return _account_and_mailbox("I", "SupannExpire", grace_end + ONE_DAY, None)


LOCK_SUBSTATES = {
    "technical": "SupannVerrouTechnique",
    "administrative": "SupannVerrouAdministratif",
}
"""The lock kinds of ``umacct lock`` and the SUPANN sub-state each writes."""


def locked_states(kind: str, since: date) -> tuple[ResourceState, ...]:
    """``{X}S:SupannVerrouTechnique:<since>:`` (or ``...Administratif``) for ``COMPTE`` and ``MAIL``."""
    if kind not in LOCK_SUBSTATES:
        raise InvalidInputError(f"lock kind {kind!r}: expected technical or administrative")
    return _account_and_mailbox("S", LOCK_SUBSTATES[kind], since, None)


def awaiting_deletion_states(since: date) -> tuple[ResourceState, ...]:
    """``{COMPTE}I:SupannSupprCompte:<since>:``: expired, purgeable since ``since``."""
    return (ResourceState(ACCOUNT, "I", AWAITING_DELETION, since),)
