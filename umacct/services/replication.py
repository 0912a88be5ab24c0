"""Whether the providers of ``[directory] urls`` hold the same changes (``contextCSN``).

Each provider stamps every change with a CSN (time, count, server ID, ...); the base's
``contextCSN`` holds the newest CSN of each server ID it has applied. When replication is
caught up every provider shows the same values; a provider that lags shows an older CSN
for some server ID, or none. ``doctor`` reports it, and the sweep refuses to change
anything while the providers disagree (docs/replication.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from umacct.config import DirectoryConfig
from umacct.directory.providers import Csn, ProviderReading, read_providers
from umacct.errors import TemporaryError

if TYPE_CHECKING:
    from umacct.services.runtime import Runtime

SETTLE_SECONDS = 3.0
"""How long a disagreement may last before it counts: a change made an instant ago is
still on its way to the other providers (usually well under a second)."""
POLL_SECONDS = 0.25
OVERRIDE_OPTION = "--ignore-replication-lag"


@dataclass(frozen=True)
class Lag:
    """One provider behind another for the changes of one server ID."""

    behind: str
    ahead: str
    server_id: str
    newest: Csn
    theirs: Csn | None
    """The provider's own newest CSN for that server ID; None: it has none of its changes."""

    @property
    def seconds(self) -> float | None:
        """How far apart the two CSNs are, in seconds (None when the provider has none)."""
        if self.theirs is None:
            return None
        return (self.newest.time - self.theirs.time).total_seconds()

    def words(self) -> str:
        """``ldap://b is 4.2 s behind ldap://a (server ID 001: ... against ...)``."""
        if self.theirs is None:
            return (
                f"{self.behind} has none of the changes {self.ahead} holds from server ID "
                f"{self.server_id} (up to {self.newest.text})"
            )
        return (
            f"{self.behind} is {self.seconds:.1f} s behind {self.ahead} (server ID "
            f"{self.server_id}: {self.theirs.text} against {self.newest.text})"
        )


@dataclass(frozen=True)
class ReplicationReport:
    """The providers' readings and what comparing them says."""

    readings: list[ProviderReading]
    lags: list[Lag] = field(default_factory=list)

    @property
    def compared(self) -> list[ProviderReading]:
        """The providers reached that hold a contextCSN."""
        return [r for r in self.readings if r.error is None and r.csns]

    @property
    def unreachable(self) -> list[ProviderReading]:
        """The providers that could not be read (down, refused)."""
        return [r for r in self.readings if r.error is not None]

    @property
    def without_csn(self) -> list[ProviderReading]:
        """Providers reached whose base has no contextCSN (no syncprov there?)."""
        return [r for r in self.readings if r.error is None and not r.csns]

    @property
    def agree(self) -> bool:
        """No provider reached is behind another."""
        return not self.lags

    def words(self) -> str:
        """The lags, one after the other."""
        return "; ".join(lag.words() for lag in self.lags)


def compare(
    readings: list[ProviderReading], since: list[ProviderReading] | None = None
) -> ReplicationReport:
    """Which provider lags which, per server ID of the contextCSN values.

    Without ``since``, the readings are compared with one another. With ``since`` (the
    first reading of the check), a provider lags only while it still lacks a change that
    some provider held then: what was written meanwhile is on its way and does not count.
    The check's own binds write that much (``pwdLastSuccess`` on the tool's entry, under
    ppolicy's ``olcLastBind``), on the provider each one reaches, an instant before reading it.
    """
    compared = [r for r in readings if r.error is None and r.csns]
    earlier = compared if since is None else [r for r in since if r.error is None and r.csns]
    targets: dict[str, tuple[str, Csn]] = {}
    for held in earlier:
        for sid, csn in held.newest.items():
            if sid not in targets or csn.time > targets[sid][1].time:
                targets[sid] = (held.url, csn)
    lags = []
    for sid in sorted(targets):
        ahead, top = targets[sid]
        for reading in compared:
            theirs = reading.newest.get(sid)
            if theirs is None or theirs.time < top.time:
                lags.append(Lag(reading.url, ahead, sid, top, theirs))
    return ReplicationReport(readings, lags)


def check_replication(
    settings: DirectoryConfig,
    password: str | None,
    *,
    settle: float = SETTLE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplicationReport:
    """Read every provider's contextCSN and compare them.

    A disagreement is read again for ``settle`` seconds before it is reported: a change
    made an instant ago is still on its way. Each reading again is compared with the first
    one (``compare(..., since=first)``): the binds of every reading write on the provider
    they reach, and those changes, made after the first reading, never count.
    """
    deadline = time.monotonic() + settle
    first = read_providers(settings, password)
    report = compare(first)
    while not report.agree and time.monotonic() < deadline:
        sleep(POLL_SECONDS)
        report = compare(read_providers(settings, password), since=first)
    return report


def require_providers_in_sync(
    runtime: Runtime, *, ignore_lag: bool = False, command: str = "sweep"
) -> None:
    """Before a run that changes accounts: refuse (exit 75) while the providers disagree.

    Only with several ``[directory] urls``. A provider that cannot be reached does not stop
    the run (that is failover: the run goes on with the others). ``ignore_lag`` lets the run
    go on anyway, and the audit log says so with the lag.
    """
    settings = runtime.config.directory
    if len(settings.urls) < 2:
        return
    report = check_replication(settings, _password(runtime))
    if report.agree:
        return
    if ignore_lag:
        runtime.audit.append(
            command, None, {}, "replication lag ignored", providers=report.words(),
            option=OVERRIDE_OPTION,
        )  # fmt: skip
        return
    raise TemporaryError(
        f"the directory's providers disagree: {report.words()}; nothing changed: run it again "
        f"once replication has caught up (umacct doctor shows it), or with {OVERRIDE_OPTION}"
    )


def _password(runtime: Runtime) -> str | None:
    """The bind password, asked at most once in the run (the run's own connection reuses it)."""
    from umacct.directory import needs_password
    from umacct.secrets import SecretKind, find_secret

    if not needs_password(runtime.config.directory):
        return None
    secret = find_secret(SecretKind.DIRECTORY, runtime.config, runtime.prompt)
    if secret.source == "prompt":
        runtime.prompt = lambda _question: secret.value
    return secret.value
