"""The SQL database under the store: the embedded SQLite file locally, PostgreSQL when hosted.

`store.py` speaks one SQL to this interface (`?` placeholders, `ON CONFLICT … DO UPDATE`,
`RETURNING`, which both engines take) and never learns which engine it has. What differs is
here: how a statement reaches the engine without holding up the event loop, how a
read-modify-write excludes every other writer, how a lock is held across network calls by
every process that shares the data, and how a change wakes a waiter in another process.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, closing, contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio

from .errors import StoreUnavailable
from .logs import get_logger

log = get_logger("database")

T = TypeVar("T")
Row = tuple[Any, ...]
Params = Sequence[Any]

# Another process of ours holds SQLite's write lock for milliseconds. A lock held longer belongs to
# something else (a backup tool, a database browser): waiting on it would only stall the tool call,
# so after this long the user is told which file is held.
BUSY_TIMEOUT_SECONDS = 5.0


class Transaction(Protocol):
    """Statements inside one transaction: what they read cannot change under them until it ends."""

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Params = ()) -> int:
        """The number of rows changed."""
        ...


class Database(Protocol):
    """Every method raises `StoreUnavailable` (with the sentence for the user) when the database cannot be used."""

    dialect: str  # "sqlite" or "postgresql"
    description: str  # what the database is, for sentences and logs (never a password)

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]: ...

    async def execute(self, sql: str, params: Params = ()) -> int: ...

    def transaction(self, key: str) -> AbstractAsyncContextManager[Transaction]:
        """A read-modify-write of the record named `key`: no other writer of that key, in any process, runs
        until it ends; an exception rolls it back."""
        ...

    def lock(self, name: str) -> AbstractAsyncContextManager[None]:
        """An exclusive lock across every process that shares the database, held over network calls. (With
        PostgreSQL it is the database's: a restart of the database while it is held releases it.)"""
        ...

    async def migrate(self, steps: Sequence[Sequence[str]]) -> None:
        """Bring the schema to version len(steps): each step's statements run once, in one transaction, even
        when several processes start together."""
        ...

    async def notify(self, channel: str) -> None:
        """Wake whoever waits on `channel` in `changed`, in any process."""
        ...

    async def changed(self, channel: str, timeout: float) -> None:
        """Return when `channel` is notified, or after `timeout` (a notify from where none can reach us); it may
        also return early, so the caller looks at what it waits for again."""
        ...

    async def aclose(self) -> None: ...


class SqliteDatabase:
    """One file in WAL mode: its own locking makes it safe for several processes of one user at once.

    Each statement runs in a worker thread on a connection of its own (cheap for SQLite, safe from any
    thread). A cancelled caller still lets a started write finish: atomic either way.
    """

    dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout_seconds: float | None = None) -> None:
        self.path = path
        self.description = str(path)
        self._busy_timeout = BUSY_TIMEOUT_SECONDS if busy_timeout_seconds is None else busy_timeout_seconds
        self._created = False
        self._create_lock = threading.Lock()
        # A notify within this process wakes its waiters at once; other processes find the change by polling.
        self._waiters: dict[str, anyio.Event] = {}

    async def _run(self, operation: Callable[..., T], *args: Any) -> T:
        try:
            return await anyio.to_thread.run_sync(operation, *args)
        except (sqlite3.Error, OSError) as error:
            log.warning("The store %s cannot be used: %s", self.path, error)
            raise StoreUnavailable(sqlite_advice(self.path, error)) from None

    def _open(self) -> closing[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                                     check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        return closing(connection)

    def _create(self) -> None:
        if self._created:
            return
        with self._create_lock:
            if self._created:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # It holds tokens: private from its first byte (SQLite gives its -wal and -shm files the same mode).
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            with self._open() as connection:
                _use_wal(connection, self._busy_timeout)
            # Only once it worked: a file the user repairs is used again without a restart.
            self._created = True

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        self._create()
        with self._open() as connection:
            yield connection

    def _fetch(self, sql: str, params: Params) -> list[Row]:
        with self._connection() as connection:
            return connection.execute(sql, tuple(params)).fetchall()

    def _execute(self, sql: str, params: Params) -> int:
        with self._connection() as connection:
            return connection.execute(sql, tuple(params)).rowcount

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._run(self._fetch, sql, params)

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._run(self._execute, sql, params)

    @asynccontextmanager
    async def transaction(self, key: str) -> AsyncIterator[Transaction]:
        # SQLite has one writer at a time: IMMEDIATE takes the write lock before the first read, so every
        # key is covered; the statements of a read-modify-write take microseconds.
        def begin() -> sqlite3.Connection:
            self._create()
            connection = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                                         check_same_thread=False)
            try:
                connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
                connection.execute("BEGIN IMMEDIATE")
            except BaseException:
                connection.close()
                raise
            return connection

        connection = await self._run(begin)
        transaction = _SqliteTransaction(self, connection)
        try:
            yield transaction
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._run(_finish, connection, "ROLLBACK")
            raise
        with anyio.CancelScope(shield=True):
            await self._run(_finish, connection, "COMMIT")

    @asynccontextmanager
    async def lock(self, name: str) -> AsyncIterator[None]:
        # An OS file lock beside the store: flock on Linux and macOS, LockFileEx on Windows. The async lock
        # waits in a worker thread, so the event loop stays alive, and two tasks of one process exclude each
        # other as two processes do.
        from filelock import AsyncFileLock  # at first use: a start that takes no lock is faster without it

        path = self.path.parent / "locks" / f"{_lock_file_name(name)}.lock"
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as error:
            raise StoreUnavailable(sqlite_advice(path.parent, error)) from None
        async with AsyncFileLock(path, mode=0o600):
            yield

    async def migrate(self, steps: Sequence[Sequence[str]]) -> None:
        await self._run(self._migrate, steps)

    def _migrate(self, steps: Sequence[Sequence[str]]) -> None:
        with self._connection() as connection:
            if connection.execute("PRAGMA user_version").fetchone()[0] >= len(steps):
                return
            connection.execute("BEGIN IMMEDIATE")
            try:
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                for number, statements in enumerate(steps[version:], start=version + 1):
                    for statement in statements:
                        connection.execute(statement)
                    connection.execute(f"PRAGMA user_version = {number}")
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    async def notify(self, channel: str) -> None:
        waiter = self._waiters.pop(channel, None)
        if waiter is not None:
            waiter.set()

    async def changed(self, channel: str, timeout: float) -> None:
        waiter = self._waiters.setdefault(channel, anyio.Event())
        with anyio.move_on_after(timeout):
            await waiter.wait()
        # Channels are named after jobs: one nobody notified must not keep its event once nobody waits on it.
        if waiter.statistics().tasks_waiting == 0 and self._waiters.get(channel) is waiter:
            del self._waiters[channel]

    async def aclose(self) -> None:
        """Nothing stays open between statements."""


class _SqliteTransaction:
    def __init__(self, database: SqliteDatabase, connection: sqlite3.Connection) -> None:
        self._database, self._connection = database, connection

    async def fetch(self, sql: str, params: Params = ()) -> list[Row]:
        return await self._database._run(lambda: self._connection.execute(sql, tuple(params)).fetchall())

    async def execute(self, sql: str, params: Params = ()) -> int:
        return await self._database._run(lambda: self._connection.execute(sql, tuple(params)).rowcount)


def _use_wal(connection: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch a new file to WAL. The switch does not wait out the busy timeout as statements do: several
    processes opening a new store at once (two hosts starting together) would refuse each other."""
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error).lower() and "busy" not in str(error).lower():
                raise
            if connection.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return  # another process switched it
            if time.monotonic() > deadline:
                raise
        time.sleep(0.01)  # a worker thread, never the event loop; the other process holds it for microseconds


def _finish(connection: sqlite3.Connection, statement: str) -> None:
    try:
        connection.execute(statement)
    finally:
        connection.close()


def _lock_file_name(name: str) -> str:
    """A file name for any lock name (user ids carry `|` and `:`, which Windows refuses in file names)."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def sqlite_advice(path: Path, error: BaseException) -> str:
    """What the user can do about a store that cannot be used, by what SQLite or the OS said."""
    reason = str(error).lower()
    number = getattr(error, "errno", None)
    if "locked" in reason or "busy" in reason:
        return (f"Another program is holding the skill's store {path} locked. Close any program that has it "
                "open (a database browser, a backup or sync tool), then try again.")
    if "full" in reason or number == errno.ENOSPC:
        return f"The disk that holds the skill's store {path} is full. Free some space, then try again."
    if "not a database" in reason or "malformed" in reason or "corrupt" in reason:
        return (f"The skill's store {path} is damaged. Move it aside (rename it, with any -wal and -shm files "
                "beside it) and try again: the skill starts a new store. Videos already saved are not affected; "
                "the list of projects starts over.")
    if "readonly" in reason or "read-only" in reason or number in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"The skill cannot write its store {path}. Fix the permissions of that file and its folder "
                "(the user running the host must be able to write both), or set XDG_STATE_HOME to a writable folder.")
    return (f"The skill's store {path} cannot be used ({error}). Check that its folder exists and is writable, "
            "or move the file aside; then try again.")
