"""The directory as the rest of the tool sees it: typed entries, typed changes, mapped errors.

``Directory`` is a thin wrapper over one bound ldap3 connection (one per thread). It takes
no decision about SUPANN: services say what to read and write, this module makes it safe
(escaping is the caller's job through ``escape``; results are never ignored; searches never
end silently short).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

import ldap3
from ldap3.core.exceptions import LDAPCommunicationError, LDAPException, LDAPResponseTimeoutError
from ldap3.extend.standard.modifyPassword import ModifyPassword
from ldap3.extend.standard.whoAmI import WhoAmI
from ldap3.operation.search import compile_filter, parse_filter
from ldap3.protocol.controls import build_control

from umacct.closing import Closing
from umacct.config import DirectoryConfig
from umacct.directory.connection import (
    InvalidCredentials,
    ServerAddress,
    ServerFailure,
    discard,
    open_bound,
    open_with_failover,
)
from umacct.directory.results import (
    NO_SUCH_OBJECT,
    SUCCESS,
    check_result,
    result_error,
)
from umacct.directory.schema import Subschema, parse_subschema
from umacct.errors import InvalidInputError, UmacctError, UnavailableError

ASSERTION_CONTROL = "1.3.6.1.1.12"
PAGED_RESULTS_CONTROL = "1.2.840.113556.1.4.319"
NO_ATTRIBUTES = "1.1"
_SCOPES = {"base": ldap3.BASE, "one": ldap3.LEVEL, "sub": ldap3.SUBTREE}
_MODIFY_OPS = {
    "add": ldap3.MODIFY_ADD,
    "delete": ldap3.MODIFY_DELETE,
    "replace": ldap3.MODIFY_REPLACE,
}
_ROOT_DSE_ATTRIBUTES = ("*", "+")
ADD_WINDOW = 200
"""Adds in flight at once: well under slapd's olcConnMaxPendingAuth (1000), which closes the
session when exceeded, and enough to keep the server busy while the client encodes."""
_ADD_REQUEST, _ADD_RESPONSE, _EXTENDED_RESPONSE = 0x68, 0x69, 0x78
_SEQUENCE, _SET, _INTEGER, _OCTET_STRING, _ENUMERATED = 0x30, 0x31, 0x02, 0x04, 0x0A
_RECEIVE_BYTES = 65536


@dataclass(frozen=True)
class Entry:
    """One directory entry as read: its DN and the values of the attributes asked for."""

    dn: str
    attributes: dict[str, list[str]]
    """Lower-cased attribute name -> values decoded from UTF-8."""
    binary: dict[str, list[bytes]] = field(default_factory=dict)
    """Lower-cased attribute name -> values that are not UTF-8 (photos, certificates)."""

    def get(self, name: str) -> list[str]:
        """The text values of ``name`` (case-insensitive), ``[]`` when absent."""
        return list(self.attributes.get(name.lower(), []))

    def first(self, name: str) -> str | None:
        """The first text value of ``name``, or None."""
        values = self.attributes.get(name.lower())
        return values[0] if values else None


@dataclass(frozen=True)
class Change:
    """One modification of one attribute; ``delete``/``replace`` with no values clear it."""

    op: Literal["add", "delete", "replace"]
    attribute: str
    values: tuple[str, ...] = ()


def _entry_from_response(item: Mapping[str, Any]) -> Entry:
    texts: dict[str, list[str]] = {}
    binary: dict[str, list[bytes]] = {}
    for name, values in item["raw_attributes"].items():
        for value in values:
            try:
                texts.setdefault(name.lower(), []).append(value.decode("utf-8"))
            except UnicodeDecodeError:
                binary.setdefault(name.lower(), []).append(bytes(value))
    return Entry(dn=str(item["dn"]), attributes=texts, binary=binary)


def _assertion_control(assertion: str) -> Any:
    """The RFC 4528 assertion control carrying ``assertion``, a filter built with ``escape``."""
    try:
        node = parse_filter(assertion, None, False, True, None, False).elements[0]
    except LDAPException as exc:
        raise InvalidInputError(f"invalid assertion filter {assertion!r}: {exc}") from None
    return build_control(ASSERTION_CONTROL, True, compile_filter(node))


def _paged_cookie(result: Mapping[str, Any]) -> bytes | None:
    control = (result.get("controls") or {}).get(PAGED_RESULTS_CONTROL) or {}
    cookie = (control.get("value") or {}).get("cookie")
    return bytes(cookie) if cookie else None


@dataclass(frozen=True)
class AddResult:
    """What became of one entry of ``Directory.add_many``: ``error`` is None when it was added."""

    dn: str
    error: UmacctError | None = None


# --- the pipelined add: BER by hand ----------------------------------------------------------
# Profiles of bulk intakes put most of ldap3's time in pyasn1 building each AddRequest. An
# AddRequest and an AddResponse are simple enough (RFC 4511, sections 4.1.1, 4.1.9 and 4.7)
# to encode and decode here, which makes the client cheaper than the server.


def _ber_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _ber_length(len(content)) + content


def _ber_integer(tag: int, value: int) -> bytes:
    # Non-negative, two's complement, minimal: a leading zero octet when the top bit is set.
    return _tlv(tag, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def encode_add_request(message_id: int, dn: str, attributes: Mapping[str, Sequence[str]]) -> bytes:
    """The LDAPMessage of an AddRequest (message id, DN, attributes and their values)."""
    encoded = b"".join(
        _tlv(_SEQUENCE, _tlv(_OCTET_STRING, name.encode("utf-8")) + _tlv(
            _SET, b"".join(_tlv(_OCTET_STRING, value.encode("utf-8")) for value in values)
        ))
        for name, values in attributes.items()
    )  # fmt: skip
    request = _tlv(_ADD_REQUEST, _tlv(_OCTET_STRING, dn.encode("utf-8")) + _tlv(_SEQUENCE, encoded))
    return _tlv(_SEQUENCE, _ber_integer(_INTEGER, message_id) + request)


def _read_tlv(data: bytes | bytearray, at: int) -> tuple[int, int, int]:
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


def decode_ldap_result(message: bytes | bytearray) -> tuple[int, int, int, str]:
    """Message id, protocol tag, result code and diagnostic message of an LDAPResult message."""
    _, start, _ = _read_tlv(message, 0)
    _, id_start, id_end = _read_tlv(message, start)
    message_id = int.from_bytes(message[id_start:id_end], "big")
    operation, op_start, _ = _read_tlv(message, id_end)
    _, code_start, code_end = _read_tlv(message, op_start)
    _, _, matched_end = _read_tlv(message, code_end)
    _, diag_start, diag_end = _read_tlv(message, matched_end)
    code = int.from_bytes(message[code_start:code_end], "big")
    diagnostic = bytes(message[diag_start:diag_end]).decode("utf-8", errors="replace")
    return message_id, operation, code, diagnostic


def _split_messages(buffer: bytearray) -> Iterator[bytes]:
    """Take every complete LDAPMessage off the front of ``buffer``."""
    while len(buffer) >= 2:
        try:
            _, _, end = _read_tlv(buffer, 0)
        except IndexError:
            return
        message = bytes(buffer[:end])
        del buffer[:end]
        yield message


_Answer = tuple[int, str] | UmacctError
"""An add's result code and diagnostic message, or the error that kept it from being sent."""


def _add_error(dn: str, answer: _Answer) -> UmacctError | None:
    if isinstance(answer, UmacctError):
        return answer
    code, diagnostic = answer
    return (
        None
        if code == SUCCESS
        else result_error("add", dn, {"result": code, "message": diagnostic})
    )


class Directory(Closing):
    """A bound connection to the directory; use ``connect()`` to get one, one per thread."""

    def __init__(self, connection: Any, address: ServerAddress, settings: DirectoryConfig) -> None:
        self._connection = connection
        self._address = address
        self._settings = settings
        self._subschema: Subschema | None = None

    @property
    def url(self) -> str:
        """The URL of the server this connection reached."""
        return self._address.url

    # --- plumbing -------------------------------------------------------------------------

    @contextmanager
    def _guard(self, operation: str, target: str) -> Iterator[None]:
        """Map ldap3's exceptions: lost connection -> UnavailableError, else InvalidInputError."""
        try:
            yield
        except (LDAPCommunicationError, LDAPResponseTimeoutError) as exc:
            discard(self._connection)
            raise UnavailableError(
                f"{operation} {target}: connection to {self.url} lost: {exc}"
            ) from None
        except LDAPException as exc:
            raise InvalidInputError(f"{operation} {target}: {exc}") from None

    def _extended(self, name: str, target: str, operation: Any) -> Mapping[str, Any]:
        """Send an ldap3 extended operation and check its result; return the result."""
        with self._guard(name, target):
            operation.send()
        check_result(name, target, operation.result)
        return operation.result  # type: ignore[no-any-return]

    # --- reads ----------------------------------------------------------------------------

    def search(
        self,
        base: str,
        filter: str,
        attributes: Sequence[str],
        *,
        scope: Literal["base", "one", "sub"] = "sub",
        page_size: int | None = None,
        size_limit: int = 0,
    ) -> Iterator[Entry]:
        """Stream the entries under ``base`` that match ``filter``, one page in memory.

        The filter must be built with ``umacct.directory.escape``. Entries come in no
        particular order. When the search ends early (size or time limit, lost connection,
        any result but success) the iterator raises after the entries already received:
        a search is never silently truncated. ``[]`` as attributes asks for none;
        ``page_size=0`` turns paging off (the configured size is the default).
        """
        wanted = list(attributes) or [NO_ATTRIBUTES]
        page = page_size if page_size is not None else self._settings.page_size
        cookie: bytes | None = None
        received = 0
        while True:
            with self._guard("search", base):
                _, result, response, _ = self._connection.search(
                    base,
                    filter,
                    search_scope=_SCOPES[scope],
                    dereference_aliases=ldap3.DEREF_NEVER,
                    attributes=wanted,
                    size_limit=size_limit,
                    paged_size=page or None,
                    paged_cookie=cookie,
                )
            for item in response or ():
                if item.get("type") == "searchResEntry":
                    received += 1
                    yield _entry_from_response(item)
            if result["result"] != SUCCESS:
                error = result_error("search", base, result)
                if received:
                    raise type(error)(f"{error.message} (stopped after {received} entries)")
                raise error
            cookie = _paged_cookie(result)
            if not cookie:
                return

    def read(self, dn: str, attributes: Sequence[str]) -> Entry | None:
        """The entry ``dn`` with the given attributes, or None when it does not exist."""
        wanted = list(attributes) or [NO_ATTRIBUTES]
        with self._guard("read", dn):
            _, result, response, _ = self._connection.search(
                dn,
                "(objectClass=*)",
                search_scope=ldap3.BASE,
                dereference_aliases=ldap3.DEREF_NEVER,
                attributes=wanted,
            )
        if result["result"] == NO_SUCH_OBJECT:
            return None
        check_result("read", dn, result)
        entries = [item for item in response or () if item.get("type") == "searchResEntry"]
        return _entry_from_response(entries[0]) if entries else None

    def root_dse(self) -> dict[str, list[str]]:
        """The root DSE: supportedControl, supportedExtension, namingContexts, ... as sent."""
        with self._guard("read", ""):
            _, result, response, _ = self._connection.search(
                "", "(objectClass=*)", search_scope=ldap3.BASE, attributes=_ROOT_DSE_ATTRIBUTES
            )
        check_result("read", "", result)
        dse: dict[str, list[str]] = {}
        for item in response or ():
            if item.get("type") == "searchResEntry":
                for name, values in item["raw_attributes"].items():
                    dse[name] = [value.decode("utf-8", errors="replace") for value in values]
        return dse

    def subschema(self) -> Subschema:
        """The server's attribute types, object classes and syntaxes (read once, then kept)."""
        if self._subschema is None:
            dse = self.root_dse()
            subentry = (dse.get("subschemaSubentry") or ["cn=Subschema"])[0]
            entry = self.read(subentry, ["attributeTypes", "objectClasses"])
            if entry is None:
                raise UnavailableError(f"the server at {self.url} publishes no subschema")
            self._subschema = parse_subschema(
                entry.get("attributeTypes"), entry.get("objectClasses")
            )
        return self._subschema

    def whoami(self) -> str:
        """The identity the server sees for this connection, e.g. ``dn:cn=umacct,dc=...``."""
        result = self._extended("whoami", self.url, WhoAmI(self._connection))
        return str(result.get("authzid") or "")

    # --- writes ---------------------------------------------------------------------------

    def add(self, dn: str, attributes: Mapping[str, Sequence[str]]) -> None:
        """Create the entry ``dn``; AlreadyExistsError if it exists."""
        empty = [name for name, values in attributes.items() if not values]
        if empty:
            raise InvalidInputError(f"add {dn}: no value for {', '.join(empty)}")
        payload = {name: list(values) for name, values in attributes.items()}
        with self._guard("add", dn):
            _, result, _, _ = self._connection.add(dn, attributes=payload)
        check_result("add", dn, result)

    def add_many(
        self,
        items: Iterable[tuple[str, Mapping[str, Sequence[str]]]],
        *,
        window: int = ADD_WINDOW,
    ) -> Iterator[AddResult]:
        """Create many entries, ``window`` requests in flight; one result per item, in order.

        Errors of one entry (AlreadyExistsError, InvalidInputError...) are reported in its
        result, mapped as ``add`` maps them, and the others go on. A lost connection raises
        UnavailableError: the entries whose results were not yielded may or may not exist.
        Stopping the iteration early waits for the answers already due, so the connection
        stays usable.
        """
        if not 0 < window < 1000:
            raise InvalidInputError(f"add window {window}: expected 1 to 999")
        pending = iter(items)
        sent: deque[tuple[int, str]] = deque()
        answers: dict[int, _Answer] = {}
        buffer = bytearray()
        self._send_adds(pending, sent, answers, window)
        try:
            while sent:
                message_id, dn = sent[0]
                while message_id not in answers:
                    self._receive_answers(buffer, answers, dn)
                sent.popleft()
                if len(sent) < window // 2:
                    self._send_adds(pending, sent, answers, window - len(sent))
                yield AddResult(dn, _add_error(dn, answers.pop(message_id)))
        except GeneratorExit:
            for message_id, dn in sent:
                while message_id not in answers:
                    self._receive_answers(buffer, answers, dn)
            raise

    def _send_adds(
        self,
        pending: Iterator[tuple[str, Mapping[str, Sequence[str]]]],
        sent: deque[tuple[int, str]],
        answers: dict[int, _Answer],
        count: int,
    ) -> None:
        """Encode up to ``count`` adds and send them in one write (a bad one is answered here)."""
        requests = []
        for dn, attributes in pending:
            message_id = self._connection.server.next_message_id()
            sent.append((message_id, dn))
            empty = [name for name, values in attributes.items() if not values]
            if empty:
                answers[message_id] = InvalidInputError(
                    f"add {dn}: no value for {', '.join(empty)}"
                )
            else:
                requests.append(encode_add_request(message_id, dn, attributes))
            if len(sent) == count:
                break
        if requests:
            self._socket_io("add", sent[-1][1], lambda: self._connection.socket.sendall(
                b"".join(requests)
            ))  # fmt: skip

    def _receive_answers(self, buffer: bytearray, answers: dict[int, _Answer], target: str) -> None:
        """Read what the server sent and file each add result under its message id."""
        data = self._socket_io("add", target, lambda: self._connection.socket.recv(_RECEIVE_BYTES))
        if not data:
            discard(self._connection)
            raise UnavailableError(f"add {target}: connection to {self.url} closed by the server")
        buffer += data
        for message in _split_messages(buffer):
            try:
                message_id, operation, code, diagnostic = decode_ldap_result(message)
            except (IndexError, ValueError) as exc:
                discard(self._connection)
                raise UnavailableError(
                    f"add {target}: unreadable answer from {self.url}: {exc}"
                ) from None
            if operation != _ADD_RESPONSE:
                # A notice of disconnection (message id 0), or an answer to nothing we sent.
                discard(self._connection)
                raise UnavailableError(
                    f"add {target}: {self.url} ended the session: {diagnostic or code}"
                )
            answers[message_id] = (code, diagnostic)

    def _socket_io(self, operation: str, target: str, call: Any) -> Any:
        try:
            return call()
        except OSError as exc:
            discard(self._connection)
            raise UnavailableError(
                f"{operation} {target}: connection to {self.url} lost: {exc}"
            ) from None

    def modify(self, dn: str, changes: Sequence[Change], *, assertion: str | None = None) -> None:
        """Apply ``changes`` to ``dn`` atomically.

        With ``assertion`` (a filter built with ``escape``) the server applies them only if
        the entry still matches it (RFC 4528), else ConflictError: read, decide, then write
        with the values read as the assertion, and retry on conflict.
        """
        if not changes:
            raise InvalidInputError(f"modify {dn}: no change given")
        grouped: dict[str, list[tuple[str, list[str]]]] = {}
        for change in changes:
            grouped.setdefault(change.attribute, []).append(
                (_MODIFY_OPS[change.op], list(change.values))
            )
        controls = [_assertion_control(assertion)] if assertion else None
        with self._guard("modify", dn):
            _, result, _, _ = self._connection.modify(dn, grouped, controls=controls)
        check_result("modify", dn, result)

    def delete(self, dn: str, *, assertion: str | None = None) -> None:
        """Delete the leaf entry ``dn``; with ``assertion``, only if it still matches it."""
        controls = [_assertion_control(assertion)] if assertion else None
        with self._guard("delete", dn):
            _, result, _, _ = self._connection.delete(dn, controls=controls)
        check_result("delete", dn, result)

    # --- passwords ------------------------------------------------------------------------

    def password_modify(self, dn: str, new_password: str, old_password: str | None = None) -> None:
        """Set the password of ``dn`` with the Password Modify extended operation (RFC 3062).

        The server hashes it (security requirement 12); an empty password is refused
        (security requirement 11). Quality refusals by ppolicy are InvalidInputError.
        """
        if not new_password:
            raise InvalidInputError(f"password change for {dn}: an empty password is refused")
        if old_password is not None and not old_password:
            raise InvalidInputError(f"password change for {dn}: the old password is empty")
        operation = ModifyPassword(
            self._connection,
            user=dn,
            old_password=old_password.encode("utf-8") if old_password else None,
            new_password=new_password.encode("utf-8"),
        )
        self._extended("password change for", dn, operation)

    def check_password(self, dn: str, password: str) -> bool:
        """Whether ``password`` is the password of ``dn``, by a bind on a separate connection.

        False on invalid credentials (which includes ppolicy refusals such as a locked or
        expired account). An empty password is refused before any bind (security 11).
        """
        if not password:
            raise InvalidInputError(f"password check for {dn}: an empty password is refused")
        if not dn:
            raise InvalidInputError("password check: no DN given")
        try:
            connection = open_bound(self._address, self._settings, dn, password)
        except InvalidCredentials:
            return False
        except ServerFailure as failure:
            raise UnavailableError(f"password check for {dn}: {self.url}: {failure}") from None
        connection.unbind()
        return True

    # --- life -----------------------------------------------------------------------------

    def close(self) -> None:
        """Unbind and close; safe to call twice."""
        with suppress(LDAPException):
            self._connection.unbind()


def connect(settings: DirectoryConfig, password: str) -> Directory:
    """Bind to the first reachable server of ``settings.urls`` and return the directory.

    ConfigError for a cleartext setting to a remote server (checked before any network
    access), an empty password, or invalid credentials; UnavailableError, naming each URL
    tried and why, when none can be used.
    """
    connection, address = open_with_failover(settings, password)
    return Directory(connection, address, settings)
