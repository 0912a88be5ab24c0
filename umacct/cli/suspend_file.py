"""``umacct suspend --csv FILE``: the HR departures list in one run, reported as the intake is.

Every row is checked before anything changes; a bad row is reported with its line and
skipped; each account goes through ``suspend`` as if typed (``--reason`` for rows without
one); one tab-separated line per account on stdout, the refused rows and a summary on
stderr, exit 65 if any row failed. More accounts than ``[policy] max_changes_per_run``:
refused (77) before any change, unless ``--max-changes N``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from umacct.cli.dry_run import would
from umacct.cli.output import dumps_json, tsv_line
from umacct.errors import InvalidInputError, UmacctError

if TYPE_CHECKING:
    from umacct.cli.state import AppState
    from umacct.intake import Departure
    from umacct.services.lifecycle import AccountOutcome
    from umacct.services.runtime import Runtime


def suspend_from_file(
    state: AppState,
    runtime: Runtime,
    path: Path,
    *,
    reason: str | None,
    force: bool,
    dry_run: bool,
    max_changes: int | None,
    rejects: Path | None = None,
    ignore_unknown_columns: bool = False,
) -> None:
    """Suspend every account of the departures list ``path``."""
    from umacct.intake import read_departures
    from umacct.services.sweep import check_change_cap

    try:
        departures = read_departures(
            path.read_bytes(), ignore_unknown_columns=ignore_unknown_columns
        )
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from None
    except InvalidInputError as error:
        raise InvalidInputError(f"{path}: {error.message}") from None
    failures = [(row.line, row.reason) for row in departures.errors]
    failures += [(row.line, "no reason: give one in the file or --reason") for row in departures.rows
                 if not (row.reason or reason)]  # fmt: skip
    ready = [row for row in departures.rows if row.reason or reason]
    if not dry_run:
        check_change_cap(runtime, len(ready), max_changes, "departures list")
    results: list[AccountOutcome] = []
    for row in ready:
        try:
            result = _suspend_row(runtime, row, reason, force=force, dry_run=dry_run)
        except UmacctError as error:
            failures.append((row.line, error.message))
            continue
        results.append(result)
        if not state.json:
            planned = dry_run and result.action != "none"
            action, details = would(result) if planned else (result.action, result.message)
            state.out.file.write(tsv_line([f"line {row.line}", result.account, action, details]))
    failures.sort()
    if departures.ignored:
        state.info(f"columns ignored: {', '.join(departures.ignored)}")
    if rejects is not None:
        from umacct.cli.intake_report import write_rejects

        write_rejects(rejects, departures, failures)
        if failures:
            state.info(f"refused rows written to {rejects}, with the reason")
    _report(state, path, departures.encoding, results, failures, dry_run)
    if failures:
        raise typer.Exit(65)


def _suspend_row(
    runtime: Runtime, row: Departure, reason: str | None, *, force: bool, dry_run: bool
) -> AccountOutcome:
    from umacct.services.lifecycle import suspend
    from umacct.services.search import account_key

    return suspend(
        runtime,
        account_key(runtime, row.account),
        end_of_activity=row.end_of_activity,
        reason=row.reason or reason,
        force=force,
        dry_run=dry_run,
    )


def _report(
    state: AppState,
    path: Path,
    encoding: str,
    results: list[AccountOutcome],
    failures: list[tuple[int, str]],
    dry_run: bool,
) -> None:
    counts = Counter(result.action for result in results)
    if state.json:
        document = {
            "file": str(path), "encoding": encoding, "dry_run": dry_run,
            "summary": {**dict(sorted(counts.items())), "failed": len(failures)},
            "results": results, "errors": [{"line": line, "reason": why} for line, why in failures],
        }  # fmt: skip
        state.out.out(dumps_json(document))
        return
    for line, why in failures:
        state.info(f"line {line}: {why}")
    mark = "would " if dry_run else ""
    done = ", ".join(
        f"{mark if action != 'none' else ''}{action} {count}"
        for action, count in sorted(counts.items())
    )
    prefix = "(dry run) " if dry_run else ""
    state.info(f"{prefix}{path}: {done or 'nothing done'}, failed {len(failures)}")
