"""The replication check does not count what its own binds write (pwdLastSuccess, ppolicy).

Every bind of the tool writes ``pwdLastSuccess`` on its entry (``olcLastBind``), stamped
with the CSN of the provider that took it: that provider is an instant ahead for its own
server ID until the change reaches the other. A disagreement counts only for a change some
provider held when the check began and another still lacks after the settle time.
"""

from __future__ import annotations

import json
from pathlib import Path

from command_line import umacct
from test_doctor_replication import (  # the replicated pair and its helpers, shared
    Pair,
    pair,
    pair_config,
    reading,
    stop_replication_into,
    write_on,
)

from umacct.config import load_config
from umacct.localdir import (
    wait_until_in_sync,
)
from umacct.services.replication import check_replication, compare

__all__ = ["pair", "pair_config"]


def test_a_change_made_after_the_first_reading_is_on_its_way_not_a_lag() -> None:
    old_1 = "20260102030400.000000Z#000000#001#000000"
    old_2 = "20260102030400.000000Z#000000#002#000000"
    bind_2 = "20260102030401.000000Z#000000#002#000000"  # the check's bind on two
    next_2 = "20260102030402.000000Z#000000#002#000000"  # its bind on two at the next reading
    first = [reading("ldap://one", old_1, old_2), reading("ldap://two", old_1, bind_2)]
    assert not compare(first).agree  # at one instant, one lacks two's bind
    later = [reading("ldap://one", old_1, bind_2), reading("ldap://two", old_1, next_2)]
    assert not compare(later).agree
    assert compare(later, since=first).agree  # what two held at first has reached one
    still = [reading("ldap://one", old_1, old_2), reading("ldap://two", old_1, next_2)]
    assert compare(still, since=first).words().startswith("ldap://one is 1.0 s behind ldap://two")


def test_lags_since_a_reading_name_the_change_still_missing() -> None:
    a = "20260102030405.500000Z#000000#001#000000"
    b = "20260102030400.000000Z#000000#001#000000"
    first = [reading("ldap://one", a), reading("ldap://two", b)]
    report = compare([reading("ldap://one", a), reading("ldap://two", b)], since=first)
    assert (
        report.words() == f"ldap://two is 5.5 s behind ldap://one (server ID 001: {b} against {a})"
    )


def test_the_providers_in_sync_agree_at_every_check(pair: Pair, pair_config: Path) -> None:
    """Each check binds to both providers (two pwdLastSuccess writes): never a lag of its own."""
    write_on(pair[0], "written.first")
    wait_until_in_sync(pair)
    config = load_config(str(pair_config))
    for _ in range(6):
        report = check_replication(config.directory, pair[0].bind_password, settle=1.5)
        assert report.agree, report.words()


def test_the_fail_line_names_only_the_change_that_did_not_replicate(
    pair: Pair, pair_config: Path
) -> None:
    first, second = pair
    write_on(first, "before.the.stop")
    wait_until_in_sync(pair)
    stop_replication_into(second)
    write_on(first, "only.on.first")
    config = load_config(str(pair_config))
    for _ in range(4):
        report = check_replication(config.directory, first.bind_password, settle=1.2)
        assert [(lag.behind, lag.ahead, lag.server_id) for lag in report.lags] == [
            (second.url, first.url, "001")
        ], report.words()
    code, out, err = umacct("--json", "doctor")
    assert code == 1, err
    row = {r["check"]: r for r in json.loads(out)}["replication"]
    detail = str(row["detail"])
    assert detail.startswith(f"the providers disagree: {second.url} is "), detail
    assert detail.count(" behind ") == 1 and "has none" not in detail, detail
