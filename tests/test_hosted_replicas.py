"""Replicas of a hosted deployment over one PostgreSQL database: a replica killed mid-work is taken over by
another, as the local mode does across processes, without sending a message or starting a render twice."""

from __future__ import annotations

import pytest

from tests.test_hosted_http import GENERATE, PUBLIC_URL, call, hosted_env, issuers, replicas  # noqa: F401 (fixture)
from tests.postgres_cluster import postgres_server, postgres_url  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio


async def age_heartbeat(database_url: str, user_id: str, job_id: str) -> None:
    """A minute passes for the job of a replica that was killed: its last heartbeat is that old now."""
    from nemovideo_mcp.postgres import PostgresDatabase
    from nemovideo_mcp.store import Store
    from nemovideo_mcp.tables import JOBS

    store = Store(PostgresDatabase(database_url))
    try:
        aged = await store.for_user(user_id).update(
            JOBS, job_id, lambda record: record and {**record, "heartbeat_at": record["heartbeat_at"] - 60})
        assert aged is not None
    finally:
        await store.aclose()


async def test_work_of_a_killed_replica_is_taken_over_by_another_without_sending_it_again(
        sandbox, env, issuers, postgres_url, tmp_path) -> None:
    alice = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")
    user_id = f"{issuers.oidc}|alice"
    with replicas({**hosted_env(env, issuers), "NEMO_DATABASE_URL": postgres_url}, tmp_path, 2) as (first, second):
        sandbox.turn_seconds = 2.0
        turn = (await call(first, alice, "chat", {"message": GENERATE, "wait_seconds": 0})).structured_content
        first.process.kill()  # SIGKILL: no shutdown, the job's record says "running" with a fresh heartbeat
        first.process.wait()
        await age_heartbeat(postgres_url, user_id, turn["job_id"])
        done = await call(second, alice, "wait", {"job_id": turn["job_id"], "wait_seconds": 30})
        assert done.structured_content["status"] == "done", done.content[0].text
        assert sandbox.count("/run_sse") == 1  # the message was never sent again

    with replicas({**hosted_env(env, issuers), "NEMO_DATABASE_URL": postgres_url}, tmp_path, 2) as (first, second):
        sandbox.render_seconds = 3.0
        sandbox.real_renders = False
        export = (await call(first, alice, "export", {"wait_seconds": 0.5})).structured_content
        assert export["status"] == "working"
        first.process.kill()
        first.process.wait()
        await age_heartbeat(postgres_url, user_id, export["job_id"])
        landed = await call(second, alice, "wait", {"job_id": export["job_id"], "wait_seconds": 60})
        assert landed.structured_content["status"] == "done", landed.content[0].text
        assert landed.structured_content["download_url"].startswith(f"{PUBLIC_URL}/download/")
    assert len(sandbox.render_ids()) == 1  # re-attached to the render, never started again


async def test_a_replica_whose_database_is_down_is_alive_not_ready_and_says_so_without_the_password(
        sandbox, env, issuers, tmp_path) -> None:
    import httpx2

    from tests.test_http_transport import free_port

    password = "secret-database-password"
    down = f"postgresql://nemo:{password}@127.0.0.1:{free_port()}/nemo"  # nothing listens there
    alice = issuers.token(issuers.oidc, f"{PUBLIC_URL}/mcp", user="alice")
    with replicas({**hosted_env(env, issuers), "NEMO_DATABASE_URL": down}, tmp_path, 1) as (url,):
        async with httpx2.AsyncClient(timeout=30) as http:
            assert (await http.get(f"{url}/healthz")).status_code == 200
            ready = await http.get(f"{url}/readyz")
        assert ready.status_code == 503 and ready.json() == {"status": "unavailable"}
        answered = await call(url, alice, "credits")
        assert answered.is_error and "cannot be used" in answered.content[0].text
        assert password not in answered.content[0].text
    assert password not in (tmp_path / "replica0.log").read_text()
