"""HTTP face of the sandbox: one ASGI app serving the API listener and the download listener."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .agent import plan_turn, stream_turn
from .state import GATEWAY_ERRORS, MEDIA_TYPES, SWITCHES, ApiError, ConnectionAbort, RecordedRequest, Sandbox

ATTRIBUTION_HEADERS = ("x-skill-source", "x-skill-version", "x-skill-platform")
DOWNLOAD_CHUNK_BYTES = 64 * 1024


def _build_mp4(total_bytes: int = 256 * 1024) -> bytes:
    ftyp = struct.pack(">I4s4sI", 32, b"ftyp", b"isom", 0x200) + b"isomiso2avc1mp41"
    padding = total_bytes - len(ftyp)
    return ftyp + struct.pack(">I4s", padding, b"free") + (bytes(range(256)) * (padding // 256 + 1))[:padding - 8]


MP4_BYTES = _build_mp4()


def _ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"code": 0, "message": "ok", "data": data})


def error_response(error: ApiError, retry_after: int | None = None) -> Response:
    headers = {"Retry-After": str(retry_after or 30)} if error.code == 429 else None
    return JSONResponse({"code": error.code, "message": str(error), "data": None}, status_code=error.status,
                        headers=headers)


async def _api_error(request: Request, error: ApiError) -> Response:
    return error_response(error)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ApiError(1, "body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(1, "body must be a JSON object")
    return body


def _extension(name: str) -> str:
    return PurePosixPath(name).suffix.lower().lstrip(".")


def _url_file(url: object) -> dict[str, Any]:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(1, f"not an http(s) URL: {url!r}")
    name = PurePosixPath(unquote(parts.path)).name or parts.netloc
    return {"name": name, "size": 0, "type": MEDIA_TYPES.get(_extension(name), "video"), "url": url}


def _has_segments(draft: object) -> bool:
    tracks = draft.get("t") if isinstance(draft, dict) else None
    return isinstance(tracks, list) and any(isinstance(track, dict) and track.get("sg") for track in tracks)


async def _mp4_chunks(cut: bool) -> AsyncIterator[bytes]:
    end = len(MP4_BYTES) // 2 if cut else len(MP4_BYTES)
    for offset in range(0, end, DOWNLOAD_CHUNK_BYTES):
        yield MP4_BYTES[offset:min(offset + DOWNLOAD_CHUNK_BYTES, end)]
    if cut:
        raise ConnectionAbort("cut_next_download")


class _Handlers:
    def __init__(self, sandbox: Sandbox, download_url: str) -> None:
        self.sandbox = sandbox
        self.download_url = download_url

    def _authorize(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(1001)
        self.sandbox.check_token(token)
        return token

    async def anonymous_token(self, request: Request) -> Response:
        client_id = request.headers.get("x-client-id", "").strip()
        if not client_id:
            raise ApiError(400)
        return _ok(self.sandbox.issue_token(client_id))

    async def create_session(self, request: Request) -> Response:
        self._authorize(request)
        body = await _json_object(request)
        session = self.sandbox.create_session(str(body.get("language") or "en"))
        return _ok({"task_id": session.task_id, "session_id": session.session_id})

    async def balance(self, request: Request) -> Response:
        return _ok(self.sandbox.credits_of(self._authorize(request)))

    async def state(self, request: Request) -> Response:
        self._authorize(request)
        return _ok({"state": self.sandbox.state_of(request.path_params["session_id"])})

    async def upload(self, request: Request) -> Response:
        self._authorize(request)
        session_id = request.path_params["session_id"]
        self.sandbox.session(session_id)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            # Starlette spools each part to a temporary file, so a big upload never sits in memory.
            async with request.form(max_files=1000) as form:
                uploads = [item for item in form.getlist("files") if isinstance(item, UploadFile)]
                files = [self._checked_file(upload.filename or "", upload.size or 0) for upload in uploads]
        else:
            urls = (await _json_object(request)).get("urls")
            if not isinstance(urls, list):
                raise ApiError(1, "urls must be a list")
            files = [_url_file(url) for url in urls]
        if not files:
            raise ApiError(1, "nothing to upload")
        return _ok({"files": self.sandbox.add_media(session_id, files)})

    def _checked_file(self, name: str, size: int) -> dict[str, Any]:
        extension = _extension(name)
        if extension not in self.sandbox.accepted_extensions:
            raise ApiError(4001, f"unsupported file type: {name}")
        if size > self.sandbox.max_upload_bytes:
            raise ApiError(4002, f"file too large: {name} is {size} bytes, limit {self.sandbox.max_upload_bytes}")
        # An extension a test adds to accepted_extensions counts as video.
        return {"name": name, "size": size, "type": MEDIA_TYPES.get(extension, "video")}

    async def run_sse(self, request: Request) -> Response:
        token = self._authorize(request)
        body = await _json_object(request)
        session_id = str(body.get("session_id", ""))
        try:
            message = "".join(part.get("text", "") for part in body["new_message"]["parts"])
        except (KeyError, TypeError, AttributeError):
            raise ApiError(1, "new_message.parts[].text is required", status=422) from None
        if session_id not in self.sandbox.sessions:
            return JSONResponse({"detail": f"Session not found: {session_id}"}, status_code=404)
        turn = plan_turn(message)
        self.sandbox.reserve_credits(token, turn.cost)
        drop = self.sandbox.take_switch("drop_next_stream")
        return StreamingResponse(stream_turn(self.sandbox, session_id, token, message, turn, drop),
                                 media_type="text/event-stream")

    async def start_render(self, request: Request) -> Response:
        self._authorize(request)
        if not all(request.headers.get(name, "").strip() for name in ATTRIBUTION_HEADERS):
            raise ApiError(402)
        body = await _json_object(request)
        render_id = body.get("id")
        if not isinstance(render_id, str) or not render_id:
            raise ApiError(1, "render id is required")
        self.sandbox.session(str(body.get("sessionId", "")))
        if not _has_segments(body.get("draft")):
            raise ApiError(1, "draft is empty")
        return _ok(self.sandbox.start_render(render_id))

    async def render_status(self, request: Request) -> Response:
        self._authorize(request)
        return _ok(self.sandbox.render_status(request.path_params["render_id"], self.download_url))

    async def api_download(self, request: Request) -> Response:
        self._authorize(request)
        return self._mp4(request.path_params["render_id"])

    async def file_download(self, request: Request) -> Response:
        return self._mp4(request.path_params["render_id"])

    def _mp4(self, render_id: str) -> Response:
        if self.sandbox.render_status(render_id, self.download_url)["status"] != "completed":
            raise ApiError(1, "render is not completed", status=409)
        cut = self.sandbox.take_switch("cut_next_download")
        return StreamingResponse(_mp4_chunks(cut), media_type="video/mp4",
                                 headers={"Content-Length": str(len(MP4_BYTES))})

    async def claim_token(self, request: Request) -> Response:
        self._authorize(request)
        body = await _json_object(request)
        self.sandbox.session(str(body.get("session_id", "")))
        return _ok({"claim_token": f"clm_{self.sandbox.next_number('claim')}"})

    async def control_inject(self, request: Request) -> Response:
        try:
            self.sandbox.inject(**await _json_object(request))
        except (TypeError, ValueError) as error:
            raise ApiError(1, str(error)) from None
        return _ok({})

    async def control_reset(self, request: Request) -> Response:
        self.sandbox.reset()
        return _ok({})

    async def control_config(self, request: Request) -> Response:
        body = await _json_object(request)
        unknown = sorted(set(body) - set(SWITCHES))
        if unknown:
            raise ApiError(1, f"unknown switches: {', '.join(unknown)}")
        for name, value in body.items():
            setattr(self.sandbox, name, value)
        return _ok({name: getattr(self.sandbox, name) for name in SWITCHES})

    async def control_requests(self, request: Request) -> Response:
        return _ok({"requests": [asdict(recorded) for recorded in list(self.sandbox.requests)]})


def _injected_response(code: int, retry_after: int | None) -> Response:
    if code in GATEWAY_ERRORS:
        # What a proxy in front of the real backend answers: HTML, not an envelope.
        return HTMLResponse(f"<html><body><h1>{code} {GATEWAY_ERRORS[code]}</h1></body></html>", status_code=code)
    return error_response(ApiError(code), retry_after)


def build_app(sandbox: Sandbox, download_url: str, download_address: tuple[str, int]) -> ASGIApp:
    handlers = _Handlers(sandbox, download_url)
    errors = {ApiError: _api_error}
    api = Starlette(exception_handlers=errors, routes=[
        Route("/api/auth/anonymous-token", handlers.anonymous_token, methods=["POST"]),
        Route("/api/auth/claim-token", handlers.claim_token, methods=["POST"]),
        Route("/api/tasks/me/with-session/nemo_agent", handlers.create_session, methods=["POST"]),
        Route("/api/credits/balance/simple", handlers.balance),
        Route("/api/state/nemo_agent/me/{session_id}/latest", handlers.state),
        Route("/api/upload-video/nemo_agent/me/{session_id}", handlers.upload, methods=["POST"]),
        Route("/run_sse", handlers.run_sse, methods=["POST"]),
        Route("/api/render/proxy/lambda", handlers.start_render, methods=["POST"]),
        Route("/api/render/proxy/lambda/{render_id}", handlers.render_status),
        Route("/api/render/proxy/{render_id}/download", handlers.api_download),
        Route("/_sandbox/inject", handlers.control_inject, methods=["POST"]),
        Route("/_sandbox/reset", handlers.control_reset, methods=["POST"]),
        Route("/_sandbox/config", handlers.control_config, methods=["POST"]),
        Route("/_sandbox/requests", handlers.control_requests),
    ])
    downloads = Starlette(exception_handlers=errors, routes=[
        Route("/files/{render_id}.mp4", handlers.file_download),
    ])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        listener = "download" if tuple(scope["server"]) == download_address else "api"
        target = downloads if listener == "download" else api
        if not (listener == "api" and scope["path"].startswith("/_sandbox/")):
            headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
            injection = sandbox.record(RecordedRequest(scope["method"], scope["path"], headers, listener))
            if injection is not None:
                target = _injected_response(injection.code, injection.retry_after)
        await target(scope, receive, send)

    return app
