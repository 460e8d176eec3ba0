"""The MCP tools through `mcp.Client`: in memory, and over stdio against `python -m nemovideo_mcp`."""

from __future__ import annotations

import json
import subprocess
import sys

import anyio
import pytest
from mcp import Client

from nemovideo_mcp import client as client_module
from nemovideo_mcp.service import VideoService
from nemovideo_mcp.tools import build_server
from nemovideo_mcp.store import open_store
from nemovideo_mcp.tables import TOKENS
from nemovideo_mcp.users import LOCAL_USER
from tests.conftest import REPO, subprocess_env

pytestmark = pytest.mark.anyio

SEED_SUMMARY = (
    'Timeline (3 tracks): 1. Video: city timelapse (0-10s) 2. BGM: Lo-fi (0-10s, 35%) 3. Title: "Urban Dreams" (0-3s)'
)


def cached_token(settings) -> str:
    return anyio.run(open_store(settings.config_dir, settings.state_dir).for_user(LOCAL_USER).get, TOKENS,
                     settings.api_url)["token"]


async def test_tools_are_annotated_with_output_schemas(settings, identity) -> None:
    async with Client(build_server(settings, identity)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"credits", "state", "chat", "wait"} <= set(tools)
    for name in ("credits", "state"):
        assert tools[name].annotations.read_only_hint and tools[name].annotations.open_world_hint
        assert "summary" in tools[name].output_schema["properties"]
    assert tools["cancel"].annotations.destructive_hint and "charged" in tools["cancel"].description
    for tool in tools.values():
        assert tool.description
        # `wait` returns whatever shape the job it continues has (chat or export); the drop zone's tool answers the
        # view, never the model.
        assert (tool.output_schema is None) == (tool.name in ("wait", "add_dropped_file"))


# What each tool can do, as a host reads it before deciding whether to ask the user first.
HINTS = {  # name: (read-only, destructive, idempotent)
    "credits": (True, False, True),
    "state": (True, False, True),
    "chat": (False, True, False),  # an edit can remove what is on the timeline, and turns spend credits
    "wait": (False, False, True),  # taking a job over downloads its file
    "upload": (False, False, False),
    "export": (False, False, True),  # an unchanged draft is rendered once; files are never overwritten
    "projects": (False, False, False),
    "cancel": (False, True, True),
    "add_dropped_file": (False, False, False),  # only the timeline view calls it
}


async def test_each_tools_hints_say_what_it_can_do(settings, identity) -> None:
    async with Client(build_server(settings, identity)) as client:
        tools = {tool.name: tool.annotations for tool in (await client.list_tools()).tools}
    assert {name: (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint)
            for name, hints in tools.items()} == HINTS
    assert all(hints.open_world_hint for hints in tools.values())


async def test_credits_and_state_in_memory(sandbox, settings, identity) -> None:
    server = build_server(settings, identity)
    async with Client(server) as client:
        credits = await client.call_tool("credits", {})
        empty = await client.call_tool("state", {})
    assert not credits.is_error
    assert credits.structured_content["available"] == 100
    assert credits.structured_content["summary"] == "You have 100 credits available."
    assert empty.structured_content["empty"] is True
    assert "nothing has been made yet" in empty.structured_content["summary"]


async def test_state_shows_the_seed_summary_and_tracks(sandbox, settings, identity, seed_draft) -> None:
    async with VideoService(settings, identity) as service:
        session = await service.sessions.ensure("make a video")
    sandbox.set_draft(session.session_id, seed_draft)
    async with Client(build_server(settings, identity)) as client:
        result = await client.call_tool("state", {})
    assert result.structured_content["summary"] == SEED_SUMMARY
    assert [t["kind"] for t in result.structured_content["tracks"]] == ["Video", "BGM", "Title"]
    assert result.content[0].text == SEED_SUMMARY  # the text block is for people, not JSON


async def test_backend_errors_reach_the_host_as_clean_tool_errors(sandbox, settings, identity, monkeypatch) -> None:
    # The retries' backoff keeps its shape on a 10× faster clock (1.25 s of sleeping otherwise).
    monkeypatch.setattr(client_module, "RETRY_BACKOFF_SECONDS",
                        tuple(delay / 10 for delay in client_module.RETRY_BACKOFF_SECONDS))
    async with Client(build_server(settings, identity)) as client:
        await client.call_tool("credits", {})
        sandbox.inject(502, "/api/credits", times=3)
        outage = await client.call_tool("credits", {})
        sandbox.inject(2001, "/api/credits")
        broke = await client.call_tool("credits", {})
    assert outage.is_error and outage.content[0].text.endswith("temporarily unavailable (HTTP 502). Try again in a minute.")
    assert broke.is_error and "out of free credits" in broke.content[0].text
    for result in (outage, broke):
        text = result.content[0].text
        assert "Traceback" not in text and '"code"' not in text and "<html" not in text


async def test_servers_over_stdio_share_a_home_and_a_host_can_start_one_process_per_call(sandbox, env,
                                                                                          stdio_params) -> None:
    """Three `python -m nemovideo_mcp` processes on one home; each start costs ~1 s of CPU (mostly the SDK's
    import), so these checks share them:

    - credits and state over stdio, attributed to the repository's skill;
    - two servers started at once mint one token between them;
    - the MCP Inspector CLI's way: `chat` in one server process, `wait` in the next one, started after the first
      has exited.
    """
    sandbox.turn_seconds = 0.8
    other_has_credits = anyio.Event()
    seen: dict = {}

    async def first() -> None:
        async with Client(stdio_params(env)) as client:
            seen["tools"] = {tool.name for tool in (await client.list_tools()).tools}
            seen["credits"] = await client.call_tool("credits", {})
            seen["state"] = await client.call_tool("state", {})
            seen["source"] = sandbox.requests[-1].headers["x-skill-source"]
            await other_has_credits.wait()
            seen["minted"] = sandbox.count("/api/auth/anonymous-token"), sandbox.count("/api/credits")
            seen["working"] = await client.call_tool("chat", {"message": 'add a title "Relay"', "wait_seconds": 0.1})

    async def other() -> None:
        async with Client(stdio_params(env)) as client:
            seen["other credits"] = await client.call_tool("credits", {})
            other_has_credits.set()

    async with anyio.create_task_group() as group:
        group.start_soon(first)
        group.start_soon(other)
    assert {"credits", "state", "chat", "wait"} <= seen["tools"]
    assert seen["credits"].structured_content["total"] == seen["other credits"].structured_content["total"] == 100
    assert seen["state"].structured_content["empty"] is True
    assert seen["source"] == "generator-from-music"
    assert seen["minted"] == (1, 2)  # one token for both; each asked for its credits

    working = seen["working"]
    assert working.structured_content["status"] == "working"
    async with Client(stdio_params(env)) as second:
        done = await second.call_tool("wait", {"job_id": working.structured_content["job_id"], "wait_seconds": 20})
    assert not done.is_error and done.structured_content["changes"] == ['✅ Added title "Relay" (0–3 s)']
    assert sandbox.count("/run_sse") == 1


def rpc(message_id: int, method: str, params: dict) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": message_id, "method": method, "params": params}) + "\n"


def test_stdout_is_json_rpc_only_and_no_output_holds_the_token(sandbox, env, settings, tmp_path) -> None:
    """A raw stdio session at DEBUG log level: every stdout line is JSON-RPC; the token is nowhere."""
    sandbox.inject(2001, "/api/credits")  # an error path too, so its message is checked as well
    messages = "".join(
        [
            rpc(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "test", "version": "0"}}),
            json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n",
            rpc(2, "tools/list", {}),
            rpc(3, "tools/call", {"name": "credits", "arguments": {}}),
            rpc(4, "tools/call", {"name": "credits", "arguments": {}}),
            rpc(5, "tools/call", {"name": "state", "arguments": {}}),
        ]
    )
    # stderr to a file: a full stderr pipe would stall the server while we read stdout.
    stderr_file = (tmp_path / "stderr.txt").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "nemovideo_mcp", "--log-level", "DEBUG"], cwd=REPO, env=subprocess_env(env),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr_file, text=True,
    )
    process.stdin.write(messages)
    process.stdin.flush()
    lines, replies = [], {}
    while len(replies) < 5:  # replies come in any order: the calls run concurrently
        line = process.stdout.readline()
        assert line, "the server closed stdout early"
        lines.append(line)
        message = json.loads(line)
        replies[message.get("id")] = message
    rest, _ = process.communicate(timeout=30)
    lines += rest.splitlines(keepends=True)
    stderr_file.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    for line in lines:
        assert json.loads(line)["jsonrpc"] == "2.0"
    credit_calls = sorted((replies[3]["result"], replies[4]["result"]), key=lambda result: result.get("isError", False))
    assert credit_calls[0]["structuredContent"]["total"] == 100
    assert credit_calls[1]["isError"] is True and "credits" in credit_calls[1]["content"][0]["text"]
    token = cached_token(settings)
    assert token not in "".join(lines)
    assert token not in stderr
    assert "DEBUG" in stderr  # the log really was verbose, and on stderr


async def test_a_token_echoed_by_the_backend_is_redacted_in_tool_output(sandbox, quick_settings, identity) -> None:
    # The echoing turn's stream is followed by recovery polling: its schedule on the test scale (2 s otherwise).
    settings = quick_settings
    from nemovideo_mcp.logs import REDACTED, register_secret

    secret = "nemo_sk_echoed_secret_token_0001"
    register_secret(secret)
    async with VideoService(settings, identity) as service:
        session = await service.sessions.ensure("make a video")
    sandbox.set_draft(session.session_id, {"t": [{"tt": 7, "sg": [{"st": 0, "d": 1000, "m": {"text": secret}}]}]})
    async with Client(build_server(settings, identity)) as client:
        result = await client.call_tool("state", {})
        # The agent repeats the token in its reply and puts it in the draft: changes, timeline, reply.
        echoed = await client.call_tool("chat", {"message": f"add a title '{secret}'"})
    for output in (result, echoed):
        assert not output.is_error
        everything = json.dumps([output.model_dump(mode="json", by_alias=True)])
        assert secret not in everything and REDACTED in json.dumps(output.structured_content)
        assert REDACTED in output.content[0].text


def test_an_error_detail_is_redacted_before_it_is_cut() -> None:
    from nemovideo_mcp.errors import BackendError
    from nemovideo_mcp.logs import register_secret

    secret = "nemo_sk_cut_in_two_secret_token_0002"
    register_secret(secret)
    message = str(BackendError(5000, "x" * 190 + secret))
    assert secret[:6] not in message and "[redacted]" in message
