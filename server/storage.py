"""Small private files in the config and state dirs (token cache, session, renders), and their locks.

Every file is written atomically with mode 0600 from its first byte: they hold
tokens or identify the user's projects.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o600)  # O_CREAT's mode does not apply to a leftover file
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_json_map(path: Path) -> dict[str, Any]:
    """The JSON object stored at `path`; empty when missing or unreadable (it is only a cache)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json_map(path: Path, entries: dict[str, Any]) -> None:
    write_private(path, json.dumps(entries, indent=2, ensure_ascii=False) + "\n")


def _open_lock_file(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)


@asynccontextmanager
async def file_lock(path: Path) -> AsyncIterator[None]:
    """An exclusive lock across processes that may be held over network calls."""
    fd = _open_lock_file(path)
    try:
        # flock blocks; a worker thread keeps the event loop (and MCP pings) alive meanwhile.
        await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextmanager
def brief_lock(path: Path) -> Iterator[None]:
    """An exclusive lock held only around a read-modify-write of a small file; safe to take in the event loop."""
    fd = _open_lock_file(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
