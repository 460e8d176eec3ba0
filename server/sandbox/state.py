"""Everything the sandbox backend remembers, plus the switches tests flip.

Tests touch this object from their own thread while the server thread handles
requests, so every structure the server mutates is guarded by one lock.
"""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..media import FORMATS
from .studio import RenderJob, Studio

MEDIA_TYPES = FORMATS  # what backend.md documents, and nothing more
ERRORS = {  # code -> (HTTP status, message)
    400: (400, "missing X-Client-Id"),
    402: (402, "export is not available on the free plan"),
    429: (429, "rate limited"),
    1001: (401, "token expired or invalid"),
    1002: (404, "session not found"),
    2001: (403, "insufficient credits"),
    4001: (415, "unsupported file type"),
    4002: (413, "file too large"),
}
GATEWAY_ERRORS = {502: "Bad Gateway", 503: "Service Unavailable"}
SWITCHES = ("render_seconds", "turn_seconds", "heartbeat_seconds", "max_upload_bytes", "accepted_extensions",
            "fail_renders", "drop_next_stream", "cut_next_download", "reply_style", "anonymous_export_blocked",
            "next_turn_ending", "late_write_seconds", "garble_next_render_start", "real_renders",
            "duplicate_render_ids", "anonymous_tokens_per_address", "anonymous_credits")
# What a render start with an id already in use gets. NemoVideo documents no per-user scope for the ids its
# clients choose: "refuse" answers with an error, "join" with the render that already has the id (the
# reading under which two users' exports could share one render).
DUPLICATE_RENDER_IDS = ("refuse", "join")
# How the documents say NemoVideo replies (wire.py): SKILL.md v1.9, the published API reference,
# and v1.9 read literally (every field it elides left out).
REPLY_STYLES = ("v1.9", "reference", "minimal")
# How ADK has ended a turn over its versions (tests/fixtures/adk-sse/), plus a proxy's clean close.
TURN_ENDINGS = ("error_details", "error_json", "error_unescaped", "system_error", "trailer", "no_final")
FIRST_SESSION_NUMBER = 5529798706024415232
ANONYMOUS_CREDITS = 100
REGISTERED_CREDITS = 1000
TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600


class ApiError(Exception):
    """A backend error code (1 = generic); the app turns it into an envelope with the matching HTTP status."""

    def __init__(self, code: int, message: str | None = None, *, status: int = 400) -> None:
        known_status, known_message = ERRORS.get(code, (status, ""))
        super().__init__(message or known_message)
        self.code = code
        self.status = known_status


class ConnectionAbort(Exception):
    """Raised inside a response body to cut the connection on purpose (dropped stream, cut download)."""


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    host: str


@dataclass
class SandboxSession:
    session_id: str
    task_id: str
    language: str
    draft: dict[str, Any] = field(default_factory=lambda: {"t": []})
    video_infos: list[dict[str, Any]] = field(default_factory=list)
    generated_media: list[dict[str, Any]] = field(default_factory=list)
    draft_version: int = 0
    messages: list[str] = field(default_factory=list)  # each turn's text as it arrived, for tests to read


@dataclass
class _Account:
    available: int
    user_id: str
    anonymous: bool
    frozen: int = 0
    expired: bool = False


@dataclass
class _Injection:
    path_prefix: str
    code: int
    remaining: int
    retry_after: int | None
    # A reply given verbatim instead (a documented reply body, say), with `code` as its HTTP status.
    body: Any = None


@dataclass
class _Render:
    render_id: str
    started: float
    duration: float
    created_at_ms: int
    job: RenderJob
    session_id: str = ""
    draft: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False

    def describe(self, download_url: str) -> dict[str, Any]:
        """The render as plain facts; wire.py writes them in the reply style being served."""
        elapsed = time.monotonic() - self.started
        # `duration` (the render_seconds switch) is the least a render takes; a real one may take longer.
        fraction = min(1.0 if self.duration <= 0 else min(1.0, elapsed / self.duration), self.job.progress)
        info: dict[str, Any] = {"id": self.render_id, "progress": int(fraction * 100),
                                "created_at_ms": self.created_at_ms}
        if self.cancelled:
            info["status"] = "cancelled"
        elif fraction < 0.1:
            info["status"] = "pending"
        elif fraction < 1.0:
            info["status"] = "processing"
        elif self.job.error:
            info |= {"status": "failed", "error": self.job.error}
        else:
            info |= {"status": "completed", "url": f"{download_url}/files/{self.render_id}.mp4",
                     "completed_at_ms": self.created_at_ms + int(self.duration * 1000),
                     "duration": self.job.duration, "size": self.job.path.stat().st_size}
        return info


class Sandbox:
    def __init__(self, *, render_seconds: float = 2.0, turn_seconds: float = 0.0) -> None:
        # The standalone CLI picks these durations; reset() returns to them rather than to 2.0/0.0.
        self._default_durations = (render_seconds, turn_seconds)
        self._lock = threading.RLock()
        self.studio = Studio()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.render_seconds, self.turn_seconds = self._default_durations
            self.heartbeat_seconds = 1.0
            self.max_upload_bytes = 500 * 1024 * 1024
            self.accepted_extensions = list(MEDIA_TYPES)
            self.fail_renders = False
            self.real_renders = True  # False: every render is the placeholder clip (fast, for protocol tests)
            self.duplicate_render_ids = "refuse"
            self.studio.reset()
            self.drop_next_stream = False
            self.cut_next_download = False
            self.reply_style = "v1.9"
            self.anonymous_export_blocked = False
            # Start the next render, then answer with an HTML 502 as if a proxy lost the reply.
            self.garble_next_render_start = False
            self.next_turn_ending: str | None = None
            # Two-stage generation: music and title land this long after the stream ends (None: one stage).
            self.late_write_seconds: float | None = None
            self.busy_sessions: set[str] = set()
            self._tokens_by_client: dict[str, str] = {}
            # backend.md: "about 10 per IP per 7 days" (anonymous tokens); a hosted deployment's users share one.
            self.anonymous_tokens_per_address = 10
            # What a new anonymous account starts with (backend.md: 100); lower plays an account nearly spent.
            self.anonymous_credits = ANONYMOUS_CREDITS
            self._tokens_by_address: dict[str, list[str]] = {}
            self.requests: list[RecordedRequest] = []
            self.sessions: dict[str, SandboxSession] = {}
            self._accounts: dict[str, _Account] = {}
            self._renders: dict[str, _Render] = {}
            self._injections: list[_Injection] = []
            self._counters: dict[str, int] = {}

    # -- switches and inspection for tests --------------------------------------------------

    def inject(self, code: int, path: str = "", times: int = 1, retry_after: int | None = None) -> None:
        if code not in ERRORS and code not in GATEWAY_ERRORS:
            raise ValueError(f"cannot inject unknown error code {code}")
        with self._lock:
            self._injections.append(_Injection(path, code, times, retry_after))

    def replay(self, path: str, body: Any, status: int = 200, times: int = 1) -> None:
        """Answer the next request(s) to `path` with `body` as it is, without handling them."""
        with self._lock:
            self._injections.append(_Injection(path, status, times, None, body=body))

    def expire_tokens(self) -> None:
        with self._lock:
            for account in self._accounts.values():
                account.expired = True

    def forget_session(self, session_id: str) -> None:
        with self._lock:
            self.sessions.pop(session_id, None)

    def set_draft(self, session_id: str, draft: dict[str, Any]) -> None:
        with self._lock:
            session = self.sessions[session_id]
            session.draft = copy.deepcopy(draft)
            session.draft_version += 1

    def credits_of(self, token: str) -> dict[str, int]:
        with self._lock:
            account = self._accounts[token]
            total = account.available + account.frozen
            return {"available": account.available, "frozen": account.frozen, "total": total}

    def is_anonymous(self, token: str) -> bool:
        with self._lock:
            return self._accounts[token].anonymous

    def user_id_of(self, token: str) -> str:
        with self._lock:
            return self._accounts[token].user_id

    def render_ids(self) -> list[str]:
        with self._lock:
            return list(self._renders)

    def render_inputs(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """The project and draft each render was started with (by the first start that used its id)."""
        with self._lock:
            return {render_id: (render.session_id, render.draft) for render_id, render in self._renders.items()}

    def count(self, path_prefix: str, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests
                       if r.path.startswith(path_prefix) and (method is None or r.method == method))

    # -- used by the app --------------------------------------------------------------------

    def next_number(self, kind: str) -> int:
        with self._lock:
            self._counters[kind] = number = self._counters.get(kind, 0) + 1
            return number

    def take_switch(self, name: str) -> bool:
        """Read a one-shot switch and clear it in the same step, so exactly one request sees it."""
        with self._lock:
            value = getattr(self, name)
            setattr(self, name, False)
            return value

    def record(self, request: RecordedRequest) -> _Injection | None:
        """Log the request and hand back the injected error it must answer with, if any."""
        with self._lock:
            self.requests.append(request)
            for injection in self._injections:
                if request.path.startswith(injection.path_prefix):
                    injection.remaining -= 1
                    if injection.remaining <= 0:
                        self._injections.remove(injection)
                    return injection
            return None

    def issue_token(self, client_id: str, address: str) -> dict[str, Any]:
        """One anonymous token per client id per 7 days: a second one is refused (429) until the first expired;
        and `anonymous_tokens_per_address` per calling address in the same 7 days."""
        with self._lock:
            previous = self._accounts.get(self._tokens_by_client.get(client_id, ""))
            if previous is not None and not previous.expired:
                raise ApiError(429, "one anonymous token per client per 7 days")
            issued = [token for token in self._tokens_by_address.get(address, [])
                      if not self._accounts[token].expired]
            if len(issued) >= self.anonymous_tokens_per_address:
                raise ApiError(429, "too many anonymous tokens from this address in 7 days")
            number = self.next_number("token")
            digest = hashlib.sha256(f"{client_id}:{number}".encode()).hexdigest()
            token = f"nvsbx_anon_{number:04d}_{digest[:40]}"
            user_id = f"anon_{digest[40:52]}"
            self._accounts[token] = _Account(self.anonymous_credits, user_id, anonymous=True)
            self._tokens_by_client[client_id] = token
            self._tokens_by_address[address] = [*issued, token]
        expires_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + TOKEN_LIFETIME_SECONDS))
        return {"token": token, "user_id": user_id, "expires_at": expires_at, "credits": self.anonymous_credits}

    def check_token(self, token: str) -> None:
        with self._lock:
            account = self._accounts.get(token)
            if account is None and token.startswith("nemo_sk_"):
                user_id = "user_" + hashlib.sha256(token.encode()).hexdigest()[:12]
                account = self._accounts[token] = _Account(REGISTERED_CREDITS, user_id, anonymous=False)
            if account is None or account.expired:
                raise ApiError(1001)

    def reserve_credits(self, token: str, cost: int) -> None:
        with self._lock:
            account = self._accounts[token]
            if account.available < cost:
                raise ApiError(2001)
            account.available -= cost
            account.frozen += cost

    def settle_credits(self, token: str, cost: int, *, spent: bool) -> None:
        with self._lock:
            account = self._accounts[token]
            account.frozen -= cost
            if not spent:
                account.available += cost

    def create_session(self, language: str) -> SandboxSession:
        number = self.next_number("session")
        # Numeric strings, as NemoVideo's session ids are.
        session = SandboxSession(str(FIRST_SESSION_NUMBER + number), f"task_{number}", language)
        with self._lock:
            self.sessions[session.session_id] = session
        return session

    def session(self, session_id: str) -> SandboxSession:
        with self._lock:
            session = self.sessions.get(session_id)
        if session is None:
            raise ApiError(1002)
        return session

    def state_of(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            session = self.session(session_id)
            return copy.deepcopy({
                "draft": session.draft,
                "video_infos": session.video_infos,
                "generated_media": session.generated_media,
                "canvas_config": {"width": 1080, "height": 1920},
                "video_analyses": {},
            })

    def add_media(self, session_id: str, files: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stored = [{"id": f"media_{self.next_number('media')}", **file} for file in files]
        with self._lock:
            self.session(session_id).video_infos.extend(copy.deepcopy(stored))
        return stored

    def apply_edit(self, session_id: str, edit: Callable[[dict[str, Any]], dict[str, Any]],
                   media: dict[str, Any] | None, *, only_to: SandboxSession | None = None) -> int | None:
        """Apply an agent edit; returns the new draft version, or None when the session vanished mid-turn.

        `only_to`: work that lands later belongs to that session object; after a reset a new session
        may carry the same id, and must not receive it.
        """
        with self._lock:
            session = self.sessions.get(session_id)
            if session is None or (only_to is not None and session is not only_to):
                return None
            session.draft = edit(copy.deepcopy(session.draft))
            session.draft_version += 1
            if media is not None:
                session.generated_media.append({"id": f"gen_{self.next_number('generated')}", **media})
            return session.draft_version

    def start_render(self, render_id: str, draft: dict[str, Any], output: object = None,
                     session_id: str = "") -> dict[str, Any]:
        with self._lock:
            if render_id in self._renders:
                if self.duplicate_render_ids == "join":
                    existing = self._renders[render_id]
                    return {"id": render_id, "status": "pending", "progress": 5, "created_at_ms": existing.created_at_ms}
                raise ApiError(1, "duplicate render id")
            # A render that is going to fail is not worth the encoder's time.
            if self.fail_renders:
                job = RenderJob.failed("render failed: encoder crashed")
            else:
                job = self.studio.render(draft, output, real=self.real_renders)
            render = _Render(render_id, time.monotonic(), self.render_seconds,
                             created_at_ms=int(time.time() * 1000), job=job, session_id=session_id,
                             draft=copy.deepcopy(draft))
            self._renders[render_id] = render
        return {"id": render_id, "status": "pending", "progress": 5, "created_at_ms": render.created_at_ms}

    def render_status(self, render_id: str, download_url: str) -> dict[str, Any]:
        with self._lock:
            render = self._renders.get(render_id)
        if render is None:
            raise ApiError(1, "render not found", status=404)
        return render.describe(download_url)

    def cancel_render(self, render_id: str, download_url: str) -> dict[str, Any]:
        with self._lock:
            render = self._renders.get(render_id)
            if render is None:
                raise ApiError(1, "render not found", status=404)
            if render.describe(download_url)["status"] in ("pending", "processing"):
                render.cancelled = True
                render.job.cancel()
            return render.describe(download_url)

    def render_file(self, render_id: str) -> Path:
        with self._lock:
            path = self._renders[render_id].job.path
        assert path is not None, "only a completed render has a file"
        return path

    def close(self) -> None:
        """Delete the uploaded files and rendered videos (the server calls this when it stops)."""
        self.studio.close()

    def forget_render(self, render_id: str) -> None:
        """The backend lost a render (tests of what a client does then)."""
        with self._lock:
            self._renders.pop(render_id, None)

    def begin_turn(self, session_id: str) -> None:
        """One turn at a time per session, as the hosted backend enforces."""
        with self._lock:
            if session_id in self.busy_sessions:
                raise ApiError(409, "session is busy with another turn", status=409)
            self.busy_sessions.add(session_id)

    def end_turn(self, session_id: str) -> None:
        with self._lock:
            self.busy_sessions.discard(session_id)
