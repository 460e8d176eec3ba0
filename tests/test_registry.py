"""A server keeps one service per user who called recently, and stops those with nothing left to do."""

from __future__ import annotations

import anyio
import pytest

from nemovideo_mcp.registry import IDLE_SECONDS, ServiceRegistry
from nemovideo_mcp.store import open_store
from nemovideo_mcp.users import UserContext

pytestmark = pytest.mark.anyio


async def test_each_user_gets_one_service_and_an_idle_one_stops_unless_its_work_goes_on(
        sandbox, quick_settings, identity) -> None:
    now = [1000.0]
    alice, bob = UserContext("issuer|alice"), UserContext("issuer|bob")
    async with anyio.create_task_group() as owner:
        store = open_store(quick_settings.config_dir, quick_settings.state_dir)
        registry = ServiceRegistry(quick_settings, identity, owner, lambda: store, clock=lambda: now[0])
        async with registry.using(alice) as first, registry.using(alice) as again, registry.using(bob) as other:
            assert first is again and first is not other
            assert first.store.user_id == alice.user_id and other.store.user_id == bob.user_id
            sandbox.turn_seconds = 5.0
            working = await first.chat("create a video of a city at night", wait_seconds=0)
            now[0] += IDLE_SECONDS
            assert registry.reap_idle() == []  # both in a call
        assert registry.reap_idle() == []  # used a moment ago
        now[0] += IDLE_SECONDS
        assert registry.reap_idle() == [bob.user_id]  # Alice's turn is still running
        async with registry.using(bob) as restarted:
            assert restarted is not other  # started again at the next call
        assert (await first.cancel(working.job_id)).kind == "turn"
        await first.jobs.get(working.job_id).finished.wait()
        now[0] += IDLE_SECONDS
        assert sorted(registry.reap_idle()) == [alice.user_id, bob.user_id]
        registry.stop()


async def test_the_tables_are_tidied_once_per_server_not_once_per_user(sandbox, quick_settings, identity,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(quick_settings.config_dir, quick_settings.state_dir)
    tidied = anyio.Event()
    runs: list[float] = []

    async def prune_jobs(before: float) -> int:
        runs.append(before)
        tidied.set()
        return 0

    monkeypatch.setattr(store, "prune_jobs", prune_jobs)
    async with anyio.create_task_group() as owner:
        registry = ServiceRegistry(quick_settings, identity, owner, lambda: store)
        for number in range(3):
            async with registry.using(UserContext(f"issuer|user{number}")):
                pass
        with anyio.fail_after(5):
            await tidied.wait()
        registry.stop()
    await store.aclose()
    assert len(runs) == 1
