"""Draft → H.264/AAC MP4, frame by frame, with PyAV (whose wheels carry FFmpeg, libx264 and aac).

What a segment's `m` may hold, beside the summary's `name`/`text`/`role`/`vol`:

- video (`tt` 0): `media` (an uploaded file's id), `src` (ms into that file), `vol` (its own
  sound, 0 mutes it), `fx: "visualizer"` (the audio-reactive layer), `palette`, `accent`
  (a flash at its start, for cuts on beats), `tr` (ms of cross-dissolve from the previous shot).
  A segment with neither media nor fx is a colour card showing its name.
- audio (`tt` 1): `media` and `src`, or `groove: {"tempo", "seed"}` (music.py); `vol`, and
  `fi`/`fo` fade-in/out in ms.
- text (`tt` 7): `text`, drawn as a title (centre) or, with role caption/subtitle/text, low.

The renderer streams: sources are decoded as the timeline reaches them, the mix is made a
frame's worth at a time and the picture is composed in yuv420p, the encoder's format, so
memory does not grow with the video's length. The visual layer reacts to the mix itself.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .media import AUDIO_RATE, AudioReader, PictureReader, probe
from .music import Groove

RESOLUTIONS = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}
FPS = 25
VISUAL_SIZE = (640, 360)  # the visual layer is drawn here and scaled up by swscale
TEXT_FADE_SECONDS = 0.3
CAPTION_ROLES = ("caption", "subtitle", "text")
# Hue pairs (U, V offsets around 128) the visual layer and colour cards cycle through.
PALETTES = ((-40, 60), (60, -30), (-60, -40), (30, 50), (50, 30), (-20, -60), (70, 10), (-50, 20))

Resolve = Callable[[str], Path | None]


class RenderCancelled(Exception):
    pass


@dataclass
class Segment:
    track: int
    start: float
    duration: float
    meta: dict[str, Any]

    @property
    def end(self) -> float:
        return self.start + self.duration

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def segments_of(draft: dict[str, Any], track_type: int) -> list[Segment]:
    found = []
    for index, track in enumerate(draft.get("t") or []):
        if not isinstance(track, dict) or track.get("tt") != track_type:
            continue
        for raw in track.get("sg") or []:
            if isinstance(raw, dict) and _number(raw.get("d")) > 0:
                start = _number(raw.get("st", raw.get("s", raw.get("start"))))
                meta = raw.get("m") if isinstance(raw.get("m"), dict) else {}
                found.append(Segment(index, start / 1000, _number(raw["d"]) / 1000, meta))
    return found


def draft_seconds(draft: dict[str, Any]) -> float:
    return max((s.end for kind in (0, 1, 7) for s in segments_of(draft, kind)), default=0.0)


# -- sound ----------------------------------------------------------------------------------------


@dataclass
class _Voice:
    segment: Segment
    first: int
    last: int
    source: AudioReader | Groove | None = None
    offset: int = 0

    def gain(self, positions: np.ndarray) -> np.ndarray:
        meta = self.segment.meta
        seconds = (positions - self.first) / AUDIO_RATE
        gain = np.full(positions.shape, _number(meta.get("vol"), 1.0), np.float32)
        fade_in, fade_out = _number(meta.get("fi")) / 1000, _number(meta.get("fo")) / 1000
        if fade_in > 0:
            gain *= np.clip(seconds / fade_in, 0, 1)
        if fade_out > 0:
            gain *= np.clip((self.segment.duration - seconds) / fade_out, 0, 1)
        return gain


class Mixer:
    """The soundtrack a frame at a time: every audio segment, and footage's own sound, at its volume."""

    def __init__(self, draft: dict[str, Any], resolve: Resolve) -> None:
        self._resolve = resolve
        voices = [s for s in segments_of(draft, 1)]
        voices += [s for s in segments_of(draft, 0) if s.meta.get("media") and _number(s.meta.get("vol"), 1.0) > 0]
        self._voices = [_Voice(s, round(s.start * AUDIO_RATE), round(s.end * AUDIO_RATE)) for s in voices]

    def _open(self, voice: _Voice) -> None:
        meta, src = voice.segment.meta, _number(voice.segment.meta.get("src")) / 1000
        groove = meta.get("groove")
        if isinstance(groove, dict):
            voice.source = Groove(_number(groove.get("tempo"), 120.0), int(_number(groove.get("seed"))))
            voice.offset = round(src * AUDIO_RATE) - voice.first
            return
        path = self._resolve(str(meta.get("media", "")))
        facts = probe(path) if path is not None else None
        if facts is not None and facts.has_audio:  # a corrupt upload or a silent clip plays as silence
            voice.source = AudioReader(path, start=src)

    def mix(self, first: int, count: int) -> np.ndarray:
        out = np.zeros((2, count), np.float32)
        for voice in self._voices:
            low, high = max(first, voice.first), min(first + count, voice.last)
            if low >= high:
                if voice.source is not None and first >= voice.last:
                    self._close(voice)
                continue
            if voice.source is None:
                self._open(voice)
                if voice.source is None:
                    voice.last = voice.first  # nothing to play: a link, or a file that is not sound
                    continue
            if isinstance(voice.source, Groove):
                block = voice.source.render(low + voice.offset, high - low)
            else:
                block = voice.source.read(high - low)
            out[:, low - first:high - first] += block * voice.gain(np.arange(low, high))
        return np.clip(out, -1.0, 1.0)

    def _close(self, voice: _Voice) -> None:
        if isinstance(voice.source, AudioReader):
            voice.source.close()
        voice.source = None
        voice.last = voice.first  # done for good

    def close(self) -> None:
        for voice in self._voices:
            if voice.source is not None:
                self._close(voice)


# -- pictures -------------------------------------------------------------------------------------


class Canvas:
    """A yuv420p picture as one packed array with Y/U/V views into it."""

    def __init__(self, width: int, height: int, packed: np.ndarray | None = None) -> None:
        self.width, self.height = width, height
        self.packed = np.empty((height * 3 // 2, width), np.uint8) if packed is None else packed
        self.y = self.packed[:height]
        quarter = height // 4
        self.u = self.packed[height:height + quarter].reshape(height // 2, width // 2)
        self.v = self.packed[height + quarter:].reshape(height // 2, width // 2)

    def fill(self, y: float, u: float, v: float) -> Canvas:
        self.y[:], self.u[:], self.v[:] = y, u, v
        return self

    def frame(self) -> av.VideoFrame:
        return av.VideoFrame.from_ndarray(self.packed, format="yuv420p")


class Visualizer:
    """The audio-reactive layer: a glow that swells with loudness, a ring that leaves each cut.

    Everything that depends on the pixel is precomputed; a frame is a 1-D radial profile
    looked up per pixel plus a rotating ray pattern, so the layer costs little beside the encoder.
    """

    PROFILE_STEPS = 1024

    def __init__(self) -> None:
        width, height = VISUAL_SIZE
        self.canvas = Canvas(width, height)
        radius, angle = self._polar(width, height)
        self._reach = float(radius.max())
        self._radius_index = np.minimum(radius / self._reach * self.PROFILE_STEPS,
                                        self.PROFILE_STEPS - 1).astype(np.intp)
        self._radii = np.linspace(0, self._reach, self.PROFILE_STEPS, dtype=np.float32)
        falloff = np.exp(-radius).astype(np.float32)
        self._rays_cos = (np.cos(7 * angle) * falloff).astype(np.float32)
        self._rays_sin = (np.sin(7 * angle) * falloff).astype(np.float32)
        self._falloff = falloff
        chroma_radius, _ = self._polar(width // 2, height // 2)
        self._tint = np.clip(1.2 - 0.5 * chroma_radius, 0.2, 1.0).astype(np.float32)

    @staticmethod
    def _polar(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        x = (xs - width / 2) / (height / 2)
        y = (ys - height / 2) / (height / 2)
        return np.sqrt(x * x + y * y), np.arctan2(y, x)

    def draw(self, segment: Segment, t: float, level: float) -> Canvas:
        since = t - segment.start
        progress = min(1.0, since / max(segment.duration, 1e-3))
        du, dv = PALETTES[int(_number(segment.meta.get("palette"))) % len(PALETTES)]
        r = self._radii
        profile = np.exp(-(r / (0.3 + 0.5 * level)) ** 2) * (60 + 170 * level)
        profile += np.exp(-((r - (0.15 + 1.3 * progress)) / 0.05) ** 2) * (150 * (1 - progress))
        profile += 24 + (70 * math.exp(-since / 0.12) if segment.meta.get("accent") else 0.0)
        luma = profile[self._radius_index]
        # cos(7θ + φ) without a per-pixel cosine: the rays turn with time and brighten with loudness.
        phase = 2.5 * t
        luma += (self._rays_cos * math.cos(phase) - self._rays_sin * math.sin(phase) + self._falloff) * (25 * level)
        np.clip(luma, 16, 235, out=luma)
        self.canvas.y[:] = luma
        self.canvas.u[:] = 128 + du * self._tint
        self.canvas.v[:] = 128 + dv * self._tint
        return self.canvas


class TextLayer:
    """One text segment as masks drawn once with Pillow (white with a dark outline)."""

    def __init__(self, text: str, caption: bool, width: int, height: int) -> None:
        size = max(12, int(height * (0.055 if caption else 0.1)))
        font = ImageFont.load_default(size)
        while font.getlength(text) > width * 0.9 and size > 12:
            size = int(size * 0.9)
            font = ImageFont.load_default(size)
        stroke = max(2, size // 14)
        left, top, right, bottom = font.getbbox(text, stroke_width=stroke)
        box_w, box_h = (right - left + 3) // 2 * 2, (bottom - top + 3) // 2 * 2
        fill, outline = Image.new("L", (box_w, box_h)), Image.new("L", (box_w, box_h))
        ImageDraw.Draw(outline).text((-left, -top), text, font=font, fill=255, stroke_width=stroke, stroke_fill=255)
        ImageDraw.Draw(fill).text((-left, -top), text, font=font, fill=255)
        self.fill = np.asarray(fill, np.float32) / 255
        self.outline = np.asarray(outline, np.float32) / 255
        self.chroma = self.outline.reshape(box_h // 2, 2, box_w // 2, 2).mean(axis=(1, 3))
        self.x = (width - box_w) // 4 * 2
        centre_y = height * (0.85 if caption else 0.5)
        self.y = max(0, min(height - box_h, int(centre_y - box_h / 2))) // 2 * 2

    def draw(self, canvas: Canvas, opacity: float) -> None:
        h, w = self.fill.shape
        region = canvas.y[self.y:self.y + h, self.x:self.x + w]
        luma = region * (1 - self.outline * opacity) + 16 * self.outline * opacity
        region[:] = luma * (1 - self.fill * opacity) + 235 * self.fill * opacity
        for plane in (canvas.u, canvas.v):
            chroma = plane[self.y // 2:(self.y + h) // 2, self.x // 2:(self.x + w) // 2]
            chroma[:] = chroma * (1 - self.chroma * opacity) + 128 * self.chroma * opacity


@dataclass
class _Shot:
    segment: Segment
    reader: PictureReader | None = None
    card: Canvas | None = None


class Picture:
    """The picture at each frame time: the top video segment, its transition and accent, then text."""

    def __init__(self, draft: dict[str, Any], resolve: Resolve, width: int, height: int) -> None:
        self.width, self.height = width, height
        self._resolve = resolve
        self._segments = segments_of(draft, 0)
        self._texts = [s for s in segments_of(draft, 7) if str(s.meta.get("text", "")).strip()]
        self._text_layers: dict[int, TextLayer] = {}
        self._visualizer = Visualizer()
        self._shot: _Shot | None = None
        self._out = Canvas(width, height)
        self._previous = Canvas(width, height).fill(16, 128, 128)
        self._black = Canvas(width, height).fill(16, 128, 128)

    def _shot_at(self, t: float) -> _Shot | None:
        # Later tracks lie on top of earlier ones.
        active = [s for s in self._segments if s.covers(t)]
        segment = max(active, key=lambda s: (s.track, s.start)) if active else None
        if self._shot is not None and self._shot.segment is segment:
            return self._shot
        if self._shot is not None:
            self._previous.packed[:] = self._out.packed
            if self._shot.reader is not None:
                self._shot.reader.close()
        self._shot = None if segment is None else self._open(segment)
        return self._shot

    def _open(self, segment: Segment) -> _Shot:
        shot = _Shot(segment)
        path = self._resolve(str(segment.meta.get("media", ""))) if segment.meta.get("media") else None
        if path is not None:
            try:
                shot.reader = PictureReader(path, self.width, self.height, _number(segment.meta.get("src")) / 1000)
            except (av.FFmpegError, IndexError):
                shot.reader = None  # sound only, or not a picture: a card stands in
        if shot.reader is None and segment.meta.get("fx") != "visualizer":
            du, dv = PALETTES[int(_number(segment.meta.get("palette"))) % len(PALETTES)]
            shot.card = Canvas(self.width, self.height).fill(60, 128 + du * 0.6, 128 + dv * 0.6)
            name = str(segment.meta.get("name", "")).strip()
            if name:
                TextLayer(name, True, self.width, self.height).draw(shot.card, 1.0)
        return shot

    def draw(self, t: float, level: float) -> Canvas:
        shot, out = self._shot_at(t), self._out
        if shot is None:
            out.packed[:] = self._black.packed
        elif shot.reader is not None:
            src = _number(shot.segment.meta.get("src")) / 1000
            planes = shot.reader.at(src + t - shot.segment.start)
            if planes is None:
                out.packed[:] = self._black.packed
            else:
                out.y[:], out.u[:], out.v[:] = planes
        elif shot.card is not None:
            out.packed[:] = shot.card.packed
        else:
            small = self._visualizer.draw(shot.segment, t, level).frame()
            scaled = small.reformat(self.width, self.height, interpolation="FAST_BILINEAR").to_ndarray()
            out.packed[:] = scaled
        if shot is not None:
            self._transition(shot.segment, t)
        for index, segment in enumerate(self._texts):
            if segment.covers(t):
                layer = self._text_layers.get(index)
                if layer is None:
                    caption = str(segment.meta.get("role", "")).lower() in CAPTION_ROLES
                    layer = self._text_layers[index] = TextLayer(str(segment.meta["text"]).strip(), caption,
                                                                 self.width, self.height)
                edge = min(t - segment.start, segment.end - t)
                layer.draw(out, min(1.0, edge / TEXT_FADE_SECONDS + 0.1))
        return out

    def _transition(self, segment: Segment, t: float) -> None:
        since = t - segment.start
        dissolve = _number(segment.meta.get("tr")) / 1000
        if dissolve > 0 and since < dissolve:
            weight = since / dissolve
            blended = self._out.packed * weight + self._previous.packed * (1 - weight)
            self._out.packed[:] = blended
        if segment.meta.get("accent") and segment.meta.get("fx") != "visualizer" and since < 0.2:
            lift = 60 * math.exp(-since / 0.06)
            np.clip(self._out.y.astype(np.int16) + int(lift), 0, 235, out=self._out.y, casting="unsafe")

    def close(self) -> None:
        if self._shot is not None and self._shot.reader is not None:
            self._shot.reader.close()


# -- the whole render -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderResult:
    path: Path
    duration: float
    size: int


class _Encoder:
    """Encodes and muxes on its own thread: PyAV drops the GIL inside the codecs, so x264 works
    while the next picture is composed. The queue is short, which keeps memory flat."""

    def __init__(self, target: Path, width: int, height: int) -> None:
        self._container = av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"})
        self._video = self._container.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "crf": "21"})
        self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
        self._audio = self._container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        self._audio.bit_rate = 160_000
        self._queue: queue.Queue[tuple[av.AudioFrame, av.VideoFrame] | None] = queue.Queue(maxsize=4)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sandbox-encoder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                sound, picture = item
                self._container.mux(self._audio.encode(sound))
                self._container.mux(self._video.encode(picture))
            self._container.mux(self._video.encode(None))
            self._container.mux(self._audio.encode(None))
        except BaseException as error:  # handed to the rendering thread, which raises it
            self._failure = error
            while self._queue.get() is not None:  # unblock the producer until it stops
                pass
        finally:
            self._container.close()

    def put(self, sound: av.AudioFrame, picture: av.VideoFrame) -> None:
        if self._failure is not None:
            raise self._failure
        self._queue.put((sound, picture))

    def finish_quietly(self) -> None:
        with contextlib.suppress(BaseException):
            self.finish()

    def finish(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._failure is not None:
            raise self._failure


def render(draft: dict[str, Any], resolve: Resolve, target: Path, *, resolution: str = "720p",
           progress: Callable[[float], None] = lambda fraction: None,
           cancelled: Callable[[], bool] = lambda: False) -> RenderResult:
    """Render `draft` to `target` (written beside it, then renamed into place)."""
    width, height = RESOLUTIONS[resolution]
    frames = max(1, round(draft_seconds(draft) * FPS))
    part = target.with_name(target.name + ".part")
    mixer, picture = Mixer(draft, resolve), Picture(draft, resolve, width, height)
    encoder = None
    try:
        encoder = _Encoder(part, width, height)
        level = 0.0
        for index in range(frames):
            if cancelled():
                raise RenderCancelled()
            first, last = index * AUDIO_RATE // FPS, (index + 1) * AUDIO_RATE // FPS
            sound = mixer.mix(first, last - first)
            block = av.AudioFrame.from_ndarray(sound, format="fltp", layout="stereo")
            block.sample_rate, block.pts = AUDIO_RATE, first
            # The visual layer follows the mix: fast attack, slower release.
            loudness = float(np.sqrt(np.mean(sound * sound))) * 4
            level = max(min(1.0, loudness), level * 0.85)
            frame = picture.draw(index / FPS, level).frame()
            frame.pts = index
            encoder.put(block, frame)
            if index % 10 == 0:
                progress(index / frames)
        encoder.finish()
        encoder = None
        os.replace(part, target)
    except BaseException:
        if encoder is not None:
            encoder.finish_quietly()
        part.unlink(missing_ok=True)
        raise
    finally:
        mixer.close()
        picture.close()
    progress(1.0)
    return RenderResult(target, frames / FPS, target.stat().st_size)
