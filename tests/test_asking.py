"""Questions put to the user (issue 18): before spending, NemoVideo's agent's, and the account links; through a task,
through an elicitation in the call (a 2025 session), or as `needs_input` text, with fastmcp's `Client`."""

from __future__ import annotations

import pytest
from fastmcp_tasks.client import call_tool_task
from mcp import Client as SdkClient
from mcp.types import ElicitResult

from nemovideo_mcp.tools import build_server

from tests.test_tasks import GENERATE, answering, stdio_client

pytestmark = pytest.mark.anyio


async def test_declined_spending_sends_nothing(sandbox, env) -> None:
    sandbox.anonymous_credits = 30  # below the cheapest paid turn NemoVideo documents (about 50)
    asked: list[str] = []
    async with stdio_client(env, elicitation_handler=answering("decline", asked=asked)) as client:
        result = await (await call_tool_task(client, "chat", {"message": GENERATE})).result()
    assert "about 100 credits" in asked[0] and "30 available" in asked[0]
    assert result.structured_content["status"] == "done" and "nothing was spent" in result.structured_content["reply"]
    assert sandbox.count("/run_sse") == 0


async def test_accepted_spending_runs_the_turn_and_says_what_it_cost(sandbox, env) -> None:
    sandbox.anonymous_credits = 30
    asked: list[str] = []
    async with stdio_client(env, elicitation_handler=answering({"send": True}, asked=asked)) as client:
        result = await client.call_tool("chat", {"message": GENERATE})
    assert len(asked) == 1 and sandbox.count("/run_sse") == 1
    assert result.structured_content["credits_before"] == 30 and result.structured_content["credits_after"] == 20
    assert "This turn cost 10 credits (30 → 20 available)." in result.content[0].text


async def test_a_new_anonymous_accounts_first_generation_is_not_asked_about(sandbox, settings, identity) -> None:
    asked: list = []
    async with legacy_client(settings, identity, asked=asked) as client:
        result = await client.call_tool("chat", {"message": GENERATE})
    assert not asked and result.structured_content["status"] == "done"
    assert result.structured_content["credits_before"] == 100


# A 2025 session in memory (the mcp SDK's own client in legacy mode), which elicits through a callback.


def legacy_client(settings, identity, *answers: dict | str, asked: list | None = None) -> SdkClient:
    """A 2025 session to the server in memory; given `asked`, it elicits: each question is recorded there and gets
    the next answer ("decline" declines, a dict is the form's content; a URL elicitation is accepted)."""
    pending = list(answers)

    async def elicit(context, params) -> ElicitResult:
        asked.append(params)
        if params.mode == "url":
            return ElicitResult(action="accept")
        answer = pending.pop(0)
        return ElicitResult(action="decline") if answer == "decline" else ElicitResult(action="accept", content=answer)

    return SdkClient(build_server(settings, identity), mode="legacy",
                     elicitation_callback=elicit if asked is not None else None)


async def test_a_2025_client_gets_no_task_and_the_cost_question_as_text_it_can_agree_to(sandbox, settings,
                                                                                         identity) -> None:
    sandbox.anonymous_credits = 30
    async with legacy_client(settings, identity) as client:
        asked = await client.call_tool("chat", {"message": GENERATE})
        assert asked.structured_content["status"] == "needs_input" and "job_id" in asked.structured_content
        assert asked.structured_content["cost_estimate"] == 100 and "confirm_cost=true" in asked.content[0].text
        assert sandbox.count("/run_sse") == 0
        sent = await client.call_tool("chat", {"message": GENERATE, "confirm_cost": True})
    assert sent.structured_content["status"] == "done" and sandbox.count("/run_sse") == 1


async def test_a_2025_client_that_elicits_is_asked_in_the_call(sandbox, settings, identity) -> None:
    sandbox.anonymous_credits = 30
    asked: list = []
    async with legacy_client(settings, identity, "decline", asked=asked) as client:
        declined = await client.call_tool("chat", {"message": GENERATE})
    assert "30 available" in asked[0].message and "nothing was spent" in declined.structured_content["reply"]
    assert sandbox.count("/run_sse") == 0


async def test_a_2025_client_that_elicits_answers_the_agents_question_in_the_call(sandbox, settings, identity) -> None:
    asked: list = []
    async with legacy_client(settings, identity, {"answer": GENERATE}, asked=asked) as client:
        result = await client.call_tool("chat", {"message": "hello there"})
    assert asked[0].message.endswith("What would you like?") and result.structured_content["generated"]
    assert sandbox.count("/run_sse") == 2


async def test_out_of_credits_offers_the_register_link_as_a_url_elicitation(sandbox, settings, identity) -> None:
    sandbox.anonymous_credits = 5  # less than the sandbox's generation costs: NemoVideo answers 2001
    offered: list = []
    async with legacy_client(settings, identity, asked=offered) as client:
        result = await client.call_tool("chat", {"message": GENERATE, "confirm_cost": True})
    assert result.is_error and "register" in result.content[0].text
    assert [params.mode for params in offered] == ["url"] and "/register" in offered[0].url


# A 2026-07-28 client that elicits but follows no task: the question is a round trip (InputRequiredResult).


def modern_client(settings, identity, *answers: dict | str, asked: list) -> SdkClient:
    pending = list(answers)

    async def elicit(context, params) -> ElicitResult:
        asked.append(params)
        if params.mode == "url":
            return ElicitResult(action="accept")
        answer = pending.pop(0)
        return ElicitResult(action="decline") if answer == "decline" else ElicitResult(action="accept", content=answer)

    return SdkClient(build_server(settings, identity), elicitation_callback=elicit)


async def test_out_of_credits_offers_a_2026_client_the_register_link_by_a_round_trip(sandbox, settings,
                                                                                     identity) -> None:
    # Fourth review's D3: a 2026-07-28 request can take no elicitation in the call, and was offered nothing.
    sandbox.anonymous_credits = 5
    offered: list = []
    async with modern_client(settings, identity, asked=offered) as client:
        result = await client.call_tool("chat", {"message": GENERATE, "confirm_cost": True})
    assert result.is_error and "register" in result.content[0].text
    assert [params.mode for params in offered] == ["url"] and "/register" in offered[0].url
    assert sandbox.count("/run_sse") == 1  # the call that came back from the page sent nothing again


async def test_a_2026_client_that_elicits_is_asked_by_a_round_trip_before_spending(sandbox, settings,
                                                                                   identity) -> None:
    sandbox.anonymous_credits = 30
    asked: list = []
    async with modern_client(settings, identity, "decline", {"send": True}, asked=asked) as client:
        declined = await client.call_tool("chat", {"message": GENERATE})
        assert "nothing was spent" in declined.structured_content["reply"] and sandbox.count("/run_sse") == 0
        sent = await client.call_tool("chat", {"message": GENERATE})
    assert ["30 available" in params.message for params in asked] == [True, True]
    assert sent.structured_content["status"] == "done" and sandbox.count("/run_sse") == 1


async def test_a_2026_client_answers_the_agents_question_by_a_round_trip(sandbox, settings, identity) -> None:
    asked: list = []
    async with modern_client(settings, identity, {"answer": GENERATE}, asked=asked) as client:
        result = await client.call_tool("chat", {"message": "hello there"})
    assert asked[0].message.endswith("What would you like?") and result.structured_content["generated"]
    assert sandbox.count("/run_sse") == 2  # the greeting once, then the answer: the first message is not sent again
