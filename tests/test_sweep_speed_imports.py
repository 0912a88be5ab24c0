"""The sweep loads only what it needs at start: the intake's parser is loaded where used.

``umacct.intake`` (the CSV reader, its name checks and what they pull: about 6 ms of a
nightly sweep's start) serves a sweep only on rare paths (a recovery or forwarding address
checked): ``umacct.services.addresses`` imports it there, ``umacct.services.profiles``
for its annotations only.
"""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_sweep_does_not_load_the_intake() -> None:
    probe = (
        "import sys, umacct.services.sweep, umacct.services.addresses, umacct.services.profiles;"
        "print('umacct.intake' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "False"


def test_the_address_checks_still_use_the_intakes_rules() -> None:
    from umacct.intake import validate_email
    from umacct.services import addresses

    assert "validate_email" not in vars(addresses)
    assert validate_email("Someone@Example.ORG") == "Someone@example.org"


def test_the_sweep_and_the_intake_leave_composing_mail_to_the_mail_process() -> None:
    # The email package and the templates' code cost a run that composes no mail itself
    # about 40 ms: the mail process composes the large batches, and every batch after the
    # first large one; the others compose on first use (``Sender.compose``).
    probe = (
        "import sys, umacct.services.sweep, umacct.services.create, umacct.mail.mailer,"
        " umacct.mail.transport, umacct.mail.smtp, umacct.mail.lanes;"
        "print(sorted(m for m in ('umacct.mail.compose', 'email.policy') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == "[]"
