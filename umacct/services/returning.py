"""A person who comes back: their old account, back to awaiting activation for the new row."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from umacct.directory.escape import filter_present
from umacct.errors import InvalidInputError
from umacct.identifiers import same_names
from umacct.intake import IntakeRow
from umacct.policy import ResourceState
from umacct.services.accounts import Account
from umacct.services.arrivals import arrival_states
from umacct.services.changes import PlannedChange
from umacct.services.lifecycle import (
    SAVED_AFFILIATIONS,
    SAVED_PRIMARY_AFFILIATION,
    end_of_activity_value,
    state_targets,
)
from umacct.services.runtime import Runtime
from umacct.store import PurgeRecord

PASSWORD_ATTRIBUTE = "userPassword"  # noqa: S105 (an attribute name)
_PASSWORD_SET = "(set, unreadable)"  # noqa: S105 (a placeholder, never written)


def reinstatement(
    runtime: Runtime, account: Account, row: IntakeRow, today: date
) -> tuple[PlannedChange, tuple[ResourceState, ...]]:
    """The change that reinstates ``account`` for ``row`` (profile, dates, affiliations), and its states.

    The old password is removed (others may know it); the affiliations kept at departure come
    back when the profile is the same, else the new profile's.
    """
    config, names = runtime.config, runtime.config.attributes
    profile = config.profiles[row.profile]
    account = with_password_presence(runtime, account)
    states = arrival_states(today, row.arrival)
    same_profile = account.profile_key == row.profile
    saved = runtime.store.saved_values(account.identifier, SAVED_AFFILIATIONS)
    saved_primary = runtime.store.saved_values(account.identifier, SAVED_PRIMARY_AFFILIATION)
    targets = state_targets(runtime, account, states)
    targets["pwdEndTime"] = []
    targets[PASSWORD_ATTRIBUTE] = []
    targets[names.affiliation] = saved if same_profile and saved else list(profile.affiliations)
    targets[names.primary_affiliation] = (
        saved_primary if same_profile and saved_primary else list(profile.affiliations[:1])
    )
    targets[config.directory.profile_attribute] = [row.profile]
    targets[names.personal_mail] = [row.personal_email]
    old_profile = config.profiles.get(account.profile_key or "")
    if old_profile and old_profile.end_date_attribute != profile.end_date_attribute:
        targets[old_profile.end_date_attribute] = []
    targets[profile.end_date_attribute] = (
        [end_of_activity_value(runtime, row.end_of_activity)] if row.end_of_activity else []
    )
    if row.external_id:
        current = account.values(profile.external_id_attribute)
        if row.external_id.casefold() not in {value.casefold() for value in current}:
            targets[profile.external_id_attribute] = [*current, row.external_id]
    return PlannedChange(account, targets), states


def with_password_presence(runtime: Runtime, account: Account) -> Account:
    """The account, marked as having a password when it has one (the hash is unreadable)."""
    present = runtime.directory.search(
        account.dn, filter_present(PASSWORD_ATTRIBUTE), [], scope="base"
    )
    if next(iter(present), None) is None:
        return account
    attributes = {**account.entry.attributes, PASSWORD_ATTRIBUTE.lower(): [_PASSWORD_SET]}
    return replace(account, entry=replace(account.entry, attributes=attributes))


def check_archived_names(row: IntakeRow, record: PurgeRecord) -> None:
    """A purged account comes back only to the person it was: the same names (folded).

    The names are read from the archive only once it matches the digest of its purge.
    """
    from umacct.services.purge import verified_archive

    entry = verified_archive(record)  # a changed or unverified archive vouches for nothing
    archived = {name.lower(): values for name, values in entry.attributes.items()} if entry else {}
    given = next(iter(archived.get("givenname", [])), None)
    surname = next(iter(archived.get("sn", [])), None)
    if (
        given is None
        or surname is None
        or not same_names(row.name.given_name, row.name.surname, given, surname)
    ):
        who = f"{given} {surname}" if given and surname else "names the archive does not show"
        raise InvalidInputError(
            f"external id {row.external_id!r} belongs to the purged account "
            f"{record.account} ({who}), not {row.name.given_name} {row.name.surname}: "
            "nothing changed; check the row"
        )


def tell_previous_addresses(
    runtime: Runtime, account: Account, previous: list[str], new: str
) -> None:
    """The personal addresses a reinstatement replaced are told (one may be the person's)."""
    params = {"name": account.display_name, "account": account.identifier}
    for address in previous:
        if address.lower() != new.lower():
            runtime.mailer.send(account.identifier, "recovery_changed_old", address, params)
