"""The state branch: its units, the entries that hold records, and how records are named.

Every record is an entry of the core schema's ``applicationProcess`` class: its ``cn`` holds
the entry's name (a SHA-256 in hex, or a job name) and the keys it is searched by (the
account, a purged uid...), its ``description`` the record as one JSON value (and, for a
token, its state: ``pending``, ``used <instant>`` or ``cancelled <instant>``). No site
has to load a schema; slapd's own ``cn`` index serves the searches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from umacct.directory.escape import dn_join, parse_dn

TOKENS, NOTICES, PURGED, SAVED, LOCKS = "tokens", "notices", "purged", "saved", "locks"
EXTENSIONS, COUNTERS = "extensions", "counters"
RECORD_UNITS = (TOKENS, NOTICES, PURGED, SAVED, LOCKS, EXTENSIONS)
"""The units of records the tool keeps (what ``dump`` compares)."""
UNITS = (*RECORD_UNITS, COUNTERS)
"""Every unit ``state init`` makes: the records, and the web pages' hit counters."""
RECORD_CLASS = "applicationProcess"
UNIT_CLASS = "organizationalUnit"
RECORD_ATTRIBUTES = ("cn", "description")

Attributes = dict[str, list[str]]
BRANCH_DESCRIPTION = "State of the umacct tool: readable and writable by its DN only"
"""The ``description`` of the branch's own entry (how ``doctor`` recognises a branch)."""


def record_key(*parts: str) -> str:
    """The name of a record's entry: the SHA-256 (hex) of its key parts, NUL-separated.

    A hash keeps identifiers, notice keys and job payloads out of DNs (no escaping to get
    wrong, no length limit) and never holds a token: a token's entry is named by the token's
    hash, which is already what the store keeps.
    """
    joined = "\x00".join(parts).encode("utf-8", "surrogatepass")
    return hashlib.sha256(joined).hexdigest()


def unit_dn(state_dn: str, unit: str) -> str:
    """The DN of one unit of the branch, e.g. ``ou=tokens,<state_dn>``."""
    return dn_join("ou", unit, state_dn)


def record_dn(state_dn: str, unit: str, name: str) -> str:
    """The DN of a record: ``cn=<name>,ou=<unit>,<state_dn>``."""
    return dn_join("cn", name, unit_dn(state_dn, unit))


def branch_entries(state_dn: str) -> list[tuple[str, Attributes]]:
    """The entries of an empty branch: the branch itself (``ou=...``) and its units."""
    first = parse_dn(state_dn)[0]
    if len(first) != 1 or first[0][0].lower() != "ou":
        raise ValueError(f"the state branch {state_dn!r} must be named ou=...")
    root: tuple[str, Attributes] = (
        state_dn,
        {"objectClass": [UNIT_CLASS], "ou": [first[0][1]],
         "description": [BRANCH_DESCRIPTION]},
    )  # fmt: skip
    units = [
        (unit_dn(state_dn, unit), {"objectClass": [UNIT_CLASS], "ou": [unit]}) for unit in UNITS
    ]
    return [root, *units]


def _as_compared(value: str) -> str:
    """A ``cn`` value as slapd compares it: case and runs of spaces do not count."""
    return " ".join(value.split()).lower()


def search_keys(name: str, keys: Sequence[str | None]) -> list[str]:
    """The ``cn`` values of a record: its name, then each key once (compared as slapd does).

    A key slapd would take for one already given (``"a  b"`` after ``"A b"``) or blank is
    left out: the search for it finds the entry by the other, the store then checks exactly.
    """
    values = [name]
    seen = {_as_compared(name)}
    for key in keys:
        if key and _as_compared(key) and _as_compared(key) not in seen:
            seen.add(_as_compared(key))
            values.append(key)
    return values


def record_attributes(name: str, keys: Sequence[str | None], *descriptions: str) -> Attributes:
    """The attributes of a new record entry."""
    return {
        "objectClass": [RECORD_CLASS],
        "cn": search_keys(name, keys),
        "description": list(descriptions),
    }


def encode(record: Mapping[str, Any]) -> str:
    """One record as the JSON text of its ``description`` value (keys sorted: stable)."""
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def decode(values: Sequence[str]) -> dict[str, Any] | None:
    """The JSON record among ``description`` values, or None when none parses as an object."""
    for value in values:
        if value.startswith("{"):
            try:
                parsed = json.loads(value)
            except ValueError:
                return None
            return parsed if isinstance(parsed, dict) else None
    return None
