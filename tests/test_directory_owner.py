"""Each directory connection has one owner: the tool's ``Wire``, never a socket of ldap3's.

The rule is checked on the source (AST) of every module of the tool, so that it holds for
code written later too: no module touches another library's connection socket, message-id
counter or socket-wrapping method; inside the directory package, only ``wire`` reads and
writes sockets, only ``connection`` opens them and only ``tls`` wraps them.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "umacct"
DIRECTORY = PACKAGE / "directory"

LDAP3_PRIVATES = {"socket", "next_message_id", "strategy", "_outstanding"}
"""Attributes through which code reaches an ldap3 connection's socket, strategy or message ids
(the ``socket`` module's own ``socket.socket`` aside)."""
SOCKET_IO = {"recv", "recv_into", "recvfrom", "send", "sendall", "sendto", "makefile"}
SOCKET_OPENING = {"create_connection", "socket", "socketpair", "fromfd"}
TLS_WRAPPING = {"wrap_socket", "do_handshake"}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imports_ldap3(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == "ldap3" for alias in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "ldap3":
            return True
    return False


def ldap3_socket_uses(source: str) -> list[str]:
    """Where a module reaches into a library connection's socket or ids, or overrides its TLS.

    Whether the module imports ldap3 does not matter: the connection may be handed to it.
    """
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        is_module = isinstance(node, ast.Attribute) and (
            isinstance(node.value, ast.Name) and node.value.id == "socket"
        )
        if isinstance(node, ast.Attribute) and node.attr in LDAP3_PRIVATES and not is_module:
            found.append(f"line {node.lineno}: .{node.attr}")
        if isinstance(node, ast.FunctionDef) and node.name in TLS_WRAPPING:
            found.append(f"line {node.lineno}: overrides {node.name}")
    return found


def attribute_calls(source: str, names: set[str]) -> list[int]:
    """The lines calling ``something.NAME(...)`` for one of ``names``."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in names
    ]


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_sec41_no_module_of_the_tool_touches_a_socket_of_ldap3s() -> None:
    offences = {
        relative(path): uses
        for path in modules()
        if (uses := ldap3_socket_uses(path.read_text(encoding="utf-8")))
    }
    assert offences == {}


def test_only_the_directory_package_may_import_ldap3() -> None:
    importing = [
        relative(path)
        for path in modules()
        if imports_ldap3(ast.parse(path.read_text(encoding="utf-8")))
        and DIRECTORY not in path.parents
    ]
    assert importing == []


@pytest.mark.parametrize(
    ("names", "owner"),
    [(SOCKET_IO, "wire.py"), (SOCKET_OPENING, "connection.py"), (TLS_WRAPPING, "tls.py")],
)
def test_sec41_inside_the_directory_package_one_module_does_each_socket_job(
    names: set[str], owner: str
) -> None:
    elsewhere = {
        path.name: lines
        for path in sorted(DIRECTORY.glob("*.py"))
        if path.name != owner
        and (lines := attribute_calls(path.read_text(encoding="utf-8"), names))
    }
    assert elsewhere == {}


def test_the_checks_catch_what_the_tool_once_did() -> None:
    """The borrowing this rule forbids: ldap3's socket written, its ids taken, its TLS overridden."""
    borrowed = (
        "import ldap3\n"
        "class Tls(ldap3.Tls):\n"
        "    def wrap_socket(self, connection, do_handshake=False):\n"
        "        connection.socket = None\n"
        "def send(connection, data):\n"
        "    connection.socket.sendall(data)\n"
        "    return connection.server.next_message_id()\n"
    )
    assert sorted(ldap3_socket_uses(borrowed)) == [
        "line 3: overrides wrap_socket",
        "line 4: .socket",
        "line 6: .socket",
        "line 7: .next_message_id",
    ]
    assert ldap3_socket_uses("import socket\nsocket.socket()\n") == []


def test_the_checks_catch_the_borrowing_of_the_previous_adapter() -> None:
    previous = subprocess.run(
        ["git", "show", "f94c5c8:umacct/directory/wire.py"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    if previous.returncode != 0:
        pytest.skip("no git history here")
    assert ldap3_socket_uses(previous.stdout)


def test_sec41_connecting_and_searching_never_loads_ldap3(slapd: object) -> None:
    """The tool's own client is the only one at run time (ldap3 is not even imported)."""
    script = (
        "import sys\n"
        "from umacct.config import parse_config\n"
        "from umacct.directory import connect\n"
        "from pathlib import Path\n"
        f"document = {slapd.config_dict(Path('/nonexistent'))!r}\n"  # type: ignore[attr-defined]
        "settings = parse_config(document).directory\n"
        f"with connect(settings, {slapd.bind_password!r}) as directory:\n"  # type: ignore[attr-defined]
        "    list(directory.search(settings.people_dn, '(uid=*)', ['uid']))\n"
        "    directory.whoami()\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('ldap3', 'pyasn1')))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
