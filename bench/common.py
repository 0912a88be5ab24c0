"""What every benchmark shares: timed child processes, the local directory, the results table."""

from __future__ import annotations

import atexit
import itertools
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from umacct.localdir import LocalDirectory, start

OUT = Path(__file__).resolve().parent / "out"
UMACCT = str(Path(sys.executable).with_name("umacct"))
# A child forked from this (large) process starts with this process's resident size, and
# ru_maxrss keeps that mark across exec. A small launcher forks the measured command instead
# and writes the command's own peak RSS (KiB) to the file named first.
_LAUNCHER = (
    "import os, sys; pid = os.fork()\n"
    "if pid == 0: os.execvp(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))"
)


_RETIRED = OUT / ".retired"
_retired_names = itertools.count()


def fresh_folder(folder: Path) -> None:
    """Make ``folder`` new and empty; what it held is deleted when the bench ends.

    Deleting thousands of files just before a measured run slows the run's own file
    creations on this machine's ext4: the sweep's and the intake's outbox files were
    created 0.2 to 1.4 ms apiece (strace) right after the previous round's were deleted,
    against 0.05 ms with nothing deleted around them. So an old folder is renamed away
    (no inode freed) and the bench deletes them all once nothing is measured any more.
    """
    if folder.exists():
        number = next(_retired_names)
        if number == 0:
            _RETIRED.mkdir(parents=True, exist_ok=True)
            atexit.register(_delete_retired)
        folder.rename(_RETIRED / f"{os.getpid()}-{number}-{folder.name}")
    folder.mkdir(parents=True)


CLEANED = OUT / ".cleaned"
"""Touched once many retired files were deleted: ``bench.file_system`` waits after it."""


MANY_DELETED = 1000
"""From this many files deleted at the end of a run, the next run waits (``bench.file_system``)."""


def _delete_retired() -> None:
    deleted = sum(len(files) for _, _, files in os.walk(_RETIRED))
    shutil.rmtree(_RETIRED, ignore_errors=True)
    if deleted >= MANY_DELETED:
        CLEANED.touch()


@dataclass(frozen=True)
class Result:
    """One line of the table: a figure of the tool against its reference."""

    target: str
    figure: str
    measured: float
    reference: float
    limit: float
    unit: str
    note: str = ""
    judged: bool = True
    """False for a figure printed beside a target but not judged (the indexed server's)."""
    round_ratios: tuple[float, ...] = ()
    """Each round's tool time over the reference timed next to it, when rounds were paired."""

    @property
    def ratio(self) -> float:
        """The median of the rounds' own ratios, else measured over reference.

        The machine's speed drifts between rounds more than the tool's and the reference's
        times differ within one: each round's tool and reference run back to back, and the
        target is judged on the median of those ratios (the reference is 1 for absolute
        targets).
        """
        if self.round_ratios:
            return statistics.median(self.round_ratios)
        return self.measured / self.reference if self.reference else float("inf")

    @property
    def passed(self) -> bool:
        """Whether the ratio is within the limit (always, for a figure that is not judged)."""
        return not self.judged or self.ratio <= self.limit

    @property
    def verdict(self) -> str:
        """PASS, FAIL, or ``info`` for a figure that is not judged."""
        if not self.judged:
            return "info"
        return "PASS" if self.passed else "FAIL"


@dataclass(frozen=True)
class Run:
    """A finished child process: its wall time, peak resident memory and exit status."""

    seconds: float
    peak_rss_mib: float
    returncode: int


def run_timed(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdin: Path | None = None,
    memory: bool = False,
) -> Run:
    """Run ``argv`` to its end: its wall time and, with ``memory``, its own peak RSS.

    Output is discarded. With ``memory`` the launcher's start-up (a bare Python, ~15 ms)
    counts in the time; the peak RSS is 0 without it.

    What earlier steps left unwritten (a directory just loaded, the reference's changes
    undone) is written to disk before the clock starts (``sync``): a run that syncs the
    file system, as the sweep does for its outbox, would otherwise pay for them, and a run
    that does not, as ``ldapmodify``, would not. Each run pays for its own writes only.

    A non-zero exit raises, with the end of its standard error.
    """
    os.sync()
    log = OUT / "last-child-stderr.txt"
    peak = OUT / "last-child-peak-rss.txt"
    with (
        open(stdin or os.devnull, "rb") as source,
        open(log, "wb") as errors,
    ):
        started = time.perf_counter()
        peak.unlink(missing_ok=True)
        launcher = [sys.executable, "-c", _LAUNCHER, str(peak)] if memory else []
        returncode = subprocess.call(
            [*launcher, *argv],
            stdin=source, stdout=subprocess.DEVNULL, stderr=errors, env=env,
        )  # fmt: skip
        elapsed = time.perf_counter() - started
    if returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(f"{' '.join(argv[:3])}... exited {returncode}: {tail}")
    # ru_maxrss is in KiB on Linux.
    return Run(elapsed, int(peak.read_text()) / 1024 if memory else 0.0, returncode)


def best_of(rounds: int, measure: Callable[[], float]) -> float:
    """The smallest of ``rounds`` measurements: the least disturbed by other load."""
    return min(measure() for _ in range(rounds))


def median_of(rounds: int, measure: Callable[[], float]) -> float:
    """The median of ``rounds`` measurements."""
    return statistics.median(measure() for _ in range(rounds))


def paired_ratios(measured: Sequence[float], references: Sequence[float]) -> tuple[float, ...]:
    """Each round's ratio (measured over the reference of the same round)."""
    return tuple(m / r for m, r in zip(measured, references, strict=True))


def ratios_list(ratios: Sequence[float]) -> str:
    """``2.41x/2.53x/2.50x``: the rounds' ratios, for a note."""
    return "/".join(f"{ratio:.2f}x" for ratio in ratios)


def times_list(times: Sequence[float]) -> str:
    """Every round's time, for the notes: ``1.20/1.31/1.25``."""
    return "/".join(f"{value:.2f}" for value in times)


SERVER_KINDS = {True: "README indexes", False: "bare, no index"}


def drop_indexes(directory: LocalDirectory) -> None:
    """Remove every index of the directory's database (a bare server), through cn=config."""
    listing = directory.run_root("ldapsearch", "-LLL", "-b", "cn=config", "(olcDbIndex=*)", "dn")
    for line in listing.splitlines():
        if line.startswith("dn: "):
            directory.run_root(
                "ldapmodify", ldif=f"{line}\nchangetype: modify\ndelete: olcDbIndex\n"
            )


@contextmanager
def local_directory(name: str, *, indexed: bool = True, **options: Any) -> Iterator[LocalDirectory]:
    """A fresh local directory in ``bench/out/<name>``, stopped on exit.

    With ``indexed`` it has the README's indexes; without, none at all (a bare server, where
    the server's work is the least and the client's cost shows most).
    """
    folder = OUT / name
    fresh_folder(folder)
    directory = start(folder, **options)
    try:
        if not indexed:
            drop_indexes(directory)
        yield directory
    finally:
        directory.stop()


def write_config(
    directory: LocalDirectory,
    folder: Path,
    *,
    smtp_port: int | None = None,
    transactions: str = "off",
    smtp_connections: int | None = None,
) -> dict[str, str]:
    """A fresh data folder and configuration for ``directory``; the environment to use them.

    With ``smtp_port`` mail goes through SMTP to that loopback port, else to the outbox;
    ``transactions`` is the ``[directory]`` switch ("off", the default, or "auto");
    ``smtp_connections`` sets ``[mail.smtp] connections`` (else the tool's default).
    """
    fresh_folder(folder)
    settings = directory.config_dict(folder / "data")
    settings["directory"]["transactions"] = transactions
    if smtp_port is not None:
        settings["mail"] = {
            "transport": "smtp",
            "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none"},
        }
        if smtp_connections is not None:
            settings["mail"]["smtp"]["connections"] = smtp_connections
    path = folder / "config.toml"
    path.write_bytes(tomli_w.dumps(settings).encode("utf-8"))
    env = {
        **os.environ,
        "UMACCT_CONFIG": str(path),
        # The references read the password from here.
        "UMACCT_BIND_PASSWORD": directory.bind_password,
        "LDAPNOINIT": "1",
        # As the README recommends for a server: the keyring backend named, the bind
        # password in it (the tool finds it there first).
        "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
        "XDG_DATA_HOME": str(folder / "keyring"),
    }
    store = [UMACCT, "secret", "set", "directory", "--stdin"]
    for argv in (store, [*store, "--allow-plaintext"]):  # a file keyring may need consent
        stored = subprocess.run(
            argv, input=directory.bind_password + "\n", env=env, capture_output=True, text=True,
            check=False,
        )  # fmt: skip
        if stored.returncode == 0:
            return env
    raise RuntimeError(f"umacct secret set directory: {stored.stderr.strip()}")


def service_args(directory: LocalDirectory, folder: Path) -> list[str]:
    """ldap* tool arguments binding as the tool's service account over ldap:// (like the tool)."""
    secret = folder / "bind-password"
    secret.write_text(directory.bind_password)
    secret.chmod(0o600)
    return ["-x", "-H", directory.url, "-D", directory.bind_dn, "-y", str(secret)]


def machine_notes() -> list[str]:
    """What a reader needs to compare runs: CPU, load, Python, OpenLDAP."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    slapd = subprocess.run(
        ["/usr/sbin/slapd", "-VV"], capture_output=True, text=True, check=False
    ).stderr.splitlines()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return [
        f"{os.cpu_count()} x {cpu}; load average {load}",
        f"Python {platform.python_version()} on {platform.platform()}",
        (slapd[0].strip() if slapd else "slapd version unknown"),
    ]


def render_table(results: Sequence[Result]) -> str:
    """The results as a Markdown table (readable on a terminal too)."""
    lines = [
        "| target | figure | umacct | reference | ratio | limit | result |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for result in results:
        lines.append(
            f"| {result.target} | {result.figure} | {result.measured:.3f} {result.unit} "
            f"| {result.reference:.3f} {result.unit} | {result.ratio:.2f}x "
            f"| {result.limit:.2f}x | {result.verdict} |"
        )
    notes = [f"- {r.target} {r.figure}: {r.note}" for r in results if r.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def with_bytecode_cache(env: dict[str, str]) -> dict[str, str]:
    """``env`` with Python's compiled modules written to, and read from, ``bench/out/pycache``.

    Installed, the tool's modules are compiled once (pip writes their bytecode on install),
    like the libraries both sides import. A development tree run with PYTHONDONTWRITEBYTECODE
    set would compile the tool's modules on every run, and only those: a cost no installed
    copy pays. The warm-up run of each command fills the cache.
    """
    kept = {name: value for name, value in env.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return kept | {"PYTHONPYCACHEPREFIX": str(OUT / "pycache")}
