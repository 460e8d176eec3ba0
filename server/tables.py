"""The store's tables: which records there are, their key within a user, and the columns each lookup
and retention rule needs, copied out of the record (a JSON document) on every write.

Apart from `store.py` so that modules naming a table (jobs, exports, sessions) import no database code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Document = dict[str, Any]


def _number(value: Any, default: float | None = None) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Table:
    """A table of one kind of record: its key within a user, and the columns copied out of each record."""

    name: str
    key: str
    columns: Mapping[str, Callable[[Document], Any]]


JOBS = Table("jobs", "job_id", {
    "kind": lambda job: str(job.get("kind") or ""),
    "status": lambda job: str(job.get("status") or ""),
    "session_id": lambda job: _text((job.get("facts") or {}).get("session_id")),
    "job_key": lambda job: _text(job.get("key")),
    "heartbeat_at": lambda job: _number(job.get("heartbeat_at"), 0.0),
    "finished_at": lambda job: _number(job.get("finished_at")),
})
RENDERS = Table("renders", "render_id", {
    "api_url": lambda render: _text(render.get("api_url")),
    "session_id": lambda render: _text(render.get("session_id")),
    "draft_hash": lambda render: _text(render.get("draft_hash")),
    "status": lambda render: str(render.get("status") or ""),
    "started_at": lambda render: _number(render.get("started_at"), 0.0),
})
PROJECTS = Table("projects", "session_id", {
    "api_url": lambda project: _text(project.get("api_url")),
    "last_used_at": lambda project: _number(project.get("last_used_at"), 0.0),
})
# Which project is current, per skill variant and API host (`scope`).
CURRENT_PROJECTS = Table("current_projects", "scope", {
    "session_id": lambda pointer: str(pointer.get("session_id") or ""),
})
# The anonymous token of each API host.
TOKENS = Table("tokens", "api_url", {
    "expires_at": lambda token: _number(token.get("expires_at")),
})
# A hosted user's identity at each API host: the client id their anonymous tokens are minted for (a local
# server keeps its one client id in a file the official skill shares), and the account token they linked on
# our page (sealed).
ACCOUNTS = Table("accounts", "api_url", {})
TABLES = (JOBS, RENDERS, PROJECTS, CURRENT_PROJECTS, TOKENS, ACCOUNTS)

# Both engines take these types: TEXT (JSON as text), DOUBLE PRECISION (epoch seconds).
_COLUMN_TYPES = {"heartbeat_at": "DOUBLE PRECISION NOT NULL", "finished_at": "DOUBLE PRECISION",
                 "started_at": "DOUBLE PRECISION NOT NULL", "last_used_at": "DOUBLE PRECISION NOT NULL",
                 "expires_at": "DOUBLE PRECISION", "kind": "TEXT NOT NULL", "status": "TEXT NOT NULL"}


def _create(table: Table) -> str:
    columns = "".join(f", {name} {_COLUMN_TYPES.get(name, 'TEXT')}" for name in table.columns)
    return (f"CREATE TABLE {table.name} (user_id TEXT NOT NULL, {table.key} TEXT NOT NULL{columns}, "
            f"data TEXT NOT NULL, PRIMARY KEY (user_id, {table.key}))")


# Schema versions, in order; each runs once per database (database.migrate). Lookups a user makes go by
# (user_id, …); housekeeping across users goes by the time columns.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        *(_create(table) for table in TABLES),
        "CREATE INDEX jobs_live ON jobs (user_id, status, kind)",
        "CREATE INDEX jobs_heartbeat ON jobs (status, heartbeat_at)",
        "CREATE INDEX renders_of_draft ON renders (user_id, session_id, draft_hash)",
        "CREATE INDEX renders_age ON renders (status, started_at)",
        "CREATE INDEX projects_recent ON projects (user_id, api_url, last_used_at)",
        "CREATE INDEX projects_age ON projects (last_used_at)",
    ),
)
