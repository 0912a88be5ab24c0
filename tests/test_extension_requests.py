"""Extension requests: the link of the expiry warning, auto and review, the helpdesk's commands.

A titulaire (12 months, extendable by 12) whose activity ended at the end of last month is
warned 30 days before the account closes; the warning carries the request's link. The
profile grants at once (``auto``, the default) or waits for ``umacct extension grant|refuse``
(``review``). Every grant goes through ``umacct extend``'s service: it renews, never stacks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from command_line import umacct
from days import month_end
from people import add_person, compte, day_after, mail_text, outbox_mails, read, rewrite_config
from test_state_support import Host, branch, on_host, two_hosts

from umacct.errors import InvalidInputError, RefusedError
from umacct.localdir.profiles import profiles_as_toml
from umacct.mail.dates import french_date
from umacct.policy import expiry_instant
from umacct.services.extensions import (
    extension_status,
    issue_extension_link,
    request_by_link,
    request_extension,
)
from umacct.services.runtime import Runtime
from umacct.services.sweep import SweepSummary, sweep
from umacct.state.extension_requests import GRANTED, PENDING, REFUSED, new_request
from umacct.store import SQLiteStore
from umacct.tokens import TokenPurpose

__all__ = ["branch", "on_host", "two_hosts"]

pytestmark = pytest.mark.usefixtures("directory_clean")

On = Callable[[date], Runtime]
END = month_end(-1)
GRACE = {"titulaire": 12, "vacataire": 6}
EXTENSION_LINK = re.compile(r"https://ent\.example\.org/extension\?token=([A-Za-z0-9_-]+)")
HELPDESK = "helpdesk@example.org"


def grace_end(profile: str = "titulaire") -> date:
    return month_end(-1 + GRACE[profile])


def warn_day(profile: str = "titulaire") -> date:
    """The day of the 30-day warning."""
    return day_after(grace_end(profile)) - timedelta(days=30)


def run(runtime: Runtime) -> list[tuple[str, str]]:
    summary = SweepSummary(runtime.today(), False)
    done = [(r.account, r.action) for r in sweep(runtime, summary)]
    assert summary.errors == []
    return done


def warned(on: On, uid: str, profile: str = "titulaire") -> tuple[Any, Runtime]:
    """A person whose activity ended last month, in grace, warned today (warn_day)."""
    person = add_person(on(END.replace(day=1)), uid, profile=profile, end_of_activity=END)
    assert run(on(day_after(END))) == [(person.identifier, "suspend")]
    runtime = on(warn_day(profile))
    assert run(runtime) == [(person.identifier, "warn")]
    return person, runtime


def extension_token(runtime: Runtime) -> str:
    """The token of the extension link in the last expiry warning of the outbox."""
    [*_, warning] = [m for m in outbox_mails(runtime) if "va être fermé" in str(m["Subject"])]
    found = EXTENSION_LINK.search(mail_text(warning))
    assert found is not None, mail_text(warning)
    return found.group(1)


def last_mail(runtime: Runtime, to: str, words: str = "") -> tuple[str, str]:
    """The mail to ``to`` whose subject holds ``words`` (the outbox's names share a time)."""
    [*_, mail] = [m for m in outbox_mails(runtime) if m["To"] == to and words in m["Subject"]]
    return str(mail["Subject"]), mail_text(mail)


def review(config_path: Path, helpdesk: str | None = HELPDESK) -> None:
    """The titulaire profile decided by the helpdesk."""
    profile = {**profiles_as_toml()["titulaire"], "extension_approval": "review"}
    rewrite_config(config_path, profiles={"titulaire": profile})
    if helpdesk:
        rewrite_config(config_path, mail={"helpdesk": helpdesk})


# --- the link of the warning ------------------------------------------------------------------


def test_the_warning_of_an_extendable_profile_links_the_request_until_the_grace_end(
    on: On,
) -> None:
    person, runtime = warned(on, "ext.link")
    token = extension_token(runtime)
    record = runtime.tokens.check(token, TokenPurpose.EXTENSION)
    assert record.account == person.identifier
    assert record.expires_at == expiry_instant(grace_end(), runtime.config.policy.timezone)
    assert "jusqu'à la fermeture du compte" in mail_text(outbox_mails(runtime)[-1])


def test_a_profile_that_cannot_be_extended_gets_no_link(on: On) -> None:
    person, runtime = warned(on, "no.link", profile="vacataire")
    body = mail_text(outbox_mails(runtime)[-1])
    assert "va être fermé" in str(outbox_mails(runtime)[-1]["Subject"])
    assert "/extension" not in body and "prolongation" not in body
    assert runtime.tokens.pending(person.identifier) == []


def test_a_newer_warning_link_cancels_the_older_one(on: On) -> None:
    person, runtime = warned(on, "two.links")
    first = extension_token(runtime)
    later = on(day_after(grace_end()) - timedelta(days=7))
    assert run(later) == [(person.identifier, "warn")]
    second = extension_token(later)
    assert second != first
    with pytest.raises(InvalidInputError, match="not valid"):
        later.tokens.check(first, TokenPurpose.EXTENSION)
    assert later.tokens.check(second, TokenPurpose.EXTENSION)


def test_sec59_a_link_valid_beyond_24_hours_is_for_extension_requests_only(on: On) -> None:
    runtime = on(warn_day())
    with pytest.raises(InvalidInputError, match="at most 24 h"):
        runtime.tokens.issue("x@umontpellier.fr", TokenPurpose.RESET, timedelta(days=2))
    issued = runtime.tokens.issue("x@umontpellier.fr", TokenPurpose.EXTENSION, timedelta(days=30))
    assert issued.expires_at - issued.issued_at == timedelta(days=30)


# --- auto: granted at once --------------------------------------------------------------------


def test_an_auto_request_is_granted_at_once_by_the_extend_service(on: On) -> None:
    person, runtime = warned(on, "auto.grant")
    token = extension_token(runtime)
    answer = request_by_link(runtime, token)
    new_end = month_end(-1 + 24)
    assert answer.granted and answer.grace_end == new_end
    assert compte(read(runtime, person)).endswith(f":{new_end.strftime('%Y%m%d')}")
    [stored] = runtime.store.extension_requests(account=person.identifier)
    assert (stored.status, stored.decided_by, stored.granted_until) == (GRANTED, "auto", new_end)
    _, body = last_mail(runtime, person.identifier, "prolongé")
    assert f"jusqu'au {french_date(new_end)} inclus" in " ".join(body.split())
    commands = [record.command for record in runtime.audit.read()]
    assert "extend" in commands and "extension-request" in commands
    with pytest.raises(InvalidInputError, match="not valid"):  # used
        request_by_link(runtime, token)
    # It renews, it does not stack: the same person cannot ask again on top of it.
    with pytest.raises(RefusedError, match="does not stack"):
        request_extension(runtime, person.identifier)


def test_a_granted_extension_cancels_the_pending_links(on: On) -> None:
    person, runtime = warned(on, "cli.extend")
    token = extension_token(runtime)
    code, _, err = umacct("extend", person.identifier, "--reason", "by phone", day=warn_day())
    assert code == 0, err
    with pytest.raises(InvalidInputError, match="not valid"):
        runtime.tokens.check(token, TokenPurpose.EXTENSION)


def test_a_refusal_by_the_policy_leaves_the_link_usable(on: On) -> None:
    person, runtime = warned(on, "too.early")
    code, _, err = umacct("extend", person.identifier, "--reason", "by phone", day=warn_day())
    assert code == 0, err
    link, _ = issue_extension_link(runtime, person.identifier, grace_end())  # as an old mail's
    found = EXTENSION_LINK.search(link)
    assert found is not None
    with pytest.raises(RefusedError, match=r"already extended to .*does not stack"):
        request_by_link(runtime, found.group(1))
    assert runtime.tokens.check(found.group(1), TokenPurpose.EXTENSION)  # nothing was asked
    assert not extension_status(runtime, person.identifier).allowed


# --- review: the helpdesk decides --------------------------------------------------------------


def test_a_review_request_waits_tells_the_helpdesk_and_is_granted_on_the_command_line(
    on: On, config_path: Path
) -> None:
    person, warned_runtime = warned(on, "review.grant")
    token = extension_token(warned_runtime)
    review(config_path)
    runtime = on(warn_day())
    answer = request_by_link(runtime, token)
    assert not answer.granted and answer.request.status == PENDING
    assert compte(read(runtime, person)).endswith(f":{grace_end().strftime('%Y%m%d')}")
    request_id = answer.request.request_id
    _, body = last_mail(runtime, HELPDESK)
    assert f"umacct extension grant {request_id}" in body and person.identifier in body
    assert last_mail(runtime, person.identifier, "reçue")
    assert request_extension(runtime, person.identifier).request == answer.request  # one request

    code, out, err = umacct("extension", "list", "--json", day=warn_day())
    assert code == 0, err
    [listed] = json.loads(out)
    assert (listed["id"], listed["account"], listed["status"]) == (
        request_id, person.identifier, PENDING,
    )  # fmt: skip
    code, out, err = umacct("extension", "grant", request_id, "--dry-run", day=warn_day())
    assert code == 0 and "would grant" in out, err
    assert runtime.store.find_extension_request(request_id).status == PENDING  # type: ignore[union-attr]
    code, out, err = umacct("extension", "grant", request_id, day=warn_day())
    assert code == 0, err
    new_end = month_end(-1 + 24)
    assert new_end.isoformat() in out
    assert compte(read(runtime, person)).endswith(f":{new_end.strftime('%Y%m%d')}")
    assert last_mail(runtime, person.identifier, "prolongé")
    code, out, err = umacct(
        "extension", "list", "--status", "granted", "--format", "csv", day=warn_day()
    )
    assert code == 0 and request_id in out and "granted" in out, err

    before = (read(runtime, person), runtime.store.dump(), len(runtime.audit.read()))
    code, out, err = umacct("extension", "grant", request_id, day=warn_day())
    assert code == 77 and out == "" and "already granted" in err, err
    assert len(err.strip().splitlines()) == 1
    assert (read(runtime, person), runtime.store.dump(), len(runtime.audit.read())) == before


def test_a_refusal_needs_its_reason_and_the_person_is_told_it(on: On, config_path: Path) -> None:
    person, warned_runtime = warned(on, "review.refuse")
    review(config_path, helpdesk=None)
    runtime = on(warn_day())
    answer = request_by_link(runtime, extension_token(warned_runtime))
    request_id = answer.request.request_id
    code, _, err = umacct("extension", "refuse", request_id, day=warn_day())
    assert code == 2, err
    code, _, err = umacct(
        "extension", "refuse", request_id, "--reason", "no contract on file", day=warn_day()
    )
    assert code == 0, err
    assert runtime.store.find_extension_request(request_id).status == REFUSED  # type: ignore[union-attr]
    _, body = last_mail(runtime, person.identifier, "refusée")
    assert "no contract on file" in body
    assert compte(read(runtime, person)).endswith(f":{grace_end().strftime('%Y%m%d')}")
    with pytest.raises(RefusedError, match="was refused"):  # not asked again for that grace end
        request_extension(runtime, person.identifier)
    code, _, err = umacct("extension", "refuse", request_id, "--reason", "again", day=warn_day())
    assert code == 77 and "already refused" in err


@pytest.mark.parametrize(
    ("request_id", "code", "words"),
    [
        ("nothing-like-an-id", 65, "not an extension request id"),
        ("0123456789", 67, "no extension request"),
    ],
)
def test_a_bad_or_unknown_id_changes_nothing(
    on: On, request_id: str, code: int, words: str
) -> None:
    person, runtime = warned(on, "bad.id")
    before = (read(runtime, person), runtime.store.dump(), len(runtime.audit.read()))
    for command in (["grant", request_id], ["refuse", request_id, "--reason", "no"]):
        got, out, err = umacct("extension", *command, day=warn_day())
        assert (got, out) == (code, ""), err
        assert words in err and len(err.strip().splitlines()) == 1
    assert (read(runtime, person), runtime.store.dump(), len(runtime.audit.read())) == before


def test_extension_list_takes_the_read_commands_output_options(on: On) -> None:
    for options in ([], ["--json"], ["--format", "tsv"], ["--format", "csv"], ["--status", "all"]):
        code, _, err = umacct("extension", "list", *options, day=warn_day())
        assert code == 0, err
    code, _, err = umacct("extension", "list", "--status", "maybe")
    assert code == 2


# --- several hosts, and the move from state.db ---------------------------------------------------


def test_sec40_a_request_filed_on_a_is_granted_on_b(
    two_hosts: tuple[Host, Host], on_host: Callable[[Host, date], Runtime]
) -> None:
    a, b = two_hosts
    for host in (a, b):
        review(host.config_path)
    person = add_person(
        on_host(a, END.replace(day=1)), "two.hosts", end_of_activity=END, profile="titulaire"
    )
    run(on_host(a, day_after(END)))
    on_a = on_host(a, warn_day())
    run(on_a)
    answer = request_by_link(on_a, extension_token(on_a))  # the web host
    code, out, err = umacct(
        "--config", str(b.config_path), "extension", "list", "--json", day=warn_day()
    )
    assert code == 0 and answer.request.request_id in out, err
    code, out, err = umacct(
        "--config", str(b.config_path), "extension", "grant", answer.request.request_id,
        day=warn_day(),
    )  # fmt: skip
    assert code == 0, err
    found = on_host(a, warn_day()).store.find_extension_request(answer.request.request_id)
    assert found is not None and found.status == GRANTED
    code, _, err = umacct(
        "--config", str(a.config_path), "extension", "grant", answer.request.request_id,
        day=warn_day(),
    )  # fmt: skip
    assert code == 77 and "already granted" in err
    assert compte(read(on_a, person)).endswith(f":{month_end(23).strftime('%Y%m%d')}")


def test_state_migrate_carries_the_requests(
    two_hosts: tuple[Host, Host], on_host: Callable[[Host, date], Runtime]
) -> None:
    a, b = two_hosts
    runtime = on_host(a, warn_day())
    with SQLiteStore(a.data_dir) as legacy:
        request = new_request("moved@umontpellier.fr", grace_end(), runtime.clock.now(), "link")
        legacy.add_extension_request(request)
    text = a.config_path.read_text().replace('backend = "directory"', 'backend = "sqlite"')
    a.config_path.write_text(text)
    code, out, err = umacct("--config", str(a.config_path), "state", "migrate")
    assert code == 0, err
    assert "extensions: 1 in the file, added 1, 0 already there" in out
    found = on_host(b, warn_day()).store.find_extension_request(request.request_id)
    assert found == request
    code, out, err = umacct("--config", str(a.config_path), "state", "migrate")
    assert code == 0 and "extensions: 1 in the file, added 0, 1 already there" in out


def test_explain_shows_a_pending_request_and_how_to_decide_it(on: On, config_path: Path) -> None:
    person, warned_runtime = warned(on, "explain.pending")
    review(config_path, helpdesk=None)
    answer = request_by_link(on(warn_day()), extension_token(warned_runtime))
    request_id = answer.request.request_id
    code, out, err = umacct("explain", person.identifier, day=warn_day())
    assert code == 0, err
    assert f"extension request {request_id} of {warn_day().isoformat()} waits" in out
    assert f"umacct extension grant {request_id}" in out
    code, out, err = umacct("explain", person.identifier, "--json", day=warn_day())
    assert code == 0 and f"umacct extension grant {request_id}" in out, err
    code, _, err = umacct("extension", "grant", request_id, day=warn_day())
    assert code == 0, err
    code, out, _ = umacct("explain", person.identifier, day=warn_day())
    assert "waits for a decision" not in out
