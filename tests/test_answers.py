"""Answers to questions (issue 18, found by review): an answer is given once, to the question it answers, in the
project that asked it; a question that follows an answer is asked the same way; agreeing to a turn that waits
sends it once; and one project runs one paid turn at a time across processes."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
from fastmcp_tasks.client import call_tool_task

from tests.test_asking import legacy_client, modern_client
from tests.postgres_cluster import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.test_tasks import GENERATE, get_task, long_take, stdio_client

pytestmark = pytest.mark.anyio


async def settled(client, task_id: str):
    with anyio.fail_after(20):
        while (task := await get_task(client, task_id)).status == "working":
            await anyio.sleep(0.05)  # polled as a client polls: the server process has no event to await
    return task


async def test_a_retried_update_is_refused_and_never_answers_the_next_question(sandbox, env) -> None:
    from fastmcp_tasks.client_models import UpdateTaskRequest, UpdateTaskRequestParams
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS, Result

    sandbox.late_write_seconds = None

    async def update(client, task_id: str, responses: dict) -> None:
        await client.session.send_request(UpdateTaskRequest(params=UpdateTaskRequestParams(
            task_id=task_id, input_responses=responses)), Result)

    async with stdio_client(env) as client:
        task = await call_tool_task(client, "chat", {"message": "hello there"})
        first = await settled(client, task.task_id)
        [key] = first.input_requests
        answer = {key: {"action": "accept", "content": {"answer": "hmm, tell me more"}}}
        await update(client, task.task_id, answer)
        second = await settled(client, task.task_id)
        assert second.status == "input_required" and list(second.input_requests) != [key]  # a new question, a new key
        sent = sandbox.count("/run_sse")
        with pytest.raises(MCPError) as refused:
            await update(client, task.task_id, answer)  # the same update again, as a client retries
        assert refused.value.error.code == INVALID_PARAMS
        assert (await get_task(client, task.task_id)).status == "input_required"
        with pytest.raises(MCPError) as no_task:  # a question's key names no task of its own to answer it through
            await update(client, list(second.input_requests)[0], answer)
        assert no_task.value.error.code == INVALID_PARAMS
    assert sandbox.count("/run_sse") == sent == 2


async def test_an_answer_goes_to_the_project_that_asked(sandbox, quick_service) -> None:
    sandbox.late_write_seconds = None
    by_task = (await quick_service.chat("hello there", wait_seconds=0)).job_id
    assert (await quick_service.wait(by_task, wait_seconds=10)).status == "needs_input"
    asked_in = (await quick_service.sessions.current()).session_id
    by_elicitation = (await quick_service.chat("hello there", wait_seconds=10)).job_id
    await quick_service.projects("new", "Another project")  # the user moved on before answering
    await quick_service.answer_task(by_task, {by_task: lambda asked: 'add the title "Task"'})
    with anyio.fail_after(20):
        while (view := await quick_service.task(by_task)).outcome.status == "working":
            await quick_service.wait(view.job_id, wait_seconds=1)
    await quick_service.answer_question(by_elicitation, lambda asked: 'add the title "Call"', 10, None)
    assert sandbox.session(asked_in).messages[-2:] == ['add the title "Task"', 'add the title "Call"']


@pytest.mark.parametrize("client_of", [legacy_client, modern_client], ids=["2025 in the call", "2026 round trip"])
async def test_a_question_that_follows_an_answer_is_asked_the_same_way(sandbox, settings, identity,
                                                                       client_of) -> None:
    sandbox.late_write_seconds = None
    sandbox.anonymous_credits = 30  # every paid turn is asked about first
    asked: list = []
    async with client_of(settings, identity, {"answer": GENERATE}, {"send": True}, asked=asked) as client:
        result = await client.call_tool("chat", {"message": "hello there", "confirm_cost": True})
    assert [params.message.endswith("What would you like?") for params in asked] == [True, False]
    assert "30 available" in asked[1].message  # then the answer's own cost, agreed: the generation is sent
    assert result.structured_content["status"] == "done" and result.structured_content["generated"]
    assert [message for session in sandbox.sessions.values() for message in session.messages] == [
        "hello there", GENERATE]


@pytest.mark.parametrize("way", ["confirm_cost", "2025 in the call", "2026 round trip"])
async def test_agreeing_to_an_upload_with_an_instruction_sends_it_once(sandbox, settings, identity, tmp_path: Path,
                                                                       way: str) -> None:
    sandbox.late_write_seconds = None
    sandbox.anonymous_credits = 30
    track = tmp_path / "track.mp3"
    track.write_bytes(b"\x00" * 4096)
    message = f"upload {track} and {GENERATE}"
    asked: list = []
    if way == "confirm_cost":  # a client that cannot elicit: the host agrees in a second call, as the result says
        async with legacy_client(settings, identity) as client:
            first = await client.call_tool("chat", {"message": message})
            assert first.structured_content["status"] == "needs_input" and sandbox.count("/run_sse") == 0
            result = await client.call_tool("chat", {"message": message, "confirm_cost": True})
    else:
        client_of = legacy_client if way == "2025 in the call" else modern_client
        async with client_of(settings, identity, {"send": True}, asked=asked) as client:
            result = await client.call_tool("chat", {"message": message})
        assert len(asked) == 1
    assert sandbox.count("/api/upload") == 1  # agreed without uploading again, however the agreement came
    assert result.structured_content["status"] == "done" and sandbox.count("/run_sse") == 1


@pytest.mark.parametrize("agreed_with", ["other files", "the same file, saved again since"])
async def test_agreeing_with_other_files_uploads_them_and_never_sends_the_request_that_waits(
        sandbox, quick_service, tmp_path: Path, agreed_with: str) -> None:
    import os

    sandbox.late_write_seconds = None
    sandbox.anonymous_credits = 30
    first, other = tmp_path / "first.mp3", tmp_path / "other.mp3"
    first.write_bytes(b"\x00" * 4096)
    other.write_bytes(b"\x00" * 4096)
    asked = await quick_service.chat(f"upload {first} and {GENERATE}")
    assert asked.status == "needs_input"
    if agreed_with == "other files":
        again = other
    else:
        again = first
        later = time.time() + 60  # saved after the question was asked (set, not waited for)
        os.utime(first, (later, later))
    sent = await quick_service.chat(f"upload {again} and {GENERATE}", confirm_cost=True)
    assert sent.status == "done" and sandbox.count("/api/upload") == 2 and sandbox.count("/run_sse") == 1
    [message] = sandbox.session((await quick_service.sessions.current()).session_id).messages
    assert again.name in message and (agreed_with != "other files" or first.name not in message)


async def test_two_processes_start_one_turn_on_one_project(sandbox, quick_settings, identity, out) -> None:
    """Two hosts on one machine (or two replicas for one user) each get a message for the same project at once."""
    from nemovideo_mcp.errors import NemoError
    from nemovideo_mcp.service import VideoService
    from nemovideo_mcp.store import open_store

    sandbox.late_write_seconds = None
    settings = quick_settings.model_copy(update={"output_dir": out})
    store = open_store(settings.config_dir, settings.state_dir)
    refused: list[str] = []
    try:
        async with VideoService(settings, identity, store=store) as one, \
                VideoService(settings, identity, store=store) as two:
            await one.chat('add the title "Warmup"', wait_seconds=10)
            sandbox.turn_seconds = 1.0
            for service in (one, two):  # NemoVideo's balance over the internet: the check and the start are apart
                read_balance = service.client.credits

                async def slowly(read_balance=read_balance):
                    await anyio.sleep(0.2)
                    return await read_balance()

                service.client.credits = slowly
            sent = sandbox.count("/run_sse")

            async def say(service: VideoService, message: str) -> None:
                try:
                    await service.chat(message, wait_seconds=5)
                except NemoError as error:
                    refused.append(error.message)

            async with anyio.create_task_group() as group:
                group.start_soon(say, one, 'add the title "One"')
                group.start_soon(say, two, 'add the title "Two"')
        assert sandbox.count("/run_sse") - sent == 1
        assert len(refused) == 1 and "this message was not sent" in refused[0]
    finally:
        await store.aclose()


async def test_an_answer_refused_by_a_cancel_leaves_a_generations_second_stage_alone(sandbox, quick_settings,
                                                                                     identity, out,
                                                                                     monkeypatch) -> None:
    """Nothing of a new turn happens before it is admitted: the running watch is not stopped, its reports not taken."""
    from nemovideo_mcp.errors import InvalidInput
    from nemovideo_mcp.service import LATE_WRITE_INTRO, VideoService

    settings = quick_settings.model_copy(update={"output_dir": out, "late_write_watch_seconds": 20.0})
    async with VideoService(settings, identity) as service:
        sandbox.late_write_seconds = None
        question = (await service.chat("hello there", wait_seconds=0)).job_id
        assert (await service.wait(question, wait_seconds=10)).status == "needs_input"
        sandbox.late_write_seconds = 3.0
        generation = (await service.chat(GENERATE, wait_seconds=0)).job_id
        with anyio.fail_after(20):
            while (view := await service.task(generation)).watching is None:
                await service.wait(view.job_id, wait_seconds=1)
        claim = service.jobs.claim_answer

        async def claimed_then_cancelled(*args):  # the user cancels the question's task while the answer is handled
            claimed = await claim(*args)
            await service.cancel_task(question)
            return claimed

        monkeypatch.setattr(service.jobs, "claim_answer", claimed_then_cancelled)
        with pytest.raises(InvalidInput):
            await service.answer_task(question, {question: lambda asked: 'add the title "Never sent"'})
        with anyio.fail_after(30):
            while (view := await service.task(generation)).outcome.status == "working":
                await service.wait(view.watching or view.job_id, wait_seconds=1)
    assert LATE_WRITE_INTRO in view.outcome.reply  # its music and titles, reported with the generation


async def test_a_new_users_first_chat_holds_one_database_lock_at_a_time(sandbox, env, identity,
                                                                       postgres_url) -> None:  # noqa: F811
    """Hosted on PostgreSQL, each held lock is a connection: a first chat creates the user's token and project, which
    take locks of their own, so the turn's lock must not be held around them (the pool would run dry)."""
    from nemovideo_mcp.postgres import PostgresDatabase
    from nemovideo_mcp.service import VideoService
    from nemovideo_mcp.store import Store
    from nemovideo_mcp.users import UserContext
    from tests.test_hosted_users import hosted

    store = Store(PostgresDatabase(postgres_url, max_locks=1, timeout_seconds=2.0))
    try:
        async with VideoService(hosted(env), identity, user=UserContext("https://login.example|newcomer"),
                                store=store) as new:
            result = await new.chat('add a title "One lock"', wait_seconds=20)
    finally:
        await store.aclose()
    assert result.status == "done" and sandbox.count("/run_sse") == 1


async def test_an_answer_to_a_project_nemovideo_lost_is_refused_not_sent_elsewhere(sandbox, quick_service) -> None:
    from nemovideo_mcp.errors import InvalidInput

    sandbox.late_write_seconds = None
    sandbox.anonymous_credits = 30  # the turn waits for the user's agreement
    task_id = (await quick_service.chat(GENERATE, wait_seconds=10)).job_id
    asked_in = (await quick_service.sessions.current()).session_id
    await quick_service.projects("new", "Another project")
    sandbox.forget_session(asked_in)
    with pytest.raises(InvalidInput, match="no longer has the project"):
        await quick_service.answer_task(task_id, {task_id: lambda asked: "yes"})
    assert sandbox.count("/run_sse") == 0


async def test_a_late_step_of_an_answer_never_moves_its_task_back(sandbox, quick_service) -> None:
    sandbox.late_write_seconds = None
    task_id = (await quick_service.chat("hello there", wait_seconds=0)).job_id
    assert (await quick_service.wait(task_id, wait_seconds=10)).status == "needs_input"
    await quick_service.answer_task(task_id, {task_id: lambda asked: "hmm, tell me more"})
    answer = (await quick_service.task(task_id)).job_id
    assert (await quick_service.wait(answer, wait_seconds=10)).status == "needs_input"  # NemoVideo asks again
    await quick_service.answer_task(task_id, {answer: lambda asked: 'add the title "Then"'})
    latest = (await quick_service.task(task_id)).job_id
    # The first answer's own step, arriving late (a slow store): the task stays where it is
    assert await quick_service.jobs.adopt(task_id, answer, replacing=task_id)
    assert (await quick_service.task(task_id)).job_id == latest != answer


async def test_upload_and_a_request_go_to_one_project_whatever_the_user_switches_to(sandbox, quick_service,
                                                                                    tmp_path: Path,
                                                                                    monkeypatch) -> None:

    sandbox.late_write_seconds = None
    sandbox.anonymous_credits = 30  # the request waits for the user's agreement once the files are there
    track = long_take(tmp_path)
    await quick_service.projects("new", "First project")
    first = (await quick_service.sessions.current()).session_id
    upload = quick_service.upload

    async def while_the_user_moves_on(*args, **kwargs):
        uploaded = await upload(*args, **kwargs)
        await quick_service.projects("new", "Something else")  # meanwhile, in the conversation
        return uploaded

    monkeypatch.setattr(quick_service, "upload", while_the_user_moves_on)
    task_id = (await quick_service.chat(f"upload {track} and {GENERATE}", wait_seconds=0)).job_id
    uploaded = await quick_service.wait(task_id, wait_seconds=30)
    assert "waits for your agreement" in uploaded.reply and sandbox.count("/run_sse") == 0  # nothing said was sent
    assert (await quick_service.wait(uploaded.job_id, wait_seconds=10)).status == "needs_input"
    await quick_service.answer_task(task_id, {uploaded.job_id: lambda asked: "yes"})
    with anyio.fail_after(30):
        while (view := await quick_service.task(task_id)).outcome.status == "working":
            await quick_service.wait(view.watching or view.job_id, wait_seconds=1)
    assert view.outcome.generated
    assert sandbox.session(first).messages == [f"upload {track} and {GENERATE}\n[uploaded: long-take.mp3]"]


async def test_upload_and_a_request_for_a_project_nemovideo_lost_upload_nothing_elsewhere(sandbox, quick_service,
                                                                                          tmp_path: Path,
                                                                                          monkeypatch) -> None:
    from nemovideo_mcp.errors import InvalidInput

    sandbox.late_write_seconds = None
    track = long_take(tmp_path)
    await quick_service.projects("new", "First project")
    first = (await quick_service.sessions.current()).session_id
    upload = quick_service.upload

    async def after_the_project_was_lost(*args, **kwargs):
        await quick_service.projects("new", "Something else")
        sandbox.forget_session(first)
        return await upload(*args, **kwargs)

    monkeypatch.setattr(quick_service, "upload", after_the_project_was_lost)
    task_id = (await quick_service.chat(f"upload {track} and {GENERATE}", wait_seconds=0)).job_id
    with pytest.raises(InvalidInput, match="no longer has the project"):
        await quick_service.wait(task_id, wait_seconds=30)
    other = (await quick_service.sessions.current()).session_id
    assert not [request for request in sandbox.requests if "/api/upload" in request.path and other in request.path]
    assert sandbox.count("/run_sse") == 0


async def test_a_store_failure_as_an_answer_joins_its_task_leaves_the_question_open(sandbox, quick_service,
                                                                                    monkeypatch) -> None:
    from nemovideo_mcp.errors import StoreUnavailable

    sandbox.late_write_seconds = None
    task_id = (await quick_service.chat("hello there", wait_seconds=0)).job_id
    assert (await quick_service.wait(task_id, wait_seconds=10)).status == "needs_input"
    adopt, failing = quick_service.jobs.adopt, [1, 2]

    async def blip(*args, **kwargs):  # the database away for both of the answer's steps that join it to the task
        if failing:
            failing.pop()
            raise StoreUnavailable("The database did not answer.")
        return await adopt(*args, **kwargs)

    monkeypatch.setattr(quick_service.jobs, "adopt", blip)
    with pytest.raises(StoreUnavailable):
        await quick_service.answer_task(task_id, {task_id: lambda asked: 'add the title "One"'})
    assert sandbox.count("/run_sse") == 1  # the greeting only
    await quick_service.answer_task(task_id, {task_id: lambda asked: 'add the title "One"'})  # answering again works
    assert (await quick_service.wait((await quick_service.task(task_id)).job_id, wait_seconds=10)).status == "done"
