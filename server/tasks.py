"""MCP Tasks (`io.modelcontextprotocol/tasks`, SEP-2663, protocol 2026-07-28) on our durable jobs.

A client that declares the extension in a request's capabilities gets, for `chat` and `export` work
that cannot answer at once, a `CreateTaskResult` instead of a result after up to 45 s: the task id is
the job id, so the task is durable before the answer leaves (the job's record is written first), is
followed from any process or replica, and is taken over if the process that ran it died. `tasks/get`
maps the job's outcome onto the task's statuses; a question (NemoVideo's agent's, or ours before
spending) is an `input_required` task whose form elicitation `tasks/update` answers, and the answer
starts the next job of the same task. Clients that did not declare the extension see none of this.

Nothing here knows NemoVideo: the service decides, this module speaks the wire.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolRequestParams, CallToolResult, RequestParams
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .consent import meaning_of, question
from .errors import InvalidInput, NemoError
from .jobs import FINISHED_JOB_LIFETIME_SECONDS, UnknownJob
from .logs import get_logger, redact, redact_json
from .results import ChatResult, ToolResult

if TYPE_CHECKING:
    from .service import TaskView, VideoService

log = get_logger("tasks")

EXTENSION_ID = "io.modelcontextprotocol/tasks"
# The tools whose work outlives a host's tool time limit; every other tool answers at once.
TASK_TOOLS = frozenset({"chat", "export", "upload"})
# How often a client should look: progress lines change every few seconds, a render takes minutes.
POLL_INTERVAL_MS = 2000
TTL_MS = int(FINISHED_JOB_LIFETIME_SECONDS * 1000)

ServiceFor = Callable[[ServerRequestContext[Any, Any]], AbstractAsyncContextManager["VideoService"]]
ResultFor = Callable[[ToolResult | NemoError], Awaitable[CallToolResult]]


def declared(request: ServerRequestContext[Any, Any]) -> bool:
    """Whether the client declared the extension for this request. Only a 2026-07-28 request can: a 2025 session
    has no task result shape (its SDK refuses one as an invalid result, after the work was started) and our
    `initialize` reply does not offer the extension, so a declaration there was never agreed to."""
    if request.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    capabilities = request.session.client_capabilities
    extensions = getattr(capabilities, "extensions", None) if capabilities is not None else None
    return bool(extensions) and EXTENSION_ID in extensions


class _TaskParams(RequestParams):
    model_config = ConfigDict(populate_by_name=True)

    # No control characters: such an id names no task, and is refused before it reaches the store.
    task_id: str = Field(alias="taskId", min_length=1, pattern=r"^[^\x00-\x1f\x7f]+$")


class _UpdateParams(_TaskParams):
    input_responses: dict[str, Any] = Field(alias="inputResponses")


class _Answer(BaseModel):
    """An elicitation's answer as `tasks/update` carries it."""

    action: Literal["accept", "decline", "cancel"]
    content: dict[str, Any] | None = None


def _timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _question(outcome: ChatResult) -> dict[str, Any]:
    return question(outcome.reply, spend=outcome.cost_estimate is not None).model_dump(
        mode="json", by_alias=True, exclude_none=True)


def _progress_line(outcome: ToolResult) -> str:
    return str(getattr(outcome, "reply", None) or getattr(outcome, "summary", ""))


class TasksExtension(Extension):
    identifier = EXTENSION_ID

    def __init__(self, service_for: ServiceFor, result_for: ResultFor) -> None:
        self._service_for = service_for
        self._result_for = result_for

    def methods(self) -> list[MethodBinding]:
        return [
            MethodBinding("tasks/get", _TaskParams, self._get),
            MethodBinding("tasks/update", _UpdateParams, self._update),
            MethodBinding("tasks/cancel", _TaskParams, self._cancel),
        ]

    async def intercept_tool_call(self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any],
                                  call_next: CallNext) -> HandlerResult:
        """The tool ran without waiting (it saw the declaration too); work still going on becomes a task."""
        result = await call_next(ctx)
        if params.name not in TASK_TOOLS or not declared(ctx):
            return result
        structured = result.structured_content if isinstance(result, CallToolResult) else None
        # chat and export wait no time for a declaring client (tools.wait_budget); upload hands a large upload over
        if not structured or result.is_error or not structured.get("job_id"):
            return result  # answered at once: a routed question, a small upload, a refusal
        if structured.get("status") not in ("working", "needs_input"):
            return result
        task_id = str(structured["job_id"])
        view = await self._with_service(ctx, lambda service: service.new_task(task_id, params.name))
        detailed = await self._detailed(view)
        # The task as it stands, without what only tasks/get carries (a question, a result).
        return {"resultType": "task", **{key: value for key, value in detailed.items()
                                          if key not in ("inputRequests", "result", "error")}}

    async def _with_service(self, ctx: ServerRequestContext[Any, Any],
                            act: Callable[[VideoService], Awaitable[Any]]) -> Any:
        try:
            async with self._service_for(ctx) as service:
                return await act(service)
        except UnknownJob:
            raise MCPError(code=INVALID_PARAMS, message="There is no task with that id (tasks are kept for 24 "
                           "hours).") from None
        except InvalidInput as error:
            raise MCPError(code=INVALID_PARAMS, message=redact(error.message)) from None
        except NemoError as error:
            # A sentence can quote what the backend said: redacted as a tool result's text is.
            raise MCPError(code=INTERNAL_ERROR, message=redact(error.message)) from None

    async def _detailed(self, view: TaskView) -> dict[str, Any]:
        # Every string that leaves, redacted as tool results are: a status line can quote the agent, a question is
        # the agent's own words.
        return redact_json(await self._unredacted(view))

    async def _unredacted(self, view: TaskView) -> dict[str, Any]:
        task: dict[str, Any] = {"taskId": view.task_id, "createdAt": _timestamp(view.created_at),
                                "lastUpdatedAt": _timestamp(view.updated_at), "ttlMs": TTL_MS,
                                "pollIntervalMs": POLL_INTERVAL_MS}
        outcome = view.outcome
        if view.cancelled is not None:
            return {**task, "status": "cancelled", "statusMessage": view.cancelled}
        if view.error is not None:
            # As the call without a task answers it: a tool result that is an error, with its sentence.
            return {**task, "status": "completed", "statusMessage": view.error.message,
                    "result": self._dumped(await self._result_for(view.error))}
        assert outcome is not None
        if outcome.status == "working":
            return {**task, "status": "working", "statusMessage": _progress_line(outcome)}
        if isinstance(outcome, ChatResult) and outcome.status == "needs_input":
            # Keyed by the question's own id: an update that answers an earlier question (a retry) is refused
            # instead of being taken for this one.
            return {**task, "status": "input_required", "statusMessage": outcome.reply,
                    "inputRequests": {view.job_id: _question(outcome)}}
        return {**task, "status": "completed", "result": self._dumped(await self._result_for(outcome))}

    @staticmethod
    def _dumped(result: CallToolResult) -> dict[str, Any]:
        return {"resultType": "complete", **result.model_dump(mode="json", by_alias=True, exclude_none=True)}

    async def _get(self, ctx: ServerRequestContext[Any, Any], params: _TaskParams) -> dict[str, Any]:
        return await self._detailed(await self._with_service(ctx, lambda service: service.task(params.task_id)))

    async def _update(self, ctx: ServerRequestContext[Any, Any], params: _UpdateParams) -> dict[str, Any]:
        try:
            answers = {key: _Answer.model_validate(response) for key, response in params.input_responses.items()}
        except ValidationError:
            raise MCPError(code=INVALID_PARAMS, message="inputResponses holds something that is not an elicitation "
                           "result: send each one's action (accept, decline or cancel) and, accepted, its content."
                           ) from None
        meanings = {key: meaning_of((answer.content or {}) if answer.action == "accept" else None)
                    for key, answer in answers.items()}
        await self._with_service(ctx, lambda service: service.answer_task(params.task_id, meanings))
        return {}

    async def _cancel(self, ctx: ServerRequestContext[Any, Any], params: _TaskParams) -> dict[str, Any]:
        await self._with_service(ctx, lambda service: service.cancel_task(params.task_id))
        return {}
