"""Files the user drops in a view of a local server (issue 17's drop zone). A host's frame can reach the server only
through the view's tool calls, so a file arrives in parts of bounded size; it is kept in the state folder until
whole, then uploaded exactly as `upload` uploads a path, and removed. Nothing is kept after a refusal."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

from pydantic import Field

from .errors import InvalidInput
from .results import ToolResult

# A part as the view sends it: 192 KiB, 256 KiB once base64, far below hosts' message limits.
MAX_PART_BYTES = 192 * 1024
UPLOAD_ID = re.compile(r"[A-Za-z0-9-]{8,64}")


class DropReceived(ToolResult):
    upload_id: str
    name: str
    received: int = Field(description="bytes received so far")
    size: int

    def as_text(self) -> str:
        return f"Received {self.received} of {self.size} bytes of {self.name}."


# A drop left unfinished (the view closed mid-file) is removed when a later drop begins, after this long.
ABANDONED_AFTER_SECONDS = 24 * 3600


def staged(state_dir: Path, upload_id: str, name: str) -> Path:
    """Where a drop's bytes wait: its own folder, under the name the user's file has (never a path of its own)."""
    if not UPLOAD_ID.fullmatch(upload_id):
        raise InvalidInput("That drop has no usable id: drop the file again.")
    if name in ("", ".", "..") or "/" in name or "\\" in name:
        raise InvalidInput("That file has no usable name: rename it and drop it again.")
    return state_dir / "drops" / upload_id / name


def prune(drops: Path, now: float) -> None:
    """Drops abandoned long ago (blocking)."""
    for folder in drops.glob("*"):
        try:
            if now - folder.stat().st_mtime > ABANDONED_AFTER_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except FileNotFoundError:
            continue


def receive(path: Path, size: int, offset: int, data: bytes) -> int:
    """Part `data` written at `offset` (blocking); the bytes received so far. A part out of order, or past the size
    the first part announced, ends the drop."""
    if len(data) > MAX_PART_BYTES:
        raise InvalidInput(f"A part of a dropped file may hold {MAX_PART_BYTES} bytes at most.")
    if offset == 0:
        prune(path.parent.parent, time.time())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    elif not path.is_file() or path.stat().st_size != offset:
        forget(path)
        raise InvalidInput(f"Part of {path.name} went missing on the way: drop the file again.")
    if offset + len(data) > size:
        forget(path)
        raise InvalidInput(f"{path.name} grew while it was being sent: drop the file again.")
    with path.open("ab") as file:
        file.write(data)
    return offset + len(data)


def forget(path: Path) -> None:
    shutil.rmtree(path.parent, ignore_errors=True)
