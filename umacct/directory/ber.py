"""LDAP messages encoded and decoded by hand (BER, RFC 4511): every message the tool sends.

Profiles of bulk intakes put most of ldap3's time in pyasn1: building each AddRequest, and
compiling the long OR filters of the intake's look-ups. The messages the tool needs (binds,
StartTLS, searches, adds, modifies, deletes, abandons and its few extended operations) and
their answers are simple enough to encode and decode here, which makes the client cheaper
than the server and spares loading a generic codec at every start. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

BOOLEAN, INTEGER, OCTET_STRING, ENUMERATED, SEQUENCE, SET = 0x01, 0x02, 0x04, 0x0A, 0x30, 0x31
BIND_REQUEST, BIND_RESPONSE, UNBIND_REQUEST, ABANDON_REQUEST = 0x60, 0x61, 0x42, 0x50
SEARCH_REQUEST, SEARCH_ENTRY, SEARCH_DONE, SEARCH_REFERENCE = 0x63, 0x64, 0x65, 0x73
MODIFY_REQUEST, MODIFY_RESPONSE = 0x66, 0x67
ADD_REQUEST, ADD_RESPONSE = 0x68, 0x69
DELETE_REQUEST, DELETE_RESPONSE = 0x4A, 0x6B
EXTENDED_REQUEST, EXTENDED_RESPONSE, INTERMEDIATE_RESPONSE = 0x77, 0x78, 0x79
_CONTROLS, _REFERRAL, _RESPONSE_VALUE = 0xA0, 0xA3, 0x8B
_REQUEST_NAME, _REQUEST_VALUE = 0x80, 0x81
_SIMPLE, _SASL = 0x80, 0xA3
_LDAP_VERSION = 3
# Filter CHOICE tags (RFC 4511, section 4.5.1).
_AND, _OR, _NOT, _EQUALITY, _SUBSTRINGS = 0xA0, 0xA1, 0xA2, 0xA3, 0xA4
_GREATER_OR_EQUAL, _LESS_OR_EQUAL, _PRESENT, _APPROX = 0xA5, 0xA6, 0x87, 0xA8
_INITIAL, _ANY, _FINAL = 0x80, 0x81, 0x82
_COMPARISONS = {"=": _EQUALITY, ">=": _GREATER_OR_EQUAL, "<=": _LESS_OR_EQUAL, "~=": _APPROX}
_SCOPES = {"base": 0, "one": 1, "sub": 2}
# An attribute, a comparison and a value up to the closing parenthesis (RFC 4515 wants
# parentheses in values escaped); extensible matches (``attr:rule:=``) are left out.
_ITEM = re.compile(r"([^=<>~:()*\\]+)(>=|<=|~=|=)([^()]*)")
_ESCAPED_BYTE = re.compile(r"\\([0-9A-Fa-f]{2})")
_NEVER_DEREFERENCE = 0
_TRUE = b"\x01\x01\xff"


# --- encoding -----------------------------------------------------------------------------------


def _length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _long_head(tag: int, length: int) -> bytes:
    """The tag and a length of 128 or more (the long form of RFC 4511's definite lengths)."""
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(octets))) + octets


# The tag and short length of the elements every add and modify is made of, ready made: an
# intake encodes some fifty of them a person.
_OCTET_STRING_HEADS = [bytes((OCTET_STRING, size)) for size in range(0x80)]
_SEQUENCE_HEADS = [bytes((SEQUENCE, size)) for size in range(0x80)]
_SET_HEADS = [bytes((SET, size)) for size in range(0x80)]


def tlv(tag: int, content: bytes) -> bytes:
    """One BER element: tag, definite length, content."""
    size = len(content)
    return (bytes((tag, size)) if size < 0x80 else _long_head(tag, size)) + content


def _integer(tag: int, value: int) -> bytes:
    # Non-negative, two's complement, minimal: a leading zero octet when the top bit is set.
    return tlv(tag, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _text(value: str) -> bytes:
    return tlv(OCTET_STRING, value.encode("utf-8"))


def control(oid: str, critical: bool, value: bytes | None = None) -> bytes:
    """One Control (RFC 4511, section 4.1.11): type, criticality, optional value."""
    content = _text(oid) + (_TRUE if critical else b"")
    if value is not None:
        content += tlv(OCTET_STRING, value)
    return tlv(SEQUENCE, content)


def message(message_id: int, operation: bytes, controls: Sequence[bytes] = ()) -> bytes:
    """The LDAPMessage carrying ``operation`` (an encoded protocolOp) and ``controls``."""
    number = message_id.to_bytes(message_id.bit_length() // 8 + 1, "big")  # as ``_integer``
    size = 2 + len(number) + len(operation)
    extra = tlv(_CONTROLS, b"".join(controls)) if controls else b""
    size += len(extra)
    head = _SEQUENCE_HEADS[size] if size < 0x80 else _long_head(SEQUENCE, size)
    return b"".join((head, bytes((INTEGER, len(number))), number, operation, extra))


def add_request(dn: str, attributes: Mapping[str, Sequence[str]]) -> bytes:
    """The protocolOp of an AddRequest: the DN, then each attribute with its values.

    Built as one list of pieces joined once (the same bytes as ``tlv`` nested; an intake
    encodes thousands).
    """
    chunks: list[bytes] = []
    size = 0
    for name, values in attributes.items():
        size += _partial_attribute_into(chunks, name, values)
    return _wrapped(ADD_REQUEST, dn, size, chunks)


def _wrapped(tag: int, dn: str, size: int, chunks: list[bytes]) -> bytes:
    """``tag`` over the DN and a SEQUENCE of ``chunks`` (``size`` bytes), joined once."""
    dn_bytes = dn.encode("utf-8")
    dn_size = len(dn_bytes)
    dn_head = _OCTET_STRING_HEADS[dn_size] if dn_size < 0x80 else _long_head(OCTET_STRING, dn_size)
    list_head = _SEQUENCE_HEADS[size] if size < 0x80 else _long_head(SEQUENCE, size)
    size += len(list_head) + len(dn_head) + dn_size
    head = bytes((tag, size)) if size < 0x80 else _long_head(tag, size)
    return b"".join([head, dn_head, dn_bytes, list_head, *chunks])


def _partial_attribute_into(chunks: list[bytes], name: str, values: Sequence[str]) -> int:
    """Append the PartialAttribute ``name``: ``values`` to ``chunks``; return its size."""
    body: list[bytes] = []
    size = 0
    for value in values:
        data = value.encode("utf-8")
        length = len(data)
        head = _OCTET_STRING_HEADS[length] if length < 0x80 else _long_head(OCTET_STRING, length)
        body.append(head)
        body.append(data)
        size += len(head) + length
    name_bytes = name.encode("utf-8")
    length = len(name_bytes)
    name_head = _OCTET_STRING_HEADS[length] if length < 0x80 else _long_head(OCTET_STRING, length)
    set_head = _SET_HEADS[size] if size < 0x80 else _long_head(SET, size)
    size += len(set_head) + len(name_head) + length
    head = _SEQUENCE_HEADS[size] if size < 0x80 else _long_head(SEQUENCE, size)
    chunks.append(head)
    chunks.append(name_head)
    chunks.append(name_bytes)
    chunks.append(set_head)
    chunks += body
    return len(head) + size


MODIFY_OPERATIONS = {"add": 0, "delete": 1, "replace": 2}
_OPERATION_CODES = {name: bytes((ENUMERATED, 1, code)) for name, code in MODIFY_OPERATIONS.items()}


def modify_request(dn: str, changes: Sequence[tuple[str, str, Sequence[str]]]) -> bytes:
    """The protocolOp of a ModifyRequest: the DN, then each (operation, attribute, values).

    The operation is ``add``, ``delete`` or ``replace`` (RFC 4511, section 4.6); ``delete``
    and ``replace`` with no values clear the attribute.
    """
    chunks: list[bytes] = []
    size = 0
    for operation, name, values in changes:
        code = _OPERATION_CODES[operation]
        change: list[bytes] = []
        change_size = len(code) + _partial_attribute_into(change, name, values)
        head = (
            _SEQUENCE_HEADS[change_size]
            if change_size < 0x80
            else _long_head(SEQUENCE, change_size)
        )
        chunks.append(head)
        chunks.append(code)
        chunks += change
        size += len(head) + change_size
    return _wrapped(MODIFY_REQUEST, dn, size, chunks)


def delete_request(dn: str) -> bytes:
    """The protocolOp of a DelRequest: the DN itself, as the primitive element's content."""
    return tlv(DELETE_REQUEST, dn.encode("utf-8"))


def search_request(
    base: str,
    scope: Literal["base", "one", "sub"],
    encoded_filter: bytes,
    attributes: Sequence[str],
    size_limit: int = 0,
) -> bytes:
    """The protocolOp of a SearchRequest; never dereferencing aliases, with no time limit.

    ``encoded_filter`` comes from ``encode_filter``.
    """
    content = (
        _text(base)
        + _integer(ENUMERATED, _SCOPES[scope])
        + _integer(ENUMERATED, _NEVER_DEREFERENCE)
        + _integer(INTEGER, size_limit)
        + _integer(INTEGER, 0)
        + tlv(BOOLEAN, b"\x00")
        + encoded_filter
        + tlv(SEQUENCE, b"".join(_text(name) for name in attributes))
    )
    return tlv(SEARCH_REQUEST, content)


def simple_bind_request(dn: str, password: bytes) -> bytes:
    """The protocolOp of a simple BindRequest (LDAPv3): the DN and the password as given."""
    return tlv(BIND_REQUEST, _integer(INTEGER, _LDAP_VERSION) + _text(dn) + tlv(_SIMPLE, password))


def sasl_bind_request(mechanism: str, credentials: bytes | None = None) -> bytes:
    """The protocolOp of a SASL BindRequest: no DN, the mechanism and its credentials if any.

    ``EXTERNAL`` with empty credentials asks for the identity the transport established (the
    peer's user and group on an ldapi socket), with no authorisation identity of its own.
    """
    sasl = _text(mechanism)
    if credentials is not None:
        sasl += tlv(OCTET_STRING, credentials)
    return tlv(BIND_REQUEST, _integer(INTEGER, _LDAP_VERSION) + _text("") + tlv(_SASL, sasl))


UNBIND = tlv(UNBIND_REQUEST, b"")
"""The protocolOp of an UnbindRequest (a NULL)."""


def abandon_request(message_id: int) -> bytes:
    """The protocolOp of an AbandonRequest: the id of the request to abandon."""
    return _integer(ABANDON_REQUEST, message_id)


def password_modify_value(dn: str, new_password: bytes, old_password: bytes | None) -> bytes:
    """The value of a Password Modify request (RFC 3062): whose, the old one if any, the new."""
    content = tlv(0x80, dn.encode("utf-8"))
    if old_password is not None:
        content += tlv(0x81, old_password)
    return tlv(SEQUENCE, content + tlv(0x82, new_password))


def extended_request(oid: str, value: bytes | None = None) -> bytes:
    """The protocolOp of an ExtendedRequest: its name and, if any, its value."""
    content = tlv(_REQUEST_NAME, oid.encode("ascii"))
    if value is not None:
        content += tlv(_REQUEST_VALUE, value)
    return tlv(EXTENDED_REQUEST, content)


def end_transaction_value(commit: bool, transaction_id: bytes) -> bytes:
    """The value of an End Transaction request (RFC 5805, section 2.3); commit is the default."""
    return tlv(SEQUENCE, (b"" if commit else b"\x01\x01\x00") + tlv(OCTET_STRING, transaction_id))


def paged_results_value(size: int, cookie: bytes | None) -> bytes:
    """The value of the simple paged results control (RFC 2696): page size and cookie."""
    return tlv(SEQUENCE, _integer(INTEGER, size) + tlv(OCTET_STRING, cookie or b""))


# --- filters (RFC 4515 strings to RFC 4511 BER) -------------------------------------------------


def encode_filter(text: str) -> bytes:
    """The BER of the filter ``text``; ValueError when it is not a well-formed filter.

    Extensible matches (``attr:rule:=value``) are not supported: the tool builds none.
    """
    flat = _FLAT_FILTER.fullmatch(text)
    if flat is not None:
        return _flat_filter(flat[1], flat[2])
    return _parsed_filter(text)


# An AND or OR of equalities with plain values (no '*', no escape): what the look-ups of a
# bulk intake send, thousands of items long. The parser would read each item so: an
# attribute up to its '=', the value up to the closing parenthesis; an attribute never starts
# with '&', '|' or '!', which the parser reads as operators.
_FLAT_ITEMS = re.compile(r"\(([^=<>~:()*\\&|!][^=<>~:()*\\]*)=([^()*\\]*)\)")
_FLAT_FILTER = re.compile(r"\(([&|])((?:\([^=<>~:()*\\&|!][^=<>~:()*\\]*=[^()*\\]*\))+)\)")


def _flat_filter(kind: str, items: str) -> bytes:
    """The BER of ``(kind items)``, as ``_FilterParser`` encodes it, in one pass."""
    encoded = _equalities(_FLAT_ITEMS.findall(items))
    return tlv(_AND if kind == "&" else _OR, b"".join(encoded))


def equality_or(tests: Sequence[tuple[str, str]]) -> bytes:
    """The BER of ``(|(name=value)...)`` from its tests (one test: its equality alone).

    The bytes ``encode_filter`` gives the same filter as text (``escape.AnyEqual``).
    """
    encoded = _equalities(tests)
    return encoded[0] if len(encoded) == 1 else tlv(_OR, b"".join(encoded))


def _equalities(tests: Sequence[tuple[str, str]]) -> list[bytes]:
    """Each ``(name=value)`` as an equalityMatch element, the values as they are (UTF-8)."""
    encoded = []
    for name, value in tests:
        content = _octets(name.encode("utf-8")) + _octets(value.encode("utf-8"))
        size = len(content)
        encoded.append(
            (bytes((_EQUALITY, size)) if size < 0x80 else _long_head(_EQUALITY, size)) + content
        )
    return encoded


def _parsed_filter(text: str) -> bytes:
    """``encode_filter`` by the parser alone (the flat path gives the same bytes)."""
    parser = _FilterParser(text)
    encoded = parser.filter()
    if parser.at != len(text):
        raise parser.fail("text after the end of the filter")
    return encoded


@dataclass
class _FilterParser:
    text: str
    at: int = 0

    def fail(self, why: str) -> ValueError:
        return ValueError(f"invalid filter {self.text!r} at {self.at}: {why}")

    def expect(self, char: str) -> None:
        if not self.text.startswith(char, self.at):
            raise self.fail(f"expected {char!r}")
        self.at += 1

    def filter(self) -> bytes:
        self.expect("(")
        kind = self.text[self.at : self.at + 1]
        if kind in ("&", "|"):
            self.at += 1
            parts = [self.filter()]
            while self.text.startswith("(", self.at):
                parts.append(self.filter())
            encoded = tlv(_AND if kind == "&" else _OR, b"".join(parts))
        elif kind == "!":
            self.at += 1
            encoded = tlv(_NOT, self.filter())
        else:
            encoded = self.item()
        self.expect(")")
        return encoded

    def item(self) -> bytes:
        match = _ITEM.match(self.text, self.at)
        if match is None:
            raise self.fail("expected an attribute, then =, >=, <= or ~= and a value")
        self.at = match.end()
        name, operator, value = match.groups()
        attribute = name.encode("utf-8")
        pieces = [self.unescaped(piece) for piece in value.split("*")]
        if operator != "=" or len(pieces) == 1:
            if len(pieces) > 1:
                raise self.fail(f"'*' is not allowed after {operator}")
            return tlv(_COMPARISONS[operator], _octets(attribute) + _octets(pieces[0]))
        if pieces == [b"", b""]:
            return tlv(_PRESENT, attribute)
        if not all(pieces[1:-1]):
            raise self.fail("empty substring between two '*'")
        substrings = [
            tlv(_INITIAL if index == 0 else _FINAL if index == len(pieces) - 1 else _ANY, piece)
            for index, piece in enumerate(pieces)
            if piece
        ]
        return tlv(_SUBSTRINGS, _octets(attribute) + tlv(SEQUENCE, b"".join(substrings)))

    def unescaped(self, text: str) -> bytes:
        """The bytes of a piece of a value: its characters in UTF-8, escaped bytes decoded."""
        if "\\" not in text:
            return text.encode("utf-8")
        value = bytearray()
        for index, part in enumerate(_ESCAPED_BYTE.split(text)):
            if index % 2:
                value.append(int(part, 16))
            elif "\\" in part:
                raise self.fail("a backslash must be followed by two hex digits")
            else:
                value += part.encode("utf-8")
        return bytes(value)


def _octets(value: bytes) -> bytes:
    size = len(value)
    return (_OCTET_STRING_HEADS[size] if size < 0x80 else _long_head(OCTET_STRING, size)) + value


# --- decoding -----------------------------------------------------------------------------------


def read_tlv(data: bytes | bytearray, at: int) -> tuple[int, int, int]:
    """The tag, start and end of the content of the TLV at ``at``; IndexError if incomplete."""
    tag, first = data[at], data[at + 1]
    start = at + 2
    if first & 0x80:
        size = first & 0x7F
        if not 0 < size <= 4:
            raise ValueError(f"unsupported BER length of {size} octets")
        length = int.from_bytes(data[start : start + size], "big")
        start += size
    else:
        length = first
    if start + length > len(data):
        raise IndexError("incomplete message")
    return tag, start, start + length


def message_size(buffer: bytes | bytearray) -> int | None:
    """The size of the message at the front of ``buffer`` once its header is in, else None.

    It is known before the message is, so that an announced size can be refused at once.
    """
    if len(buffer) < 2:
        return None
    first = buffer[1]
    if not first & 0x80:
        return 2 + first
    size = first & 0x7F
    if not 0 < size <= 4:
        raise ValueError(f"unsupported BER length of {size} octets")
    if len(buffer) < 2 + size:
        return None
    return 2 + size + int.from_bytes(buffer[2 : 2 + size], "big")


def split_messages(buffer: bytearray) -> list[bytes]:
    """Take every complete LDAPMessage off the front of ``buffer``."""
    messages = []
    while len(buffer) >= 2:
        try:
            _, _, end = read_tlv(buffer, 0)
        except IndexError:
            break
        messages.append(bytes(buffer[:end]))
        del buffer[:end]
    return messages


@dataclass(frozen=True)
class Message:
    """One LDAPMessage received: its id, the tag of its protocolOp, where each part lies."""

    raw: bytes
    message_id: int
    tag: int
    start: int
    """Where the protocolOp's content starts in ``raw``."""
    end: int
    """Where it ends; the controls, if any, follow."""


def decode_message(raw: bytes) -> Message:
    """Split an LDAPMessage into its id and protocolOp; ValueError or IndexError if malformed."""
    _, start, end = read_tlv(raw, 0)
    if end != len(raw):
        raise ValueError("trailing bytes after the message")
    _, id_start, id_end = read_tlv(raw, start)
    tag, op_start, op_end = read_tlv(raw, id_end)
    return Message(raw, int.from_bytes(raw[id_start:id_end], "big"), tag, op_start, op_end)


@dataclass(frozen=True)
class Result:
    """An LDAPResult (RFC 4511, section 4.1.9), with an extended response's value if any."""

    code: int
    matched: str
    diagnostic: str
    referrals: tuple[str, ...] = ()
    value: bytes | None = None

    def as_mapping(self) -> dict[str, object]:
        """The result as ``results.result_error`` reads it (ldap3's keys)."""
        return {"result": self.code, "message": self.diagnostic, "referrals": list(self.referrals)}


def _decode_text(data: bytes, start: int, end: int) -> str:
    return data[start:end].decode("utf-8", errors="replace")


def decode_result(msg: Message) -> Result:
    """The LDAPResult of a response message (add, search done, extended...)."""
    raw = msg.raw
    _, code_start, code_end = read_tlv(raw, msg.start)
    _, matched_start, matched_end = read_tlv(raw, code_end)
    _, diag_start, at = read_tlv(raw, matched_end)
    referrals: list[str] = []
    value = None
    diagnostic = _decode_text(raw, diag_start, at)
    while at < msg.end:
        tag, start, end = read_tlv(raw, at)
        if tag == _REFERRAL:
            referrals += [_decode_text(raw, s, e) for _, s, e in _elements(raw, start, end)]
        elif tag == _RESPONSE_VALUE:
            value = raw[start:end]
        at = end
    return Result(
        int.from_bytes(raw[code_start:code_end], "big"),
        _decode_text(raw, matched_start, matched_end),
        diagnostic,
        tuple(referrals),
        value,
    )


def _elements(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """The tag and content span of each element between ``start`` and ``end``."""
    elements = []
    while start < end:
        element = read_tlv(data, start)
        elements.append(element)
        start = element[2]
    return elements


def decode_entry(msg: Message) -> tuple[str, dict[str, list[bytes]]]:
    """The DN and the attributes (name as sent -> raw values) of a SearchResultEntry.

    A look-up reads thousands of entries: the short lengths (under 128 octets, nearly all)
    are read here rather than through ``read_tlv``, with its very checks; a long one goes
    through it. A malformed entry is decoded again by ``_slow_decode_entry``, the reference,
    so that its error is that one's.
    """
    try:
        return _fast_decode_entry(msg)
    except (IndexError, ValueError):
        return _slow_decode_entry(msg)


def _fast_decode_entry(msg: Message) -> tuple[str, dict[str, list[bytes]]]:
    raw = msg.raw
    size = len(raw)
    _, dn_start, dn_end = read_tlv(raw, msg.start)
    _, at, list_end = read_tlv(raw, dn_end)
    attributes: dict[str, list[bytes]] = {}
    while at < list_end:
        # PartialAttribute ::= SEQUENCE { type OCTET STRING, vals SET OF OCTET STRING }
        if (length := raw[at + 1]) & 0x80:
            _, start, attribute_end = read_tlv(raw, at)
        elif (attribute_end := (start := at + 2) + length) > size:
            raise IndexError("incomplete message")
        if (length := raw[start + 1]) & 0x80:
            _, name_start, name_end = read_tlv(raw, start)
        elif (name_end := (name_start := start + 2) + length) > size:
            raise IndexError("incomplete message")
        if (length := raw[name_end + 1]) & 0x80:
            _, value, values_end = read_tlv(raw, name_end)
        elif (values_end := (value := name_end + 2) + length) > size:
            raise IndexError("incomplete message")
        name = raw[name_start:name_end].decode("utf-8", errors="replace")
        values = attributes.setdefault(name, [])
        while value < values_end:
            if (length := raw[value + 1]) & 0x80:
                _, value_start, value_end = read_tlv(raw, value)
            elif (value_end := (value_start := value + 2) + length) > size:
                raise IndexError("incomplete message")
            values.append(raw[value_start:value_end])
            value = value_end
        at = attribute_end
    return raw[dn_start:dn_end].decode("utf-8", errors="replace"), attributes


def _slow_decode_entry(msg: Message) -> tuple[str, dict[str, list[bytes]]]:
    """``decode_entry`` element by element (the tests compare both)."""
    raw = msg.raw
    _, dn_start, dn_end = read_tlv(raw, msg.start)
    _, list_start, list_end = read_tlv(raw, dn_end)
    attributes: dict[str, list[bytes]] = {}
    for _, start, _ in _elements(raw, list_start, list_end):
        _, name_start, name_end = read_tlv(raw, start)
        _, values_start, values_end = read_tlv(raw, name_end)
        name = _decode_text(raw, name_start, name_end)
        values = attributes.setdefault(name, [])
        values += [raw[s:e] for _, s, e in _elements(raw, values_start, values_end)]
    return raw[dn_start:dn_end].decode("utf-8", errors="replace"), attributes


def decode_references(msg: Message) -> tuple[str, ...]:
    """The URLs of a SearchResultReference (a continuation reference, RFC 4511 4.5.3)."""
    return tuple(_decode_text(msg.raw, s, e) for _, s, e in _elements(msg.raw, msg.start, msg.end))


def decode_controls(msg: Message) -> dict[str, bytes]:
    """The controls of a response message: OID -> value (empty when it has none)."""
    raw = msg.raw
    if msg.end >= len(raw):
        return {}
    tag, start, end = read_tlv(raw, msg.end)
    if tag != _CONTROLS:
        return {}
    controls = {}
    for _, control_start, control_end in _elements(raw, start, end):
        # controlType, then an optional BOOLEAN criticality, then an optional value.
        (_, oid_start, oid_end), *rest = _elements(raw, control_start, control_end)
        values = [raw[s:e] for tag, s, e in rest if tag == OCTET_STRING]
        controls[_decode_text(raw, oid_start, oid_end)] = values[0] if values else b""
    return controls


def decode_paged_cookie(value: bytes) -> bytes:
    """The cookie of a paged results control value (empty on the last page)."""
    _, start, _ = read_tlv(value, 0)
    _, _, size_end = read_tlv(value, start)
    _, cookie_start, cookie_end = read_tlv(value, size_end)
    return value[cookie_start:cookie_end]
