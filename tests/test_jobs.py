"""The job runner: which of this process's jobs works on a key."""

from __future__ import annotations

import anyio
import pytest

from nemovideo_mcp.jobs import JobRunner
from nemovideo_mcp.store import open_store

pytestmark = pytest.mark.anyio


async def test_a_cancelled_job_still_saving_its_outcome_no_longer_hides_the_one_after_it(tmp_path) -> None:
    """Found in CI: a turn cancelled the previous watch of its project, the next turn found that watch (cancelled,
    its outcome still being written) instead of the newer one, and the newer one went on to report the next
    turn's own edit as late work."""
    async with JobRunner(open_store(tmp_path / "config", tmp_path / "state").for_user("local")) as runner:
        async def watch(job) -> str:
            await anyio.sleep_forever()

        older = await runner.start("follow_up", watch, key="session_1")
        newer = await runner.start("follow_up", watch, key="session_1")
        assert runner.running("follow_up", "session_1") is older
        older.cancel("superseded")  # its task has not run since: it is not finished yet
        assert not older.finished.is_set()
        assert runner.running("follow_up", "session_1") is newer
        newer.cancel("superseded")
        assert runner.running("follow_up", "session_1") is None
        with anyio.fail_after(5):
            await older.finished.wait()
        assert older.result == "superseded"
