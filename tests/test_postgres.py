"""What only PostgreSQL does: replicas wake each other, migrate together from separate processes, exclude each
other on the server, survive cancelled callers, and a database that is down gets a sentence and, once it is
back (or restarted), is used again without restarting the server. The behaviour both databases share is in
test_database.py."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import pytest

from nemovideo_mcp.errors import StoreUnavailable
from nemovideo_mcp.postgres import PostgresDatabase
from tests.postgres_cluster import PASSWORD, Cluster, postgres_server, postgres_url  # noqa: F401 (fixtures)

pytestmark = pytest.mark.anyio

Open = Callable[..., PostgresDatabase]


@pytest.fixture
async def open_database(postgres_url: str) -> AsyncIterator[Open]:  # noqa: F811
    """Opens replicas of one database; all closed after the test."""
    opened: list[PostgresDatabase] = []

    def open_one(**options: Any) -> PostgresDatabase:
        opened.append(PostgresDatabase(postgres_url, **options))
        return opened[-1]

    yield open_one
    for database in opened:
        await database.aclose()


async def advisory_locks(database: PostgresDatabase) -> list[tuple[int, bool]]:
    """(objsubid, granted) of the advisory locks on the server: objsubid 2 is the two-integer key space."""
    return await database.fetch("SELECT objsubid, granted FROM pg_locks WHERE locktype = 'advisory' "
                                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                                "ORDER BY granted")


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait for a state of the server that no event can tell this process about."""
    while not await condition():
        await anyio.sleep(0.01)


async def test_a_notify_in_one_replica_wakes_a_waiter_in_another(open_database: Open) -> None:
    waiting, notifying = open_database(), open_database()
    woken = anyio.Event()

    async def wait() -> None:
        await waiting.changed("job_turn_abc123", 30)
        woken.set()

    with anyio.fail_after(5):
        await waiting.changed("listening", 30)  # returns as soon as the listening connection is up
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            await notifying.notify("other channel")  # wakes no one
            await notifying.notify("job_turn_abc123")
            await woken.wait()
    started = anyio.current_time()
    await waiting.changed("job_turn_quiet", 0.3)
    assert 0.25 < anyio.current_time() - started < 5
    assert waiting._waiters == {}  # a channel nobody notified keeps nothing behind


def test_replicas_in_separate_processes_migrate_once(postgres_url: str) -> None:  # noqa: F811
    steps = [["CREATE TABLE t (n INTEGER)", "INSERT INTO t (n) VALUES (1)"], ["INSERT INTO t (n) VALUES (2)"]]
    replica = (
        "import json, sys, anyio\n"
        "from nemovideo_mcp.postgres import PostgresDatabase\n"
        "async def main():\n"
        "    database = PostgresDatabase(sys.argv[1])\n"
        "    print('ready', flush=True)\n"
        "    sys.stdin.readline()\n"
        "    try:\n"
        "        await database.migrate(json.loads(sys.argv[2]))\n"
        "    finally:\n"
        "        await database.aclose()\n"
        "anyio.run(main)\n")
    with contextlib.ExitStack() as stack:
        processes = [stack.enter_context(subprocess.Popen(
            [sys.executable, "-c", replica, postgres_url, json.dumps(steps)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) for _ in range(4)]
        for process in processes:  # all of them started, so they migrate at once
            assert process.stdout.readline() == "ready\n"
        for process in processes:
            process.stdin.write("go\n")
            process.stdin.flush()
        for process in processes:
            _, errors = process.communicate(timeout=30)
            assert process.returncode == 0, errors

    async def check() -> None:
        database = PostgresDatabase(postgres_url)
        try:
            assert await database.fetch("SELECT n FROM t ORDER BY n") == [(1,), (2,)]
            assert await database.fetch("SELECT version FROM schema_version ORDER BY version") == [(1,), (2,)]
        finally:
            await database.aclose()

    anyio.run(check)


async def test_a_lock_waits_on_the_server_for_its_holder_in_another_replica(open_database: Open) -> None:
    first, second = open_database(), open_database()
    held, leave, second_in = anyio.Event(), anyio.Event(), anyio.Event()

    async def hold() -> None:
        async with first.lock("render start"):
            held.set()
            await leave.wait()

    async def take() -> None:
        async with second.lock("render start"):
            second_in.set()

    async def second_waits() -> bool:
        return await advisory_locks(first) == [(2, False), (2, True)]

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(hold)
            await held.wait()
            tasks.start_soon(take)
            await until(second_waits)
            assert not second_in.is_set()
            leave.set()
            await second_in.wait()
    assert await advisory_locks(first) == []


async def test_a_lock_taken_while_holding_another_needs_no_second_lock_connection(open_database: Open) -> None:
    """Found by review: a token renewed during a render start took its lock on a second lock connection, and with
    the pool of one lock connection the export failed. Nested, it shares the holder's; others still wait for it."""
    database, other = open_database(max_locks=1, timeout_seconds=2.0), open_database()
    nested_held, leave, other_in = anyio.Event(), anyio.Event(), anyio.Event()

    async def renew_during_render_start() -> None:
        async with database.lock("carol|render start"), database.lock("carol|anonymous token"):
            nested_held.set()
            await leave.wait()

    async def another_replica_renews() -> None:
        async with other.lock("carol|anonymous token"):
            other_in.set()

    async def other_waits() -> bool:
        return (2, False) in await advisory_locks(other)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(renew_during_render_start)
            await nested_held.wait()
            tasks.start_soon(another_replica_renews)
            await until(other_waits)
            assert not other_in.is_set()
            leave.set()
            await other_in.wait()
    assert await advisory_locks(other) == []


async def test_a_lock_of_another_replica_is_never_taken_on_this_ones_connection(open_database: Open) -> None:
    """Found by review: nested, a lock of another database object was taken on the held lock's session, where the
    same key is re-entrant: granted at once although held."""
    first, second = open_database(), open_database()
    entered = False

    async def second_waits() -> bool:
        return (2, False) in await advisory_locks(first)

    with anyio.fail_after(10):
        async with first.lock("erin|render start"):
            with anyio.CancelScope() as attempt:
                async with anyio.create_task_group() as tasks:
                    async def give_up_once_waiting() -> None:
                        await until(second_waits)
                        attempt.cancel()

                    tasks.start_soon(give_up_once_waiting)
                    async with second.lock("erin|render start"):
                        entered = True
    assert not entered


async def test_locks_held_by_many_users_leave_connections_for_their_statements(open_database: Open) -> None:
    database = open_database(max_connections=1)
    all_held = anyio.Event()
    holders: list[str] = []

    async def create_project(user: str) -> None:
        async with database.lock(f"{user}|project"):
            holders.append(user)
            if len(holders) == 3:
                all_held.set()
            await all_held.wait()
            assert await database.fetch("SELECT ?", (user,)) == [(user,)]

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            for user in ("alice", "bob", "carol"):
                tasks.start_soon(create_project, user)


async def test_cancelled_callers_leave_no_transaction_and_no_lock_behind(open_database: Open) -> None:
    # One connection each: whatever a cancelled caller left on it, the next statement would meet.
    database, other = open_database(max_connections=1), open_database(max_connections=1)
    await database.execute("CREATE TABLE t (n INTEGER)")
    inside, held, leave = anyio.Event(), anyio.Event(), anyio.Event()

    async def cancelled_in_transaction(scope: anyio.CancelScope) -> None:
        with scope:
            async with database.transaction("k") as transaction:
                await transaction.execute("INSERT INTO t (n) VALUES (?)", (1,))
                inside.set()
                await anyio.sleep_forever()

    async def hold(name: str) -> None:
        async with other.lock(name), other.transaction("k"):
            held.set()
            await leave.wait()

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tasks:
            scope = anyio.CancelScope()
            tasks.start_soon(cancelled_in_transaction, scope)
            await inside.wait()
            scope.cancel()
        assert await other.fetch("SELECT n FROM t") == []
        assert await database.fetch("SELECT count(*) FROM pg_stat_activity "
                                     "WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')") \
            == [(0,)]

        # Cancelled while the server makes them wait: for the key of a transaction, for a lock.
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(hold, "project")
            await held.wait()
            for wait in (database.transaction("k"), database.lock("project")):
                with anyio.move_on_after(0.2):
                    async with wait:
                        pytest.fail("entered while another replica held it")
            leave.set()
        async with database.lock("project"), database.transaction("k") as transaction:
            await transaction.execute("INSERT INTO t (n) VALUES (?)", (2,))
        assert await other.fetch("SELECT n FROM t") == [(2,)]
        assert await advisory_locks(other) == []


async def test_a_database_that_is_down_gets_a_sentence_and_is_used_once_it_is_back(
        caplog: pytest.LogCaptureFixture) -> None:
    cluster = Cluster()  # nothing listens on its port until it is started, after the calls that fail
    database = PostgresDatabase(cluster.url(), timeout_seconds=0.2)
    attempts = {
        "fetch": lambda: database.fetch("SELECT 1"),
        "execute": lambda: database.execute("SELECT ?", (1,)),
        "transaction": lambda: _enter(database.transaction("k")),
        "lock": lambda: _enter(database.lock("export")),
        "migrate": lambda: database.migrate([["CREATE TABLE t (n INTEGER)"]]),
        "notify": lambda: database.notify("job_turn_abc123"),
    }
    caplog.set_level(logging.INFO)
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(anyio.to_thread.run_sync, cluster.initdb)
            for name, attempt in attempts.items():
                with pytest.raises(StoreUnavailable) as caught:
                    await attempt()
                message = str(caught.value)
                assert f"127.0.0.1:{cluster.port}" in message, name
                assert "Connection refused" in message and "NEMO_DATABASE_URL" in message, message
                assert PASSWORD not in message
            with anyio.fail_after(5):
                await database.changed("job_turn_abc123", 0.1)  # waits out its time, without an error
        assert not [record for record in caplog.records if PASSWORD in record.getMessage()]

        await anyio.to_thread.run_sync(cluster.start)
        with anyio.fail_after(5):
            await database.migrate([["CREATE TABLE t (n INTEGER)"]])
            await database.execute("INSERT INTO t (n) VALUES (?)", (1,))
            async with database.lock("export"), database.transaction("k") as transaction:
                assert await transaction.fetch("SELECT n FROM t") == [(1,)]

            # A restart drops every pooled connection: the next call finds that out in time and uses new ones.
            async with anyio.create_task_group() as tasks:
                for _ in range(4):
                    tasks.start_soon(database.fetch, "SELECT pg_sleep(0.05)")
            await anyio.to_thread.run_sync(cluster.stop)
            await anyio.to_thread.run_sync(cluster.start)
            assert await database.fetch("SELECT n FROM t") == [(1,)]
    finally:
        await database.aclose()
        await anyio.to_thread.run_sync(cluster.remove)


async def _enter(context: AbstractAsyncContextManager[Any]) -> None:
    async with context:
        pass


async def test_a_statement_the_database_refuses_gets_its_reason(open_database: Open) -> None:
    database = open_database()
    with pytest.raises(StoreUnavailable, match=r'refused a statement .*relation "missing" does not exist'):
        await database.fetch("SELECT n FROM missing")
    with pytest.raises(ValueError):
        await database.fetch("SELECT 'a%'")


def test_an_address_that_is_no_url_is_refused_without_repeating_it() -> None:
    with pytest.raises(StoreUnavailable) as caught:
        PostgresDatabase(f"postgresql://user:{PASSWORD}@host/db?unknown=1")
    assert "postgresql://user:password@host:port/database" in str(caught.value)
    assert PASSWORD not in str(caught.value)
