"""Chat turns end to end: service -> client -> sandbox /run_sse over loopback, and through mcp.Client."""

from __future__ import annotations

import pytest
from mcp import Client

from nemovideo_mcp.chat import TurnFailed
from nemovideo_mcp.jobs import UnknownJob
from nemovideo_mcp.sandbox.agent import GENERATED_TEXT
from nemovideo_mcp.service import TurnInProgress, VideoService
from nemovideo_mcp.sessions import NEW_SESSION_NOTICE
from nemovideo_mcp.tools import build_server

pytestmark = pytest.mark.anyio

GENERATE = "create a video with visuals synced to this music track"


@pytest.fixture
def fast_settings(settings):
    """Recovery polling on a test scale: the schedule's shape stays, the seconds shrink."""
    return settings.model_copy(update={"recovery_delays_seconds": (0.05, 0.1), "recovery_give_up_seconds": 0.6})


@pytest.fixture
async def service(fast_settings, identity):
    async with VideoService(fast_settings, identity) as service:
        yield service


async def test_a_generation_turn_streams_once_and_reports_the_new_tracks(sandbox, service) -> None:
    result = await service.chat(GENERATE)
    assert result.status == "done" and result.action == "chat"
    assert result.reply.count(GENERATED_TEXT) == 1
    assert result.changes == [
        "✅ Added video clip city timelapse (0–10 s)",
        "✅ Added background music Lo-fi (0–10 s)",
        '✅ Added title "Urban Dreams" (0–3 s)',
    ]
    assert result.timeline.startswith("Timeline (3 tracks)")
    assert "generate_video" not in result.reply and "functionCall" not in result.reply
    assert sandbox.count("/run_sse") == 1


async def test_a_silent_edit_is_answered_with_a_change_report(sandbox, service) -> None:
    await service.chat(GENERATE)
    result = await service.chat("add a title 'Summer Nights'")
    assert result.reply == '✅ Added title "Summer Nights" (0–3 s)'
    assert result.changes == ['✅ Added title "Summer Nights" (0–3 s)']


async def test_gui_phrases_become_actions(sandbox, service) -> None:
    await service.chat(GENERATE)
    result = await service.chat("what next?")
    # The reply was only instructions: it becomes what the skill does instead, the timeline and the offer.
    assert result.reply == f"{result.timeline}\nYour video is ready to export — say the word and I'll save it."
    assert result.timeline.startswith("Timeline (3 tracks)")
    assert [action.tool for action in result.next_actions] == ["export"]


async def test_routed_questions_never_reach_the_agent(sandbox, service) -> None:
    credits = await service.chat("how many credits do I have left?")
    timeline = await service.chat("what's on the timeline?")
    assert credits.action == "credits" and "100 credits available" in credits.reply
    assert timeline.action == "state" and "nothing has been made yet" in timeline.reply
    assert sandbox.count("/run_sse") == 0


async def test_a_long_turn_returns_a_handle_in_time_and_wait_finishes_it(sandbox, service) -> None:
    sandbox.turn_seconds, sandbox.heartbeat_seconds = 1.5, 0.1
    first = await service.chat(GENERATE, wait_seconds=0.2)
    assert first.status == "working" and first.job_id and first.job_id in first.as_text()
    assert first.next_actions[0].tool == "wait"
    with pytest.raises(TurnInProgress, match=first.job_id):
        await service.chat("add a title 'x'")
    finished = await service.wait(first.job_id, wait_seconds=30)
    assert finished.status == "done" and GENERATED_TEXT in finished.reply
    assert sandbox.count("/run_sse") == 1


async def test_a_dropped_stream_is_recovered_by_polling_without_resending(sandbox, service) -> None:
    sandbox.drop_next_stream = True
    result = await service.chat(GENERATE)
    assert result.status == "done"
    assert result.changes[-1] == '✅ Added title "Urban Dreams" (0–3 s)'
    assert sandbox.count("/run_sse") == 1
    assert sandbox.count("/api/state") >= 2  # the snapshot before, then the polls


async def test_a_dropped_stream_with_no_change_fails_clearly_without_resending(sandbox, service) -> None:
    sandbox.drop_next_stream = True
    with pytest.raises(TurnFailed, match="not sent again"):
        await service.chat("hello there")
    assert sandbox.count("/run_sse") == 1


async def test_an_error_frame_fails_the_turn_with_a_clear_message(sandbox, service) -> None:
    with pytest.raises(TurnFailed, match="could not finish this request \\(render backend exploded\\)"):
        await service.chat("make it explode")


async def test_a_lost_session_is_replaced_before_the_message_is_sent(sandbox, service) -> None:
    lost = await service.sessions.ensure(GENERATE)
    sandbox.forget_session(lost.session_id)
    result = await service.chat(GENERATE)
    assert result.notice == NEW_SESSION_NOTICE and result.status == "done"
    assert sandbox.count("/run_sse") == 1


async def test_unknown_job_ids_are_a_clear_error(service) -> None:
    with pytest.raises(UnknownJob, match="no job with that id .*Check the project with the state tool"):
        await service.wait("turn_nope", wait_seconds=0)


async def test_progress_notifications_arrive_during_a_long_turn(sandbox, fast_settings, identity) -> None:
    sandbox.turn_seconds, sandbox.heartbeat_seconds = 1.0, 0.1
    updates: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, message))

    async with Client(build_server(fast_settings, identity)) as client:
        result = await client.call_tool("chat", {"message": GENERATE, "wait_seconds": 20}, progress_callback=on_progress)
    assert not result.is_error and result.structured_content["status"] == "done"
    assert updates and all("Still working" in message for _, message in updates)
    assert any("Generating the video" in message for _, message in updates)
    progress_values = [progress for progress, _ in updates]
    assert progress_values == sorted(set(progress_values))


async def test_chat_and_wait_through_mcp(sandbox, fast_settings, identity) -> None:
    sandbox.turn_seconds, sandbox.heartbeat_seconds = 1.0, 0.1
    async with Client(build_server(fast_settings, identity)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        working = await client.call_tool("chat", {"message": GENERATE, "wait_seconds": 0.1})
        done = await client.call_tool("wait", {"job_id": working.structured_content["job_id"], "wait_seconds": 20})
        unknown = await client.call_tool("wait", {"job_id": "turn_unknown", "wait_seconds": 0})
    assert {"chat", "wait", "credits", "state"} <= set(tools)
    assert not tools["chat"].annotations.read_only_hint
    assert working.structured_content["status"] == "working"
    assert done.structured_content["status"] == "done" and GENERATED_TEXT in done.content[0].text
    assert unknown.is_error and "no job with that id" in unknown.content[0].text


async def test_two_messages_at_once_start_one_paid_turn(sandbox, service) -> None:
    import anyio

    sandbox.turn_seconds, sandbox.heartbeat_seconds = 0.5, 0.1
    outcomes: list[object] = []

    async def send(message: str) -> None:
        try:
            outcomes.append(await service.chat(message, wait_seconds=0))
        except TurnInProgress as refused:
            outcomes.append(refused)

    async with anyio.create_task_group() as group:
        group.start_soon(send, GENERATE)
        group.start_soon(send, "add a title 'Two'")
    refused = [outcome for outcome in outcomes if isinstance(outcome, TurnInProgress)]
    accepted = [outcome for outcome in outcomes if not isinstance(outcome, TurnInProgress)]
    assert len(refused) == 1 and len(accepted) == 1
    await service.wait(accepted[0].job_id, wait_seconds=30)
    assert sandbox.count("/run_sse") == 1
