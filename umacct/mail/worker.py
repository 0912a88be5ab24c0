"""The mail process: a large batch's messages composed and sent on a core of their own.

A bulk intake is bound by this process's own CPU (planning, encoding the adds, the audit)
and composing thousands of messages is as much again; in a thread it waits for the same
interpreter lock. ``MailWorker`` starts ``python -m umacct.mail.worker`` once a run and
hands it each large batch over a pipe; the child composes and sends with a ``Sender`` of
its own (the outbox's files or the relay's connections are the child's) and answers with
what became of each message. Everything else stays here: the queue, the results, the
circuit breaker of the run (passed along with each batch, opened by what comes back).

A child that dies or answers nonsense leaves its batch queued (``relay_failure``), as a
relay that went away would, and the next batches are sent by this process again. Only
the messages the child handed over before it died can then go twice, once more by the
flush: the risk of a process killed between the relay's acceptance and its record.

Both ends of the pipes are this program (the child is started here, with nothing but these
pipes), so what they carry is pickled.
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import subprocess
import sys
import traceback
from dataclasses import replace
from typing import IO, Any

from umacct.clock import Clock
from umacct.config import Config
from umacct.mail.sender import Delivery, Sender
from umacct.mail.transport import transport_from_config

_STOP_WAIT = 10.0
"""Seconds the child has to finish after its last batch before it is killed."""


class MailWorker:
    """The mail process, started at once; ``deliver`` sends it a batch and waits."""

    def __init__(self, config: Config, clock: Clock, smtp_password: str | None) -> None:
        # -P: the working folder is not put on the child's import path.
        self._process = subprocess.Popen(
            [sys.executable, "-P", "-m", "umacct.mail.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        self._failure: str | None = None
        self._post((config, clock, smtp_password))

    @property
    def usable(self) -> bool:
        """False once the child died or broke its protocol (this process sends instead)."""
        return self._failure is None

    def deliver(self, deliveries: list[Delivery], sender: Sender) -> None:
        """Have the child compose and send ``deliveries``; fill each in with its outcome.

        ``sender`` is this process's: its breaker goes to the child, and a relay failure
        the child met comes back to it.
        """
        requests = [replace(each.request, params=dict(each.request.params)) for each in deliveries]
        answers: Any = None
        if self._failure is None:
            self._post((requests, sender.relay_failure))
            answers = self._receive()
        if isinstance(answers, tuple) and answers[:1] == ("crash",):
            raise RuntimeError(f"the mail process failed:\n{answers[1]}")
        if not _well_formed(answers, len(deliveries)):
            self._fail(self._failure or "it answered something else than the batch's outcomes")
            for delivery in deliveries:  # queued: a later flush composes and checks them again
                delivery.recipient = delivery.request.to
                delivery.relay_failure = f"the mail process stopped: {self._failure}"
            return
        for delivery, (recipient, message_id, relay_failure, error) in zip(
            deliveries, answers, strict=True
        ):
            delivery.recipient, delivery.message_id = recipient, message_id
            delivery.relay_failure, delivery.error = relay_failure, error
            if relay_failure is not None:
                sender.open_breaker(relay_failure)

    def close(self) -> None:
        """Tell the child there is no more mail; wait for it (then kill it) and reap it."""
        stdin, stdout = self._process.stdin, self._process.stdout
        for stream in (stdin, stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            self._process.wait(_STOP_WAIT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _post(self, value: object) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            pickle.dump(value, stdin, protocol=pickle.HIGHEST_PROTOCOL)
            stdin.flush()
        except (OSError, ValueError) as exc:
            self._fail(f"cannot write to it: {exc}")

    def _receive(self) -> Any:
        stdout = self._process.stdout
        assert stdout is not None
        if self._failure is not None:
            return None
        try:
            return pickle.load(stdout)  # noqa: S301 (our own child)
        except EOFError:
            self._fail("it ended")
        except (OSError, ValueError, pickle.UnpicklingError) as exc:
            self._fail(f"cannot read its answer: {exc}")
        return None

    def _fail(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
            self._process.kill()


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
                deliveries = sender.deliver([Delivery(request) for request in requests])
                answer = [
                    (each.recipient, each.message_id, each.relay_failure, each.error)
                    for each in deliveries
                ]
            except Exception:  # told to the parent, which raises it where a thread would
                answer = ("crash", traceback.format_exc())
            pickle.dump(answer, outbound, protocol=pickle.HIGHEST_PROTOCOL)
            outbound.flush()


def main() -> None:
    """``python -m umacct.mail.worker``: started by ``MailWorker``, never by hand."""
    # Ctrl-C reaches the whole process group: the parent decides, and waits for this batch.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inbound, outbound = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write on the answers' pipe
    serve(inbound, outbound)


if __name__ == "__main__":
    main()
