"""MCP Tasks (issue 18) through independent clients: fastmcp's `Client` with `fastmcp[tasks]` over stdio and
Streamable HTTP, against the sandbox. A client that does not declare the extension is covered by every other
test file, which runs unchanged."""

from __future__ import annotations

import contextlib
from pathlib import Path

import anyio
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport
from fastmcp_tasks.client import call_tool_task

from nemovideo_mcp.jobs import JobCancelled
from tests.conftest import REPO, subprocess_env

pytestmark = pytest.mark.anyio

GENERATE = "create a video with visuals synced to this music track"


def stdio_client(env: dict[str, str], **kwargs) -> Client:
    import sys

    return Client(StdioTransport(command=sys.executable, args=["-m", "nemovideo_mcp"], env=subprocess_env(env),
                                 cwd=str(REPO)), **kwargs)


async def test_a_generation_is_one_task_followed_to_its_result_over_stdio(sandbox, env) -> None:
    sandbox.turn_seconds = 1.0
    sandbox.late_write_seconds = 1.0  # the music and titles land a second after the reply, as NemoVideo's do
    async with stdio_client(env) as client:
        task = await call_tool_task(client, "chat", {"message": GENERATE})
        assert task.task_id.startswith("turn_")
        result = await task.result()
    made = result.structured_content
    assert made["status"] == "done" and made["generated"]
    # The whole generation, its second stage included: nothing is left for `wait`
    assert "NemoVideo finished more work after its reply:" in made["reply"] and made.get("follow_up_job_id") is None
    assert "`wait`" not in result.content[0].text
    assert sandbox.count("/run_sse") == 1


def long_take(folder: Path, size: int | None = None) -> Path:
    """A local file past the size that uploads as a task (sparse: nothing is written)."""
    from nemovideo_mcp.service import LONG_UPLOAD_BYTES

    take = folder / "long-take.mp3"
    with take.open("wb") as file:
        file.truncate(LONG_UPLOAD_BYTES + 1 if size is None else size)
    return take


def answering(*answers: dict | str, asked: list[str]):
    """An elicitation handler that records each question and gives the next answer ("decline" declines)."""
    from fastmcp.client.elicitation import ElicitResult

    pending = list(answers)

    async def handler(message, response_type, params, context):
        asked.append(message)
        answer = pending.pop(0)
        return ElicitResult(action="decline") if answer == "decline" else answer

    return handler


async def test_an_export_is_one_task_that_lands_its_mp4_over_streamable_http(sandbox, env, tmp_path: Path) -> None:
    from tests.test_http_transport import http_server

    sandbox.late_write_seconds = None
    sandbox.real_renders = False  # the placeholder clip: what is tested is how the file travels, not its frames
    sandbox.render_seconds = 1.0
    out = tmp_path / "out"
    with http_server({**env, "NEMO_OUTPUT_DIR": str(out)}, tmp_path / "server.log") as port:
        async with Client(StreamableHttpTransport(f"http://127.0.0.1:{port}/mcp")) as client:
            generated = await client.call_tool("chat", {"message": GENERATE})  # followed as a task, transparently
            assert generated.structured_content["status"] == "done"
            task = await call_tool_task(client, "export", {})
            assert task.task_id.startswith("export_")
            exported = await task.result()
    saved = Path(exported.structured_content["path"])
    assert saved.parent == out and saved.read_bytes()[4:8] == b"ftyp"
    assert any(block.type == "resource_link" for block in exported.content)


async def test_the_agents_question_is_answered_through_the_task_and_the_same_task_goes_on(sandbox, env) -> None:
    asked: list[str] = []
    handler = answering({"answer": GENERATE}, asked=asked)
    async with stdio_client(env, elicitation_handler=handler) as client:
        task = await call_tool_task(client, "chat", {"message": "hello there"})
        result = await task.result()
    assert asked and asked[0].endswith("What would you like?")
    assert result.structured_content["status"] == "done" and result.structured_content["generated"]
    assert sandbox.count("/run_sse") == 2  # the greeting, then the answer as the next turn of the same project
    assert len(sandbox.sessions) == 1


async def test_a_render_is_cancelled_through_tasks_cancel(sandbox, env) -> None:
    sandbox.late_write_seconds = None
    sandbox.real_renders = False  # the placeholder clip: what is tested is how the file travels, not its frames
    async with stdio_client(env) as client:
        await client.call_tool("chat", {"message": GENERATE})
        sandbox.render_seconds = 30
        task = await call_tool_task(client, "export", {}, raise_on_error=False)
        with anyio.fail_after(10):
            while not sandbox.render_ids():
                await anyio.sleep(0.05)  # the sandbox records the render start; no event to await across processes
        await task.cancel()
        status = await task.status()
        assert status.status == "cancelled"
        assert status.status_message == "The render was cancelled at NemoVideo."  # what `cancel` says, not a bare word
    [render_id] = sandbox.render_ids()
    assert sandbox.count(f"/api/render/proxy/lambda/{render_id}/cancel", "POST") == 1


async def get_task(client: Client, task_id: str):
    from fastmcp_tasks.client_models import ClientGetTaskResult, GetTaskRequest, GetTaskRequestParams

    return await client.session.send_request(GetTaskRequest(params=GetTaskRequestParams(task_id=task_id)),
                                             ClientGetTaskResult)


async def cancel_task(client: Client, task_id: str) -> None:
    from fastmcp_tasks.client_models import CancelTaskRequest, CancelTaskRequestParams
    from mcp_types import Result

    await client.session.send_request(CancelTaskRequest(params=CancelTaskRequestParams(task_id=task_id)), Result)


async def test_a_task_is_polled_from_a_second_server_process_after_the_first_was_killed(
        sandbox, env, settings, tmp_path: Path) -> None:
    from nemovideo_mcp.store import open_store
    from nemovideo_mcp.tables import JOBS
    from nemovideo_mcp.users import LOCAL_USER

    from tests.test_http_transport import http_server, http_server_process

    sandbox.turn_seconds = 2.0
    with http_server_process(env, tmp_path / "first.log") as (port, process):
        async with Client(StreamableHttpTransport(f"http://127.0.0.1:{port}/mcp")) as client:
            task_id = (await call_tool_task(client, "chat", {"message": GENERATE})).task_id
        process.kill()  # SIGKILL: the job's record still says "running", with a fresh heartbeat
        process.wait()
    store = open_store(settings.config_dir, settings.state_dir)
    try:  # a minute passes: the killed process's heartbeat is that old now
        await store.for_user(LOCAL_USER).update(
            JOBS, task_id, lambda record: record and {**record, "heartbeat_at": record["heartbeat_at"] - 60})
    finally:
        await store.aclose()
    with http_server(env, tmp_path / "second.log") as port:
        async with Client(StreamableHttpTransport(f"http://127.0.0.1:{port}/mcp")) as client:
            with anyio.fail_after(30):
                while (task := await get_task(client, task_id)).status == "working":
                    await anyio.sleep(task.poll_interval_ms / 1000)
    assert task.status == "completed" and task.result["structuredContent"]["status"] == "done"
    assert task.created_at < task.last_updated_at
    assert sandbox.count("/run_sse") == 1  # taken over without sending the message again


async def test_the_extension_is_advertised_as_the_spec_shows_it_and_server_json_says_so(settings, identity) -> None:
    import json

    from mcp import Client as SdkClient
    from nemovideo_mcp.tools import build_server

    async with SdkClient(build_server(settings, identity)) as client:
        assert client.server_capabilities.extensions["io.modelcontextprotocol/tasks"] == {}
    registry = json.loads((REPO / "server.json").read_text(encoding="utf-8"))
    provided = registry["_meta"]["io.modelcontextprotocol.registry/publisher-provided"]
    assert provided["extensions"] == {"io.modelcontextprotocol/tasks": {}}


async def test_a_2025_session_that_declares_the_extension_anyway_gets_no_task(sandbox, settings, identity,
                                                                               out) -> None:
    # Its results have no task shape: a task was refused by its SDK as an invalid result after the turn was sent
    # (fourth review's D1), so it was told the call failed while it paid; fastmcp_tasks also makes tasks on 2026 only.
    from mcp import Client as SdkClient
    from mcp.client.extension import advertise
    from nemovideo_mcp.tools import build_server

    sandbox.late_write_seconds, sandbox.turn_seconds = None, 0.3
    server = build_server(settings.model_copy(update={"output_dir": out}), identity)
    async with SdkClient(server, mode="legacy", extensions=[advertise("io.modelcontextprotocol/tasks")]) as client:
        made = await client.call_tool("chat", {"message": GENERATE})
        exported = await client.call_tool("export", {})
    assert not made.is_error and made.structured_content["status"] == "done" and sandbox.count("/run_sse") == 1
    assert not exported.is_error and exported.structured_content["status"] == "done"


async def test_an_export_asked_for_in_words_ends_with_chats_result(sandbox, env) -> None:
    sandbox.late_write_seconds = None
    sandbox.real_renders = False  # the placeholder clip: what is tested is how the file travels, not its frames
    sandbox.render_seconds = 1.0
    async with stdio_client(env) as client:
        await client.call_tool("chat", {"message": GENERATE})
        task = await call_tool_task(client, "chat", {"message": "export the video"})
        result = await task.result()
    # The export's job, followed under an id of its own that answers as `chat` does
    assert task.task_id.startswith("chat-export_")
    assert result.structured_content["action"] == "export" and result.structured_content["status"] == "done"


async def test_a_large_upload_is_a_task_and_a_small_one_answers_at_once(sandbox, env, tmp_path: Path) -> None:
    from nemovideo_mcp.service import LONG_UPLOAD_BYTES

    large, small = long_take(tmp_path), tmp_path / "jingle.mp3"
    small.write_bytes(b"\x00" * 4096)
    async with stdio_client(env) as client:
        task = await call_tool_task(client, "upload", {"sources": [str(large)]})
        assert task.task_id.startswith("upload_")
        uploaded = await task.result()
        at_once = await client.call_tool("upload", {"sources": [str(small)]})
    assert [item["size_bytes"] for item in uploaded.structured_content["uploads"]] == [LONG_UPLOAD_BYTES + 1]
    assert uploaded.structured_content["status"] == "done"
    assert [item["name"] for item in at_once.structured_content["uploads"]] == ["jingle.mp3"]


async def test_two_answers_to_one_question_send_one_turn(sandbox, quick_service) -> None:
    """Two `tasks/update` at once (a client retrying, two replicas): one is refused, no turn is sent twice."""
    from nemovideo_mcp.errors import InvalidInput

    task_id = (await quick_service.chat("hello there", wait_seconds=0)).job_id
    assert (await quick_service.wait(task_id, wait_seconds=10)).status == "needs_input"
    refused: list[str] = []

    async def answer() -> None:
        try:
            await quick_service.answer_task(task_id, {task_id: lambda asked: GENERATE})
        except InvalidInput as error:
            refused.append(error.message)

    async with anyio.create_task_group() as group:
        group.start_soon(answer)
        group.start_soon(answer)
    assert len(refused) == 1 and "already answered" in refused[0]
    with anyio.fail_after(10):
        while (view := await quick_service.task(task_id)).outcome.status == "working":
            await quick_service.wait(view.job_id, wait_seconds=1)
    assert view.outcome.generated and sandbox.count("/run_sse") == 2


async def test_a_tasks_status_line_and_question_are_redacted(sandbox, quick_service) -> None:
    """An agent that quotes a token: tasks/get hides it as tool results do."""
    from nemovideo_mcp.logs import forget_secret, register_secret
    from nemovideo_mcp.results import ChatResult
    from nemovideo_mcp.service import TaskView
    from nemovideo_mcp.tasks import TasksExtension
    from nemovideo_mcp.tools import call_result

    token = "nemo_sk_quoted_by_the_agent_0123456789"
    register_secret(token)
    try:
        extension = TasksExtension(lambda ctx: None, call_result)  # type: ignore[arg-type]
        view = TaskView(task_id="turn_x", root_id="turn_x", created_at=1.0, updated_at=2.0, job_id="turn_x")
        for status in ("working", "needs_input", "done"):
            outcome = ChatResult(reply=f"Your token is {token}", action="chat", status=status)
            assert token not in str(await extension._detailed(view.at(outcome=outcome)))  # noqa: SLF001
    finally:
        forget_secret(token)


@pytest.mark.parametrize("lands", ["before the answer", "once the answer is claimed", "once its turn is adopted"])
async def test_a_cancel_racing_an_answer_never_leaves_a_turn_running_after_it(sandbox, quick_service, monkeypatch,
                                                                              lands: str) -> None:
    """`tasks/cancel` landing at each step of a `tasks/update` (as two replicas may interleave them): either nothing
    is sent, or the turn the answer started is the one the cancel stops; never a cancelled task whose turn runs on."""
    from nemovideo_mcp.errors import InvalidInput
    from nemovideo_mcp.jobs import JobCancelled

    sandbox.late_write_seconds = None
    task_id = (await quick_service.chat("hello there", wait_seconds=0)).job_id
    assert (await quick_service.wait(task_id, wait_seconds=10)).status == "needs_input"
    sent_before = sandbox.count("/run_sse")
    if lands == "once its turn is adopted":
        sandbox.turn_seconds = 5.0  # still running when the cancel lands, however slowly this machine runs it
    step = {"once the answer is claimed": "claim_answer", "once its turn is adopted": "adopt"}.get(lands)
    answered = False
    async with anyio.create_task_group() as group:
        if step is None:
            await quick_service.cancel_task(task_id)
        else:
            real, cancelling = getattr(quick_service.jobs, step), []

            async def then_cancel(*args, **kwargs):
                done = await real(*args, **kwargs)
                if not cancelling:  # the cancel runs as its own request would, while this step's caller waits
                    cancelling.append(anyio.Event())
                    group.start_soon(cancel_then_set, cancelling[0])
                    await cancelling[0].wait()
                return done

            async def cancel_then_set(cancelled: anyio.Event) -> None:
                try:
                    await quick_service.cancel_task(task_id)
                finally:
                    cancelled.set()

            monkeypatch.setattr(quick_service.jobs, step, then_cancel)
        try:
            await quick_service.answer_task(task_id, {task_id: lambda asked: "a calm beach at dawn"})
            answered = True
        except InvalidInput as refused:
            assert refused.message == "This task was cancelled; nothing was sent."
    view = await quick_service.task(task_id)
    assert view.cancelled is not None
    if lands == "once its turn is adopted":
        assert answered and view.job_id != task_id
        with pytest.raises(JobCancelled):  # the answer's turn is the one the cancel stopped
            await quick_service.wait(view.job_id, wait_seconds=10)
        assert "may still be charged" in view.cancelled
    else:
        assert not answered and view.job_id == task_id and "left unanswered" in view.cancelled
        assert sandbox.count("/run_sse") == sent_before


async def test_an_export_and_a_chat_joining_one_render_each_keep_their_result_shape(sandbox, quick_service) -> None:
    from nemovideo_mcp.results import ChatResult, ExportResult

    sandbox.late_write_seconds = None
    sandbox.real_renders = False
    sandbox.render_seconds = 1.0
    assert (await quick_service.chat(GENERATE, wait_seconds=30)).status == "done"
    exporting = await quick_service.export(wait_seconds=0)
    said = await quick_service.chat("export the video", wait_seconds=0)
    by_export = await quick_service.new_task(exporting.job_id, "export")
    by_chat = await quick_service.new_task(said.job_id, "chat")
    assert by_export.task_id != by_chat.task_id
    await quick_service.wait(exporting.job_id, wait_seconds=30)
    await quick_service.wait(said.job_id, wait_seconds=30)
    assert len(sandbox.render_ids()) == 1  # one render, which the second follows
    exported = (await quick_service.task(by_export.task_id)).outcome
    chatted = (await quick_service.task(by_chat.task_id)).outcome
    assert isinstance(exported, ExportResult) and exported.status == "done" and exported.path
    assert isinstance(chatted, ChatResult) and chatted.action == "export" and chatted.status == "done"


def test_a_spending_question_answered_in_the_wrong_field_is_a_no() -> None:
    from nemovideo_mcp.consent import meaning_of
    from nemovideo_mcp.results import ChatResult

    spending = ChatResult(reply="Send it?", action="chat", status="needs_input", cost_estimate=100)
    agents = ChatResult(reply="What would you like?", action="chat", status="needs_input")
    for content in ({"answer": "no"}, {"answer": "yes"}, {"send": "true"}, {}):
        assert meaning_of(content)(spending) is None
    assert meaning_of({"send": True})(spending) == "yes"
    assert meaning_of(None)(spending) is None  # declined
    assert meaning_of({"answer": " a beach "})(agents) == " a beach "  # as written
    assert meaning_of({"send": True})(agents) is None


async def test_a_malformed_answer_is_invalid_params_and_leaves_the_question_open(sandbox, env) -> None:
    from fastmcp_tasks.client_models import UpdateTaskRequest, UpdateTaskRequestParams
    from mcp.shared.exceptions import MCPError
    from mcp_types import INVALID_PARAMS, Result

    async with stdio_client(env) as client:
        task = await call_tool_task(client, "chat", {"message": "hello there"})
        with anyio.fail_after(10):
            while (await get_task(client, task.task_id)).status != "input_required":
                await anyio.sleep(0.05)  # polled as a client polls: the server process has no event to await
        for malformed in ({"action": "maybe"}, "yes", {"action": "accept", "content": "a beach"}):
            with pytest.raises(MCPError) as refused:
                await client.session.send_request(UpdateTaskRequest(params=UpdateTaskRequestParams(
                    task_id=task.task_id, input_responses={"answer": malformed})), Result)
            assert refused.value.error.code == INVALID_PARAMS
        assert (await get_task(client, task.task_id)).status == "input_required"
        with pytest.raises(MCPError) as refused:  # an id no task has, nor any store could hold
            await get_task(client, "turn_\x00abc")
        assert refused.value.error.code == INVALID_PARAMS
    assert sandbox.count("/run_sse") == 1


async def test_an_answer_while_another_turn_runs_is_refused_and_the_question_stays_open(sandbox,
                                                                                      quick_service) -> None:
    from nemovideo_mcp.errors import InvalidInput

    sandbox.late_write_seconds = None
    task_id = (await quick_service.chat("hello there", wait_seconds=0)).job_id
    assert (await quick_service.wait(task_id, wait_seconds=10)).status == "needs_input"
    sandbox.turn_seconds = 2.0
    other = (await quick_service.chat('add the title "Meanwhile"', wait_seconds=0)).job_id
    with pytest.raises(InvalidInput, match="question is still open"):
        await quick_service.answer_task(task_id, {task_id: lambda asked: GENERATE})
    await quick_service.wait(other, wait_seconds=10)
    await quick_service.answer_task(task_id, {task_id: lambda asked: GENERATE})  # answering again works


async def test_a_generations_task_works_on_until_its_music_and_titles_land(sandbox, quick_service) -> None:
    from nemovideo_mcp.service import SECOND_STAGE_STEP
    from nemovideo_mcp.tables import JOBS

    sandbox.late_write_seconds = 1.0
    task_id = (await quick_service.chat(GENERATE, wait_seconds=0)).job_id
    steps: list[tuple[str, str]] = []
    with anyio.fail_after(30):
        while (view := await quick_service.task(task_id)).outcome.status == "working":
            steps.append((view.outcome.reply, view.watching or view.job_id))
            await quick_service.wait(view.watching or view.job_id, wait_seconds=1)
    adding = [job_id for step, job_id in steps if step == SECOND_STAGE_STEP]
    assert adding and all(job_id.startswith("follow_up_") for job_id in adding)  # the watch is what a cancel stops
    assert view.outcome.generated and view.outcome.follow_up_job_id is None
    turn = await quick_service.wait(task_id, wait_seconds=0)
    assert len(view.outcome.changes) > len(turn.changes)  # the second stage's changes are the task's too
    # Kept as long as the second stage's result: housekeeping a day after the turn's end, not the watch's, leaves it
    watch_ended = (await quick_service.store.get(JOBS, adding[-1]))["finished_at"]
    await quick_service.store.store.prune_jobs(watch_ended)
    assert (await quick_service.task(task_id)).outcome.changes == view.outcome.changes


async def test_a_generations_task_cancelled_while_its_music_lands_stops_the_watch(sandbox, quick_service) -> None:
    from nemovideo_mcp.service import SECOND_STAGE_STEP

    sandbox.late_write_seconds = 30.0
    task_id = (await quick_service.chat(GENERATE, wait_seconds=0)).job_id
    with anyio.fail_after(30):
        while (view := await quick_service.task(task_id)).outcome.reply != SECOND_STAGE_STEP:
            await quick_service.wait(view.job_id, wait_seconds=1)
    from nemovideo_mcp.jobs import JobCancelled

    watch = view.watching
    assert watch is not None and view.job_id == task_id
    with anyio.fail_after(10):  # not looping on a chain that never names the watch
        await quick_service.cancel_task(task_id)
    assert (await quick_service.task(task_id)).cancelled == "Stopped watching the project for late changes."
    with pytest.raises(JobCancelled):
        await quick_service.wait(watch, wait_seconds=10)


async def test_a_cancel_that_lands_as_the_turn_finishes_leaves_its_result(sandbox, quick_service, monkeypatch) -> None:
    from nemovideo_mcp.errors import InvalidInput

    sandbox.late_write_seconds = None
    sandbox.turn_seconds = 0.5
    task_id = (await quick_service.chat('add the title "Paid for"', wait_seconds=0)).job_id
    end_task = quick_service.jobs.end_task

    async def once_the_turn_ended(task: str, following: str) -> bool:
        await quick_service.jobs.local(following).finished.wait()
        return await end_task(task, following)

    monkeypatch.setattr(quick_service.jobs, "end_task", once_the_turn_ended)
    with pytest.raises(InvalidInput, match="already ended"):
        await quick_service.cancel_task(task_id)
    view = await quick_service.task(task_id)
    assert view.cancelled is None and view.outcome.status == "done"  # the paid turn's result stands


async def test_two_cancels_of_one_task_stop_its_render_once(sandbox, quick_service) -> None:
    from nemovideo_mcp.errors import InvalidInput

    sandbox.late_write_seconds = None
    sandbox.real_renders = False
    assert (await quick_service.chat(GENERATE, wait_seconds=30)).status == "done"
    sandbox.render_seconds = 30
    task_id = (await quick_service.export(wait_seconds=0)).job_id
    with anyio.fail_after(10):
        while not sandbox.render_ids():
            await anyio.sleep(0.05)  # the render starts in the job; the sandbox has no event to await
    refused: list[str] = []

    async def cancel() -> None:
        try:
            await quick_service.cancel_task(task_id)
        except InvalidInput as error:
            refused.append(error.message)

    async with anyio.create_task_group() as group:
        group.start_soon(cancel)
        group.start_soon(cancel)
    [render_id] = sandbox.render_ids()
    assert len(refused) == 1 and refused[0] in ("That task had already ended; nothing was cancelled.",
                                                "That task is being cancelled already; nothing more was done.")
    assert (await quick_service.task(task_id)).cancelled == "The render was cancelled at NemoVideo."
    assert sandbox.count(f"/api/render/proxy/lambda/{render_id}/cancel", "POST") == 1


async def test_a_cancelled_upload_says_what_became_of_the_files(sandbox, quick_service, tmp_path: Path) -> None:
    from nemovideo_mcp.service import LONG_UPLOAD_BYTES

    large = long_take(tmp_path, LONG_UPLOAD_BYTES * 4)
    task_id = (await quick_service.upload_in_background([str(large)])).job_id
    await quick_service.cancel_task(task_id)
    said = (await quick_service.task(task_id)).cancelled
    assert said.startswith("Stopped the upload.") and "charged" not in said


async def test_a_stored_task_result_is_redacted_for_a_process_that_never_held_the_token(sandbox, quick_settings,
                                                                                          identity, out) -> None:
    """Another replica, or the server restarted: it reads the result as stored, not as the first process showed it."""
    from nemovideo_mcp.logs import forget_secret
    from nemovideo_mcp.service import VideoService

    sandbox.late_write_seconds = None
    settings = quick_settings.model_copy(update={"output_dir": out})
    async with VideoService(settings, identity) as first:
        token = await first.client.auth.token()
        task_id = (await first.chat(f'add the title "{token}"', wait_seconds=0)).job_id  # the agent will quote it
        assert (await first.wait(task_id, wait_seconds=20)).status == "done"
    forget_secret(token)  # as a process that has not loaded it
    async with VideoService(settings, identity) as second:
        stored = await second.jobs.record(task_id)
    assert token not in str(stored)


async def test_an_export_started_as_a_task_leaves_late_changes_for_a_result_someone_reads(sandbox,
                                                                                           quick_service) -> None:
    from nemovideo_mcp.service import LATE_WRITE_INTRO

    sandbox.late_write_seconds = None
    sandbox.real_renders = False
    assert (await quick_service.chat(GENERATE, wait_seconds=30)).status == "done"
    session = (await quick_service.sessions.current()).session_id
    quick_service._late_reports[session] = ["Added music “Lo-fi”"]  # as a watch leaves what landed, not yet shown
    started = await quick_service.export(wait_seconds=0)  # what a task-declaring client's call does
    assert started.status == "working" and not started.notice
    state = await quick_service.state()
    assert LATE_WRITE_INTRO in (state.notice or "") and "Lo-fi" in state.notice


async def test_a_task_is_kept_a_day_from_its_last_change_not_from_its_first_jobs_end(sandbox, quick_service) -> None:
    from nemovideo_mcp.tables import JOBS

    sandbox.late_write_seconds = None
    task_id = (await quick_service.chat("hello there", wait_seconds=0)).job_id
    assert (await quick_service.wait(task_id, wait_seconds=10)).status == "needs_input"
    asked_at = (await quick_service.store.get(JOBS, task_id))["finished_at"]
    sandbox.turn_seconds = 2.0
    await quick_service.answer_task(task_id, {task_id: lambda asked: 'add the title "Late answer"'})
    # Housekeeping a day after the question: the task, whose answer's turn runs now, is not what it removes
    await quick_service.store.store.prune_jobs(asked_at + 1e-6)
    view = await quick_service.task(task_id)
    assert view.job_id != task_id and view.outcome.status == "working"
    # and a day from the end of its last job, which holds its result
    assert (await quick_service.wait(view.job_id, wait_seconds=10)).status == "done"
    answered_at = (await quick_service.store.get(JOBS, view.job_id))["finished_at"]
    assert (await quick_service.store.get(JOBS, task_id))["finished_at"] >= answered_at


async def test_upload_and_a_request_in_one_message_is_one_task_from_the_upload_to_the_video(sandbox, env,
                                                                                            tmp_path: Path) -> None:

    sandbox.late_write_seconds = None
    track = long_take(tmp_path)
    async with stdio_client(env) as client:
        task = await call_tool_task(client, "chat", {"message": f"upload {track} and {GENERATE}"})
        assert task.task_id.startswith("upload_")  # answered before the upload, which can take minutes
        result = await task.result()
    assert result.structured_content["status"] == "done" and result.structured_content["generated"]
    assert sandbox.count("/api/upload") == 1 and sandbox.count("/run_sse") == 1
    [messages] = [session.messages for session in sandbox.sessions.values() if session.messages]
    assert messages == [f"upload {track} and {GENERATE}\n[uploaded: long-take.mp3]"]  # the words as written


async def test_without_tasks_the_same_message_is_followed_with_wait_from_the_upload_to_the_turn(
        sandbox, quick_service, tmp_path: Path) -> None:

    sandbox.late_write_seconds = None
    track = long_take(tmp_path)
    started = await quick_service.chat(f"upload {track} and {GENERATE}", wait_seconds=0)
    uploaded = await quick_service.wait(started.job_id, wait_seconds=30)
    assert uploaded.status == "working" and uploaded.job_id.startswith("turn_")  # the request goes on as this turn
    assert "long-take.mp3" in uploaded.reply
    made = await quick_service.wait(uploaded.job_id, wait_seconds=30)
    assert made.status == "done" and made.generated


@pytest.mark.parametrize("lands", ["before the turn is under way", "once the turn is under way"])
async def test_cancelling_an_upload_that_goes_on_to_its_request_never_leaves_the_request_unsaid(
        sandbox, quick_service, tmp_path: Path, monkeypatch, lands: str) -> None:
    # Without tasks, `cancel` of the upload's handle lands as its request starts (third review's R3: the user was
    # told the upload stopped while the paid turn went on, its id returned to no one).
    sandbox.late_write_seconds, sandbox.turn_seconds = None, 0.5
    real_adopt = quick_service.jobs.adopt
    said, turns = [], set()

    async def adopt(task_id: str, job_id: str, *, replacing: str) -> bool:
        turns.add(job_id)
        if lands == "before the turn is under way" and not said:
            said.append((await quick_service.cancel(task_id)).reply)
        adopted = await real_adopt(task_id, job_id, replacing=replacing)
        if lands == "once the turn is under way" and not said:
            said.append((await quick_service.cancel(task_id)).reply)
        return adopted

    monkeypatch.setattr(quick_service.jobs, "adopt", adopt)
    started = await quick_service.chat(f'upload {long_take(tmp_path)} and add the title "Track"', wait_seconds=0)
    with pytest.raises(JobCancelled) if lands == "before the turn is under way" else contextlib.nullcontext():
        await quick_service.wait(started.job_id, wait_seconds=30)
    [turn] = turns
    with pytest.raises(JobCancelled):
        await quick_service.wait(turn, wait_seconds=30)
    if lands == "before the turn is under way":
        assert said[0].startswith("Stopped the upload") and sandbox.count("/run_sse") == 0
    else:
        assert said[0].startswith("Stopped following this request") and "charged" in said[0]


@pytest.mark.parametrize("goes_on_to", ["its second stage", "a question"])
async def test_a_cancel_that_lands_as_the_turn_finishes_stops_what_the_task_goes_on_to(
        sandbox, quick_service, monkeypatch, goes_on_to: str) -> None:
    sandbox.late_write_seconds = 30.0 if goes_on_to == "its second stage" else None
    sandbox.turn_seconds = 0.5
    message = GENERATE if goes_on_to == "its second stage" else "hello there"
    task_id = (await quick_service.chat(message, wait_seconds=0)).job_id
    end_task = quick_service.jobs.end_task

    async def once_the_turn_ended(task: str, following: str) -> bool:
        job = quick_service.jobs.local(following)
        if job is not None:
            await job.finished.wait()
        return await end_task(task, following)

    monkeypatch.setattr(quick_service.jobs, "end_task", once_the_turn_ended)
    await quick_service.cancel_task(task_id)  # accepted: the task had not ended
    said = (await quick_service.task(task_id)).cancelled
    assert said == ("Stopped watching the project for late changes." if goes_on_to == "its second stage"
                    else "The question was left unanswered; nothing more was sent to NemoVideo.")


async def test_a_cancel_under_way_is_no_end_a_poller_could_stop_at(sandbox, quick_service, monkeypatch) -> None:
    """Between a cancel's mark and its finding that the work had finished, tasks/get shows the work, not 'cancelled'."""
    from nemovideo_mcp.errors import InvalidInput

    sandbox.late_write_seconds = None
    sandbox.turn_seconds = 0.5
    task_id = (await quick_service.chat('add the title "Paid"', wait_seconds=0)).job_id
    end_task, reopen_task = quick_service.jobs.end_task, quick_service.jobs.reopen_task
    seen: list = []

    async def once_the_turn_ended(task: str, following: str) -> bool:
        await quick_service.jobs.local(following).finished.wait()
        return await end_task(task, following)

    async def polled_then_reopened(task: str) -> None:
        seen.append(await quick_service.task(task_id))  # a tasks/get in the window
        await reopen_task(task)

    monkeypatch.setattr(quick_service.jobs, "end_task", once_the_turn_ended)
    monkeypatch.setattr(quick_service.jobs, "reopen_task", polled_then_reopened)
    with pytest.raises(InvalidInput, match="already ended"):
        await quick_service.cancel_task(task_id)
    [during] = seen
    assert during.cancelled is None and during.outcome.status == "done"
    assert (await quick_service.task(task_id)).outcome.status == "done"
