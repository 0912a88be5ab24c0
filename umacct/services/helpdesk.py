"""The helpdesk's questions: ``show`` one account, ``list`` accounts, read the ``audit`` log.

Everything here only reads: the directory, the state store (pending links), the mail queue
and the audit log. ``list`` streams: one page of entries in memory, whatever the population.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from umacct.directory.escape import (
    filter_and,
    filter_eq,
    filter_ge,
    filter_le,
    filter_not,
    filter_or,
    filter_prefix,
    filter_present,
)
from umacct.errors import InvalidInputError, NotFoundError, UmacctError, UnavailableError
from umacct.policy import ACCOUNT, Stage, parse_generalized_time, to_generalized_time
from umacct.services.accounts import (
    Account,
    check_account_key,
    evaluate_account,
    find_account,
    iter_accounts,
    recovery_address,
)

if TYPE_CHECKING:
    from umacct.audit import AuditRecord
    from umacct.config import Config
    from umacct.services.runtime import Runtime
    from umacct.store import PurgeRecord

RECENT_AUDIT_ENTRIES = 5
PURGED = "purged"
"""The stage of an account that was archived and deleted (its identifier stays reserved)."""

STAGE_STATES: Mapping[Stage, tuple[str, ...]] = {
    Stage.ACTIVE: ("A:SupannActif", "A:SupannAnticipe"),
    Stage.GRACE: ("A:SupannSursis",),
    Stage.EXPIRED: ("I:SupannExpire",),
    Stage.CREATED: ("I:SupannCree",),
    Stage.PRECREATED: ("I:SupannPrecree",),
}
"""The ``supannRessourceEtatDate`` states (of ``COMPTE``) each stage the tool knows stands for."""


@dataclass(frozen=True)
class PendingLink:
    """A link sent to the person and still usable (never the token itself)."""

    purpose: str
    issued: datetime
    expires: datetime


@dataclass(frozen=True)
class QueuedMessage:
    """A message for the person that waits in the mail queue."""

    kind: str
    recipient: str
    created: datetime
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class AuditEntry:
    """One audit record, as the helpdesk reads it."""

    time: datetime
    actor: str
    sudo_user: str | None
    command: str
    account: str | None
    result: str
    changed: list[str]
    """The attributes the command changed."""
    changes: Mapping[str, Mapping[str, list[str]]]
    details: Mapping[str, object]


@dataclass(frozen=True)
class AccountView:
    """Everything the helpdesk needs to know about one account, on one screen."""

    account: str
    """The institutional address (the key every command's JSON uses)."""
    uid: str
    dn: str
    given_name: str
    surname: str
    display_name: str
    aliases: list[str]
    profile: str | None
    """The profile that decides the departure (see ``profiles`` for all of them)."""
    profile_label: str | None
    profiles: list[str]
    stage: str
    state: str | None
    substate: str | None
    state_since: date | None
    state_until: date | None
    end_of_activity: date | None
    grace_end: date | None
    purgeable_on: date | None
    extendable: bool
    extensions_used: int | None
    extension_refusal: str | None
    recovery_address: str | None
    forwarding: list[str]
    password_changed: datetime | None
    last_login: datetime | None
    password_end: datetime | None
    locked_since: datetime | None
    pending_links: list[PendingLink]
    queued_mail: list[QueuedMessage]
    recent_audit: list[AuditEntry]


@dataclass(frozen=True)
class AccountRow:
    """One line of ``umacct list``."""

    account: str
    uid: str
    name: str
    profile: str | None
    profiles: str
    """Every profile the person holds, comma-separated."""
    stage: str
    state: str | None
    since: date | None
    end_of_activity: date | None
    grace_end: date | None
    password_end: datetime | None


def instant_of(account: Account, attribute: str) -> datetime | None:
    """A GeneralizedTime attribute of the account as an instant (None when absent or unreadable).

    ppolicy writes ``000001010000Z`` for a permanent lock; it reads as the earliest instant.
    """
    value = account.entry.first(attribute)
    if not value:
        return None
    try:
        return parse_generalized_time(value)
    except InvalidInputError:
        return None


WELL_KNOWN_ATTRIBUTES = (
    "objectClass", "uid", "mail", "cn", "sn", "givenName", "displayName", "userPassword",
    "pwdEndTime", "pwdChangedTime", "pwdLastSuccess", "pwdAccountLockedTime", "pwdPolicySubentry",
    "pwdHistory", "pwdFailureTime", "pwdReset", "supannRessourceEtat", "supannRessourceEtatDate",
    "supannMailPerso", "supannAliasLogin", "supannCodePopulation", "supannEmpId", "supannEtuId",
    "supannEmpDateFin", "supannEtuDateFin", "supannExtDateFin", "supannEmpProfil",
    "supannEtuInscription", "supannEntiteAffectation", "supannCivilite", "supannListeRouge",
    "eduPersonAffiliation", "eduPersonPrimaryAffiliation", "eduPersonPrincipalName",
    "mailForwardingAddress", "telephoneNumber", "roomNumber", "title", "postalAddress",
    "description", "jpegPhoto", "preferredLanguage",
)  # fmt: skip
"""Attribute names as the SUPANN, eduPerson, inetOrgPerson and ppolicy schemas spell them."""


def schema_spelling(config: Config) -> dict[str, str]:
    """Each attribute name the tool knows, lower case to the schema's spelling.

    The audit log is read without the directory (it may be down): the spelling comes from
    the configuration's attribute names and the schemas the tool works with.
    """
    names = [*WELL_KNOWN_ATTRIBUTES, *vars(config.attributes).values()]
    names += [config.directory.profile_attribute, *config.staff.editable_attributes]
    names += [profile.end_date_attribute for profile in config.profiles.values()]
    if config.antispam is not None:
        names.append(config.antispam.attribute)
    return {name.lower(): name for name in names if isinstance(name, str)}


def audit_entry(record: AuditRecord, spelling: Mapping[str, str] | None = None) -> AuditEntry:
    """An audit record as the helpdesk commands show it.

    Attribute names are spelt as the schema has them (``spelling``), so that ``grep
    supannMailPerso`` finds them whatever case the log holds.
    """
    names = spelling or {}
    changes = {names.get(name.lower(), name): change for name, change in record.changes.items()}
    return AuditEntry(
        time=record.time,
        actor=record.actor,
        sudo_user=record.sudo_user,
        command=record.command,
        account=record.account,
        result=record.result,
        changed=sorted(changes),
        changes=changes,
        details=record.details,
    )


def show_account(runtime: Runtime, key: str) -> AccountView:
    """One account as the helpdesk sees it (``umacct show ACCOUNT``)."""
    config = runtime.config
    account = find_account(runtime.directory, config, key)
    profile = config.profiles.get(account.profile_key or "")
    evaluation = evaluate_account(runtime, account, profile) if profile else None
    state = account.account_state
    links = [
        PendingLink(record.purpose.value, record.issued_at, record.expires_at)
        for record in runtime.pending_links(account.identifier)
    ]
    queued = [
        QueuedMessage(mail.kind, mail.recipient, mail.created_at, mail.attempts, mail.last_error)
        for mail in runtime.queued_mail(account.identifier)
    ]
    recent = runtime.audit.read(account=account.identifier, limit_last=RECENT_AUDIT_ENTRIES)
    return AccountView(
        account=account.identifier,
        uid=account.uid,
        dn=account.dn,
        given_name=account.given_name,
        surname=account.surname,
        display_name=account.full_name,
        aliases=account.values(config.attributes.alias_login),
        profile=account.profile_key,
        profile_label=profile.label if profile else None,
        profiles=[activity.profile_key for activity in account.activities],
        stage=account.stage.value,
        state=state.state if state else None,
        substate=state.substate if state else None,
        state_since=state.start if state else None,
        state_until=state.end if state else None,
        end_of_activity=account.end_of_activity,
        grace_end=evaluation.grace_end if evaluation else None,
        purgeable_on=evaluation.purgeable_on if evaluation else None,
        extendable=bool(evaluation and evaluation.extension_allowed),
        extensions_used=evaluation.extensions_granted if evaluation else None,
        extension_refusal=evaluation.extension_refusal if evaluation else None,
        recovery_address=recovery_address(runtime, account),
        forwarding=account.values(config.attributes.forwarding),
        password_changed=instant_of(account, "pwdChangedTime"),
        last_login=instant_of(account, "pwdLastSuccess"),
        password_end=instant_of(account, "pwdEndTime"),
        locked_since=instant_of(account, "pwdAccountLockedTime"),
        pending_links=links,
        queued_mail=queued,
        recent_audit=[audit_entry(record, schema_spelling(config)) for record in recent],
    )


# --- list ---------------------------------------------------------------------------------


def stage_filter(runtime: Runtime, stage: str) -> str:
    """The server-side filter of the accounts in a stage (active, grace, expired, ...)."""
    attribute = runtime.config.attributes.state_date
    known = [*(s.value for s in STAGE_STATES), Stage.FOREIGN.value, Stage.UNKNOWN.value]
    if stage not in known:
        raise InvalidInputError(f"unknown state {stage!r}: expected one of {', '.join(known)}")
    if stage == Stage.UNKNOWN:
        return filter_not(filter_prefix(attribute, f"{{{ACCOUNT}}}"))
    if stage == Stage.FOREIGN:
        every_known = [
            filter_prefix(attribute, f"{{{ACCOUNT}}}{value}:")
            for values in STAGE_STATES.values()
            for value in values
        ]
        return filter_and(
            filter_prefix(attribute, f"{{{ACCOUNT}}}"), filter_not(filter_or(*every_known))
        )
    return filter_or(
        *(
            filter_prefix(attribute, f"{{{ACCOUNT}}}{value}:")
            for value in STAGE_STATES[Stage(stage)]
        )
    )


def list_filter(
    runtime: Runtime,
    *,
    profile: str | None = None,
    stage: str | None = None,
    expiring_within: int | timedelta | None = None,
) -> str:
    """The server-side filter of ``umacct list`` (every value escaped)."""
    config = runtime.config
    parts = [filter_present(config.directory.profile_attribute)]
    if profile is not None:
        if profile not in config.profiles:
            known = ", ".join(sorted(config.profiles))
            raise InvalidInputError(f"unknown profile {profile!r}: expected one of {known}")
        parts = [filter_eq(config.directory.profile_attribute, profile)]
    if stage is not None:
        parts.append(stage_filter(runtime, stage))
    if expiring_within is not None:
        now = runtime.clock.now()
        horizon = _horizon(runtime, expiring_within)
        parts += [
            filter_ge("pwdEndTime", to_generalized_time(now)),
            filter_le("pwdEndTime", to_generalized_time(horizon)),
        ]
    return filter_and(*parts)


def _horizon(runtime: Runtime, within: int | timedelta) -> datetime:
    """The end of ``within``.

    Whole days end at the midnight after the last one (local time); any other duration
    ends that long from now.
    """
    if isinstance(within, timedelta) and within % timedelta(days=1):
        return runtime.clock.now() + within
    whole_days = within.days if isinstance(within, timedelta) else within
    if whole_days < 0:
        raise InvalidInputError("--expiring-within: expected 0 or more days")
    return _local_midnight(runtime, runtime.today() + timedelta(days=whole_days + 1))


def _local_midnight(runtime: Runtime, day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=ZoneInfo(runtime.config.policy.timezone))


def account_row(account: Account, grace_end: date | None = None) -> AccountRow:
    """One account as a line of ``umacct list``.

    ``grace_end`` is the policy's (as ``show`` gives it: also for an account past its end of
    activity that the sweep has not suspended yet); without it, the stored grace state's end.
    """
    state = account.account_state
    if grace_end is None and state is not None and account.stage is Stage.GRACE:
        grace_end = state.end
    return AccountRow(
        account=account.identifier,
        uid=account.uid,
        name=account.full_name,
        profile=account.profile_key,
        profiles=",".join(activity.profile_key for activity in account.activities),
        stage=account.stage.value,
        state=f"{state.state}:{state.substate}" if state else None,
        since=state.start if state else None,
        end_of_activity=account.end_of_activity,
        grace_end=grace_end,
        password_end=instant_of(account, "pwdEndTime"),
    )


def list_accounts(
    runtime: Runtime,
    *,
    profile: str | None = None,
    stage: str | None = None,
    expiring_within: int | timedelta | None = None,
) -> Iterator[AccountRow]:
    """Stream the accounts matching the filters (``umacct list``), in no particular order.

    ``expiring_within`` keeps the accounts whose login stops (``pwdEndTime``) from now to the
    end of that many days from today. Filters are checked before the directory is contacted.
    """
    search = list_filter(runtime, profile=profile, stage=stage, expiring_within=expiring_within)
    return (
        account_row(account, _policy_grace_end(runtime, account))
        for account in iter_accounts(runtime.directory, runtime.config, search)
    )


def _policy_grace_end(runtime: Runtime, account: Account) -> date | None:
    """The grace end ``show`` gives an account not in grace yet (None: no profile, no end).

    An account in grace has its stored end (no look-up in the state store per line).
    """
    profile = runtime.config.profiles.get(account.profile_key or "")
    if profile is None or account.stage not in (Stage.ACTIVE, Stage.CREATED, Stage.PRECREATED):
        return None
    return evaluate_account(runtime, account, profile).grace_end


# --- audit --------------------------------------------------------------------------------


def audit_account_key(runtime: Runtime, key: str) -> str:
    """The identifier the audit log files an account under.

    An address is taken as given (the account may be purged). A uid or an alias is looked
    up in the directory, else among the purged accounts; with the directory down (the log
    is local and must stay readable then), among the purged accounts, else the log's own
    accounts whose address starts with that uid.
    """
    cleaned = check_account_key(key).lower()
    if "@" in cleaned:
        return cleaned
    try:
        return find_account(runtime.directory, runtime.config, key).identifier
    except NotFoundError:
        purge = _find_purge(runtime, cleaned)
        if purge is None:
            raise
        return purge.account.lower()
    except UnavailableError:
        purge = _find_purge(runtime, cleaned)
        if purge is not None:
            return purge.account.lower()
        for record in runtime.audit.read():
            if record.account and record.account.lower().partition("@")[0] == cleaned:
                return record.account.lower()
        raise


def read_audit(
    runtime: Runtime,
    *,
    account: str | None = None,
    since: date | None = None,
    actor: str | None = None,
) -> list[AuditEntry]:
    """The audit records matching every filter given, oldest first (``umacct audit``)."""
    identifier = audit_account_key(runtime, account) if account else None
    start = _local_midnight(runtime, since) if since else None
    records = runtime.audit.read(account=identifier, since=start, actor=actor)
    spelling = schema_spelling(runtime.config)
    return [audit_entry(record, spelling) for record in records]


# --- purged accounts ----------------------------------------------------------------------


@dataclass(frozen=True)
class PurgedView:
    """A purged account: not "no account", but archived, deleted and reserved."""

    account: str
    uid: str
    stage: str
    purged_at: datetime
    archive: str
    archive_sha256: str | None
    external_id: str | None
    restore: str
    """The command that puts it back."""


def _find_purge(runtime: Runtime, key: str) -> PurgeRecord | None:
    try:
        return runtime.store.find_purge(key)
    except UmacctError:
        return None  # the store is out of reach too (in the directory, say): not found


def purged_account(runtime: Runtime, key: str) -> PurgedView | None:
    """The purge of the account ``key`` names (identifier, uid or external id), if not restored."""
    purge = _find_purge(runtime, check_account_key(key))
    if purge is None or purge.restored_at is not None:
        return None
    return PurgedView(
        account=purge.account,
        uid=purge.uid,
        stage=PURGED,
        purged_at=purge.purged_at,
        archive=str(purge.archive),
        archive_sha256=purge.archive_sha256,
        external_id=purge.external_id,
        restore=f"umacct restore {purge.account} --reason TEXT",
    )


def show_account_or_purged(runtime: Runtime, key: str) -> AccountView | PurgedView:
    """``umacct show``: the account, or what became of it when it was purged."""
    try:
        return show_account(runtime, key)
    except NotFoundError:
        purged = purged_account(runtime, key)
        if purged is None:
            raise
        return purged


def list_purged(runtime: Runtime, *, profile: str | None = None) -> Iterator[AccountRow]:
    """``list --state purged``: the purged accounts not restored, oldest purge first.

    The purges are the state store's (shared by every host when it is in the directory); the
    name and profile come from this host's audit record of the purge, else from the archive
    (when its SHA-256 still matches), else only the uid is known.
    """
    config = runtime.config
    for purge, archived in purged_people(runtime):
        profiles = archived.get(config.directory.profile_attribute.lower(), [])
        if profile is not None and profile not in profiles:
            continue
        names = archived.get("displayname") or archived.get("cn") or [purge.uid]
        yield AccountRow(
            account=purge.account,
            uid=purge.uid,
            name=names[0],
            profile=profiles[0] if profiles else None,
            profiles=",".join(profiles),
            stage=PURGED,
            state=None,
            since=purge.purged_at.astimezone(ZoneInfo(config.policy.timezone)).date(),
            end_of_activity=None,
            grace_end=None,
            password_end=None,
        )


def purged_people(runtime: Runtime) -> Iterator[tuple[PurgeRecord, dict[str, list[str]]]]:
    """Each purge not restored, oldest first, with what is known of the entry.

    The values (lower-case attribute names) come from this host's audit record of the purge,
    else from the archive when its SHA-256 still matches, else nothing is known but the purge.
    """
    audited = _purges_audited(runtime)
    for purge in runtime.store.purges():
        if purge.restored_at is None:
            yield purge, audited.get(purge.account) or _archived_values(purge)


def _purges_audited(runtime: Runtime) -> dict[str, dict[str, list[str]]]:
    """Each account this host's audit log saw purged: its archived values, lower-case names."""
    found: dict[str, dict[str, list[str]]] = {}
    for record in runtime.audit.read():
        if record.command == "purge" and record.result == "ok" and record.account:
            found[record.account] = {
                name.lower(): change.get("before", []) for name, change in record.changes.items()
            }
    return found


def _archived_values(purge: PurgeRecord) -> dict[str, list[str]]:
    """The archived entry's values (lower-case names), or nothing when it cannot be vouched for."""
    from umacct.services.purge import verified_archive

    try:
        entry = verified_archive(purge)
    except UmacctError:
        return {}
    return {name.lower(): values for name, values in entry.attributes.items()}
