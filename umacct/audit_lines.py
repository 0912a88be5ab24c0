"""An audit record's line: the JSON text json's encoder gives, written by orjson where it is the same.

The log's lines are what ``json.dumps(document, separators=(",", ":"), default=str)`` writes:
plain ASCII (``ensure_ascii``), dates and paths as their text. orjson (its encoding alone is
about ten times json's speed; a bulk intake writes a record per account) writes a record's
fields and changes, which are texts (``AuditLog`` and ``AuditRecord.from_json`` make them so),
as json does but for the characters past ASCII and DEL, escaped afterwards as json escapes
them. Details other than texts, integers, booleans and None (a float, a path, a list) are
written by json, and orjson embeds that text; a lone surrogate, which orjson refuses, makes
the whole line json's.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Mapping

import orjson

RECORD_ENCODER = json.JSONEncoder(separators=(",", ":"), default=str)
"""What ``json.dumps(document, separators=(",", ":"), default=str)`` builds at every call."""
_SAME_IN_ORJSON = frozenset({str, int, bool, type(None)})
"""Types whose values orjson writes as json does (but for non-ASCII and DEL in texts)."""

Document = Callable[[object, object], dict[str, object]]
"""A record's document, given its changes and details as they are to be written."""


def record_line(
    document: Document,
    changes: Mapping[str, Mapping[str, list[str]]],
    details: Mapping[str, object],
) -> bytes:
    """The line of JSON (ASCII, no newline) of ``document(changes, details)``."""
    written: object = dict(details)
    if not all(type(value) in _SAME_IN_ORJSON for value in details.values()):
        written = orjson.Fragment(RECORD_ENCODER.encode(written))
    try:
        # dict(): orjson's own copy of a read-only mapping is its slow path (``default``).
        line = orjson.dumps(document(dict(changes), written), default=_as_dict)
    except orjson.JSONEncodeError:  # a lone surrogate, an integer beyond 64 bits
        pass
    else:
        # Only a string holds a character past ASCII, or DEL: escaped as json escapes them.
        if not line.isascii():
            line = line.decode("utf-8").encode("ascii", _JSON_ESCAPES)
        return line.replace(b"\x7f", b"\\u007f") if b"\x7f" in line else line
    plain = {name: dict(change) for name, change in changes.items()}
    return RECORD_ENCODER.encode(document(plain, dict(details))).encode("ascii")


def _json_escapes(error: UnicodeError) -> tuple[str, int]:
    r"""The ``\uXXXX`` escapes json's ``ensure_ascii`` writes for the characters of ``error``.

    A character past U+FFFF is written as its UTF-16 surrogate pair, as json does.
    """
    if not isinstance(error, UnicodeEncodeError):
        raise error
    escapes = []
    for character in error.object[error.start : error.end]:
        code = ord(character)
        if code > 0xFFFF:
            code -= 0x10000
            escapes.append(f"\\u{0xD800 | code >> 10:04x}\\u{0xDC00 | code & 0x3FF:04x}")
        else:
            escapes.append(f"\\u{code:04x}")
    return "".join(escapes), error.end


_JSON_ESCAPES = "umacct.json-escapes"
codecs.register_error(_JSON_ESCAPES, _json_escapes)


def _as_dict(value: object) -> dict[object, object]:
    """The ``default`` of orjson: a record's read-only mappings as dicts, anything else refused."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(type(value).__name__)
