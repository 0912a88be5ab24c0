"""What the directory already holds for a batch of intake rows: a few searches per batch.

``create`` looks up each batch before planning its rows: the people the rows may already be
(by external id, or by personal address) and the identifiers already taken by the names the
rows would get.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from umacct.config import Config
from umacct.directory import Directory, Entry
from umacct.directory.escape import (
    AnyEqual,
    filter_and,
    filter_eq,
    filter_or,
    filter_prefix,
    filter_present,
)
from umacct.errors import InvalidInputError, NotFoundError
from umacct.identifiers import (
    choose_local_part,
    fold_name,
    institutional_address,
    local_part,
    same_names,
)
from umacct.intake import IntakeRow
from umacct.services.accounts import (
    Account,
    account_attributes,
    account_from_entry,
)
from umacct.services.runtime import Runtime
from umacct.store import PurgeRecord, Store

LOOK_UP_ROWS = 200
"""Rows looked up in one search (an OR filter of their values)."""
HOMONYMS_PER_SEARCH = 200
"""People whose homonyms one search looks for (one OR filter of their names)."""
READ_ALL_PER_PERSON = 10
"""Homonyms are matched here when the directory holds at most this many accounts a person."""


class _Created:
    """An account this run created, made an ``Account`` only if a later row asks for it."""

    def __init__(self, dn: str, attributes: dict[str, list[str]], config: Config) -> None:
        self._dn = dn
        self._attributes = attributes
        self._config = config
        self._account: Account | None = None

    def account(self) -> Account:
        if self._account is None:
            folded = {name.lower(): list(values) for name, values in self._attributes.items()}
            self._account = account_from_entry(Entry(self._dn, folded), self._config)
        return self._account


@dataclass
class Known:
    """What the directory already holds for a batch of rows."""

    by_external_id: dict[str, list[Account | _Created]]
    by_personal_mail: dict[str, list[Account | _Created]]
    taken: set[str]
    """Lower-cased uids, login aliases and local parts of addresses starting with a base."""
    names: IdentityKeys | None = None
    """What ``remember`` indexes by, once it was first asked."""


class PurgeSnapshot:
    """The purges of a batch's first identifier candidates and external ids: one look-up.

    A key it does not hold (a suffixed candidate, for a homonym) is looked up alone and
    kept. The snapshot is safe against a purge made by another run meanwhile: the accounts
    were looked up before it (``look_up``), so an identifier whose tombstone it misses was
    still in the directory then, hence taken; and the identifiers chosen are checked again
    just before the adds (``recheck``), for a purge that deleted its entry before the look-up
    and recorded its tombstone only after the snapshot.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._found: dict[str, PurgeRecord | None] = {}

    def take(
        self, rows: Sequence[IntakeRow], taken: Callable[[str], bool], reserved: Collection[str]
    ) -> None:
        """Forget the last batch's purges; look up this batch's.

        Each row's keys: its base, the first candidate neither ``taken`` nor reserved nor
        picked by an earlier row of the batch (what a homonym will ask for), its external id.
        """
        keys: list[str] = []
        picked: set[str] = set()
        for row in rows:
            keys.append(row.name.local_part)
            with contextlib.suppress(InvalidInputError):  # the row's planning reports it
                free = choose_local_part(
                    row.name.local_part, lambda uid: taken(uid) or uid in picked, reserved
                )
                picked.add(free)
                keys.append(free)
            if row.external_id:
                keys.append(row.external_id)
        self._found = self.store.find_purges(keys)

    def find(self, key: str) -> PurgeRecord | None:
        """``find_purge`` of the key, from the snapshot when it holds the key."""
        if key not in self._found:
            self._found[key] = self.store.find_purge(key)
        return self._found[key]

    def recheck(self, uids: Sequence[str]) -> set[str]:
        """The uids (chosen free) purged since the snapshot, now known as such."""
        if not uids:
            return set()
        again = self.store.find_purges(uids)
        self._found.update((uid, record) for uid, record in again.items() if record is not None)
        return {uid for uid, record in again.items() if record is not None}


def external_id_attributes(config: Config) -> list[str]:
    """The external id attributes of every profile, each once (case-insensitively)."""
    names = {p.external_id_attribute.lower(): p.external_id_attribute
             for p in config.profiles.values()}  # fmt: skip
    return list(names.values())


def look_up(runtime: Runtime, rows: Iterable[IntakeRow]) -> Known:
    """The people these rows may already be, and the identifiers taken (a few searches).

    Three searches per ``LOOK_UP_ROWS`` rows. Taken identifiers are found in two steps so
    that the common case uses equality indexes only: first the bases themselves; then, for
    the bases already taken, every suffixed form (``(uid=<base>*)``...).
    """
    known = Known({}, {}, set())
    rows = list(rows)
    for start in range(0, len(rows), LOOK_UP_ROWS):
        _look_up_into(runtime, rows[start : start + LOOK_UP_ROWS], known)
    return known


def remember(known: Known, config: Config, dn: str, attributes: Mapping[str, list[str]]) -> None:
    """Add an account this run just created to what is known, as a look-up would find it."""
    if known.names is None:
        known.names = IdentityKeys(config)
    names = known.names
    created = _Created(dn, dict(attributes), config)
    for name, values in attributes.items():
        folded = name.lower()
        if folded in names.external_ids:
            for value in values:
                known.by_external_id.setdefault(value.casefold(), []).append(created)
        if folded == names.personal_mail:
            for value in values:
                known.by_personal_mail.setdefault(value.lower(), []).append(created)
        if folded in names.identifiers:
            known.taken.update(value.partition("@")[0].lower() for value in values)


class IdentityKeys:
    """The values by which a later row finds a new entry once it is known.

    Each external id (in any profile's id attribute, case-folded) and personal address
    (lower-cased), as ``remember`` indexes them: ``existing_accounts`` matches by no other.
    The attribute names (lower-cased) are worked out once a run, not once an entry.
    """

    def __init__(self, config: Config) -> None:
        self.external_ids = frozenset(name.lower() for name in external_id_attributes(config))
        self.personal_mail = config.attributes.personal_mail.lower()
        self.identifiers = frozenset({"uid", "mail", config.attributes.alias_login.lower()})
        """The attributes whose values (their local parts) are identifiers taken."""

    def of(self, attributes: Mapping[str, Sequence[str]]) -> set[str]:
        """The keys of one entry's attributes."""
        keys: set[str] = set()
        for name, values in attributes.items():
            folded = name.lower()
            if folded in self.external_ids:
                keys.update(value.casefold() for value in values)
            if folded == self.personal_mail:
                keys.update(value.lower() for value in values)
        return keys


def _look_up_into(runtime: Runtime, rows: list[IntakeRow], known: Known) -> None:
    config = runtime.config
    external_ids = external_id_attributes(config)
    people: list[tuple[str, str]] = []
    for row in rows:
        if row.external_id:
            people += [(name, row.external_id) for name in external_ids]
        else:
            people.append((config.attributes.personal_mail, row.personal_email))
    if people:
        for entry in runtime.directory.search(
            config.directory.base_dn, AnyEqual(people), account_attributes(config)
        ):
            _index(known, entry, account_from_entry(entry, config), config, external_ids)
    alias = config.attributes.alias_login
    exact: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        base, domain = row.name.local_part, config.profiles[row.profile].domain
        exact[base] = [("uid", base), (alias, base),
                       ("mail", institutional_address(base, domain))]  # fmt: skip
    taken = [test for tests in exact.values() for test in tests]
    _add_taken(runtime, known, AnyEqual(taken) if taken else None)
    collided = sorted(base for base in exact if base in known.taken)
    if collided:
        prefixes = [
            filter_prefix(name, base) for base in collided for name in ("uid", "mail", alias)
        ]
        _add_taken(runtime, known, filter_or(*prefixes))


def existing_accounts(row: IntakeRow, known: Known) -> list[Account]:
    """The accounts the row's person already has (same names, and id or address).

    The names (folded) and the external id (in any profile's id attribute) must match, or
    the names and the personal address. An external id that matches an account of other names is refused (InvalidInputError):
    the row must never hand that account, and its mailbox, to someone else.
    """
    if row.external_id:
        by_id = _accounts(known.by_external_id.get(row.external_id.casefold(), []))
        found = [account for account in by_id if _same_person(row, account)]
        if by_id and not found:
            holder = by_id[0]
            raise InvalidInputError(
                f"external id {row.external_id!r} belongs to {holder.identifier} "
                f"({holder.given_name} {holder.surname}), not {row.name.given_name} "
                f"{row.name.surname}: nothing changed; check the row"
            )
    else:
        found = [
            account
            for account in _accounts(known.by_personal_mail.get(row.personal_email.lower(), []))
            if _same_person(row, account)
        ]
    unique = {account.dn.lower(): account for account in found}
    return list(unique.values())


def _same_person(row: IntakeRow, account: Account) -> bool:
    return same_names(row.name.given_name, row.name.surname, account.given_name, account.surname)


def _add_taken(runtime: Runtime, known: Known, search: str | AnyEqual | None) -> None:
    if search is None:
        return
    alias = runtime.config.attributes.alias_login
    for entry in runtime.directory.search(
        runtime.config.directory.base_dn, search, ["uid", "mail", alias]
    ):
        for value in entry.get("uid") + entry.get(alias) + entry.get("mail"):
            known.taken.add(value.partition("@")[0].lower())


def _index(
    known: Known, entry: Entry, account: Account | _Created, config: Config, external_ids: list[str]
) -> None:
    for name in external_ids:
        for value in entry.get(name):
            known.by_external_id.setdefault(value.casefold(), []).append(account)
    for value in entry.get(config.attributes.personal_mail):
        known.by_personal_mail.setdefault(value.lower(), []).append(account)


def _accounts(found: list[Account | _Created]) -> list[Account]:
    return [item.account() if isinstance(item, _Created) else item for item in found]


@dataclass(frozen=True)
class NamesWanted:
    """One person whose homonyms are wanted: the names, and the account to leave out."""

    given_name: str
    surname: str
    besides: str


def homonyms_of(runtime: Runtime, people: Sequence[NamesWanted]) -> list[list[str]]:
    """For each person, the other accounts with the same names (folded), sorted.

    An account is a person's homonym when its ``uid`` starts with the names' identifier or
    it has the same ``sn`` and ``givenName`` (as the directory compares them), and its folded
    names are the person's. Names that make no identifier (another script) have none.

    Where the directory holds at most ``READ_ALL_PER_PERSON`` accounts per person, every
    account's names are read once and matched here; else one search per
    ``HOMONYMS_PER_SEARCH`` people (the OR of their filters). Both give the same accounts:
    without an index the server reads every entry for each search, and evaluating a few
    hundred people's filters on each costs it far more than sending the entries.
    """
    wanted = [(index, person, _base(person)) for index, person in enumerate(people)]
    usable = [(index, person, base) for index, person, base in wanted if base is not None]
    found: list[list[str]] = [[] for _ in people]
    if not usable:
        return found
    everyone = _every_named(runtime, len(usable) * READ_ALL_PER_PERSON)
    if everyone is not None:
        _match(everyone, usable, found, runtime.directory)
        return found
    config = runtime.config
    for start in range(0, len(usable), HOMONYMS_PER_SEARCH):
        chunk = usable[start : start + HOMONYMS_PER_SEARCH]
        parts = []
        for _, person, base in chunk:
            names = filter_and(
                filter_eq("sn", person.surname), filter_eq("givenName", person.given_name)
            )
            parts.append(filter_or(filter_prefix("uid", base), names))
        search = filter_and(filter_present(config.directory.profile_attribute), filter_or(*parts))
        entries = runtime.directory.search(config.directory.base_dn, search, _NAMED)
        _match([_named(entry) for entry in entries], chunk, found, runtime.directory)
    return found


def _every_named(runtime: Runtime, at_most: int) -> list[_Named] | None:
    """Every account's names, or None (the search stopped) when there are more than at_most."""
    config = runtime.config
    accounts: list[_Named] = []
    search = filter_present(config.directory.profile_attribute)
    entries = runtime.directory.search(config.directory.base_dn, search, _NAMED)
    try:
        for entry in entries:
            if len(accounts) == at_most:
                return None
            accounts.append(_named(entry))
    finally:
        entries.close()  # type: ignore[attr-defined]
    return accounts


def _match(
    accounts: Iterable[_Named],
    people: Sequence[tuple[int, NamesWanted, str]],
    found: list[list[str]],
    directory: Directory,
) -> None:
    """Into ``found``, each person's homonyms among ``accounts`` (those their filter selects)."""
    answers: dict[tuple[str, str], bool] = {}

    def confirmed(entry: Entry, names: str) -> bool:
        """Whether the directory's own equality finds ``names`` in the entry (asked once)."""
        if (entry.dn, names) not in answers:
            found = directory.search(entry.dn, names, [], scope="base", page_size=0)
            try:
                answers[entry.dn, names] = any(True for _ in found)
            except NotFoundError:  # deleted since it was read: no homonym any more
                answers[entry.dn, names] = False
        return answers[entry.dn, names]

    # Only accounts whose folded names are a person's can be that person's homonyms.
    by_names: dict[tuple[str, str], list[_Named]] = {}
    for account in accounts:
        key = (_name_key(account.given_name), _name_key(account.surname))
        by_names.setdefault(key, []).append(account)
    for index, person, base in people:
        key = (_name_key(person.given_name), _name_key(person.surname))
        found[index] = sorted(
            account.identifier
            for account in by_names.get(key, [])
            if account.identifier.lower() != person.besides.lower()
            and _selected(account, person, base, confirmed)
            and same_names(account.given_name, account.surname, person.given_name,
                           person.surname)
        )  # fmt: skip


def _name_key(name: str) -> str:
    """A name as ``same_names`` compares it (folded; as it is for another script)."""
    return fold_name(name) or unicodedata.normalize("NFC", name).strip().casefold()


def _base(person: NamesWanted) -> str | None:
    try:
        return local_part(person.given_name, person.surname)
    except InvalidInputError:
        return None


def _plain_ignore_case(value: str) -> str | None:
    """A printable ASCII value as caseIgnoreMatch compares it, or None for any other value.

    For such values slapd lowers the letters and drops the spaces at the ends and the
    repeated ones between words; beyond ASCII it applies its own case mapping and
    normalization, which no Python function reproduces, so those values are left to it.
    """
    if not (value.isascii() and value.isprintable()):
        return None
    return " ".join(word for word in value.lower().split(" ") if word)


_NAMED = ["uid", "mail", "sn", "givenName"]
"""What the homonym warning reads of an account."""


@dataclass(frozen=True)
class _Named:
    """An account as the homonym warning sees it: its identifier and names."""

    identifier: str
    given_name: str
    surname: str
    entry: Entry


def _named(entry: Entry) -> _Named:
    # As account_from_entry names an account.
    identifier = (entry.first("mail") or entry.first("uid") or entry.dn).lower()
    return _Named(identifier, entry.first("givenName") or "", entry.first("sn") or "", entry)


def _selected(
    account: _Named, person: NamesWanted, base: str, confirmed: Callable[[Entry, str], bool]
) -> bool:
    """Whether the person's own filter selects the account (the search ORs several people's).

    Names the directory's equality could compare otherwise than Python are left to it:
    ``confirmed`` asks it with the person's names filter.
    """
    entry = account.entry
    if any(uid.lower().startswith(base) for uid in entry.get("uid")):
        return True
    surnames, givens = entry.get("sn"), entry.get("givenName")
    if person.surname in surnames and person.given_name in givens:
        return True
    wanted = (_plain_ignore_case(person.surname), _plain_ignore_case(person.given_name))
    held = [_plain_ignore_case(value) for value in (*surnames, *givens)]
    if None not in wanted and None not in held:
        return wanted[0] in held[: len(surnames)] and wanted[1] in held[len(surnames) :]
    return confirmed(
        entry,
        filter_and(filter_eq("sn", person.surname), filter_eq("givenName", person.given_name)),
    )
