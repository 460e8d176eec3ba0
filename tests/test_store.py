"""The store's tables: every record belongs to a user and no call of one user reaches another's, and a store
of an earlier version (one table of JSON documents) is moved into the tables at first use."""

from __future__ import annotations

import json
import sqlite3
import time

import anyio
import pytest

from nemovideo_mcp.jobs import UnknownJob
from nemovideo_mcp.service import VideoService
from nemovideo_mcp.store import STORE_FILE, Store, open_store
from nemovideo_mcp.tables import JOBS, PROJECTS, RENDERS
from nemovideo_mcp.users import UserContext
from tests.postgres_cluster import postgres_server, postgres_url  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

GENERATE = "create a video of a city at night"


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request, tmp_path):
    if request.param == "sqlite":
        yield open_store(tmp_path / "config", tmp_path / "state")
        return
    from nemovideo_mcp.postgres import PostgresDatabase

    opened = Store(PostgresDatabase(request.getfixturevalue("postgres_url")))
    yield opened
    await opened.aclose()


async def test_no_user_reads_changes_or_finds_another_users_records(store) -> None:
    alice, bob = store.for_user("https://login.example|alice"), store.for_user("https://login.example|bob")
    now = time.time()
    job = {"id": "turn_1", "kind": "turn", "status": "running", "heartbeat_at": now, "facts": {"session_id": "s1"}}
    await alice.put(JOBS, "turn_1", job)
    await alice.put(PROJECTS, "s1", {"session_id": "s1", "api_url": "https://api", "last_used_at": now})
    await alice.put(RENDERS, "render_1", {"render_id": "render_1", "api_url": "https://api", "session_id": "s1",
                                          "draft_hash": "h", "status": "completed", "started_at": now})

    assert await bob.get(JOBS, "turn_1") is None
    assert await bob.live_jobs(("turn",), now - 60) == []
    assert await bob.live_jobs(("turn",), now - 60, session_id="s1") == []
    assert await bob.projects("https://api") == []
    assert await bob.renders("https://api", "s1", "h") == []
    # The same id sent by another user is that user's own (absent) record: Alice's stays as it was.
    assert await bob.update(JOBS, "turn_1", lambda record: record and {**record, "cancel_requested": True}) is None
    await bob.delete(JOBS, "turn_1")
    assert await alice.get(JOBS, "turn_1") == job
    assert [record["id"] for record in await alice.live_jobs(("turn",), now - 60, session_id="s1")] == ["turn_1"]
    assert len(await alice.projects("https://api")) == 1
    assert len(await alice.renders("https://api", "s1", "h")) == 1


async def test_a_user_cannot_wait_on_or_cancel_another_users_job(sandbox, quick_settings, identity) -> None:
    store = open_store(quick_settings.config_dir, quick_settings.state_dir)
    async with (VideoService(quick_settings, identity, user=UserContext("issuer|alice"), store=store) as alice,
                VideoService(quick_settings, identity, user=UserContext("issuer|bob"), store=store) as bob):
        sandbox.turn_seconds = 0.5
        working = await alice.chat(GENERATE, wait_seconds=0)
        assert working.status == "working"
        with pytest.raises(UnknownJob):
            await bob.wait(working.job_id, wait_seconds=0)
        with pytest.raises(UnknownJob):
            await bob.cancel(working.job_id)
        assert (await bob.projects("list")).projects == []
        assert (await bob.state()).empty
        done = await alice.wait(working.job_id, wait_seconds=10)
        assert done.status == "done" and "city" in done.timeline


def _version_1_store(path, scope: str, api_url: str, session: dict, token: dict, job: dict) -> None:
    """A store as versions before the tables wrote it: one table of JSON documents by collection."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE documents (collection TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
                   "updated_at REAL NOT NULL, PRIMARY KEY (collection, key))")
        for collection, key, value in (("project", session["session_id"], session),
                                       ("current_project", scope, {"session_id": session["session_id"]}),
                                       ("anonymous_token", api_url, token),
                                       ("job", job["id"], job)):
            db.execute("INSERT INTO documents VALUES (?, ?, ?, ?)", (collection, key, json.dumps(value), time.time()))


async def test_an_earlier_versions_store_is_moved_into_the_tables_and_used_as_it_was(
        sandbox, quick_settings, identity) -> None:
    async with VideoService(quick_settings, identity) as first:
        await first.chat(GENERATE)
        session = (await first.sessions.current()).model_dump()
        summary = (await first.state()).summary
        token = await first.client.auth.cached()
        finished = await first.jobs.record(next(iter(first.jobs._jobs)))  # the turn, done
    path = quick_settings.state_dir / STORE_FILE
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    _version_1_store(path, f"{identity.name}|{quick_settings.api_url}", quick_settings.api_url, session, token, finished)
    mints = sandbox.count("/api/auth/anonymous-token", "POST")

    async with VideoService(quick_settings, identity) as upgraded:
        state = await upgraded.state()
        assert state.summary == summary  # the same project, current as before
        assert (await upgraded.wait(finished["id"], wait_seconds=0)).status == "done"
        listed = await upgraded.projects("list")
        assert [project.current for project in listed.projects] == [True]
    assert sandbox.count("/api/auth/anonymous-token", "POST") == mints  # the token moved, none minted
    with sqlite3.connect(path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "documents" not in tables and {"jobs", "projects", "renders", "tokens"} <= tables


async def test_two_processes_opening_an_earlier_store_at_once_move_it_once(tmp_path) -> None:
    now = time.time()
    path = tmp_path / "state" / STORE_FILE
    _version_1_store(path, "nemovideo|https://api", "https://api", {"session_id": "s1", "api_url": "https://api", "last_used_at": now},
                     {"token": "t", "expires_at": now + 3600}, {"id": "turn_1", "kind": "turn", "status": "done",
                                                                "heartbeat_at": now, "finished_at": now})
    stores = [open_store(tmp_path / "config", tmp_path / "state") for _ in range(4)]
    found: list[dict | None] = []
    async with anyio.create_task_group() as group:
        for store in stores:
            async def read(store=store) -> None:
                found.append(await store.for_user("local").get(PROJECTS, "s1"))
            group.start_soon(read)
    assert all(project and project["session_id"] == "s1" for project in found)


async def test_readiness_asks_the_database_every_time_not_only_the_first(tmp_path) -> None:
    """Found by review: /readyz answered "ready" forever after its first success, the database long gone."""
    from nemovideo_mcp.errors import StoreUnavailable

    store = open_store(tmp_path / "config", tmp_path / "state")
    await store.ping()
    for suffix in ("-wal", "-shm"):
        (tmp_path / "state" / (STORE_FILE + suffix)).unlink(missing_ok=True)
    (tmp_path / "state" / STORE_FILE).write_bytes(b"overwritten by something else" * 200)
    with pytest.raises(StoreUnavailable):
        await store.ping()
