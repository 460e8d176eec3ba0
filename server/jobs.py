"""Long work behind handles: a chat turn runs up to 15 minutes, hosts end tool calls after ~60 s.

A job runs in a task group owned by the server (not by the tool call that started it),
so a host's timeout or cancellation ends only the waiting, never the work. A tool waits
at most `wait_seconds`, reporting progress, then hands back the job id; `wait` resumes.

Every job is also recorded in the durable store (its step, a heartbeat, and at the end its
result or error), so a handle outlives the process that issued it: another server process,
or the same host after a restart, can follow it, and take over a job whose process died.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup

from .errors import NemoError, StoreUnavailable
from .logs import get_logger, redact_json

from .tables import JOBS

if TYPE_CHECKING:
    from .store import UserStore

log = get_logger("jobs")

ResultT = TypeVar("ResultT")
T = TypeVar("T")

# How often a waiting tool call reports progress when nothing else happens; hosts such as
# Claude Code restart their timeout clock on every progress notification.
PROGRESS_EVERY_SECONDS = 10.0
# How long a tool call waits for its job before it returns a handle for `wait`.
DEFAULT_WAIT_SECONDS = 45.0
FINISHED_JOBS_KEPT = 50
# A running job's process refreshes its heartbeat this often; one silent for STALE is taken over.
HEARTBEAT_SECONDS = 5.0
STALE_AFTER_SECONDS = 20.0
# How long a finished job's result can still be fetched with `wait` (stated in the tool's description).
FINISHED_JOB_LIFETIME_SECONDS = 24 * 3600


class UnknownJob(NemoError):
    default_message = (
        "There is no job with that id (job ids are kept for 24 hours). Check the project with the state tool "
        "before asking for anything again: the work may already be there."
    )


class JobCancelled(NemoError):
    default_message = "This job was cancelled."


# The outcome of a job whose caller was cancelled as it was being recorded: nothing was done or sent.
NEVER_STARTED = "This was stopped before it started; nothing was sent."


class JobCrashed(NemoError):
    default_message = "Something went wrong inside the skill while working on this. Please try again."


def format_elapsed(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s" if minutes else f"{rest}s"


class Job(Generic[ResultT]):
    def __init__(self, kind: str, key: str | None = None, job_id: str | None = None) -> None:
        self.id = job_id or f"{kind}_{uuid.uuid4().hex[:12]}"
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
        self.on_step: Callable[[Job], None] | None = None
        # What else a stop asked for from another process does, beside stopping the work (an export: its render).
        self.on_cancel_requested: Callable[[], Awaitable[None]] | None = None

    @property
    def elapsed(self) -> float:
        return anyio.current_time() - self.started_at

    def update(self, step: str) -> None:
        if step != self.step:
            self.step = step
            self._notify()
            if self.on_step is not None:
                self.on_step(self)

    def _notify(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()

    def finish(self) -> None:
        self.finished.set()
        self._notify()

    async def next_change(self) -> None:
        await self._changed.wait()

    @property
    def ending(self) -> bool:
        """Finished, or cancelled and saving its outcome: no longer the job that works on its key."""
        return self.finished.is_set() or self._scope.cancel_called

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

    def __init__(self, store: UserStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._task_group: TaskGroup | None = None
        self._saving_steps: set[str] = set()
        # Which runner holds a record (beside its process id: one process may run several, a replica's per user).
        self._runner = uuid.uuid4().hex

    async def __aenter__(self) -> JobRunner:
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._heartbeats, name="job heartbeats")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        assert self._task_group is not None
        # Server shutdown: running work stops here. Its records are marked orphaned at once, for the next process.
        with anyio.CancelScope(shield=True):
            for job in [job for job in self._jobs.values() if not job.finished.is_set()]:
                job.on_step = None
                await self._quietly(self._orphan(job.id), "mark orphaned")
        self._task_group.cancel_scope.cancel()
        return await self._task_group.__aexit__(exc_type, exc, tb)

    async def start(self, kind: str, work: Callable[[Job[ResultT]], Awaitable[ResultT]],
                    key: str | None = None, *, facts: dict[str, Any] | None = None,
                    job_id: str | None = None) -> Job[ResultT]:
        """Run `work` as a job; `facts` (JSON) are kept with its record for whoever takes it over.

        The record is written before the work starts: a store that cannot be used refuses the job
        (with its sentence) before anything is sent, instead of leaving work no handle can reach.
        """
        if self._task_group is None:
            raise RuntimeError("JobRunner is not running; use it as an async context manager")
        job: Job[ResultT] = Job(kind, key, job_id)
        now = self._clock()
        try:
            await self._store.update(JOBS, job.id, lambda existing: {
                **(existing or {"started_at": now, "facts": facts or {}}),
                "id": job.id, "kind": kind, "key": key, "status": "running", "step": job.step,
                "pid": os.getpid(), "runner": self._runner, "heartbeat_at": now, "updated_at": now,
            })
        except anyio.get_cancelled_exc_class():
            if job_id is not None:
                raise  # a taking over: its caller gives the record back (never "not started": it was sent)
            # The caller was cancelled (a host gave up on the call) as a new job's record was written: no work runs
            # under it, so it is ended at once. Left running, it would hold the project as a turn no one follows.
            job.error = JobCancelled(NEVER_STARTED)
            with anyio.CancelScope(shield=True):
                if await self._quietly(self.record(job.id), f"read {job.id}, which never started") is not None:
                    await self._quietly(self._save_outcome(job), f"end {job.id}, which never started")
            raise
        job.on_step = self._save_step_soon
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
                if job.error is not None or job.result is not None:
                    with anyio.CancelScope(shield=True):
                        await self._quietly(self._save_outcome(job), f"save the outcome of {job.id}")
                # else the server shut down mid-work: the record stays "running" (orphaned) for a taker
                job.finish()

        self._task_group.start_soon(run, name=job.id)
        return job

    def spawn(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Background work of the server's own (housekeeping) that lives and ends with the jobs."""
        if self._task_group is None:
            raise RuntimeError("JobRunner is not running; use it as an async context manager")
        self._task_group.start_soon(loop, name=name)

    def get(self, job_id: str) -> Job:
        job = self.local(job_id)
        if job is None:
            raise UnknownJob()
        return job

    def local(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    async def record(self, job_id: str) -> dict[str, Any] | None:
        return await self._store.get(JOBS, job_id)

    async def fact(self, job_id: str, name: str) -> Any:
        """One of the facts kept with a job's record, as it stands in the store now (None: none, or no such job)."""
        return ((await self.record(job_id) or {}).get("facts") or {}).get(name)

    def is_stale(self, record: dict[str, Any]) -> bool:
        return record.get("status") == "running" and (
            self._clock() - float(record.get("heartbeat_at") or 0) > STALE_AFTER_SECONDS)

    async def give_back(self, job_id: str) -> None:
        """A job claimed for a takeover whose work will not run here after all: the next taker takes it at once."""
        with anyio.CancelScope(shield=True):
            await self._quietly(self._orphan(job_id), f"give back {job_id}")

    async def _orphan(self, job_id: str) -> None:
        """Mark a running job's record as heard of just too long ago, so that the next process asked about it takes
        the work over without waiting for the heartbeat to age; retention still counts from now."""
        orphaned_at = self._clock() - STALE_AFTER_SECONDS - 1
        # Only a record this runner holds: another may have claimed it meanwhile (a claim of ours that was rolled
        # back), and its running work must not look abandoned.
        await self._store.update(JOBS, job_id, lambda record: record and (
            {**record, "heartbeat_at": orphaned_at} if record.get("runner") == self._runner else record))

    async def claim(self, job_id: str) -> bool:
        """Take over a stale job's record for this process; False when another process was first."""
        now = self._clock()
        claimed = False

        def change(record: dict | None) -> dict | None:
            nonlocal claimed
            if record is None or not self.is_stale(record):
                return record
            claimed = True
            return {**record, "pid": os.getpid(), "runner": self._runner, "heartbeat_at": now}

        try:
            await self._store.update(JOBS, job_id, change)
        except anyio.get_cancelled_exc_class():
            if claimed:  # written, and the caller cancelled before hearing so: nothing will run it here
                await self.give_back(job_id)
            raise
        return claimed

    # A task is a chain of jobs on its first job's record: `task_latest` the job it follows now, `task_answered` the
    # question already answered, `task_cancelled` its end. Each change below is one atomic step on that record, so
    # an answer and a cancel racing on any processes end one way or the other, never both.

    async def _change_task(self, task_id: str, decide: Callable[[dict[str, Any]], dict[str, Any] | None]) -> bool:
        """Apply `decide` to the task's facts (None: refused, nothing written); True when it was applied."""
        applied = False

        def change(record: dict | None) -> dict | None:
            nonlocal applied
            if record is None:
                return None
            facts = record.get("facts") or {}
            decided = decide(facts)
            if decided is None:
                return record
            applied = True
            now = self._clock()
            # A task is kept as long as its first job: a day from the task's last change, not from that job's end,
            # so a question answered late in its day keeps its task while the answer's work runs.
            kept = {"finished_at": now} if record.get("finished_at") is not None else {}
            return {**record, "updated_at": now, **kept, "facts": {**facts, **decided}}

        await self._store.update(JOBS, task_id, change)
        if applied:
            await self._store.job_changed(task_id)
        return applied

    async def claim_answer(self, task_id: str, question_job_id: str) -> bool:
        """The one answer to a task's question: False when another answer to the same question came first (two
        `tasks/update` at once, on any process), so its turn is never sent twice, or the task was cancelled."""
        return await self._change_task(task_id, lambda facts: None if (
            facts.get("task_cancelled") or facts.get("task_answered") == question_job_id
        ) else {"task_answered": question_job_id})

    async def release_answer(self, task_id: str) -> None:
        """An answer that started nothing: the question is open again."""
        await self._change_task(task_id, lambda facts: {"task_answered": None})

    async def adopt(self, task_id: str, job_id: str, *, replacing: str) -> bool:
        """`job_id`, started in place of `replacing` (the question it answers), becomes the job the task follows,
        unless the task was cancelled first (then False, and the job must send nothing): a cancel either comes
        before this and wins, or after it and sees the job to stop. Never backwards: once the task has moved past
        `replacing`, this changes nothing."""
        refused = False

        def decide(facts: dict[str, Any]) -> dict[str, Any] | None:
            nonlocal refused
            latest = str(facts.get("task_latest") or task_id)
            if latest == job_id:
                return None  # adopted already, before any cancel: a cancel since has stopped this very job
            if facts.get("task_cancelled"):
                refused = True
                return None
            return {"task_latest": job_id} if latest == replacing else None

        await self._change_task(task_id, decide)
        return not refused

    async def end_task(self, task_id: str, following: str) -> bool:
        """Mark the task cancelled if it still follows `following` and no cancel came first (False: look again)."""
        return await self._change_task(task_id, lambda facts: None if (
            facts.get("task_cancelled") or str(facts.get("task_latest") or task_id) != following
        ) else {"task_cancelled": True})

    async def being_cancelled(self, task_id: str) -> bool:
        """Whether a cancel has marked the task (done, or under way)."""
        return bool(await self.fact(task_id, "task_cancelled"))

    async def reopen_task(self, task_id: str) -> None:
        """A cancel that found the work already finished: the task is what the work made of it, not cancelled."""
        await self._change_task(task_id, lambda facts: {"task_cancelled": None})

    @property
    def busy(self) -> bool:
        return any(not job.finished.is_set() for job in self._jobs.values())

    def running(self, kind: str, key: str | None = None) -> Job | None:
        """An unfinished job of this process, of this kind (and, when given, working on this key). A cancelled one
        still saving its outcome is not: a watch cancelled by the previous turn must not hide the current one."""
        return next((job for job in self._jobs.values()
                     if job.kind == kind and (key is None or job.key == key) and not job.ending), None)

    def now(self) -> float:
        """The time as job records are stamped with it."""
        return self._clock()

    async def turn_ended_since(self, session_id: str, since: float) -> bool:
        """Whether a turn on this project ended after `since` (from `now`), in any process."""
        return await self._store.turn_ended_since(session_id, since)

    async def running_anywhere(self, kinds: tuple[str, ...], session_id: str | None = None, *,
                               key: str | None = None) -> dict[str, Any] | None:
        """A live job of any process (this one included) of these kinds, on this project and/or key, from the store."""
        live = await self._store.live_jobs(kinds, self._clock() - STALE_AFTER_SECONDS, session_id=session_id, key=key)
        return live[0] if live else None

    async def request_cancel(self, job_id: str) -> None:
        """Ask the process that runs a job to stop it (it looks at its next heartbeat)."""
        await self._store.update(JOBS, job_id, lambda record: record and {**record, "cancel_requested": True})

    async def note(self, job: Job, *, key: str | None = None, **facts: Any) -> None:
        """What a running job learned that a canceller or a taker needs (a render id it started)."""
        if key is not None:
            job.key = key
        await self.note_record(job.id, key=job.key, **facts)

    async def note_record(self, job_id: str, *, key: str | None = None, **facts: Any) -> None:
        """Facts kept with a job's record, running or finished (a task's latest job, its cancellation)."""
        now = self._clock()

        def change(record: dict | None) -> dict | None:
            if record is None:
                return None
            return {**record, "key": key if key is not None else record.get("key"), "updated_at": now,
                    "facts": {**(record.get("facts") or {}), **facts}}

        await self._store.update(JOBS, job_id, change)
        await self._store.job_changed(job_id)

    def _remember(self, job: Job) -> None:
        self._jobs[job.id] = job
        finished = [key for key, known in self._jobs.items() if known.finished.is_set()]
        for key in finished[: max(0, len(finished) - FINISHED_JOBS_KEPT)]:
            del self._jobs[key]

    def _save_step_soon(self, job: Job) -> None:
        """Steps change from synchronous code; the store is written in the background, the latest step winning."""
        if job.id in self._saving_steps or self._task_group is None:
            return
        self._saving_steps.add(job.id)

        async def save() -> None:
            try:
                await self._quietly(self._store.update(
                    JOBS, job.id, lambda record: record and {**record, "step": job.step, "updated_at": self._clock()}),
                    f"save the step of {job.id}")
                await self._quietly(self._store.job_changed(job.id), f"announce the step of {job.id}")
            finally:
                self._saving_steps.discard(job.id)

        self._task_group.start_soon(save)

    @staticmethod
    async def _quietly(write: Awaitable[T], what: str) -> T | None:
        """Background bookkeeping: a store that cannot be used is logged, and the work goes on."""
        try:
            return await write
        except StoreUnavailable as error:
            log.warning("Could not %s: %s", what, error.message)
            return None

    async def _save_outcome(self, job: Job) -> None:
        if job.error is not None:
            outcome = {"status": "cancelled" if isinstance(job.error, JobCancelled) else "failed",
                       "error": job.error.message, "error_type": type(job.error).__name__}
        else:
            result = job.result
            outcome = {"status": "done", "result_type": type(result).__name__,
                       "result": result.model_dump(mode="json") if hasattr(result, "model_dump") else None}
        # Stored as every result leaves: another replica, or this server restarted, may not know the user's token.
        outcome = redact_json(outcome)
        finished_at = self._clock()
        saved = await self._store.update(JOBS, job.id, lambda record: {**(record or {}), **outcome,
                                                                       "finished_at": finished_at,
                                                                       "updated_at": finished_at})
        await self._store.job_changed(job.id)
        task = ((saved or {}).get("facts") or {}).get("task_of")
        if task and task != job.id:
            # The end of a task's later job is a change of the task: it is kept as long as this job's outcome.
            await self._change_task(str(task), lambda facts: {})

    async def _heartbeats(self) -> None:
        while True:
            await anyio.sleep(HEARTBEAT_SECONDS)
            try:
                await self._beat()
            except Exception:
                # A full disk or a locked store must not end the server and the work it runs: said, then retried.
                log.warning("Job heartbeat failed; trying again in %gs", HEARTBEAT_SECONDS, exc_info=True)

    async def _beat(self) -> None:
        now = self._clock()
        for job in [job for job in self._jobs.values() if not job.finished.is_set()]:
            record = await self._store.update(JOBS, job.id, lambda record: record and {**record, "heartbeat_at": now})
            if record and record.get("cancel_requested") and job.cancel():
                finish_stopping, job.on_cancel_requested = job.on_cancel_requested, None
                if finish_stopping is not None:
                    assert self._task_group is not None
                    self._task_group.start_soon(self._finish_stopping, job.id, finish_stopping)

    @staticmethod
    async def _finish_stopping(job_id: str, finish_stopping: Callable[[], Awaitable[None]]) -> None:
        try:
            await finish_stopping()
        except Exception:
            # Whatever it meets, the server and its other work go on; the stop itself is done.
            log.warning("Could not finish stopping %s", job_id, exc_info=True)

    @staticmethod
    async def wait(job: Job, wait_seconds: float, on_progress: ProgressCallback | None = None) -> bool:
        """Wait up to `wait_seconds` for the job, reporting progress; True when it finished."""
        deadline = anyio.current_time() + max(0.0, wait_seconds)
        if on_progress is not None and wait_seconds > 0 and not job.finished.is_set():
            # What it is doing already: a step taken before this wait began would otherwise never be reported.
            await on_progress(job)
        while not job.finished.is_set():
            remaining = deadline - anyio.current_time()
            if remaining <= 0:
                break
            with anyio.move_on_after(min(remaining, PROGRESS_EVERY_SECONDS)):
                await job.next_change()
            if on_progress is not None and not job.finished.is_set():
                await on_progress(job)
        return job.finished.is_set()
