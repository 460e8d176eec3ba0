"""The MCP face of the skill: tool declarations that adapt `VideoService` calls.

Nothing here talks HTTP. A `NemoError` becomes an error result carrying its
user-facing message; anything else (a fault of ours) becomes one general sentence,
with the traceback in the log (redacted).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError, UnexpectedToolError
from mcp.types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import Field, ValidationError

from . import __version__, metrics
from .consent import (
    asked_by_round_trip,
    back_from_link,
    can_ask_by_round_trip,
    link_by_round_trip,
    meaning_of,
    offer_link,
    round_trip_answer,
    settled_in_call,
)
from .errors import NemoError, NotSignedIn
from .identity import SkillIdentity
from .logs import RedactingFilter, RequestLineFilter, get_logger, redact_json
from .jobs import DEFAULT_WAIT_SECONDS, Job, ProgressCallback, format_elapsed
from .results import (
    CancelResult,
    ChatResult,
    CreditsResult,
    ExportResult,
    Meaning,
    ProjectsResult,
    StateResult,
    ToolResult,
    UploadResult,
)
from .pages import add_routes
from .registry import ServiceRegistry
from .settings import Settings
from .tasks import TasksExtension, declared
from .texts import HOSTED_INSTRUCTIONS, INSTRUCTIONS, TOOL_TEXT
from .users import UserContext
from .views import PLAYER_URI, PROJECT_VIDEOS, RENDER_PARTS, TIMELINE_URI, apps_extension

if TYPE_CHECKING:
    from .service import VideoService
    from .store import Store

log = get_logger("tools")



def _hints(*, read_only: bool = False, destructive: bool = False, idempotent: bool = False) -> ToolAnnotations:
    return ToolAnnotations(read_only_hint=read_only, destructive_hint=destructive, idempotent_hint=idempotent,
                           open_world_hint=True)


# What each tool can do, which hosts read to decide whether to ask the user first. `chat` can remove what is
# on the timeline and spends credits; `wait` may take over a job and download its file; `export` writes a new
# file each time a draft changes (never over an existing one) and renders an unchanged draft once.
ANNOTATIONS = {
    "credits": _hints(read_only=True, idempotent=True),
    "state": _hints(read_only=True, idempotent=True),
    "chat": _hints(destructive=True),
    "wait": _hints(idempotent=True),
    "upload": _hints(),
    "export": _hints(idempotent=True),
    "projects": _hints(),
    "cancel": _hints(destructive=True, idempotent=True),
    "add_dropped_file": _hints(),
}
INTERNAL_ERROR = (
    "Something went wrong inside the skill while doing this. Look at the project with `state` before trying "
    "again; if it keeps happening, the server's log (the host's MCP log) has the details for a bug report."
)
WAIT_SECONDS = Field(
    default=DEFAULT_WAIT_SECONDS, ge=0, le=600,
    description="How long to wait before returning a job handle; keep it under the host's tool time limit.",
)


def hosted_auth(settings: Settings) -> dict[str, Any]:
    """A hosted server is an OAuth resource server: the SDK answers 401/403 and serves the RFC 9728 metadata,
    and admits only tokens the issuer signed for this server's MCP URL."""
    if not settings.hosted:
        return {}
    from .oauth import JwtTokenVerifier, auth_settings, mcp_url

    assert settings.public_url is not None and settings.auth_issuer is not None  # cli.hosted_problem checked
    return {"auth": auth_settings(settings.public_url, settings.auth_issuer, " ".join(settings.auth_scopes)),
            "token_verifier": JwtTokenVerifier(settings.auth_issuer, mcp_url(settings.public_url))}


def request_state_security(settings: Settings) -> dict[str, Any]:
    """A question's round trip may come back to any replica: each seals and opens its state with the same key. A
    local server keeps the SDK's key of the process."""
    if not settings.hosted or settings.secret_key is None:
        return {}
    from mcp.server.request_state import RequestStateSecurity

    from .sealing import derive_key

    return {"request_state_security": RequestStateSecurity(
        keys=[derive_key(settings.secret_key.get_secret_value(), b"nemovideo request state")])}


def registry_of(ctx: Context) -> ServiceRegistry:
    return ctx.request_context.lifespan_context


def user_of(ctx: Context) -> UserContext:
    return user_in(registry_of(ctx))


def user_in(registry: ServiceRegistry) -> UserContext:
    """The caller: the subject of the request's verified access token when hosted, else the local user."""
    if not registry.hosted:
        return UserContext.local()
    from mcp.server.auth.middleware.auth_context import get_access_token

    from .oauth import user_id_of

    token = get_access_token()
    if token is None:  # the SDK's middleware lets no request through without one: never act as nobody
        raise NotSignedIn()
    return UserContext(user_id_of(token))


def progress_reporter(ctx: Context) -> ProgressCallback:
    """MCP progress for a waiting call: elapsed seconds (always increasing) and the current step."""
    last = -1.0

    async def report(job: Job) -> None:
        nonlocal last
        last = max(job.elapsed, last + 0.001)
        await ctx.report_progress(round(last, 3), None, f"⏳ Still working… {job.step} ({format_elapsed(job.elapsed)})")

    return report


async def adapt(ctx: Context, call: Callable[[VideoService], Awaitable[ToolResult]],
                ) -> CallToolResult | InputRequiredResult:
    """`call` on the service, its result as text for people plus structured content; a `NemoError` as a clean
    tool error (offering its page first, where it has one and the client can open it)."""
    offered = back_from_link(ctx)
    if offered is not None:
        return await call_result(NemoError(offered))  # the call that comes back from the page: nothing runs again
    try:
        async with registry_of(ctx).using(user_of(ctx)) as service:
            result = await call(service)
    except NemoError as error:
        page = link_by_round_trip(ctx, error)
        if page is not None:
            return page
        await offer_link(ctx, error)
        return await call_result(error)
    except Exception:
        # A fault of ours: the traceback goes to the log (redacted), the host gets a sentence, the server goes on.
        log.exception("Tool crashed")
        return CallToolResult(content=[TextContent(type="text", text=INTERNAL_ERROR)], is_error=True)
    return await call_result(result)


async def call_result(outcome: ToolResult | NemoError) -> CallToolResult:
    """A result, or a `NemoError` as a clean tool error, as the host gets it (the same from a task)."""
    if isinstance(outcome, NemoError):
        # Returned rather than raised: the SDK would prefix a raised error with "Error executing tool …".
        log.info("Tool failed: %s: %s", type(outcome).__name__, outcome.message)
        return redacted(CallToolResult(content=[TextContent(type="text", text=outcome.message)], is_error=True))
    # In a worker thread: an export's contact sheet decodes frames of the video.
    extra = await anyio.to_thread.run_sync(outcome.extra_content)
    return redacted(CallToolResult(
        content=[TextContent(type="text", text=outcome.as_text()), *extra],
        structured_content=outcome.model_dump(mode="json"),
    ))


def service_for(ctx: ServerRequestContext[ServiceRegistry, Any]) -> AbstractAsyncContextManager[VideoService]:
    """The caller's service for a request that is not a tool call (the Tasks extension's methods)."""
    return ctx.lifespan_context.using(user_in(ctx.lifespan_context))


def wait_budget(ctx: Context, wait_seconds: float) -> float:
    """A client that follows tasks gets one at once instead of a call that waits."""
    return 0.0 if declared(ctx.request_context) else wait_seconds


def redacted(result: CallToolResult) -> CallToolResult:
    """The one way out to the host: every string of the result (text, structured content, links) redacted.

    Replies and drafts quote the backend, which may echo a token; this runs last, after any cutting.
    """
    return CallToolResult.model_validate(redact_json(result.model_dump(mode="json", by_alias=True, exclude_none=True)))


class _Server(MCPServer):
    """Arguments that cannot be used get a sentence before the tool runs, so no request or store write is made."""

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context | None = None) -> CallToolResult | InputRequiredResult:
        broken = next((field for field, value in arguments.items() if not _writable(value)), None)
        if broken is not None:
            return _refused(f"The `{name}` call was not made: {broken} has a broken character in it (half of an "
                            "emoji or symbol, or an invisible NUL). Type it again without that character.")
        started = time.perf_counter()
        try:
            result = await super().call_tool(name, arguments, context)
        except ToolError as error:
            # Only the SDK's check of the arguments against the schema, before the tool runs: never a fault of ours.
            if isinstance(error, UnexpectedToolError) or not isinstance(error.__cause__, ValidationError):
                raise
            result = _refused(argument_advice(name, error.__cause__))
        metrics.tool_call(name, time.perf_counter() - started, getattr(result, "is_error", False))
        return result


def _writable(value: object) -> bool:
    """Whether every text in an argument can be written as UTF-8 and stored. JSON's "\\udc80" escape carries a lone
    surrogate, which fails the first request or store write it reaches, after those before it were made; its
    "\\u0000" a NUL, which PostgreSQL's text refuses (and no name, path or message needs)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return "\x00" not in value
    if isinstance(value, list):
        return all(_writable(item) for item in value)
    if isinstance(value, dict):
        return all(_writable(item) for item in value.values())
    return True


def _refused(sentence: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=sentence)], is_error=True)


def argument_advice(tool: str, error: ValidationError) -> str:
    """Arguments the schema refused, as one sentence: each field and its rule, never the value sent (the caller's data)."""
    problems = "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'the arguments'}: {item['msg'][:1].lower()}{item['msg'][1:]}"
        for item in error.errors(include_url=False, include_input=False)
    )
    return f"The `{tool}` call was not made: {problems}. Call it again with that corrected."


def build_server(settings: Settings, identity: SkillIdentity, log_level: str = "INFO") -> MCPServer:
    stores: list[Store] = []

    def shared_store() -> Store:
        """Every user's store, made at first need: a host that never calls a tool imports no database code."""
        if not stores:
            from .store import open_store_for

            stores.append(open_store_for(settings))
        return stores[0]

    registries: list[ServiceRegistry] = []

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[ServiceRegistry]:
        if settings.hosted:
            # uvicorn writes its request lines through handlers of its own, set up before this runs: the paths of
            # the pages hold their links' keys.
            logging.getLogger("uvicorn.access").addFilter(RequestLineFilter())
            logging.getLogger("uvicorn.error").addFilter(RedactingFilter())
        async with anyio.create_task_group() as owner:
            registry = ServiceRegistry(settings, identity, owner, shared_store)
            registries.append(registry)  # for the pages, which have no MCP request context
            try:
                yield registry
            finally:
                registry.stop()
        if stores:
            with anyio.CancelScope(shield=True):
                await stores[0].aclose()

    server = _Server("nemovideo", version=__version__,
                     instructions=HOSTED_INSTRUCTIONS if settings.hosted else INSTRUCTIONS, lifespan=lifespan,
                     # Also uvicorn's: its request lines are written at INFO, and only then.
                     log_level=log_level, extensions=[TasksExtension(service_for, call_result), apps_extension(settings)],
                     **hosted_auth(settings), **request_state_security(settings))

    add_routes(server, settings, lambda: registries[-1], shared_store)
    if settings.hosted:
        metrics.enable()
        metrics.add_route(server, shared_store)

    @server.tool(
        name="credits",
        title=TOOL_TEXT["credits"].title,
        description=TOOL_TEXT["credits"].description,
        annotations=ANNOTATIONS["credits"],
    )
    async def credits(ctx: Context) -> Annotated[CallToolResult, CreditsResult]:
        return await adapt(ctx, lambda service: service.credits())

    @server.tool(
        name="state",
        title=TOOL_TEXT["state"].title,
        description=TOOL_TEXT["state"].description,
        annotations=ANNOTATIONS["state"],
        meta={"ui": {"resourceUri": TIMELINE_URI}},
    )
    async def state(ctx: Context) -> Annotated[CallToolResult, StateResult]:
        return await adapt(ctx, lambda service: service.state())

    @server.tool(
        name="chat",
        title=TOOL_TEXT["chat"].title,
        description=TOOL_TEXT["chat"].description,
        annotations=ANNOTATIONS["chat"],
        meta={"ui": {"resourceUri": TIMELINE_URI}},
    )
    async def chat(
        message: Annotated[str, Field(description="the user's request, in their words")],
        ctx: Context,
        wait_seconds: Annotated[float, WAIT_SECONDS] = DEFAULT_WAIT_SECONDS,
        confirm_cost: Annotated[bool, Field(description=(
            "true only after the user agreed to the cost a needs_input result named"))] = False,
    ) -> Annotated[CallToolResult, ChatResult]:
        budget = wait_budget(ctx, wait_seconds)

        def answer(question_id: str, meaning: Meaning) -> Awaitable[CallToolResult | InputRequiredResult]:
            return adapt(ctx, lambda service: service.answer_question(question_id, meaning, budget,
                                                                      progress_reporter(ctx)))

        answered = round_trip_answer(ctx)
        if answered is not None:
            # This call carries the answer to the question its first call asked; the message itself was handled then.
            question_id, content = answered
            result = await answer(question_id, meaning_of(content))
        else:
            result = await adapt(ctx, lambda service: service.chat(message, budget, progress_reporter(ctx),
                                                                   confirm_cost=confirm_cost))
        if declared(ctx.request_context):
            return result  # its questions travel in the task
        if can_ask_by_round_trip(ctx):
            return asked_by_round_trip(result) or result
        return await settled_in_call(ctx, result, answer)

    @server.tool(
        name="wait",
        title=TOOL_TEXT["wait"].title,
        description=TOOL_TEXT["wait"].description,
        annotations=ANNOTATIONS["wait"],
    )
    async def wait(
        job_id: Annotated[str, Field(description="the job_id of a 'working' result")],
        ctx: Context,
        wait_seconds: Annotated[float, WAIT_SECONDS] = DEFAULT_WAIT_SECONDS,
    ) -> CallToolResult:
        # No output schema: the result has the shape of whichever tool started the job (chat or export).
        return await adapt(ctx, lambda service: service.wait(job_id, wait_seconds, progress_reporter(ctx)))

    @server.tool(
        name="upload",
        title=TOOL_TEXT["upload"].title,
        description=TOOL_TEXT["upload"].description,
        annotations=ANNOTATIONS["upload"],
    )
    async def upload(
        sources: Annotated[list[str], Field(description="local file paths or http(s) URLs")],
        ctx: Context,
    ) -> Annotated[CallToolResult, UploadResult]:
        async def report(sent: int, total: int, message: str) -> None:
            await ctx.report_progress(sent, total or None, message)

        if declared(ctx.request_context):
            return await adapt(ctx, lambda service: service.upload_in_background(sources))
        return await adapt(ctx, lambda service: service.upload(sources, report))

    @server.tool(
        name="export",
        title=TOOL_TEXT["export"].title,
        description=TOOL_TEXT["export"].description,
        annotations=ANNOTATIONS["export"],
        # Hosts that render MCP Apps show the player with the result; the others ignore it.
        meta={"ui": {"resourceUri": PLAYER_URI}},
    )
    async def export(
        ctx: Context,
        output_dir: Annotated[str | None, Field(description="folder to save into; default NEMO_OUTPUT_DIR or ~/Downloads")] = None,
        wait_seconds: Annotated[float, WAIT_SECONDS] = DEFAULT_WAIT_SECONDS,
    ) -> Annotated[CallToolResult, ExportResult]:
        budget = wait_budget(ctx, wait_seconds)
        return await adapt(ctx, lambda service: service.export(output_dir, budget, progress_reporter(ctx)))

    @server.tool(
        name="projects",
        title=TOOL_TEXT["projects"].title,
        description=TOOL_TEXT["projects"].description,
        annotations=ANNOTATIONS["projects"],
    )
    async def projects(
        ctx: Context,
        action: Annotated[Literal["list", "new", "switch"], Field(description="what to do")] = "list",
        project: Annotated[str | None, Field(
            description="new: its name; switch: its number or name; list: words to search for")] = None,
        page: Annotated[int, Field(ge=1, description="list: which page of ten, most recent first")] = 1,
    ) -> Annotated[CallToolResult, ProjectsResult]:
        return await adapt(ctx, lambda service: service.projects(action, project, page))

    @server.tool(
        name="cancel",
        title=TOOL_TEXT["cancel"].title,
        description=TOOL_TEXT["cancel"].description,
        annotations=ANNOTATIONS["cancel"],
    )
    async def cancel(
        job_id: Annotated[str, Field(description="the job_id to cancel")],
        ctx: Context,
    ) -> Annotated[CallToolResult, CancelResult]:
        return await adapt(ctx, lambda service: service.cancel(job_id))

    @server.tool(
        name="add_dropped_file",
        title=TOOL_TEXT["add_dropped_file"].title,
        description=TOOL_TEXT["add_dropped_file"].description,
        annotations=ANNOTATIONS["add_dropped_file"],
        # Hosts that render Apps keep it from the model; the view calls it.
        meta={"ui": {"resourceUri": TIMELINE_URI, "visibility": ["app"]}},
    )
    async def add_dropped_file(
        upload_id: Annotated[str, Field(description="the view's id for this drop")],
        name: Annotated[str, Field(description="the file's name on the user's computer")],
        size: Annotated[int, Field(ge=0, description="the whole file's size in bytes")],
        offset: Annotated[int, Field(ge=0, description="where this part starts")],
        data: Annotated[str, Field(description="this part, base64 (at most 192 KiB of bytes)")],
        ctx: Context,
    ) -> CallToolResult:
        try:
            part = base64.b64decode(data, validate=True)
        except ValueError:
            return _refused("That part of the file did not arrive intact: drop the file again.")
        return await adapt(ctx, lambda service: service.receive_drop(upload_id, name, size, offset, part))

    @server.resource(PROJECT_VIDEOS, name="project videos", mime_type="application/json",
                     description="The current project's videos saved on this computer, newest first, for the player")
    async def project_videos(project: str, ctx: Context) -> str:
        if project != "current":
            raise ResourceError("Only the current project's videos can be listed: nemovideo://projects/current/videos.")
        async with registry_of(ctx).using(user_of(ctx)) as service:
            videos = await service.project_videos()
        return json.dumps([{"render_id": video.render_id, "name": Path(video.path or "").name,
                            "size_bytes": video.size_bytes, "started_at": video.started_at} for video in videos])

    @server.resource(RENDER_PARTS, name="render part", mime_type="video/mp4",
                     description="A part of an exported video, for the player view to play it")
    async def render_part(render_id: str, part: str, ctx: Context) -> bytes:
        try:
            async with registry_of(ctx).using(user_of(ctx)) as service:
                return await service.render_part(render_id, int(part))
        except NemoError as error:
            raise ResourceError(error.message) from None
        except ValueError:
            raise ResourceError("There is no such part of the video.") from None

    return server
