"""Reading the user's media with PyAV: what a file holds, its sound as blocks, its pictures at given times.

Everything streams: a source is decoded as far as the renderer has got and no further, so
memory stays flat however long the file is. Pictures come out as yuv420p planes, the
encoder's own format, so no frame is converted twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 44100

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # Y, U, V


@dataclass(frozen=True)
class Probe:
    duration: float
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    has_audio: bool = False


def probe(path: Path) -> Probe | None:
    """What the file holds, or None when it is not media FFmpeg can read (a renamed text file, say)."""
    try:
        with av.open(str(path)) as container:
            video = container.streams.video[0] if container.streams.video else None
            duration = container.duration / av.time_base if container.duration else 0.0
            if not duration and video is not None and video.duration and video.time_base:
                duration = float(video.duration * video.time_base)
            fps = float(video.average_rate) if video is not None and video.average_rate else None
            return Probe(round(duration, 3), video.width if video else None, video.height if video else None,
                         round(fps, 3) if fps else None, bool(container.streams.audio))
    except (av.FFmpegError, OSError, ValueError):
        return None


def audio_blocks(path: Path, rate: int = AUDIO_RATE, layout: str = "stereo",
                 start: float = 0.0) -> Iterator[np.ndarray]:
    """The file's sound from `start` seconds on, as float32 (channels, n) blocks at `rate`."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        if start > 0:
            container.seek(int(start * av.time_base), any_frame=False)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        skip: int | None = None
        for frame in container.decode(stream):
            if skip is None:
                # A seek lands on a packet at or before `start`; drop (or pad) up to it exactly.
                skip = round((start - (frame.time or 0.0)) * rate)
                if skip < 0:
                    yield np.zeros((1 if layout == "mono" else 2, -skip), np.float32)
                    skip = 0
            for resampled in resampler.resample(frame):
                block = resampled.to_ndarray()
                dropped = min(skip, block.shape[1])
                skip -= dropped
                if block.shape[1] > dropped:
                    yield block[:, dropped:]
        for resampled in resampler.resample(None):
            yield resampled.to_ndarray()


class AudioReader:
    """Pull-style reading of `audio_blocks`: exactly n samples per call, silence after the end."""

    def __init__(self, path: Path, start: float = 0.0, rate: int = AUDIO_RATE) -> None:
        self._blocks = audio_blocks(path, rate, "stereo", start)
        self._pending = np.zeros((2, 0), np.float32)

    def read(self, count: int) -> np.ndarray:
        parts, have = [self._pending], self._pending.shape[1]
        while have < count:
            block = next(self._blocks, None)
            if block is None:
                parts.append(np.zeros((2, count - have), np.float32))
                break
            parts.append(block)
            have += block.shape[1]
        joined = np.concatenate(parts, axis=1)
        self._pending = joined[:, count:]
        return joined[:, :count]

    def close(self) -> None:
        self._blocks.close()


def cover_box(source_w: int, source_h: int, width: int, height: int) -> tuple[int, int, int, int]:
    """Scaled size and crop offsets that fill width×height without bars (even numbers, as yuv420p needs)."""
    scale = max(width / source_w, height / source_h)
    scaled_w, scaled_h = max(width, round(source_w * scale / 2) * 2), max(height, round(source_h * scale / 2) * 2)
    return scaled_w, scaled_h, (scaled_w - width) // 4 * 2, (scaled_h - height) // 4 * 2


def frame_planes(frame: av.VideoFrame, width: int, height: int) -> Planes:
    """One decoded picture scaled to cover width×height, cropped to the centre, as Y/U/V planes."""
    scaled_w, scaled_h, left, top = cover_box(frame.width, frame.height, width, height)
    packed = frame.reformat(scaled_w, scaled_h, format="yuv420p", interpolation="BILINEAR").to_ndarray()
    y = packed[:scaled_h]
    chroma = packed[scaled_h:].reshape(2, scaled_h // 2, scaled_w // 2)
    return (y[top:top + height, left:left + width],
            chroma[0, top // 2:(top + height) // 2, left // 2:(left + width) // 2],
            chroma[1, top // 2:(top + height) // 2, left // 2:(left + width) // 2])


class PictureReader:
    """Pictures of a video (or an image) at increasing times from `start`; an image, or a video
    past its end, holds its last picture."""

    def __init__(self, path: Path, width: int, height: int, start: float = 0.0) -> None:
        self._container = av.open(str(path))
        self._size = (width, height)
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        if start > 0:
            self._container.seek(int(start * av.time_base), any_frame=False)
        self._frames = self._container.decode(stream)
        self._start = start
        self._current: av.VideoFrame | None = None
        self._next: av.VideoFrame | None = next(self._frames, None)
        self._planes: Planes | None = None

    def at(self, t: float) -> Planes | None:
        """The picture showing `t` seconds into the file (t never goes back)."""
        changed = False
        while self._next is not None and (self._current is None or (self._next.time or 0.0) <= t + 1e-6):
            self._current, changed = self._next, True
            self._next = next(self._frames, None)
        if self._current is None:
            return None
        if changed or self._planes is None:
            self._planes = frame_planes(self._current, *self._size)
        return self._planes

    def close(self) -> None:
        self._container.close()
