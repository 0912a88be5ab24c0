"""``umacct search TEXT``: find people the way the helpdesk is asked about them.

By name ("Louis Benali", "benali", "BENALI Louis": every word, in any order, accents and
case folded), or exactly by identifier, uid, login alias, personal address or external id.
The directory does the filtering (substring and equality filters, every value escaped);
the names are then checked folded here, so that "Benali" finds "Bénali" and "Ben" does not
find "Aubenas" by a word it only ends. A purged account is found by its identifier, uid or
external id in the state store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from umacct.directory.escape import (
    check_attribute_name,
    escape_filter_value,
    filter_and,
    filter_eq,
    filter_or,
    filter_prefix,
    filter_present,
)
from umacct.errors import InvalidInputError
from umacct.identifiers import fold_name
from umacct.services.accounts import Account, check_account_key, iter_accounts, recovery_address
from umacct.services.create_lookup import external_id_attributes

if TYPE_CHECKING:
    from umacct.services.runtime import Runtime

MIN_LENGTH = 2
DEFAULT_LIMIT = 20
_WORDS = re.compile(r"[\s,;]+")
_PARTS = re.compile(r"[\s,;\-\u2010-\u2015]+")
"""What separates the parts of a name: a compound name may be stored with a space or a hyphen."""


@dataclass(frozen=True)
class Match:
    """One person found: who, where the account stands, and what matched."""

    account: str
    uid: str
    name: str
    profile: str | None
    stage: str
    matched: str
    """``identifier``, ``uid``, ``alias``, ``personal address``, ``external id`` or ``name``."""
    aliases: list[str]
    personal_address: str | None
    external_ids: list[str]
    purged_at: datetime | None = None
    restore: str | None = None
    """For a purged account: the command that puts it back."""


@dataclass(frozen=True)
class SearchResult:
    """The people found (at most ``limit``) and how many more there were."""

    text: str
    matches: list[Match]
    more: int


def _contains(attribute: str, word: str) -> str:
    return f"({check_attribute_name(attribute)}=*{escape_filter_value(word)}*)"


def _words(text: str) -> list[tuple[str, str]]:
    """The parts of the text's names, each with its folded form.

    Hyphens separate parts as spaces do ("Martin-Dupont" is "Martin" and "Dupont"): the
    directory may hold either spelling. Apostrophes stay inside a part (and vanish folded).
    """
    return [(word, fold_name(word)) for word in _PARTS.split(text) if word]


def search_filter(runtime: Runtime, text: str) -> str:
    """The server-side filter: an exact key, or every word in a name (values escaped)."""
    config = runtime.config
    names = config.attributes
    exact = [
        filter_eq(attribute, text)
        for attribute in (
            "mail", "uid", names.alias_login, names.personal_mail, names.recovery_mail,
            *external_id_attributes(config),
        )
    ]  # fmt: skip
    every_word = [
        filter_or(
            *(_contains(attribute, word) for attribute in ("cn", "sn", "givenName", "displayName")),
            *(_contains(attribute, folded) for attribute in ("uid", "mail") if folded),
        )
        for word, folded in _words(text)
    ]
    wanted = filter_or(*exact, filter_and(*every_word)) if every_word else filter_or(*exact)
    return filter_and(filter_present(config.directory.profile_attribute), wanted)


def _name_words(account: Account) -> set[str]:
    local = account.identifier.partition("@")[0]
    return _known_words(
        " ".join([account.given_name, account.surname, account.display_name, account.uid, local])
    )


def _matched(runtime: Runtime, account: Account, text: str) -> str | None:
    """What of the account matches the text (None: only a substring the names do not hold)."""
    config = runtime.config
    key = text.casefold()
    checks = [
        ("identifier", [account.identifier]),
        ("uid", [account.uid]),
        ("alias", account.values(config.attributes.alias_login)),
        ("personal address", account.values(config.attributes.personal_mail)),
        ("personal address", account.values(config.attributes.recovery_mail)),
        ("external id", _external_ids(runtime, account)),
    ]
    for what, values in checks:
        if any(value.casefold() == key for value in values):
            return what
    wanted = [folded for _, folded in _words(text) if folded]
    known = _name_words(account)
    if wanted and all(
        any(word == have or have.startswith(word) for have in known) for word in wanted
    ):
        return "name"
    return None


def _external_ids(runtime: Runtime, account: Account) -> list[str]:
    found: list[str] = []
    for attribute in external_id_attributes(runtime.config):
        found += account.values(attribute)
    return found


def _match(runtime: Runtime, account: Account, matched: str) -> Match:
    return Match(
        account=account.identifier,
        uid=account.uid,
        name=account.full_name,
        profile=account.profile_key,
        stage=account.stage.value,
        matched=matched,
        aliases=account.values(runtime.config.attributes.alias_login),
        personal_address=recovery_address(runtime, account)
        or account.entry.first(runtime.config.attributes.personal_mail),
        external_ids=_external_ids(runtime, account),
    )


def search_people(runtime: Runtime, text: str, *, limit: int = DEFAULT_LIMIT) -> SearchResult:
    """The people ``text`` names, exact keys first, then names in alphabetical order."""
    cleaned = check_account_key(text)
    if len(cleaned) < MIN_LENGTH:
        raise InvalidInputError(f"search needs at least {MIN_LENGTH} characters")
    found: list[Match] = []
    for account in iter_accounts(
        runtime.directory, runtime.config, search_filter(runtime, cleaned)
    ):
        matched = _matched(runtime, account, cleaned)
        if matched is not None:
            found.append(_match(runtime, account, matched))
    found += _purged_matches(runtime, cleaned)
    found.sort(key=lambda m: (m.matched == "name", m.name.casefold(), m.account))
    return SearchResult(cleaned, found[:limit], max(0, len(found) - limit))


def _purged_matches(runtime: Runtime, text: str) -> list[Match]:
    """The purged people the text names, as a living one is found.

    By identifier, uid, external id, personal address or name: the state store's purges, with
    what this host's audit log or the archive knows of each entry (``list --state purged``).
    """
    from umacct.services.helpdesk import purged_people

    config = runtime.config
    names = config.attributes
    key = text.casefold()
    wanted = [folded for _, folded in _words(text) if folded]
    found: list[Match] = []
    for purge, values in purged_people(runtime):
        external = [purge.external_id] if purge.external_id else []
        for attribute in external_id_attributes(config):
            external += [v for v in values.get(attribute.lower(), []) if v not in external]
        personal = [
            _split_address(value)
            for attribute in (names.personal_mail, names.recovery_mail)
            for value in values.get(attribute.lower(), [])
        ]
        checks = [
            ("identifier", [purge.account]),
            ("uid", [purge.uid]),
            ("external id", external),
            ("personal address", personal),
        ]
        matched = next(
            (what for what, keys in checks if any(k.casefold() == key for k in keys)), None
        )
        given = (values.get("givenname") or [""])[0]
        surname = (values.get("sn") or [""])[0]
        display = (values.get("displayname") or values.get("cn") or [""])[0]
        if matched is None and wanted:
            known = _known_words(" ".join([given, surname, display, purge.uid]))
            if all(any(have.startswith(word) for have in known) for word in wanted):
                matched = "name"
        if matched is None:
            continue
        profiles = values.get(config.directory.profile_attribute.lower(), [])
        found.append(
            Match(
                account=purge.account,
                uid=purge.uid,
                name=display or f"{given} {surname}".strip() or purge.uid,
                profile=profiles[0] if profiles else None,
                stage="purged",
                matched=matched,
                aliases=[],
                personal_address=personal[0] if personal else None,
                external_ids=external,
                purged_at=purge.purged_at,
                restore=f"umacct restore {purge.account} --reason TEXT",
            )
        )
    return found


def _split_address(value: str) -> str:
    """``{SECOURS}x@example.org`` is ``x@example.org``."""
    if value.startswith("{") and "}" in value:
        return value.partition("}")[2]
    return value


def _known_words(text: str) -> set[str]:
    """The folded words of names (parts of compound names too, digits of a uid dropped)."""
    folded = fold_name(text.replace(".", " "))
    return set(folded.split("-")) | {folded} | {p for p in re.split(r"[-\d]+", folded) if p}


def homonyms(runtime: Runtime, given_name: str, surname: str, *, besides: str) -> list[str]:
    """The other accounts of people with the same names (folded), ``besides`` left out.

    For the intake's warning: a second account for the same names may be a homonym, or the
    same person the tool could not recognise (another personal address, no external id).
    """
    from umacct.identifiers import local_part, same_names

    config = runtime.config
    try:
        base = local_part(given_name, surname)
    except InvalidInputError:
        return []
    wanted = filter_or(
        filter_prefix("uid", base),
        filter_and(filter_eq("sn", surname), filter_eq("givenName", given_name)),
    )
    search = filter_and(filter_present(config.directory.profile_attribute), wanted)
    return sorted(
        account.identifier
        for account in iter_accounts(runtime.directory, config, search)
        if account.identifier.lower() != besides.lower()
        and same_names(account.given_name, account.surname, given_name, surname)
    )


def account_key(runtime: Runtime, key: str) -> str:
    """The identifier of the account ``key`` names: address, uid, login alias or external id.

    For lists HR hands over, which name people by their HR or student-system id.
    NotFoundError when none matches; InvalidInputError (with the candidates) when several do.
    """
    from umacct.errors import NotFoundError
    from umacct.services.accounts import find_account

    config = runtime.config
    try:
        return find_account(runtime.directory, config, key).identifier
    except NotFoundError:
        pass
    cleaned = check_account_key(key)
    search = filter_and(
        filter_present(config.directory.profile_attribute),
        filter_or(*(filter_eq(name, cleaned) for name in external_id_attributes(config))),
    )
    found = sorted(a.identifier for a in iter_accounts(runtime.directory, config, search))
    if not found:
        raise NotFoundError(
            f"no account {cleaned!r} (searched address, uid, login alias and external id)"
        )
    if len(found) > 1:
        raise InvalidInputError(
            f"{cleaned!r} is ambiguous: it names {len(found)} accounts ({', '.join(found)})"
        )
    return found[0]
