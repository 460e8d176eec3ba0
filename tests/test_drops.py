"""Files dropped in a view, kept until whole (issue 17's drop zone): what the server refuses to keep, and what it
removes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from nemovideo_mcp.drops import ABANDONED_AFTER_SECONDS, MAX_PART_BYTES, prune, receive, staged
from nemovideo_mcp.errors import InvalidInput


@pytest.mark.parametrize("name", ["", ".", "..", "a/b.mp4", "a\\b.mp4"])
def test_a_drop_is_kept_under_its_own_folder_never_a_path_of_its_own(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidInput):
        staged(tmp_path, "0123456789abcdef", name)
    with pytest.raises(InvalidInput):
        staged(tmp_path, "../../etc", "song.mp3")


def test_a_part_out_of_order_or_past_the_size_ends_the_drop(tmp_path: Path) -> None:
    path = staged(tmp_path, "0123456789abcdef", "song.mp3")
    assert receive(path, 10, 0, b"12345") == 5
    with pytest.raises(InvalidInput, match="went missing"):
        receive(path, 10, 7, b"xyz")
    assert not path.parent.exists()  # nothing kept after a refusal
    receive(path, 10, 0, b"12345")
    with pytest.raises(InvalidInput, match="grew"):
        receive(path, 10, 5, b"123456")
    with pytest.raises(InvalidInput, match="at most"):
        receive(path, 10 ** 9, 0, b"x" * (MAX_PART_BYTES + 1))


def test_a_drop_abandoned_a_day_ago_is_removed_when_another_begins(tmp_path: Path) -> None:
    old, fresh = staged(tmp_path, "old-drop-0001", "a.mp3"), staged(tmp_path, "new-drop-0001", "b.mp3")
    receive(old, 10, 0, b"123")
    receive(fresh, 10, 0, b"123")
    long_ago = time.time() - ABANDONED_AFTER_SECONDS - 60
    os.utime(old.parent, (long_ago, long_ago))
    prune(tmp_path / "drops", time.time())
    assert not old.parent.exists() and fresh.exists()
