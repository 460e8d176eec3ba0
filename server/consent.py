"""Questions put to the user during a tool call, for clients that follow no task but can elicit (2025 sessions).

A task's questions travel in the task (`tasks.py`); a client that can neither gets the question as a
`needs_input` result, as before. Elicitation here is a server-to-client request, which only a session
(the 2025 protocols) can carry.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from .errors import ExportBlocked, NemoError, OutOfCredits
from .logs import get_logger

log = get_logger("consent")


class Consent(BaseModel):
    send: bool = Field(title="Send it", description="spend the credits this turn costs")


class Answer(BaseModel):
    answer: str = Field(title="Your answer", description="sent to NemoVideo as it is")


def _elicitation(ctx: Context) -> Any:
    if ctx.request_context.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return None
    capabilities = ctx.client_capabilities
    return capabilities.elicitation if capabilities is not None else None


def can_ask(ctx: Context) -> bool:
    """Form elicitation: declared as `form`, or as an empty capability (which meant form before modes existed)."""
    elicitation = _elicitation(ctx)
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


async def agreed_to_spend(ctx: Context, question: str) -> bool:
    """Whether the user agreed to the paid turn the question names; anything but a yes is a no."""
    answered = await ctx.elicit(question, Consent)
    return answered.action == "accept" and answered.data.send


async def answer_to(ctx: Context, question: str) -> str | None:
    """The user's answer to NemoVideo's question, or None when they gave none."""
    answered = await ctx.elicit(question, Answer)
    if answered.action == "accept" and answered.data.answer.strip():
        return answered.data.answer
    return None


async def settled_in_call(ctx: Context, result: CallToolResult, *, send_anyway: Callable[[], Awaitable[CallToolResult]],
                          send_answer: Callable[[str], Awaitable[CallToolResult]],
                          declined: Callable[[], Awaitable[CallToolResult]]) -> CallToolResult:
    """A `needs_input` chat result asked as an elicitation, where the client can answer one: agreed spending
    sends the turn that waited, an answer to NemoVideo's question goes as the next turn; no answer to the
    question leaves the result as it was."""
    asked = result.structured_content if not result.is_error else None
    if not asked or asked.get("status") != "needs_input" or not can_ask(ctx):
        return result
    if asked.get("cost_estimate") is not None:
        return await (send_anyway() if await agreed_to_spend(ctx, str(asked["reply"])) else declined())
    answer = await answer_to(ctx, str(asked["reply"]))
    return result if answer is None else await send_answer(answer)


def _link_of(error: NemoError) -> str | None:
    if isinstance(error, OutOfCredits | ExportBlocked):
        return error.action_url
    return None


async def offer_link(ctx: Context, error: NemoError) -> None:
    """Out of credits (2001) or needing a plan (402): the register or claim page as a URL elicitation, where the
    client supports one. The error result still carries the sentence with the link for everyone else."""
    url = _link_of(error)
    elicitation = _elicitation(ctx)
    if url is None or elicitation is None or elicitation.url is None:
        return
    try:
        await ctx.elicit_url(error.message, url, elicitation_id=uuid.uuid4().hex)
    except MCPError:
        # An offer the client could not show: the error result says the same, with the link.
        log.info("The client did not take the link as a URL elicitation", exc_info=True)
