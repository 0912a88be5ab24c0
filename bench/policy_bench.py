"""Time one million policy evaluations over a realistic population.

Run: .venv/bin/python bench/policy_bench.py [--accounts N] [--seed S]

The population mixes every profile and stage with dates spread over two years around
"today": active accounts (some without an end of activity), accounts awaiting activation,
accounts in grace with 0 to 2 extensions, expired accounts, and accounts in states written by
other tools. Target: under 2 s for 1,000,000 evaluations.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from datetime import date, timedelta

from umacct.policy import (
    AccountFacts,
    ProfileRules,
    Stage,
    evaluate,
    extended_grace_end,
    grace_end_for,
)

TODAY = date(2026, 11, 26)
PURGE_AFTER_DAYS = 30
WARN_DAYS = (30, 7)

PROFILES = (
    ProfileRules("titulaire", 12, extendable=True, extension_months=12),
    ProfileRules("contractuel", 12, extendable=True, extension_months=12, max_extensions=2),
    ProfileRules("autre", 3),
    ProfileRules("vacataire", 6),
    ProfileRules("heberge", 6),
    ProfileRules("etudiant", 6),
)
STAGE_WEIGHTS = {
    Stage.ACTIVE: 70,
    Stage.CREATED: 5,
    Stage.PRECREATED: 2,
    Stage.GRACE: 10,
    Stage.EXPIRED: 8,
    Stage.FOREIGN: 3,
    Stage.UNKNOWN: 2,
}
DAY = timedelta(days=1)


def _day_around(rng: random.Random, before: int, after: int) -> date:
    return TODAY + DAY * rng.randint(-before, after)


def _end_of_activity(rng: random.Random, rules: ProfileRules) -> date | None:
    if rules.key == "etudiant" and rng.random() < 0.7:
        return date(rng.choice((2025, 2026, 2027)), 8, 31)
    if rules.key == "titulaire" and rng.random() < 0.8:
        return None
    return _day_around(rng, 365, 365)


def _account(rng: random.Random) -> tuple[ProfileRules, AccountFacts]:
    rules = rng.choice(PROFILES)
    stage = rng.choices(list(STAGE_WEIGHTS), weights=list(STAGE_WEIGHTS.values()))[0]
    since = _day_around(rng, 730, 0)
    if stage in (Stage.ACTIVE, Stage.CREATED, Stage.PRECREATED):
        return rules, AccountFacts(stage, _end_of_activity(rng, rules), stage_since=since)
    if stage in (Stage.GRACE, Stage.EXPIRED):
        end_of_activity = _day_around(rng, 400 if stage is Stage.GRACE else 730, 0)
        grace_end = grace_end_for(rules, end_of_activity)
        if rules.extendable:
            grace_end = extended_grace_end(rules, grace_end, rng.randint(0, 2))
        if stage is Stage.GRACE:
            return rules, AccountFacts(
                stage, end_of_activity, grace_end=grace_end, stage_since=end_of_activity + DAY
            )
        expired_on = grace_end + DAY
        return rules, AccountFacts(
            stage, end_of_activity, expired_on=expired_on, stage_since=expired_on
        )
    return rules, AccountFacts(stage, _end_of_activity(rng, rules), stage_since=since)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2026)
    options = parser.parse_args()

    rng = random.Random(options.seed)
    population = [_account(rng) for _ in range(options.accounts)]

    started, started_cpu = time.perf_counter(), time.process_time()
    evaluations = [
        evaluate(rules, facts, TODAY, purge_after_days=PURGE_AFTER_DAYS, warn_days=WARN_DAYS)
        for rules, facts in population
    ]
    elapsed, elapsed_cpu = time.perf_counter() - started, time.process_time() - started_cpu

    per_call = elapsed / options.accounts * 1e6
    print(
        f"{options.accounts:,} evaluations in {elapsed:.3f} s ({per_call:.2f} µs each; "
        f"{elapsed_cpu:.3f} s of CPU time)"
    )
    actions = Counter(e.action_due.kind for e in evaluations if e.action_due is not None)
    print("actions due:", ", ".join(f"{kind} {count:,}" for kind, count in sorted(actions.items())))


if __name__ == "__main__":
    main()
