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


async def test_a_new_anonymous_accounts_first_generation_is_not_asked_about(sandbox, env) -> None:
    asked: list[str] = []
    async with stdio_client(env, elicitation_handler=answering(asked=asked)) as client:
        result = await client.call_tool("chat", {"message": GENERATE})
    assert not asked and result.structured_content["credits_before"] == 100


async def get_task(client: Client, task_id: str):
    from fastmcp_tasks.client_models import ClientGetTaskResult, GetTaskRequest, GetTaskRequestParams

    return await client.session.send_request(GetTaskRequest(params=GetTaskRequestParams(task_id=task_id)),
                                             ClientGetTaskResult)


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


# -- clients that follow no task --------------------------------------------------------------------


async def test_a_2025_client_gets_no_task_and_the_cost_question_as_text_it_can_agree_to(sandbox, env) -> None:
    sandbox.anonymous_credits = 30
    async with stdio_client(env, mode="legacy") as client:
        asked = await client.call_tool("chat", {"message": GENERATE})
        assert asked.structured_content["status"] == "needs_input" and "job_id" in asked.structured_content
        assert asked.structured_content["cost_estimate"] == 100 and "confirm_cost=true" in asked.content[0].text
        assert sandbox.count("/run_sse") == 0
        sent = await client.call_tool("chat", {"message": GENERATE, "confirm_cost": True})
    assert sent.structured_content["status"] == "done" and sandbox.count("/run_sse") == 1


async def test_a_2025_client_that_elicits_is_asked_in_the_call(sandbox, env) -> None:
    sandbox.anonymous_credits = 30
    asked: list[str] = []
    async with stdio_client(env, mode="legacy", elicitation_handler=answering("decline", asked=asked)) as client:
        declined = await client.call_tool("chat", {"message": GENERATE})
    assert "30 available" in asked[0] and "nothing was spent" in declined.structured_content["reply"]
    assert sandbox.count("/run_sse") == 0


async def test_a_2025_client_that_elicits_answers_the_agents_question_in_the_call(sandbox, env) -> None:
    asked: list[str] = []
    handler = answering({"answer": GENERATE}, asked=asked)
    async with stdio_client(env, mode="legacy", elicitation_handler=handler) as client:
        result = await client.call_tool("chat", {"message": "hello there"})
    assert asked[0].endswith("What would you like?") and result.structured_content["generated"]
    assert sandbox.count("/run_sse") == 2


async def test_out_of_credits_offers_the_register_link_as_a_url_elicitation(sandbox, env) -> None:
    sandbox.anonymous_credits = 5  # less than the sandbox's generation costs: NemoVideo answers 2001
    offered: list = []

    async def handler(message, response_type, params, context):
        offered.append(params)
        return {}

    async with stdio_client(env, mode="legacy", elicitation_handler=handler) as client:
        result = await client.call_tool("chat", {"message": GENERATE, "confirm_cost": True}, raise_on_error=False)
    assert result.is_error and "register" in result.content[0].text
    assert [params.mode for params in offered] == ["url"] and "/register" in offered[0].url


async def test_the_extension_is_advertised_as_the_spec_shows_it_and_server_json_says_so(settings, identity) -> None:
    import json

    from mcp import Client as SdkClient

    from nemovideo_mcp.tools import build_server

    async with SdkClient(build_server(settings, identity)) as client:
        assert client.server_capabilities.extensions["io.modelcontextprotocol/tasks"] == {}
    registry = json.loads((REPO / "server.json").read_text(encoding="utf-8"))
    provided = registry["_meta"]["io.modelcontextprotocol.registry/publisher-provided"]
    assert provided["extensions"] == {"io.modelcontextprotocol/tasks": {}}


# -- the TypeScript client -------------------------------------------------------------------------

EXT_TASKS = ("@modelcontextprotocol/ext-tasks@0.2.2", "@modelcontextprotocol/client@2.4.0")


def ext_tasks(url: str, scenario: str, argument: str = "") -> dict:
    """tests/ext_tasks/client.mjs run where its packages are installed (Node resolves imports from the script's
    folder), with what it saw."""
    import json
    import shutil
    import subprocess

    from tests.npm_cache import npm_installed

    root = npm_installed("ext-tasks", *EXT_TASKS, why="the TypeScript Tasks client")
    script = root / "client.mjs"
    shutil.copyfile(REPO / "tests" / "ext_tasks" / "client.mjs", script)
    done = subprocess.run([shutil.which("node") or "node", str(script), url, scenario, argument],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_the_typescript_tasks_client_follows_a_generation(sandbox, env, tmp_path: Path) -> None:
    from tests.test_http_transport import http_server

    sandbox.turn_seconds = 1.0
    with http_server(env, tmp_path / "server.log") as port:
        seen = await anyio.to_thread.run_sync(ext_tasks, f"http://127.0.0.1:{port}/mcp", "generate")
    assert seen["kind"] == "task" and seen["taskId"].startswith("turn_"), seen
    assert seen["status"] == "completed" and seen["result"]["generated"], seen
    assert sandbox.count("/run_sse") == 1


async def test_the_typescript_tasks_client_answers_the_agents_question_and_cancels_a_render(
        sandbox, env, tmp_path: Path) -> None:
    from tests.test_http_transport import http_server

    sandbox.late_write_seconds = None
    with http_server(env, tmp_path / "server.log") as port:
        url = f"http://127.0.0.1:{port}/mcp"
        answered = await anyio.to_thread.run_sync(ext_tasks, url, "question", GENERATE)
        assert answered["asked"][0].endswith("What would you like?"), answered
        assert answered["status"] == "completed" and answered["result"]["generated"], answered
        sandbox.render_seconds = 30
        cancelled = await anyio.to_thread.run_sync(ext_tasks, url, "cancel")
    assert cancelled["kind"] == "task" and cancelled["taskId"].startswith("export_"), cancelled
    assert cancelled["status"] == "cancelled", cancelled
    [render_id] = sandbox.render_ids()
    assert sandbox.count(f"/api/render/proxy/lambda/{render_id}/cancel", "POST") == 1
