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
