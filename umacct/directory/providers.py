"""Each configured server on its own: its contextCSN, and what an anonymous session reads.

``connect()`` uses the first server that answers; ``doctor`` and the sweep also need to
look at every provider of ``[directory] urls`` (do they hold the same changes?) and at
what a connection that never bound may read (the state branch must show it nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from umacct.config import DirectoryConfig
from umacct.directory.adapter import Directory
from umacct.directory.connection import (
    InvalidCredentials,
    ServerFailure,
    bind_method,
    checked_addresses,
    open_bound,
    open_unbound,
    parse_url,
)
from umacct.errors import UmacctError, UnavailableError

CONTEXT_CSN = "contextCSN"
_ANONYMOUS_SIZE_LIMIT = 10
"""Entries an anonymous search may return before it stops: one is already too many."""


@dataclass(frozen=True)
class Csn:
    """One change sequence number: ``20260101120000.123456Z#000000#001#000000``."""

    text: str
    time: datetime
    server_id: str

    @classmethod
    def parse(cls, text: str) -> Csn | None:
        """The CSN of ``text``, or None when it is not one."""
        parts = text.strip().split("#")
        if len(parts) != 4:
            return None
        try:
            stamp = datetime.strptime(parts[0], "%Y%m%d%H%M%S.%fZ").replace(tzinfo=UTC)
        except ValueError:
            return None
        return cls(text.strip(), stamp, parts[2])


@dataclass(frozen=True)
class ProviderReading:
    """What one server of ``[directory] urls`` said: its contextCSN values, or why not."""

    url: str
    csns: tuple[Csn, ...] = ()
    context: str | None = None
    """The entry the values were read from (the base DN, or the naming context above it)."""
    transport: str | None = None
    """``TLSv1.3``..., ``ldapi``, or ``no TLS``; None when the server was not reached."""
    error: str | None = None

    @property
    def newest(self) -> dict[str, Csn]:
        """The newest CSN of each server ID."""
        found: dict[str, Csn] = {}
        for csn in self.csns:
            if csn.server_id not in found or csn.time > found[csn.server_id].time:
                found[csn.server_id] = csn
        return found


def transport_words(directory: Directory) -> str:
    """How the connection is carried: its TLS version, ``ldapi``, or ``no TLS``."""
    if directory.url.startswith("ldapi:"):
        return "ldapi"
    return directory.tls_version or "no TLS"


def each_provider(
    settings: DirectoryConfig, password: str | None
) -> Iterator[tuple[str, Directory | str]]:
    """Every configured server in order: a bound connection (the caller closes it), or why not."""
    method = bind_method(settings)
    addresses, password = checked_addresses(settings, password)
    for address in addresses:
        try:
            wire = open_bound(address, settings, settings.bind_dn, password, method)
        except ServerFailure as failure:
            yield address.url, str(failure)
            continue
        except InvalidCredentials:
            yield address.url, "bind refused: invalid credentials"
            continue
        except UmacctError as error:
            yield address.url, error.message
            continue
        yield address.url, Directory(wire, address, settings)


def context_csns(directory: Directory, base_dn: str) -> tuple[str, tuple[Csn, ...]]:
    """The contextCSN values of ``base_dn``, else of the naming context that holds it."""
    entry = directory.read(base_dn, [CONTEXT_CSN])
    values = entry.get(CONTEXT_CSN) if entry is not None else []
    context = base_dn
    if not values:
        suffix = _naming_context(directory, base_dn)
        if suffix is not None and suffix.lower() != base_dn.lower():
            entry = directory.read(suffix, [CONTEXT_CSN])
            values = entry.get(CONTEXT_CSN) if entry is not None else []
            context = suffix
    parsed = (Csn.parse(value) for value in values)
    return context, tuple(csn for csn in parsed if csn is not None)


def _naming_context(directory: Directory, base_dn: str) -> str | None:
    lowered = base_dn.lower().replace(" ", "")
    contexts = directory.root_dse().get("namingContexts", [])
    holding = [
        c for c in contexts
        if lowered == c.lower().replace(" ", "")
        or lowered.endswith("," + c.lower().replace(" ", ""))
    ]  # fmt: skip
    return max(holding, key=len) if holding else None


def read_providers(settings: DirectoryConfig, password: str | None) -> list[ProviderReading]:
    """The contextCSN of the base on every configured server, bound as the tool."""
    readings = []
    for url, reached in each_provider(settings, password):
        if isinstance(reached, str):
            readings.append(ProviderReading(url, error=reached))
            continue
        with reached:
            try:
                context, csns = context_csns(reached, settings.base_dn)
            except UmacctError as error:
                readings.append(ProviderReading(url, error=error.message))
                continue
            readings.append(ProviderReading(url, csns, context, transport_words(reached)))
    return readings


def anonymous_entries(settings: DirectoryConfig, url: str, base: str) -> list[str]:
    """The DNs an anonymous session reads under ``base`` on ``url`` (at most a few).

    A refusal of the search (no such entry, insufficient access, anonymous binds
    disallowed, TLS required) means nothing was read: the entries received before it are
    returned. UnavailableError when the server cannot be reached or the search is cut.
    """
    address = parse_url(url)
    try:
        wire = open_unbound(address, settings)
    except ServerFailure as failure:
        raise UnavailableError(f"{address.url}: {failure}") from None
    seen: list[str] = []
    with Directory(wire, address, settings) as session:
        search = session.search(
            base, "(objectClass=*)", [], scope="sub", page_size=0,
            size_limit=_ANONYMOUS_SIZE_LIMIT,
        )  # fmt: skip
        try:
            for entry in search:
                seen.append(entry.dn)
        except UnavailableError:
            raise
        except UmacctError:
            pass  # refused, or stopped at the size limit: what came is what it could read
    return seen
