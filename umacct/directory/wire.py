"""LDAP messages on the wire: the requests the adapter encodes by hand, and their answers.

The adapter's ldap3 connection is bound and idle between its own operations. The requests
made here (searches, pipelined adds, LDAP transactions) use its socket directly and read
every answer they are due before returning, so that ldap3 finds the socket as it left it.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from umacct.directory import ber
from umacct.directory.connection import discard
from umacct.directory.results import SUCCESS, result_error
from umacct.errors import InvalidInputError, UmacctError, UnavailableError

TRANSACTION_START = "1.3.6.1.1.21.1"
TRANSACTION_SPECIFICATION = "1.3.6.1.1.21.2"
TRANSACTION_END = "1.3.6.1.1.21.3"
SETTLE_SECONDS = 0.05
"""The pause between the last answer to a transaction's adds and the end of the transaction.

slapd 2.5 (txn_preop) answers an update sent under a transaction before the thread that
handled it is done with it, and ending the transaction frees every update: ended at once,
slapd can crash (a use after free, reproduced here on a loaded two-core machine). The pause
lets those threads finish; ``[directory] transactions = "off"`` avoids the question.
"""
_RECEIVE_BYTES = 65536
_T = TypeVar("_T")

Item = tuple[str, Mapping[str, Sequence[str]]]
"""An entry to add: its DN and its attributes."""
RawEntry = tuple[str, dict[str, list[bytes]]]
"""An entry found: its DN and its attributes as sent (name -> raw values)."""


@dataclass(frozen=True)
class AddResult:
    """What became of one entry of ``Directory.add_many``: ``error`` is None when it was added."""

    dn: str
    error: UmacctError | None = None


class Wire:
    """Hand-encoded requests and their answers over the socket of one bound ldap3 connection."""

    def __init__(self, connection: Any, url: str) -> None:
        self._connection = connection
        self.url = url
        self._buffer = bytearray()

    def next_id(self) -> int:
        """A message id of the connection's sequence, never used before."""
        return int(self._connection.server.next_message_id())

    def lost(self, operation: str, target: str, why: object) -> UnavailableError:
        """Close the connection (it cannot be trusted any more) and describe why."""
        discard(self._connection)
        self._buffer.clear()
        return UnavailableError(f"{operation} {target}: connection to {self.url} lost: {why}")

    def send(self, operation: str, target: str, data: bytes) -> None:
        """Write ``data`` (whole LDAP messages) to the server."""
        try:
            self._connection.socket.sendall(data)
        except OSError as exc:
            raise self.lost(operation, target, exc) from None

    def receive(self, operation: str, target: str) -> list[ber.Message]:
        """Wait for data from the server; the complete messages it holds (maybe none yet)."""
        try:
            data = self._connection.socket.recv(_RECEIVE_BYTES)
        except OSError as exc:
            raise self.lost(operation, target, exc) from None
        if not data:
            raise self.lost(operation, target, "closed by the server")
        self._buffer += data
        messages = [
            self.decoded(operation, target, ber.decode_message, raw)
            for raw in ber.split_messages(self._buffer)
        ]
        for message in messages:
            if message.message_id == 0:  # an unsolicited notice: the server is closing
                notice = self.decoded(operation, target, ber.decode_result, message)
                why = notice.diagnostic or f"result {notice.code}"
                raise self.lost(operation, target, f"the server ended the session: {why}")
        return messages

    def decoded(self, operation: str, target: str, decode: Callable[[Any], _T], data: Any) -> _T:
        """``decode(data)``; an answer that does not decode ends the connection."""
        try:
            return decode(data)
        except (IndexError, ValueError) as exc:
            raise self.lost(operation, target, f"unreadable answer: {exc}") from None

    def answer(
        self, operation: str, target: str, message_id: int, tag: int, early: dict[int, ber.Result]
    ) -> ber.Result:
        """Wait for the result of ``message_id``, an answer of type ``tag``.

        Results of other requests that arrive first are kept in ``early`` until asked for.
        """
        while message_id not in early:
            for message in self.receive(operation, target):
                if message.tag != tag:
                    raise self.lost(
                        operation, target, f"unexpected answer to request {message.message_id}"
                    )
                early[message.message_id] = self.decoded(
                    operation, target, ber.decode_result, message
                )
        return early.pop(message_id)

    def exchange(
        self, operation: str, target: str, request: bytes, tag: int, controls: Sequence[bytes] = ()
    ) -> ber.Result:
        """Send one request (a protocolOp) and wait for its result, an answer of type ``tag``."""
        message_id = self.next_id()
        self.send(operation, target, ber.message(message_id, request, controls))
        return self.answer(operation, target, message_id, tag, {})

    def search(
        self, target: str, request: bytes, controls: Sequence[bytes]
    ) -> tuple[list[RawEntry], ber.Message]:
        """Send one SearchRequest; the entries (DN, raw attributes) and the SearchResultDone.

        Continuation references are left out (the tool follows no referral).
        """
        message_id = self.next_id()
        self.send("search", target, ber.message(message_id, request, controls))
        entries: list[RawEntry] = []
        while True:
            for message in self.receive("search", target):
                if message.message_id != message_id:
                    raise self.lost("search", target, "answer to a request never sent")
                if message.tag == ber.SEARCH_ENTRY:
                    entries.append(self.decoded("search", target, ber.decode_entry, message))
                elif message.tag == ber.SEARCH_DONE:
                    return entries, message
                elif message.tag != ber.SEARCH_REFERENCE:
                    raise self.lost("search", target, f"unexpected answer (tag {message.tag:#x})")


# --- many adds at once ----------------------------------------------------------------------------


def _add_error(dn: str, result: ber.Result) -> UmacctError | None:
    return None if result.code == SUCCESS else result_error("add", dn, result.as_mapping())


def missing_values(dn: str, attributes: Mapping[str, Sequence[str]]) -> UmacctError | None:
    """The error of an add whose attributes include one without values, or None."""
    empty = [name for name, values in attributes.items() if not values]
    return InvalidInputError(f"add {dn}: no value for {', '.join(empty)}") if empty else None


def add_pipelined(
    wire: Wire, items: Iterable[Item], window: int
) -> Generator[AddResult, None, None]:
    """Add entries with ``window`` requests in flight; one result per item, in order.

    An entry with an attribute without values is refused here, without a request.
    Stopping the iteration early waits for the answers already due.
    """
    pending = iter(items)
    sent: deque[tuple[int, str]] = deque()
    refused: dict[int, UmacctError] = {}
    early: dict[int, ber.Result] = {}
    _send_adds(wire, pending, sent, refused, window)
    try:
        while sent:
            message_id, dn = sent[0]
            error = refused.pop(message_id, None) or _add_error(
                dn, wire.answer("add", dn, message_id, ber.ADD_RESPONSE, early)
            )
            sent.popleft()
            if len(sent) < window // 2:
                _send_adds(wire, pending, sent, refused, window - len(sent))
            yield AddResult(dn, error)
    except GeneratorExit:
        for message_id, dn in sent:
            if refused.pop(message_id, None) is None:
                wire.answer("add", dn, message_id, ber.ADD_RESPONSE, early)
        raise


def _send_adds(
    wire: Wire,
    pending: Iterator[Item],
    sent: deque[tuple[int, str]],
    refused: dict[int, UmacctError],
    count: int,
) -> None:
    """Encode up to ``count`` adds and send them in one write."""
    requests = []
    for dn, attributes in pending:
        message_id = wire.next_id()
        sent.append((message_id, dn))
        error = missing_values(dn, attributes)
        if error is not None:
            refused[message_id] = error
        else:
            requests.append(ber.message(message_id, ber.add_request(dn, attributes)))
        if len(sent) == count:
            break
    if requests:
        wire.send("add", sent[-1][1], b"".join(requests))


def transaction_fits(items: Sequence[Item]) -> bool:
    """Whether ``items`` may go in one transaction: several entries, each with all its values."""
    return len(items) > 1 and all(missing_values(dn, attrs) is None for dn, attrs in items)


def commit_together(wire: Wire, items: Sequence[Item]) -> bool:
    """Add ``items`` in one LDAP transaction (RFC 5805); whether it was committed.

    False, with nothing added, when the server refuses to start the transaction, refuses an
    add as it arrives (the transaction is then abandoned) or one at commit time (slapd then
    undoes them all). UnavailableError when the connection is lost: once the commit was
    asked for, the directory may hold every entry or none.
    """
    target = f"{items[0][0]} and {len(items) - 1} more (one transaction)"
    operations = [ber.add_request(dn, attributes) for dn, attributes in items]
    start = ber.extended_request(TRANSACTION_START)
    started = wire.exchange("add", target, start, ber.EXTENDED_RESPONSE)
    if started.code != SUCCESS:
        return False
    identifier = started.value or b""
    specification = ber.control(TRANSACTION_SPECIFICATION, True, identifier)
    sent = [(wire.next_id(), dn) for dn, _ in items]
    wire.send("add", target, b"".join(
        ber.message(message_id, operation, [specification])
        for (message_id, _), operation in zip(sent, operations, strict=True)
    ))  # fmt: skip
    early: dict[int, ber.Result] = {}
    # Every answer is read, even after a refusal: each was due.
    codes = [
        wire.answer("add", dn, message_id, ber.ADD_RESPONSE, early).code for message_id, dn in sent
    ]
    accepted = all(code == SUCCESS for code in codes)
    time.sleep(SETTLE_SECONDS)
    end = ber.extended_request(TRANSACTION_END, ber.end_transaction_value(accepted, identifier))
    ended = wire.exchange("add", target, end, ber.EXTENDED_RESPONSE)
    return accepted and ended.code == SUCCESS
