"""What the skill can do, in plain Python: the MCP layer only adapts these calls.

Results are pydantic models (`results.py`, `chat.py`): they become the tools'
structured output, and their text is what a host shows the user.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import anyio

from .client import NemoClient
from .errors import NemoError, OutOfCredits
from .export import Exporter, ExportResult, has_content, usable_output_dir
from .identity import SkillIdentity
from .jobs import Job, JobRunner, ProgressCallback, format_elapsed
from .models import StateReply
from .results import CancelResult, ChatResult, CreditsResult, NextAction, StateResult
from .sessions import Session, SessionManager
from .settings import Settings
from .timeline import summarize, tracks_of
from .upload import ByteProgress, UploadedItem, UploadResult, check_sources, summarize_uploads, upload_sources

if TYPE_CHECKING:
    from .chat import TurnRunner
    from .intents import Intent

# The conversation modules (intent rules, GUI phrases, the ADK decoder) compile their tables
# at import, about 80 ms: they are imported on the first conversation, not at every server start.

DEFAULT_WAIT_SECONDS = 45.0
LATE_WRITE_INTRO = "NemoVideo finished more work after its reply:"


class TurnInProgress(NemoError):
    pass


def _destination(paths: list[str]) -> str | None:
    """"export to ~/Desktop" names a folder; "save it as ~/x/final.mp4" names a file, whose folder is used."""
    if not paths:
        return None
    target = Path(paths[0]).expanduser()
    return str(target.parent if target.suffix else target)


def _amount(value: float) -> str:
    return f"{value:g}"


def _joined(*notices: str | None) -> str | None:
    return "\n".join(notice for notice in notices if notice) or None


def _job_kind(job: Job) -> str:
    return {"turn": "turn", "export": "export"}.get(job.kind, "follow_up")


class VideoService:
    """Use as `async with VideoService(settings, identity) as service:`; jobs live as long as it does."""

    def __init__(self, settings: Settings, identity: SkillIdentity) -> None:
        settings = settings.with_skill_limits(identity.max_upload_mb)
        self.settings = settings
        self.client = NemoClient(settings, identity)
        self.sessions = SessionManager(self.client)
        self.jobs = JobRunner()
        self.exporter = Exporter(self.client, self.sessions, settings)
        self._turn_lock = anyio.Lock()
        # Late work (two-stage generation) found after a turn and not yet shown, per session.
        self._late_reports: dict[str, list[str]] = {}

    @cached_property
    def _turns(self) -> TurnRunner:
        from .chat import TurnRunner

        return TurnRunner(self.client, self.settings)

    async def __aenter__(self) -> VideoService:
        await self.jobs.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self.jobs.__aexit__(exc_type, exc, tb)
        finally:
            await self.client.aclose()

    async def credits(self) -> CreditsResult:
        balance = await self.client.credits()
        summary = f"You have {_amount(balance.available)} credits available"
        if balance.frozen:
            summary += f" ({_amount(balance.frozen)} reserved by work in progress, {_amount(balance.total)} in total)"
        return CreditsResult(
            available=balance.available, frozen=balance.frozen, total=balance.total, summary=summary + "."
        )

    async def state(self) -> StateResult:
        if self.sessions.current is None:
            # No project yet: creating one just to report it empty would waste a session.
            return StateResult(summary=summarize([]), tracks=[], empty=True, uploads=0)

        async def fetch(session: Session) -> StateReply:
            return await self.client.state(session.session_id)

        reply, notice = await self.sessions.run(fetch)
        tracks = tracks_of(reply.state.draft)
        return StateResult(
            summary=summarize(tracks),
            tracks=tracks,
            empty=not tracks,
            uploads=len(reply.state.video_infos),
            notice=_joined(notice, self._late_notice()),
        )

    # Conversation

    async def chat(self, message: str, wait_seconds: float = DEFAULT_WAIT_SECONDS,
                   on_progress: ProgressCallback | None = None) -> ChatResult:
        """Route first: only edit requests go to the agent; the rest run their action directly."""
        from .intents import route

        intent = route(message)
        if intent.action == "credits":
            credits = await self.credits()
            return ChatResult(reply=credits.summary, action="credits", status="done")
        if intent.action == "state":
            state = await self.state()
            return ChatResult(reply=state.summary, action="state", status="done", timeline=state.summary,
                              notice=state.notice)
        if intent.action == "export":
            exported = await self.export(_destination(intent.paths), wait_seconds, on_progress)
            return ChatResult(reply=exported.reply, action="export", status=exported.status, job_id=exported.job_id)
        if intent.action == "upload":
            return await self._upload_then_chat(intent, wait_seconds, on_progress)
        return await self.start_turn(message, wait_seconds, on_progress)

    async def _upload_then_chat(self, intent: Intent, wait_seconds: float,
                                on_progress: ProgressCallback | None) -> ChatResult:
        sources = [*intent.paths, *intent.urls]
        if not sources:
            return ChatResult(reply="Which file should I upload? Give its full path or an http(s) link.",
                              action="upload", status="done")
        uploaded = await self.upload(sources)
        if not intent.instruction:
            return ChatResult(reply=uploaded.summary, action="upload", status="done", notice=uploaded.notice)
        turn = await self.start_turn(intent.instruction, wait_seconds, on_progress)
        return turn.model_copy(update={"reply": f"{uploaded.summary}\n{turn.reply}", "action": "upload"})

    # Media in and out

    async def upload(self, sources: list[str], progress: ByteProgress | None = None) -> UploadResult:
        files, urls = check_sources(sources, self.settings)  # before any request, even the session's

        async def send(session: Session) -> list[UploadedItem]:
            return await upload_sources(self.client, session.session_id, files, urls, progress)

        items, notice = await self.sessions.run(send)
        return UploadResult(uploads=items, summary=summarize_uploads(items), notice=notice)

    async def export(self, output_dir: str | None = None, wait_seconds: float = DEFAULT_WAIT_SECONDS,
                     on_progress: ProgressCallback | None = None) -> ExportResult:
        directory = usable_output_dir(output_dir, self.settings.output_dir)
        record = await self.exporter.prepare()
        job = self.jobs.running("export", record.render_id) or self.jobs.start(
            "export", lambda job: self.exporter.finish(job, record, directory), key=record.render_id
        )
        result = await self.wait(job.id, wait_seconds, on_progress)
        late = self._late_notice()
        return result.model_copy(update={"notice": late}) if late else result

    async def start_turn(self, message: str, wait_seconds: float, on_progress: ProgressCallback | None) -> ChatResult:
        async def snapshot(session: Session) -> tuple[Session, StateReply]:
            return session, await self.client.state(session.session_id)

        # Held from the check to the start: two calls at once must not both start a paid turn.
        async with self._turn_lock:
            running = self.jobs.running("turn")
            if running is not None:
                raise TurnInProgress(
                    f'NemoVideo is still working on the previous request. Call `wait` with job_id "{running.id}" '
                    "to follow it, then send this message again."
                )
            (session, before), notice = await self.sessions.run(snapshot, text=message)

            self._stop_watching(session.session_id)
            late = self._take_late_reports(session.session_id)

            async def turn(job: Job[ChatResult]) -> ChatResult:
                try:
                    done = await self._turns.run(job, session.session_id, message, before)
                except OutOfCredits as error:
                    raise error.with_project_link(await self.sessions.project_link(session)) from None
                update: dict[str, object] = {"notice": _joined(notice, late)}
                if not has_content(before.state.draft) and has_content(done.after.state.draft):
                    # The first video of a project: the link that keeps an anonymous user's work.
                    update["project_link"] = await self.sessions.project_link(session)
                if done.expects_late_writes:
                    update["follow_up_job_id"] = self._watch(session.session_id, done.after).id
                return done.result.model_copy(update=update)

            job = self.jobs.start("turn", turn)
        return await self.wait(job.id, wait_seconds, on_progress)

    # Work that lands after a turn's stream (two-stage generation)

    def _watch(self, session_id: str, seen: StateReply) -> Job:
        async def follow_up(job: Job[ChatResult]) -> ChatResult:
            changes = await self._turns.watch_late_writes(job, session_id, seen)
            if not changes:
                return ChatResult(reply="NemoVideo added nothing more after its reply.", action="chat", status="done")
            # Until a `wait` shows them, the next result about this project carries them: never silent.
            self._late_reports.setdefault(session_id, []).extend(changes)
            state = await self.client.state(session_id)
            return ChatResult(reply="\n".join([LATE_WRITE_INTRO, *changes]), action="chat", status="done",
                              changes=changes, timeline=summarize(tracks_of(state.state.draft)))

        return self.jobs.start("follow_up", follow_up, key=session_id)

    def _stop_watching(self, session_id: str) -> None:
        """A new turn starts from the project as it is now: late work from before is no longer tracked."""
        watching = self.jobs.running("follow_up", session_id)
        if watching is not None:
            watching.cancel(ChatResult(
                reply="A new request started before NemoVideo finished adding to the previous one; "
                "the new request's result shows the project as it is.", action="chat", status="done"))

    def _take_late_reports(self, session_id: str) -> str | None:
        """Late work not yet shown to the user, as a notice for the next result about this project."""
        reported = self._late_reports.pop(session_id, [])
        return "\n".join([LATE_WRITE_INTRO, *reported]) if reported else None

    def _late_notice(self) -> str | None:
        session = self.sessions.current
        return self._take_late_reports(session.session_id) if session is not None else None

    async def cancel(self, job_id: str) -> CancelResult:
        job = self.jobs.get(job_id)
        if job.finished.is_set():
            return CancelResult(reply="That job had already finished; nothing was cancelled.", job_id=job.id,
                                kind=_job_kind(job), cancelled_at_backend=False)
        if job.kind == "export":
            cancelled_at_backend = await self.exporter.cancel(job.key)
            job.cancel()
            reply = ("The render was cancelled at NemoVideo." if cancelled_at_backend else
                     "Stopped waiting for the render; NemoVideo could not confirm that it stopped rendering.")
            return CancelResult(reply=reply, job_id=job.id, kind="export", cancelled_at_backend=cancelled_at_backend)
        job.cancel()
        if job.kind == "follow_up":
            return CancelResult(reply="Stopped watching the project for late changes.", job_id=job.id,
                                kind="follow_up", cancelled_at_backend=False)
        return CancelResult(
            reply="Stopped following this request. NemoVideo may still finish work it had already started, and that "
            "work may still be charged; check the project with `state` in a minute before asking again.",
            job_id=job.id, kind="turn", cancelled_at_backend=False,
        )

    async def wait(self, job_id: str, wait_seconds: float = DEFAULT_WAIT_SECONDS,
                   on_progress: ProgressCallback | None = None) -> ChatResult | ExportResult:
        job = self.jobs.get(job_id)
        if await self.jobs.wait(job, wait_seconds, on_progress):
            if job.error is not None:
                raise job.error
            if job.kind == "follow_up":
                self._late_reports.pop(job.key, None)  # shown now
            return job.result
        still_working = f"⏳ Still working… {job.step} ({format_elapsed(job.elapsed)} so far)."
        if job.kind == "export":
            return ExportResult(reply=still_working, status="working", job_id=job.id)
        from .gui import translate

        said = translate(job.partial_text).text.strip()
        so_far = f"\nSo far NemoVideo said: {said}" if said else ""
        return ChatResult(
            reply=still_working + so_far,
            action="chat",
            status="working",
            job_id=job.id,
            next_actions=[NextAction(tool="wait", arguments={"job_id": job.id}, why="Continue waiting for the result.")],
        )
