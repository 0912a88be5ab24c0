"""The server applied a write but its answer was lost (the connection broke in between).

A proxy between the tool and slapd swallows one chosen answer and cuts the connection: the
tool exits 69 not knowing whether the write happened. The audit log must still account for
every change the directory holds, the identifier of a deleted entry must stay reserved, and
the rerun must finish the work without doing anything twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from days import month_end
from people import rewrite_config
from test_faults_slapd import write_intake
from test_faults_support import (
    ADD_RESPONSE,
    DELETE_RESPONSE,
    MODIFY_RESPONSE,
    STATE_DATE,
    LosingProxy,
    Site,
    assert_audit_agrees,
    assert_one_line_error,
    audit_trail,
    departed,
    letters,
    site,
    through_proxy,
)

from umacct.store import SQLiteStore

__all__ = ["site"]

PEOPLE = 60
LOST = 20  # the answer that never comes back


@pytest.fixture
def proxy_factory(site: Site) -> Iterator[list[LosingProxy]]:
    """Proxies made by the test, closed after it."""
    made: list[LosingProxy] = []
    yield made
    for proxy in made:
        proxy.close()


def lose_answer(site: Site, made: list[LosingProxy], tag: int) -> LosingProxy:
    """Route the tool through a proxy that loses the LOST-th answer with ``tag``."""
    proxy = LosingProxy(site.directory.port, tag, LOST)
    made.append(proxy)
    through_proxy(site, proxy)
    return proxy


def test_a_lost_modify_answer_is_audited_as_unknown_and_the_rerun_completes(
    site: Site, proxy_factory: list[LosingProxy]
) -> None:
    domain = site.config.profiles["vacataire"].domain
    site.add_people(
        [departed(f"max.{letters(n).lower()}", "vacataire", month_end(-1), domain)
         for n in range(PEOPLE)]
    )  # fmt: skip
    proxy = lose_answer(site, proxy_factory, MODIFY_RESPONSE)
    # One write at a time (the sweep's are pipelined: tests/test_sweep_pipelined.py).
    first = site.run("suspend", "--due")
    assert proxy.dropped.is_set()
    assert_one_line_error(first.stderr, (69,), first.returncode)
    in_grace = _in_grace(site)
    assert len(in_grace) == LOST  # the lost one was applied all the same
    results = audit_trail(site, "suspend")
    assert set(results) == {f"{uid}@{domain}" for uid in in_grace}
    assert sorted(Counter(tuple(c.items()) for c in results.values()).items()) == [
        ((("ok", 1),), LOST - 1),
        ((("unknown", 1),), 1),
    ]

    rerun = site.run("suspend", "--due")
    assert rerun.returncode == 0, rerun.stderr
    assert len(_in_grace(site)) == PEOPLE
    results = audit_trail(site, "suspend")
    assert len(results) == PEOPLE
    assert all(sum(counts.values()) == 1 for counts in results.values())  # nothing twice


def _in_grace(site: Site) -> list[str]:
    return [
        uid
        for uid, entry in site.people().items()
        if any(value.startswith("{COMPTE}A:SupannSursis:") for value in entry[STATE_DATE.lower()])
    ]


def test_sec21_a_lost_delete_answer_still_reserves_the_identifier(
    site: Site, proxy_factory: list[LosingProxy]
) -> None:
    domain = site.config.profiles["autre_personnel"].domain
    uids = [f"noe.{letters(n).lower()}" for n in range(PEOPLE)]
    ended = month_end(-10)  # autre_personnel, 3 months: expired long enough to be purged
    site.add_people([departed(uid, "autre_personnel", ended, domain) for uid in uids])
    rewrite_config(site.config_path, policy={"minimum_notice_days": 0})  # the site's choice
    expired = site.run("suspend", "--due")
    assert expired.returncode == 0, expired.stderr
    lose_answer(site, proxy_factory, DELETE_RESPONSE)

    first = site.run("purge", "--expired", "--yes", "--reason", "left")
    assert_one_line_error(first.stderr, (69,), first.returncode)
    remaining = site.people()
    assert len(remaining) == PEOPLE - LOST  # the lost one was deleted all the same
    gone = sorted(set(uids) - set(remaining))
    with SQLiteStore(site.data_dir) as store:
        assert all(store.find_purge(uid) is not None for uid in gone)
    results = audit_trail(site, "purge")
    assert set(results) == {f"{uid}@{domain}" for uid in gone}
    archives = {path.name.split("-")[0] for path in (site.data_dir / "archive").glob("*.ldif")}
    assert archives == set(results)

    rerun = site.run("purge", "--expired", "--yes", "--reason", "left")
    assert rerun.returncode == 0, rerun.stderr
    assert site.people() == {}
    with SQLiteStore(site.data_dir) as store:
        assert all(store.find_purge(uid) is not None for uid in uids)


def test_a_lost_add_answer_is_audited_and_the_rerun_sends_the_activation_link(
    site: Site, proxy_factory: list[LosingProxy], tmp_path: Path
) -> None:
    intake = tmp_path / "rentree.csv"
    write_intake(intake, PEOPLE)
    lose_answer(site, proxy_factory, ADD_RESPONSE)
    first = site.run("create", "--csv", str(intake))
    assert_one_line_error(first.stderr, (69,), first.returncode)
    assert LOST <= len(site.people()) < PEOPLE  # pipelined adds: more may be in flight
    rerun = site.run("create", "--csv", str(intake))
    assert rerun.returncode == 0, rerun.stderr

    people = site.people()
    assert_audit_agrees(site, "create", {entry["mail"][0] for entry in people.values()})
    personal = Counter(entry["supannmailperso"][0] for entry in people.values())
    assert site.outbox_recipients() == personal
