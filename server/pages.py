"""The HTTP endpoints beside `/mcp`: health and readiness for the operator's orchestrator, and, hosted, the
links a user's browser opens (no access token there: the signed link says whose it is).

Like the tools, they only adapt: what they serve comes from the user's `VideoService`.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse

from .errors import NemoError
from .logs import get_logger
from .settings import Settings
from .users import UserContext

if TYPE_CHECKING:
    from .registry import ServiceRegistry
    from .store import Store

log = get_logger("pages")

CHUNK_BYTES = 1024 * 1024
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}}</style>
</head><body><main><h1>{title}</h1><p>{sentence}</p></main></body></html>
"""


def page(title: str, sentence: str, status: int) -> HTMLResponse:
    return HTMLResponse(PAGE.format(title=html.escape(title), sentence=html.escape(sentence)), status_code=status)


def add_routes(server: MCPServer, settings: Settings, registry: Callable[[], ServiceRegistry],
               store: Callable[[], Store]) -> None:
    @server.custom_route("/healthz", methods=["GET"])
    async def alive(_: Request) -> Response:
        return JSONResponse({"status": "alive"})

    @server.custom_route("/readyz", methods=["GET"])
    async def ready(_: Request) -> Response:
        """Ready when the store answers: a load balancer sends no user to a replica without its database."""
        try:
            await store().ready()
        except NemoError as error:
            return JSONResponse({"status": "unavailable", "reason": error.message}, status_code=503)
        return JSONResponse({"status": "ready"})

    if not settings.hosted:
        return
    from .links import LinkExpired, Links

    assert settings.secret_key is not None and settings.public_url is not None  # cli.check_hosted
    links = Links(settings.secret_key.get_secret_value(), settings.public_url)

    @server.custom_route("/download/{token}", methods=["GET"])
    async def download(request: Request) -> Response:
        """The rendered video, streamed from NemoVideo by whichever replica the browser reaches."""
        try:
            claims = links.read(request.path_params["token"], "download")
        except LinkExpired:
            return page("This link has expired", "Ask for the video again (export): a finished video is not "
                        "rendered again, and the answer carries a new link.", 410)
        if claims is None:
            return page("This link does not work", "It is not a download link of this server, or it was cut "
                        "short when it was copied. Ask for the video again (export) to get a new link.", 404)
        opened = AsyncExitStack()
        try:
            service = await opened.enter_async_context(registry().using(UserContext(claims.sub)))
            record = await service.exporter.registry.get(claims.subject)
            if record is None or record.status not in ("completed", "delivered"):
                await opened.aclose()
                return page("This video is no longer here", "Ask for the video again (export) to render it anew.", 404)
            upstream = await opened.enter_async_context(service.exporter.open_render(record))
        except NemoError as error:
            await opened.aclose()
            return page("The video cannot be downloaded now", error.message, 502)

        async def body() -> AsyncIterator[bytes]:
            async with opened:
                async for chunk in upstream.aiter_raw(CHUNK_BYTES):
                    yield chunk

        headers = {"Content-Disposition": f'attachment; filename="nemovideo-{record.render_id}.mp4"'}
        if upstream.headers.get("content-length"):
            headers["Content-Length"] = upstream.headers["content-length"]
        return StreamingResponse(body(), media_type="video/mp4", headers=headers)
