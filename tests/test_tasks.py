"""MCP Tasks (issue 18) through independent clients: fastmcp's `Client` with `fastmcp[tasks]` over stdio and
Streamable HTTP, against the sandbox. A client that does not declare the extension is covered by every other
test file, which runs unchanged."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport
from fastmcp_tasks.client import call_tool_task

from tests.conftest import REPO, subprocess_env

pytestmark = pytest.mark.anyio

GENERATE = "create a video with visuals synced to this music track"


def stdio_client(env: dict[str, str], **kwargs) -> Client:
    import sys

    return Client(StdioTransport(command=sys.executable, args=["-m", "nemovideo_mcp"], env=subprocess_env(env),
                                 cwd=str(REPO)), **kwargs)


async def test_a_generation_is_one_task_followed_to_its_result_over_stdio(sandbox, env) -> None:
    sandbox.turn_seconds = 1.0
    async with stdio_client(env) as client:
        task = await call_tool_task(client, "chat", {"message": GENERATE})
        assert task.task_id.startswith("turn_")
        result = await task.result()
    assert result.structured_content["status"] == "done" and result.structured_content["generated"]
    assert sandbox.count("/run_sse") == 1


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


async def test_an_export_asked_for_in_words_ends_with_chats_result(sandbox, env) -> None:
    sandbox.late_write_seconds = None
    sandbox.real_renders = False  # the placeholder clip: what is tested is how the file travels, not its frames
    sandbox.render_seconds = 1.0
    async with stdio_client(env) as client:
        await client.call_tool("chat", {"message": GENERATE})
        task = await call_tool_task(client, "chat", {"message": "export the video"})
        result = await task.result()
    assert task.task_id.startswith("export_")
    assert result.structured_content["action"] == "export" and result.structured_content["status"] == "done"


async def test_a_large_upload_is_a_task_and_a_small_one_answers_at_once(sandbox, env, tmp_path: Path) -> None:
    from nemovideo_mcp.service import LONG_UPLOAD_BYTES

    large, small = tmp_path / "long-take.mp3", tmp_path / "jingle.mp3"
    with large.open("wb") as file:
        file.truncate(LONG_UPLOAD_BYTES + 1)
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
            await quick_service.answer_task(task_id, GENERATE)
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
        view = TaskView(task_id="turn_x", created_at=1.0, updated_at=2.0, job_id="turn_x")
        for status in ("working", "needs_input", "done"):
            outcome = ChatResult(reply=f"Your token is {token}", action="chat", status=status)
            assert token not in str(await extension._detailed(view.at(outcome=outcome)))  # noqa: SLF001
    finally:
        forget_secret(token)
