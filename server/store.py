"""The one durable store: everything that must outlive a server process.

Hosts start one server per window (Claude Desktop and Cursor side by side), and some start
one per call (the MCP Inspector CLI), so projects, jobs, renders and the anonymous token live
here, safe for several processes at once on Linux, macOS and Windows: SQLite in WAL mode
brings its own cross-process locking. The interface is a small document store (collections
of JSON objects by key, with an atomic read-modify-write), so a server database can replace
SQLite for a hosted deployment without touching its users.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anyio

from .errors import StoreUnavailable
from .logs import get_logger

log = get_logger("store")

Document = dict[str, Any]
Change = Callable[[Document | None], Document | None]
T = TypeVar("T")

STORE_FILE = "nemovideo.db"
# Another process of ours holds the write lock for milliseconds. A lock held longer belongs to
# something else (a backup tool, a database browser): waiting on it would only stall the tool
# call, so after this long the user is told which file is held.
BUSY_TIMEOUT_SECONDS = 5.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    collection TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (collection, key)
)
"""
UPSERT = (
    "INSERT INTO documents (collection, key, value, updated_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (collection, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)


class Store(Protocol):
    """What the skill needs from durable storage; SQLite here, a server database elsewhere.

    Every method is a coroutine: a store is disk or network, and waiting on it must never hold up the
    event loop (MCP pings, other tool calls, running jobs). A store that cannot be used raises
    `StoreUnavailable`, whose message names the file and what to do.
    """

    async def get(self, collection: str, key: str) -> Document | None: ...

    async def put(self, collection: str, key: str, value: Document) -> None: ...

    async def update(self, collection: str, key: str, change: Change) -> Document | None:
        """Apply `change` to the stored value (None: absent) atomically; None from it deletes."""
        ...

    async def items(self, collection: str) -> list[tuple[str, Document]]: ...

    async def delete(self, collection: str, key: str) -> None: ...


class SqliteStore:
    def __init__(self, path: Path, busy_timeout_seconds: float | None = None, *,
                 legacy_dirs: tuple[Path, Path] | None = None) -> None:
        self.path = path
        self._busy_timeout = BUSY_TIMEOUT_SECONDS if busy_timeout_seconds is None else busy_timeout_seconds
        # (config dir, state dir) where earlier versions kept JSON files, moved in at first use.
        self._legacy_dirs = legacy_dirs
        self._ready = False
        self._ready_lock = threading.Lock()

    async def _run(self, operation: Callable[..., T], *args: Any) -> T:
        # In a worker thread; a cancelled caller still lets a started write finish (atomic either way).
        try:
            return await anyio.to_thread.run_sync(operation, *args)
        except (sqlite3.Error, OSError) as error:
            log.warning("The store %s cannot be used: %s", self.path, error)
            raise StoreUnavailable(store_advice(self.path, error)) from None

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        self._prepare()
        # A connection per operation: cheap for SQLite, and safe from any thread.
        with self._open() as connection:
            yield connection

    def _open(self) -> closing[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None,
                                     check_same_thread=False)
        connection.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        return closing(connection)

    def _prepare(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # It holds a token: private from its first byte (SQLite gives its -wal and -shm files the same mode).
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            with self._open() as connection:
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute(SCHEMA)
            # Only once it worked: a store the user repairs is used again without a restart.
            self._ready = True
            if self._legacy_dirs is not None:
                migrate_json_files(self, *self._legacy_dirs)

    async def get(self, collection: str, key: str) -> Document | None:
        return await self._run(self._get, collection, key)

    async def put(self, collection: str, key: str, value: Document) -> None:
        await self._run(self._put, collection, key, value)

    async def update(self, collection: str, key: str, change: Change) -> Document | None:
        return await self._run(self._update, collection, key, change)

    async def items(self, collection: str) -> list[tuple[str, Document]]:
        return await self._run(self._items, collection)

    async def delete(self, collection: str, key: str) -> None:
        await self._run(self._delete, collection, key)

    def _get(self, collection: str, key: str) -> Document | None:
        with self._connection() as connection:
            row = connection.execute("SELECT value FROM documents WHERE collection = ? AND key = ?",
                                     (collection, key)).fetchone()
        return _decoded(row[0]) if row else None

    def _put(self, collection: str, key: str, value: Document) -> None:
        with self._connection() as connection:
            connection.execute(UPSERT, (collection, key, json.dumps(value, ensure_ascii=False), time.time()))

    def _update(self, collection: str, key: str, change: Change) -> Document | None:
        with self._connection() as connection:
            # IMMEDIATE takes the write lock before reading: no other process changes the value in between.
            connection.execute("BEGIN IMMEDIATE")
            try:
                row = connection.execute("SELECT value FROM documents WHERE collection = ? AND key = ?",
                                         (collection, key)).fetchone()
                changed = change(_decoded(row[0]) if row else None)
                if changed is None:
                    connection.execute("DELETE FROM documents WHERE collection = ? AND key = ?", (collection, key))
                else:
                    connection.execute(UPSERT, (collection, key, json.dumps(changed, ensure_ascii=False), time.time()))
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        return changed

    def _items(self, collection: str) -> list[tuple[str, Document]]:
        with self._connection() as connection:
            rows = connection.execute("SELECT key, value FROM documents WHERE collection = ? ORDER BY updated_at",
                                      (collection,)).fetchall()
        return [(key, value) for key, raw in rows if (value := _decoded(raw)) is not None]

    def _delete(self, collection: str, key: str) -> None:
        with self._connection() as connection:
            connection.execute("DELETE FROM documents WHERE collection = ? AND key = ?", (collection, key))


def store_advice(path: Path, error: BaseException) -> str:
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


def _decoded(raw: str) -> Document | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def open_store(config_dir: Path, state_dir: Path) -> SqliteStore:
    """The store; nothing is read or created until its first use, so a broken one never stops the server."""
    return SqliteStore(state_dir / STORE_FILE, legacy_dirs=(config_dir, state_dir))


# The JSON files of earlier versions, and the collection each one's entries move to.
LEGACY_FILES = (("config", "anonymous_token.json", "anonymous_token"),
                ("state", "session.json", "legacy_current"),
                ("state", "renders.json", "render"))


def migrate_json_files(store: SqliteStore, config_dir: Path, state_dir: Path) -> None:
    """Bring the JSON files of earlier versions into the store once, then remove them.

    An entry already in the store wins: a second process migrating at the same moment changes nothing.
    """
    for folder, name, collection in LEGACY_FILES:
        path = (config_dir if folder == "config" else state_dir) / name
        if not path.is_file():
            continue
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entries = {}
        for key, value in entries.items() if isinstance(entries, dict) else ():
            if isinstance(value, dict):
                store._update(collection, key, lambda existing, value=value: existing or value)
        path.unlink(missing_ok=True)
        log.info("Moved %s into the store", name)
