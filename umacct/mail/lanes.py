"""A batch's messages over several relay connections at once, a person's always on one.

Each lane is a transport of its own (one SMTP connection, reused for many messages) with a
thread that sends the messages given to it, in order. A person's messages (same key) all go
to the lane their first one went to, so they reach the relay in the order given. Every
message's outcome is its own: the ``done`` callback of each gets None (sent) or the error.

The relay's limits are respected: a lane other than the first whose very first connection
fails (a relay that allows fewer connections per client answers 421 to the extra ones)
withdraws before it sent anything, and hands its messages, still unsent, in order, to the
first lane; the first lane's failures are the relay's, as with a single connection.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from umacct.errors import UmacctError, UnavailableError

if TYPE_CHECKING:
    from umacct.mail.compose import OutgoingMessage

Done = Callable[[UmacctError | None], None]
"""Told how one message went: None when the relay took it, else why not."""


class LaneTransport(Protocol):
    """What a lane sends through: one connection, counting those it opened."""

    connections_opened: int

    def send(self, message: OutgoingMessage) -> None:
        """Deliver one message or raise an UmacctError subclass."""
        ...


@dataclass(frozen=True)
class _Job:
    key: str
    message: OutgoingMessage
    done: Done


@dataclass
class _Lane:
    index: int
    transport: LaneTransport
    jobs: queue.SimpleQueue[_Job | None] = field(default_factory=queue.SimpleQueue)
    thread: threading.Thread | None = None
    withdrawn: bool = False


class LaneSender:
    """Sends over ``transports`` at once; a context manager whose exit waits for all.

    ``stopped`` is asked before each message: a reason (the relay failed for this run) makes
    the remaining messages fail with it, unsent, as the single connection's breaker does.
    """

    def __init__(
        self, transports: Sequence[LaneTransport], stopped: Callable[[], str | None]
    ) -> None:
        self._lanes = [_Lane(index, transport) for index, transport in enumerate(transports)]
        self._stopped = stopped
        self._routes: dict[str, _Lane] = {}
        self._next = 0
        self._lock = threading.Lock()
        self._crash: BaseException | None = None
        # The other lanes wait until the first one tried its first message: the first
        # connection is then the relay's first, which a per-client limit never refuses.
        self._first_tried = threading.Event()

    def submit(self, key: str, message: OutgoingMessage, done: Done) -> None:
        """Queue one message on the lane of ``key`` (a new key: the next open lane)."""
        with self._lock:
            lane = self._routes.get(key)
            if lane is None:
                lane = self._open_lane()
                self._routes[key] = lane
            lane.jobs.put(_Job(key, message, done))
            if lane.thread is None:
                name = f"umacct-mail-{lane.index + 1}" if lane.index else "umacct-mail-lane"
                lane.thread = threading.Thread(
                    target=self._work, args=(lane,), name=name, daemon=True
                )
                lane.thread.start()

    def _open_lane(self) -> _Lane:
        for _ in self._lanes:
            lane = self._lanes[self._next % len(self._lanes)]
            self._next += 1
            if not lane.withdrawn:
                return lane
        return self._lanes[0]

    def _work(self, lane: _Lane) -> None:
        try:
            if lane.index:
                self._first_tried.wait()
            self._send_all(lane)
        except BaseException as exc:  # re-raised by the caller's thread on exit
            self._crash = exc
        finally:
            if not lane.index:
                self._first_tried.set()

    def _send_all(self, lane: _Lane) -> None:
        while (job := lane.jobs.get()) is not None:
            try:
                reason = self._stopped()
                if reason is not None:
                    job.done(UnavailableError(reason))
                    continue
                try:
                    lane.transport.send(job.message)
                except UmacctError as exc:
                    if lane.index and lane.transport.connections_opened == 0:
                        self._withdraw(lane, job)
                        return
                    job.done(exc)
                else:
                    job.done(None)
            finally:
                if not lane.index:
                    self._first_tried.set()

    def _withdraw(self, lane: _Lane, failed: _Job) -> None:
        """The lane could not connect at all: its messages, unsent, go to the first lane."""
        first = self._lanes[0]
        with self._lock:
            lane.withdrawn = True
            for key, routed in self._routes.items():
                if routed is lane:
                    self._routes[key] = first
            moved = [failed]
            while True:
                try:
                    job = lane.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    moved.append(job)
            for job in moved:
                first.jobs.put(job)
            if first.thread is None:
                first.thread = threading.Thread(
                    target=self._work, args=(first,), name="umacct-mail-lane", daemon=True
                )
                first.thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # The other lanes end first: one that withdraws hands its messages to the first,
        # which is told to end only after them.
        for lane in [*self._lanes[1:], self._lanes[0]]:
            with self._lock:
                lane.jobs.put(None)
                thread = lane.thread
            if thread is not None:
                thread.join()
        if self._crash is not None and exc is None:
            raise self._crash
