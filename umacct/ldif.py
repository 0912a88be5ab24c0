"""LDIF (RFC 2849) for entries: written for slapadd, the LDAP tools and purge archives; read back to restore."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from umacct.errors import InvalidInputError

# RFC 2849 SAFE-STRING: ASCII without NUL, LF, CR; not starting with space, colon or "<".
_SAFE_STRING = re.compile(r"^(?![ :<])[\x01-\x09\x0b\x0c\x0e-\x7f]*$")
_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9;.-]*)(::?)\s?(.*)$")


@dataclass
class LdifEntry:
    """One directory entry: its DN and its attributes, each with its list of values."""

    dn: str
    attributes: dict[str, list[str]] = field(default_factory=dict)

    def first(self, name: str) -> str | None:
        """The first value of an attribute, or None when the entry does not have it."""
        values = self.attributes.get(name)
        return values[0] if values else None


def ldif_line(name: str, value: str) -> str:
    """One ``name: value`` line, base64-encoded (``name:: ...``) when RFC 2849 requires it."""
    if _SAFE_STRING.match(value) and not value.endswith(" "):
        return f"{name}: {value}"
    return f"{name}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"


def entry_to_ldif(entry: LdifEntry) -> str:
    """The LDIF record of an entry, ending with the blank line that separates records."""
    lines = [ldif_line("dn", entry.dn)]
    for name, values in entry.attributes.items():
        lines.extend(ldif_line(name, value) for value in values)
    return "\n".join(lines) + "\n\n"


def entries_to_ldif(entries: Iterable[LdifEntry]) -> str:
    """The LDIF text of several entries."""
    return "".join(entry_to_ldif(entry) for entry in entries)


def parse_ldif(text: str) -> Iterator[LdifEntry]:
    """Read entry records back (content records only: no changetype, no URLs)."""
    for number, record in enumerate(_records(text), start=1):
        entry: LdifEntry | None = None
        for line in record:
            match = _LINE.match(line)
            if not match:
                raise InvalidInputError(f"LDIF record {number}: cannot read line {line[:60]!r}")
            name, separator, raw = match.groups()
            value = _decode(raw, number) if separator == "::" else raw
            if entry is None:
                if name.lower() != "dn":
                    raise InvalidInputError(f"LDIF record {number}: does not start with dn:")
                entry = LdifEntry(value)
            else:
                entry.attributes.setdefault(name, []).append(value)
        if entry is not None:
            yield entry


def _decode(raw: str, number: int) -> str:
    try:
        return base64.b64decode(raw.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidInputError(f"LDIF record {number}: bad base64 value") from None


def _records(text: str) -> Iterator[list[str]]:
    record: list[str] = []
    for line in text.splitlines():
        if line.startswith(" ") and record:
            record[-1] += line[1:]  # a folded line continues the previous one
        elif not line.strip():
            if record:
                yield record
            record = []
        elif not line.startswith("#") and not line.lower().startswith("version:"):
            record.append(line)
    if record:
        yield record
