"""The bearer token: a user's NEMO_TOKEN, the account token saved by `login`, or an anonymous
token we mint and keep (in that order of precedence).

The backend issues one anonymous token per client id per 7 days, so the client id
is persisted and the token is kept in the store until the backend rejects it: a mint that
fails, or whose result is lost, can lock the user out for a week.
Several server processes may share one HOME (a host often starts one per chat), so
minting happens under the user's lock in the store: the first process mints, the others
find the fresh token in the cache.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

import anyio

from .errors import NemoError
from .logs import forget_secret, get_logger, register_secret
from .models import AnonymousToken
from .settings import Settings
from .storage import write_private
from .store import UserStore
from .tables import ACCOUNTS, TOKENS

if TYPE_CHECKING:
    from .sealing import Sealer

log = get_logger("auth")

TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600
# The backend issues one anonymous token per client id per this many seconds (a second mint gets 429).
MINT_ALLOWANCE_SECONDS = 7 * 24 * 3600
# Renew this long before the token's expiry, when a renewal can succeed, so a long turn never starts on a
# dying token. Otherwise the token is used until the backend rejects it: our clock is not the backend's.
EXPIRY_MARGIN_SECONDS = 600
# After an early renewal was refused, the current token is kept and renewal is not tried again for this long.
RENEWAL_RETRY_SECONDS = 3600

Minter = Callable[[str], Awaitable[AnonymousToken]]


class AccountTokenFile:
    """The account token `nemovideo-mcp login` saves (0600, beside the client id).

    Read again whenever it changes, so a server that is already running in a host
    uses the account from its next request on, without a restart.
    """

    def __init__(self, settings: Settings) -> None:
        self.path = settings.config_dir / "token"
        self._seen: tuple[float, int] | None = None
        self._token: str | None = None

    def get(self) -> str | None:
        try:
            stat = self.path.stat()
        except OSError:
            self._seen, self._token = None, None
            return None
        if self._seen != (stat.st_mtime, stat.st_size):
            try:
                self._token = self.path.read_text(encoding="utf-8").strip() or None
            except OSError:
                self._token = None
            self._seen = (stat.st_mtime, stat.st_size)
            if self._token:
                register_secret(self._token)
        return self._token

    def save(self, token: str) -> None:
        register_secret(token)
        write_private(self.path, token.strip() + "\n")

    def remove(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True


class ClientIds(Protocol):
    """The client id anonymous tokens are minted for: the backend issues one per id per 7 days."""

    async def get(self) -> str: ...

    async def renew(self) -> str:
        """A new id: used first, and again when the backend says ours is missing (400)."""
        ...


class ClientIdStore:
    """`NEMO_CLIENT_ID`, else a UUID persisted in the config dir (shared with the official skill)."""

    def __init__(self, settings: Settings) -> None:
        self._configured = settings.client_id
        self.path = settings.config_dir / "client_id"

    async def get(self) -> str:
        if self._configured:
            return self._configured
        try:
            stored = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            stored = ""
        return stored or await self.renew()

    async def renew(self) -> str:
        self._configured = None
        client_id = str(uuid.uuid4())
        write_private(self.path, client_id + "\n")
        return client_id


class StoredClientId:
    """A hosted user's own client id, in the store: each user mints within their own allowance."""

    def __init__(self, store: UserStore, api_url: str) -> None:
        self._store, self._api_url = store, api_url

    async def get(self) -> str:
        record = await self._store.update(ACCOUNTS, self._api_url, lambda record: (
            record if record and record.get("client_id") else {**(record or {}), "client_id": str(uuid.uuid4())}))
        return str(record["client_id"])

    async def renew(self) -> str:
        client_id = str(uuid.uuid4())
        await self._store.update(ACCOUNTS, self._api_url, lambda record: {**(record or {}), "client_id": client_id})
        return client_id


def _number(entry: object, name: str) -> float | None:
    try:
        return float(entry[name])  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None


class TokenProvider:
    """Locally: NEMO_TOKEN, `login`'s file, or the anonymous token of this device's client id. Hosted: the
    deployment's NEMO_TOKEN (one account for the team), or each user's own anonymous token, sealed in the
    store with the deployment's key."""

    def __init__(self, settings: Settings, mint: Minter, store: UserStore, clock: Callable[[], float] = time.time) -> None:
        self._user_token = settings.token.get_secret_value() if settings.token else None
        self.account: AccountTokenFile | None = None if settings.hosted else AccountTokenFile(settings)
        self._linked: str | None = None
        self._held: set[str] = set()
        self._api_url = settings.api_url
        self._mint = mint
        self._clock = clock
        self.client_ids: ClientIds = StoredClientId(store, settings.api_url) if settings.hosted else ClientIdStore(settings)
        self._sealer: Sealer | None = None
        if settings.hosted and settings.secret_key:
            from .sealing import Sealer  # cryptography: only a hosted server seals what it stores

            self._sealer = Sealer(settings.secret_key.get_secret_value())
        self._store = store
        self._process_lock = anyio.Lock()
        self._token: str | None = None
        # When the token in use expires, and from when the backend will issue another (our clock).
        self._expires_at = float("inf")
        self._renewable_at = float("inf")
        # The anonymous user id (`anon_…`), which a registration binds the user's projects to.
        self._anonymous_user_id: str | None = None
        if self._user_token:
            self._hold_secret(self._user_token)

    @property
    def is_user_token(self) -> bool:
        """The token belongs to the user's account (NEMO_TOKEN or `login`): never replaced by us."""
        return self._user_token is not None or self._account_token() is not None

    @property
    def is_login_token(self) -> bool:
        return self._user_token is None and self._account_token() is not None

    @property
    def user_id(self) -> str | None:
        return self._anonymous_user_id

    def note_user_id(self, user_id: str | None) -> None:
        """A user id another reply revealed (the session reply carries one too)."""
        if user_id and not self.is_user_token:
            self._anonymous_user_id = user_id

    async def token(self) -> str:
        if self._user_token is None and self.account is None:
            # Hosted: the account a user linked on our page, perhaps through another replica a moment ago.
            self._linked = await self._read_linked()
        user_token = self._user_token or self._account_token()
        if user_token is not None:
            return user_token
        if self._token is None:
            self._token = await self._obtain(rejected=None)
        elif self._clock() >= max(self._expires_at - EXPIRY_MARGIN_SECONDS, self._renewable_at):
            self._token = await self._renew_early(self._token)
        return self._token

    async def renew(self, rejected: str) -> str:
        """After a 1001: a token another process already renewed, else a newly minted one."""
        self._token = await self._obtain(rejected=rejected)
        return self._token

    def _hold_secret(self, token: str) -> None:
        """This user's own token, redacted everywhere while this provider lives (`forget_secrets`)."""
        if token not in self._held:
            register_secret(token)
            self._held.add(token)

    def forget_secrets(self) -> None:
        for token in self._held:
            forget_secret(token)
        self._held.clear()

    def _account_token(self) -> str | None:
        return self.account.get() if self.account is not None else self._linked

    async def _read_linked(self) -> str | None:
        record = await self._store.get(ACCOUNTS, self._api_url) or {}
        sealed = record.get("token")
        token = self._sealer.open(sealed) if isinstance(sealed, str) and self._sealer is not None else None
        if token:
            self._hold_secret(token)
        return token

    async def link_account(self, token: str) -> None:
        """Hosted: the user's own account from now on (checked by the caller), sealed in the store."""
        assert self._sealer is not None
        self._hold_secret(token)
        sealed = self._sealer.seal(token)
        await self._store.update(ACCOUNTS, self._api_url, lambda record: {**(record or {}), "token": sealed})
        self._linked = token

    async def forget_account(self) -> bool:
        """Hosted: back to the user's anonymous token; whether an account was linked."""
        had = False

        def change(record: dict | None) -> dict | None:
            nonlocal had
            had = bool(record and record.get("token"))
            return {key: value for key, value in (record or {}).items() if key != "token"} or None

        await self._store.update(ACCOUNTS, self._api_url, change)
        self._linked = None
        return had

    async def _obtain(self, rejected: str | None) -> str:
        async with self._process_lock, self._store.lock("anonymous token"):
            cached = await self._read_cache()
            if cached is not None and cached != rejected:
                return cached
            return await self._mint_and_keep()

    async def _renew_early(self, current: str) -> str:
        """A fresh token before the current one expires; when the backend says no, the current one stays."""
        async with self._process_lock, self._store.lock("anonymous token"):
            cached = await self._read_cache()
            if cached is not None and cached != current:
                return cached  # another process renewed it
            if self._clock() < max(self._expires_at - EXPIRY_MARGIN_SECONDS, self._renewable_at):
                return current
            try:
                return await self._mint_and_keep()
            except NemoError as error:
                log.info("Early renewal of the anonymous token refused (%s); the current one stays in use",
                         type(error).__name__)
                self._renewable_at = self._clock() + RENEWAL_RETRY_SECONDS
                return current

    async def _mint_and_keep(self) -> str:
        client_id = await self.client_ids.get()
        log.info("Requesting a free anonymous NemoVideo token")
        # Shielded: once asked, the backend may have issued the one token this device gets per 7 days. A host
        # cancelling the call (its timeout, the user's stop) must not lose it between the reply and the cache.
        with anyio.CancelScope(shield=True):
            minted = await self._mint(client_id)
            self._hold_secret(minted.token)
            await self._write_cache(minted, client_id)
        self.note_user_id(minted.user_id)
        return minted.token

    def _expiry_of(self, minted: AnonymousToken) -> float:
        if minted.expires_at and minted.expires_at > self._clock():
            return minted.expires_at
        # An expiry that cannot be read (or is already past by our clock) never throws the token away.
        return self._clock() + (minted.expires_in or TOKEN_LIFETIME_SECONDS)

    async def cached(self) -> dict | None:
        """The cached anonymous token entry of this API host (tests and diagnostics)."""
        return await self._store.get(TOKENS, self._api_url)

    async def _read_cache(self) -> str | None:
        entry = await self.cached() or {}
        token, expires_at = entry.get("token"), _number(entry, "expires_at")
        if isinstance(token, str) and self._sealer is not None:
            token = self._sealer.open(token)  # None: sealed under another key, so of no use
            if token is None:
                log.warning("A stored anonymous token cannot be opened: it was sealed under another NEMO_SECRET_KEY "
                            "(every replica needs the same key). A new one is asked for, which NemoVideo may refuse "
                            "for 7 days.")
        if not isinstance(token, str) or not token:
            return None
        if entry.get("client_id") not in (None, await self.client_ids.get()):
            return None  # issued to another client id (NEMO_CLIENT_ID changed): that identity's token, not ours
        self._hold_secret(token)
        # Kept past its expiry by our clock: only the backend's 1001 retires a token.
        self._expires_at = expires_at if expires_at is not None else float("inf")
        issued_at = _number(entry, "issued_at")
        if issued_at is None and expires_at is not None:
            issued_at = expires_at - TOKEN_LIFETIME_SECONDS  # entries of earlier versions
        self._renewable_at = issued_at + MINT_ALLOWANCE_SECONDS if issued_at is not None else float("inf")
        if isinstance(entry.get("user_id"), str):
            self.note_user_id(entry["user_id"])
        return token

    async def _write_cache(self, minted: AnonymousToken, client_id: str) -> None:
        now = self._clock()
        expires_at = self._expiry_of(minted)
        await self._store.put(TOKENS, self._api_url, {
            "token": self._sealer.seal(minted.token) if self._sealer is not None else minted.token, "expires_at": expires_at, "issued_at": now, "client_id": client_id,
            "user_id": minted.user_id,
        })
        self._expires_at, self._renewable_at = expires_at, now + MINT_ALLOWANCE_SECONDS
