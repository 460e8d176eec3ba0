"""`--transport http`: the same server over streamable HTTP, reached with `mcp.Client`."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from nemovideo_mcp.variants import TOOLS
from tests.conftest import REPO, subprocess_env

STARTUP_SECONDS = 20


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode} before listening:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)  # the port cannot be awaited; a short poll interval keeps startup latency honest
    pytest.fail(f"the server did not listen on port {port} within {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.fixture
def http_url(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "nemovideo_mcp", "--transport", "http", "--port", str(port)],
            cwd=REPO, env=subprocess_env(env), stdin=subprocess.DEVNULL, stdout=output, stderr=output,
        )
        try:
            wait_until_listening(process, port, log)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.anyio
async def test_tools_over_streamable_http(http_url: str, sandbox) -> None:
    async with Client(http_url) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        credits = await client.call_tool("credits", {})
    assert tools == {tool.name for tool in TOOLS}
    assert not credits.is_error and credits.structured_content["total"] == 100
    assert sandbox.count("/api/credits") == 1
    assert sandbox.requests[-1].headers["x-skill-source"] == "generator-from-music"
