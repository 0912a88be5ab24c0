"""A production install needs no test extras: the tool imports only what it declares."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "umacct"
MODULE_OF = {
    "email-validator": "email_validator",
    "tomli-w": "tomli_w",
    "python-dateutil": "dateutil",
}
WEB_ONLY = ("web",)
"""Folders of the package that may use the ``web`` extra (``umacct serve``)."""


def _distributions(requirements: list[str]) -> set[str]:
    names = {re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0] for requirement in requirements}
    return {MODULE_OF.get(name, name.replace("-", "_")) for name in names}


def _imports() -> dict[str, set[str]]:
    """Each third-party top-level module the package imports, with the files importing it."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "umacct" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(PACKAGE)))
    return found


def test_the_package_imports_only_declared_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    core = _distributions(project["dependencies"])
    web = _distributions(project["optional-dependencies"]["web"])
    for module, files in sorted(_imports().items()):
        if module in core:
            continue
        assert module in web, f"{module} (imported by {sorted(files)}) is not a declared dependency"
        outside = [name for name in files if not name.startswith(WEB_ONLY)]
        assert not outside, f"{module} is of the web extra, but {outside} import it"


def test_the_test_extras_are_not_needed_to_run() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    test_only = _distributions(project["optional-dependencies"]["test"]) - _distributions(
        project["dependencies"] + project["optional-dependencies"]["web"]
    )
    assert {"pytest", "hypothesis", "selenium"} <= test_only
    assert not test_only & set(_imports()), test_only & set(_imports())


def test_readme_documents_a_production_install() -> None:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("## Installing on a server", 1)[1].split("\n## ", 1)[0]
    assert "pipx install" in section and "[test]" not in section
    assert "umacct[web]" in section
