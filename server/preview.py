"""A contact sheet of an exported video: a few frames in one small JPEG, for hosts that show images but no player.

Decoded with the `render` extra (PyAV, Pillow) when it is installed; without it there is no picture, and no error.
Kept far inside host limits: Claude Code counts an image toward its 25k-token result cap and Claude Desktop
refuses results over 1 MB, so the sheet is a strip of small frames at modest JPEG quality (tens of KB).
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from .logs import get_logger

log = get_logger("preview")

FRAMES = 4
FRAME_WIDTH = 240
JPEG_QUALITY = 70
# Far below the hosts' limits (a 1 MB result, a 25k-token cap); a sheet over it is not sent.
MAX_SHEET_BYTES = 120_000


def contact_sheet(path: Path) -> bytes | None:
    """FRAMES frames taken evenly through the video, side by side, as JPEG; None without the render extra or for
    a file that cannot be decoded."""
    try:
        seen = path.stat()
    except OSError:
        return None
    return _sheet_of_version(str(path), seen.st_mtime_ns, seen.st_size)


# An export's result is built again on every `wait` and `tasks/get` that reports it: decoded once per file version.
@functools.lru_cache(maxsize=8)
def _sheet_of_version(name: str, mtime_ns: int, size: int) -> bytes | None:
    path = Path(name)
    try:
        import av
        from PIL import Image
    except ImportError:
        return None
    try:
        frames = _frames(av, path)
    except (av.FFmpegError, OSError, ValueError) as error:
        log.info("No contact sheet for %s: %s", path.name, error)
        return None
    if not frames:
        return None
    height = max(1, round(FRAME_WIDTH * frames[0].height / frames[0].width))
    sheet = Image.new("RGB", (FRAME_WIDTH * len(frames), height))
    for index, frame in enumerate(frames):
        sheet.paste(frame.resize((FRAME_WIDTH, height)), (index * FRAME_WIDTH, 0))
    out = io.BytesIO()
    sheet.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    data = out.getvalue()
    return data if len(data) <= MAX_SHEET_BYTES else None


def _frames(av, path: Path) -> list:
    """One frame at the middle of each of FRAMES equal parts of the video (seeking, not decoding it all)."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            return []
        stream = container.streams.video[0]
        duration = (float(container.duration) / 1_000_000) if container.duration else None
        if not duration:
            return [next(container.decode(stream)).to_image()]
        frames = []
        for part in range(FRAMES):
            at = duration * (part + 0.5) / FRAMES
            container.seek(int(at * 1_000_000), any_frame=False, backward=True)
            for frame in container.decode(stream):
                if frame.time is None or frame.time >= at - 0.05:
                    frames.append(frame.to_image())
                    break
        return frames
