"""One behaviour for both databases under the store: each case runs on SQLite and on PostgreSQL.

What only PostgreSQL does (replicas waking each other, separate processes migrating, an unreachable server)
is in test_postgres.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import anyio
import pytest

from nemovideo_mcp.database import Database, SqliteDatabase
from tests.postgres_cluster import postgres_server, postgres_url  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

Open = Callable[[], Database]
# Statements both dialects take, as the store writes them.
TABLE = ("CREATE TABLE documents (collection TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, "
         "updated_at DOUBLE PRECISION NOT NULL, size BIGINT, PRIMARY KEY (collection, key))")
UPSERT = ("INSERT INTO documents (collection, key, value, updated_at) VALUES (?, ?, ?, ?) "
          "ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")


@pytest.fixture(params=["sqlite", "postgresql"])
async def open_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Open]:
    """Opens databases on one shared storage, as separate processes (or replicas) would; all closed after."""
    if request.param == "sqlite":
        def make() -> Database:
            return SqliteDatabase(tmp_path / "store.db")
    else:
        from nemovideo_mcp.postgres import PostgresDatabase

        url = request.getfixturevalue("postgres_url")

        def make() -> Database:
            return PostgresDatabase(url)
    opened: list[Database] = []

    def open_one() -> Database:
        opened.append(make())
        return opened[-1]

    yield open_one
    for database in opened:
        await database.aclose()


@pytest.fixture
async def database(open_database: Open) -> Database:
    database = open_database()
    await database.migrate([[TABLE]])
    return database


async def test_statements_take_question_marks_and_return_rows(database: Database) -> None:
    value = json.dumps({"title": "Urban Dreams", "tags": ["city", "時間"]}, ensure_ascii=False)
    rows = await database.fetch(
        "INSERT INTO documents (collection, key, value, updated_at, size) VALUES (?, ?, ?, ?, ?) "
        "RETURNING key, size", ("projects", "p1", value, 1764752837.123456, 2**40))
    assert rows == [("p1", 2**40)]
    assert await database.execute(UPSERT, ("projects", "p2", "{}", 1.5)) == 1

    rows = await database.fetch("SELECT key, value, updated_at, size FROM documents WHERE collection = ? "
                                "ORDER BY key", ("projects",))
    assert rows == [("p1", value, 1764752837.123456, 2**40), ("p2", "{}", 1.5, None)]
    assert json.loads(rows[0][1])["tags"] == ["city", "時間"]
    assert await database.execute("UPDATE documents SET size = ? WHERE collection = ?", (7, "projects")) == 2
    assert await database.fetch("DELETE FROM documents WHERE key = ?", ("p2",)) == []
    assert await database.fetch("SELECT key FROM documents WHERE key = ?", ("p2",)) == []


async def test_an_upsert_replaces_the_row_of_its_key(database: Database) -> None:
    await database.execute(UPSERT, ("jobs", "j1", '{"status": "running"}', 1.0))
    await database.execute(UPSERT, ("jobs", "j1", '{"status": "done"}', 2.0))
    assert await database.fetch("SELECT value, updated_at FROM documents") == [('{"status": "done"}', 2.0)]


async def increment(database: Database, key: str) -> None:
    async with database.transaction(key) as transaction:
        rows = await transaction.fetch("SELECT value FROM documents WHERE collection = ? AND key = ?",
                                       ("counters", key))
        count = json.loads(rows[0][0])["count"] if rows else 0
        await anyio.lowlevel.checkpoint()  # another writer would get in here
        await transaction.execute(UPSERT, ("counters", key, json.dumps({"count": count + 1}), 1.0))


async def test_a_transaction_serialises_read_modify_writes_of_one_key(open_database: Open,
                                                                     database: Database) -> None:
    other = open_database()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            for number in range(20):
                # The row does not exist until the first of them writes it.
                tasks.start_soon(increment, (database, other)[number % 2], "c1")
    assert await database.fetch("SELECT value FROM documents WHERE key = ?", ("c1",)) == [('{"count": 20}',)]


async def test_a_transaction_that_raises_is_rolled_back(database: Database) -> None:
    with pytest.raises(RuntimeError):
        async with database.transaction("k") as transaction:
            await transaction.execute(UPSERT, ("projects", "k", "{}", 1.0))
            raise RuntimeError("the change failed")
    assert await database.fetch("SELECT key FROM documents") == []
    await increment(database, "k")  # its key is free again
    assert await database.fetch("SELECT value FROM documents WHERE key = ?", ("k",)) == [('{"count": 1}',)]


async def test_a_lock_excludes_other_holders_of_its_name_only(open_database: Open, database: Database) -> None:
    other = open_database()
    events: list[str] = []
    first_in, second_asks, leave = anyio.Event(), anyio.Event(), anyio.Event()

    async def first() -> None:
        async with database.lock("export|user-1"):
            events.append("first in")
            first_in.set()
            await leave.wait()
            events.append("first out")

    async def second() -> None:
        await first_in.wait()
        second_asks.set()
        async with other.lock("export|user-1"):
            events.append("second in")

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(first)
            tasks.start_soon(second)
            await second_asks.wait()
            async with other.lock("export|user-2"):  # another name is free meanwhile
                events.append("other name")
            leave.set()
    assert events == ["first in", "other name", "first out", "second in"]


async def test_migrations_run_each_step_once(open_database: Open) -> None:
    steps = [["CREATE TABLE t (n INTEGER)", "INSERT INTO t (n) VALUES (1)"],
             ["CREATE TABLE u (n INTEGER)", "INSERT INTO t (n) VALUES (2)"]]
    databases = [open_database() for _ in range(4)]
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            for database in databases:
                tasks.start_soon(database.migrate, steps[:1])
                tasks.start_soon(database.migrate, steps)
    await databases[0].migrate(steps)
    await databases[0].migrate(steps[:1])  # an older replica starting later changes nothing
    assert await databases[1].fetch("SELECT n FROM t ORDER BY n") == [(1,), (2,)]


async def listening(database: Database) -> None:
    """PostgreSQL wakes every waiter once its listening connection is up (whatever came before it is lost);
    SQLite has nothing to wait for."""
    if database.dialect == "postgresql":
        await database.changed("listening", 10)


async def test_a_notify_wakes_a_waiter_and_a_quiet_channel_times_out(database: Database) -> None:
    woken = anyio.Event()

    async def wait() -> None:
        await database.changed("job_turn_abc123", 30)
        woken.set()

    with anyio.fail_after(10):
        await listening(database)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            await database.notify("job_turn_abc123")
            await woken.wait()
    started = anyio.current_time()
    await database.changed("job_turn_quiet", 0.3)
    assert 0.25 < anyio.current_time() - started < 5


async def test_several_processes_making_a_new_sqlite_store_at_once_all_get_it(tmp_path: Path) -> None:
    """Two hosts starting the server for the first time together: the switch of a new file to WAL does not wait
    out the busy timeout as statements do, and one of them was refused."""
    for round_number in range(40):
        path = tmp_path / f"round{round_number}.db"
        databases = [SqliteDatabase(path) for _ in range(4)]
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tasks:
                for database in databases:
                    tasks.start_soon(database.fetch, "SELECT 1")
