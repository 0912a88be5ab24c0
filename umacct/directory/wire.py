"""One LDAP connection and its messages: the socket, the message ids, the answers.

A ``Wire`` owns its socket from the moment it is opened (``connection.open_bound``) to its
unbind: no other code reads or writes it, and no other library shares it. Every request
is encoded by ``ber``; answers are read as they come and handed to the request they
answer, so that requests may overlap (a modify while a search streams its entries). A
message the server announces as larger than ``MAX_MESSAGE_BYTES`` closes the connection
before its body is read, and so do answers left unread beyond ``MAX_BACKLOG_BYTES``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from umacct.directory import ber
from umacct.directory.results import SUCCESS, result_error
from umacct.errors import InvalidInputError, UmacctError, UnavailableError

TRANSACTION_START = "1.3.6.1.1.21.1"
TRANSACTION_SPECIFICATION = "1.3.6.1.1.21.2"
TRANSACTION_END = "1.3.6.1.1.21.3"
START_TLS = "1.3.6.1.4.1.1466.20037"
SETTLE_SECONDS = 0.05
"""The pause between the last answer to a transaction's adds and the end of the transaction.

slapd 2.5 (txn_preop) answers an update sent under a transaction before the thread that
handled it is done with it, and ending the transaction frees every update: ended at once,
slapd can crash (a use after free, reproduced here on a loaded two-core machine). The pause
lets those threads finish; ``[directory] transactions = "off"`` avoids the question.
"""
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The largest answer accepted: far above any entry of an accounts directory (a photo is a
few KiB), far below what would exhaust the machine's memory."""
MAX_BACKLOG_BYTES = 64 * 1024 * 1024
"""The most answers kept for requests that are not being read (the entries a search sends
while the caller waits for a modify): a server that ignores the paging control cannot make
the tool hold a whole directory."""
SEND_CHUNK = 25
"""Pipelined adds go to the server this many to a write, so that it works on the first ones
while the client encodes the next (one write of a whole window left it idle meanwhile)."""
_RECEIVE_BYTES = 65536
_MAX_MESSAGE_ID = 2**31 - 1
_T = TypeVar("_T")

if TYPE_CHECKING:
    import ssl

Item = tuple[str, Mapping[str, Sequence[str]]]
"""An entry to add: its DN and its attributes."""
RawEntry = tuple[str, dict[str, list[bytes]]]
"""An entry found: its DN and its attributes as sent (name -> raw values)."""


@dataclass(frozen=True)
class AddResult:
    """What became of one entry of ``Directory.add_many``: ``error`` is None when it was added."""

    dn: str
    error: UmacctError | None = None


@dataclass
class SearchEnd:
    """How one search request ended: its SearchResultDone and the continuation references."""

    done: ber.Message | None = None
    references: list[tuple[str, ...]] = field(default_factory=list)
    """One tuple per continuation reference: URLs of the same part of the tree."""


class Wire:
    """One connection to one server: the only code that reads or writes its socket."""

    def __init__(self, sock: socket.socket, url: str) -> None:
        self._socket: socket.socket | None = sock
        self.url = url
        self._buffer = bytearray()
        self._queues: dict[int, deque[ber.Message]] = {}
        """The answers received for each request still due, not yet read."""
        self._backlog = 0
        """The bytes of those answers."""
        self._last_id = 0
        self._abandoned: set[int] = set()
        """Requests abandoned: whatever the server still sends for them is dropped."""

    @property
    def is_open(self) -> bool:
        """Whether the connection can still be used."""
        return self._socket is not None

    @property
    def tls_version(self) -> str | None:
        """The TLS version in use (``TLSv1.3``...), None in cleartext."""
        version = getattr(self._socket, "version", None)  # an ssl.SSLSocket's
        return version() if callable(version) else None

    def next_id(self) -> int:
        """A message id never used before on this connection; its answers are awaited."""
        if self._last_id >= _MAX_MESSAGE_ID:
            raise self.lost("request", self.url, "message ids exhausted")
        self._last_id += 1
        self._queues[self._last_id] = deque()
        return self._last_id

    def finished(self, message_id: int) -> None:
        """No more answer is due for ``message_id``."""
        for message in self._queues.pop(message_id, ()):
            self._backlog -= len(message.raw)

    def set_timeout(self, seconds: float) -> None:
        """How long each wait for the server may last from now on."""
        if self._socket is not None:
            self._socket.settimeout(seconds)

    def start_tls(self, context: ssl.SSLContext, host: str) -> None:
        """Ask for StartTLS (RFC 4511, 4.14), then secure the socket; TlsRefused on failure."""
        from umacct.directory.tls import handshake  # ssl is loaded only where TLS is used

        started = self.exchange(
            "StartTLS with", host, ber.extended_request(START_TLS), ber.EXTENDED_RESPONSE
        )
        if started.code != SUCCESS:
            raise self.lost("StartTLS with", host, f"refused: {started.diagnostic or started.code}")
        if self._buffer or self._backlog:  # cleartext sent to pass for protected data
            raise self.lost("StartTLS with", host, "data received before the TLS handshake")
        sock, self._socket = self._socket, None
        if sock is not None:
            self._socket = handshake(sock, context, host)

    def close(self) -> None:
        """Unbind (without waiting: no answer comes) and close; safe to call twice."""
        sock, self._socket = self._socket, None
        self._forget()
        if sock is None:
            return
        with contextlib.suppress(OSError, ValueError):
            sock.sendall(ber.message(self._last_id + 1, ber.UNBIND))
        with contextlib.suppress(OSError):
            sock.close()

    def lost(self, operation: str, target: str, why: object) -> UnavailableError:
        """Close the connection (it cannot be trusted any more) and describe why.

        Answers already received stay readable (``next_message``): a request they answer
        is known to be done, which pipelined modifies need to know after a loss.
        """
        sock, self._socket = self._socket, None
        self._buffer.clear()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        return UnavailableError(f"{operation} {target}: connection to {self.url} lost: {why}")

    def _forget(self) -> None:
        self._buffer.clear()
        self._queues.clear()
        self._backlog = 0

    def send(self, operation: str, target: str, data: bytes) -> None:
        """Write ``data`` (whole LDAP messages) to the server."""
        if self._socket is None:
            raise self.lost(operation, target, "already closed")
        try:
            self._socket.sendall(data)
        except OSError as exc:
            raise self.lost(operation, target, exc) from None

    def send_requests(
        self, operation: str, target: str, requests: Sequence[tuple[bytes, Sequence[bytes]]]
    ) -> tuple[list[int], UnavailableError | None]:
        """Number ``requests`` (protocolOps and their controls) and send them in one write.

        Returns their message ids, in order, and the loss of the connection if the write
        failed (then some requests may have left, and none can be answered any more).
        """
        ids = [self.next_id() for _ in requests]
        data = b"".join(
            ber.message(message_id, request, controls)
            for message_id, (request, controls) in zip(ids, requests, strict=True)
        )
        try:
            self.send(operation, target, data)
        except UnavailableError as error:
            return ids, error
        return ids, None

    def abandon(self, message_id: int) -> None:
        """Ask the server to stop working on ``message_id`` (no answer comes; RFC 4511, 4.11)."""
        self.finished(message_id)
        self._abandoned.add(message_id)
        if self._socket is None:
            return
        abandon_id = self.next_id()
        self.finished(abandon_id)  # an abandon has no answer
        try:
            self._socket.sendall(ber.message(abandon_id, ber.abandon_request(message_id)))
        except OSError:
            self.lost("abandon", str(message_id), "write failed")

    def _fill(self, operation: str, target: str) -> None:
        """Wait for data from the server and queue the complete messages it holds."""
        if self._socket is None:
            raise self.lost(operation, target, "already closed")
        try:
            data = self._socket.recv(_RECEIVE_BYTES)
        except OSError as exc:
            raise self.lost(operation, target, exc) from None
        if not data:
            raise self.lost(operation, target, "closed by the server")
        self._buffer += data
        for raw in ber.split_messages(self._buffer):
            self._dispatch(
                operation, target, self.decoded(operation, target, ber.decode_message, raw)
            )
        size = self.decoded(operation, target, ber.message_size, self._buffer)
        if size is not None and size > MAX_MESSAGE_BYTES:
            raise self.lost(
                operation,
                target,
                f"an answer of {size} bytes, over the limit of {MAX_MESSAGE_BYTES} bytes",
            )
        if self._backlog > MAX_BACKLOG_BYTES:
            raise self.lost(
                operation,
                target,
                f"more than {MAX_BACKLOG_BYTES} bytes of answers sent ahead of the one awaited "
                "(does the server ignore the paging control?)",
            )

    def _dispatch(self, operation: str, target: str, message: ber.Message) -> None:
        """Hand ``message`` to the request it answers."""
        if message.message_id == 0:  # an unsolicited notice: the server is closing
            notice = self.decoded(operation, target, ber.decode_result, message)
            why = notice.diagnostic or f"result {notice.code}"
            raise self.lost(operation, target, f"the server ended the session: {why}")
        queue = self._queues.get(message.message_id)
        if queue is not None:
            queue.append(message)
            self._backlog += len(message.raw)
        elif message.message_id not in self._abandoned:
            raise self.lost(
                operation, target, f"an answer to request {message.message_id}, never sent"
            )

    def next_message(self, operation: str, target: str, message_id: int) -> ber.Message:
        """The next message answering ``message_id``; others are kept for their requests."""
        queue = self._queues.get(message_id)
        if queue is None:
            raise self.lost(operation, target, f"request {message_id} is not awaited")
        while not queue:
            self._fill(operation, target)
        message = queue.popleft()
        self._backlog -= len(message.raw)
        return message

    def decoded(self, operation: str, target: str, decode: Callable[[Any], _T], data: Any) -> _T:
        """``decode(data)``; an answer that does not decode ends the connection."""
        try:
            return decode(data)
        except (IndexError, ValueError) as exc:
            raise self.lost(operation, target, f"unreadable answer: {exc}") from None

    def answer(self, operation: str, target: str, message_id: int, tag: int) -> ber.Result:
        """Wait for the result of ``message_id``, an answer of type ``tag``."""
        message = self.next_message(operation, target, message_id)
        self.finished(message_id)
        if message.tag != tag:
            raise self.lost(operation, target, f"unexpected answer to request {message_id}")
        return self.decoded(operation, target, ber.decode_result, message)

    def exchange(
        self, operation: str, target: str, request: bytes, tag: int, controls: Sequence[bytes] = ()
    ) -> ber.Result:
        """Send one request (a protocolOp) and wait for its result, an answer of type ``tag``."""
        message_id = self.next_id()
        self.send(operation, target, ber.message(message_id, request, controls))
        return self.answer(operation, target, message_id, tag)

    def search(
        self, target: str, request: bytes, controls: Sequence[bytes], end: SearchEnd
    ) -> Generator[RawEntry, None, None]:
        """Send one SearchRequest; yield each entry (DN, raw attributes) as it arrives.

        Only the message being decoded is held, whatever the number of entries (a server
        that ignores the paging control sends them all at once). ``end`` receives the
        SearchResultDone and the continuation references. Stopped before the end, the
        request is abandoned, so the server stops sending and the connection stays usable.
        """
        message_id = self.next_id()
        self.send("search", target, ber.message(message_id, request, controls))
        finished = False
        try:
            while True:
                message = self.next_message("search", target, message_id)
                if message.tag == ber.SEARCH_ENTRY:
                    yield self.decoded("search", target, ber.decode_entry, message)
                elif message.tag == ber.SEARCH_DONE:
                    finished = True
                    self.finished(message_id)
                    end.done = message
                    return
                elif message.tag == ber.SEARCH_REFERENCE:
                    end.references.append(
                        self.decoded("search", target, ber.decode_references, message)
                    )
                elif message.tag != ber.INTERMEDIATE_RESPONSE:
                    raise self.lost("search", target, f"unexpected answer (tag {message.tag:#x})")
        finally:
            if not finished and self.is_open:
                self.abandon(message_id)


# --- many adds at once ----------------------------------------------------------------------------


def _add_error(dn: str, result: ber.Result) -> UmacctError | None:
    return None if result.code == SUCCESS else result_error("add", dn, result.as_mapping())


def missing_values(dn: str, attributes: Mapping[str, Sequence[str]]) -> UmacctError | None:
    """The error of an add whose attributes include one without values, or None."""
    empty = [name for name, values in attributes.items() if not values]
    return InvalidInputError(f"add {dn}: no value for {', '.join(empty)}") if empty else None


class AddsSent(Protocol):
    """Adds on their way: iterate for one result per item, in order; ``close()`` when done."""

    def __iter__(self) -> Iterator[AddResult]: ...

    def __next__(self) -> AddResult: ...

    def close(self) -> None:
        """Wait for the answers still due."""


class PipelinedAdds:
    """Adds with ``window`` requests in flight; iterate for one result per item, in order.

    The first ``window`` requests leave when it is made: the caller may do other work while
    the server adds them (other requests on the wire in between get their own answers),
    then read the results; the later requests leave as the answers come. An entry with an
    attribute without values is refused here, without a request. ``close()`` (also what
    stopping early must end with) waits for the answers already due, so that the
    connection stays usable; ``added`` is called with the attributes of each entry added.
    """

    def __init__(
        self,
        wire: Wire,
        items: Iterable[Item],
        window: int,
        added: Callable[[Mapping[str, Sequence[str]]], None] | None = None,
    ) -> None:
        self._wire = wire
        self._pending = iter(items)
        self._window = window
        self._added = added
        self._sent: deque[tuple[int, str, Mapping[str, Sequence[str]]]] = deque()
        self._refused: dict[int, UmacctError] = {}
        self._send(window)

    def __iter__(self) -> Iterator[AddResult]:
        return self

    def __next__(self) -> AddResult:
        if not self._sent:
            raise StopIteration
        message_id, dn, attributes = self._sent[0]
        error = self._refused.pop(message_id, None) or _add_error(
            dn, self._wire.answer("add", dn, message_id, ber.ADD_RESPONSE)
        )
        self._sent.popleft()
        if len(self._sent) < self._window // 2:
            self._send(self._window - len(self._sent))
        if error is None and self._added is not None:
            self._added(attributes)
        return AddResult(dn, error)

    def close(self) -> None:
        """Wait for the answers due (none is read twice); nothing more is sent."""
        while self._sent:
            message_id, dn, _ = self._sent.popleft()
            if self._refused.pop(message_id, None) is None:
                self._wire.answer("add", dn, message_id, ber.ADD_RESPONSE)

    def _send(self, count: int) -> None:
        """Encode up to ``count`` adds and send them, ``SEND_CHUNK`` to a write.

        The server starts on the first adds while the next ones are encoded.
        """
        wire, sent = self._wire, self._sent
        in_flight = len(sent) + count
        requests = []
        for dn, attributes in self._pending:
            message_id = wire.next_id()
            sent.append((message_id, dn, attributes))
            error = missing_values(dn, attributes)
            if error is not None:
                self._refused[message_id] = error
                wire.finished(message_id)  # never sent: no answer is due
            else:
                requests.append(ber.message(message_id, ber.add_request(dn, attributes)))
                if len(requests) == SEND_CHUNK:
                    wire.send("add", dn, b"".join(requests))
                    requests = []
            if len(sent) == in_flight:
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
    # Every answer is read, even after a refusal: each was due.
    codes = [wire.answer("add", dn, message_id, ber.ADD_RESPONSE).code for message_id, dn in sent]
    accepted = all(code == SUCCESS for code in codes)
    time.sleep(SETTLE_SECONDS)
    end = ber.extended_request(TRANSACTION_END, ber.end_transaction_value(accepted, identifier))
    ended = wire.exchange("add", target, end, ber.EXTENDED_RESPONSE)
    return accepted and ended.code == SUCCESS
