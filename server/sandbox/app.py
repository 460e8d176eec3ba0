"""HTTP face of the sandbox: one ASGI app serving the API listener and the download listener."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from . import wire
from .agent import plan_turn, stream_turn
from .state import (
    DUPLICATE_RENDER_IDS,
    GATEWAY_ERRORS,
    MEDIA_TYPES,
    REPLY_STYLES,
    SWITCHES,
    TURN_ENDINGS,
    ApiError,
    ConnectionAbort,
    RecordedRequest,
    Sandbox,
)

ATTRIBUTION_HEADERS = ("x-skill-source", "x-skill-version", "x-skill-platform")
DOWNLOAD_CHUNK_BYTES = 64 * 1024


def _call_of(path: str) -> str:
    """Which documented call a path is, as far as the shape of its error replies differs."""
    return "render_status" if path.startswith("/api/render/proxy/lambda") else "api"


def _control_ok(data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"code": 0, "message": "ok", "data": data})


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
    name = PurePosixPath(unquote(parts.path)).name or str(parts.hostname)  # a host name, as a real service would not show a password
    return {"name": name, "size": 0, "type": MEDIA_TYPES.get(_extension(name), "video"), "url": url}


def _has_segments(draft: object) -> bool:
    tracks = draft.get("t") if isinstance(draft, dict) else None
    return isinstance(tracks, list) and any(isinstance(track, dict) and track.get("sg") for track in tracks)


async def _mp4_chunks(path: Path, size: int, cut: bool) -> AsyncIterator[bytes]:
    end = size // 2 if cut else size
    with path.open("rb") as video:
        for offset in range(0, end, DOWNLOAD_CHUNK_BYTES):
            yield video.read(min(DOWNLOAD_CHUNK_BYTES, end - offset))
    if cut:
        raise ConnectionAbort("cut_next_download")


class _Handlers:
    def __init__(self, sandbox: Sandbox, download_url: str) -> None:
        self.sandbox = sandbox
        self.download_url = download_url

    def ok(self, call: str, data: dict[str, Any]) -> JSONResponse:
        return wire.ok(self.sandbox.reply_style, call, data)

    async def api_error(self, request: Request, error: ApiError) -> Response:
        if request.url.path.startswith("/_sandbox/"):  # the control API is ours, always one shape
            return JSONResponse({"code": error.code, "message": str(error), "data": None})
        return wire.error(self.sandbox.reply_style, _call_of(request.url.path), error)

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
        address = request.client.host if request.client else "unknown"
        return self.ok("anonymous_token", self.sandbox.issue_token(client_id, address))

    async def create_session(self, request: Request) -> Response:
        token = self._authorize(request)
        body = await _json_object(request)
        session = self.sandbox.create_session(str(body.get("language") or "en"))
        return self.ok("session", {"task_id": session.task_id, "session_id": session.session_id,
                                   "user_id": self.sandbox.user_id_of(token)})

    async def balance(self, request: Request) -> Response:
        return self.ok("credits", self.sandbox.credits_of(self._authorize(request)))

    async def state(self, request: Request) -> Response:
        self._authorize(request)
        session_id = request.path_params["session_id"]
        session = self.sandbox.session(session_id)
        return self.ok("state", {"session_id": session_id, "task_id": session.task_id, "task_name": "project",
                                 "state": self.sandbox.state_of(session_id)})

    async def upload(self, request: Request) -> Response:
        self._authorize(request)
        session_id = request.path_params["session_id"]
        self.sandbox.session(session_id)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            # Starlette spools each part to a temporary file, so a big upload never sits in memory.
            async with request.form(max_files=1000) as form:
                uploads = [item for item in form.getlist("files") if isinstance(item, UploadFile)]
                files = [self._checked_file(upload.filename or "", upload.size or 0) for upload in uploads]
                # Kept on disk and analysed (off the event loop) for the agent and the renderer.
                kept = [await anyio.to_thread.run_sync(self.sandbox.studio.keep, upload.file, file["name"],
                                                       file["type"]) for upload, file in zip(uploads, files)]
                files = [file | item.facts for file, item in zip(files, kept)]
        else:
            kept = []
            urls = (await _json_object(request)).get("urls")
            if not isinstance(urls, list):
                raise ApiError(1, "urls must be a list")
            files = [_url_file(url) for url in urls]
        if not files:
            raise ApiError(1, "nothing to upload")
        stored = self.sandbox.add_media(session_id, files)
        for item, kept_file in zip(stored, kept):
            self.sandbox.studio.adopt(item["id"], kept_file)
        return self.ok("upload", {"files": [_documented_file(item, self.download_url) for item in stored],
                                  "session_state_applied": True})

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
        turn = plan_turn(message, self.sandbox.studio.uploads(self.sandbox.state_of(session_id)["video_infos"]))
        try:
            self.sandbox.begin_turn(session_id)
        except ApiError:
            return JSONResponse({"detail": f"Session {session_id} is busy with another turn"}, status_code=409)
        self.sandbox.sessions[session_id].messages.append(message)
        try:
            self.sandbox.reserve_credits(token, turn.cost)
        except ApiError:
            self.sandbox.end_turn(session_id)
            raise
        drop = self.sandbox.take_switch("drop_next_stream")
        ending = self.sandbox.take_switch("next_turn_ending") or None
        streaming = body.get("streaming") is True
        return StreamingResponse(stream_turn(self.sandbox, session_id, token, message, turn, drop=drop,
                                             ending=ending, streaming=streaming),
                                 media_type="text/event-stream")

    async def start_render(self, request: Request) -> Response:
        token = self._authorize(request)
        if not all(request.headers.get(name, "").strip() for name in ATTRIBUTION_HEADERS):
            raise ApiError(402)
        # Anonymous tokens lack the `render` scope on the real backend (backend.md): a switch plays that.
        if self.sandbox.anonymous_export_blocked and self.sandbox.is_anonymous(token):
            raise ApiError(402, "free plan export blocked. Register at nemovideo.com to unlock export")
        body = await _json_object(request)
        render_id = body.get("id")
        if not isinstance(render_id, str) or not render_id:
            raise ApiError(1, "render id is required")
        session_id = str(body.get("sessionId", ""))
        self.sandbox.session(session_id)
        if not _has_segments(body.get("draft")):
            raise ApiError(1, "draft is empty")
        started = self.sandbox.start_render(render_id, body["draft"], body.get("output"), session_id)
        if self.sandbox.take_switch("garble_next_render_start"):
            return _injected_response(self.sandbox.reply_style, request.url.path, 502, None)
        return self.ok("render_start", started)

    async def render_status(self, request: Request) -> Response:
        self._authorize(request)
        return self.ok("render_status", self.sandbox.render_status(request.path_params["render_id"], self.download_url))

    async def cancel_render(self, request: Request) -> Response:
        self._authorize(request)
        return self.ok("render_cancel", self.sandbox.cancel_render(request.path_params["render_id"], self.download_url))

    async def api_download(self, request: Request) -> Response:
        self._authorize(request)
        return self._mp4(request.path_params["render_id"])

    async def file_download(self, request: Request) -> Response:
        return self._mp4(request.path_params["render_id"])

    def _mp4(self, render_id: str) -> Response:
        if self.sandbox.render_status(render_id, self.download_url)["status"] != "completed":
            raise ApiError(1, "render is not completed", status=409)
        cut = self.sandbox.take_switch("cut_next_download")
        path = self.sandbox.render_file(render_id)
        size = path.stat().st_size
        return StreamingResponse(_mp4_chunks(path, size, cut), media_type="video/mp4",
                                 headers={"Content-Length": str(size)})

    async def claim_token(self, request: Request) -> Response:
        self._authorize(request)
        body = await _json_object(request)
        self.sandbox.session(str(body.get("session_id", "")))
        return self.ok("claim_token", {"claim_token": f"clm_{self.sandbox.next_number('claim')}",
                                       "expires_in": 7 * 24 * 3600})

    async def control_inject(self, request: Request) -> Response:
        try:
            self.sandbox.inject(**await _json_object(request))
        except (TypeError, ValueError) as error:
            raise ApiError(1, str(error)) from None
        return _control_ok({})

    async def control_reset(self, request: Request) -> Response:
        self.sandbox.reset()
        return _control_ok({})

    async def control_config(self, request: Request) -> Response:
        body = await _json_object(request)
        unknown = sorted(set(body) - set(SWITCHES))
        if unknown:
            raise ApiError(1, f"unknown switches: {', '.join(unknown)}")
        if body.get("reply_style", REPLY_STYLES[0]) not in REPLY_STYLES:
            raise ApiError(1, f"reply_style must be one of {', '.join(REPLY_STYLES)}")
        if body.get("duplicate_render_ids", DUPLICATE_RENDER_IDS[0]) not in DUPLICATE_RENDER_IDS:
            raise ApiError(1, f"duplicate_render_ids must be one of {', '.join(DUPLICATE_RENDER_IDS)}")
        if body.get("next_turn_ending") not in (None, *TURN_ENDINGS):
            raise ApiError(1, f"next_turn_ending must be one of {', '.join(TURN_ENDINGS)}")
        for name, value in body.items():
            setattr(self.sandbox, name, value)
        return _control_ok({name: getattr(self.sandbox, name) for name in SWITCHES})

    async def control_requests(self, request: Request) -> Response:
        return _control_ok({"requests": [asdict(recorded) for recorded in list(self.sandbox.requests)]})


def _documented_file(item: dict[str, Any], download_url: str) -> dict[str, Any]:
    """An upload reply entry as documented (`filename`, `file_type`, `cdn_url`, …)."""
    return {"filename": item["name"], "file_type": item["type"],
            "cdn_url": item.get("url") or f"{download_url}/media/{item['id']}",
            "duration": item.get("duration", 0), "width": item.get("width"), "height": item.get("height"),
            "fps": item.get("fps"), "hash": item["id"]}


def _injected_response(style: str, path: str, code: int, retry_after: int | None) -> Response:
    if code in GATEWAY_ERRORS:
        # What a proxy in front of the real backend answers: HTML, not an envelope.
        return HTMLResponse(f"<html><body><h1>{code} {GATEWAY_ERRORS[code]}</h1></body></html>", status_code=code)
    return wire.error(style, _call_of(path), ApiError(code), retry_after)


async def _cdn_error(request: Request, error: ApiError) -> Response:
    return Response(f"{error}\n", status_code=404 if error.status in (404, 409) else error.status,
                    media_type="text/plain")


def build_app(sandbox: Sandbox, download_url: str, download_address: tuple[str, int]) -> ASGIApp:
    handlers = _Handlers(sandbox, download_url)
    errors = {ApiError: handlers.api_error}
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
        Route("/api/render/proxy/lambda/{render_id}/cancel", handlers.cancel_render, methods=["POST"]),
        Route("/api/render/proxy/{render_id}/download", handlers.api_download),
        Route("/_sandbox/inject", handlers.control_inject, methods=["POST"]),
        Route("/_sandbox/reset", handlers.control_reset, methods=["POST"]),
        Route("/_sandbox/config", handlers.control_config, methods=["POST"]),
        Route("/_sandbox/requests", handlers.control_requests),
    ])
    # The download host is a CDN, not the API: a missing file is a plain 404, in every reply style.
    downloads = Starlette(exception_handlers={ApiError: _cdn_error}, routes=[
        Route("/files/{render_id}.mp4", handlers.file_download),
    ])

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        listener = "download" if tuple(scope["server"]) == download_address else "api"
        target = downloads if listener == "download" else api
        if not (listener == "api" and scope["path"].startswith("/_sandbox/")):
            headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
            injection = sandbox.record(RecordedRequest(scope["method"], scope["path"], headers, listener))
            if injection is not None and injection.body is not None:
                target = JSONResponse(injection.body, status_code=injection.code)
            elif injection is not None:
                target = _injected_response(sandbox.reply_style, scope["path"], injection.code, injection.retry_after)
        await target(scope, receive, send)

    return app
