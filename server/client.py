"""The NemoVideo API client. It knows HTTP and the backend's rules, nothing of MCP.

Retry rules (backend.md):
- 1001 on our anonymous token: renew the token once and repeat the request once;
  a user-set NEMO_TOKEN that is rejected is reported, never replaced.
- 400 (missing client id) while minting: a new client id, then once more.
- 429: wait `Retry-After` (else 30 s) and repeat once.
- Connection errors and 5xx: idempotent requests are repeated a bounded number
  of times; a request that may spend credits is never repeated automatically.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import anyio
import httpx2
from pydantic import BaseModel, ValidationError

from . import __version__
from .auth import TokenProvider
from .errors import (
    ERRORS_BY_CODE,
    AuthenticationError,
    BackendError,
    BackendUnavailable,
    MissingClientId,
    NemoError,
    OutOfCredits,
    RateLimited,
    SessionNotFound,
    TokenRejected,
    UnexpectedResponse,
)
from .identity import SkillIdentity
from .logs import get_logger
from .models import AnonymousToken, Credits, Envelope, SessionCreated, StateReply
from .settings import Settings

log = get_logger("client")

ModelT = TypeVar("ModelT", bound=BaseModel)

IDEMPOTENT_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = (0.25, 1.0)
DEFAULT_RATE_LIMIT_WAIT = 30.0
MAX_RATE_LIMIT_WAIT = 60.0
HTTP_STATUS_CODES = {401: 1001, 400: 400, 402: 402, 429: 429}


class NemoClient:
    def __init__(
        self,
        settings: Settings,
        identity: SkillIdentity,
        *,
        sleep=anyio.sleep,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self._sleep = sleep
        self._client: httpx2.AsyncClient | None = None
        self.auth = TokenProvider(settings, self._mint_anonymous_token)
        # The task id the backend binds a registration to when anonymous credits run out.
        self.bind_id: str | None = None

    @property
    def _http(self) -> httpx2.AsyncClient:
        # Built on first use: its TLS context costs ~0.1 s, which a host pays at every server start otherwise.
        if self._client is None:
            self._client = httpx2.AsyncClient(
                base_url=self.settings.api_url,
                timeout=httpx2.Timeout(self.settings.request_timeout_seconds, connect=10.0),
                headers={"User-Agent": f"nemovideo-mcp/{__version__}", **self.identity.headers()},
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def __aenter__(self) -> NemoClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # Endpoints

    async def credits(self) -> Credits:
        return await self._call("GET", "/api/credits/balance/simple", Credits, idempotent=True)

    async def create_session(self, language: str) -> SessionCreated:
        # Creating a project spends nothing, but a repeat would leave an orphan project: not repeated.
        return await self._call(
            "POST", "/api/tasks/me/with-session/nemo_agent", SessionCreated,
            json={"task_name": "project", "language": language},
        )

    async def state(self, session_id: str) -> StateReply:
        return await self._call("GET", f"/api/state/nemo_agent/me/{session_id}/latest", StateReply, idempotent=True)

    # Request machinery

    async def _call(self, method: str, path: str, model: type[ModelT], **kwargs: Any) -> ModelT:
        data = await self.request(method, path, **kwargs)
        try:
            return model.model_validate(data)
        except ValidationError:
            log.warning("Unexpected %s reply shape from %s %s", model.__name__, method, path)
            raise UnexpectedResponse(200) from None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        idempotent: bool = False,
        authenticated: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one API request and return the envelope's `data`, applying the retry rules."""
        renewed_token = waited_for_rate_limit = False
        attempt = 0
        while True:
            attempt += 1
            request_headers = dict(headers or {})
            token = await self.auth.token() if authenticated else None
            if token is not None:
                request_headers["Authorization"] = f"Bearer {token}"
            try:
                response = await self._http.request(method, path, json=json, headers=request_headers)
            except httpx2.TransportError as exc:
                log.warning("%s %s failed: %s", method, path, type(exc).__name__)
                if idempotent and attempt < IDEMPOTENT_ATTEMPTS:
                    await self._sleep(RETRY_BACKOFF_SECONDS[attempt - 1])
                    continue
                raise BackendUnavailable() from None
            log.debug("%s %s -> %s", method, path, response.status_code)
            if response.status_code >= 500 and idempotent and attempt < IDEMPOTENT_ATTEMPTS:
                await self._sleep(RETRY_BACKOFF_SECONDS[attempt - 1])
                continue
            try:
                return self._decode(response)
            except AuthenticationError:
                if self.auth.is_user_token:
                    raise TokenRejected() from None
                if token is None or renewed_token:
                    raise
                renewed_token = True
                log.info("Token rejected by NemoVideo; renewing it once")
                await self.auth.renew(rejected=token)
            except RateLimited as exc:
                if waited_for_rate_limit:
                    raise
                waited_for_rate_limit = True
                wait = min(exc.retry_after if exc.retry_after is not None else DEFAULT_RATE_LIMIT_WAIT, MAX_RATE_LIMIT_WAIT)
                log.info("Rate limited on %s %s; waiting %.0f s before one retry", method, path, wait)
                await self._sleep(wait)

    def _decode(self, response: httpx2.Response) -> Any:
        status = response.status_code
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        envelope = None
        if isinstance(body, dict) and "code" in body:
            try:
                envelope = Envelope.model_validate(body)
            except ValidationError:
                envelope = None
        if envelope is not None and envelope.code == 0 and status < 400:
            return envelope.data
        code = envelope.code if envelope is not None and envelope.code != 0 else HTTP_STATUS_CODES.get(status)
        if code is None and status == 404 and isinstance(body, dict) and "session not found" in str(body.get("detail", "")).lower():
            code = SessionNotFound.code
        if code is None:
            if envelope is None:
                raise UnexpectedResponse(status)
            raise BackendError(envelope.code, envelope.text)
        raise self._error_for(code, response, envelope)

    def _error_for(self, code: int, response: httpx2.Response, envelope: Envelope | None) -> NemoError:
        if code == RateLimited.code:
            return RateLimited(_retry_after(response.headers.get("Retry-After")))
        if code == OutOfCredits.code:
            anonymous = not self.auth.is_user_token
            url = f"{self.settings.web_url}/?bind={self.bind_id}" if anonymous and self.bind_id else None
            return OutOfCredits(anonymous=anonymous, registration_url=url)
        error_type = ERRORS_BY_CODE.get(code)
        if error_type is None:
            return BackendError(code, envelope.text if envelope else None)
        return error_type()

    async def _mint_anonymous_token(self, client_id: str) -> AnonymousToken:
        renewed_client_id = False
        while True:
            try:
                data = await self.request(
                    "POST", "/api/auth/anonymous-token", authenticated=False, headers={"X-Client-Id": client_id}
                )
            except MissingClientId:
                if renewed_client_id:
                    raise
                renewed_client_id = True
                log.info("NemoVideo did not accept our client id; creating a new one")
                self.auth.renew_client_id()
                client_id = self.auth.client_ids.get()
                continue
            try:
                return AnonymousToken.model_validate(data)
            except ValidationError:
                raise UnexpectedResponse(200) from None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
