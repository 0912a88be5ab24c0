"""A person with several profiles: adding a profile to the account the person already has.

One person, one account: an intake row for someone who already has an account (same names,
and the same external id or personal address) with another profile adds that profile to
the account instead of creating a second one. Each profile keeps its own end date: in its
own attribute, or, where profiles share one (titulaire and vacataire in ``supannEmpDateFin``),
in a composite value of ``supannEmpProfil`` named by the profile's ``end_date_match``.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from umacct.config import ProfileConfig
from umacct.errors import InvalidInputError, UmacctError
from umacct.policy import Stage
from umacct.services.accounts import Account, composite_fields
from umacct.services.changes import PlannedChange
from umacct.services.lifecycle import end_of_activity_value
from umacct.services.runtime import Runtime

if TYPE_CHECKING:
    from umacct.intake import IntakeRow  # the sweep never loads the intake's parser


def composite_value(match: str, end: date) -> str:
    """A composite value naming ``match`` (``population=...``) and its ``datefin``."""
    key, _, value = match.partition("=")
    return f"[{key.strip()}={value.strip()}][datefin={end:%Y%m%d}]"


def add_profile_change(runtime: Runtime, account: Account, row: IntakeRow) -> PlannedChange:
    """The change that adds the row's profile to the account (its end, id and affiliations).

    Refused (InvalidInputError) when the new profile would overwrite the end date of one the
    person holds: both keep their date in the same plain attribute.
    """
    config = runtime.config
    profile = config.profiles[row.profile]
    names = config.attributes
    held = [activity.profile_key for activity in account.activities]
    sharing = [
        key for key in held
        if config.profiles[key].end_date_attribute.lower() == profile.end_date_attribute.lower()
        and (profile.end_date_match is None or config.profiles[key].end_date_match is None)
    ]  # fmt: skip
    if sharing and row.end_of_activity is not None:
        raise InvalidInputError(
            f"{account.identifier} is {', '.join(sharing)}: adding {row.profile} would overwrite "
            f"its end date in {profile.end_date_attribute}; give the profiles composite "
            'end dates (end_date_attribute = "supannEmpProfil" and end_date_match)'
        )
    targets: dict[str, list[str]] = {
        config.directory.profile_attribute: [*account.values(config.directory.profile_attribute),
                                             row.profile],
        names.affiliation: _union(account.values(names.affiliation), profile.affiliations),
    }  # fmt: skip
    if row.end_of_activity is not None:
        targets[profile.end_date_attribute] = _end_values(runtime, account, profile, row)
    if row.external_id:
        current = account.values(profile.external_id_attribute)
        if row.external_id.casefold() not in {value.casefold() for value in current}:
            targets[profile.external_id_attribute] = [*current, row.external_id]
    return PlannedChange(account, targets)


def _end_values(
    runtime: Runtime, account: Account, profile: ProfileConfig, row: IntakeRow
) -> list[str]:
    assert row.end_of_activity is not None
    if profile.end_date_match is None:
        return [end_of_activity_value(runtime, row.end_of_activity)]
    key, _, wanted = profile.end_date_match.partition("=")
    kept = [
        value for value in account.values(profile.end_date_attribute)
        if composite_fields(value).get(key.strip().lower(), "").casefold()
        != wanted.strip().casefold()
    ]  # fmt: skip
    return [*kept, composite_value(profile.end_date_match, row.end_of_activity)]


def _union(first: list[str], second: list[str]) -> list[str]:
    seen = {value.lower() for value in first}
    return [*first, *(value for value in second if value.lower() not in seen)]


def tell_profile_added(runtime: Runtime, account: Account, profile_key: str) -> None:
    """The person is told that their account now serves one more activity."""
    label = runtime.config.profiles[profile_key].label
    params = {"name": account.display_name, "account": account.identifier, "profile": label}
    runtime.mailer.send(account.identifier, "profile_added", account.identifier, params)


def ended_profile_affiliations(runtime: Runtime, account: Account) -> tuple[str, list[str]] | None:
    """An ended activity whose grace is over while another goes on, and its affiliations.

    Only the affiliations that activity alone gave and that the account still has; None when
    there is nothing to take away today.
    """
    from umacct.policy import grace_end_for
    from umacct.services.accounts import rules_for

    config, today = runtime.config, runtime.today()
    if account.stage not in (Stage.ACTIVE, Stage.CREATED, Stage.PRECREATED):
        return None
    continuing = [
        activity for activity in account.activities
        if activity.end_of_activity is None or activity.end_of_activity >= today
    ]  # fmt: skip
    if not continuing:
        return None
    kept = {
        value.lower() for a in continuing for value in config.profiles[a.profile_key].affiliations
    }
    present = {value.lower(): value for value in account.values(config.attributes.affiliation)}
    for activity in account.activities:
        end = activity.end_of_activity
        if end is None or end >= today:
            continue
        settings = config.profiles[activity.profile_key]
        if grace_end_for(rules_for(activity.profile_key, settings), end) >= today:
            continue
        gone = [present[v.lower()] for v in settings.affiliations
                if v.lower() in present and v.lower() not in kept]  # fmt: skip
        if gone:
            return activity.profile_key, gone
    return None


def drop_ended_profile_affiliations(
    runtime: Runtime, account: Account, profile_key: str, gone: list[str], *, dry_run: bool
) -> PlannedChange:
    """Take away the affiliations only an ended activity gave (kept aside), tell the person."""
    from umacct.services.changes import apply_change

    names = runtime.config.attributes
    remaining = [v for v in account.values(names.affiliation) if v not in gone]
    primary = account.values(names.primary_affiliation)
    targets = {names.affiliation: remaining}
    if primary and primary[0] in gone:
        targets[names.primary_affiliation] = remaining[:1]
    change = PlannedChange(account, targets)
    if not dry_run:
        runtime.store.save_values(
            account.identifier, {f"affiliations:{profile_key}": gone}, runtime.clock.now()
        )
    apply_change(
        runtime, change, command="sweep", dry_run=dry_run, details={"profile_ended": profile_key}
    )
    if not dry_run:
        label = runtime.config.profiles[profile_key].label
        params = {"name": account.display_name, "account": account.identifier, "profile": label}
        runtime.mailer.send(account.identifier, "profile_ended", account.identifier, params)
    return change


REF_PREFIX = "{UMACCT}"
"""``supannRefId`` values linking the accounts of one person across a change of domain."""
REF_NEXT = f"{REF_PREFIX}next:"
REF_PREVIOUS = f"{REF_PREFIX}previous:"
ALIAS_ATTRIBUTE = "supannAutreMail"


def moves_domain(runtime: Runtime, account: Account, profile_key: str) -> bool:
    """Whether the row's profile should give the person a new account (the site's choice)."""
    if not runtime.config.policy.new_address_on_profile_change:
        return False
    new_domain = runtime.config.profiles[profile_key].domain.lower()
    return account.identifier.rpartition("@")[2] != new_domain


def link_previous_account(runtime: Runtime, previous: Account, new_identifier: str) -> None:
    """The old account points to the new one (``supannRefId``)."""
    from umacct.services.changes import apply_change

    refs = [v for v in previous.values("supannRefId") if not v.startswith(REF_NEXT)]
    change = PlannedChange(previous, {"supannRefId": [*refs, f"{REF_NEXT}{new_identifier}"]})
    apply_change(runtime, change, command="create", details={"new_account": new_identifier})


def drop_alias_of_expired(runtime: Runtime, account: Account) -> None:
    """An old account expires: its address stops being an alias of the person's new account."""
    from umacct.services.accounts import find_account
    from umacct.services.changes import apply_change

    for value in account.values("supannRefId"):
        if not value.startswith(REF_NEXT):
            continue
        try:
            new = find_account(runtime.directory, runtime.config, value.removeprefix(REF_NEXT))
        except UmacctError:
            continue
        aliases = new.values(ALIAS_ATTRIBUTE)
        kept = [a for a in aliases if a.lower() != account.identifier.lower()]
        if kept != aliases:
            apply_change(
                runtime,
                PlannedChange(new, {ALIAS_ATTRIBUTE: kept}),
                command="sweep",
                details={"alias_ends_with": account.identifier},
            )
