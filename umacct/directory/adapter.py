"""The directory as the rest of the tool sees it: typed entries, typed changes, mapped errors.

``Directory`` is a thin wrapper over one bound connection (one per thread), a ``Wire`` that
alone uses its socket; every request is encoded by ``ber``. It takes no decision about SUPANN: services say what to read and write, this module makes it safe
(escaping is the caller's job through ``escape``; results are never ignored; searches never
end silently short).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from umacct.closing import Closing
from umacct.config import DirectoryConfig
from umacct.directory import ber
from umacct.directory.connection import (
    InvalidCredentials,
    ServerAddress,
    ServerFailure,
    open_bound,
    open_with_failover,
)
from umacct.directory.escape import AnyEqual
from umacct.directory.modifies import ModifyBatch, ModifyRequest
from umacct.directory.referrals import (
    Referral,
    continued_scope,
    followed_again,
    not_followed,
    parse_referral,
)
from umacct.directory.results import (
    NO_SUCH_OBJECT,
    REFERRAL,
    SUCCESS,
    check_result,
    result_error,
)
from umacct.directory.schema import Subschema, parse_subschema
from umacct.directory.wire import (
    TRANSACTION_END,
    TRANSACTION_START,
    AddResult,
    AddsSent,
    Item,
    PipelinedAdds,
    RawEntry,
    SearchEnd,
    Wire,
    commit_together,
    missing_values,
    transaction_fits,
)
from umacct.errors import ConfigError, InvalidInputError, UnavailableError

ASSERTION_CONTROL = "1.3.6.1.1.12"
PAGED_RESULTS_CONTROL = "1.2.840.113556.1.4.319"
CONTENT_SYNC_CONTROL = "1.3.6.1.4.1.4203.1.9.1.1"
WHO_AM_I = "1.3.6.1.4.1.4203.1.11.3"
RFC_3062_MODIFY = "1.3.6.1.4.1.4203.1.11.1"
NO_ATTRIBUTES = "1.1"
_ROOT_DSE_ATTRIBUTES = ("*", "+")
_ANY_ENTRY = ber.encode_filter("(objectClass=*)")
ADD_WINDOW = 200
"""Adds in flight at once, and in one transaction: well under slapd's olcConnMaxPendingAuth
(1000), which closes the session when exceeded, and enough to keep the server busy while the
client encodes."""
MODIFY_WINDOW = 16
"""Modifies in flight at once (``modify_many``): enough for the server never to wait for the
client, few enough that a lost connection leaves few of them to settle."""


@dataclass(frozen=True)
class Entry:
    """One directory entry as read: its DN and the values of the attributes asked for."""

    dn: str
    attributes: dict[str, list[str]]
    """Lower-cased attribute name -> values decoded from UTF-8."""
    binary: dict[str, list[bytes]] = field(default_factory=dict)
    """Lower-cased attribute name -> values that are not UTF-8 (photos, certificates)."""
    spellings: dict[str, str] = field(default_factory=dict)
    """Lower-cased attribute name -> the name as the server spelled it (the schema's case)."""

    def spelled(self, name: str) -> str:
        """``name`` as the server spelled it (``supannMailPerso``), else as given."""
        return self.spellings.get(name.lower(), name)

    def get(self, name: str) -> list[str]:
        """The text values of ``name`` (case-insensitive), ``[]`` when absent."""
        return list(self.attributes.get(name.lower(), []))

    def first(self, name: str) -> str | None:
        """The first text value of ``name``, or None."""
        values = self.attributes.get(name.lower())
        return values[0] if values else None


@dataclass(frozen=True)
class Change:
    """One modification of one attribute; ``delete``/``replace`` with no values clear it."""

    op: Literal["add", "delete", "replace"]
    attribute: str
    values: tuple[str, ...] = ()


def _entry(dn: str, raw_attributes: Mapping[str, list[bytes]]) -> Entry:
    texts: dict[str, list[str]] = {}
    binary: dict[str, list[bytes]] = {}
    spellings = {name.lower(): name for name in raw_attributes}
    for name, values in raw_attributes.items():
        for value in values:
            try:
                texts.setdefault(name.lower(), []).append(value.decode("utf-8"))
            except UnicodeDecodeError:
                binary.setdefault(name.lower(), []).append(value)
    return Entry(dn=dn, attributes=texts, binary=binary, spellings=spellings)


def _encoded_filter(operation: str, target: str, text: str | AnyEqual) -> bytes:
    if isinstance(text, AnyEqual):
        return ber.equality_or(text.tests)
    try:
        return ber.encode_filter(text)
    except ValueError as exc:
        raise InvalidInputError(f"{operation} {target}: {exc}") from None


def _assertion_controls(target: str, assertion: str | None) -> list[bytes]:
    """The RFC 4528 assertion control for ``assertion`` (built with ``escape``), if any."""
    if assertion is None:
        return []
    return [
        ber.control(ASSERTION_CONTROL, True, _encoded_filter("assertion on", target, assertion))
    ]


def _modify_parts(
    dn: str, changes: Sequence[Change], assertion: str | None
) -> tuple[bytes, list[bytes]]:
    """A modify's protocolOp and controls; InvalidInputError when there is nothing to do."""
    if not changes:
        raise InvalidInputError(f"modify {dn}: no change given")
    request = ber.modify_request(
        dn, [(change.op, change.attribute, change.values) for change in changes]
    )
    return request, _assertion_controls(dn, assertion)


def _paged_cookie(controls: Mapping[str, bytes]) -> bytes | None:
    value = controls.get(PAGED_RESULTS_CONTROL)
    if not value:
        return None
    return ber.decode_paged_cookie(value) or None


def transactions_offered(root_dse: Mapping[str, Sequence[str]]) -> bool:
    """Whether a server with this root DSE can take a batch of adds as one LDAP transaction.

    It must advertise Start and End Transaction (RFC 5805), and must not be a replication
    provider (the content synchronisation control): slapd's overlays do not know about
    transactions, and syncprov sends each update of a transaction to the consumers before
    the commit, even those of a transaction that is then undone.
    """
    lowered = {name.lower(): set(values) for name, values in root_dse.items()}
    offered = {TRANSACTION_START, TRANSACTION_END} <= lowered.get("supportedextension", set())
    return offered and CONTENT_SYNC_CONTROL not in lowered.get("supportedcontrol", set())


PEERCRED_SUFFIX = ",cn=peercred,cn=external,cn=auth"
"""How slapd names the OS user of an ldapi peer that no ``olcAuthzRegexp`` maps to an entry."""


@dataclass(frozen=True)
class Identity:
    """Who the server says the connection is bound as (RFC 4532 WhoAmI)."""

    authzid: str
    """As sent: ``dn:<DN>``, ``u:<user>``, or empty for an anonymous session."""
    method: str
    """How the connection bound: ``simple`` or ``sasl_external``."""

    @property
    def dn(self) -> str | None:
        """The DN bound as, if the identity is one."""
        return self.authzid[3:] if self.authzid[:3].lower() == "dn:" else None

    @property
    def mapped(self) -> bool:
        """Whether the identity is an entry of the directory (not an unmapped OS user)."""
        dn = self.dn or ""
        return bool(dn) and not dn.lower().endswith(PEERCRED_SUFFIX)

    def describe(self) -> str:
        """One line: ``cn=umacct,... (simple bind)``, or what is wrong with the mapping."""
        how = "SASL EXTERNAL over ldapi" if self.method == "sasl_external" else "simple bind"
        if not self.authzid:
            return f"anonymous ({how})"
        if self.dn is not None and not self.mapped:
            return (
                f"{self.dn} ({how}): the OS user is mapped to no entry of the directory; "
                "add an olcAuthzRegexp rule for it"
            )
        return f"{self.dn if self.dn is not None else self.authzid} ({how})"


class Directory(Closing):
    """A bound connection to the directory; use ``connect()`` to get one, one per thread."""

    def __init__(
        self,
        wire: Wire,
        address: ServerAddress,
        settings: DirectoryConfig,
        password: str | None = None,
        *,
        referred_from: str | None = None,
    ) -> None:
        self._address = address
        self._settings = settings
        self._password = password
        """The service account's, kept to bind where a referral leads (when followed)."""
        self._referred_from = referred_from
        """The server whose referral led here: a referral from here is not followed."""
        self._referred: dict[str, Directory] = {}
        """Connections opened to follow referrals, by server URL."""
        self._subschema: Subschema | None = None
        self._root_dse: dict[str, list[str]] | None = None
        self._wire = wire
        self._transactions: bool | None = None
        """Whether batches of adds go in transactions; decided at the first batch that could."""
        self._stored_attributes: set[str] = set()
        """Lower-cased names of the attributes of the entries this connection added."""

    @property
    def url(self) -> str:
        """The URL of the server this connection reached."""
        return self._address.url

    # --- plumbing -------------------------------------------------------------------------

    @property
    def tls_version(self) -> str | None:
        """The TLS version of the connection (``TLSv1.3``...), None in cleartext or ldapi."""
        return self._wire.tls_version

    def _referred_to(
        self, operation: str, target: str, urls: Sequence[str]
    ) -> tuple[Directory, Referral]:
        """A connection where one of ``urls`` (alternatives) leads, and that URL; or the error.

        Not followed (the setting, or a second hop): ConfigError naming the URL. The server
        is reached as the configured ones are: same bind, TLS checks and cleartext rule.
        """
        if not urls:
            raise UnavailableError(
                f"{operation} {target}: a referral without a URL from {self.url}"
            )
        if self._referred_from is not None:
            raise followed_again(operation, target, urls[0], self.url)
        if not self._settings.follow_referrals:
            raise not_followed(operation, target, list(urls))
        failures = []
        for url in urls:
            referral = parse_referral(url)
            known = self._referred.get(referral.server.url)
            if known is not None:
                return known, referral
            settings = replace(self._settings, urls=[referral.server.url])
            try:
                wire, address = open_with_failover(settings, self._password)
            except ConfigError as refused:
                raise ConfigError(
                    f"{operation} {target}: cannot follow the referral to {url}: {refused.message}"
                ) from None
            except UnavailableError as down:
                failures.append(down.message)
                continue
            referred = Directory(wire, address, settings, self._password, referred_from=self.url)
            self._referred[referral.server.url] = referred
            return referred, referral
        raise UnavailableError(
            f"{operation} {target}: the referral leads nowhere reachable: {'; '.join(failures)}"
        )

    def _extended(self, name: str, target: str, oid: str, value: bytes | None = None) -> ber.Result:
        """Send an extended operation and check its result; return the result."""
        request = ber.extended_request(oid, value)
        result = self._wire.exchange(name, target, request, ber.EXTENDED_RESPONSE)
        check_result(name, target, result.as_mapping())
        return result

    # --- reads ----------------------------------------------------------------------------

    def search(
        self,
        base: str,
        filter: str | AnyEqual,
        attributes: Sequence[str],
        *,
        scope: Literal["base", "one", "sub"] = "sub",
        page_size: int | None = None,
        size_limit: int = 0,
    ) -> Iterator[Entry]:
        """Stream the entries under ``base`` that match ``filter``, one page in memory.

        The filter must be built with ``umacct.directory.escape`` (text, or ``AnyEqual`` for
        thousands of equality tests). Entries come in no particular order. When the search
        ends early (size or time limit, lost connection, any result but success) the
        iterator raises after the entries already received:
        a search is never silently truncated. ``[]`` as attributes asks for none;
        ``page_size=0`` turns paging off (the configured size is the default).
        """
        wanted = list(attributes) or [NO_ATTRIBUTES]
        page = page_size if page_size is not None else self._settings.page_size
        request = ber.search_request(
            base, scope, _encoded_filter("search", base, filter), wanted, size_limit
        )
        cookie: bytes | None = None
        received = 0
        references: list[tuple[str, ...]] = []
        while True:
            paging = ber.paged_results_value(page, cookie) if page else None
            controls = [ber.control(PAGED_RESULTS_CONTROL, False, paging)] if paging else []
            end = SearchEnd()
            stream = self._wire.search(base, request, controls, end)
            try:
                for dn, raw_attributes in stream:
                    received += 1
                    yield _entry(dn, raw_attributes)
            finally:
                stream.close()  # stopped early: the request is abandoned
            done = end.done
            assert done is not None
            references += end.references
            result = self._wire.decoded("search", base, ber.decode_result, done)
            if result.code == REFERRAL and not received:  # the base itself is elsewhere
                referred, referral = self._referred_to("search", base, result.referrals)
                yield from referred.search(
                    referral.dn or base, filter, attributes, scope=scope,
                    page_size=page_size, size_limit=size_limit,
                )  # fmt: skip
                return
            if result.code != SUCCESS:
                error = result_error("search", base, result.as_mapping())
                if received:
                    raise type(error)(f"{error.message} (stopped after {received} entries)")
                raise error
            cookie = _paged_cookie(self._wire.decoded("search", base, ber.decode_controls, done))
            if not cookie:
                break
        yield from self._continued(base, filter, attributes, scope, references, received)

    def _continued(
        self,
        base: str,
        filter: str | AnyEqual,
        attributes: Sequence[str],
        scope: Literal["base", "one", "sub"],
        references: list[tuple[str, ...]],
        received: int,
    ) -> Iterator[Entry]:
        """The parts of a search held elsewhere (continuation references), or the error."""
        if references and (self._referred_from is not None or not self._settings.follow_referrals):
            urls = [group[0] for group in references if group]
            if self._referred_from is not None:
                raise followed_again("search", base, urls[0], self.url)
            raise not_followed("search", base, urls, received)
        for group in references:
            referred, referral = self._referred_to("search", base, group)
            yield from referred.search(
                referral.dn or base, filter, attributes, scope=continued_scope(referral, scope)
            )

    def read(self, dn: str, attributes: Sequence[str]) -> Entry | None:
        """The entry ``dn`` with the given attributes, or None when it does not exist."""
        wanted = list(attributes) or [NO_ATTRIBUTES]
        entries, done = self._base_search(dn, wanted)
        result = self._wire.decoded("read", dn, ber.decode_result, done)
        if result.code == NO_SUCH_OBJECT:
            return None
        if result.code == REFERRAL:
            referred, referral = self._referred_to("read", dn, result.referrals)
            return referred.read(referral.dn or dn, attributes)
        check_result("read", dn, result.as_mapping())
        return _entry(*entries[0]) if entries else None

    def _base_search(
        self, dn: str, attributes: Sequence[str]
    ) -> tuple[list[RawEntry], ber.Message]:
        request = ber.search_request(dn, "base", _ANY_ENTRY, attributes)
        end = SearchEnd()
        entries = list(self._wire.search(dn, request, [], end))
        assert end.done is not None
        return entries, end.done

    def root_dse(self) -> dict[str, list[str]]:
        """The root DSE: supportedControl, supportedExtension, namingContexts, ... as sent.

        Read once, then kept: it describes the server, which does not change during a run.
        """
        if self._root_dse is None:
            entries, done = self._base_search("", _ROOT_DSE_ATTRIBUTES)
            result = self._wire.decoded("read", "", ber.decode_result, done)
            check_result("read", "", result.as_mapping())
            self._root_dse = {
                name: [value.decode("utf-8", errors="replace") for value in values]
                for _, raw_attributes in entries
                for name, values in raw_attributes.items()
            }
        return {name: list(values) for name, values in self._root_dse.items()}

    def subschema(self) -> Subschema:
        """The server's attribute types, object classes and syntaxes (read once, then kept)."""
        if self._subschema is None:
            dse = self.root_dse()
            subentry = (dse.get("subschemaSubentry") or ["cn=Subschema"])[0]
            entry = self.read(subentry, ["attributeTypes", "objectClasses"])
            if entry is None:
                raise UnavailableError(f"the server at {self.url} publishes no subschema")
            self._subschema = parse_subschema(
                entry.get("attributeTypes"), entry.get("objectClasses")
            )
        return self._subschema

    def whoami(self) -> str:
        """The identity the server sees for this connection, e.g. ``dn:cn=umacct,dc=...``."""
        result = self._extended("whoami", self.url, WHO_AM_I)
        return (result.value or b"").decode("utf-8", errors="replace")

    def identity(self) -> Identity:
        """The identity the server mapped this connection to, and how it bound."""
        return Identity(self.whoami(), self._settings.bind_method)

    # --- writes ---------------------------------------------------------------------------

    def add(self, dn: str, attributes: Mapping[str, Sequence[str]]) -> None:
        """Create the entry ``dn``; AlreadyExistsError if it exists."""
        missing = missing_values(dn, attributes)
        if missing is not None:
            raise missing
        result = self._wire.exchange("add", dn, ber.add_request(dn, attributes), ber.ADD_RESPONSE)
        if result.code == REFERRAL:
            referred, referral = self._referred_to("add", dn, result.referrals)
            referred.add(referral.dn or dn, attributes)
            return
        check_result("add", dn, result.as_mapping())

    def add_many(
        self, items: Iterable[Item], *, window: int = ADD_WINDOW
    ) -> Generator[AddResult, None, None]:
        """Create many entries; one result per item, in order.

        When the server offers LDAP transactions (and ``[directory] transactions`` allows
        them), every ``window`` entries are committed together: one write to the server's
        disk instead of one per entry. A transaction refused as a whole (one of its entries
        is) is redone with pipelined adds, ``window`` requests in flight, so that each entry
        gets its own result: errors (AlreadyExistsError, InvalidInputError...) are mapped as
        ``add`` maps them, and the others go on. A lost connection raises UnavailableError:
        the entries whose results were not yielded may or may not exist. Stopping the
        iteration early waits for the answers already due, so the connection stays usable.
        """
        if not 0 < window < 1000:
            raise InvalidInputError(f"add window {window}: expected 1 to 999")
        batch = list(items)
        if not self._may_commit_together(batch):
            adds = self._add_pipelined(batch, window)
            try:
                yield from adds
            finally:
                adds.close()  # waits for the answers still due when stopped early
            return
        for start in range(0, len(batch), window):
            chunk = batch[start : start + window]
            # The whole batch may: each chunk may too, while the server still takes them.
            if len(chunk) > 1 and self._transactions and commit_together(self._wire, chunk):
                yield from (AddResult(dn) for dn, _ in chunk)
                continue
            results = list(self._add_pipelined(chunk, window))
            if all(result.error is None for result in results):
                # Refused together, accepted one by one: not something this server does here.
                self._transactions = False
            yield from results

    def _may_commit_together(self, items: Sequence[Item]) -> bool:
        """Whether ``items`` can be committed in one transaction on this connection.

        slapd 2.5's back-mdb does not undo, when it undoes a transaction, the numbering of
        the attribute types the transaction stored for the first time, and entries stored
        later with those types can no longer be read. So a transaction holds only
        attributes of entries this connection already added: the first entries go pipelined.
        """
        if self._settings.transactions == "off" or not transaction_fits(items):
            return False
        names = {name.lower() for _, attributes in items for name in attributes}
        if not names <= self._stored_attributes:
            return False
        if self._transactions is None:
            self._transactions = transactions_offered(self.root_dse())
        return self._transactions

    def _add_pipelined(self, items: Sequence[Item], window: int) -> PipelinedAdds:
        """Pipelined adds, sent now; the attributes of each entry added are remembered as stored."""
        # What was stored matters only to a later transaction (``_may_commit_together``).
        remember = None if self._settings.transactions == "off" else self._remember_stored
        return PipelinedAdds(self._wire, items, window, remember)

    def _remember_stored(self, attributes: Mapping[str, Sequence[str]]) -> None:
        self._stored_attributes.update(name.lower() for name in attributes)

    def send_adds(self, items: Iterable[Item], *, window: int = ADD_WINDOW) -> AddsSent:
        """``add_many`` whose first ``window`` requests leave before it returns.

        The caller does other work while the server adds them (an intake plans its next
        batch meanwhile; requests made on this connection in between get their own
        answers), then reads one result per item, in order, by iterating. An iteration
        stopped early ends with ``close()``, which waits for the answers due. With LDAP
        transactions (``add_many``) the batch is committed before this returns.
        """
        if not 0 < window < 1000:
            raise InvalidInputError(f"add window {window}: expected 1 to 999")
        batch = list(items)
        if self._may_commit_together(batch):
            # Committed here, before the caller reads anything: a transaction whose answer
            # is lost fails this call, not the reading of a batch sent after it.
            return _answered(list(self.add_many(batch, window=window)))
        return self._add_pipelined(batch, window)

    def modify(self, dn: str, changes: Sequence[Change], *, assertion: str | None = None) -> None:
        """Apply ``changes`` to ``dn`` atomically.

        With ``assertion`` (a filter built with ``escape``) the server applies them only if
        the entry still matches it (RFC 4528), else ConflictError: read, decide, then write
        with the values read as the assertion, and retry on conflict.
        """
        request, controls = _modify_parts(dn, changes, assertion)
        result = self._wire.exchange("modify", dn, request, ber.MODIFY_RESPONSE, controls)
        self.modify_answered(dn, changes, assertion, result)

    def modify_many(
        self, requests: Sequence[ModifyRequest], *, window: int = MODIFY_WINDOW
    ) -> ModifyBatch:
        """Send many modifies, ``window`` at most unanswered; read each with ``result(i)``.

        Every request is checked and encoded before any is sent (InvalidInputError for the
        first that ``modify`` would refuse). Each answer is mapped as ``modify`` maps it, a
        referral followed as it follows one. After a lost connection, ``settle(i)`` says
        what became of a request left unanswered. ``close()`` the batch when done.
        """
        if not 0 < window < 1000:
            raise InvalidInputError(f"modify window {window}: expected 1 to 999")
        encoded = [
            (request, *_modify_parts(request.dn, request.changes, request.assertion))
            for request in requests
        ]
        return ModifyBatch(self, self._wire, encoded, window)

    def modify_answered(
        self, dn: str, changes: Sequence[Change], assertion: str | None, result: ber.Result
    ) -> None:
        """The outcome of a modify from its answer: done, the mapped error, or the referral."""
        if result.code == REFERRAL:
            referred, referral = self._referred_to("modify", dn, result.referrals)
            referred.modify(referral.dn or dn, changes, assertion=assertion)
            return
        check_result("modify", dn, result.as_mapping())

    def delete(self, dn: str, *, assertion: str | None = None) -> None:
        """Delete the leaf entry ``dn``; with ``assertion``, only if it still matches it."""
        result = self._wire.exchange(
            "delete",
            dn,
            ber.delete_request(dn),
            ber.DELETE_RESPONSE,
            _assertion_controls(dn, assertion),
        )
        if result.code == REFERRAL:
            referred, referral = self._referred_to("delete", dn, result.referrals)
            referred.delete(referral.dn or dn, assertion=assertion)
            return
        check_result("delete", dn, result.as_mapping())

    # --- passwords ------------------------------------------------------------------------

    def password_modify(self, dn: str, new_password: str, old_password: str | None = None) -> None:
        """Set the password of ``dn`` with the Password Modify extended operation (RFC 3062).

        The server hashes it (security requirement 12); an empty password is refused
        (security requirement 11). Quality refusals by ppolicy are InvalidInputError.
        """
        if not new_password:
            raise InvalidInputError(f"password change for {dn}: an empty password is refused")
        if old_password is not None and not old_password:
            raise InvalidInputError(f"password change for {dn}: the old password is empty")
        value = ber.password_modify_value(
            dn,
            new_password.encode("utf-8"),
            old_password.encode("utf-8") if old_password else None,
        )
        self._extended("password change for", dn, RFC_3062_MODIFY, value)

    def check_password(self, dn: str, password: str) -> bool:
        """Whether ``password`` is the password of ``dn``, by a bind on a separate connection.

        False on invalid credentials (which includes ppolicy refusals such as a locked or
        expired account). An empty password is refused before any bind (security 11).
        """
        if not password:
            raise InvalidInputError(f"password check for {dn}: an empty password is refused")
        if not dn:
            raise InvalidInputError("password check: no DN given")
        try:
            connection = open_bound(self._address, self._settings, dn, password)
        except InvalidCredentials:
            return False
        except ServerFailure as failure:
            raise UnavailableError(f"password check for {dn}: {self.url}: {failure}") from None
        connection.close()
        return True

    # --- life -----------------------------------------------------------------------------

    def close(self) -> None:
        """Unbind and close; safe to call twice."""
        for referred in self._referred.values():
            referred.close()
        self._referred.clear()
        self._wire.close()


def mapped_identity(directory: Directory) -> Identity:
    """The identity the server mapped ``directory``'s connection to (what ``doctor`` shows)."""
    return directory.identity()


def connect(settings: DirectoryConfig, password: str | None = None) -> Directory:
    """Bind to the first reachable server of ``settings.urls`` and return the directory.

    ``password`` is the service account's, for ``bind_method = "simple"``; with
    ``"sasl_external"`` there is none (``needs_password`` says which). ConfigError for a
    cleartext setting to a remote server (checked before any network access), an empty
    password, or invalid credentials; UnavailableError, naming each URL tried and why,
    when none can be used.
    """
    wire, address = open_with_failover(settings, password)
    # The password is kept only where a referral may need it.
    return Directory(wire, address, settings, password if settings.follow_referrals else None)


def _answered(results: list[AddResult]) -> Generator[AddResult, None, None]:
    """Results already known, as adds on their way give them."""
    yield from results
