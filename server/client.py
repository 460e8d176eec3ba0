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

import json
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from urllib.parse import quote
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import httpx2
from pydantic import BaseModel, ValidationError

from . import __version__, metrics
from .auth import TokenProvider
from .errors import (
    ACCOUNT_TOKEN_HINT,
    ERRORS_BY_CODE,
    AnonymousTokenLimit,
    AuthenticationError,
    BackendError,
    BackendUnavailable,
    MissingClientId,
    NemoError,
    OutOfCredits,
    RateLimited,
    StreamInterrupted,
    TokenRejected,
    UnexpectedResponse,
    UnsupportedFileType,
)
from .identity import SkillIdentity
from .logs import get_logger
from .tls import tls_context
from .models import (
    AnonymousToken,
    ClaimToken,
    Credits,
    RenderJob,
    SessionCreated,
    StateReply,
    UploadReply,
)
from .replies import Refusal, Unreadable, excerpt_of, read_reply
from .settings import Settings
from .store import UserStore, open_store
from .users import LOCAL_USER

if TYPE_CHECKING:
    from .links import Links
    from .sse import AdkEvent

log = get_logger("client")

ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")
BodyFactory = Callable[[], AsyncIterable[bytes]]

IDEMPOTENT_ATTEMPTS = 3
RETRY_BACKOFF_SECONDS = (0.25, 1.0)
DEFAULT_RATE_LIMIT_WAIT = 30.0
MAX_RATE_LIMIT_WAIT = 60.0
# Downloads are saved byte for byte; a compressed transfer would only be decompressed again.
IDENTITY_ENCODING = {"Accept-Encoding": "identity"}


class NemoClient:
    def __init__(
        self,
        settings: Settings,
        identity: SkillIdentity,
        *,
        store: UserStore | None = None,
        links: Links | None = None,
        sleep=anyio.sleep,
    ) -> None:
        self.settings = settings
        self.identity = identity
        self._links = links
        self._sleep = sleep
        self._client: httpx2.AsyncClient | None = None
        self.store = store or open_store(settings.config_dir, settings.state_dir).for_user(LOCAL_USER)
        self.auth = TokenProvider(settings, self._mint_anonymous_token, self.store)

    def account_hint(self) -> str:
        """How this user gives us their NemoVideo account: `login` locally, a page of ours when hosted (someone in
        claude.ai has no terminal to run a command in)."""
        if self._links is None:
            return ACCOUNT_TOKEN_HINT
        from .links import ACCOUNT_LINK_SECONDS

        link = self._links.make(self.store.user_id, "link", self.store.user_id, ACCOUNT_LINK_SECONDS)
        return (f"create a token at nemovideo.com (Settings → API Tokens), then paste it on this page: {link} "
                f"(the link works for {ACCOUNT_LINK_SECONDS // 60} minutes).")

    @property
    def _http(self) -> httpx2.AsyncClient:
        # Built on first use: its TLS context costs ~0.1 s, which a host pays at every server start otherwise.
        if self._client is None:
            self._client = httpx2.AsyncClient(
                verify=tls_context(),
                base_url=self.settings.api_url,
                timeout=httpx2.Timeout(self.settings.request_timeout_seconds, connect=10.0),
                headers={"User-Agent": f"nemovideo-mcp/{__version__}", **self.identity.headers()},
                follow_redirects=False,
                event_hooks={"response": [_count_response]},
            )
        return self._client

    async def aclose(self) -> None:
        # The tokens this client held are no longer this holder's to keep redacted (another holder may still).
        self.auth.forget_secrets()
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

    async def upload_files(self, session_id: str, body: BodyFactory, content_type: str, length: int) -> UploadReply:
        # Not idempotent: a repeat after a connection error could store the file twice.
        # A known length avoids chunked encoding, which some upload proxies refuse.
        return await self._call("POST", f"/api/upload-video/nemo_agent/me/{session_id}", UploadReply,
                                body=body, headers={"Content-Type": content_type, "Content-Length": str(length)})

    async def upload_urls(self, session_id: str, urls: list[str]) -> UploadReply:
        return await self._call("POST", f"/api/upload-video/nemo_agent/me/{session_id}", UploadReply,
                                json={"urls": urls, "source_type": "url"})

    async def start_render(self, render_id: str, session_id: str, draft: dict[str, Any]) -> RenderJob:
        return await self._call("POST", "/api/render/proxy/lambda", RenderJob, json={
            "id": render_id, "sessionId": session_id, "draft": draft, "output": {"format": "mp4", "quality": "high"},
        })

    async def render_status(self, render_id: str) -> RenderJob:
        return await self._call("GET", f"/api/render/proxy/lambda/{render_id}", RenderJob, idempotent=True)

    async def cancel_render(self, render_id: str) -> None:
        await self.request("POST", f"/api/render/proxy/lambda/{render_id}/cancel")

    async def claim_token(self, task_id: str, session_id: str) -> ClaimToken:
        return await self._call("POST", "/api/auth/claim-token", ClaimToken,
                                json={"task_id": task_id, "session_id": session_id})

    def is_api_url(self, url: str) -> bool:
        target, api = httpx2.URL(url), httpx2.URL(self.settings.api_url)
        return (target.scheme, target.host, target.port) == (api.scheme, api.host, api.port)

    @asynccontextmanager
    async def download(self, url: str) -> AsyncIterator[httpx2.Response]:
        """Stream a file. The bearer token and attribution go to the API host only, never to a CDN."""
        timeout = httpx2.Timeout(self.settings.request_timeout_seconds, connect=10.0)
        if url.startswith("/") or self.is_api_url(url):
            token = await self.auth.token()
            async with self._http.stream("GET", url, headers={"Authorization": f"Bearer {token}", **IDENTITY_ENCODING},
                                         timeout=timeout) as response:
                yield response
            return
        async with httpx2.AsyncClient(verify=tls_context(), timeout=timeout,
                                      headers={"User-Agent": f"nemovideo-mcp/{__version__}"},
                                      follow_redirects=True) as foreign:
            async with foreign.stream("GET", url, headers=IDENTITY_ENCODING) as response:
                yield response

    @asynccontextmanager
    async def run_sse(self, session_id: str, message: str) -> AsyncIterator[AsyncIterator[AdkEvent]]:
        """Open a chat turn and yield its decoded events.

        The message may start paid work, so once the request is sent it is never sent
        again: only a 1001 or 429 refusal (nothing was done) is retried. A stream that
        breaks mid-turn raises `StreamInterrupted`.
        """
        body = {"app_name": "nemo_agent", "user_id": "me", "session_id": session_id,
                "new_message": {"parts": [{"text": message}]}, "streaming": self.settings.stream_text}
        # Comment heartbeats keep bytes flowing, so the read timeout only catches a silent, dead connection.
        timeout = httpx2.Timeout(self.settings.request_timeout_seconds, read=self.settings.turn_quiet_seconds)

        async def open_stream(auth_headers: dict[str, str]) -> httpx2.Response:
            request = self._http.build_request(
                "POST", "/run_sse", json=body, headers={"Accept": "text/event-stream", **auth_headers}, timeout=timeout
            )
            try:
                response = await self._http.send(request, stream=True)
            except (httpx2.ConnectError, httpx2.ConnectTimeout) as exc:
                log.warning("POST /run_sse failed: %s", type(exc).__name__)
                raise BackendUnavailable() from None
            except httpx2.TransportError as exc:
                # The message may have arrived and started paid work: never "try again", poll instead.
                log.warning("POST /run_sse broke before its reply: %s", type(exc).__name__)
                raise StreamInterrupted() from None
            if response.status_code == 200 and response.headers.get("content-type", "").startswith("text/event-stream"):
                return response
            try:
                await response.aread()
            finally:
                await response.aclose()
            try:
                self._decode(response, "POST /run_sse")
            except UnexpectedResponse as error:
                if error.status_code >= 500:
                    # A gateway gave up waiting (504, say) while the turn may be running: poll, never re-send.
                    raise StreamInterrupted() from None
                raise
            # A success reply where a stream belongs.
            raise UnexpectedResponse(response.status_code, call="POST /run_sse")

        response = await self._with_auth(open_stream)
        try:
            yield self._turn_events(response)
        finally:
            await response.aclose()

    async def _turn_events(self, response: httpx2.Response) -> AsyncIterator[AdkEvent]:
        from .sse import MAX_EVENT_BYTES, AdkDecoder, UndecodableFrame  # off the cold start, like chat

        decoder = AdkDecoder()
        try:
            async for frame in httpx2.EventSource(response, max_event_size=MAX_EVENT_BYTES):
                try:
                    events = decoder.feed(frame.data)
                except UndecodableFrame:
                    log.warning("Skipped an undecodable /run_sse frame (%d bytes)", len(frame.data))
                    continue
                for event in events:
                    yield event
        except httpx2.TransportError as exc:  # includes SSEError for an oversized frame
            log.warning("/run_sse stream broke: %s", type(exc).__name__)
            raise StreamInterrupted() from None
        if not decoder.finished:
            # Closed cleanly before the turn's final event: NemoVideo does this for many edits (backend.md), a proxy
            # may too. The work may go on, and the project tells what it did: expected, so not a warning.
            log.info("/run_sse stream ended without the turn's final event; reading the project instead")
            raise StreamInterrupted()

    # Request machinery

    async def _call(self, method: str, path: str, model: type[ModelT], **kwargs: Any) -> ModelT:
        data = await self.request(method, path, **kwargs)
        try:
            return model.model_validate(data)
        except ValidationError:
            call = f"{method} {path}"
            excerpt = excerpt_of(json.dumps(data, default=str))
            log.warning("Unexpected %s reply shape from %s: %r", model.__name__, call, excerpt)
            raise UnexpectedResponse(200, call=call, excerpt=excerpt) from None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: BodyFactory | None = None,
        idempotent: bool = False,
        authenticated: bool = True,
        wait_on_rate_limit: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one API request and return the reply's payload, applying the retry rules.

        `body` makes a fresh streamed body for each attempt (a refused request is sent again).
        """

        async def send(auth_headers: dict[str, str]) -> Any:
            response = await self._send(method, path, json=json, content=body() if body else None,
                                        headers={**(headers or {}), **auth_headers}, idempotent=idempotent)
            return self._decode(response, f"{method} {path}")

        return await self._with_auth(send, authenticated=authenticated, wait_on_rate_limit=wait_on_rate_limit)

    async def _send(self, method: str, path: str, *, json: Any, content: AsyncIterable[bytes] | None,
                    headers: dict[str, str], idempotent: bool) -> httpx2.Response:
        """One request; an idempotent one is repeated on connection errors and 5xx, a bounded number of times."""
        attempt = 0
        while True:
            attempt += 1
            may_retry = idempotent and attempt < IDEMPOTENT_ATTEMPTS
            try:
                response = await self._http.request(method, path, json=json, content=content, headers=headers)
            except httpx2.TransportError as exc:
                log.warning("%s %s failed: %s", method, path, type(exc).__name__)
                if not may_retry:
                    raise BackendUnavailable() from None
            else:
                log.debug("%s %s -> %s", method, path, response.status_code)
                if response.status_code < 500 or not may_retry:
                    return response
            await self._sleep(RETRY_BACKOFF_SECONDS[attempt - 1])

    async def _with_auth(self, send: Callable[[dict[str, str]], Awaitable[T]], *, authenticated: bool = True,
                         wait_on_rate_limit: bool = True) -> T:
        """Run `send` with the bearer token; renew a rejected anonymous token once, wait out one 429."""
        renewed_token = False
        waited_for_rate_limit = not wait_on_rate_limit
        while True:
            token = await self.auth.token() if authenticated else None
            try:
                return await send({"Authorization": f"Bearer {token}"} if token is not None else {})
            except AuthenticationError:
                if self.auth.is_user_token:
                    if self.settings.hosted:
                        team = self.settings.token is not None
                        raise TokenRejected(team=team, linked_hint=None if team else self.account_hint()) from None
                    raise TokenRejected(from_login=self.auth.is_login_token) from None
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
                log.info("Rate limited; waiting %.0f s before one retry", wait)
                await self._sleep(wait)

    def _decode(self, response: httpx2.Response, call: str) -> Any:
        outcome = read_reply(response.status_code, response.content)
        if isinstance(outcome, Unreadable):
            # The excerpt helps whoever reads the log; the user gets a sentence, never the body.
            log.warning("Unreadable reply to %s: HTTP %s, %r", call, outcome.status, outcome.excerpt)
            raise UnexpectedResponse(outcome.status, call=call, excerpt=outcome.excerpt)
        if isinstance(outcome, Refusal):
            log.info("%s refused: code %s", call, outcome.code)
            raise self._error_for(outcome, response)
        return outcome

    def _error_for(self, refusal: Refusal, response: httpx2.Response) -> NemoError:
        code = refusal.code
        if code == RateLimited.code:
            return RateLimited(_retry_after(response.headers.get("Retry-After")))
        if code == OutOfCredits.code:
            anonymous = not self.auth.is_user_token
            user_id = self.auth.user_id
            url = f"{self.settings.web_url}/register?bind={quote(user_id, safe='')}" if anonymous and user_id else None
            return OutOfCredits(anonymous=anonymous, registration_url=url, web_url=self.settings.web_url,
                                hint=self.account_hint())
        if code == UnsupportedFileType.code:
            return UnsupportedFileType(self.settings.accepted_formats)
        error_type = ERRORS_BY_CODE.get(code) if code is not None else None
        if error_type is None:
            return BackendError(code, refusal.message)
        return error_type()

    async def _mint_anonymous_token(self, client_id: str) -> AnonymousToken:
        renewed_client_id = False
        while True:
            try:
                data = await self.request(
                    "POST", "/api/auth/anonymous-token", authenticated=False, wait_on_rate_limit=False,
                    headers={"X-Client-Id": client_id},
                )
            except MissingClientId:
                # Only for a backend that says our id is missing: a new id never answers a 429.
                if renewed_client_id:
                    raise
                renewed_client_id = True
                log.info("NemoVideo did not accept our client id; creating a new one")
                client_id = await self.auth.client_ids.renew()
                continue
            except RateLimited:
                raise AnonymousTokenLimit(self.account_hint()) from None
            return _issued_token(data)


async def _count_response(response: httpx2.Response) -> None:
    metrics.backend_response(response.status_code)


def _issued_token(data: Any) -> AnonymousToken:
    """The minted token; one that arrives beside unexpected fields is kept (the next mint is days away)."""
    try:
        return AnonymousToken.model_validate(data)
    except ValidationError:
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise UnexpectedResponse(200, call="POST /api/auth/anonymous-token") from None
        log.warning("The anonymous token reply had unexpected fields; keeping the token with a 7-day lifetime")
        return AnonymousToken(token=token)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
