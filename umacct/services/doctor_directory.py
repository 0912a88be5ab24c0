"""``doctor``'s look at the directory beyond the first connection.

The identity the server mapped, the TLS in use, the state branch (there, readable by the
tool, by nobody else, writable), and whether the providers of ``[directory] urls`` agree
(contextCSN).
"""

from __future__ import annotations

import contextlib
import secrets as pysecrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

from umacct.config import Config, state_backend
from umacct.datadir import STATE_FILE
from umacct.directory.providers import anonymous_entries, transport_words
from umacct.errors import NotFoundError, UmacctError, UnavailableError
from umacct.services.doctor import Check

if TYPE_CHECKING:
    from umacct.directory import Directory

STATE_DOC = "docs/state.md"
REPLICATION_DOC = "docs/replication.md"


def connection_check(directory: Directory) -> Check:
    """The server reached and how the connection is carried (TLS version, ldapi, cleartext)."""
    transport = transport_words(directory)
    if transport == "ldapi":
        words = "ldapi: the local socket, no TLS needed"
    elif transport == "no TLS":
        words = "no TLS: cleartext, allowed on loopback only"
    else:
        words = f"TLS, certificate verified: {transport}"
    return Check(
        "connection",
        True,
        f"{directory.url} ({words})",
        data={"url": directory.url, "tls": transport},
    )


def identity_check(directory: Directory, config: Config) -> Check:
    """Whom the server mapped the bind to (WhoAmI), for simple and SASL EXTERNAL binds."""
    from umacct.directory import mapped_identity

    identity = mapped_identity(directory)
    how = "SASL EXTERNAL over ldapi" if identity.method == "sasl_external" else "simple bind"
    data = {"authzid": identity.authzid, "dn": identity.dn, "method": identity.method}
    if not identity.authzid:
        return Check(
            "bind",
            False,
            f"the server sees an anonymous session ({how})",
            "check [directory] bind_dn and bind_method",
            data=data,
        )
    if identity.dn is not None and not identity.mapped:
        return Check(
            "bind",
            False,
            identity.describe(),
            "map the tool's OS user to its entry with an olcAuthzRegexp rule "
            '(docs/directory.md), or use bind_method = "simple"',
            data=data,
        )
    detail = f"the server maps this connection to {identity.authzid} ({how})"
    if (
        identity.method == "simple"
        and identity.dn is not None
        and identity.dn.lower() != config.directory.bind_dn.lower()
    ):
        return Check(
            "bind", True, f"{detail}, not to [directory] bind_dn {config.directory.bind_dn}",
            "check that this identity has the rights the tool needs", level="warn", data=data,
        )  # fmt: skip
    return Check("bind", True, detail, data=data)


def state_backend_check(config: Config) -> Check:
    """Which state store the tool uses, and where."""
    if state_backend(config) == "directory":
        return Check(
            "state backend",
            True,
            f"directory: {config.directory.state_dn}, shared by every host configured with it",
        )
    where = f"sqlite: {config.paths.data_dir}/{STATE_FILE}, this host only"
    if config.directory.state_dn:
        where += f" ([directory] state_dn is set: 'umacct state migrate', {STATE_DOC})"
    else:
        where += f" (several hosts share one state in the directory: {STATE_DOC})"
    return Check("state backend", True, where)


def state_branch_checks(directory: Directory, config: Config, write_test: bool) -> Iterator[Check]:
    """The state branch: exists and readable by the tool, read by nobody else, writable.

    With the SQLite backend and no ``state_dn``, nothing to check in the directory. With
    ``state_dn`` set but the SQLite backend still in use (a migration under way), a missing
    branch is a warning.
    """
    state_dn = config.directory.state_dn
    if state_dn is None:
        yield from _unseen_branch_checks(directory, config)
        return
    in_use = state_backend(config) == "directory"
    readable = _readable_check(directory, state_dn, in_use)
    yield readable
    if not readable.ok or readable.level == "warn":
        return
    yield _anonymous_check(config, state_dn)
    if write_test:
        yield _state_write_check(directory, state_dn)
    else:
        yield Check(
            "state branch: write",
            True,
            "not tested: 'umacct doctor --write-test' adds and deletes a probe entry there",
            level="skip",
        )


def _unseen_branch_checks(directory: Directory, config: Config) -> Iterator[Check]:
    """With state.db and no ``state_dn``: a branch other hosts keep records in fails.

    It is looked for where ``state init`` is told to make it: one level under the base, and
    one level under ``ou=system`` of the base. A branch that holds no record yet (made,
    not used) passes with a note: no host can have purged an identifier into it.
    """
    name = "state branch"
    for branch in _state_branches(directory, config.directory.base_dn):
        setting = f'set [directory] state_dn = "{branch}" (and [state] backend = "directory")'
        if not _holds_records(directory, branch):
            yield Check(name, True,
                        f"an empty state branch exists at {branch} (no record yet); this host "
                        "keeps its state in state.db", f"to share it: {setting}")  # fmt: skip
            continue
        yield Check(
            name,
            False,
            f"a shared state branch exists at {branch}: this host keeps its state in state.db "
            "and does not see the other hosts' purged identifiers and links",
            f"{setting}; {STATE_DOC}",
            data={"state_dn": branch},
        )


def _state_branches(directory: Directory, base_dn: str) -> list[str]:
    """The DNs of the state branches one level under ``base_dn`` and under its ``ou=system``."""
    from umacct.directory.escape import dn_join, filter_and, filter_eq
    from umacct.state.branch import BRANCH_DESCRIPTION, UNIT_CLASS

    wanted = filter_and(
        filter_eq("objectClass", UNIT_CLASS), filter_eq("description", BRANCH_DESCRIPTION)
    )
    found: list[str] = []
    for where in (base_dn, dn_join("ou", "system", base_dn)):
        with contextlib.suppress(NotFoundError):
            found += [entry.dn for entry in directory.search(where, wanted, [], scope="one")]
    return found


def _holds_records(directory: Directory, branch: str) -> bool:
    """Whether any unit of ``branch`` holds a record (one entry is enough to know)."""
    from umacct.state.branch import RECORD_CLASS, UNITS, unit_dn

    for unit in UNITS:
        where = unit_dn(branch, unit)
        with contextlib.suppress(NotFoundError):
            for _record in directory.search(
                where, f"(objectClass={RECORD_CLASS})", [], scope="one", size_limit=1
            ):
                return True  # the search stopped early is abandoned
    return False


def _readable_check(directory: Directory, state_dn: str, in_use: bool) -> Check:
    from umacct.state.branch import UNITS

    name = "state branch"
    init = f"run 'umacct state init' (the ACL first: {STATE_DOC})"
    try:
        found = {
            entry.dn.split(",", 1)[0].partition("=")[2].lower()
            for entry in directory.search(state_dn, "(objectClass=*)", [], scope="one")
        }
    except NotFoundError:
        words = f"{state_dn} does not exist on {directory.url}, or the tool's DN may not read it"
        if not in_use:
            return Check(name, True, f"{words}: not used yet", init, level="warn")
        return Check(name, False, words, init)
    except UmacctError as error:
        return Check(name, False, f"{state_dn}: {error.message}", f"the ACL of {STATE_DOC}")
    missing = [unit for unit in UNITS if unit not in found]
    if missing:
        return Check(
            name,
            in_use is False,
            f"{state_dn} on {directory.url} lacks ou={', ou='.join(missing)}",
            init,
            level="warn" if not in_use else "",
        )
    return Check(
        name,
        True,
        f"{state_dn} on {directory.url}: read by the tool's bind ({', '.join(UNITS)})",
    )


def _anonymous_check(config: Config, state_dn: str) -> Check:
    """An anonymous session, on every provider that answers, must read nothing of the branch."""
    name = "state branch: anonymous"
    fix = f'the ACL of {STATE_DOC}: to dn.subtree="{state_dn}" by dn.exact="<the tool\'s DN>" write by * none'
    checked, leaks, unreachable = [], [], []
    for url in config.directory.urls:
        try:
            seen = anonymous_entries(config.directory, url, state_dn)
        except UnavailableError:
            unreachable.append(url)
            continue
        checked.append(url)
        if seen:
            leaks.append(f"{url} shows {len(seen)}{'+' if len(seen) >= 10 else ''} ({seen[0]})")
    data = {"checked": checked, "unreachable": unreachable}
    if leaks:
        return Check(
            name,
            False,
            f"an anonymous session reads entries of the branch: {'; '.join(leaks)}",
            fix + " (before the rules that give read access to the tree; on each provider)",
            data=data,
        )
    if not checked:
        return Check(name, True, "no server answered an anonymous session", level="warn", data=data)
    detail = f"an anonymous session reads nothing of it on {', '.join(checked)}"
    if unreachable:
        detail += f" (not checked: {', '.join(unreachable)}, unreachable)"
    return Check(name, True, detail, data=data)


def _state_write_check(directory: Directory, state_dn: str) -> Check:
    from umacct.directory.escape import dn_join

    name = f"umacct-doctor-{pysecrets.token_hex(4)}"
    probe = dn_join("cn", name, state_dn)
    attributes = {"objectClass": ["applicationProcess"], "cn": [name]}
    fix = f"the tool's DN needs write access there: the ACL of {STATE_DOC}"
    return probe_check("state branch: write", directory, probe, attributes, state_dn, fix)


def probe_check(
    check: str,
    directory: Directory,
    probe: str,
    attributes: dict[str, list[str]],
    where: str,
    fix: str,
) -> Check:
    """Add ``probe`` and delete it: nothing is left behind, even when a step fails."""
    try:
        directory.add(probe, attributes)
    except UmacctError as error:
        _remove(directory, probe)  # the add may have been applied though its answer was lost
        return Check(check, False, f"cannot add a probe entry under {where}: {error.message}", fix)
    try:
        directory.delete(probe)
    except UmacctError as error:
        if not _remove(directory, probe):
            return Check(check, False,
                         f"added {probe} but could not delete it: {error.message}",
                         f"delete {probe} as the directory manager")  # fmt: skip
    return Check(check, True, f"added and deleted a probe entry under {where}")


def _remove(directory: Directory, dn: str) -> bool:
    """Delete ``dn`` if it is there; whether it is gone."""
    with contextlib.suppress(UmacctError):
        if directory.read(dn, []) is None:
            return True
        directory.delete(dn)
        return True
    return False


def replication_check(config: Config, password: str | None) -> Check:
    """With several ``[directory] urls``: whether the providers hold the same changes."""
    from umacct.services.replication import check_replication

    urls = config.directory.urls
    if len(urls) < 2:
        return Check("replication", True, "one server in [directory] urls: nothing to compare")
    report = check_replication(config.directory, password)
    data = {
        "providers": [
            {
                "url": r.url, "tls": r.transport, "context": r.context,
                "contextCSN": [csn.text for csn in r.csns], "error": r.error,
            }
            for r in report.readings
        ]
    }  # fmt: skip
    fix = f"check replication between the providers ({REPLICATION_DOC})"
    if not report.agree:
        return Check("replication", False, f"the providers disagree: {report.words()}",
                     fix + "; the sweep refuses to run meanwhile", data=data)  # fmt: skip
    notes = [f"{r.url} not reached: {r.error}" for r in report.unreachable]
    notes += [f"{r.url}: no contextCSN on {r.context or config.directory.base_dn} "
              "(not a replication provider?)" for r in report.without_csn]  # fmt: skip
    compared = report.compared
    agreed = (
        f"{len(compared)} providers agree (contextCSN "
        f"{', '.join(sorted(c.text for c in compared[0].newest.values()))})"
        if len(compared) >= 2
        else "fewer than two providers to compare"
    )
    if notes:
        return Check("replication", True, f"{agreed}; {'; '.join(notes)}", fix, level="warn",
                     data=data)  # fmt: skip
    return Check("replication", True, agreed, data=data)
