"""The one durable store: everything that must outlive a server process, for every user.

Hosts start one server per window (Claude Desktop and Cursor side by side), and some start one per
call (the MCP Inspector CLI); a hosted deployment runs several replicas for many users. So projects,
jobs, renders and anonymous tokens live here, in tables of the embedded SQLite file locally or of
PostgreSQL when hosted (`database.py`), safe for any number of processes at once.

Every record belongs to a user and every query names one: a `UserStore` is the store seen by one
user, and no id a user sends reaches another user's row. A record is a JSON document; the columns a
lookup or a retention rule needs are copied out of it on every write, and indexed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from .database import Database, SqliteDatabase
from .logs import get_logger
from .tables import CURRENT_PROJECTS, JOBS, MIGRATIONS, PROJECTS, RENDERS, TOKENS, Document, Table
from .users import LOCAL_USER

if TYPE_CHECKING:
    from .settings import Settings

log = get_logger("store")

Change = Callable[[Document | None], Document | None]

STORE_FILE = "nemovideo.db"
# How soon a job run by another process is looked up again when nothing can wake its follower.
SQLITE_LOOK_AGAIN_SECONDS = 0.5


def _decoded(raw: str) -> Document | None:
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class Store:
    """The store of a deployment (all its users); `for_user` gives the view every tool call works through.

    Nothing is read or created before the first use, so a database that cannot be used never stops the
    server: each call that needs it gets its sentence, and a repaired one is used without a restart.
    """

    def __init__(self, database: Database, *, legacy_dirs: tuple[Path, Path] | None = None) -> None:
        self.database = database
        # (config dir, state dir) where earlier versions kept JSON files, moved in at first use.
        self._legacy_dirs = legacy_dirs
        self._ready = False
        self._ready_lock = anyio.Lock()

    def for_user(self, user_id: str) -> UserStore:
        return UserStore(self, user_id)

    async def ready(self) -> Database:
        if not self._ready:
            async with self._ready_lock:
                if not self._ready:
                    await self.database.migrate(MIGRATIONS)
                    if self.database.dialect == "sqlite":
                        # Before any other call reads the tables: a token moved in is never minted again.
                        importer = _Importer(self, LOCAL_USER)
                        await _import_documents(importer)
                        if self._legacy_dirs is not None:
                            await _import_json_files(importer, *self._legacy_dirs)
                    self._ready = True
        return self.database

    async def aclose(self) -> None:
        await self.database.aclose()

    async def ping(self) -> None:
        """A statement the database must answer now (readiness): `ready` alone remembers its first success."""
        await (await self.ready()).fetch("SELECT 1 FROM jobs LIMIT 1")  # reads the schema: SQLite opens the file

    async def job_counts(self) -> dict[tuple[str, str], int]:
        """How many jobs of each kind are in each state, across users (the operator's metrics)."""
        rows = await (await self.ready()).fetch("SELECT kind, status, COUNT(*) FROM jobs GROUP BY kind, status")
        return {(str(kind), str(status)): int(count) for kind, status, count in rows}

    # Retention, across users: each table's rule, by its indexed time columns.

    async def prune_jobs(self, finished_before: float) -> int:
        """Jobs finished, or last heard of, before the given time."""
        return await (await self.ready()).execute(
            "DELETE FROM jobs WHERE COALESCE(finished_at, heartbeat_at) < ?", (finished_before,))

    async def prune_renders(self, unfinished_before: float, finished_before: float) -> int:
        return await (await self.ready()).execute(
            "DELETE FROM renders WHERE (status = 'rendering' AND started_at < ?) "
            "OR (status <> 'rendering' AND started_at < ?)", (unfinished_before, finished_before))

    async def prune_projects(self, unused_before: float) -> int:
        """Projects unused since the given time, never a current one; then pointers to projects that are gone."""
        database = await self.ready()
        removed = await database.execute(
            "DELETE FROM projects WHERE last_used_at < ? AND NOT EXISTS (SELECT 1 FROM current_projects c "
            "WHERE c.user_id = projects.user_id AND c.session_id = projects.session_id)", (unused_before,))
        await database.execute(
            "DELETE FROM current_projects WHERE NOT EXISTS (SELECT 1 FROM projects p "
            "WHERE p.user_id = current_projects.user_id AND p.session_id = current_projects.session_id)")
        return removed

    async def prune_tokens(self, kept_api_url: str, expired_before: float) -> int:
        """Tokens of other API hosts expired before the given time; `kept_api_url`'s stay until rejected."""
        return await (await self.ready()).execute(
            "DELETE FROM tokens WHERE api_url <> ? AND COALESCE(expires_at, 0) < ?", (kept_api_url, expired_before))


class UserStore:
    """The store as one user sees it: every statement is scoped to `user_id`."""

    def __init__(self, store: Store, user_id: str) -> None:
        self.store = store
        self.user_id = user_id

    async def _database(self) -> Database:
        return await self.store.ready()

    async def get(self, table: Table, key: str) -> Document | None:
        rows = await (await self._database()).fetch(
            f"SELECT data FROM {table.name} WHERE user_id = ? AND {table.key} = ?", (self.user_id, key))
        return _decoded(rows[0][0]) if rows else None

    async def put(self, table: Table, key: str, record: Document) -> None:
        await (await self._database()).execute(*_upsert(table, self.user_id, key, record))

    async def update(self, table: Table, key: str, change: Change) -> Document | None:
        """Apply `change` to the stored record (None: absent) atomically across processes; None from it deletes."""
        database = await self._database()
        async with database.transaction(f"{table.name}|{self.user_id}|{key}") as transaction:
            rows = await transaction.fetch(
                f"SELECT data FROM {table.name} WHERE user_id = ? AND {table.key} = ?", (self.user_id, key))
            changed = change(_decoded(rows[0][0]) if rows else None)
            if changed is None:
                if rows:
                    await transaction.execute(f"DELETE FROM {table.name} WHERE user_id = ? AND {table.key} = ?",
                                              (self.user_id, key))
            else:
                await transaction.execute(*_upsert(table, self.user_id, key, changed))
        return changed

    async def delete(self, table: Table, key: str) -> None:
        await (await self._database()).execute(
            f"DELETE FROM {table.name} WHERE user_id = ? AND {table.key} = ?", (self.user_id, key))

    def lock(self, purpose: str) -> AbstractAsyncContextManager[None]:
        """This user's exclusive lock for `purpose` in every process: minting a token, creating a project."""
        return self.store.database.lock(f"{self.user_id}|{purpose}")

    async def job_changed(self, job_id: str) -> None:
        """Wake whoever follows this job in `wait_for_job`, in any process the database can reach."""
        await (await self._database()).notify(f"job|{self.user_id}|{job_id}")

    async def wait_for_job(self, job_id: str, timeout: float) -> None:
        """Return when the job's record changed, or after `timeout`. PostgreSQL wakes a follower in any replica;
        SQLite only in this process, so another process's change is found by looking again soon."""
        database = await self._database()
        if database.dialect == "sqlite":
            timeout = min(timeout, SQLITE_LOOK_AGAIN_SECONDS)
        await database.changed(f"job|{self.user_id}|{job_id}", timeout)

    async def live_jobs(self, kinds: tuple[str, ...], heard_after: float, *, session_id: str | None = None,
                        key: str | None = None) -> list[Document]:
        """Running jobs of these kinds whose process was heard of after the given time, oldest first."""
        sql = (f"SELECT data FROM jobs WHERE user_id = ? AND status = 'running' AND kind IN "
               f"({', '.join('?' for _ in kinds)}) AND heartbeat_at > ?")
        params: list[Any] = [self.user_id, *kinds, heard_after]
        if session_id is not None:
            sql += " AND session_id = ?"
            params.append(session_id)
        if key is not None:
            sql += " AND job_key = ?"
            params.append(key)
        rows = await (await self._database()).fetch(sql + " ORDER BY heartbeat_at", params)
        return [record for (raw,) in rows if (record := _decoded(raw)) is not None]

    async def spending_questions(self, session_id: str) -> list[Document]:
        """The spending questions asked in this project (a request that waits for the user's agreement), newest
        first; the last few, which is as far back as anyone answers."""
        rows = await (await self._database()).fetch(
            "SELECT data FROM jobs WHERE user_id = ? AND kind = 'ask' AND session_id = ? AND status = 'done' "
            "ORDER BY finished_at DESC LIMIT 10", [self.user_id, session_id])
        return [record for (raw,) in rows if (record := _decoded(raw)) is not None]

    async def turn_ended_since(self, session_id: str, since: float) -> bool:
        """Whether a turn on this project ended after the given time, in any process."""
        rows = await (await self._database()).fetch(
            "SELECT 1 FROM jobs WHERE user_id = ? AND kind = 'turn' AND session_id = ? AND finished_at > ? LIMIT 1",
            [self.user_id, session_id, since])
        return bool(rows)

    async def projects(self, api_url: str) -> list[Document]:
        """This user's projects of one API host, most recently used first."""
        rows = await (await self._database()).fetch(
            "SELECT data FROM projects WHERE user_id = ? AND api_url = ? ORDER BY last_used_at DESC",
            (self.user_id, api_url))
        return [record for (raw,) in rows if (record := _decoded(raw)) is not None]

    async def renders(self, api_url: str, session_id: str, draft_hash: str | None = None) -> list[Document]:
        """A project's renders (of this exact draft, when given), newest first."""
        of_draft = " AND draft_hash = ?" if draft_hash is not None else ""
        rows = await (await self._database()).fetch(
            f"SELECT data FROM renders WHERE user_id = ? AND session_id = ? AND api_url = ?{of_draft} "
            "ORDER BY started_at DESC",
            (self.user_id, session_id, api_url, *(() if draft_hash is None else (draft_hash,))))
        return [record for (raw,) in rows if (record := _decoded(raw)) is not None]


def _upsert(table: Table, user_id: str, key: str, record: Document) -> tuple[str, list[Any]]:
    names = [table.key, *table.columns, "data"]
    values = [key, *(extract(record) for extract in table.columns.values()),
              json.dumps(record, ensure_ascii=False)]
    return (f"INSERT INTO {table.name} (user_id, {', '.join(names)}) VALUES ({', '.join('?' for _ in range(len(names) + 1))}) "
            f"ON CONFLICT (user_id, {table.key}) DO UPDATE SET "
            + ", ".join(f"{name} = excluded.{name}" for name in names[1:]), [user_id, *values])


def open_store(config_dir: Path, state_dir: Path) -> Store:
    """The local store: one SQLite file; nothing is read or created until its first use."""
    return Store(SqliteDatabase(state_dir / STORE_FILE), legacy_dirs=(config_dir, state_dir))


def open_store_for(settings: Settings) -> Store:
    """PostgreSQL when NEMO_DATABASE_URL names one, else the local file; nothing is connected before first use."""
    if settings.database_url is None:
        return open_store(settings.config_dir, settings.state_dir)
    from .postgres import PostgresDatabase  # psycopg: only a deployment with a database imports it

    return Store(PostgresDatabase(settings.database_url.get_secret_value()))


# Earlier versions: one table of JSON documents by collection, all of the one local user.
_DOCUMENT_TABLES = {"job": JOBS, "render": RENDERS, "project": PROJECTS, "current_project": CURRENT_PROJECTS,
                    "anonymous_token": TOKENS}
# Where an earlier version kept its one project per API host: the project, made current for any variant
# that has none yet (sessions.py).
LEGACY_SCOPE = "legacy|"


class _Importer(UserStore):
    """The local user's store while `Store.ready` moves earlier versions' data in: the tables exist already."""

    async def _database(self) -> Database:
        return self.store.database


async def _import_documents(user: UserStore) -> None:
    """Move the documents of an earlier version's store into the tables once; an entry already there wins."""
    database = user.store.database
    async with database.lock("import documents"):
        found = await database.fetch("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'documents'")
        if not found:
            return
        for collection, key, raw in await database.fetch("SELECT collection, key, value FROM documents"):
            document = _decoded(raw)
            if document is None:
                continue
            if collection == "legacy_current":
                await _adopt_legacy_project(user, key, document)
            elif collection in _DOCUMENT_TABLES:
                await user.update(_DOCUMENT_TABLES[collection], key,
                                  lambda existing, document=document: existing or document)
        await database.execute("DROP TABLE documents")
        log.info("Moved the store's documents into its tables")


async def _adopt_legacy_project(user: UserStore, api_url: str, project: Document) -> None:
    session_id = project.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        return
    await user.update(PROJECTS, session_id, lambda existing: existing or {"api_url": api_url, **project})
    await user.update(CURRENT_PROJECTS, LEGACY_SCOPE + api_url,
                      lambda existing: existing or {"session_id": session_id})


# The JSON files of versions before the store, and where each one's entries go.
_LEGACY_FILES = (("config", "anonymous_token.json", TOKENS), ("state", "session.json", None),
                 ("state", "renders.json", RENDERS))


async def _import_json_files(user: UserStore, config_dir: Path, state_dir: Path) -> None:
    """Bring the JSON files of earlier versions into the store once, then remove them; an entry already
    in the store wins, so a second process migrating at the same moment changes nothing."""
    for folder, name, table in _LEGACY_FILES:
        path = (config_dir if folder == "config" else state_dir) / name
        if not path.is_file():
            continue
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            entries = {}
        for key, value in entries.items() if isinstance(entries, dict) else ():
            if not isinstance(value, dict):
                continue
            if table is None:  # session.json: one project per API host
                await _adopt_legacy_project(user, key, value)
            else:
                await user.update(table, key, lambda existing, value=value: existing or value)
        path.unlink(missing_ok=True)
        log.info("Moved %s into the store", name)

