"""Start, find and stop a throwaway OpenLDAP server for the demo, the tests and the benchmarks.

Everything of one instance lives in its folder: ``slapd.d`` (cn=config), ``data`` (the mdb
database), ``slapd.log``, ``state.json`` (what another process needs to reach or stop it) and,
when the folder's path is short enough, the ldapi socket.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

from umacct.errors import NotFoundError, RefusedError, UnavailableError
from umacct.ldif import entries_to_ldif
from umacct.localdir.cnconfig import ServerFiles, Tree, base_entries, config_ldif
from umacct.localdir.population import generate_people
from umacct.localdir.profiles import profiles_as_toml

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
CLIENT_TOOLS = ("ldapwhoami", "ldapsearch", "ldapadd", "ldapmodify", "ldapdelete")
INSTALL_HINT = "install them with 'apt-get install slapd ldap-utils'"
STATE_FILE = "state.json"
LOG_FILE = "slapd.log"
# sun_path holds 108 bytes with the final NUL; keep a margin.
MAX_SOCKET_PATH = 100
PORT_ATTEMPTS = 5
POLL_SECONDS = 0.02
LOG_LINES_IN_ERRORS = 15


@dataclass
class LocalDirectory:
    """A running local OpenLDAP server, and what the tool needs to use it."""

    folder: Path
    port: int
    base_dn: str
    people_dn: str
    bind_dn: str
    bind_password: str = field(repr=False)
    root_dn: str
    pid: int
    socket_path: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        """The LDAP URL on the loopback interface."""
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldapi_url(self) -> str:
        """The URL of the Unix socket, where the current OS user is the directory manager."""
        return "ldapi://" + quote(str(self.socket_path), safe="")

    def root_args(self) -> list[str]:
        """Arguments that make ldapsearch, ldapadd, ldapmodify... act as the directory manager."""
        return ["-H", self.ldapi_url, "-Y", "EXTERNAL", "-Q"]

    def ldif_env(self) -> dict[str, str]:
        """The environment for the LDAP client tools: the user's ldap.conf and ldaprc ignored."""
        return {**os.environ, "LDAPNOINIT": "1"}

    def run_root(self, tool: str, *args: str, ldif: str | None = None) -> str:
        """Run an LDAP client tool as the directory manager and return its output.

        Raises ``UnavailableError`` with the tool's own message when it fails.
        """
        return _run([tool, *self.root_args(), *args], ldif, env=self.ldif_env())

    def clear_people(self) -> None:
        """Delete every entry under the people unit (the unit itself stays)."""
        listing = self.run_root(
            "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-s", "one", "-b", self.people_dn, "1.1"
        )
        dns = [line for line in listing.splitlines() if line.startswith("dn")]
        if dns:
            # ldapdelete reads one plain DN a line, each ending with a newline.
            self.run_root("ldapdelete", ldif="".join(_decode_dn(line) + "\n" for line in dns))

    def is_running(self) -> bool:
        """Whether this instance's slapd process is alive."""
        if self._process is not None:
            return self._process.poll() is None
        return _is_our_slapd(self.pid, self.folder)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server: SIGTERM, then SIGKILL after ``timeout`` seconds. Idempotent.

        The folder and its files stay; only an empty socket folder outside it is removed.
        """
        atexit.unregister(self.stop)
        if self._process is not None:
            _stop_child(self._process, timeout)
        elif _is_our_slapd(self.pid, self.folder):
            _stop_orphan(self.pid, self.folder, timeout)
        if self.socket_path.parent != self.folder:
            # Already gone, or not empty: either way it is not ours to clean.
            with contextlib.suppress(OSError):
                self.socket_path.parent.rmdir()

    def config_dict(self, data_dir: Path) -> dict[str, Any]:
        """A TOML-ready umacct configuration pointing at this directory."""
        return {
            "directory": {
                "urls": [self.url],
                "tls": "none",
                "bind_dn": self.bind_dn,
                "base_dn": self.base_dn,
                "people_dn": self.people_dn,
            },
            "paths": {"data_dir": str(data_dir)},
            "mail": {"transport": "outbox"},
            "profiles": profiles_as_toml(),
        }

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start(
    folder: Path | None = None,
    *,
    port: int | None = None,
    population: int = 0,
    seed: int = 1,
    base_dn: str = "dc=example,dc=org",
    durable: bool = False,
    supann_schema: bool = True,
    ready_timeout: float = 10.0,
    detach: bool = False,
    today: date | None = None,
) -> LocalDirectory:
    """Build a fresh directory in ``folder`` (a new temporary folder by default) and start it.

    The base tree and ``population`` generated people (see ``generate_people``) are loaded
    before the server starts. Without ``port`` a free one is chosen. The server is stopped
    when this process exits, unless ``detach`` is set (the CLI leaves it running).
    """
    _require_openldap()
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="umacct-localdir-"))
    folder = folder.absolute()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _refuse_if_running(folder)
    tree = Tree(base_dn)
    bind_password = secrets.token_urlsafe(24)
    _build(folder, tree, bind_password, population, seed, durable, supann_schema, today)
    socket_path = _socket_path(folder)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        chosen_port = port or _free_port()
        directory = LocalDirectory(
            folder=folder, port=chosen_port, base_dn=tree.base_dn, people_dn=tree.people_dn,
            bind_dn=tree.bind_dn, bind_password=bind_password, root_dn=tree.root_dn,
            pid=0, socket_path=socket_path,
        )  # fmt: skip
        _launch(directory, detach)
        try:
            _wait_until_ready(directory, ready_timeout)
        except _PortTaken as taken:
            if port is not None or attempt == PORT_ATTEMPTS:
                raise UnavailableError(
                    f"local directory: cannot listen on port {chosen_port}: {taken}"
                ) from None
            continue
        break
    _write_state(directory)
    if not detach:
        atexit.register(directory.stop)
    return directory


def attach(folder: Path) -> LocalDirectory:
    """The instance whose ``state.json`` is in ``folder`` (started by another process)."""
    path = Path(folder).absolute() / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"{path.parent}: no local directory there (no {STATE_FILE})") from None
    return LocalDirectory(
        folder=path.parent, port=state["port"], base_dn=state["base_dn"],
        people_dn=state["people_dn"], bind_dn=state["bind_dn"],
        bind_password=state["bind_password"], root_dn=state["root_dn"], pid=state["pid"],
        socket_path=Path(state["socket_path"]),
    )  # fmt: skip


# --- building -----------------------------------------------------------------------------


class _PortTaken(Exception):
    """slapd could not listen on its port: another process took it."""


def _require_openldap() -> None:
    missing = [str(path) for path in (SLAPD, SLAPADD) if not path.exists()]
    missing += [tool for tool in CLIENT_TOOLS if shutil.which(tool) is None]
    if missing:
        raise UnavailableError(
            f"OpenLDAP programs not found ({', '.join(missing)}); {INSTALL_HINT}"
        )


def _refuse_if_running(folder: Path) -> None:
    if (folder / STATE_FILE).exists():
        previous = attach(folder)
        if previous.is_running():
            raise RefusedError(
                f"{folder}: a local directory is already running there (pid {previous.pid}); "
                "stop it first"
            )


def _build(
    folder: Path,
    tree: Tree,
    bind_password: str,
    population: int,
    seed: int,
    durable: bool,
    supann_schema: bool,
    today: date | None,
) -> None:
    config_dir, data_dir = folder / "slapd.d", folder / "data"
    for directory in (config_dir, data_dir):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(mode=0o700)
    files = ServerFiles(
        data_dir=data_dir, pid_file=folder / "slapd.pid", args_file=folder / "slapd.args",
        uid=os.getuid(), gid=os.getgid(),
    )  # fmt: skip
    config = config_ldif(tree, files, durable=durable, supann_schema=supann_schema)
    _run([str(SLAPADD), "-n0", "-F", str(config_dir)], config)
    people = generate_people(
        population, seed, people_dn=tree.people_dn, supann=supann_schema, today=today
    )
    data = entries_to_ldif([*base_entries(tree, bind_password), *people])
    _run([str(SLAPADD), "-q", "-n1", "-F", str(config_dir)], data)


def _run(argv: list[str], stdin: str | None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()[-LOG_LINES_IN_ERRORS:]
        raise UnavailableError(f"{Path(argv[0]).name} failed: " + " | ".join(message))
    return result.stdout


def _decode_dn(line: str) -> str:
    if line.startswith("dn:: "):
        return base64.b64decode(line[5:]).decode("utf-8")
    return line.removeprefix("dn: ")


def _socket_path(folder: Path) -> Path:
    inside = folder / "ldapi"
    if len(str(inside).encode()) <= MAX_SOCKET_PATH:
        return inside
    return Path(tempfile.mkdtemp(prefix="umacct-", dir="/tmp")) / "ldapi"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _write_state(directory: LocalDirectory) -> None:
    state = {
        "pid": directory.pid, "port": directory.port, "base_dn": directory.base_dn,
        "people_dn": directory.people_dn, "bind_dn": directory.bind_dn,
        "bind_password": directory.bind_password, "root_dn": directory.root_dn,
        "socket_path": str(directory.socket_path),
    }  # fmt: skip
    path = directory.folder / STATE_FILE
    path.unlink(missing_ok=True)
    # The file holds the service account's password: readable by its owner only.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
        json.dump(state, stream, indent=2)


# --- the process --------------------------------------------------------------------------


def _slapd_argv(directory: LocalDirectory) -> list[str]:
    listeners = f"{directory.url} {directory.ldapi_url}"
    # -d keeps slapd in the foreground; "none" still logs its errors on stderr (the log file).
    return [str(SLAPD), "-F", str(directory.folder / "slapd.d"), "-h", listeners, "-d", "none"]


def _launch(directory: LocalDirectory, detach: bool) -> None:
    log = directory.folder / LOG_FILE
    if detach:
        # The shell puts slapd in the background and exits: slapd outlives this process.
        script = 'log=$1; shift; "$@" </dev/null >>"$log" 2>&1 & echo $!'
        result = subprocess.run(
            ["/bin/sh", "-c", script, "sh", str(log), *_slapd_argv(directory)],
            capture_output=True, text=True, check=True, start_new_session=True,
        )  # fmt: skip
        directory.pid = int(result.stdout.strip())
        return
    with log.open("ab") as stream:
        process = subprocess.Popen(
            _slapd_argv(directory), stdin=subprocess.DEVNULL, stdout=stream, stderr=stream
        )
    directory.pid = process.pid
    directory._process = process


def _wait_until_ready(directory: LocalDirectory, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    whoami = ["ldapwhoami", *directory.root_args()]
    while time.monotonic() < deadline:
        if not directory.is_running():
            _fail_to_start(directory, "slapd exited")
        if directory.socket_path.exists():
            answer = subprocess.run(
                whoami, capture_output=True, env=directory.ldif_env(), timeout=timeout, check=False
            )
            if answer.returncode == 0:
                return
        time.sleep(POLL_SECONDS)
    directory.stop()
    _fail_to_start(directory, f"slapd did not answer within {timeout:g} s")


def _fail_to_start(directory: LocalDirectory, reason: str) -> None:
    log = directory.folder / LOG_FILE
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines() if log.exists() else []
    tail = " | ".join(lines[-LOG_LINES_IN_ERRORS:]) or "no log lines"
    port_taken = [line for line in lines if "Address already in use" in line]
    if port_taken:
        log.unlink()
        raise _PortTaken(port_taken[-1])
    raise UnavailableError(f"local directory in {directory.folder}: {reason}: {tail}")


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return False
    # The state letter follows the command name in parentheses; Z is a zombie, X is dead.
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _is_our_slapd(pid: int, folder: Path) -> bool:
    """Whether ``pid`` is alive and is the slapd of ``folder`` (pids get reused)."""
    if pid <= 0 or not _is_alive(pid):
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, PermissionError):
        return False
    return str(folder / "slapd.d").encode() in command


def _stop_child(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stop_orphan(pid: int, folder: Path, timeout: float) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_our_slapd(pid, folder):
            return
        time.sleep(POLL_SECONDS)
    os.kill(pid, signal.SIGKILL)
    while _is_our_slapd(pid, folder):
        time.sleep(POLL_SECONDS)
