"""MCP Tasks (issue 18) through the TypeScript `@modelcontextprotocol/ext-tasks` client on `@modelcontextprotocol/client`
(tests/ext_tasks/client.mjs), over 2026-07-28 Streamable HTTP and stdio against the sandbox."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from tests.conftest import REPO, subprocess_env
from tests.npm_cache import npm_installed
from tests.test_http_transport import http_server
from tests.test_tasks import GENERATE

pytestmark = pytest.mark.anyio

EXT_TASKS = ("@modelcontextprotocol/ext-tasks@0.2.2", "@modelcontextprotocol/client@2.4.0")


def ext_tasks(target: str, scenario: str, argument: str = "", env: dict[str, str] | None = None) -> dict:
    """tests/ext_tasks/client.mjs run where its packages are installed (Node resolves imports from the script's
    folder), with what it saw. `target`: an MCP URL, or the JSON command that starts the server over stdio (with
    `env`, from the skill folder, as a host starts it)."""
    root = npm_installed("ext-tasks", *EXT_TASKS, why="the TypeScript Tasks client")
    script = root / "client.mjs"
    shutil.copyfile(REPO / "tests" / "ext_tasks" / "client.mjs", script)
    done = subprocess.run([shutil.which("node") or "node", str(script), target, scenario, argument],
                          capture_output=True, text=True, timeout=120, cwd=REPO,
                          env=subprocess_env(env) if env is not None else None)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_the_typescript_tasks_client_follows_a_generation(sandbox, env, tmp_path: Path) -> None:
    sandbox.turn_seconds = 1.0
    with http_server(env, tmp_path / "server.log") as port:
        seen = await anyio.to_thread.run_sync(ext_tasks, f"http://127.0.0.1:{port}/mcp", "generate")
    assert seen["kind"] == "task" and seen["taskId"].startswith("turn_"), seen
    assert seen["status"] == "completed" and seen["result"]["generated"], seen
    assert sandbox.count("/run_sse") == 1


async def test_the_typescript_tasks_client_answers_the_agents_question_and_cancels_a_render(
        sandbox, env, tmp_path: Path) -> None:
    sandbox.late_write_seconds = None
    sandbox.real_renders = False  # the placeholder clip: what is tested is how the file travels, not its frames
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


async def test_the_typescript_tasks_client_follows_a_generation_and_answers_a_question_over_stdio(sandbox, env) -> None:
    sandbox.turn_seconds = 1.0
    server = json.dumps([sys.executable, "-m", "nemovideo_mcp"])
    generated = await anyio.to_thread.run_sync(lambda: ext_tasks(server, "generate", env=env))
    assert generated["kind"] == "task" and generated["taskId"].startswith("turn_"), generated
    assert generated["status"] == "completed" and generated["result"]["generated"], generated
    answered = await anyio.to_thread.run_sync(lambda: ext_tasks(server, "question", GENERATE, env=env))
    assert answered["asked"][0].endswith("What would you like?"), answered
    assert answered["status"] == "completed" and answered["result"]["generated"], answered
    assert sandbox.count("/run_sse") == 3  # the generation, the greeting, the answer
