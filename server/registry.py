"""Each user's `VideoService`, started by their first tool call and stopped with the server.

A host starts the server, then asks for its tools (and some never call one): the service's modules, its
store and its background work are not needed for that, and leaving them to the first call keeps the start
as fast as a bare MCP server's (bench/coldstart.py). Each service runs in a task of the server's lifespan,
which enters and leaves it, whichever call started it; one that cannot start is a sentence for that call,
and the next call tries again.

Locally there is one user. A hosted server has one service per user who called recently, all over one
store; a service with nothing to do (no call in progress, no job running, nothing waiting to be shown)
is stopped after IDLE_SECONDS, so memory follows the users who are active, not all who ever came.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup, TaskStatus

from .housekeeping import keep_tidy
from .identity import SkillIdentity
from .settings import Settings
from .users import UserContext

if TYPE_CHECKING:
    from .service import VideoService
    from .store import Store

IDLE_SECONDS = 15 * 60.0
REAP_EVERY_SECONDS = 60.0


@dataclass
class _Running:
    service: VideoService
    stop: anyio.Event
    calls: int = 0
    last_used: float = field(default_factory=anyio.current_time)


class ServiceRegistry:
    def __init__(self, settings: Settings, identity: SkillIdentity, owner: TaskGroup, store: Callable[[], Store],
                 clock: Callable[[], float] = anyio.current_time) -> None:
        self._settings, self._identity, self._owner, self._clock = settings, identity, owner, clock
        self._shared_store = store
        self._running: dict[str, _Running] = {}
        self._starting = anyio.Lock()
        self._stopping = anyio.Event()
        self._reaping = False
        self._tidying = anyio.CancelScope()

    @property
    def hosted(self) -> bool:
        return self._settings.hosted


    @asynccontextmanager
    async def using(self, user: UserContext) -> AsyncIterator[VideoService]:
        """`user`'s service, kept running while the caller uses it."""
        running = self._running.get(user.user_id)
        if running is None:
            async with self._starting:
                running = self._running.get(user.user_id)
                if running is None:
                    if not self._reaping:
                        self._reaping = True
                        self._owner.start_soon(self._reap_idle, name="idle services")
                        self._owner.start_soon(self._keep_tidy, name="housekeeping")
                    stop = anyio.Event()
                    service = await self._owner.start(self._serve, user, stop)
                    running = self._running[user.user_id] = _Running(service, stop)
        running.calls += 1
        try:
            yield running.service
        finally:
            running.calls -= 1
            running.last_used = self._clock()

    async def _serve(self, user: UserContext, stop: anyio.Event, *, task_status: TaskStatus[VideoService]) -> None:
        from .service import VideoService

        async with VideoService(self._settings, self._identity, user=user, store=self._shared_store()) as service:
            task_status.started(service)
            await stop.wait()

    async def _keep_tidy(self) -> None:
        # Cancelled when the server stops, even mid-statement: the next start tidies again.
        with self._tidying:
            await keep_tidy(self._shared_store(), self._settings.api_url)

    async def _reap_idle(self) -> None:
        while not self._stopping.is_set():
            with anyio.move_on_after(REAP_EVERY_SECONDS):
                await self._stopping.wait()
            self.reap_idle()

    def reap_idle(self) -> list[str]:
        """Stop the services idle for IDLE_SECONDS; the users whose service stopped."""
        now = self._clock()
        idle = [user_id for user_id, running in self._running.items()
                if running.calls == 0 and now - running.last_used >= IDLE_SECONDS and not running.service.busy]
        for user_id in idle:
            self._running.pop(user_id).stop.set()
        return idle

    def stop(self) -> None:
        self._stopping.set()
        self._tidying.cancel()
        for running in self._running.values():
            running.stop.set()
