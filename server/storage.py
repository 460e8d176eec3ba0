"""Small private files in the config dir (client id, account token) and cross-process locks.

Every file is written atomically with mode 0600 from its first byte: they hold tokens
or identify the user. Everything else that must outlive a process is in `store.py`.
The locks come from `filelock`: flock on Linux and macOS, LockFileEx on Windows.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path


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


@asynccontextmanager
async def file_lock(path: Path) -> AsyncIterator[None]:
    """An exclusive lock across processes and tasks that may be held over network calls.

    The async lock waits in a worker thread, so the event loop (and MCP pings) stay alive, and
    two tasks of one process exclude each other as two processes do.
    """
    from filelock import AsyncFileLock  # at first use: a start that takes no lock is faster without it

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    async with AsyncFileLock(path, mode=0o600):
        yield
