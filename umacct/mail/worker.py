"""The mail process: a large batch's messages composed and sent on a core of their own.

A bulk intake is bound by this process's own CPU (planning, encoding the adds, the audit)
and composing thousands of messages is as much again; in a thread it waits for the same
interpreter lock. ``MailWorker`` starts ``python -m umacct.mail.worker`` once a run and
hands it each large batch over a pipe as it comes, behind those not answered yet; the
child composes and sends with a ``Sender`` of its own (the outbox's files or the relay's
connections are the child's) and answers, in order, with what became of each message.
Everything else stays here: the queue, the results, the circuit breaker of the run
(passed along with each batch, opened by what comes back).

A child that dies or answers nonsense leaves the batches it did not answer queued
(``relay_failure``), as a relay that went away would, and the next batches are sent by
this process again. Only the messages the child handed over before it died can then go
twice, once more by the flush: the risk of a process killed between the relay's
acceptance and its record.

Both ends of the pipes are this program (the child is started here, with nothing but these
pipes), so what they carry is pickled.
"""

from __future__ import annotations

import collections
import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from typing import IO

from umacct.clock import Clock
from umacct.config import Config
from umacct.mail.sender import Delivery, MailRequest, Sender
from umacct.mail.transport import transport_from_config

_STOP_WAIT = 10.0
"""Seconds the child has to finish after its last batch before it is killed."""


class Handed:
    """A batch handed to the mail process: its deliveries are filled in once it answered."""

    def __init__(self, deliveries: list[Delivery], sender: Sender) -> None:
        self.deliveries = deliveries
        self.sender = sender
        self.crash: str | None = None
        """The child's traceback when it failed on this batch (a bug, not a relay's failure)."""
        self._answered = threading.Event()

    @property
    def done(self) -> bool:
        """Whether the outcomes are in."""
        return self._answered.is_set()

    def wait(self) -> None:
        """Wait for the outcomes."""
        self._answered.wait()

    def answer(self, answers: object) -> None:
        """Fill the deliveries in with the child's answer (or as queued, if it made none)."""
        if _is_crash(answers):
            self.crash = str(answers[1])  # type: ignore[index]
        elif isinstance(answers, list):
            for delivery, (recipient, message_id, relay_failure, error) in zip(
                self.deliveries, answers, strict=True
            ):
                delivery.recipient, delivery.message_id = recipient, message_id
                delivery.relay_failure, delivery.error = relay_failure, error
                if relay_failure is not None:
                    self.sender.open_breaker(relay_failure)
        self._answered.set()

    def stopped(self, reason: str) -> None:
        """The child is gone: every message queued (a later flush composes and checks it)."""
        for delivery in self.deliveries:
            delivery.recipient = delivery.request.to
            delivery.relay_failure = f"the mail process stopped: {reason}"
        self._answered.set()


class MailWorker:
    """The mail process, started at once; ``submit`` hands it a batch without waiting.

    Batches go down the pipe as they come and their answers come back in the same order;
    a thread of this process reads them and fills each batch in.
    """

    def __init__(self, config: Config, clock: Clock, smtp_password: str | None) -> None:
        # -P: the working folder is not put on the child's import path.
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", "umacct.mail.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self._failure: str | None = None
        self._lock = threading.Lock()
        self._waiting: collections.deque[Handed] = collections.deque()
        self._reader: threading.Thread | None = None
        self._post((config, clock, smtp_password))

    @property
    def usable(self) -> bool:
        """False once the child died or broke its protocol (this process sends instead)."""
        return self._failure is None

    def submit(self, deliveries: list[Delivery], sender: Sender) -> Handed:
        """Hand ``deliveries`` to the child, behind the batches it has not answered yet.

        ``sender`` is this process's: its breaker goes along, and a relay failure the child
        meets comes back to it.
        """
        handed = Handed(deliveries, sender)
        requests = [_fields(each.request) for each in deliveries]
        with self._lock:
            if self._failure is None:
                self._post((requests, sender.relay_failure))
            if self._failure is not None:
                handed.stopped(self._failure)
                return handed
            self._waiting.append(handed)
            if self._reader is None:
                self._reader = threading.Thread(
                    target=self._read_answers, name="umacct-mail-answers", daemon=True
                )
                self._reader.start()
        return handed

    def _read_answers(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        while True:
            try:
                answers: object = pickle.load(stdout)  # noqa: S301 (our own child)
            except EOFError:
                self._end("it ended")
                return
            except (OSError, ValueError, pickle.UnpicklingError) as exc:
                self._end(f"cannot read its answer: {exc}")
                return
            with self._lock:
                handed = self._waiting.popleft() if self._waiting else None
            if handed is None or not (
                _well_formed(answers, len(handed.deliveries)) or _is_crash(answers)
            ):
                self._end("it answered something else than a batch's outcomes", handed)
                return
            handed.answer(answers)

    def _end(self, reason: str, handed: Handed | None = None) -> None:
        """No more answers: what still waits is queued (nothing, after a normal close)."""
        with self._lock:
            left = [*([handed] if handed else []), *self._waiting]
            self._waiting.clear()
            if left:
                self._fail(reason)
        for each in left:
            each.stopped(reason)

    def close(self) -> None:
        """Tell the child there is no more mail; wait for it (then kill it) and reap it."""
        stdin = self._process.stdin
        if stdin is not None:
            with contextlib.suppress(OSError):
                stdin.close()
        try:
            self._process.wait(_STOP_WAIT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._reader is not None:
            self._reader.join()
        if self._process.stdout is not None:
            self._process.stdout.close()

    def _post(self, value: object) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            pickle.dump(value, stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()
        except (OSError, ValueError) as exc:
            self._fail(f"cannot write to it: {exc}")

    def _fail(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
            self._process.kill()


def _fields(request: MailRequest) -> tuple[object, ...]:
    """A request as plain values (pickled many times faster than the dataclass)."""
    return (request.account, request.kind, request.to, dict(request.params), request.link,
            request.link_purpose)  # fmt: skip


_CRASH = "crash"
"""The first item of the child's answer when it failed on a batch (then its traceback)."""


def _is_crash(answers: object) -> bool:
    return isinstance(answers, tuple) and answers[:1] == (_CRASH,)


def _well_formed(answers: object, count: int) -> bool:
    return (
        isinstance(answers, list)
        and len(answers) == count
        and all(isinstance(answer, tuple) and len(answer) == 4 for answer in answers)
    )


def serve(inbound: IO[bytes], outbound: IO[bytes]) -> None:
    """The child's side: read the settings, then answer each batch until the pipe closes."""
    config, clock, smtp_password = pickle.load(inbound)  # noqa: S301 (our parent)
    with transport_from_config(config, smtp_password, clock) as transport:
        sender = Sender(config, transport, clock)
        while True:
            try:
                requests, relay_failure = pickle.load(inbound)  # noqa: S301
            except EOFError:
                return
            if relay_failure is not None:
                sender.open_breaker(relay_failure)
            answer: object
            try:
                deliveries = sender.deliver([Delivery(MailRequest(*fields)) for fields in requests])
                answer = [
                    (each.recipient, each.message_id, each.relay_failure, each.error)
                    for each in deliveries
                ]
            except Exception:  # told to the parent, which raises it where a thread would
                answer = (_CRASH, traceback.format_exc())
            pickle.dump(answer, outbound, protocol=pickle.HIGHEST_PROTOCOL)
            outbound.flush()


def main() -> None:
    """``python -m umacct.mail.worker``: started by ``MailWorker``, never by hand."""
    # Ctrl-C reaches the whole process group: the parent decides, and waits for this batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbound, outbound = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write on the answers' pipe
    serve(inbound, outbound)
    # Every answer is written and the transport closed: the parent waits for this exit, so
    # the interpreter's teardown (tens of milliseconds) is skipped.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
