"""What the skill can do, in plain Python: the MCP layer only adapts these calls.

Results are pydantic models (`results.py`, `chat.py`): they become the tools'
structured output, and their text is what a host shows the user.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, replace
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import SecretStr

from .client import NemoClient
from .errors import InvalidInput, NemoError, OutOfCredits, SessionNotFound, TokenRejected, TurnFailed
from .export import (
    Exporter,
    NothingToExport,
    RecordHook,
    RenderRecord,
    has_content,
    usable_output_dir,
)
from .identity import SkillIdentity
from .jobs import (
    DEFAULT_WAIT_SECONDS,
    PROGRESS_EVERY_SECONDS,
    Job,
    JobCancelled,
    JobCrashed,
    JobRunner,
    ProgressCallback,
    UnknownJob,
    format_elapsed,
)
from .logs import get_logger
from .models import StateReply
from .results import (
    CancelResult,
    ChatResult,
    CreditsResult,
    ExportResult,
    NextAction,
    ProjectsResult,
    ProjectSummary,
    StateResult,
    UNANSWERED_QUESTION,
    Meaning,
    UploadedItem,
    UploadResult,
)
from .sessions import NEW_SESSION_NOTICE, Session, SessionManager
from . import spending
from .drops import DropReceived, forget, receive, staged
from .media import dropped_name
from .settings import Settings
from .store import Store, open_store
from .timeline import summarize, tracks_of
from .users import UserContext
from .upload import (
    ByteProgress,
    check_media,
    check_sources,
    check_url,
    is_url,
    summarize_uploads,
    upload_sources,
    upload_stream,
    url_name,
)

if TYPE_CHECKING:
    from .chat import TurnRunner
    from .links import Links
    from .intents import Intent

# The conversation modules (intent rules, GUI phrases, the ADK decoder) compile their tables
# at import, about 80 ms: they are imported on the first conversation, not at every server start.

log = get_logger("service")

# The longest a follower of another process's job goes without looking at its record (the store wakes it sooner).
REMOTE_LOOK_AGAIN_SECONDS = 5.0
# Before looking again at a job whose process died while followed: another process may be claiming it.
TAKEOVER_PAUSE_SECONDS = 0.5
PROJECTS_PER_PAGE = 10
# The store lock (one per user, in every process) held from "is a turn or a render under way in this project?" to
# the record of the new one: two paid starts at once never both pass the check.
PAID_WORK_LOCK = "paid work"
# The store lock held from "is this draft being rendered?" to the render's record (over network calls).
RENDER_START_LOCK = "render start"
LATE_WRITE_INTRO = "NemoVideo finished more work after its reply:"
SECOND_STAGE_STEP = "🎵 The video is made; NemoVideo is adding its music and titles…"
# Local files this large upload as a task for a client that follows tasks: at a home connection's few MB/s of
# upstream they take longer than a host waits for a tool.
LONG_UPLOAD_BYTES = 32 * 1024 * 1024


class TurnInProgress(NemoError):
    pass


class UnknownProject(NemoError):
    pass


def _destination(paths: list[str]) -> str | None:
    """"export to ~/Desktop" names a folder; "save it as ~/x/final.mp4" names a file, whose folder is used."""
    if not paths:
        return None
    target = Path(paths[0]).expanduser()
    return str(target.parent if target.suffix else target)


def _joined(*notices: str | None) -> str | None:
    return "\n".join(notice for notice in notices if notice) or None


def _project_label(session: Session) -> str:
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(session.created_at)) if session.created_at else "earlier"
    return session.name or f"Project of {started}"


def _export_key(render: RenderRecord, directory: Path | None) -> str:
    """Two exports with this key would land the same file in the same folder (or link): one is followed instead."""
    return f"{render.render_id}|{directory or 'link'}"


def _folder_fact(directory: Path | None) -> str | None:
    return str(directory) if directory is not None else None


def _links(settings: Settings) -> Links | None:
    """Hosted: signed links of ours for what a browser opens (downloads, the upload page)."""
    if not (settings.hosted and settings.secret_key and settings.public_url):
        return None
    from .links import Links  # PyJWT: only a hosted server signs links

    return Links(settings.secret_key.get_secret_value(), settings.public_url)


# What a job ends with, as the tool that started it returns it.
JobOutcome = ChatResult | ExportResult | UploadResult


@dataclass(frozen=True)
class TaskView:
    """A task as its client sees it: the job it started, or the latest of the jobs the user's answers started."""

    task_id: str
    root_id: str  # the task's first job, whose record keeps the task's facts
    created_at: float
    updated_at: float
    job_id: str  # the latest job of the chain (a question's, an answer's)
    outcome: JobOutcome | None = None
    error: NemoError | None = None
    cancelled: str | None = None  # what stopping it meant for the work (it may still be charged)
    watching: str | None = None  # after a generation: the watch for its second stage, what a cancel stops then

    def at(self, *, outcome: JobOutcome | None = None, error: NemoError | None = None,
              cancelled: str | None = None, updated_at: float | None = None) -> TaskView:
        return replace(self, outcome=outcome, error=error, cancelled=cancelled,
                       updated_at=updated_at if updated_at is not None else self.updated_at)

    @property
    def terminal(self) -> bool:
        return self.cancelled is not None or self.error is not None or (
            self.outcome is not None and self.outcome.status == "done")


# Asked by a job before it sends anything on behalf of a task (tasks/update's answer): False, it sends nothing.
Admission = Callable[[Job], Awaitable[bool]]


async def _admit(job: Job, admitted: Admission | None) -> None:
    if admitted is not None and not await admitted(job):
        raise JobCancelled()


# A task id that is its export job's id with this before it: "export it" said to `chat`, whose task answers as `chat`
# does. The shape belongs to the caller's handle, not to the job: an `export` call may join the same render.
CHAT_SHAPED = "chat-"
TASK_CANCELLED = "This task was cancelled; nothing was sent."


def _as_chat(exported: ExportResult) -> ChatResult:
    """An export asked for in words, answered as `chat` answers."""
    return ChatResult(reply=exported.reply, action="export", status=exported.status, job_id=exported.job_id,
                      notice=exported.notice)


def _with_uploads(instruction: str, names: list[str]) -> str:
    """A request sent with the files uploaded for it: the user's words as written, and a note that tells the agent
    which of the files it now has."""
    return f"{instruction}\n[uploaded: {', '.join(names)}]"


def _steps_of(job: Job) -> ByteProgress:
    """An upload's progress lines as the steps of the job that runs it."""
    async def progress(sent: int, total: int, message: str) -> None:
        job.update(message)

    return progress


def _job_kind(kind: str) -> str:
    return {"turn": "turn", "export": "export", "upload": "upload"}.get(kind, "follow_up")


class VideoService:
    """Use as `async with VideoService(settings, identity) as service:`; jobs live as long as it does.

    One service works for one user (`user`, the local one by default) over a store that may hold many
    (`store`, the local file by default).
    """

    def __init__(self, settings: Settings, identity: SkillIdentity, *, user: UserContext | None = None,
                 store: Store | None = None) -> None:
        settings = settings.with_skill_limits(identity.max_upload_mb)
        self.settings = settings
        self.user = user or UserContext.local()
        self.store = (store or open_store(settings.config_dir, settings.state_dir)).for_user(self.user.user_id)
        self.links = _links(settings)
        self.client = NemoClient(settings, identity, store=self.store, links=self.links)
        self.sessions = SessionManager(self.client)
        self.jobs = JobRunner(self.store)
        self.exporter = Exporter(self.client, self.sessions, settings, self.links)
        self._turn_lock = anyio.Lock()
        # Late work (two-stage generation) found after a turn and not yet shown, per session.
        self._late_reports: dict[str, list[str]] = {}
        # What each running watch last saw of its project.
        self._watched: dict[str, StateReply] = {}

    @cached_property
    def _turns(self) -> TurnRunner:
        from .chat import TurnRunner

        return TurnRunner(self.client, self.settings)

    async def __aenter__(self) -> VideoService:
        await self.jobs.__aenter__()
        return self

    @property
    def busy(self) -> bool:
        """Work running, or late work not yet shown: stopping the service now would lose something."""
        return self.jobs.busy or any(self._late_reports.values())

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self.jobs.__aexit__(exc_type, exc, tb)
        finally:
            await self.client.aclose()

    async def credits(self) -> CreditsResult:
        balance = await self.client.credits()
        summary = f"You have {spending.amount(balance.available)} credits available"
        if balance.frozen:
            summary += f" ({spending.amount(balance.frozen)} reserved by work in progress, {spending.amount(balance.total)} in total)"
        return CreditsResult(
            available=balance.available, frozen=balance.frozen, total=balance.total, summary=summary + ".",
            account_url=self._account_page(),
        )

    def _account_page(self) -> str | None:
        """Hosted, without a team account: where the user links their own account, or forgets it (`logout`'s twin)."""
        if self.links is None or self.settings.token is not None:
            return None
        from .links import ACCOUNT_LINK_SECONDS

        return self.links.make(self.store.user_id, "link", self.store.user_id, ACCOUNT_LINK_SECONDS)

    async def state(self) -> StateResult:
        current = await self.sessions.current()
        if current is None:
            # No project yet: creating one just to report it empty would waste a session.
            return StateResult(summary=summarize([]), tracks=[], empty=True, uploads=0)

        async def fetch(session: Session) -> tuple[Session, StateReply]:
            return session, await self.client.state(session.session_id)

        (session, reply), notice = await self.sessions.run(fetch, session=current)
        tracks = tracks_of(reply.state.draft)
        summary = summarize(tracks)
        await self.sessions.note_summary(session, summary)
        return StateResult(
            summary=summary,
            tracks=tracks,
            empty=not tracks,
            uploads=len(reply.state.video_infos),
            notice=_joined(notice, self._take_late_reports(session.session_id)),
        )

    # Conversation

    async def chat(self, message: str, wait_seconds: float = DEFAULT_WAIT_SECONDS,
                   on_progress: ProgressCallback | None = None, *, confirm_cost: bool = False) -> ChatResult:
        """Route first: only edit requests go to the agent; the rest run their action directly."""
        from .intents import route

        if not message.strip():
            # Checked here, not left to the agent: a blank turn would still be a paid turn.
            raise InvalidInput("The message is empty. Say what the video should be or what to change.")
        # In a worker thread: a long message must not hold up the server's other calls while it is read.
        intent = await anyio.to_thread.run_sync(route, message)
        if intent.action == "credits":
            credits = await self.credits()
            return ChatResult(reply=credits.summary, action="credits", status="done")
        if intent.action == "state":
            state = await self.state()
            return ChatResult(reply=state.summary, action="state", status="done", timeline=state.summary,
                              notice=state.notice)
        if intent.action == "export":
            return _as_chat(await self.export(_destination(intent.paths), wait_seconds, on_progress))
        if intent.action == "upload":
            return await self._upload_then_chat(intent, wait_seconds, on_progress, confirm_cost=confirm_cost)
        return await self.start_turn(message, wait_seconds, on_progress, confirm_cost=confirm_cost)

    async def _upload_then_chat(self, intent: Intent, wait_seconds: float, on_progress: ProgressCallback | None, *,
                                confirm_cost: bool = False) -> ChatResult:
        sources = [*intent.paths, *intent.urls]
        if not sources:
            return ChatResult(reply="Which file should I upload? Give its full path or an http(s) link.",
                              action="upload", status="done")
        if confirm_cost and intent.instruction:
            agreed = await self._send_what_waits(intent.instruction, sources, wait_seconds, on_progress)
            if agreed is not None:
                return agreed
        if wait_seconds <= 0 and intent.instruction and self._long_upload(sources):
            return await self._upload_then_send_in_background(sources, intent.instruction, confirm_cost)
        uploaded = await self.upload(sources)
        if uploaded.upload_url:
            # Hosted, files on the user's computer: they arrive through the page, later. The request is not sent
            # before them (a paid turn without its media), and the user is told so, in their own words.
            waiting = (f'\nYour request was not sent yet: once the files have arrived, send it again: '
                       f'"{intent.instruction}"') if intent.instruction else ""
            return ChatResult(reply=uploaded.as_text() + waiting, action="upload", status="done")
        if not intent.instruction:
            return ChatResult(reply=uploaded.summary, action="upload", status="done", notice=uploaded.notice)
        turn = await self.start_turn(_with_uploads(intent.instruction, [item.name for item in uploaded.uploads]),
                                     wait_seconds, on_progress, confirm_cost=confirm_cost)
        return turn.model_copy(update={"reply": f"{uploaded.summary}\n{turn.reply}", "action": "upload"})

    async def _send_what_waits(self, instruction: str, sources: list[str], wait_seconds: float,
                               on_progress: ProgressCallback | None) -> ChatResult | None:
        """"upload X and …" said again with confirm_cost=true, as the spending question after its upload advised:
        the request that waits for this agreement in the current project is sent, once, and the files, already
        there, are not uploaded again. None when no such request waits (the message is then handled anew)."""
        session = await self.sessions.current()
        if session is None or self.settings.hosted:
            return None
        files, urls = check_sources(sources, self.settings)
        waiting = _with_uploads(instruction, [file.name for file in files] + [url_name(url) for url in urls])
        # A file saved since it was uploaded is another file: it is uploaded again, with the request.
        changed_at = max([file.path.stat().st_mtime for file in files], default=0.0)
        for asked in await self.store.spending_questions(session.session_id):
            facts = asked.get("facts") or {}
            if facts.get("message") == waiting and not facts.get("task_answered") \
                    and float(asked.get("started_at") or 0) > changed_at:
                turn = await self.answer_question(str(asked["id"]), lambda question: "yes", wait_seconds, on_progress)
                return turn.model_copy(update={"action": "upload"})
        return None

    # Media in and out

    async def upload(self, sources: list[str], progress: ByteProgress | None = None, *,
                     project: Session | None = None) -> UploadResult:
        if self.settings.hosted:
            return await self._upload_by_page(sources)
        files, urls = check_sources(sources, self.settings)  # before any request, even the session's

        async def send(session: Session) -> list[UploadedItem]:
            return await upload_sources(self.client, session.session_id, files, urls, progress)

        if project is None:
            items, notice = await self.sessions.run(send)
        else:
            notice = None
            try:
                items = await send(project)
            except SessionNotFound:
                # Not another project in its place: the files belong with what was said about them there.
                raise InvalidInput("NemoVideo no longer has the project these files were for, so nothing was "
                                   "uploaded or sent. Say it again to do it in the current project.") from None
        return UploadResult(uploads=items, summary=summarize_uploads(items), notice=notice)

    async def upload_in_background(self, sources: list[str]) -> UploadResult:
        """For a client that follows tasks: local files large enough to outlast a host's patience upload as a job,
        whose id the result carries; anything else uploads now."""
        if not self._long_upload(sources):
            return await self.upload(sources)

        async def uploading(job: Job[UploadResult]) -> UploadResult:
            return await self.upload(sources, _steps_of(job))

        job = await self.jobs.start("upload", uploading)
        return self._still_working(job.id, "upload", job.step, 0.0, "")

    def _long_upload(self, sources: list[str]) -> bool:
        """Local files large enough to outlast a host's patience (hosted, files come through the upload page)."""
        if self.settings.hosted:
            return False
        files, _ = check_sources(sources, self.settings)
        return sum(file.size for file in files) >= LONG_UPLOAD_BYTES

    async def _upload_then_send_in_background(self, sources: list[str], instruction: str,
                                              confirm_cost: bool) -> ChatResult:
        """For a task: large files upload as a job that then sends the request, and the task follows on to the turn
        (the turn joins the task as an answer's does, so a cancel stops whichever is running and never both). Both
        go to the project current now, whatever the user switches to meanwhile."""
        project = await self.sessions.ensure(instruction)

        async def uploading_then_sending(job: Job[ChatResult]) -> ChatResult:
            uploaded = await self.upload(sources, _steps_of(job), project=project)

            async def admitted(turn: Job) -> bool:
                return await self.jobs.adopt(job.id, turn.id, replacing=job.id)

            turn = await self._begin_turn(_with_uploads(instruction, [item.name for item in uploaded.uploads]),
                                          confirm_cost=confirm_cost, admitted=admitted, project=project,
                                          part_of=job.id)
            if not await admitted(turn):
                raise JobCancelled()
            # For a `wait` on this job: the request goes on as the next job
            then = ("Your request was sent to NemoVideo." if turn.kind == "turn" else
                    "Your request waits for your agreement to what it costs.")
            return ChatResult(reply=f"{uploaded.summary}\n{then}", action="upload", status="working", job_id=turn.id)

        job = await self.jobs.start("upload", uploading_then_sending)
        return ChatResult(reply=self._still_working(job.id, "upload", job.step, 0.0, "").summary, action="upload",
                          status="working", job_id=job.id)

    async def _upload_by_page(self, sources: list[str]) -> UploadResult:
        """Hosted: links go straight to NemoVideo; for files on the user's computer, a page to drop them on."""
        urls = [check_url(source) for source in sources if is_url(source.strip())]
        paths = [source.strip().strip("'\"") for source in sources if source.strip() and not is_url(source.strip())]
        if not urls and not paths:
            check_sources(sources, self.settings)  # its sentence for nothing to upload

        async def send(session: Session) -> tuple[list[UploadedItem], str | None]:
            items = await upload_sources(self.client, session.session_id, [], urls) if urls else []
            from .links import UPLOAD_LINK_SECONDS

            assert self.links is not None
            link = self.links.make(self.store.user_id, "upload", session.session_id,
                                   UPLOAD_LINK_SECONDS) if paths else None
            return items, link

        (items, link), notice = await self.sessions.run(send)
        return UploadResult(uploads=items, summary=summarize_uploads(items) if items else "", upload_url=link,
                            to_drop=[Path(path).name or path for path in paths], notice=notice)

    async def receive_drop(self, upload_id: str, name: str, size: int, offset: int,
                           data: bytes) -> DropReceived | UploadResult:
        """A part of a file dropped in a view. The first is checked as `upload` checks a path (type, size), before
        any byte is kept; the last uploads the whole file. Hosted, the server keeps no files: the answer is the
        upload page's link."""
        if self.settings.hosted:
            return await self._upload_by_page([name])
        name = dropped_name(name)
        if offset == 0:
            check_media(name, size, self.settings)
        path = staged(self.settings.state_dir, upload_id, name)
        received = await anyio.to_thread.run_sync(receive, path, size, offset, data)
        if received < size:
            return DropReceived(upload_id=upload_id, name=name, received=received, size=size)
        try:
            return await self.upload([str(path)])
        finally:
            await anyio.to_thread.run_sync(forget, path)

    async def upload_dropped(self, session_id: str, name: str, size: int, chunks: AsyncIterator[bytes]) -> UploadedItem:
        """A file dropped on the upload page, checked as `upload` checks a path, then passed on as it arrives."""
        check_media(name, size, self.settings)
        if await self.sessions.project(session_id) is None:
            raise UnknownProject("The project this upload page was made for is gone. Ask for the upload again.")
        return await upload_stream(self.client, session_id, name, size, chunks)

    async def link_account(self, token: str) -> CreditsResult:
        """Hosted: the user's own NemoVideo account, checked against NemoVideo first; its balance."""
        token = token.strip()
        if not token:
            raise InvalidInput("Paste the token first: nemovideo.com → Settings → API Tokens.")
        checking = self.settings.model_copy(update={"token": SecretStr(token)})
        async with NemoClient(checking, self.client.identity, store=self.store) as client:
            try:
                balance = await client.credits()
            except TokenRejected:
                raise InvalidInput("NemoVideo did not accept that token (expired, revoked or mistyped): nothing "
                                   "was saved. Copy it again from nemovideo.com → Settings → API Tokens.") from None
        await self.client.auth.link_account(token)
        return CreditsResult(available=balance.available, frozen=balance.frozen, total=balance.total,
                             summary=f"Your NemoVideo account is linked: {spending.amount(balance.available)} credits available.")

    async def forget_account(self) -> bool:
        """Hosted: `logout`'s twin; whether an account was linked."""
        return await self.client.auth.forget_account()

    async def export(self, output_dir: str | None = None, wait_seconds: float = DEFAULT_WAIT_SECONDS,
                     on_progress: ProgressCallback | None = None) -> ExportResult:
        directory = self._landing_folder(output_dir)
        # Held from "is a turn changing this project?" to the export's record, and over nothing else (no network
        # call): a turn starting at the same instant either is recorded first (and is waited for) or finds the
        # export (and is refused at once, never kept waiting on a render start that NemoVideo rate-limits).
        async with self.store.lock(PAID_WORK_LOCK):
            session = await self.sessions.current()
            if session is None:
                raise NothingToExport()
            # Rendering while a turn or a second stage changes the draft would render the draft from before it.
            unfinished = await self._unfinished_work(session.session_id)
            job_id = (await self.jobs.start(
                "export", lambda job: self._export_after(job, session.session_id, unfinished, directory),
                facts={"session_id": session.session_id, "output_dir": _folder_fact(directory),
                       "after_job": unfinished},
            )).id
        result = await self.wait(job_id, wait_seconds, on_progress)
        if result.status == "working" and wait_seconds <= 0:
            return result  # a handle for a task, not read by anyone: what is said once waits for the next result
        late = await self._late_notice()
        return result.model_copy(update={"notice": _joined(result.notice, late)}) if late else result

    def _landing_folder(self, output_dir: str | None) -> Path | None:
        """The folder the video lands in; none when hosted, where it is offered as a download link instead (a
        folder on the server would be no use to the user, and `output_dir` names one on their machine)."""
        return None if self.settings.hosted else usable_output_dir(output_dir, self.settings.output_dir)

    async def _unfinished_work(self, session_id: str) -> str | None:
        """A job of any process still changing this project: a turn, or a generation's second stage landing."""
        turn = await self.jobs.running_anywhere(("turn",), session_id)
        if turn is not None:
            return str(turn["id"])
        watch = await self.jobs.running_anywhere(("follow_up",), session_id)
        if watch is not None and (watch.get("facts") or {}).get("second_stage"):
            return str(watch["id"])
        return None

    async def _prepared(self, on_record: RecordHook | None = None) -> tuple[RenderRecord, str | None]:
        """The render of the current draft; a project the backend lost is replaced, and that is said."""
        session = await self.sessions.current()
        if session is None:
            raise NothingToExport()
        try:
            return await self.exporter.prepare(session, on_record), None
        except SessionNotFound:
            await self.sessions.replace(session)
            raise NothingToExport(f"{NEW_SESSION_NOTICE} There is nothing to export in it yet.") from None

    async def _finish_export(self, job: Job, record: RenderRecord, directory: Path | None,
                             notice: str | None) -> ExportResult:
        result = await self.exporter.finish(job, record, directory)
        return result.model_copy(update={"notice": notice}) if notice else result

    async def _export_after(self, job: Job, session_id: str, unfinished_id: str | None,
                            directory: Path | None) -> ExportResult:
        async def stop_its_render() -> None:
            # Stopped from another process, whose `cancel` may have seen no render yet: one started since is
            # cancelled at NemoVideo too (one it already cancelled is no longer rendering).
            render_id = await self.jobs.fact(job.id, "render_id")
            render = await self.exporter.registry.get(str(render_id)) if render_id else None
            if render is not None and render.status == "rendering":
                await self.exporter.cancel(render.render_id)

        job.on_cancel_requested = stop_its_render
        # Jobs of this process that ended: one whose end could not be saved still reads as running for a while.
        ended_here: set[str] = set()
        while unfinished_id is not None and unfinished_id not in ended_here:
            record = await self.jobs.record(unfinished_id)
            job.update("⏳ Waiting for NemoVideo to add the music and titles before rendering…"
                       if (record or {}).get("kind") == "follow_up" else
                       "⏳ Waiting for NemoVideo to finish the current request before rendering…")
            local = self.jobs.local(unfinished_id)
            if local is not None:
                await local.finished.wait()
                ended_here.add(unfinished_id)
            else:
                try:  # followed in the store, or taken over if its process stopped
                    await self._outcome_of(unfinished_id)
                except NemoError:
                    # It failed or was stopped (the draft is rendered as it stands), or the store could not say:
                    # then it still reads as running below, and is waited for again.
                    pass
            # A generation's turn ends by starting the watch for its second stage (music, titles): that is waited
            # for too. No new turn starts meanwhile: this export's record refuses it.
            unfinished_id = await self._unfinished_work(session_id)

        async def recorded(render: RenderRecord) -> None:
            await self.jobs.note(job, render_id=render.render_id)

        # Held from "is this draft being exported anywhere?" to the export's render, across processes: two exports
        # never start two renders of one draft (Exporter.prepare).
        async with self.store.lock(RENDER_START_LOCK):
            render, notice = await self._prepared(recorded)
            key = _export_key(render, directory)
            live = await self.jobs.running_anywhere(("export",), key=key)
            # Recorded at once: `cancel` then stops this render at NemoVideo (also when another export lands it: the
            # two calls asked for one render, as one call asked twice), and a taker re-attaches to it.
            await self.jobs.note(job, key=key if live is None else None, render_id=render.render_id)
        if live is not None:
            # Another export (of any process) is already landing this very render here: its result is ours.
            job.update("⏳ Following the export of this video that is already running…")
            followed = await self._outcome_of(str(live["id"]))
            if not isinstance(followed, ExportResult):
                raise JobCrashed()
            return followed
        return await self._finish_export(job, render, directory, notice)

    async def _outcome_of(self, job_id: str) -> ChatResult | ExportResult:
        """The end of a job of any process (taking it over if its process stopped), however long it takes."""
        while True:
            result = await self.wait(job_id, PROGRESS_EVERY_SECONDS)
            if result.status != "working":
                return result

    async def start_turn(self, message: str, wait_seconds: float, on_progress: ProgressCallback | None, *,
                         confirm_cost: bool = False) -> ChatResult:
        job = await self._begin_turn(message, confirm_cost=confirm_cost)
        return await self.wait(job.id, wait_seconds, on_progress)

    async def _begin_turn(self, message: str, *, confirm_cost: bool, admitted: Admission | None = None,
                          project: Session | None = None, part_of: str | None = None) -> Job:
        """The turn's job in `project` (by default the current one), started; or, when the user must agree to spend
        first, a finished job that asks. `admitted`, when given, is asked by the job before it does anything: False
        ends it cancelled, with nothing sent. `part_of`: the task whose chain the job joins (it is no task itself)."""
        async def snapshot(session: Session) -> tuple[Session, StateReply]:
            return session, await self.client.state(session.session_id)

        chained = {"task_of": part_of} if part_of is not None else {}
        # Held from the check to the start in this process: two calls at once must not both start a paid turn.
        async with self._turn_lock:
            read_at = self.jobs.now()
            if project is None:
                (session, before), notice = await self.sessions.run(snapshot, text=message)
            else:
                session, notice = project, None
                try:
                    before = await self.client.state(project.session_id)
                except SessionNotFound:
                    # Not another project in its place: what was said there belongs there.
                    raise InvalidInput("NemoVideo no longer has the project this was said in, so nothing was sent. "
                                       "Say it again to make it in the current project.") from None
            await self._refuse_if_busy(session.session_id)

            generation = not has_content(before.state.draft)
            credits_before = await self._available_credits()
            estimated = spending.estimate(generation)
            ask = None if confirm_cost else spending.question(estimated, credits_before, self.settings.confirm_above,
                                                                generation)
            if ask is not None:
                asked = ChatResult(reply=ask, action="chat", status="needs_input", cost_estimate=estimated,
                                   notice=notice)

                async def asking(job: Job[ChatResult]) -> ChatResult:
                    await _admit(job, admitted)
                    # Its id is the handle that answers it (a task's update), as a working result's is.
                    return asked.model_copy(update={"job_id": job.id})

                return await self.jobs.start("ask", asking, facts={"session_id": session.session_id,
                                                                     "message": message, **chained})

            async def turn(job: Job[ChatResult]) -> ChatResult:
                nonlocal before
                await _admit(job, admitted)
                if read_again:
                    # A turn (another process's, or one ending as the project was read) changed it since: what it
                    # did is not this turn's to report. Read here, not under the lock: no other turn starts now.
                    before = await self.client.state(session.session_id)
                    await self.jobs.note(job, before=before.model_dump(mode="json"))
                # Only once admitted: a turn refused (a task cancelled first) leaves the watch and its reports alone.
                self._stop_watching(session.session_id, before)
                late = self._take_late_reports(session.session_id)
                try:
                    done = await self._turns.run(job, session.session_id, message, before)
                except OutOfCredits as error:
                    raise error.with_project_link(await self.sessions.project_link(session)) from None
                except SessionNotFound:
                    # Refused before the stream began, so nothing was done or charged.
                    await self.sessions.replace(session)
                    raise TurnFailed(f"{NEW_SESSION_NOTICE} Your request was not carried out: say it again "
                                     "to make it in the new project.") from None
                update: dict[str, object] = {"notice": _joined(done.result.notice, notice, late)}
                if done.result.status == "needs_input":
                    update["job_id"] = job.id  # the question's id: what an answer to it names
                if not has_content(before.state.draft) and has_content(done.after.state.draft):
                    # The first video of a project: the link that keeps an anonymous user's work.
                    update["project_link"] = await self.sessions.project_link(session)
                if done.expects_late_writes:
                    watch = await self._watch(session.session_id, done.after, generation=done.generation,
                                              second_stage_pending=done.second_stage_pending, task=part_of or job.id)
                    update |= {"follow_up_job_id": watch.id, "generated": done.generation}
                await self.sessions.note_summary(session, summarize(tracks_of(done.after.state.draft)))
                if credits_before is not None:
                    update |= await self._credits_after(credits_before)
                return done.result.model_copy(update=update)

            # Checked again and started under the store's lock, across processes. Only these steps: a database
            # lock held over network calls would need a second lock connection whenever they take one (a new
            # project, a token renewal), and many users starting at once would exhaust them.
            read_again = False
            async with self.store.lock(PAID_WORK_LOCK):
                await self._refuse_if_busy(session.session_id)
                read_again = await self.jobs.turn_ended_since(session.session_id, read_at)
                return await self.jobs.start("turn", turn, facts={
                    "session_id": session.session_id, "before": before.model_dump(mode="json"), **chained})

    async def _refuse_if_busy(self, session_id: str) -> None:
        running = await self.jobs.running_anywhere(("turn", "export"), session_id)
        if running is not None:
            rendering = ((running.get("facts") or {}).get("render_id") is not None)
            what = ("working on the previous request" if running["kind"] != "export" else
                    "rendering your video" if rendering else "finishing your video before rendering it")
            raise TurnInProgress(
                f'NemoVideo is still {what}. Call `wait` with job_id "{running["id"]}" to follow it; '
                "this message was not sent: send it once that is done."
            )

    async def _available_credits(self) -> float | None:
        """The balance around a paid turn; one that cannot be read leaves the cost unsaid rather than failing the
        turn (the turn's own request says what is wrong with the account, if anything)."""
        try:
            return (await self.client.credits()).available
        except NemoError as error:
            log.info("Could not read the balance around a turn: %s", error.message)
            return None

    async def _credits_after(self, before: float) -> dict[str, object]:
        after = await self._available_credits()
        return {} if after is None else {"credits_before": before, "credits_after": after}

    # Tasks: one job, or a chain of them when the user answers a question, followed as one

    async def task(self, task_id: str) -> TaskView:
        """Where a task stands: its latest job's outcome so far (never waiting), taken over if its process died."""
        task_id = task_id.strip()
        root_id = task_id.removeprefix(CHAT_SHAPED)
        root = await self.jobs.record(root_id)
        if root is None or (root.get("facts") or {}).get("task_of") not in (None, root_id):
            raise UnknownJob()  # none, or a later job of another task's chain: that task is its handle
        facts = root.get("facts") or {}
        current_id = str(facts.get("task_latest") or root_id)
        view = TaskView(task_id=task_id, root_id=root_id, created_at=float(root.get("started_at") or time.time()),
                        updated_at=float(root.get("updated_at") or root.get("started_at") or time.time()),
                        job_id=current_id)
        if isinstance(facts.get("task_cancelled"), str):
            return view.at(cancelled=facts["task_cancelled"])
        # A cancel under way (marked, its sentence not yet written) is not yet an end: it may find the work finished
        # and give the task back to it. Until then the task is what its work is.
        try:
            outcome = await self.wait(current_id, 0)
        except JobCancelled as cancelled:
            return view.at(cancelled=cancelled.message)
        except NemoError as error:
            return view.at(error=error)
        current = await self.jobs.record(current_id) if current_id != root_id else root
        updated = float((current or {}).get("updated_at") or 0)
        if task_id.startswith(CHAT_SHAPED) and isinstance(outcome, ExportResult):
            outcome = _as_chat(outcome)
        if isinstance(outcome, ChatResult) and outcome.status == "done" and outcome.follow_up_job_id:
            return await self._to_second_stage(view.at(updated_at=max(view.updated_at, updated)), outcome)
        return view.at(outcome=outcome, updated_at=max(view.updated_at, updated))

    async def _to_second_stage(self, view: TaskView, turn: ChatResult) -> TaskView:
        """A task follows a generation to its end: while NemoVideo adds the music and titles it is still working
        (its work, for `tasks/cancel`, the watch), and what they added is part of its result, so a task's client
        never needs `wait`. Other late work is reported with the next result, as it is without tasks."""
        watch_id = str(turn.follow_up_job_id)
        finished = turn.model_copy(update={"follow_up_job_id": None})
        watch = await self.jobs.record(watch_id)
        if not ((watch or {}).get("facts") or {}).get("second_stage"):
            return view.at(outcome=finished)
        try:
            late = await self.wait(watch_id, 0)
        except NemoError:  # the watch failed or was stopped: the video is as the turn left it
            return view.at(outcome=finished)
        if late.status == "working":
            adding = ChatResult(reply=SECOND_STAGE_STEP, action="chat", status="working", job_id=watch_id)
            return replace(view, watching=watch_id).at(outcome=adding,
                                                     updated_at=max(view.updated_at, float(watch.get("updated_at") or 0)))
        if not isinstance(late, ChatResult) or not late.changes:
            return view.at(outcome=finished)
        return view.at(outcome=finished.model_copy(update={
            "reply": "\n".join([turn.reply, late.reply]), "changes": [*turn.changes, *late.changes],
            "timeline": late.timeline or turn.timeline}))

    async def project_videos(self) -> list[RenderRecord]:
        """The current project's videos saved on this computer, newest first (for the player; a hosted server
        keeps none)."""
        session = await self.sessions.current()
        if self.settings.hosted or session is None:
            return []
        return await self.exporter.registry.delivered(self.settings.api_url, session.session_id)

    async def render_part(self, render_id: str, part: int) -> bytes:
        """A part of a video this user exported to this computer, for a view to play (never any other file)."""
        from .views import render_part

        record = await self.exporter.registry.get(render_id)
        if record is None or record.path is None or not Path(record.path).is_file():
            raise InvalidInput("That video is not on this computer any more: export the project again to watch it.")
        data = await anyio.to_thread.run_sync(render_part, Path(record.path), part)
        if data is None:
            raise InvalidInput("That part of the video does not exist.")
        return data

    async def new_task(self, job_id: str, tool: str) -> TaskView:
        """The task of the job `tool` just started or joined, as it stands; its id keeps `tool`'s result shape."""
        record = await self.jobs.record(job_id) or {}
        return await self.task(f"{CHAT_SHAPED}{job_id}" if tool == "chat" and record.get("kind") == "export"
                               else job_id)

    async def answer_task(self, task_id: str, answers: Mapping[str, Meaning]) -> None:
        """The user's answer to a task's question: `answers` by question id (the key the question was published
        under), each read by its meaning for that question. An answer to a question the task no longer asks (a
        retried update) is refused, never taken for the next one."""
        view = await self.task(task_id)
        outcome = view.outcome
        if view.cancelled is not None:
            raise InvalidInput(TASK_CANCELLED)
        if not isinstance(outcome, ChatResult) or outcome.status != "needs_input":
            raise InvalidInput("This task is not waiting for an answer.")
        meaning = answers.get(view.job_id)
        if meaning is None:
            raise InvalidInput("That answer is not to the question this task asks now (it may answer one already "
                               "answered): look at the task with tasks/get and answer its input request by its key.")
        if not await self.jobs.claim_answer(view.root_id, view.job_id):
            raise InvalidInput(TASK_CANCELLED if await self.jobs.being_cancelled(view.root_id)
                               else "This question was already answered, or is being answered now: tasks/get shows "
                               "where the task stands.")

        async def admitted(job: Job) -> bool:
            # One step with the task's record: a `tasks/cancel` that came first wins and nothing is sent; one that
            # comes later sees this job as the one to stop.
            return await self.jobs.adopt(view.root_id, job.id, replacing=view.job_id)

        next_job = await self._answering(view.root_id, view.job_id, meaning(outcome), admitted)
        # Followed from now on (the job may not have run its own admission yet); refused only when a cancel came
        # first, and then the job sends nothing either.
        try:
            joined = await admitted(next_job)
        except NemoError:
            # The store failed at the step that joins the job to the task: the job, failing at the same step, sent
            # nothing. Unless it joined after all, the question is open again, so answering again works.
            await next_job.finished.wait()
            with contextlib.suppress(NemoError):
                if (await self.task(task_id)).job_id == view.job_id:
                    await self.jobs.release_answer(view.root_id)
            raise
        if not joined:
            await next_job.finished.wait()  # it refuses at once; ended, it blocks no next turn of the project
            raise InvalidInput(TASK_CANCELLED)

    async def answer_question(self, question_id: str, meaning: Meaning, wait_seconds: float,
                              on_progress: ProgressCallback | None) -> ChatResult:
        """An answer given to a question outside a task (an elicitation in the call, a round trip): the same as a
        task's, and given once; its result, which may ask again."""
        question_id = question_id.strip()
        try:
            asked = await self.wait(question_id, 0)
        except NemoError:
            asked = None
        if not isinstance(asked, ChatResult) or asked.status != "needs_input":
            raise InvalidInput("That question is no longer open; nothing was sent.")
        if not await self.jobs.claim_answer(question_id, question_id):
            raise InvalidInput("That question was already answered; nothing more was sent.")
        job = await self._answering(question_id, question_id, meaning(asked), None)
        return await self.wait(job.id, wait_seconds, on_progress)

    async def _answering(self, root_id: str, question_id: str, answer: str | None,
                         admitted: Admission | None) -> Job:
        """The job an answer starts, in the project that asked: NemoVideo's question's answer as its next turn, a
        yes to spending as the turn that waited, no answer as nothing sent. Once claimed, an answer is carried
        through whatever becomes of the call that gave it (a host may cancel it): either its job starts, or the
        claim is given back and answering again works; never a job started and the question open again."""
        with anyio.CancelScope(shield=True):
            try:
                return await self._answer_job(root_id, question_id, answer, admitted)
            except Exception:
                await self.jobs.release_answer(root_id)
                raise

    async def _answer_job(self, root_id: str, question_id: str, answer: str | None,
                          admitted: Admission | None) -> Job:
        asked = await self.jobs.record(question_id) or {}
        facts = asked.get("facts") or {}
        waiting_message = facts.get("message") if asked.get("kind") == "ask" else None
        if answer is None:
            declined = ChatResult(reply=spending.declined() if waiting_message is not None else UNANSWERED_QUESTION,
                                  action="chat", status="done")

            async def nothing_sent(job: Job[ChatResult]) -> ChatResult:
                await _admit(job, admitted)
                return declined

            return await self.jobs.start("ask", nothing_sent, facts={"task_of": root_id})
        project = await self.sessions.project(str(facts.get("session_id") or ""))
        if project is None:
            raise InvalidInput("The project that asked this question is no longer on this computer; nothing was "
                               "sent. Say it again in the current project.")
        try:
            if waiting_message is not None:
                return await self._begin_turn(str(waiting_message), confirm_cost=True, admitted=admitted,
                                              project=project, part_of=root_id)
            return await self._begin_turn(answer, confirm_cost=False, admitted=admitted, project=project,
                                          part_of=root_id)
        except TurnInProgress:
            raise InvalidInput("NemoVideo is still working on another request in that project, so nothing was "
                               "sent and the question is still open: answer again once that is done.") from None

    async def cancel_task(self, task_id: str) -> None:
        """`cancel` for the job the task follows now; the task ends cancelled, saying what that meant. Raises
        InvalidInput when the task had already ended."""
        while True:
            view = await self.task(task_id)
            if view.terminal:
                raise InvalidInput("That task had already ended; nothing was cancelled.")
            # Marked in one step with "still following this job": an answer racing this either moved the task on
            # first (look again, and stop its job) or will find it cancelled and send nothing.
            if not await self.jobs.end_task(view.root_id, view.job_id):
                if await self.jobs.being_cancelled(view.root_id):
                    raise InvalidInput("That task is being cancelled already; nothing more was done.")
                continue
            if isinstance(view.outcome, ChatResult) and view.outcome.status == "needs_input":
                said = UNANSWERED_QUESTION
                break
            stopping = view.watching or view.job_id
            said = (await self.cancel(stopping)).reply
            try:
                ended = await self.wait(stopping, 0)
            except NemoError:
                break  # stopped (or failed): the task is cancelled
            if ended.status == "working":
                break
            # It finished on its own while the cancel was on its way: its result stands, and the task is what it
            # made of it (ended, or going on to a second stage or a question, which the cancel then stops).
            await self.jobs.reopen_task(view.root_id)
        await self.jobs.note_record(view.root_id, task_cancelled=said)

    # Work that lands after a turn's stream (two-stage generation)

    async def _watch(self, session_id: str, seen: StateReply, *, generation: bool, second_stage_pending: bool,
                     task: str) -> Job:
        """Watch the project for work that lands after the turn's reply: after a generation (its second stage:
        music, titles) for the full window, after any other turn that did something for a brief one. The watch
        is part of the turn's `task`, which is kept as long as the watch's result."""
        self._watched[session_id] = seen
        window = (self.settings.late_write_watch_seconds if generation
                  else min(self.settings.late_write_brief_watch_seconds, self.settings.late_write_watch_seconds))

        def landed(changes: list[str], after: StateReply) -> None:
            # Until a `wait` shows them, the next result about this project carries them: never silent.
            self._late_reports.setdefault(session_id, []).extend(changes)
            self._watched[session_id] = after

        async def follow_up(job: Job[ChatResult]) -> ChatResult:
            changes = await self._turns.watch_late_writes(job, session_id, seen, landed, window)
            last_seen = self._watched.pop(session_id, seen)  # the project as the watch last read it
            if not changes:
                return ChatResult(reply="NemoVideo added nothing more after its reply.", action="chat", status="done")
            return ChatResult(reply="\n".join([LATE_WRITE_INTRO, *changes]), action="chat", status="done",
                              changes=changes, timeline=summarize(tracks_of(last_seen.state.draft)))

        return await self.jobs.start("follow_up", follow_up, key=session_id, facts={
            "session_id": session_id, "second_stage": second_stage_pending, "task_of": task})

    def _stop_watching(self, session_id: str, now: StateReply) -> None:
        """A new turn starts from the project as it is `now`: what landed since the watch last looked is
        reported with it, and the watch ends."""
        from .chat import changes_between

        seen = self._watched.pop(session_id, None)
        if seen is not None and seen.state.fingerprint() != now.state.fingerprint():
            self._late_reports.setdefault(session_id, []).extend(changes_between(seen, now))
        watching = self.jobs.running("follow_up", session_id)
        if watching is not None:
            watching.cancel(ChatResult(
                reply="A new request started before NemoVideo finished adding to the previous one; "
                "what it added is reported with the new request.", action="chat", status="done"))

    def _take_late_reports(self, session_id: str) -> str | None:
        """Late work not yet shown to the user, as a notice for the next result about this project."""
        reported = self._late_reports.pop(session_id, [])
        return "\n".join([LATE_WRITE_INTRO, *reported]) if reported else None

    async def _late_notice(self) -> str | None:
        session = await self.sessions.current()
        return self._take_late_reports(session.session_id) if session is not None else None

    # Projects

    async def projects(self, action: str = "list", project: str | None = None, page: int = 1) -> ProjectsResult:
        """List the projects (a page at a time, or those matching `project`), start a new one, or switch to one
        (by its number in the list, or by name)."""
        if action == "new":
            session = await self.sessions.start_new(project)
            lead = f"Started a new, empty project{f' “{session.name}”' if session.name else ''}. Describe the video you want."
        elif action == "switch":
            session = await self.sessions.switch(await self._find_project(project))
            lead = f"Switched to “{_project_label(session)}”. {session.summary or ''}".strip()
        numbered = await self._numbered_projects()
        if action == "list" and project and project.strip():
            wanted = project.strip().lower()
            shown = [item for item in numbered if wanted in item.name.lower() or wanted in (item.summary or "").lower()]
            lead = f"Projects matching “{project.strip()}”:" if shown else \
                f"No project matches “{project.strip()}”. Call `projects` without a name to list them all."
        else:
            pages = max(1, -(-len(numbered) // PROJECTS_PER_PAGE))
            page = min(max(1, page), pages)
            shown = numbered[(page - 1) * PROJECTS_PER_PAGE: page * PROJECTS_PER_PAGE]
            if action == "list":
                lead = "There are no projects yet: describe a video to start one." if not numbered else (
                    "Your recent projects:" if pages == 1 else
                    f"Your projects, page {page} of {pages} (most recent first):")
                if page < pages:
                    shown_more = f"More: call `projects` with page {page + 1}, or with a name to search."
                    lead = f"{lead}\n{shown_more}"
        lines = [f"{item.number}. {item.name}{' (current)' if item.current else ''} — {item.last_used}"
                 + (f": {item.summary}" if item.summary else "") for item in shown]
        return ProjectsResult(reply="\n".join([lead, *lines]) if action == "list" else lead, projects=shown)

    async def _numbered_projects(self) -> list[ProjectSummary]:
        current = await self.sessions.current()
        return [ProjectSummary(number=number, name=_project_label(session),
                               current=current is not None and session.session_id == current.session_id,
                               last_used=time.strftime("%Y-%m-%d %H:%M", time.localtime(session.last_used_at)),
                               summary=session.summary, link=session.project_link)
                for number, session in enumerate(await self.sessions.all(), start=1)]

    async def _find_project(self, wanted: str | None) -> str:
        projects = await self.sessions.all()
        text = (wanted or "").strip().lower()
        if text.isascii() and text.isdigit() and 1 <= int(text) <= len(projects):
            return projects[int(text) - 1].session_id
        # By name: the most recently used project whose name contains the words.
        matches = [session for session in projects if text and text in _project_label(session).lower()]
        if matches:
            return matches[0].session_id
        raise UnknownProject(
            f"No project matches “{wanted}”. Call `projects` to list them, then switch by number." if wanted
            else "Say which project: call `projects` to list them, then switch by number."
        )

    async def cancel(self, job_id: str) -> CancelResult:
        job_id = job_id.strip()  # as a host may quote it; every lookup and the takeover use the same id
        job = self.jobs.local(job_id)
        record = await self.jobs.record(job_id)
        if job is None and record is None:
            raise UnknownJob()
        kind = job.kind if job is not None else str(record.get("kind"))
        if (job.finished.is_set() if job is not None else record.get("status") != "running"):
            return CancelResult(reply="That job had already finished; nothing was cancelled.", job_id=job_id,
                                kind=_job_kind(kind), cancelled_at_backend=False)

        if kind == "upload" and not await self.jobs.end_task(job_id, job_id) \
                and not await self.jobs.being_cancelled(job_id):
            # An upload that went on to send its request (upload and a request in one message): that request is
            # what runs now, and what is stopped. Marked first otherwise, so a request not yet under way is never
            # sent once the user was told the upload stopped.
            latest = await self.jobs.fact(job_id, "task_latest")
            return await self.cancel(str(latest))

        async def stop() -> None:
            if job is not None:
                job.cancel()
            else:
                await self.jobs.request_cancel(job_id)

        if kind == "export":
            render_id = ((record or {}).get("facts") or {}).get("render_id")
            # Stopped first: a render cancelled while still followed could end its job as a failed render (NemoVideo
            # reports it cancelled) before the job is marked cancelled.
            await stop()
            if render_id is None and job is not None:
                # It was waiting for the project to settle; a render it started as this cancel came is noted on
                # its record before the start is sent, and is found once the job has stopped.
                await job.finished.wait()
                render_id = await self.jobs.fact(job_id, "render_id")
            if render_id is None:
                return CancelResult(reply="The export was cancelled before its render started; nothing was rendered.",
                                    job_id=job_id, kind="export", cancelled_at_backend=False)
            cancelled_at_backend = await self.exporter.cancel(render_id)
            reply = ("The render was cancelled at NemoVideo." if cancelled_at_backend else
                     "Stopped waiting for the render; NemoVideo could not confirm that it stopped rendering.")
            return CancelResult(reply=reply, job_id=job_id, kind="export", cancelled_at_backend=cancelled_at_backend)
        await stop()
        if kind == "upload":
            return CancelResult(reply="Stopped the upload. Files that had arrived stay in the project: check with "
                                "`state`, and upload the others again if you want them.", job_id=job_id, kind="upload",
                                cancelled_at_backend=False)
        if kind == "follow_up":
            return CancelResult(reply="Stopped watching the project for late changes.", job_id=job_id,
                                kind="follow_up", cancelled_at_backend=False)
        return CancelResult(
            reply="Stopped following this request. NemoVideo may still finish work it had already started, and that "
            "work may still be charged; check the project with `state` in a minute before asking again.",
            job_id=job_id, kind="turn", cancelled_at_backend=False,
        )

    async def wait(self, job_id: str, wait_seconds: float = DEFAULT_WAIT_SECONDS,
                   on_progress: ProgressCallback | None = None) -> JobOutcome:
        job_id = job_id.strip()  # as a host may quote it; every lookup and the takeover use the same id
        job = self.jobs.local(job_id) or await self._take_over(job_id)
        if job is None:
            return await self._follow_elsewhere(job_id, wait_seconds, on_progress)
        if await self.jobs.wait(job, wait_seconds, on_progress):
            if job.error is not None:
                raise job.error
            if job.kind == "follow_up":
                self._late_reports.pop(job.key, None)  # shown now
            return job.result
        return self._still_working(job.id, job.kind, job.step, job.elapsed, job.partial_text)

    # Handles that outlive their process

    async def _take_over(self, job_id: str) -> Job | None:
        """A job whose process died is run again here by the rules that never repeat paid work."""
        record = await self.jobs.record(job_id)
        if record is None:
            raise UnknownJob()
        if not self.jobs.is_stale(record) or not await self.jobs.claim(job_id):
            return None
        try:
            return await self._run_taken_over(job_id, record)
        except anyio.get_cancelled_exc_class():
            # The call that took it over was cancelled (a host gave up on a `wait`) before its work started here: the
            # work was sent by the process that died, and the record is left for the next taker, at once.
            await self.jobs.give_back(job_id)
            raise

    async def _run_taken_over(self, job_id: str, record: dict[str, Any]) -> Job:
        facts = record.get("facts") or {}
        kind = str(record.get("kind"))
        log.info("Taking over %s job %s from a process that stopped", kind, job_id)
        if kind == "turn":
            before = StateReply.model_validate(facts.get("before") or {})
            work = lambda job: self._turns.recover_result(job, str(facts.get("session_id")), before)  # noqa: E731
        elif kind == "export":
            directory = self._landing_folder(facts.get("output_dir"))
            render = await self.exporter.registry.get(str(facts["render_id"])) if facts.get("render_id") else None
            if render is not None:  # re-attached: the render goes on at NemoVideo, its file lands here
                work = lambda job: self.exporter.finish(job, render, directory)  # noqa: E731
            else:  # it was still waiting for the project to settle: it waits again, then renders the draft once
                after = str(facts["after_job"]) if facts.get("after_job") else None
                work = lambda job: self._export_after(job, str(facts.get("session_id")),  # noqa: E731
                                                      after, directory)
        elif kind == "upload":
            work = self._upload_cut_short
        else:
            work = self._nothing_to_follow
        return await self.jobs.start(kind, work, key=record.get("key"), facts=facts, job_id=job_id)

    async def _upload_cut_short(self, job: Job) -> UploadResult:
        return UploadResult(uploads=[], summary="The server process that was uploading stopped before it finished. "
                            "Check with `state` which files arrived, and upload the others again.")

    async def _nothing_to_follow(self, job: Job) -> ChatResult:
        return ChatResult(reply="The server process that was following this stopped. Check the project with `state` "
                          "to see what it holds now.", action="chat", status="done")

    async def _follow_elsewhere(self, job_id: str, wait_seconds: float,
                                on_progress: ProgressCallback | None) -> JobOutcome:
        """A job that another live server process runs: its record in the store is followed."""
        stand_in: Job = Job("remote", job_id=job_id)
        deadline = anyio.current_time() + max(0.0, wait_seconds)
        next_progress = anyio.current_time() + PROGRESS_EVERY_SECONDS
        while True:
            record = await self.jobs.record(job_id)
            if record is None:
                raise UnknownJob()
            if record.get("status") != "running" or self.jobs.is_stale(record):
                break
            stand_in.step = str(record.get("step") or stand_in.step)
            now = anyio.current_time()
            if now >= deadline:
                kind = str(record.get("kind"))
                elapsed = time.time() - float(record.get("started_at") or time.time())
                return self._still_working(job_id, kind, stand_in.step, elapsed, "")
            if on_progress is not None and now >= next_progress:
                await on_progress(stand_in)
                next_progress = now + PROGRESS_EVERY_SECONDS
            await self.store.wait_for_job(job_id, min(REMOTE_LOOK_AGAIN_SECONDS, deadline - now, next_progress - now))
        if record.get("status") == "running":  # its process died while we watched: taken over here, or followed
            await anyio.sleep(TAKEOVER_PAUSE_SECONDS)  # another process may be claiming it: never a busy loop
            return await self.wait(job_id, max(0.0, deadline - anyio.current_time()), on_progress)
        return _stored_outcome(record)

    def _still_working(self, job_id: str, kind: str, step: str, elapsed: float,
                       partial_text: str) -> JobOutcome:
        still_working = f"⏳ Still working… {step} ({format_elapsed(elapsed)} so far)."
        if kind == "export":
            return ExportResult(reply=still_working, status="working", job_id=job_id)
        if kind == "upload":
            return UploadResult(uploads=[], summary=still_working, status="working", job_id=job_id)
        from .gui import translate

        said = translate(partial_text).text.strip()
        so_far = f"\nSo far NemoVideo said: {said}" if said else ""
        return ChatResult(
            reply=still_working + so_far,
            action="chat",
            status="working",
            job_id=job_id,
            next_actions=[NextAction(tool="wait", arguments={"job_id": job_id}, why="Continue waiting for the result.")],
        )


def _stored_outcome(record: dict) -> JobOutcome:
    """A finished job's result (or error) as its process stored it."""
    if record.get("status") == "done":
        result_type = {"ChatResult": ChatResult, "ExportResult": ExportResult,
                       "UploadResult": UploadResult}.get(str(record.get("result_type")))
        if result_type is not None:
            return result_type.model_validate(record.get("result") or {})
    if record.get("status") == "cancelled":
        raise JobCancelled(str(record.get("error") or "") or None)
    raise NemoError(str(record.get("error") or "This job failed."))
