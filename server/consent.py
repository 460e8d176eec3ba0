"""Questions put to the user during a tool call, for clients that follow no task but can elicit.

A task's questions travel in the task (`tasks.py`). A 2025 session is asked with a server-to-client
elicitation in the middle of the call; a 2026-07-28 client, which has no session to carry one, gets the
question as an `InputRequiredResult` and calls again with the answer (the multi-round-trip flow, its state
sealed by the SDK). A client that can do neither gets the question as a `needs_input` result, as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from mcp.server.elicitation import render_elicitation_schema
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CallToolResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitRequestURLParams,
    ElicitResult,
    InputRequiredResult,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from .errors import ExportBlocked, NemoError, OutOfCredits
from .results import ChatResult, Meaning
from .logs import get_logger, redact

log = get_logger("consent")


class Consent(BaseModel):
    send: bool = Field(title="Send it", description="spend the credits this turn costs")


class Answer(BaseModel):
    answer: str = Field(title="Your answer", description="sent to NemoVideo as it is")


# The round trip's question key, and the sealed state's prefix before the id of the question asked.
ROUND_TRIP_KEY = "answer"
ASKED = "nemovideo:question:"
# A page offered by round trip (2026-07-28): its input request's key, and the sealed state's prefix before the
# sentence of the error that offered it, which is the answer to the call that comes back.
LINK_KEY = "page"
OFFERED = "nemovideo:page:"
# Questions asked one after another in one call (an answer's turn may ask again); past this the result says it.
MAX_QUESTIONS_IN_CALL = 5


def _modern(ctx: Context) -> bool:
    return ctx.request_context.protocol_version in MODERN_PROTOCOL_VERSIONS


def _declared_elicitation(ctx: Context) -> Any:
    capabilities = ctx.client_capabilities
    return capabilities.elicitation if capabilities is not None else None


def _elicitation(ctx: Context) -> Any:
    """The elicitation a 2025 session can receive mid-call (None on 2026-07-28, which has no session)."""
    return None if _modern(ctx) else _declared_elicitation(ctx)


def _form(elicitation: Any) -> bool:
    """Form elicitation: declared as `form`, or as an empty capability (which meant form before modes existed)."""
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def can_ask(ctx: Context) -> bool:
    return _form(_elicitation(ctx))


def can_ask_by_round_trip(ctx: Context) -> bool:
    return _modern(ctx) and _form(_declared_elicitation(ctx))


def round_trip_answer(ctx: Context) -> tuple[str, dict[str, Any] | None] | None:
    """On the call that carries the answer: the id of the question asked, and the form's content (None: declined
    or cancelled). None on any other call. The state is one this server sealed: the SDK refuses any other."""
    asked, responses = ctx.request_state, ctx.input_responses
    if not asked or not asked.startswith(ASKED) or not responses or ROUND_TRIP_KEY not in responses:
        return None
    response = responses[ROUND_TRIP_KEY]
    answered = response if isinstance(response, ElicitResult) else ElicitResult.model_validate(
        response.model_dump() if isinstance(response, BaseModel) else response)
    return asked.removeprefix(ASKED), (answered.content or {}) if answered.action == "accept" else None


def question(message: str, *, spend: bool) -> ElicitRequest:
    """A question as the form elicitation that carries it in a task or a round trip: yes or no before spending,
    free text for NemoVideo's question."""
    form = ElicitRequestFormParams(message=message, requested_schema=render_elicitation_schema(
        Consent if spend else Answer))
    return ElicitRequest(params=form)


def meaning_of(content: dict[str, Any] | None) -> Meaning:
    """What an answer's form content (None: declined or cancelled) says to the question it answers: "yes" to
    spending, the words for NemoVideo's question as written, or None (nothing to send)."""
    def said_to(asked: ChatResult) -> str | None:
        if asked.cost_estimate is not None:
            return "yes" if agreed(content) else None
        return answer_in(content)

    return said_to


def agreed(content: dict[str, Any] | None) -> bool:
    """An accepted form's content (None: declined or cancelled) as a yes to spending; anything but a yes is a no,
    an answer given in another field included."""
    return content is not None and content.get("send") is True


def answer_in(content: dict[str, Any] | None) -> str | None:
    """An accepted form's answer to NemoVideo's question, as written; None when none was given."""
    answer = (content or {}).get("answer")
    return answer if isinstance(answer, str) and answer.strip() else None


def _question_in(result: CallToolResult | InputRequiredResult) -> dict[str, Any] | None:
    """A chat result that asks the user something (`needs_input`) by a question id an answer can name, as
    structured content; None for any other (a page offered by round trip among them)."""
    if not isinstance(result, CallToolResult):
        return None
    asked = result.structured_content if not result.is_error else None
    return asked if asked and asked.get("status") == "needs_input" and asked.get("job_id") else None


def asked_by_round_trip(result: CallToolResult | InputRequiredResult) -> InputRequiredResult | None:
    """A `needs_input` chat result as the question of a round trip; None for any other result."""
    asked = _question_in(result)
    if asked is None:
        return None
    spend = asked.get("cost_estimate") is not None
    return InputRequiredResult(input_requests={ROUND_TRIP_KEY: question(str(asked["reply"]), spend=spend)},
                               request_state=f"{ASKED}{asked['job_id']}")


async def _asked_in_call(ctx: Context, asked: dict[str, Any]) -> dict[str, Any] | None:
    """The question put to the user now; the form's content, or None when they declined or cancelled."""
    answered = await ctx.elicit(str(asked["reply"]), Consent if asked.get("cost_estimate") is not None else Answer)
    return answered.data.model_dump() if answered.action == "accept" else None


async def settled_in_call(ctx: Context, result: CallToolResult | InputRequiredResult,
                          answer: Callable[[str, Meaning], Awaitable[CallToolResult | InputRequiredResult]],
                          ) -> CallToolResult | InputRequiredResult:
    """`needs_input` chat results asked as elicitations, where the client can answer one, each answer given to its
    question (agreed spending sends the turn that waited, an answer to NemoVideo's question goes as the next
    turn), and the turn it starts asked about in turn. No answer to NemoVideo's question leaves the result as it
    was, for the conversation to answer."""
    for _ in range(MAX_QUESTIONS_IN_CALL):
        asked = _question_in(result)
        if asked is None or not can_ask(ctx):
            return result
        content = await _asked_in_call(ctx, asked)
        if content is None and asked.get("cost_estimate") is None:
            return result
        result = await answer(str(asked["job_id"]), meaning_of(content))
    return result


def _link_of(error: NemoError) -> str | None:
    if isinstance(error, OutOfCredits | ExportBlocked):
        return error.action_url
    return None


def link_by_round_trip(ctx: Context, error: NemoError) -> InputRequiredResult | None:
    """Out of credits (2001) or needing a plan (402), for a 2026-07-28 client that declared URL elicitation: the
    register or claim page as the round trip's input request. The call that comes back is answered with the
    error's sentence (`back_from_link`); nothing is run again. None for any other error or client."""
    url = _link_of(error)
    elicitation = _declared_elicitation(ctx)
    if url is None or not _modern(ctx) or elicitation is None or elicitation.url is None:
        return None
    # Redacted as every text that leaves for the host (tools.call_result): the result skips that way out.
    message = redact(error.message)
    page = ElicitRequestURLParams(message=message, url=url, elicitation_id=uuid.uuid4().hex)
    return InputRequiredResult(input_requests={LINK_KEY: ElicitRequest(params=page)},
                               request_state=f"{OFFERED}{message}")


def back_from_link(ctx: Context) -> str | None:
    """On the call that comes back from a page offered by round trip: the sentence of the error that offered it.
    The state is one this server sealed: the SDK refuses any other."""
    state = ctx.request_state
    return state.removeprefix(OFFERED) if state and state.startswith(OFFERED) else None


async def offer_link(ctx: Context, error: NemoError) -> None:
    """Out of credits (2001) or needing a plan (402): the register or claim page as a URL elicitation in the call,
    where a 2025 client supports one. The error result still carries the sentence with the link for everyone."""
    url = _link_of(error)
    elicitation = _elicitation(ctx)
    if url is None or elicitation is None or elicitation.url is None:
        return
    try:
        await ctx.elicit_url(error.message, url, elicitation_id=uuid.uuid4().hex)
    except (MCPError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        # An offer the client could not show, or a client gone: the error result says the same, with the link.
        log.info("The client did not take the link as a URL elicitation", exc_info=True)
