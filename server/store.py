"""The one durable store: everything that must outlive a server process.

Hosts start one server per window (Claude Desktop and Cursor side by side), and some start
one per call (the MCP Inspector CLI), so projects, jobs, renders and the anonymous token live
here, safe for several processes at once on Linux, macOS and Windows: SQLite in WAL mode
brings its own cross-process locking. The interface is a small document store (collections
of JSON objects by key, with an atomic read-modify-write), so a server database can replace
SQLite for a hosted deployment without touching its users.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Protocol

from .logs import get_logger

log = get_logger("store")

Document = dict[str, Any]
Change = Callable[[Document | None], Document | None]

STORE_FILE = "nemovideo.db"
# Another process holding the write lock finishes within milliseconds; this is only a ceiling.
BUSY_TIMEOUT_SECONDS = 15.0
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
    """What the skill needs from durable storage; SQLite here, a server database elsewhere."""

    def get(self, collection: str, key: str) -> Document | None: ...

    def put(self, collection: str, key: str, value: Document) -> None: ...

    def update(self, collection: str, key: str, change: Change) -> Document | None:
        """Apply `change` to the stored value (None: absent) atomically; None from it deletes."""
        ...

    def items(self, collection: str) -> list[tuple[str, Document]]: ...

    def delete(self, collection: str, key: str) -> None: ...


class SqliteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False
        self._ready_lock = threading.Lock()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        self._prepare()
        # A connection per operation: cheap for SQLite, and safe from any thread or event loop.
        with self._open() as connection:
            yield connection

    def _open(self) -> closing[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
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
            self._ready = True

    def get(self, collection: str, key: str) -> Document | None:
        with self._connection() as connection:
            row = connection.execute("SELECT value FROM documents WHERE collection = ? AND key = ?",
                                     (collection, key)).fetchone()
        return _decoded(row[0]) if row else None

    def put(self, collection: str, key: str, value: Document) -> None:
        with self._connection() as connection:
            connection.execute(UPSERT, (collection, key, json.dumps(value, ensure_ascii=False), time.time()))

    def update(self, collection: str, key: str, change: Change) -> Document | None:
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

    def items(self, collection: str) -> list[tuple[str, Document]]:
        with self._connection() as connection:
            rows = connection.execute("SELECT key, value FROM documents WHERE collection = ? ORDER BY updated_at",
                                      (collection,)).fetchall()
        return [(key, value) for key, raw in rows if (value := _decoded(raw)) is not None]

    def delete(self, collection: str, key: str) -> None:
        with self._connection() as connection:
            connection.execute("DELETE FROM documents WHERE collection = ? AND key = ?", (collection, key))


def _decoded(raw: str) -> Document | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def open_store(config_dir: Path, state_dir: Path) -> SqliteStore:
    store = SqliteStore(state_dir / STORE_FILE)
    migrate_json_files(store, config_dir, state_dir)
    return store


# The JSON files of earlier versions, and the collection each one's entries move to.
LEGACY_FILES = (("config", "anonymous_token.json", "anonymous_token"),
                ("state", "session.json", "legacy_current"),
                ("state", "renders.json", "render"))


def migrate_json_files(store: Store, config_dir: Path, state_dir: Path) -> None:
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
                store.update(collection, key, lambda existing, value=value: existing or value)
        path.unlink(missing_ok=True)
        log.info("Moved %s into the store", name)
