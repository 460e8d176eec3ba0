"""The sandbox's workshop: uploaded files kept on disk, what they hold, and renders on a worker thread.

Each Sandbox has one Studio, with a private temporary folder made on first use and removed
on close. Uploads are copied there (the agent analyses them, the renderer reads them);
renders run one at a time on a worker thread, off the event loop, and report their progress.

Without the `render` extra (PyAV, numpy, Pillow) nothing is analysed and every render is
the shipped placeholder clip, `placeholder.mp4`: a real, playable 2-second H.264/AAC file
that says how to get real rendering. It was made once with render.py (360p: the title
"NemoVideo sandbox" over a card named "pip install 'nemovideo-mcp[render]' for real videos",
and silence), so the package needs no encoder to serve it.
"""

from __future__ import annotations

import importlib.util
import logging
import re
import shlex
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

log = logging.getLogger("nemovideo.sandbox")

PLACEHOLDER = Path(__file__).with_name("placeholder.mp4")
PLACEHOLDER_SECONDS = 2.0
DEFAULT_RESOLUTION = "720p"


def render_hint(command: str = "--sandbox") -> str:
    """How to get real renders: the command that installs the render extra from where this copy came from (the
    package is not on PyPI, so a bare `pip install 'nemovideo-mcp[render]'` works only once it is)."""
    from ..identity import PACKAGE_DIR, installed_from

    folder = installed_from() or (PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None)
    source = shlex.quote(f"{folder}[render]" if folder is not None else "nemovideo-mcp[render]")
    return f"Real rendering needs the render extra (PyAV, numpy, Pillow): uvx --from {source} nemovideo-mcp {command}"


def rendering_available() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("av", "numpy", "PIL"))


@dataclass(frozen=True)
class Upload:
    """An uploaded file as the agent sees it: name and kind, and what analysis found in it."""

    id: str
    name: str
    kind: str  # audio, video or image
    duration: float = 0.0
    tempo: float | None = None
    beats: tuple[float, ...] = ()
    scenes: tuple[float, ...] = ()


@dataclass
class Kept:
    path: Path
    facts: dict[str, Any] = field(default_factory=dict)  # duration, width, height, fps for the upload reply
    tempo: float | None = None
    beats: tuple[float, ...] = ()
    scenes: tuple[float, ...] = ()


class RenderJob:
    """One render: progress 0..1, then a file (or an error). Read from any thread."""

    def __init__(self, path: Path | None = None, duration: float = 0.0) -> None:
        self.progress = 1.0 if path else 0.0
        self.path = path
        self.duration = duration
        self.error: str | None = None
        self._cancelled = threading.Event()

    @classmethod
    def failed(cls, error: str) -> RenderJob:
        job = cls()
        job.error, job.progress = error, 1.0
        return job

    def cancel(self) -> None:
        self._cancelled.set()

    def cancelled(self) -> bool:
        return self._cancelled.is_set()


def _safe_name(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", Path(name).name)[-80:] or "upload"


class Studio:
    def __init__(self) -> None:
        self.can_render = rendering_available()
        self._lock = threading.Lock()
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        self._kept: dict[str, Kept] = {}
        self._jobs: list[RenderJob] = []
        self._worker: ThreadPoolExecutor | None = None
        self._counter = 0
        if not self.can_render:
            log.warning("The sandbox serves a placeholder clip for every render. %s", render_hint())

    def _path_for(self, name: str) -> Path:
        with self._lock:
            if self._folder is None:
                self._folder = tempfile.TemporaryDirectory(prefix="nemovideo-sandbox-", ignore_cleanup_errors=True)
            self._counter += 1
            return Path(self._folder.name) / f"{self._counter:04d}-{_safe_name(name)}"

    # -- uploads ------------------------------------------------------------------------------

    def keep(self, source: IO[bytes], name: str, kind: str) -> Kept:
        """Copy an upload into the folder and analyse it (blocking: call it from a worker thread)."""
        path = self._path_for(name)
        with path.open("wb") as target:
            shutil.copyfileobj(source, target, 1024 * 1024)
        kept = Kept(path)
        if not self.can_render:
            return kept
        import av

        from .analysis import beats_of, scenes_of
        from .media import probe

        facts = probe(path)
        if facts is None:
            return kept  # not media FFmpeg can read: kept, but nothing to analyse
        kept.facts = {"duration": facts.duration, "width": facts.width, "height": facts.height, "fps": facts.fps}
        try:
            if kind == "audio" or (kind == "video" and facts.width is None):
                found = beats_of(path)
                kept.tempo, kept.beats = found.tempo, tuple(found.times)
            elif kind == "video":
                kept.scenes = tuple(scenes_of(path))
        except av.FFmpegError:
            pass  # a header FFmpeg reads over data it cannot decode: kept, with no beats or scenes (a backend stores it)
        return kept

    def adopt(self, media_id: str, kept: Kept) -> None:
        with self._lock:
            self._kept[media_id] = kept

    def path_of(self, media_id: str) -> Path | None:
        with self._lock:
            kept = self._kept.get(media_id)
        return kept.path if kept is not None and kept.path.exists() else None

    def uploads(self, video_infos: list[dict[str, Any]]) -> list[Upload]:
        """The session's uploads (its `video_infos`) with what analysis found in each."""
        found = []
        for info in video_infos:
            with self._lock:
                kept = self._kept.get(str(info.get("id")))
            facts = kept.facts if kept is not None else {}
            found.append(Upload(
                id=str(info.get("id")), name=str(info.get("name", "")), kind=str(info.get("type", "video")),
                duration=float(facts.get("duration") or 0.0), tempo=kept.tempo if kept else None,
                beats=kept.beats if kept else (), scenes=kept.scenes if kept else ()))
        return found

    # -- renders ------------------------------------------------------------------------------

    def render(self, draft: dict[str, Any], output: object, *, real: bool = True) -> RenderJob:
        if not (real and self.can_render):
            return RenderJob(PLACEHOLDER, PLACEHOLDER_SECONDS)
        resolution = output.get("resolution") if isinstance(output, dict) else None
        from .render import RESOLUTIONS

        job = RenderJob()
        target = self._path_for("render.mp4")
        with self._lock:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(1, thread_name_prefix="sandbox-render")
            self._jobs.append(job)
            worker = self._worker
        worker.submit(self._run, job, draft, target, resolution if resolution in RESOLUTIONS else DEFAULT_RESOLUTION)
        return job

    def _run(self, job: RenderJob, draft: dict[str, Any], target: Path, resolution: str) -> None:
        from .render import RenderCancelled, render

        if job.cancelled():
            job.error, job.progress = "cancelled", 1.0
            return
        try:
            result = render(draft, self.path_of, target, resolution=resolution,
                            progress=lambda fraction: setattr(job, "progress", min(fraction, 0.99)),
                            cancelled=job.cancelled)
        except RenderCancelled:
            job.error = "cancelled"
        except Exception as error:  # the render status reports it; the sandbox keeps serving
            log.exception("Sandbox render failed")
            job.error = f"render failed: {error}"
        else:
            job.duration, job.path = result.duration, result.path
        job.progress = 1.0

    # -- life cycle ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every upload and render, and delete their files."""
        with self._lock:
            jobs, self._jobs = self._jobs, []
            self._kept.clear()
            worker, self._worker = self._worker, None
            folder, self._folder = self._folder, None
        for job in jobs:
            job.cancel()
        if worker is not None:
            worker.shutdown(wait=True, cancel_futures=True)
        if folder is not None:
            folder.cleanup()

    close = reset
