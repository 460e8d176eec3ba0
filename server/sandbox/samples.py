"""Media the demo (and the tests and benchmark) make for themselves: a track, a clip with shots.

Needs the `render` extra. Both are deterministic: the same arguments give the same file contents
(apart from the encoder's own metadata).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from .media import AUDIO_RATE
from .music import Groove, write_wav

SHOT_COLOURS = ((200, 60, 40), (30, 110, 200), (240, 200, 40), (40, 160, 90), (150, 50, 180), (230, 120, 170))


def make_track(path: Path, seconds: float = 6.0, tempo: float = 120.0, seed: int = 11) -> Path:
    """Drums, bass and chords as a WAV, rendered a second at a time."""
    total = round(seconds * AUDIO_RATE)
    groove = Groove(tempo, seed)
    blocks = [groove.render(start, min(AUDIO_RATE, total - start)) for start in range(0, total, AUDIO_RATE)]
    return write_wav(path, np.concatenate(blocks, axis=1))


def make_clip(path: Path, seconds: float = 6.0, shots: int = 3, size: tuple[int, int] = (640, 360),
              fps: int = 25) -> Path:
    """An H.264/AAC clip of `shots` equal shots: each its own colour with a moving square and its own hum."""
    width, height = size
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = round(seconds * fps)
    per_shot = frames / shots
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        ys, xs = np.mgrid[0:height, 0:width]
        shade = (0.6 + 0.4 * ys / height)[..., None]
        for index in range(frames):
            shot = min(shots - 1, int(index / per_shot))
            picture = (np.array(SHOT_COLOURS[shot % len(SHOT_COLOURS)]) * shade).astype(np.uint8)
            side = height // 5
            x = int((index - shot * per_shot) / per_shot * (width - side))
            picture[height // 2 - side // 2:height // 2 + side // 2, x:x + side] = 245
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
            first, last = index * AUDIO_RATE // fps, (index + 1) * AUDIO_RATE // fps
            t = np.arange(first, last) / AUDIO_RATE
            hum = (0.15 * np.sin(2 * np.pi * (110 + 40 * shot) * t)).astype(np.float32)[None, :]
            sound = av.AudioFrame.from_ndarray(hum, format="fltp", layout="mono")
            sound.sample_rate, sound.pts = AUDIO_RATE, first
            container.mux(audio.encode(sound))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


def describe(path: Path) -> str:
    """What a video file holds, in one line: duration and streams."""
    with av.open(str(path)) as container:
        streams = []
        for stream in container.streams:
            context = stream.codec_context
            if stream.type == "video":
                streams.append(f"{context.name} {stream.width}x{stream.height} {float(stream.average_rate or 0):g} fps")
            elif stream.type == "audio":
                streams.append(f"{context.name} {stream.sample_rate} Hz {stream.layout.name}")
        seconds = container.duration / av.time_base if container.duration else 0.0
    return f"{seconds:.2f} s, streams: {', '.join(streams)}"
