"""PostgreSQL under the store, for a hosted deployment: many replicas of the server share one database.

The protocol of `database.py`, with what SQLite gets from being one file done the PostgreSQL way: a
read-modify-write excludes the other writers of its key by a transaction-scoped advisory lock (its row may
not exist yet, so a row lock would not do); a lock held over network calls is a session advisory lock on a
connection kept for it; migrations run under an advisory lock, so replicas starting together apply each
step once; a change wakes the waiters of every replica by NOTIFY.

Nothing connects before the first call, so a server whose database is down still starts; each call then
raises `StoreUnavailable` naming the database's host (never its password), and the pool reconnects by
itself once the database is back.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import psycopg
import psycopg.sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from .database import Params, Row, Transaction
from .errors import StoreUnavailable
from .logs import get_logger, register_secret, without_userinfo

log = get_logger("postgres")

# As long as a tool call waits for a connection (or for a transaction to end) before the user is told the
# database cannot be used: the same patience as with a locked SQLite file.
TIMEOUT_SECONDS = 5.0
# Connections of one replica for statements and transactions, none of which waits on anything but the database.
MAX_CONNECTIONS = 10
# Connections of one replica for held locks, one each: a pool apart, so that locks held over network calls
# (by many users at once) never take the connections their holders' own statements need.
MAX_LOCKS = 20
# Our channels travel as the payload of this one PostgreSQL channel: a payload can be any string, a channel
# name is an identifier.
NOTIFY_CHANNEL = "nemovideo"
FAILURES = (psycopg.Error, OSError)


class PostgresDatabase:
    """A pool of connections in autocommit mode; `transaction`, `lock` and `migrate` each hold one of them.

    `changed` may return before its channel is notified: when the listening connection (re)connects,
    whatever was notified while it was not listening is lost, so every waiter looks again.
    """

    dialect = "postgresql"

    def __init__(self, url: str, *, timeout_seconds: float = TIMEOUT_SECONDS,
                 max_connections: int = MAX_CONNECTIONS, max_locks: int = MAX_LOCKS) -> None:
        try:
            parts = conninfo_to_dict(url)
        except psycopg.Error:
            # libpq's complaint may quote the URL, password and all.
            raise StoreUnavailable(
                "NEMO_DATABASE_URL is not a PostgreSQL address: write it as "
                "postgresql://user:password@host:port/database.") from None
        self._password = str(parts.get("password") or "")
        register_secret(self._password)
        where = str(parts.get("host") or "the default local socket")
        if parts.get("port"):
            where += f":{parts['port']}"
        if parts.get("dbname"):
            where += f" (database {parts['dbname']})"
        self.description = f"the PostgreSQL database at {where}"  # what messages and logs name: no password
        self._url = url
        self._timeout = timeout_seconds
        # libpq counts whole seconds and takes nothing under 2.
        self._connect_options = {"autocommit": True, "connect_timeout": max(2, math.ceil(timeout_seconds))}
        self._pool = self._new_pool("statements", min_size=1, max_size=max_connections)
        self._lock_pool = self._new_pool("locks", min_size=0, max_size=max_locks)
        self._transaction_turns = _Turns()
        self._lock_turns = _Turns()
        self._waiters: dict[str, anyio.Event] = {}
        self._listener: asyncio.Task[None] | None = None
        self._listener_failed_at = -math.inf

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._opened_with(_placeholders(sql), tuple(params)) as (_, cursor):
            return await self._fetched(cursor)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._opened_with(_placeholders(sql), tuple(params)) as (_, cursor):
            return cursor.rowcount

    @asynccontextmanager
    async def transaction(self, key: str) -> AsyncIterator[Transaction]:
        # Callers of this process wait for the key here rather than each on a pooled connection of its own.
        async with self._transaction_turns.turn(key), \
                self._locked_transaction(_advisory_key(key, b"transaction")) as connection:
            yield _PostgresTransaction(self, connection)

    @asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[None]:
        # The two-integer form: a key space apart from the single keys of transactions and migrations.
        digest = _digest(name, b"lock")
        keys = (int.from_bytes(digest[:4], "big", signed=True), int.from_bytes(digest[4:], "big", signed=True))
        lock, unlock = ("SELECT pg_advisory_lock(%s::integer, %s::integer)",
                        "SELECT pg_advisory_unlock(%s::integer, %s::integer)")
        holding = _HELD_LOCK.get()
        if holding is not None and holding.held and holding.database is self and holding.task is asyncio.current_task():
            # Taken while this task holds another lock (a token renewed during a render start): on the connection
            # that one holds, so one caller never needs two of the pool's lock connections at once (a pool that
            # many users share would run dry with each of them holding one and waiting for another).
            async with self._lock_turns.turn(name):
                await self._run(holding.connection, lock, keys)
                try:
                    yield
                finally:
                    await self._end(holding.connection, unlock, keys)
            return
        async with self._lock_turns.turn(name), \
                self._opened_with(lock, keys, self._lock_pool) as (connection, _):
            # Only this task, and only while held: tasks it starts inherit the context, and take locks of their own.
            holder = _LockHolder(self, asyncio.current_task(), connection)
            token = _HELD_LOCK.set(holder)
            try:
                yield
            finally:
                holder.held = False
                _HELD_LOCK.reset(token)
                await self._end(connection, unlock, keys)

    async def migrate(self, steps: Sequence[Sequence[str]]) -> None:
        async with self._locked_transaction(_advisory_key("schema_version", b"migration")) as connection:
            await self._run(connection, "CREATE TABLE IF NOT EXISTS schema_version ("
                                        "version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            version = (await self._rows(connection, "SELECT coalesce(max(version), 0) FROM schema_version"))[0][0]
            for number, statements in enumerate(steps[version:], start=version + 1):
                for statement in statements:
                    await self._run(connection, statement)
                await self._run(connection, "INSERT INTO schema_version (version) VALUES (%s)", (number,))

    async def notify(self, channel: str) -> None:
        # Waiters of this process are woken even while the listening connection is down.
        self._wake(channel)
        await self.execute("SELECT pg_notify(?, ?)", (NOTIFY_CHANNEL, channel))

    async def changed(self, channel: str, timeout: float) -> None:
        waiter = self._waiters.setdefault(channel, anyio.Event())
        self._start_listening()
        with anyio.move_on_after(timeout):
            await waiter.wait()
        # Channels are named after jobs: one nobody notified must not keep its event once nobody waits on it.
        if waiter.statistics().tasks_waiting == 0 and self._waiters.get(channel) is waiter:
            del self._waiters[channel]

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener])
        await self._pool.close()
        await self._lock_pool.close()

    def _new_pool(self, name: str, *, min_size: int, max_size: int) -> AsyncConnectionPool:
        return AsyncConnectionPool(
            self._url, kwargs=self._connect_options, min_size=min_size, max_size=max_size, open=False,
            name=name, timeout=self._timeout,
            # The pool's retries while nobody waits stop after this long; the next caller starts new ones at
            # once, so a database that is back is used at the next call, not at the end of a long backoff.
            reconnect_timeout=self._timeout,
        )

    @asynccontextmanager
    async def _opened_with(self, sql: str | psycopg.sql.Composed, params: tuple[object, ...] | None = None,
                           pool: AsyncConnectionPool | None = None,
                           ) -> AsyncIterator[tuple[psycopg.AsyncConnection, psycopg.AsyncCursor]]:
        """A pooled connection and the cursor of its first statement.

        Connections are not tried before they are lent (that would be one more round trip per statement). One the
        database dropped (a restart, a failover) fails its first statement at once, and the statement runs again
        on a new connection, once: every first statement here may run twice (a read, an upsert, a delete, a
        notify, the start of a transaction or of a lock).
        """
        pool = pool or self._pool
        for attempt in range(2):
            async with self._connection(pool) as connection:
                try:
                    cursor = await connection.execute(sql, params)
                except FAILURES as error:
                    if attempt or not connection.broken:
                        raise self._unavailable(error) from None
                except BaseException:
                    # Cancelled mid-statement, it may have run all the same (a lock granted, a transaction
                    # begun): a closed connection ends its session, and whatever the statement started with it.
                    with anyio.CancelScope(shield=True):
                        await connection.close()
                    raise
                else:
                    yield connection, cursor
                    return
            # Most likely every idle connection was dropped with it: all are tried and replaced now, where the
            # pool would find them one per borrower.
            await pool.check()

    @asynccontextmanager
    async def _connection(self, pool: AsyncConnectionPool | None = None) -> AsyncIterator[psycopg.AsyncConnection]:
        pool = pool or self._pool
        try:
            await pool.open()  # at once: connections are made in the background
            connection = await pool.getconn()
        except PoolTimeout:
            raise self._unavailable(await self._why_no_connection(pool)) from None
        except FAILURES as error:
            raise self._unavailable(error) from None
        try:
            yield connection
        finally:
            # Even when cancelled: a connection that never went back would shrink the pool for good. The pool
            # rolls back one left in a transaction and replaces one cut off mid-statement.
            with anyio.CancelScope(shield=True):
                await pool.putconn(connection)

    async def _why_no_connection(self, pool: AsyncConnectionPool) -> BaseException:
        """The pool keeps why it cannot connect (a refused port, a wrong password) to its log: one more attempt
        tells the user. One that connects means the database answers and every connection was busy."""
        try:
            connection = await psycopg.AsyncConnection.connect(self._url, **self._connect_options)
        except FAILURES as error:
            return error
        await connection.close()
        return PoolTimeout(f"the {pool.max_size} connections this server keeps for {pool.name} stayed busy for "
                           f"{self._timeout:g} seconds")

    @asynccontextmanager
    async def _locked_transaction(self, key: int) -> AsyncIterator[psycopg.AsyncConnection]:
        # READ COMMITTED whatever the server's default: each statement must see what the lock's previous holder
        # committed, which a snapshot taken before the lock was granted would not. Both statements in one round
        # trip, which takes no parameters: the key is an integer of ours.
        begin = psycopg.sql.SQL("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({}::bigint)")
        async with self._opened_with(begin.format(psycopg.sql.Literal(key))) as (connection, _):
            try:
                yield connection
            except BaseException:
                await self._end(connection, "ROLLBACK")
                raise
            failure = await self._end(connection, "COMMIT")
            if failure is not None:
                raise self._unavailable(failure)

    async def _run(self, connection: psycopg.AsyncConnection, sql: str,
                   params: tuple[object, ...] | None = None) -> psycopg.AsyncCursor:
        try:
            return await connection.execute(sql, params)
        except FAILURES as error:
            raise self._unavailable(error) from None

    async def _rows(self, connection: psycopg.AsyncConnection, sql: str,
                    params: tuple[object, ...] | None = None) -> list[Row]:
        return await self._fetched(await self._run(connection, sql, params))

    async def _fetched(self, cursor: psycopg.AsyncCursor) -> list[Row]:
        if cursor.description is None:  # a statement without RETURNING: no rows, as SQLite answers
            return []
        try:
            return await cursor.fetchall()
        except FAILURES as error:
            raise self._unavailable(error) from None

    async def _end(self, connection: psycopg.AsyncConnection, sql: str,
                   params: tuple[object, ...] | None = None) -> BaseException | None:
        """Run what ends a transaction or a lock, even for a cancelled caller: the connection must not go back
        to the pool inside a transaction or holding a lock. One that cannot run it in time is closed instead,
        which ends both on the server. Returns the failure, if any."""
        with anyio.CancelScope(shield=True):
            failure: BaseException | None = None
            with anyio.move_on_after(self._timeout) as deadline:
                try:
                    await connection.execute(sql, params)
                except FAILURES as error:
                    failure = error
            if deadline.cancelled_caught:
                failure = TimeoutError(f"no answer within {self._timeout:g} seconds")
            if failure is not None:
                await connection.close()
            return failure

    def _start_listening(self) -> None:
        if self._listener is not None and not self._listener.done():
            return
        # While the database is down, an attempt per waiter would flood the log: one per timeout is enough.
        if anyio.current_time() - self._listener_failed_at < self._timeout:
            return
        # A task of its own, not of the caller: the connection listens for every waiter, until `aclose`.
        self._listener = asyncio.get_running_loop().create_task(self._listen(), name="nemovideo-listen")

    async def _listen(self) -> None:
        try:
            connection = await psycopg.AsyncConnection.connect(self._url, **self._connect_options)
            try:
                await connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
                for channel in list(self._waiters):
                    self._wake(channel)
                async for notification in connection.notifies():
                    self._wake(notification.payload)
            finally:
                await connection.close()
        except FAILURES as error:
            self._listener_failed_at = anyio.current_time()
            log.warning("The store, %s, cannot tell this replica about changes (%s): it looks for them when each "
                        "wait times out.", self.description, self._reason(error))

    def _wake(self, channel: str) -> None:
        waiter = self._waiters.pop(channel, None)
        if waiter is not None:
            waiter.set()

    def _reason(self, error: BaseException) -> str:
        text = " ".join(str(error).split()) or type(error).__name__
        if self._password:
            text = text.replace(self._password, "[redacted]")
        return without_userinfo(text)[:300]

    def _unavailable(self, error: BaseException) -> StoreUnavailable:
        reason = self._reason(error)
        log.warning("The store, %s, cannot be used: %s", self.description, reason)
        if isinstance(error, psycopg.OperationalError | OSError):
            return StoreUnavailable(
                f"The skill's store, {self.description}, cannot be used right now ({reason}). Check that "
                "PostgreSQL is running there and accepts connections from this server, and that "
                "NEMO_DATABASE_URL names the right host, port, database, user and password; the skill "
                "reconnects by itself as soon as it can.")
        return StoreUnavailable(
            f"The skill's store, {self.description}, refused a statement ({reason}). Check that the user in "
            "NEMO_DATABASE_URL may create and change tables in that database, then try again.")


class _PostgresTransaction:
    def __init__(self, database: PostgresDatabase, connection: psycopg.AsyncConnection) -> None:
        self._database, self._connection = database, connection

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._database._rows(self._connection, _placeholders(sql), tuple(params))

    async def execute(self, sql: str, params: Params = ()) -> int:
        return (await self._database._run(self._connection, _placeholders(sql), tuple(params))).rowcount


class _LockHolder:
    """The task that holds a lock, in which database and on which connection, and whether it still does."""

    def __init__(self, database: PostgresDatabase, task: asyncio.Task[Any] | None,
                 connection: psycopg.AsyncConnection) -> None:
        self.database, self.task, self.connection, self.held = database, task, connection, True


_HELD_LOCK: contextvars.ContextVar[_LockHolder | None] = contextvars.ContextVar("held_lock", default=None)


class _Turns:
    """Callers of one process that want the same name wait here, one at a time, instead of each holding a
    pooled connection while PostgreSQL makes it wait: the rest of the pool stays free for other statements."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, int]] = {}

    @asynccontextmanager
    async def turn(self, name: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(name) or (anyio.Lock(), 0)
        self._locks[name] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[name]
            if users == 1:
                del self._locks[name]
            else:
                self._locks[name] = (lock, users - 1)


def _placeholders(sql: str) -> str:
    """The store's `?` as psycopg's `%s`. Its SQL holds neither character otherwise; a `%` would be taken
    for a placeholder."""
    if "%" in sql:
        raise ValueError(f"The store's SQL may not contain '%': {sql}")
    return sql.replace("?", "%s")


def _digest(name: str, namespace: bytes) -> bytes:
    return hashlib.blake2b(name.encode(), digest_size=8, person=namespace).digest()


def _advisory_key(name: str, namespace: bytes) -> int:
    """A 64-bit advisory lock key; the namespace keeps transaction keys and the migration's key apart."""
    return int.from_bytes(_digest(name, namespace), "big", signed=True)
