"""Export: render the draft in the cloud and land the MP4 whole on disk.

The seeds poll every 30 s and lose the render when the client goes away. Here every
render is recorded (session, draft hash, status) in the state dir before it is waited
for, so `export` of an unchanged draft re-attaches to its render, also after a
restart, and a finished render whose file was not delivered is delivered next time.
Polling follows the render's own progress (it asks again shortly before the expected
end), so a finished video is noticed within about a second without hammering the API.
Downloads go to `<name>.part` and are renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import secrets
import json
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import httpx2
from pydantic import BaseModel

from .client import NemoClient
from .errors import (
    BackendError,
    BackendUnavailable,
    ExportBlocked,
    NemoError,
    OutOfCredits,
    StoreUnavailable,
    UnexpectedResponse,
)
from .jobs import Job
from .models import RenderJob
from .logs import get_logger
from .results import ExportResult
from .sessions import Session, SessionManager
from .settings import Settings
from .store import UserStore
from .tables import RENDERS
from .upload import human_size

if TYPE_CHECKING:
    from .links import Links

log = get_logger("export")

RENDER_GIVE_UP_SECONDS = 15 * 60
FINISHED_RENDERS_KEPT_SECONDS = 30 * 24 * 3600
# A record still "rendering" this long after its start lost its process and its render (given up at 15 min).
UNFINISHED_RENDERS_KEPT_SECONDS = 24 * 3600
DOWNLOAD_ATTEMPTS = 3
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
REDIRECTS = (301, 302, 303, 307, 308)
MIN_POLL_SECONDS = 0.5
MAX_POLL_SECONDS = 30.0  # the seeds' cadence: never slower than that


class NothingToExport(NemoError):
    default_message = "Nothing to export yet — describe or upload something first."


class RenderFailed(NemoError):
    pass


class DownloadFailed(NemoError):
    default_message = (
        "The video was rendered but could not be downloaded completely. "
        "Call export again: it fetches the finished render without rendering again."
    )


class OutputDirUnusable(NemoError):
    pass


def usable_output_dir(requested: str | None, default: Path) -> Path:
    """The folder to save into, created if needed; checked before any render starts."""
    try:
        directory = Path(requested).expanduser() if requested else default
        directory.mkdir(parents=True, exist_ok=True)
    except (OSError, RuntimeError, ValueError) as error:
        reason = ("a folder name cannot contain a NUL character" if isinstance(error, ValueError) else
                  getattr(error, "strerror", None) or str(error))
        shown = str(requested or default).replace("\0", "\\0")
        raise OutputDirUnusable(
            f"Cannot save videos into {shown} ({reason}). "
            "Choose another folder with output_dir, or set NEMO_OUTPUT_DIR."
        ) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputDirUnusable(f"Cannot write into {directory}. Choose another folder with output_dir, or set NEMO_OUTPUT_DIR.")
    return directory.resolve()


class RenderRecord(BaseModel):
    render_id: str
    api_url: str
    session_id: str
    task_id: str | None = None
    draft_hash: str
    started_at: float
    status: Literal["rendering", "completed", "delivered", "failed", "cancelled"] = "rendering"
    url: str | None = None
    path: str | None = None
    size_bytes: int | None = None


def new_render_id() -> str:
    """`render_<digits>`, the documented shape, unique beyond doubt.

    The client chooses render ids and NemoVideo documents no per-user scope for them, so two exports that
    chose the same id could share one render: one user's project delivered to another. Microseconds plus
    nine random digits make a collision a matter of chance no load reaches.
    """
    return f"render_{time.time_ns() // 1000}{secrets.randbelow(10 ** 9):09d}"


def draft_hash(draft: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(draft, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def has_content(draft: dict[str, Any] | None) -> bool:
    return any(isinstance(track, dict) and track.get("sg") for track in (draft or {}).get("t") or [])


def next_poll_delay(elapsed: float, progress: float | None, polls: int) -> float:
    """Ask again shortly before the render should end, judging by its progress; else back off to 30 s."""
    if progress is not None and 0 < progress < 100 and elapsed > 0:
        remaining = elapsed * (100 - progress) / progress
        return min(max(remaining * 0.6, MIN_POLL_SECONDS), MAX_POLL_SECONDS)
    return min(2.0 * 1.5 ** polls, MAX_POLL_SECONDS)


def _is_a_reply_not_a_file(response: httpx2.Response) -> bool:
    """The API answers errors as JSON with HTTP 200 in SKILL.md v1.9's style: never saved as a video."""
    return response.headers.get("content-type", "").split(";")[0].strip().lower() in ("application/json", "text/html")


def part_of(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def reserve_target(directory: Path, stem: str) -> Path:
    """A free `<stem>[-n].mp4`, reserved by creating its `.part` exclusively (safe across exports and processes)."""
    number = 1
    while True:
        candidate = directory / (f"{stem}.mp4" if number == 1 else f"{stem}-{number}.mp4")
        if not candidate.exists():
            try:
                os.close(os.open(part_of(candidate), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                return candidate
            except FileExistsError:
                pass
        number += 1


class RenderRegistry:
    """Renders this user started, in the durable store: any process can re-attach to them."""

    def __init__(self, store: UserStore, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def get(self, render_id: str) -> RenderRecord | None:
        entry = await self._store.get(RENDERS, render_id)
        try:
            return RenderRecord.model_validate(entry) if entry is not None else None
        except ValueError:
            return None

    async def forget(self, render_id: str) -> None:
        await self._store.delete(RENDERS, render_id)

    async def save(self, record: RenderRecord) -> None:
        await self._store.put(RENDERS, record.render_id, record.model_dump())

    async def delivered(self, api_url: str, session_id: str) -> list[RenderRecord]:
        """The project's videos that were saved on this computer and are still there, newest first."""
        found = []
        for entry in await self._store.renders(api_url, session_id):
            try:
                record = RenderRecord.model_validate(entry)
            except ValueError:
                continue
            if record.status == "delivered" and record.path and Path(record.path).is_file():
                found.append(record)
        return found

    async def reusable(self, api_url: str, session_id: str, digest: str) -> RenderRecord | None:
        """The newest render of this exact draft that is still usable: in flight, finished, or delivered and on disk."""
        for entry in await self._store.renders(api_url, session_id, digest):
            try:
                record = RenderRecord.model_validate(entry)
            except ValueError:
                continue
            if record.status == "completed":
                return record
            if record.status == "rendering" and self._clock() - record.started_at < RENDER_GIVE_UP_SECONDS:
                return record
            if record.status == "delivered" and record.path and Path(record.path).is_file():
                return record
        return None


RecordHook = Callable[[RenderRecord], Awaitable[None]]


class RenderMismatch(NemoError):
    default_message = (
        "NemoVideo answered about a different render than the one this export started, so its video was not "
        "saved (it could be someone else's). Call export again: it starts a new render."
    )


def _check_same_render(render_id: str, reply: RenderJob) -> None:
    """The render followed must be the one this export started: a reply naming another id is never delivered."""
    if reply.id is not None and str(reply.id) != render_id:
        log.warning("Render %s: NemoVideo answered about render %s", render_id, reply.id)
        raise RenderMismatch()


class Exporter:
    def __init__(self, client: NemoClient, sessions: SessionManager, settings: Settings,
                 links: Links | None = None) -> None:
        self._client = client
        self._sessions = sessions
        self._settings = settings
        self.registry = RenderRegistry(client.store)
        # Hosted: the video is offered as a signed link of ours, never written on the server's disk.
        self._links = links

    async def prepare(self, session: Session, on_record: RecordHook | None = None) -> RenderRecord:
        """Check there is something to render, then re-attach to its render or start one.

        The caller holds the user's export lock from before this until the export's record, so two exports never
        start two renders (a lock of its own here would be a second one held at once: a hosted replica has a
        pool of lock connections, and exports of many users at once would wait on each other for good).
        `on_record` hears of a render the moment it is recorded, before its start is sent: whoever may
        cancel the export knows the render id before NemoVideo does.
        """
        state = await self._client.state(session.session_id)
        draft = state.state.draft
        if not has_content(draft):
            raise NothingToExport()
        digest = draft_hash(draft)
        existing = await self.registry.reusable(self._settings.api_url, session.session_id, digest)
        if existing is not None:
            log.info("Re-attaching to render %s (%s)", existing.render_id, existing.status)
            return existing
        try:
            return await self._start(session, draft, digest, on_record)
        except ExportBlocked:
            # Anonymous tokens cannot render: the project link keeps the work while the user registers.
            raise ExportBlocked(await self._sessions.project_link(session), self._client.account_hint()) from None
        except OutOfCredits as error:
            raise error.with_project_link(await self._sessions.project_link(session)) from None

    async def _start(self, session: Session, draft: dict[str, Any], digest: str,
                     on_record: RecordHook | None) -> RenderRecord:
        """Start one render. A start whose outcome is unknown is never repeated: its id is asked about first.

        The render is recorded before its request is sent, so a call cancelled mid-request (a host's
        timeout) still leaves a record the next export re-attaches to instead of rendering again.
        """
        for attempt in (1, 2):
            record = RenderRecord(render_id=new_render_id(), api_url=self._settings.api_url,
                                  session_id=session.session_id, task_id=session.task_id, draft_hash=digest,
                                  started_at=time.time())
            try:
                await self.registry.save(record)
                if on_record is not None:
                    await on_record(record)
            except BaseException:
                # Stopped (a cancel, a store failure) before its start was sent: nothing renders under this record,
                # and the next export must not re-attach to it.
                with anyio.CancelScope(shield=True):
                    try:
                        await self.registry.forget(record.render_id)
                    except StoreUnavailable as error:
                        log.warning("Could not forget render %s, never started: %s", record.render_id, error.message)
                raise
            try:
                started = await self._client.start_render(record.render_id, session.session_id, draft)
                _check_same_render(record.render_id, started)
                return record
            except (BackendUnavailable, UnexpectedResponse):
                # The reply was lost or unreadable, not a refusal: the render may be running.
                if await self._was_accepted(record.render_id):
                    log.info("Render %s started although its reply was lost", record.render_id)
                    return record
                await self.registry.forget(record.render_id)
                if attempt == 2:
                    raise
            except BackendError:
                await self.registry.forget(record.render_id)  # clearly refused: nothing is rendering
                if attempt == 2:
                    raise
            except NemoError:
                await self.registry.forget(record.render_id)  # refused for a reason a new id does not change
                raise
            log.info("NemoVideo did not start render %s; trying once more with a new id", record.render_id)
        raise AssertionError("unreachable")

    async def _was_accepted(self, render_id: str) -> bool:
        """Whether the backend knows this render; when it cannot tell us, assume it does (paid work happens once)."""
        try:
            await self._client.render_status(render_id)
        except BackendError:
            return False  # a clear answer: no such render
        except NemoError:
            return True
        return True

    async def cancel(self, render_id: str | None) -> bool:
        """Ask NemoVideo to stop a render and close its record; True when the backend confirmed."""
        if render_id is None:
            return False
        record = await self.registry.get(render_id)
        try:
            await self._client.cancel_render(render_id)
            confirmed = True
        except NemoError as error:
            log.info("Cancelling render %s failed: %s", render_id, type(error).__name__)
            confirmed = False
        if record is not None and record.status == "rendering":
            await self.registry.save(record.model_copy(update={"status": "cancelled"}))
        return confirmed

    async def finish(self, job: Job, record: RenderRecord, output_dir: Path | None) -> ExportResult:
        """The render landed in `output_dir`, or, with none (hosted), offered as a download link."""
        if output_dir is None:
            if record.status == "rendering":
                record = await self._poll(job, record)
            return await self._linked_result(record)
        if record.status == "delivered" and record.path and Path(record.path).is_file():
            if Path(record.path).parent == output_dir:
                return await self._result(record, already=True)
            return await self._result(await self._copy(record, output_dir), already=False)
        if record.status == "rendering":
            record = await self._poll(job, record)
        return await self._result(await self._deliver(job, record, output_dir), already=False)

    async def _poll(self, job: Job, record: RenderRecord) -> RenderRecord:
        polls = 0
        while True:
            try:
                status = await self._client.render_status(record.render_id)
            except BackendError:
                # A clear "no such render": the backend lost it. Forgotten, so the next export renders anew.
                await self.registry.forget(record.render_id)
                raise RenderFailed("NemoVideo no longer has this render. Call export again to render the video anew.") \
                    from None
            _check_same_render(record.render_id, status)
            polls += 1
            elapsed = time.time() - record.started_at
            if status.status == "completed":
                # Without an output URL, delivery uses the API's fallback download.
                record = record.model_copy(update={"status": "completed", "url": status.url or record.url})
                await self.registry.save(record)
                return record
            if status.status in ("cancelled", "canceled"):
                await self.registry.save(record.model_copy(update={"status": "cancelled"}))
                raise RenderFailed("The render was cancelled. Call export again to start a new one.")
            if status.status == "failed":
                await self.registry.save(record.model_copy(update={"status": "failed"}))
                reason = f" ({status.error})" if status.error else ""
                raise RenderFailed(f"The render failed on NemoVideo's side{reason}. Call export again to retry.")
            if elapsed > RENDER_GIVE_UP_SECONDS:
                await self.registry.save(record.model_copy(update={"status": "failed"}))
                raise RenderFailed(
                    f"The render did not finish within {RENDER_GIVE_UP_SECONDS // 60} minutes and was given up. "
                    "Call export again to start a new one."
                )
            progress = f" {status.progress:.0f}%" if status.progress is not None else ""
            job.update(f"🎞️ Rendering{progress}…")
            await anyio.sleep(next_poll_delay(elapsed, status.progress, polls) * self._settings.render_poll_scale)

    async def _copy(self, record: RenderRecord, output_dir: Path) -> RenderRecord:
        """The same finished video, asked for in another folder: a copy, not a second render."""
        target = reserve_target(output_dir, Path(record.path or "").stem)
        try:
            await anyio.to_thread.run_sync(shutil.copyfile, record.path, part_of(target))
            os.replace(part_of(target), target)
        except OSError as error:
            part_of(target).unlink(missing_ok=True)
            raise OutputDirUnusable(f"Cannot save the video into {output_dir} ({error.strerror}).") from None
        return record.model_copy(update={"path": str(target)})

    async def _deliver(self, job: Job, record: RenderRecord, output_dir: Path) -> RenderRecord:
        target = reserve_target(output_dir, f"nemovideo-{time.strftime('%Y%m%d-%H%M%S')}")
        try:
            return await self._download_into(job, record, target)
        finally:
            # A cut or failed download never leaves a partial file where the user looks.
            part_of(target).unlink(missing_ok=True)

    async def _download_into(self, job: Job, record: RenderRecord, target: Path) -> RenderRecord:
        """The render's URL, then a fresh one from its status (signed URLs expire), then the API's fallback."""
        fallback = f"/api/render/proxy/{record.render_id}/download"
        tried: list[str] = []
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            source = await self._download_source(record, tried, fallback)
            tried.append(source)
            job.update("⬇️ Downloading the video…")
            try:
                size = await self._download(source, target)
            except OSError as error:
                raise DownloadFailed(
                    f"The video was rendered but could not be saved in {target.parent} ({error.strerror}). "
                    "Free some space or choose another folder with output_dir, then call export again."
                ) from None
            except (httpx2.HTTPError, httpx2.InvalidURL, NemoError) as error:
                log.warning("Download attempt %d of %s failed: %s", attempt, record.render_id, type(error).__name__)
                continue
            delivered = record.model_copy(update={"status": "delivered", "path": str(target), "size_bytes": size,
                                                  "url": source if source != fallback else record.url})
            await self.registry.save(delivered)
            return delivered
        raise DownloadFailed()

    async def _download_source(self, record: RenderRecord, tried: list[str], fallback: str) -> str:
        if not tried and record.url:
            return record.url
        if len(tried) == 1 and record.url:
            try:
                fresh = (await self._client.render_status(record.render_id)).url
            except NemoError:
                fresh = None
            if fresh and fresh not in tried:
                return fresh
        return fallback

    @asynccontextmanager
    async def _open_file(self, url: str, redirects: int = 3) -> AsyncIterator[httpx2.Response]:
        """The response that carries the video at `url`, redirects followed; DownloadFailed when there is none."""
        async with self._client.download(url) as response:
            if response.status_code in REDIRECTS and response.headers.get("location") and redirects:
                location = str(response.url.join(response.headers["location"]))
                async with self._open_file(location, redirects - 1) as redirected:
                    yield redirected
                return
            if response.status_code != 200 or _is_a_reply_not_a_file(response):
                raise DownloadFailed()
            yield response

    @asynccontextmanager
    async def open_render(self, record: RenderRecord) -> AsyncIterator[httpx2.Response]:
        """The finished render's video, to stream elsewhere (a hosted download link), from the first source
        that serves it."""
        fallback = f"/api/render/proxy/{record.render_id}/download"
        tried: list[str] = []
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            source = await self._download_source(record, tried, fallback)
            tried.append(source)
            opened = AsyncExitStack()
            try:
                response = await opened.enter_async_context(self._open_file(source))
            except (httpx2.HTTPError, httpx2.InvalidURL, NemoError) as error:
                await opened.aclose()
                log.warning("Opening attempt %d of %s failed: %s", attempt, record.render_id, type(error).__name__)
                continue
            async with opened:
                yield response
            return
        raise DownloadFailed()

    async def _download(self, url: str, target: Path) -> int:
        """Stream `url` into the target's `.part` and rename it into place once complete."""
        async with self._open_file(url) as response:
            expected = int(response.headers.get("content-length", "0") or 0)
            written = 0
            async with await anyio.open_file(part_of(target), "wb") as handle:
                # Raw bytes: Content-Length counts them as sent, before any content decoding.
                async for chunk in response.aiter_raw(DOWNLOAD_CHUNK_BYTES):
                    await handle.write(chunk)
                    written += len(chunk)
            if expected and written != expected:
                raise DownloadFailed()
        os.replace(part_of(target), target)
        return written

    async def _linked_result(self, record: RenderRecord) -> ExportResult:
        from .links import DOWNLOAD_LINK_SECONDS

        assert self._links is not None
        link = await self._project_link_of(record)
        download = self._links.make(self._client.store.user_id, "download", record.render_id, DOWNLOAD_LINK_SECONDS)
        reply = f"✅ Rendered. Download the video (the link works for {DOWNLOAD_LINK_SECONDS // 3600} hours): {download}"
        if link:
            reply += f"\nOpen the project in the browser: {link}"
        return ExportResult(reply=reply, status="done", download_url=download, url=record.url,
                            render_id=record.render_id, project_link=link)

    async def _project_link_of(self, record: RenderRecord) -> str | None:
        session = await self._sessions.current()
        return await self._sessions.project_link(session) if session and session.session_id == record.session_id else None

    async def _result(self, record: RenderRecord, *, already: bool) -> ExportResult:
        assert record.path is not None
        path = Path(record.path)
        link = await self._project_link_of(record)
        lead = "Already exported" if already else "✅ Exported"
        reply = f"{lead}: {path} ({human_size(record.size_bytes or path.stat().st_size)})."
        if link:
            reply += f"\nOpen the project in the browser: {link}"
        return ExportResult(reply=reply, status="done", path=str(path), size_bytes=record.size_bytes,
                            url=record.url, render_id=record.render_id, project_link=link)
