"""Two local OpenLDAP providers in multi-provider replication, for failover tests and demos.

Each provider runs the syncprov overlay and a refreshAndPersist syncrepl from the other,
reached over the other's ldapi socket as the root DN (SASL EXTERNAL). Both hold the same
data from the start: the first is loaded, then its database is copied into the second, so
entries keep their entryUUID and entryCSN and nothing has to be replicated at start-up.
"""

from __future__ import annotations

import secrets
import time
from datetime import date
from pathlib import Path
from typing import Any

from umacct.errors import TemporaryError
from umacct.ldif import entries_to_ldif
from umacct.localdir.cnconfig import Replication, Tree, base_entries
from umacct.localdir.population import generate_people
from umacct.localdir.slapd import (
    POLL_SECONDS,
    InstancePlan,
    LocalDirectory,
    TlsChoice,
    build_config,
    dump_entries,
    ldapi_url,
    load_entries,
    prepare_folder,
    require_openldap,
    serve,
    socket_path_for,
)
from umacct.localdir.tls import make_ca, make_server_certificate

PROVIDER_FOLDERS = ("provider1", "provider2")
# What "the same entries" means: user attributes plus the identity replication keeps.
_COMPARED_ATTRIBUTES = ("*", "entryUUID", "entryCSN")


def start_replicated_pair(
    folder: Path | None = None,
    *,
    population: int = 0,
    seed: int = 1,
    base_dn: str = "dc=example,dc=org",
    tls: bool = False,
    ready_timeout: float = 10.0,
    today: date | None = None,
) -> tuple[LocalDirectory, LocalDirectory]:
    """Build and start two providers replicating each other, in ``folder/provider1`` and ``2``.

    They share the base tree, the service account and its password, and ``population``
    generated people. With ``tls`` one test CA (``folder/tls/ca.pem``) signs a ``localhost``
    certificate for each. Both are stopped when this process exits; each can be killed and
    restarted (``LocalDirectory.kill``, ``restart``) and catches up with the other within
    seconds of coming back.
    """
    require_openldap()
    folder = prepare_folder(folder)
    authority = make_ca(folder / "tls") if tls else None
    tree = Tree(base_dn)
    bind_password = secrets.token_urlsafe(24)
    plans = []
    for name in PROVIDER_FOLDERS:
        provider_folder = prepare_folder(folder / name)
        certificate = (
            make_server_certificate(provider_folder / "tls", authority) if authority else None
        )
        plan = InstancePlan(
            folder=provider_folder, tree=tree, bind_password=bind_password,
            socket_path=socket_path_for(provider_folder), certificate=certificate,
        )  # fmt: skip
        plans.append(plan)
    first, second = plans
    for server_id, (plan, peer) in enumerate(((first, second), (second, first)), start=1):
        build_config(plan, replication=Replication(server_id, ldapi_url(peer.socket_path)))
    people = generate_people(population, seed, people_dn=tree.people_dn, today=today)
    load_entries(first, entries_to_ldif([*base_entries(tree, bind_password), *people]))
    load_entries(second, dump_entries(first))
    started = serve(first, port=None, ready_timeout=ready_timeout, detach=False)
    try:
        return started, serve(second, port=None, ready_timeout=ready_timeout, detach=False)
    except BaseException:
        started.stop()
        raise


def pair_config_dict(
    pair: tuple[LocalDirectory, LocalDirectory], data_dir: Path, tls: TlsChoice = "none"
) -> dict[str, Any]:
    """A TOML-ready configuration whose ``urls`` list the first provider, then the second."""
    first, second = pair
    config = first.config_dict(data_dir, tls)
    config["directory"]["urls"] = first.urls_for(tls) + second.urls_for(tls)
    return config


def replicated_entries(directory: LocalDirectory) -> list[str]:
    """Every entry of the directory as sorted LDIF records, for comparing two providers."""
    listing = directory.run_root(
        "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-b", directory.base_dn,
        "(objectClass=*)", *_COMPARED_ATTRIBUTES,
    )  # fmt: skip
    records = listing.strip().split("\n\n") if listing.strip() else []
    return sorted("\n".join(sorted(record.splitlines())) for record in records)


def context_csns(directory: LocalDirectory) -> list[str]:
    """The contextCSN values of the directory's base: one per server that wrote to it."""
    listing = directory.run_root(
        "ldapsearch", "-LLL", "-o", "ldif-wrap=no", "-s", "base", "-b", directory.base_dn,
        "contextCSN",
    )  # fmt: skip
    return sorted(
        line.removeprefix("contextCSN: ")
        for line in listing.splitlines()
        if line.startswith("contextCSN:")
    )


def wait_until_in_sync(
    pair: tuple[LocalDirectory, LocalDirectory], timeout: float = 30.0
) -> list[str]:
    """Wait until both providers have the same contextCSN and entries; return the entries.

    Raises TemporaryError naming the difference when they still differ after ``timeout``.
    """
    first, second = pair
    deadline = time.monotonic() + timeout
    while True:
        if context_csns(first) == context_csns(second):
            entries = replicated_entries(first)
            if entries == replicated_entries(second):
                return entries
        if time.monotonic() >= deadline:
            raise TemporaryError(
                f"the providers are still out of sync after {timeout:g} s: contextCSN "
                f"{context_csns(first)} against {context_csns(second)}, "
                f"{len(replicated_entries(first))} entries against "
                f"{len(replicated_entries(second))}"
            )
        time.sleep(POLL_SECONDS * 10)
