"""The staff part of the account page ("pour les personnels"): directory data and antispam.

Shown only to an account whose profile has ``staff = true`` (the rule of ``umacct directory``
and ``umacct antispam``, which refuse any other with exit 77). The forms call the same
services: ``set_directory_data`` for the attributes of ``[staff] editable_attributes``, and
``antispam`` for the levels of ``[antispam]`` (no table: the page says the level is not
offered here). Every value is checked against the server's schema before anything is written,
each refusal is shown on its own field, and one bad value changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from umacct.errors import InvalidInputError
from umacct.services.accounts import Account, find_account, profile_of
from umacct.services.runtime import Runtime
from umacct.services.staff import (
    antispam,
    parse_assignments,
    require_staff,
    set_directory_data,
    show_directory_data,
)
from umacct.web.i18n import Translate, value_reason

FIELD_PREFIX = "dir."
MAX_VALUES = 10
"""Values read per attribute from a form (the page shows one field per value held)."""
POSTAL_ATTRIBUTES = frozenset({"postaladdress", "homepostaladdress", "registeredaddress"})
"""Attributes of the Postal Address syntax: lines separated by ``$``, shown as lines."""


@dataclass(frozen=True)
class DirectoryField:
    """One editable attribute: its values, one field each (one empty field when none)."""

    attribute: str
    values: list[str]
    postal: bool
    typed: bool = False
    """The values are as a refused form held them (shown as typed)."""

    def field_id(self, index: int) -> str:
        """The HTML id of the field of the value at ``index`` (errors are keyed by it)."""
        return field_id(self.attribute, index)

    @property
    def shown(self) -> list[str]:
        """The values as the fields show them (postal addresses one line per line)."""
        values = self.values or [""]
        if self.typed:
            return values
        return [_lines(value) if self.postal else value for value in values]


@dataclass(frozen=True)
class AntispamView:
    """The antispam level: the configured levels and the one the mailbox has."""

    levels: list[str]
    level: str | None
    value: str | None


@dataclass(frozen=True)
class StaffView:
    """What the staff part shows; ``antispam`` is None when ``[antispam]`` is not configured."""

    fields: list[DirectoryField]
    antispam: AntispamView | None


@dataclass(frozen=True)
class StaffAnswer:
    """What a staff form did: a notice, or errors by field id (and the values typed)."""

    notice: str | None = None
    errors: dict[str, str] | None = None
    typed: dict[str, list[str]] | None = None


def field_id(attribute: str, index: int) -> str:
    """The HTML id of one value's field."""
    return f"dir-{attribute}-{index}"


def _lines(value: str) -> str:
    return "\n".join(line.strip() for line in value.split("$"))


def is_staff(runtime: Runtime, account: Account) -> bool:
    """Whether the account's profile is a staff profile (what ``require_staff`` checks)."""
    return profile_of(account, runtime.config).staff


def staff_view(runtime: Runtime, account: Account) -> StaffView | None:
    """The staff part of the account page, or None for an account that is not staff."""
    if not is_staff(runtime, account):
        return None
    data = show_directory_data(runtime, account.identifier)
    fields = [
        DirectoryField(name, values, name.lower() in POSTAL_ATTRIBUTES)
        for name, values in data.attributes.items()
    ]
    level = None
    if runtime.config.antispam is not None and runtime.config.antispam.levels:
        current = antispam(runtime, account.identifier)
        level = AntispamView(current.levels, current.level, current.value)
    return StaffView(fields, level)


def with_typed(view: StaffView, typed: dict[str, list[str]]) -> StaffView:
    """The view showing the values a refused form held, so the person can correct them."""
    fields = [
        replace(item, values=typed[item.attribute], typed=True) if item.attribute in typed else item
        for item in view.fields
    ]
    return replace(view, fields=fields)


# --- the directory data form ----------------------------------------------------------------


def typed_values(runtime: Runtime, fields: dict[str, list[str]]) -> dict[str, list[str]]:
    """The values posted for each editable attribute (an attribute not posted: left alone)."""
    typed: dict[str, list[str]] = {}
    for name in runtime.config.staff.editable_attributes:
        values = fields.get(FIELD_PREFIX + name)
        if values:
            typed[name] = values[:MAX_VALUES]
    return typed


def _value_of(name: str, text: str) -> str:
    """A field's value as the directory holds it (a postal address's lines joined by ``$``)."""
    if name.lower() in POSTAL_ATTRIBUTES:
        return " $ ".join(line.strip() for line in text.splitlines() if line.strip())
    return text.strip()


def save_directory_data(
    runtime: Runtime, identifier: str, typed: dict[str, list[str]], t: Translate, lang: str
) -> StaffAnswer:
    """Check every posted value on its field, then write them all in one modify (audited)."""
    require_staff(runtime, find_account(runtime.directory, runtime.config, identifier))
    pairs: list[str] = []
    errors: dict[str, str] = {}
    first_field = None
    for name, texts in typed.items():
        kept: list[str] = []
        for index, text in enumerate(texts):
            value = _value_of(name, text)
            first_field = first_field or field_id(name, index)
            if not value or value in kept:
                continue
            try:
                parse_assignments(runtime, [f"{name}={value}"])
            except InvalidInputError as error:
                errors[field_id(name, index)] = value_reason(error.message, lang)
                continue
            kept.append(value)
        pairs.extend([f"{name}={value}" for value in kept] or [f"{name}="])
    if errors:
        return StaffAnswer(errors=errors, typed=typed)
    if not pairs or first_field is None:
        return StaffAnswer(notice=t("directory_unchanged"))
    try:
        data = set_directory_data(runtime, identifier, pairs)
    except InvalidInputError as error:  # the server's own syntax refused a value
        reason = t("directory_refused", reason=value_reason(error.message, lang))
        return StaffAnswer(errors={first_field: reason}, typed=typed)
    if not data.changed:
        return StaffAnswer(notice=t("directory_unchanged"))
    names = ", ".join(attribute_label(t, name) for name in data.changed)
    return StaffAnswer(notice=t("directory_saved", names=names))


# --- the antispam form ----------------------------------------------------------------------


def save_antispam(runtime: Runtime, identifier: str, level: str, t: Translate) -> StaffAnswer:
    """Set the antispam level to one of the configured levels (audited)."""
    require_staff(runtime, find_account(runtime.directory, runtime.config, identifier))
    settings = runtime.config.antispam
    if not level:
        return StaffAnswer(errors={"level": t("antispam_choose")})
    if settings is None or level not in settings.levels:
        return StaffAnswer(errors={"level": t("antispam_unknown")})
    result = antispam(runtime, identifier, level)
    key = "antispam_saved" if result.changed else "antispam_unchanged"
    return StaffAnswer(notice=t(key, level=level_label(t, level)))


# --- words ----------------------------------------------------------------------------------


def _known(t: Translate, key: str, fallback: str) -> str:
    text = t(key)
    return fallback if text == key else text


def attribute_label(t: Translate, attribute: str) -> str:
    """The attribute's name for people (the attribute itself when the pages know no word)."""
    return _known(t, f"attr.{attribute}", attribute)


def attribute_hint(t: Translate, attribute: str) -> str | None:
    """A hint for the attribute's field, if the pages have one."""
    text = _known(t, f"hint.{attribute}", "")
    return text or None


def level_label(t: Translate, level: str) -> str:
    """A level's name for people (the configured name when the pages know no word)."""
    return _known(t, f"level.{level}", level)
