"""Accounts as the services see them: found by address, uid or alias, read into one dataclass.

Everything that turns a directory entry into policy facts lives here, so that each use case
reads an account the same way.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, ClassVar
from zoneinfo import ZoneInfo

from umacct.config import Config, ProfileConfig
from umacct.errors import InvalidInputError, NotFoundError
from umacct.policy import (
    AccountFacts,
    ProfileRules,
    ResourceState,
    Stage,
    deciding_activity,
    evaluate,
    find_state,
    parse_generalized_time,
    supann_date_of,
)

if TYPE_CHECKING:
    from umacct.directory import Directory, Entry
    from umacct.policy import Evaluation
    from umacct.services.runtime import Runtime
    from umacct.store import PurgeRecord

PASSWORD_POLICY_ATTRIBUTES = (
    "pwdEndTime",
    "pwdChangedTime",
    "pwdLastSuccess",
    "pwdAccountLockedTime",
)
_MAX_KEY_LENGTH = 256
_MAX_REASON_LENGTH = 500
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


@dataclass(frozen=True)
class Activity:
    """One of a person's activities: a configured profile and its end (None: no end known)."""

    profile_key: str
    end_of_activity: date | None


@dataclass(frozen=True)
class Account:
    """One person's account, read from the directory.

    A person may hold several profiles at once (a doctoral student who teaches as a
    vacataire): ``activities`` has one per configured profile value, and ``profile_key`` /
    ``end_of_activity`` are those of the activity that decides the departure (see
    ``umacct.policy.deciding_activity``).
    """

    dn: str
    uid: str
    identifier: str
    """The institutional address: the identifier people type."""
    profile_key: str | None
    given_name: str
    surname: str
    account_state: ResourceState | None
    end_of_activity: date | None
    entry: Entry
    activities: tuple[Activity, ...] = ()
    cut_off: date | None = None
    """The day ``pwdEndTime`` stopped the login (policy time zone), when it is set."""

    @property
    def stage(self) -> Stage:
        """Where the account stands, from its ``COMPTE`` state."""
        return AccountFacts.from_state(self.account_state, None).stage

    @property
    def full_name(self) -> str:
        """Given name and surname as the directory holds them (shown escaped to people)."""
        return f"{self.given_name} {self.surname}".strip() or self.uid

    @property
    def display_name(self) -> str:
        """Given name and surname, for mail and messages.

        Control and invisible characters (a directory may hold them) become spaces: a name
        never stops a mail that a change already made must send.
        """
        name = "".join(
            " " if unicodedata.category(c) in _INVISIBLE_CATEGORIES else c
            for c in f"{self.given_name} {self.surname}"
        )
        return " ".join(name.split()) or self.uid

    def values(self, attribute: str) -> list[str]:
        """The values of any attribute read with the account."""
        return self.entry.get(attribute)

    def facts(self) -> AccountFacts:
        """What the policy engine needs to know about this account."""
        return AccountFacts.from_state(
            self.account_state, self.end_of_activity, cut_off=self.cut_off
        )


def account_attributes(config: Config) -> list[str]:
    """Every attribute the services read on an account (one search gets them all)."""
    names = [
        "objectClass", "uid", "mail", "cn", "sn", "givenName", "displayName",
        "supannRefId", "supannAutreMail",
        config.directory.profile_attribute,
        *vars(config.attributes).values(),
        *PASSWORD_POLICY_ATTRIBUTES,
    ]  # fmt: skip
    for profile in config.profiles.values():
        names += [profile.end_date_attribute, profile.external_id_attribute]
    unique: dict[str, str] = {}
    for name in names:
        unique.setdefault(name.lower(), name)
    return list(unique.values())


def end_of_activity_date(value: str | None, timezone: str) -> date | None:
    """The day (in the policy's time zone) of a GeneralizedTime end of activity."""
    if not value:
        return None
    try:
        return supann_date_of(value, timezone)
    except InvalidInputError:
        return None


def profile_key_of(entry: Entry, config: Config) -> str | None:
    """The profile key stored on the entry, if any (the first, when it holds several)."""
    return entry.first(config.directory.profile_attribute)


def composite_fields(value: str) -> dict[str, str]:
    """The ``[key=value]`` parts of a SUPANN composite value (``supannEmpProfil``)."""
    fields: dict[str, str] = {}
    for part in value.split("]"):
        key, equals, content = part.strip().lstrip("[").partition("=")
        if equals and key:
            fields[key.strip().lower()] = content.strip()
    return fields


def profile_end(entry: Entry, profile: ProfileConfig, timezone: str) -> date | None:
    """A profile's end of activity on the entry.

    The profile's date attribute, or the ``datefin`` of the composite value that holds
    ``end_date_match`` (the latest, if several do).
    """
    values = entry.get(profile.end_date_attribute)
    if profile.end_date_match is None:
        return end_of_activity_date(values[0] if values else None, timezone)
    key, _, wanted = profile.end_date_match.partition("=")
    ends = []
    for value in values:
        fields = composite_fields(value)
        found = fields.get(key.strip().lower())
        if found is not None and found.casefold() == wanted.strip().casefold():
            datefin = fields.get("datefin", "")
            if len(datefin) == 8 and datefin.isdigit():
                try:
                    ends.append(date(int(datefin[:4]), int(datefin[4:6]), int(datefin[6:])))
                except ValueError:
                    continue
    return max(ends, default=None)


def activities_of(entry: Entry, config: Config) -> tuple[Activity, ...]:
    """One activity per configured profile value of the entry, in the entry's order."""
    keys = dict.fromkeys(entry.get(config.directory.profile_attribute))
    return tuple(
        Activity(key, profile_end(entry, config.profiles[key], config.policy.timezone))
        for key in keys
        if key in config.profiles
    )


def decided_activities(
    entry: Entry, config: Config
) -> tuple[tuple[Activity, ...], str | None, date | None]:
    """The entry's activities, and the profile key and end of the one that decides."""
    activities = activities_of(entry, config)
    if not activities:
        return activities, profile_key_of(entry, config), None
    pairs = [(rules_for(a.profile_key, config.profiles[a.profile_key]), a.end_of_activity)
             for a in activities]  # fmt: skip
    deciding = activities[deciding_activity(pairs)]
    return activities, deciding.profile_key, deciding.end_of_activity


_Decided = tuple[tuple[Activity, ...], str | None, date | None]


@dataclass(frozen=True, eq=False)
class _DecidedCache:
    """``decided_activities`` answers of one configuration, by the values they are made of.

    They depend on the entry's profile values and the values of the profiles' end-date
    attributes only (and on the configuration, which a run never changes: another one gets
    a cache of its own), and people share them (a population ends on the same days): a
    sweep's 500 due accounts make a few keys. Answers are immutable; at most ``LIMIT`` kept.
    """

    LIMIT: ClassVar[int] = 4096
    config: Config
    profile_attribute: str
    end_attributes: tuple[str, ...]
    answers: dict[tuple[object, ...], _Decided]

    @classmethod
    def of(cls, config: Config) -> _DecidedCache:
        """The cache of ``config``: the last one used, or a new one (replacing it whole)."""
        cache = _DECIDED[0]  # one read: threads switching configurations each see one whole cache
        if cache is None or cache.config is not config:
            ends = {p.end_date_attribute.lower(): None for p in config.profiles.values()}
            cache = cls(config, config.directory.profile_attribute.lower(), tuple(ends), {})
            _DECIDED[0] = cache
        return cache

    def decided(self, entry: Entry) -> _Decided:
        """``decided_activities(entry, self.config)``, kept."""
        attributes = entry.attributes
        key = (
            tuple(attributes.get(self.profile_attribute, ())),
            *(tuple(attributes.get(name, ())) for name in self.end_attributes),
        )
        answer = self.answers.get(key)
        if answer is None:
            answer = decided_activities(entry, self.config)
            if len(self.answers) >= self.LIMIT:
                self.answers.clear()
            self.answers[key] = answer
        return answer


_DECIDED: list[_DecidedCache | None] = [None]


def account_from_entry(entry: Entry, config: Config) -> Account:
    """Read an entry into an ``Account``; an unparsable state counts as none."""
    activities, profile_key, end_of_activity = _DecidedCache.of(config).decided(entry)
    try:
        state = find_state(entry.get(config.attributes.state_date))
    except InvalidInputError:
        state = None
    return Account(
        cut_off=_cut_off_day(entry.first("pwdEndTime"), config.policy.timezone),
        dn=entry.dn,
        uid=entry.first("uid") or "",
        identifier=(entry.first("mail") or entry.first("uid") or entry.dn).lower(),
        profile_key=profile_key,
        given_name=entry.first("givenName") or "",
        surname=entry.first("sn") or "",
        account_state=state,
        end_of_activity=end_of_activity,
        entry=entry,
        activities=activities,
    )


def _cut_off_day(value: str | None, timezone: str) -> date | None:
    """The local day of a ``pwdEndTime`` (the tool writes the expiry day's 00:00 local)."""
    if not value:
        return None
    try:
        return parse_generalized_time(value).astimezone(ZoneInfo(timezone)).date()
    except (InvalidInputError, OverflowError, ValueError):
        return None


def check_account_key(key: str) -> str:
    """Refuse an account argument that no account could have (before any search).

    The key is NFKC-normalised, as the directory's own matching rules fold it (a full-width
    ``\uff41`` finds ``a``): the tool then names the account as the directory stores it.
    """
    cleaned = unicodedata.normalize("NFKC", key.strip())
    if not cleaned:
        raise InvalidInputError("empty account: give an address, a uid or a login alias")
    if len(cleaned) > _MAX_KEY_LENGTH or any(unicodedata.category(ch)[0] == "C" for ch in cleaned):
        raise InvalidInputError(f"invalid account {key!r}: control characters or too long")
    return cleaned


def check_reason(reason: str | None) -> str | None:
    """Refuse a ``--reason`` the audit log and its readers could be fooled by.

    Control and invisible characters (a line break could forge a line of ``umacct audit``'s
    table; a bidi override could hide text) and reasons over 500 characters are refused.
    """
    if reason is None:
        return None
    cleaned = reason.strip()
    if any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in cleaned):
        raise InvalidInputError(
            f"reason {reason!r}: control, line-break or invisible characters are not allowed"
        )
    if len(cleaned) > _MAX_REASON_LENGTH:
        raise InvalidInputError(
            f"reason is {len(cleaned)} characters long (at most {_MAX_REASON_LENGTH})"
        )
    return cleaned


def account_filter(config: Config, key: str) -> str:
    """The filter that finds an account by address, uid or login alias (values escaped)."""
    from umacct.directory.escape import filter_eq, filter_or

    return filter_or(
        filter_eq("mail", key), filter_eq("uid", key), filter_eq(config.attributes.alias_login, key)
    )


def find_account(directory: Directory, config: Config, key: str) -> Account:
    """The account named by ``key``: its institutional address, uid or login alias.

    Raises NotFoundError when none matches and InvalidInputError, listing the candidates,
    when several do.
    """
    cleaned = check_account_key(key)
    found = list(
        directory.search(
            config.directory.base_dn, account_filter(config, cleaned), account_attributes(config)
        )
    )
    if not found:
        raise NotFoundError(f"no account {cleaned!r} (searched address, uid and login alias)")
    if len(found) > 1:
        # An address held as an alias (supannAutreMail is a kind of mail) by the person's
        # new account still names the account whose own address it is.
        owners = [e for e in found if (e.first("mail") or "").lower() == cleaned.lower()]
        if len(owners) == 1:
            return account_from_entry(owners[0], config)
        names = ", ".join(sorted(entry.first("mail") or entry.dn for entry in found))
        raise InvalidInputError(
            f"{cleaned!r} is ambiguous: it names {len(found)} accounts ({names})"
        )
    return account_from_entry(found[0], config)


def account_named(runtime: Runtime, key: str) -> Account:
    """``find_account`` for a command that takes an ACCOUNT: a purged one is said to be purged.

    Raises NotFoundError (67) as ``find_account`` does; when the key names a purged account
    not restored, the message gives the purge's day and the command that puts it back.
    """
    try:
        return find_account(runtime.directory, runtime.config, key)
    except NotFoundError as error:
        purge = purge_of(runtime, check_account_key(key))
        if purge is None or purge.restored_at is not None:
            raise
        day = purge.purged_at.astimezone(ZoneInfo(runtime.config.policy.timezone)).date()
        raise NotFoundError(
            f"{purge.account} was purged on {day.isoformat()} (archived, then deleted): "
            f"`umacct restore {purge.account} --reason ...` puts it back"
        ) from error


def purge_of(runtime: Runtime, key: str) -> PurgeRecord | None:
    """The purge recorded for an identifier, uid or external id (None: none, or unreadable)."""
    from umacct.errors import UmacctError

    try:
        return runtime.store.find_purge(key)
    except UmacctError:
        return None  # the store is out of reach: say only that no account matches


CHANGE_MARK = "entryCSN"
"""The operational attribute slapd changes on every write of an entry (read where asked)."""


def iter_accounts(
    directory: Directory, config: Config, search_filter: str, *, marked: bool = False
) -> Iterator[Account]:
    """Stream the accounts matching a filter (built with ``umacct.directory.escape``).

    ``marked``: read each entry's ``CHANGE_MARK`` too, so that a write made from it can tell
    whether the entry changed since (``changes.modify_of``).
    """
    attributes = account_attributes(config) + ([CHANGE_MARK] if marked else [])
    for entry in directory.search(config.directory.base_dn, search_filter, attributes):
        yield account_from_entry(entry, config)


def profile_of(account: Account, config: Config) -> ProfileConfig:
    """The account's profile; InvalidInputError when the entry names none or an unknown one."""
    if not account.profile_key:
        raise InvalidInputError(
            f"{account.identifier} has no profile ({config.directory.profile_attribute} is empty)"
        )
    profile = config.profiles.get(account.profile_key)
    if profile is None:
        known = ", ".join(sorted(config.profiles))
        raise InvalidInputError(
            f"{account.identifier} has the unknown profile {account.profile_key!r} (configured: {known})"
        )
    return profile


_RULES_CACHE: dict[tuple[str, int, bool, int, int | None], ProfileRules] = {}


def rules_for(key: str, profile: ProfileConfig) -> ProfileRules:
    """The policy rules of a configured profile (one object per profile, for the engine's cache)."""
    cache_key = (
        key,
        profile.grace_months,
        profile.extendable,
        profile.extension_months,
        profile.max_extensions,
    )
    rules = _RULES_CACHE.get(cache_key)
    if rules is None:
        rules = ProfileRules(
            key=key,
            grace_months=profile.grace_months,
            extendable=profile.extendable,
            extension_months=profile.extension_months,
            max_extensions=profile.max_extensions,
        )
        _RULES_CACHE[cache_key] = rules
    return rules


DEPARTURE_NOTICE = "departure"
"""The notice kind recorded when the person is first told of a departure (key: its end)."""


def departure_key(end_of_activity: date) -> str:
    """The key of a departure's notice: its end of activity (a later departure is another)."""
    return end_of_activity.isoformat()


def account_facts(
    runtime: Runtime, account: Account, notified: tuple[str, date] | None = None
) -> AccountFacts:
    """The policy's facts on the account, with the day its departure was notified (in grace).

    ``notified``: the key and day of a departure notice just recorded, used instead of
    looking it up when it is the one the account's state names (the look-up would find it).
    """
    facts = account.facts()
    state = account.account_state
    departure: date | None = None
    if facts.stage is Stage.GRACE and state is not None and state.start is not None:
        departure = state.start - timedelta(days=1)
    elif facts.stage is Stage.EXPIRED:  # tells whether the notice rule lengthened the grace
        departure = account.end_of_activity
    if departure is not None:
        key = departure_key(departure)
        if notified is not None and notified[0] == key:
            notified_day: date | None = notified[1]
        else:
            notified_day = runtime.notice_day(account.identifier, DEPARTURE_NOTICE, key)
        if notified_day is not None:
            facts = dataclasses.replace(facts, notified_on=notified_day)
    return facts


def evaluate_account(
    runtime: Runtime,
    account: Account,
    profile: ProfileConfig,
    notified: tuple[str, date] | None = None,
) -> Evaluation:
    """The policy's view of the account today (``notified``: see ``account_facts``)."""
    policy = runtime.config.policy
    return evaluate(
        rules_for(account.profile_key or "", profile),
        account_facts(runtime, account, notified),
        runtime.today(),
        purge_after_days=policy.purge_after_days,
        warn_days=tuple(policy.warn_days_before_expiry),
        minimum_notice_days=policy.minimum_notice_days,
    )


def recovery_address(runtime: Runtime, account: Account) -> str | None:
    """The recovery address (``{SECOURS}`` value when the attribute is supannMailPrive)."""
    names = runtime.config.attributes
    for value in account.values(names.recovery_mail):
        if value.startswith("{"):
            label, _, address = value[1:].partition("}")
            if label.upper() == "SECOURS" and address:
                return address
        elif value:
            return value
    return None
