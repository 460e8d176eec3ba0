"""After an export, hosts that show images but no player get a contact sheet of the video (issue 17)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from mcp import Client
from mcp.types import ImageContent
from PIL import Image

from nemovideo_mcp.preview import FRAMES, MAX_SHEET_BYTES, contact_sheet
from nemovideo_mcp.tools import build_server

pytestmark = pytest.mark.anyio

GENERATE = "create a video with visuals synced to this music track"


async def test_an_export_comes_with_a_small_contact_sheet_of_the_video(sandbox, settings, identity,
                                                                       tmp_path: Path) -> None:
    sandbox.late_write_seconds = None
    sandbox.real_renders = False  # the placeholder clip: what is tested is how the file travels, not its frames
    sandbox.render_seconds = 0.5
    out_settings = settings.model_copy(update={"output_dir": tmp_path / "out"})
    async with Client(build_server(out_settings, identity)) as client:
        await client.call_tool("chat", {"message": GENERATE})
        exported = await client.call_tool("export", {})
    assert exported.structured_content["status"] == "done", exported.content[0].text
    [sheet] = [block for block in exported.content if block.type == "image"]
    ImageContent.model_validate(sheet.model_dump())
    data = base64.b64decode(sheet.data)
    assert sheet.mime_type == "image/jpeg" and len(data) <= MAX_SHEET_BYTES
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "JPEG" and picture.width == FRAMES * 240
    assert "image" not in str(exported.structured_content)  # the picture is content, not data for the model


def test_a_file_that_is_not_a_video_has_no_contact_sheet(tmp_path: Path) -> None:
    not_video = tmp_path / "notes.mp4"
    not_video.write_bytes(b"not a video at all")
    assert contact_sheet(not_video) is None


def test_a_video_is_decoded_once_per_version_of_its_file(tmp_path: Path) -> None:
    """Every `wait` or `tasks/get` that reports an export builds its result again: the sheet is decoded once."""
    import os
    import shutil

    from nemovideo_mcp.sandbox.studio import PLACEHOLDER

    video = tmp_path / "take.mp4"
    shutil.copyfile(PLACEHOLDER, video)
    first = contact_sheet(video)
    assert first is not None and contact_sheet(video) is first
    seen = video.stat()
    os.utime(video, ns=(seen.st_atime_ns, seen.st_mtime_ns + 1_000_000_000))  # the file written again
    again = contact_sheet(video)
    assert again == first and again is not first
