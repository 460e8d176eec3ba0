"""The MCP face of the skill: tool declarations that adapt `VideoService` calls.

Nothing here talks HTTP. A `NemoError` becomes an error result carrying its
user-facing message; anything else is left to the SDK, which shows the host only
"Error executing tool <name>" and logs the traceback to stderr (redacted).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from . import __version__
from .errors import NemoError
from .identity import SkillIdentity
from .logs import get_logger
from .service import CreditsResult, StateResult, ToolResult, VideoService
from .settings import Settings

INSTRUCTIONS = """\
NemoVideo makes and edits videos in the cloud. Use `credits` for the balance and
`state` to show what is on the timeline. Show the `summary` field to the user as it
is; never show tokens, ids or raw JSON. Tool errors are written for the user: pass
them on and follow the advice they give."""

log = get_logger("tools")

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=True)


def service_of(ctx: Context) -> VideoService:
    return ctx.request_context.lifespan_context


async def adapt(call: Awaitable[ToolResult]) -> CallToolResult:
    """The result as text for people plus structured content; a `NemoError` as a clean tool error."""
    try:
        result = await call
    except NemoError as error:
        # Returned rather than raised: the SDK would prefix a raised error with "Error executing tool …".
        log.info("Tool failed: %s: %s", type(error).__name__, error.message)
        return CallToolResult(content=[TextContent(type="text", text=error.message)], is_error=True)
    return CallToolResult(
        content=[TextContent(type="text", text=result.as_text())],
        structured_content=result.model_dump(mode="json"),
    )


def build_server(settings: Settings, identity: SkillIdentity) -> MCPServer:
    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[VideoService]:
        service = VideoService(settings, identity)
        try:
            yield service
        finally:
            await service.aclose()

    server = MCPServer("nemovideo", version=__version__, instructions=INSTRUCTIONS, lifespan=lifespan)

    @server.tool(
        name="credits",
        title="Credit balance",
        description="Show the NemoVideo credit balance: available, frozen (reserved by running work) and total. "
        "Use it when the user asks about credits or balance. Exporting costs no credits.",
        annotations=READ_ONLY,
    )
    async def credits(ctx: Context) -> Annotated[CallToolResult, CreditsResult]:
        return await adapt(service_of(ctx).credits())

    @server.tool(
        name="state",
        title="Timeline",
        description="Show what is on the current project's timeline, one line per track "
        "(video clips, background music with volume, titles and text with their times). "
        "Use it when the user asks for the status, the tracks, or what the video contains.",
        annotations=READ_ONLY,
    )
    async def state(ctx: Context) -> Annotated[CallToolResult, StateResult]:
        return await adapt(service_of(ctx).state())

    return server
