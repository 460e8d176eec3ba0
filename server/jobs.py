"""Long work behind handles: a chat turn runs up to 15 minutes, hosts end tool calls after ~60 s.

A job runs in a task group owned by the server (not by the tool call that started it),
so a host's timeout or cancellation ends only the waiting, never the work. A tool waits
at most `wait_seconds`, reporting progress, then hands back the job id; `wait` resumes.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

from .errors import NemoError
from .logs import get_logger

log = get_logger("jobs")

ResultT = TypeVar("ResultT")

# How often a waiting tool call reports progress when nothing else happens; hosts such as
# Claude Code restart their timeout clock on every progress notification.
PROGRESS_EVERY_SECONDS = 10.0
FINISHED_JOBS_KEPT = 50


class UnknownJob(NemoError):
    default_message = (
        "There is no running job with that id (it may belong to an earlier server run). "
        "Check the result with the state tool, or send the request again."
    )


class JobCancelled(NemoError):
    default_message = "This job was cancelled."


class JobCrashed(NemoError):
    default_message = "Something went wrong inside the skill while working on this. Please try again."


def format_elapsed(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


class Job(Generic[ResultT]):
    def __init__(self, kind: str, key: str | None = None) -> None:
        self.id = f"{kind}_{uuid.uuid4().hex[:12]}"
        self.kind = kind
        self.key = key  # what the job works on (a render id), so a second request joins it
        self.started_at = anyio.current_time()
        self.step = "Starting…"
        self.partial_text = ""
        self.result: ResultT | None = None
        self.error: NemoError | None = None
        self.finished = anyio.Event()
        self._changed = anyio.Event()
        # Created now, entered when the work starts: a cancel that comes first still stops it.
        self._scope = anyio.CancelScope()

    @property
    def elapsed(self) -> float:
        return anyio.current_time() - self.started_at

    def update(self, step: str) -> None:
        if step != self.step:
            self.step = step
            self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def finish(self) -> None:
        self.finished.set()
        self._notify()

    async def next_change(self) -> None:
        await self._changed.wait()

    def cancel(self, outcome: ResultT | None = None) -> bool:
        """Stop the work; a later `wait` gets `outcome` when given, else JobCancelled. False when already finished."""
        if self.finished.is_set():
            return False
        if outcome is None:
            self.error = JobCancelled()
        else:
            self.result = outcome
        self._scope.cancel()
        return True


ProgressCallback = Callable[[Job], Awaitable[None]]


class JobRunner:
    """Starts jobs in its own task group; an async context manager that outlives tool calls."""

    def __init__(self) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._task_group: TaskGroup | None = None

    async def __aenter__(self) -> JobRunner:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        assert self._task_group is not None
        # Server shutdown: running work cannot be waited for any more.
        self._task_group.cancel_scope.cancel()
        return await self._task_group.__aexit__(exc_type, exc, tb)

    def start(self, kind: str, work: Callable[[Job[ResultT]], Awaitable[ResultT]],
              key: str | None = None) -> Job[ResultT]:
        if self._task_group is None:
            raise RuntimeError("JobRunner is not running; use it as an async context manager")
        job: Job[ResultT] = Job(kind, key)
        self._remember(job)

        async def run() -> None:
            try:
                with job._scope:  # a cancelled job keeps the outcome `cancel` gave it
                    job.result = await work(job)
            except NemoError as error:
                job.error = error
            except Exception:
                log.exception("Job %s crashed", job.id)
                job.error = JobCrashed()
            finally:
                job.finish()

        self._task_group.start_soon(run, name=job.id)
        return job

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id.strip())
        if job is None:
            raise UnknownJob()
        return job

    def running(self, kind: str, key: str | None = None) -> Job | None:
        """An unfinished job of this kind (and, when given, working on this key)."""
        return next((job for job in self._jobs.values()
                     if job.kind == kind and (key is None or job.key == key) and not job.finished.is_set()), None)

    def _remember(self, job: Job) -> None:
        self._jobs[job.id] = job
        finished = [key for key, known in self._jobs.items() if known.finished.is_set()]
        for key in finished[: max(0, len(finished) - FINISHED_JOBS_KEPT)]:
            del self._jobs[key]

    @staticmethod
    async def wait(job: Job, wait_seconds: float, on_progress: ProgressCallback | None = None) -> bool:
        """Wait up to `wait_seconds` for the job, reporting progress; True when it finished."""
        deadline = anyio.current_time() + max(0.0, wait_seconds)
        while not job.finished.is_set():
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                break
            with anyio.move_on_after(min(remaining, PROGRESS_EVERY_SECONDS)):
                await job.next_change()
            if on_progress is not None and not job.finished.is_set():
                await on_progress(job)
        return job.finished.is_set()
