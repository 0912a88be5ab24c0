"""Escaping of values put in LDAP search filters (RFC 4515) and DNs (RFC 4514), and filter builders.

Every value that reaches a filter or a DN goes through this module (security requirement 16).
It does not rely on ldap3's helpers, which mishandle spaces, NUL and empty strings. The
filter builders also validate attribute names, so that neither a value nor a name can change
the structure of a filter.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

_KEYSTRING = r"[A-Za-z][A-Za-z0-9-]*"
_NUMERIC_OID = r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))+"
_ATTRIBUTE_TYPE = re.compile(rf"{_KEYSTRING}|{_NUMERIC_OID}")
_ATTRIBUTE_DESCRIPTION = re.compile(rf"(?:{_KEYSTRING}|{_NUMERIC_OID})(?:;[A-Za-z0-9-]+)*")

_FILTER_SPECIALS = frozenset("\\*()\x00")
_DN_SPECIALS = frozenset('\\,+"<>;=#')
_DN_HEXPAIR_OR_SPECIAL = re.compile(r'[0-9A-Fa-f]{2}|[ "#+,;<=>\\]')
_PARENTHESIS = re.compile(r"[()]")
# Characters that may not appear unescaped in a DN value (RFC 4514, stringchar).
_DN_FORBIDDEN_UNESCAPED = frozenset('\x00"+,;<>\\')
_SURROGATE_ESCAPES = range(0xDC80, 0xDD00)


def _kept_in_filter(value: str) -> bool:
    """Whether ``escape_filter_value`` would give ``value`` back as it is, tested at C speed.

    ``str.isprintable`` is false for every character of the categories C* (controls, format,
    surrogates, private use, unassigned), Zl and Zp, which are the ones ``_is_unprintable``
    escapes; then no special character, and no white space at either end.
    """
    return (
        value.isprintable()
        and _FILTER_SPECIALS.isdisjoint(value)
        and not value[:1].isspace()
        and not value[-1:].isspace()
    )


def _kept_in_dn(value: str) -> bool:
    """Whether ``escape_dn_value`` would give the non-empty ``value`` back as it is."""
    return (
        value.isprintable()
        and _DN_SPECIALS.isdisjoint(value)
        and value[0] not in " #"
        and value[-1] != " "
    )


def _hex_escape(data: bytes) -> str:
    return "".join(f"\\{byte:02x}" for byte in data)


def _is_unprintable(char: str) -> bool:
    """Control, format, unassigned, private-use characters and line/paragraph separators."""
    return unicodedata.category(char)[0] == "C" or unicodedata.category(char) in ("Zl", "Zp")


def escape_filter_value(value: str | bytes) -> str:
    r"""Escape an assertion value for an LDAP search filter (RFC 4515).

    ``\ * ( )`` and NUL become ``\XX``, as do unprintable characters and bytes that are not
    valid UTF-8 (``bytes`` input). Leading and trailing white space is escaped too because
    ldap3 strips it from around a value. An empty value is allowed (it is valid LDAP).
    A ``str`` holding a lone surrogate raises ``ValueError``.
    """
    if isinstance(value, str) and _kept_in_filter(value):
        return value  # nothing to escape (names, addresses, states): the common case
    return _escaped_filter_value(value)


def _escaped_filter_value(value: str | bytes) -> str:
    """``escape_filter_value`` character by character (the fast path gives the same)."""
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    text = raw.decode("utf-8", errors="surrogateescape")
    out: list[str] = []
    last = len(text) - 1
    for index, char in enumerate(text):
        if ord(char) in _SURROGATE_ESCAPES:
            out.append(f"\\{ord(char) - 0xDC00:02x}")
        elif (
            char in _FILTER_SPECIALS
            or _is_unprintable(char)
            or (char.isspace() and index in (0, last))
        ):
            out.append(_hex_escape(char.encode("utf-8")))
        else:
            out.append(char)
    return "".join(out)


def escape_dn_value(value: str) -> str:
    r"""Escape an attribute value for a DN (RFC 4514).

    ``\ , + " < > ; = #`` are escaped with a backslash (``#`` everywhere, as ldap3's DN parser
    wants), as are a leading and a trailing space; NUL and unprintable characters become ``\XX``. An empty value raises
    ``ValueError``: the tool never names an entry with an empty value. So does a lone surrogate.
    """
    if not value:
        raise ValueError("a DN value cannot be empty")
    if _kept_in_dn(value):
        return value  # printable, so no lone surrogate either: nothing to escape
    return _escaped_dn_value(value)


def _escaped_dn_value(value: str) -> str:
    """``escape_dn_value`` of a non-empty value character by character (as the fast path)."""
    value.encode("utf-8")  # raises UnicodeEncodeError (a ValueError) on lone surrogates
    out: list[str] = []
    last = len(value) - 1
    for index, char in enumerate(value):
        if char in _DN_SPECIALS:
            out.append("\\" + char)
        elif _is_unprintable(char):
            out.append(_hex_escape(char.encode("utf-8")))
        elif (index == 0 and char in " #") or (index == last and char == " "):
            out.append("\\" + char)
        else:
            out.append(char)
    return "".join(out)


def check_attribute_name(name: str, *, options: bool = True) -> str:
    """Return ``name`` if it is an attribute type (descriptor or numeric OID), else raise ValueError.

    With ``options`` (the default) attribute options such as ``;binary`` or ``;lang-fr`` are allowed.
    """
    if type(name) is str and (name, options) in _CHECKED_NAMES:
        return name
    pattern = _ATTRIBUTE_DESCRIPTION if options else _ATTRIBUTE_TYPE
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise ValueError(f"not an LDAP attribute name: {name!r}")
    if type(name) is str and len(_CHECKED_NAMES) < _CHECKED_NAMES_KEPT:
        _CHECKED_NAMES.add((name, options))
    return name


_CHECKED_NAMES: set[tuple[str, bool]] = set()
"""Names found valid (with ``options`` or not): a sweep builds a filter per account."""
_CHECKED_NAMES_KEPT = 1024


# --- filters ------------------------------------------------------------------------------


def _comparison(attribute: str, operator: str, value: str | bytes) -> str:
    return f"({check_attribute_name(attribute)}{operator}{escape_filter_value(value)})"


def filter_eq(attribute: str, value: str | bytes) -> str:
    """``(attribute=value)`` with the value escaped."""
    return _comparison(attribute, "=", value)


def filter_ge(attribute: str, value: str | bytes) -> str:
    """``(attribute>=value)`` with the value escaped (the attribute needs an ORDERING rule)."""
    return _comparison(attribute, ">=", value)


def filter_le(attribute: str, value: str | bytes) -> str:
    """``(attribute<=value)`` with the value escaped (the attribute needs an ORDERING rule)."""
    return _comparison(attribute, "<=", value)


def filter_prefix(attribute: str, prefix: str) -> str:
    """``(attribute=prefix*)``: values starting with ``prefix`` (escaped; needs a SUBSTR rule)."""
    if not prefix:
        raise ValueError("an empty prefix would match every value: use filter_present")
    return f"({check_attribute_name(attribute)}={escape_filter_value(prefix)}*)"


def filter_present(attribute: str) -> str:
    """``(attribute=*)``: the entry has at least one value of the attribute."""
    return f"({check_attribute_name(attribute)}=*)"


def _check_filter(part: str) -> str:
    """Refuse a part that is not one parenthesised, balanced filter."""
    depth = 0
    for parenthesis in _PARENTHESIS.finditer(part):  # the other characters cannot matter
        depth += 1 if parenthesis.group() == "(" else -1
        if depth < 0 or (depth == 0 and parenthesis.end() != len(part)):
            break
    else:
        if part.startswith("(") and depth == 0:
            return part
    raise ValueError(f"not a parenthesised filter: {part!r}")


def _combine(operator: str, parts: tuple[str, ...]) -> str:
    if not parts:
        raise ValueError(f"'{operator}' needs at least one filter")
    checked = [_check_filter(part) for part in parts]
    if len(checked) == 1:
        return checked[0]
    return f"({operator}{''.join(checked)})"


def filter_and(*parts: str) -> str:
    """``(&part1part2...)``; a single part is returned unchanged. Parts must be built here."""
    return _combine("&", parts)


def filter_or(*parts: str) -> str:
    """``(|part1part2...)``; a single part is returned unchanged. Parts must be built here."""
    return _combine("|", parts)


def filter_not(part: str) -> str:
    """``(!part)``."""
    return f"(!{_check_filter(part)})"


class AnyEqual:
    """``(|(attribute=value)...)`` kept as its tests rather than as text (a bulk look-up's).

    ``Directory.search`` encodes it straight to BER: an intake's look-ups test thousands of
    values, and escaping each into a filter string that the encoder then parses back cost
    more than the searches. ``str()`` is the same filter as text (``filter_or`` of
    ``filter_eq``), and the same BER once encoded. The names are checked here, and the
    values must be text (``filter_eq`` also takes bytes; these are encoded as UTF-8).
    """

    __slots__ = ("tests",)

    def __init__(self, tests: Iterable[tuple[str, str]]) -> None:
        self.tests = tuple(tests)
        if not self.tests:
            raise ValueError("'|' needs at least one filter")
        for name, value in self.tests:
            check_attribute_name(name)
            if type(value) is not str:
                raise TypeError(f"a value of {name} is {type(value).__name__}, not text")

    def __str__(self) -> str:
        return filter_or(*(filter_eq(name, value) for name, value in self.tests))

    def __repr__(self) -> str:
        return f"AnyEqual({str(self)!r})"


# --- DNs ----------------------------------------------------------------------------------

Rdn = tuple[tuple[str, str], ...]
"""One relative DN: its (attribute, value) pairs, usually a single one."""


def dn_join(rdn_attribute: str, value: str, parent: str) -> str:
    """The DN ``rdn_attribute=value,parent`` with the value escaped; the parent must parse."""
    check_attribute_name(rdn_attribute, options=False)
    _parsed_parent(parent)
    return f"{rdn_attribute}={escape_dn_value(value)},{parent}"


@functools.lru_cache(maxsize=64)
def _parsed_parent(parent: str) -> tuple[Rdn, ...]:
    """``parse_dn(parent)``, once per parent: a bulk intake names thousands under one branch.

    A parent that does not parse raises each time (an exception is never cached).
    """
    return parse_dn(parent)


def rdn_value(dn: str) -> str:
    """The value of the first RDN of ``dn`` (``uid=jdoe,ou=people,...`` -> ``jdoe``), unescaped."""
    first = parse_dn(dn)[0]
    if len(first) != 1:
        raise ValueError(f"the first RDN of {dn!r} has several values")
    return first[0][1]


def parse_dn(dn: str) -> tuple[Rdn, ...]:
    """Split a DN into RDNs of (attribute, unescaped value) pairs (RFC 4514).

    Unescaped spaces around separators are tolerated; ``#`` (BER-encoded) values are not
    supported. Raises ``ValueError`` on anything malformed, including an empty DN.
    """
    parser = _DnParser(dn)
    return parser.parse()


class _DnParser:
    """A small recursive-descent parser of RFC 4514 DN strings."""

    def __init__(self, dn: str) -> None:
        self.dn = dn
        self.pos = 0

    def fail(self, why: str) -> ValueError:
        return ValueError(f"malformed DN {self.dn!r} at position {self.pos}: {why}")

    def skip_spaces(self) -> None:
        while self.pos < len(self.dn) and self.dn[self.pos] == " ":
            self.pos += 1

    def parse(self) -> tuple[Rdn, ...]:
        if not self.dn.strip():
            raise ValueError("a DN cannot be empty")
        rdns: list[Rdn] = []
        pairs: list[tuple[str, str]] = []
        while True:
            pairs.append(self.attribute_value_pair())
            if self.pos == len(self.dn):
                rdns.append(tuple(pairs))
                return tuple(rdns)
            separator = self.dn[self.pos]
            self.pos += 1
            if separator == ",":
                rdns.append(tuple(pairs))
                pairs = []

    def attribute_value_pair(self) -> tuple[str, str]:
        self.skip_spaces()
        start = self.pos
        while self.pos < len(self.dn) and self.dn[self.pos] not in "= ,+":
            self.pos += 1
        attribute = self.dn[start : self.pos]
        if not _ATTRIBUTE_TYPE.fullmatch(attribute):
            raise self.fail(f"bad attribute type {attribute!r}")
        self.skip_spaces()
        if self.pos == len(self.dn) or self.dn[self.pos] != "=":
            raise self.fail("expected '='")
        self.pos += 1
        self.skip_spaces()
        return attribute, self.value()

    def value(self) -> str:
        if self.pos < len(self.dn) and self.dn[self.pos] == "#":
            raise self.fail("BER-encoded (#) values are not supported")
        raw = bytearray()
        kept = 0  # length of raw up to the last escaped byte or non-space character
        while self.pos < len(self.dn) and self.dn[self.pos] not in ",+":
            char = self.dn[self.pos]
            if char == "\\":
                match = _DN_HEXPAIR_OR_SPECIAL.match(self.dn, self.pos + 1)
                if not match:
                    raise self.fail("bad escape")
                token = match.group()
                raw += bytes.fromhex(token) if len(token) == 2 else token.encode()
                self.pos = match.end()
                kept = len(raw)
                continue
            if char in _DN_FORBIDDEN_UNESCAPED:
                raise self.fail(f"unescaped {char!r}")
            raw += char.encode("utf-8")
            if char != " ":
                kept = len(raw)
            self.pos += 1
        if kept == 0:
            raise self.fail("empty value")
        try:
            return bytes(raw[:kept]).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("value is not UTF-8") from None
