"""MCP Tasks in a hosted deployment (issues 16 and 18): a task is its user's, followed from any replica over one
PostgreSQL database; another user can neither see nor cancel it, whatever id they send."""

from __future__ import annotations

import anyio
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from fastmcp_tasks.client import call_tool_task
from mcp.shared.exceptions import MCPError

from tests.postgres_cluster import postgres_server, postgres_url  # noqa: F401 (fixtures)
from tests.test_hosted_http import GENERATE, PUBLIC_URL, hosted_env, issuers, replicas  # noqa: F401 (fixture)
from tests.test_tasks import cancel_task, get_task

pytestmark = pytest.mark.anyio


def as_user(url: str, token: str) -> Client:
    return Client(StreamableHttpTransport(f"{url}/mcp", headers={"Authorization": f"Bearer {token}"}))


async def test_a_users_task_is_followed_from_any_replica_and_no_one_elses(
        sandbox, env, issuers, postgres_url, tmp_path) -> None:  # noqa: F811
    alice = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")
    bob = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="bob")
    sandbox.turn_seconds = 1.0
    with replicas({**hosted_env(env, issuers), "NEMO_DATABASE_URL": postgres_url}, tmp_path, 2) as (first, second):
        async with as_user(first, alice) as client:
            task_id = (await call_tool_task(client, "chat", {"message": GENERATE})).task_id
        async with as_user(second, bob) as client:
            with pytest.raises(MCPError, match="no task with that id"):
                await get_task(client, task_id)
            with pytest.raises(MCPError, match="no task with that id"):
                await cancel_task(client, task_id)
        async with as_user(second, alice) as client:
            with anyio.fail_after(30):
                while (task := await get_task(client, task_id)).status == "working":
                    await anyio.sleep(task.poll_interval_ms / 1000)
    assert task.status == "completed" and task.result["structuredContent"]["generated"]
    assert sandbox.count("/run_sse") == 1
