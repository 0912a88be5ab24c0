"""Start, find and stop a throwaway OpenLDAP server for the demo, the tests and the benchmarks.

Everything of one instance lives in its folder: ``slapd.d`` (cn=config), ``slapd-data`` (the
mdb database), ``slapd.log``, ``state.json`` (what another process needs to reach or stop it)
and, when the folder's path is short enough, the ldapi socket. ``data`` is left to the tool's
own data dir (``umacct localdir start`` points ``[paths] data_dir`` there): deleting it, as
docs/state.md allows for a host's data folder, loses no entry. A folder made before
``slapd-data`` keeps its database in ``data``: cn=config names it, and a restart reads it
there (``--reset`` builds the new layout).
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
from typing import Any, Literal, Self
from urllib.parse import quote

from umacct.errors import InvalidInputError, NotFoundError, RefusedError, UnavailableError
from umacct.ldif import entries_to_ldif
from umacct.localdir.cnconfig import Replication, ServerFiles, Tree, base_entries, config_ldif
from umacct.localdir.population import generate_people
from umacct.localdir.profiles import profiles_as_toml
from umacct.localdir.tls import SERVER_NAME, ServerCertificate, make_test_tls

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SLAPCAT = Path("/usr/sbin/slapcat")
CLIENT_TOOLS = ("ldapwhoami", "ldapsearch", "ldapadd", "ldapmodify", "ldapdelete")
INSTALL_HINT = "install them with 'apt-get install slapd ldap-utils'"
STATE_FILE = "state.json"
DATABASE_FOLDER = "slapd-data"
"""The mdb database's folder in an instance's folder (``olcDbDirectory``)."""
LOG_FILE = "slapd.log"
# sun_path holds 108 bytes with the final NUL; keep a margin.
MAX_SOCKET_PATH = 100
PORT_ATTEMPTS = 5
PORT_PROBES = 50
LOWEST_PORT = 20000
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LINUX_EPHEMERAL_LOW = 32768
POLL_SECONDS = 0.02
LOG_LINES_IN_ERRORS = 15
TlsChoice = Literal["none", "starttls", "ldaps"]


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
    tls_port: int | None = None
    """The ldaps port, when the instance was started with TLS (StartTLS is on ``port``)."""
    ca_file: Path | None = None
    """The test CA that signed the server's certificate, when started with TLS."""
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def url(self) -> str:
        """The LDAP URL on the loopback interface."""
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def state_dn(self) -> str:
        """The branch of the tool's state, made at start, that only ``bind_dn`` may use."""
        return Tree(self.base_dn).state_dn

    @property
    def ldapi_url(self) -> str:
        """The URL of the Unix socket, where the current OS user is the directory manager."""
        return ldapi_url(self.socket_path)

    def urls_for(self, tls: TlsChoice) -> list[str]:
        """The URLs a client configured with ``tls`` uses: by name, as certificates need."""
        if tls == "none":
            return [self.url]
        if self.tls_port is None:
            raise InvalidInputError(
                f"local directory in {self.folder}: started without TLS, no {tls} there"
            )
        if tls == "ldaps":
            return [f"ldaps://{SERVER_NAME}:{self.tls_port}"]
        return [f"ldap://{SERVER_NAME}:{self.port}"]

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
            _stop_orphan(self.pid, timeout)
        if self.socket_path.parent != self.folder:
            # Already gone, or not empty: either way it is not ours to clean.
            with contextlib.suppress(OSError):
                self.socket_path.parent.rmdir()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would; the data stays. Idempotent."""
        atexit.unregister(self.stop)
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait()
        elif _is_our_slapd(self.pid, self.folder):
            os.kill(self.pid, signal.SIGKILL)
            _wait_until_gone(self.pid)

    def restart(self, ready_timeout: float = 10.0) -> None:
        """Start the server again on the same folder, ports and data, stopping it first if it runs.

        Every entry written before a stop or a kill is still there afterwards. An instance
        started by this process is relaunched as its child; one found with ``attach`` is
        relaunched detached, as the CLI leaves it.
        """
        detach = self._process is None
        self.stop()
        # stop() removes a socket folder kept outside the instance folder: slapd needs it back.
        self.socket_path.parent.mkdir(mode=0o700, exist_ok=True)
        _launch(self, detach)
        try:
            _wait_until_ready(self, ready_timeout)
        except _PortTaken as taken:
            raise UnavailableError(
                f"local directory: cannot listen on port {self.port} again: {taken}"
            ) from None
        _adopt(self, detach)

    def config_dict(self, data_dir: Path, tls: TlsChoice = "none") -> dict[str, Any]:
        """A TOML-ready umacct configuration pointing at this directory.

        With ``tls`` set to ``"starttls"`` or ``"ldaps"`` (the instance must have been started
        with TLS), the URLs name ``localhost`` and ``ca_file`` is the test CA.
        """
        settings: dict[str, Any] = {
            "urls": self.urls_for(tls),
            "tls": tls,
            "bind_dn": self.bind_dn,
            "base_dn": self.base_dn,
            "people_dn": self.people_dn,
        }
        if tls != "none":
            settings["ca_file"] = str(self.ca_file)
        return {
            "directory": settings,
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
    tls: bool = False,
    ready_timeout: float = 10.0,
    detach: bool = False,
    today: date | None = None,
) -> LocalDirectory:
    """Build a fresh directory in ``folder`` (a new temporary folder by default) and start it.

    The base tree and ``population`` generated people (see ``generate_people``) are loaded
    before the server starts. Without ``port`` a free one is chosen. With ``tls`` a test CA
    and a certificate for ``localhost`` are made in ``folder/tls``: the server offers StartTLS
    on its port and ldaps on a second one. The server is stopped when this process exits,
    unless ``detach`` is set (the CLI leaves it running). To start it again with its data,
    use ``LocalDirectory.restart``.
    """
    require_openldap()
    folder = prepare_folder(folder)
    plan = InstancePlan(
        folder=folder, tree=Tree(base_dn), bind_password=secrets.token_urlsafe(24),
        socket_path=socket_path_for(folder),
        certificate=make_test_tls(folder / "tls") if tls else None,
    )  # fmt: skip
    build_config(plan, durable=durable, supann_schema=supann_schema)
    people = generate_people(
        population, seed, people_dn=plan.tree.people_dn, supann=supann_schema, today=today
    )
    load_entries(plan, entries_to_ldif([*base_entries(plan.tree, plan.bind_password), *people]))
    return serve(plan, port=port, ready_timeout=ready_timeout, detach=detach)


def attach(folder: Path) -> LocalDirectory:
    """The instance whose ``state.json`` is in ``folder`` (started by another process)."""
    path = Path(folder).absolute() / STATE_FILE
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"{path.parent}: no local directory there (no {STATE_FILE})") from None
    ca_file = state.get("ca_file")
    return LocalDirectory(
        folder=path.parent, port=state["port"], base_dn=state["base_dn"],
        people_dn=state["people_dn"], bind_dn=state["bind_dn"],
        bind_password=state["bind_password"], root_dn=state["root_dn"], pid=state["pid"],
        socket_path=Path(state["socket_path"]), tls_port=state.get("tls_port"),
        ca_file=Path(ca_file) if ca_file else None,
    )  # fmt: skip


# --- building (also used by ``replication`` for a pair of providers) ----------------------


@dataclass(frozen=True)
class InstancePlan:
    """An instance before it runs: its folder, DNs, secret, socket and TLS files."""

    folder: Path
    tree: Tree
    bind_password: str = field(repr=False)
    socket_path: Path
    certificate: ServerCertificate | None

    @property
    def config_dir(self) -> Path:
        """cn=config, as slapd keeps it."""
        return self.folder / "slapd.d"


class _PortTaken(Exception):
    """slapd could not listen on its port: another process took it."""


def require_openldap() -> None:
    """Raise UnavailableError, saying how to install them, when OpenLDAP's programs are missing."""
    missing = [str(path) for path in (SLAPD, SLAPADD) if not path.exists()]
    missing += [tool for tool in CLIENT_TOOLS if shutil.which(tool) is None]
    if missing:
        raise UnavailableError(
            f"OpenLDAP programs not found ({', '.join(missing)}); {INSTALL_HINT}"
        )


def prepare_folder(folder: Path | None) -> Path:
    """The absolute, existing folder of a new instance; refused while an instance runs there."""
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="umacct-localdir-"))
    folder = folder.absolute()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if (folder / STATE_FILE).exists():
        previous = attach(folder)
        if previous.is_running():
            raise RefusedError(
                f"{folder}: a local directory is already running there (pid {previous.pid}); "
                "stop it first"
            )
    return folder


def build_config(
    plan: InstancePlan,
    *,
    durable: bool = False,
    supann_schema: bool = True,
    replication: Replication | None = None,
) -> None:
    """Write a fresh cn=config for ``plan`` and empty its database folder."""
    data_dir = plan.folder / DATABASE_FOLDER
    for directory in (plan.config_dir, data_dir):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(mode=0o700)
    files = ServerFiles(
        data_dir=data_dir, pid_file=plan.folder / "slapd.pid",
        args_file=plan.folder / "slapd.args", uid=os.getuid(), gid=os.getgid(),
    )  # fmt: skip
    config = config_ldif(
        plan.tree, files, durable=durable, supann_schema=supann_schema,
        tls=plan.certificate, replication=replication,
    )  # fmt: skip
    _run([str(SLAPADD), "-n0", "-F", str(plan.config_dir)], config)


def load_entries(plan: InstancePlan, ldif: str) -> None:
    """Load entries into the stopped instance's database (``-w``: with its contextCSN)."""
    _run([str(SLAPADD), "-q", "-w", "-n1", "-F", str(plan.config_dir)], ldif)


def dump_entries(plan: InstancePlan) -> str:
    """Every entry of the stopped instance's database, operational attributes included."""
    return _run([str(SLAPCAT), "-n1", "-o", "ldif-wrap=no", "-F", str(plan.config_dir)], None)


def serve(
    plan: InstancePlan, *, port: int | None, ready_timeout: float, detach: bool
) -> LocalDirectory:
    """Start slapd for ``plan`` on ``port`` (or free ports) and wait until it answers."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        chosen_port = port or _free_port()
        directory = LocalDirectory(
            folder=plan.folder, port=chosen_port, base_dn=plan.tree.base_dn,
            people_dn=plan.tree.people_dn, bind_dn=plan.tree.bind_dn,
            bind_password=plan.bind_password, root_dn=plan.tree.root_dn, pid=0,
            socket_path=plan.socket_path,
            tls_port=_free_port() if plan.certificate else None,
            ca_file=plan.certificate.ca_file if plan.certificate else None,
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
    _adopt(directory, detach)
    return directory


def _adopt(directory: LocalDirectory, detach: bool) -> None:
    """Record a server that answers in its folder; stop it at exit unless it is detached."""
    _write_state(directory)
    if not detach:
        atexit.register(directory.stop)


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


def ldapi_url(socket_path: Path) -> str:
    """The ldapi URL of a socket path (percent-encoded, as OpenLDAP wants it)."""
    return "ldapi://" + quote(str(socket_path), safe="")


def socket_path_for(folder: Path) -> Path:
    """Where the ldapi socket of an instance in ``folder`` goes: inside it when the path is short."""
    inside = folder / "ldapi"
    if len(str(inside).encode()) <= MAX_SOCKET_PATH:
        return inside
    return Path(tempfile.mkdtemp(prefix="umacct-", dir="/tmp")) / "ldapi"


def _free_port() -> int:
    """A free port below the kernel's ephemeral range, or any free one if there is no room.

    Below that range no outgoing connection is ever given the port, so it stays free while
    the server is killed and restarted (a client socket on it would make the restart fail).
    """
    ephemeral_low = _ephemeral_port_low()
    if ephemeral_low - LOWEST_PORT >= PORT_PROBES:
        for _ in range(PORT_PROBES):
            candidate = LOWEST_PORT + secrets.randbelow(ephemeral_low - LOWEST_PORT)
            if _can_listen(candidate):
                return candidate
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ephemeral_port_low() -> int:
    try:
        low, _ = EPHEMERAL_RANGE_FILE.read_text(encoding="ascii").split()
        return int(low)
    except (OSError, ValueError):
        return LINUX_EPHEMERAL_LOW


def _can_listen(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _write_state(directory: LocalDirectory) -> None:
    state = {
        "pid": directory.pid, "port": directory.port, "base_dn": directory.base_dn,
        "people_dn": directory.people_dn, "bind_dn": directory.bind_dn,
        "bind_password": directory.bind_password, "root_dn": directory.root_dn,
        "socket_path": str(directory.socket_path), "tls_port": directory.tls_port,
        "ca_file": str(directory.ca_file) if directory.ca_file else None,
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
    if directory.tls_port is not None:
        listeners += f" ldaps://127.0.0.1:{directory.tls_port}"
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


def _stop_orphan(pid: int, timeout: float) -> None:
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_alive(pid):
            return
        time.sleep(POLL_SECONDS)
    os.kill(pid, signal.SIGKILL)
    _wait_until_gone(pid)


def _wait_until_gone(pid: int) -> None:
    """Wait until the process ``pid`` (checked to be ours before it was signalled) has exited.

    It is watched by pid, not by its command line: an exiting process loses its command line
    before it closes its files, so it may still hold its listening port by then.
    """
    while _is_alive(pid):
        time.sleep(POLL_SECONDS)
