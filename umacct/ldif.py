r"""LDIF (RFC 2849) for entries: written for slapadd, the LDAP tools and purge archives; read back to restore.

Exact by construction (security 28): a value is written as is only when it is printable
ASCII (0x20-0x7E) not starting with a space, ``:`` or ``<`` and not ending with a space;
every other value is base64. The reader splits lines only on LF (CRLF accepted), never on
the other characters ``str.splitlines`` breaks on (``\x0b \x0c \x1c-\x1e \x85 \u2028
\u2029``), so no value can add an attribute or a record.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from umacct.errors import InvalidInputError

# Written as is: printable ASCII, not starting with space, ":" or "<", not ending with space.
_PLAIN = re.compile(r"[\x21-\x39\x3b\x3d-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?")
# Read as is (RFC 2849 SAFE-STRING, for archives other writers made): ASCII without NUL, LF,
# CR, not starting with space, ":" or "<".
_SAFE_STRING = re.compile(
    r"(?:[\x01-\x09\x0b\x0c\x0e-\x1f\x21-\x39\x3b\x3d-\x7f][\x01-\x09\x0b\x0c\x0e-\x7f]*)?"
)
# An attribute description: a name or a numeric OID, then options (RFC 4512, section 2.5).
_DESCRIPTION = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)*)(?:;[A-Za-z0-9-]+)*")
_REFUSED_NAMES = {"changetype", "control"}


@dataclass
class LdifEntry:
    """One directory entry: its DN and its attributes, each with its list of values."""

    dn: str
    attributes: dict[str, list[str]] = field(default_factory=dict)
    binary: dict[str, list[bytes]] = field(default_factory=dict)
    """Values that are not UTF-8 (photos, certificates), by attribute name."""

    def first(self, name: str) -> str | None:
        """The first value of an attribute, or None when the entry does not have it."""
        values = self.attributes.get(name)
        return values[0] if values else None


def ldif_line(name: str, value: str | bytes) -> str:
    """One ``name: value`` line, base64-encoded (``name:: ...``) unless plain printable ASCII."""
    if not _DESCRIPTION.fullmatch(name):
        raise InvalidInputError(f"cannot write the attribute name {name!r} in LDIF")
    if isinstance(value, str):
        if _PLAIN.fullmatch(value):
            return f"{name}: {value}"
        if not value:
            return f"{name}:"
        try:
            value = value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError(f"a value of {name} is not valid Unicode") from None
    return f"{name}:: {base64.b64encode(value).decode('ascii')}"


def entry_to_ldif(entry: LdifEntry) -> str:
    """The LDIF record of an entry, ending with the blank line that separates records."""
    lines = [ldif_line("dn", entry.dn)]
    for name, values in entry.attributes.items():
        lines.extend(ldif_line(name, value) for value in values)
    for name, raw_values in entry.binary.items():
        lines.extend(ldif_line(name, value) for value in raw_values)
    return "\n".join(lines) + "\n\n"


def entries_to_ldif(entries: Iterable[LdifEntry]) -> str:
    """The LDIF text of several entries."""
    return "".join(entry_to_ldif(entry) for entry in entries)


def parse_ldif(text: str) -> Iterator[LdifEntry]:
    """Read entry records back (content records only: no changetype, no URLs)."""
    for number, record in enumerate(_records(text), start=1):
        dn_name, dn_value = _split(record[0], number)
        if dn_name.lower() != "dn" or not isinstance(dn_value, str):
            raise InvalidInputError(f"LDIF record {number}: does not start with a dn: line")
        entry = LdifEntry(dn_value)
        for line in record[1:]:
            name, value = _split(line, number)
            if name.lower() == "dn" or name.lower() in _REFUSED_NAMES:
                raise InvalidInputError(f"LDIF record {number}: unexpected {name}: line")
            if isinstance(value, str):
                entry.attributes.setdefault(name, []).append(value)
            else:
                entry.binary.setdefault(name, []).append(value)
        yield entry


def _split(line: str, number: int) -> tuple[str, str | bytes]:
    """A logical line's attribute description and its value (bytes when not UTF-8)."""
    name, colon, rest = line.partition(":")
    if not colon or not _DESCRIPTION.fullmatch(name):
        raise InvalidInputError(f"LDIF record {number}: cannot read line {line[:60]!r}")
    if rest.startswith(":"):
        return name, _decode(rest[1:].lstrip(" "), number)
    value = rest.lstrip(" ")
    if rest.startswith("<") or value.startswith("<"):
        raise InvalidInputError(f"LDIF record {number}: URL values are not read")
    if not _SAFE_STRING.fullmatch(value):
        raise InvalidInputError(f"LDIF record {number}: {name} holds a value that must be base64")
    return name, value


def _decode(raw: str, number: int) -> str | bytes:
    try:
        data = base64.b64decode(raw.rstrip(" "), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"LDIF record {number}: bad base64 value") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _records(text: str) -> Iterator[list[str]]:
    """Records as lists of logical lines: folded lines joined, comments and version dropped.

    Lines end at LF (a CR before it is dropped) and nowhere else.
    """
    record: list[str] = []
    in_comment = False
    for number, raw in enumerate(text.split("\n")):
        line = raw.removesuffix("\r")
        if line.startswith(" ") and (record or in_comment):
            if not in_comment:
                record[-1] += line[1:]  # a folded line continues the previous one
        elif not line:
            if record:
                yield record
            record, in_comment = [], False
        elif line.startswith("#"):
            in_comment = True
        elif number == 0 and line.lower().startswith("version:"):
            if line[len("version:") :].strip() != "1":
                raise InvalidInputError(f"LDIF: unsupported {line[:40]!r}")
        else:
            record.append(line)
            in_comment = False
    if record:
        yield record
