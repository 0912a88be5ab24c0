"""Single-use links: activation, password reset and address confirmation (security.md 1-7).

A token is 256 random bits from ``secrets``, sent once in a link and then forgotten: the
store keeps only its SHA-256. A fast hash is right here because the token is not a
password: nobody can guess 256 random bits, however fast each guess is.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from umacct.clock import Clock
from umacct.errors import InvalidInputError
from umacct.store import NewToken, Store, StoredToken

TOKEN_BYTES = 32
MAX_TTL = timedelta(hours=24)
EXTENSION_MAX_TTL = timedelta(days=400)
"""The one longer-lived link: an extension request's, valid until the grace end. It asks for
what the person is entitled to anyway (the policy decides), and never sets a password."""
_NOT_VALID = "this link is not valid (unknown, already used or replaced); ask for a new one"


class TokenPurpose(StrEnum):
    """What a token lets its holder do."""

    ACTIVATION = "activation"
    RESET = "reset"
    CONFIRM_RECOVERY = "confirm-recovery"
    CONFIRM_FORWARDING = "confirm-forwarding"
    CONFIRM = "confirm"
    """A confirmation issued before recovery and forwarding had purposes of their own."""
    EXTENSION = "extension"
    """An extension request of an extendable profile, linked from the expiry warnings."""

    @property
    def link_kind(self) -> str:
        """The ``[links]`` page and ``[tokens] <kind>_ttl`` of this purpose."""
        return "confirm" if self.value.startswith("confirm") else self.value


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued: the only place its plaintext exists, and only in memory."""

    token: str = field(repr=False)
    token_id: int
    account: str
    purpose: TokenPurpose
    issued_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    """What the store knows of a token: never the token itself."""

    token_id: int
    account: str
    purpose: TokenPurpose
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    cancelled_at: datetime | None
    payload: Mapping[str, str]


def hash_token(token: str) -> str:
    """Hash a token as the store keeps it: SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Tokens:
    """Issues, checks and redeems tokens against the store, with the injected clock."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def issue(
        self,
        account: str,
        purpose: TokenPurpose,
        ttl: timedelta,
        payload: Mapping[str, str] | None = None,
    ) -> IssuedToken:
        """Issue a token valid for ``ttl`` (at most 24 h).

        The account's older pending tokens of the same purpose are cancelled (security 3).
        """
        [issued] = self.issue_many([account], purpose, ttl, payload)
        return issued

    def issue_many(
        self,
        accounts: Sequence[str],
        purpose: TokenPurpose,
        ttl: timedelta,
        payload: Mapping[str, str] | None = None,
    ) -> list[IssuedToken]:
        """``issue`` for each account, recorded in one transaction; in the same order."""
        longest = EXTENSION_MAX_TTL if purpose is TokenPurpose.EXTENSION else MAX_TTL
        if not timedelta(0) < ttl <= longest:
            raise InvalidInputError(
                f"a link must be valid for more than 0 s and at most {_words(longest)}, not {ttl}"
            )
        issued_at = self._clock.now()
        expires_at = issued_at + ttl
        tokens = [secrets.token_urlsafe(TOKEN_BYTES) for _ in accounts]
        ids = self._store.issue_tokens([
            NewToken(account, purpose.value, hash_token(token), issued_at, expires_at,
                     dict(payload or {}))
            for account, token in zip(accounts, tokens, strict=True)
        ])  # fmt: skip
        return [
            IssuedToken(token, token_id, account, purpose, issued_at, expires_at)
            for account, token, token_id in zip(accounts, tokens, ids, strict=True)
        ]

    def check(self, token: str, purpose: TokenPurpose) -> TokenRecord:
        """Return the token's record if it is valid now for ``purpose``, without consuming it.

        An unknown token, one of another purpose, a used or a cancelled one all give the same
        message, so that the answer tells nothing about other people's links.
        """
        # The lookup is by hash inside SQLite: an attacker who times it learns about hashes
        # of their own guesses only, which says nothing about any issued token.
        stored = self._store.find_token(hash_token(token))
        if (
            stored is None
            or stored.purpose != purpose.value
            or stored.used_at is not None
            or stored.cancelled_at is not None
        ):
            raise InvalidInputError(_NOT_VALID)
        if self._clock.now() >= stored.expires_at:
            raise InvalidInputError(
                f"this link expired on {_format_instant(stored.expires_at)}; ask for a new one"
            )
        return _record(stored)

    def redeem(self, token: str, purpose: TokenPurpose) -> TokenRecord:
        """Check the token and mark it used, once: of two concurrent redeems, one wins."""
        record = self.check(token, purpose)
        now = self._clock.now()
        if not self._store.mark_token_used(record.token_id, now):
            raise InvalidInputError(_NOT_VALID)
        return replace(record, used_at=now)

    @contextlib.contextmanager
    def redeemed(self, token: str, purpose: TokenPurpose) -> Iterator[TokenRecord]:
        """Redeem the token for the ``with`` block: of two at the same instant, one wins.

        The token is marked used before the change it allows (compare and set), so that the
        loser changes nothing; if the block fails, the token is usable again.
        """
        record = self.redeem(token, purpose)
        assert record.used_at is not None
        try:
            yield record
        except BaseException:
            self._store.release_token(record.token_id, record.used_at)
            raise

    def cancel(self, account: str, purposes: Iterable[TokenPurpose] | None = None) -> int:
        """Cancel the account's pending tokens of ``purposes`` (all when None); return how many."""
        names = None if purposes is None else [purpose.value for purpose in purposes]
        return self._store.cancel_tokens(account, names, self._clock.now())

    def pending(self, account: str) -> list[TokenRecord]:
        """List the account's tokens still usable now, oldest first."""
        return [
            _record(stored) for stored in self._store.pending_tokens(account, self._clock.now())
        ]

    def issued_since(self, account: str, purpose: TokenPurpose, since: datetime) -> int:
        """How many tokens of ``purpose`` the account was issued from ``since`` on."""
        return self._store.count_tokens_issued(account, purpose.value, since)


def _record(stored: StoredToken) -> TokenRecord:
    return TokenRecord(
        token_id=stored.token_id,
        account=stored.account,
        purpose=TokenPurpose(stored.purpose),
        issued_at=stored.issued_at,
        expires_at=stored.expires_at,
        used_at=stored.used_at,
        cancelled_at=stored.cancelled_at,
        payload=MappingProxyType(dict(stored.payload)),
    )


def _words(span: timedelta) -> str:
    return f"{span.days} days" if span.days > 1 else "24 h"


def _format_instant(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
