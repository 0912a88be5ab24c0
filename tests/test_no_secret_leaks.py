"""No password or token leaks: a whole account life through the CLI, every output grepped.

The run creates a person (the activation link goes through a real SMTP server), activates,
resets, changes the password, sets a recovery address and a forward (each confirmed by
link), suspends, extends, sweeps, purges and restores another account, and reads everything
back (show, explain, audit, list, config show, doctor, mail list), with ``--debug`` on a
failing command run as a real process so that a traceback is printed. Every stdout and
stderr, the audit log, the state store, the mail queue and the archives are then searched
for each password and token used. The mails themselves are the delivery channel and are
not searched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest
from command_line import umacct
from days import TODAY, days, month_end
from people import add_person, mail_relay, token_in_mail
from smtp_fixtures import SmtpTestServer

from umacct.config import load_config
from umacct.localdir import LocalDirectory
from umacct.services.runtime import Runtime

__all__ = ["mail_relay"]

pytestmark = pytest.mark.usefixtures("directory_clean")

PERSONAL = "lea.secret@example.net"
PASSWORDS = (
    "velvet otter climbs 7 ladders",
    "quiet harbour lamps at dawn 93",
    "amber kestrel folds paper maps 58",
    "wrong guess of a passphrase 11",
)
EXPIRED_LONG_AGO = ["{COMPTE}I:SupannExpire:20250101:", "{MAIL}I:SupannExpire:20250101:"]


@dataclass
class Run:
    """Every command line used and everything the tool printed."""

    argvs: list[list[str]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def cli(self, *args: str, stdin: str | None = None, expect: int = 0) -> str:
        """Run the CLI in this process, on today's clock; keep argv and outputs; return stdout."""
        self.argvs.append(list(args))
        code, out, err = umacct(*args, stdin=stdin, catch_exceptions=False)
        self.outputs += [out, err]
        assert code == expect, (args, out, err)
        return out

    def process(self, *args: str, stdin: str, expect: int) -> str:
        """Run the tool as a real process (for a real traceback with --debug); return stderr."""
        self.argvs.append(list(args))
        done = subprocess.run(
            [sys.executable, "-m", "umacct", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env=dict(os.environ),
            check=False,
        )
        self.outputs += [done.stdout, done.stderr]
        assert done.returncode == expect, done.stderr
        return done.stderr


@pytest.fixture
def life(
    on: Callable[[date], Runtime], mail_relay: SmtpTestServer, slapd: LocalDirectory
) -> Iterator[tuple[Run, list[str], Path]]:
    """The whole life run once: (the run, the secrets it used, the data dir)."""
    runtime = on(TODAY)
    gone = add_person(runtime, "max.gone", profile="vacataire", state_values=EXPIRED_LONG_AGO)
    run = Run()
    tokens: list[str] = []
    activate, reset, change, wrong = PASSWORDS

    created = run.cli(
        "--json", "create", "--given-name", "Léa", "--surname", "Secret",
        "--profile", "titulaire", "--personal-email", PERSONAL,
    )  # fmt: skip
    identifier = "lea.secret@umontpellier.fr"
    assert identifier in created
    tokens.append(token_in_mail(mail_relay, PERSONAL, "activation"))
    run.cli("activate", "--token", tokens[-1], "--password-stdin", stdin=activate + "\n")
    run.cli("reset", identifier)
    tokens.append(token_in_mail(mail_relay, PERSONAL, "reset"))
    run.cli("--json", "reset", "--token", tokens[-1], "--password-stdin", stdin=reset + "\n")
    run.cli("passwd", identifier, "--password-stdin", stdin=f"{reset}\n{change}\n")
    run.cli("set-recovery", identifier, "lea.rescue@example.net")
    tokens.append(token_in_mail(mail_relay, "lea.rescue@example.net", "confirm"))
    run.cli("set-recovery", "--token", tokens[-1])
    run.cli("redirect", identifier, "lea.elsewhere@example.net")
    tokens.append(token_in_mail(mail_relay, "lea.elsewhere@example.net", "confirm"))
    run.cli("redirect", "--token", tokens[-1])
    run.cli("reset", "--self-service", identifier)
    tokens.append(token_in_mail(mail_relay, "lea.rescue@example.net", "reset"))
    left = month_end(-1).isoformat()  # the end of last month: the grace period starts at once
    run.cli("suspend", identifier, "--end-of-activity", left, "--reason", "left")
    run.cli("extend", identifier, "--reason", "request 12")
    run.cli("sweep")
    run.cli("--json", "sweep", "--as-of", days(50).isoformat(), "--dry-run")
    run.cli("purge", gone.identifier, "--yes", "--reason", "left")
    run.cli("restore", gone.identifier, "--reason", "mistake")
    for read in (
        ["show", identifier], ["--json", "show", identifier], ["explain", identifier],
        ["audit"], ["--json", "audit"], ["list", "--format", "csv"], ["config", "show"],
        ["--json", "config", "show"], ["doctor"], ["mail", "list"],
    ):  # fmt: skip
        run.cli(*read, expect=1 if read == ["doctor"] and _doctor_fails() else 0)
    # Failing commands, with a traceback: a used token, then a wrong current password.
    run.process("--debug", "activate", "--token", tokens[0], "--password-stdin",
                stdin=wrong + "\n", expect=1)  # fmt: skip
    run.process("--debug", "passwd", identifier, "--password-stdin",
                stdin=f"{wrong}\n{activate}\n", expect=1)  # fmt: skip
    run.cli("passwd", identifier, "--password-stdin", stdin=f"{wrong}\n{activate}\n", expect=77)
    secrets = [*PASSWORDS, *tokens, slapd.bind_password]
    yield run, secrets, Path(load_config(os.environ["UMACCT_CONFIG"]).paths.data_dir)


def _doctor_fails() -> bool:
    """Whether ``doctor`` reports a failed check here (it exits 1 then, by design)."""
    return umacct("doctor")[0] == 1


def stored_bytes(data_dir: Path) -> dict[str, bytes]:
    """Every file the tool keeps: audit log, state store, mail queue, archives."""
    return {
        str(path.relative_to(data_dir)): path.read_bytes()
        for path in sorted(data_dir.rglob("*"))
        if path.is_file()
    }


def test_sec06_sec10_no_secret_in_any_output_log_store_queue_or_trace(
    life: tuple[Run, list[str], Path],
) -> None:
    run, secrets, data_dir = life
    assert any("Traceback" in output for output in run.outputs), "no traceback was printed"
    places = {f"output {index}": text for index, text in enumerate(run.outputs)}
    files = stored_bytes(data_dir)
    assert any(name.startswith("archive") for name in files)
    assert "audit.jsonl" in files
    for secret in secrets:
        for where, text in places.items():
            assert secret not in text, f"a secret appears in {where}: {text[:200]!r}"
        for name, data in files.items():
            assert secret.encode() not in data, f"a secret appears in {name}"


def test_sec10_no_password_in_any_argv(life: tuple[Run, list[str], Path]) -> None:
    run, _, _ = life
    for argv in run.argvs:
        for password in PASSWORDS:
            assert all(password not in part for part in argv), argv
