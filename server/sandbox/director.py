"""What the sandbox agent makes from the user's uploads, as a short-key draft (see render.py for `m`).

Three flows, one per kind of skill:

- music → video: the track is the soundtrack; the picture cuts on its beats (the uploaded
  footage, or the audio-reactive visual layer when there is none), with a title.
- video → music: the clips as they are, with a generated music bed at a tempo that suits
  their cuts, fading in and out, over their own sound turned down.
- video → new video: a short cut of the footage's shots, each a whole number of beats long,
  with cross-dissolves and a generated music bed.

Everything follows from the uploads and their analysis, so the same input gives the same draft.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from .studio import Upload

Draft = dict[str, Any]

UNKNOWN_SECONDS = 10.0  # a link, or a file that is not readable media
TITLE_SECONDS = 3.0
MIN_SHOT_SECONDS = 1.2
RECUT_BEATS_PER_SHOT = 4
RECUT_MAX_SHOTS = 8
RECUT_TEMPO = 120.0
DISSOLVE_MS = 400
RECUT_WORDS = ("transition", "new video", "new short", "promo", "recut", "re-cut", "highlight", "montage", "trailer")


@dataclass(frozen=True)
class Plan:
    draft: Draft
    text: str
    title: str
    seconds: float


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _seconds(upload: Upload) -> float:
    return upload.duration if upload.duration > 0 else UNKNOWN_SECONDS


def title_of(name: str) -> str:
    stem = PurePosixPath(name).stem.replace("_", " ").replace("-", " ").strip()
    return " ".join(word[:1].upper() + word[1:] for word in stem.split()) or "My Video"


def _seed(uploads: list[Upload]) -> int:
    return zlib.crc32("|".join(f"{u.name}:{u.duration}:{len(u.beats)}:{len(u.scenes)}" for u in uploads).encode())


def _segments(cuts: list[float], end: float, meta_of: Any) -> list[dict[str, Any]]:
    """Back-to-back segments from cut times (ms-exact, so they tile the timeline with no gap)."""
    marks = [_ms(cut) for cut in cuts] + [_ms(end)]
    return [{"st": start, "d": stop - start, "m": meta_of(index, start / 1000, (stop - start) / 1000)}
            for index, (start, stop) in enumerate(zip(marks, marks[1:])) if stop > start]


def _title_track(title: str, seconds: float) -> dict[str, Any]:
    return {"tt": 7, "sg": [{"st": 0, "d": _ms(min(TITLE_SECONDS, seconds)), "m": {"text": title, "role": "title"}}]}


def _grid(tempo: float, seconds: float) -> list[float]:
    beat = 60 / tempo
    return [index * beat for index in range(int(seconds / beat) + 1)]


def music_video(track: Upload, footage: list[Upload]) -> Plan:
    seconds = _seconds(track)
    tempo = track.tempo or RECUT_TEMPO
    beats = list(track.beats) or _grid(tempo, seconds)
    beats = [beat for beat in beats if 0.05 < beat < seconds - 0.05]
    title = title_of(track.name)
    if footage:
        # Footage cuts on every beat, or every few when beats come faster than a shot can be read.
        step = max(1, round(MIN_SHOT_SECONDS / (60 / tempo)))
        cuts = [0.0, *beats[step - 1::step]]
        cursors = dict.fromkeys((clip.id for clip in footage), 0.0)

        def shot(index: int, start: float, length: float) -> dict[str, Any]:
            clip = footage[index % len(footage)]
            offset = cursors[clip.id]
            cursors[clip.id] = offset + length if offset + 2 * length <= _seconds(clip) else 0.0
            meta = {"name": clip.name, "media": clip.id, "vol": 0, "accent": index > 0}
            return meta | ({"src": _ms(offset)} if clip.kind == "video" else {})

        video = _segments(cuts, seconds, shot)
        made = f"cut on its beats from {', '.join(clip.name for clip in footage)}"
    else:
        video = _segments([0.0, *beats], seconds, lambda index, start, length: {
            "name": "beat visuals", "fx": "visualizer", "palette": index, "accent": True})
        made = "an audio-reactive visual layer that changes on every beat"
    draft = {"t": [
        {"tt": 0, "sg": video},
        {"tt": 1, "sg": [{"st": 0, "d": _ms(seconds), "m": {"name": track.name, "media": track.id, "vol": 1.0,
                                                              "role": "bgm"}}]},
        _title_track(title, seconds),
    ]}
    text = (f'Your music video is ready: {seconds:g} s of {made}, {len(video)} shots at {tempo:.0f} BPM, '
            f'with "{track.name}" as the soundtrack and the title "{title}".')
    return Plan(draft, text, title, seconds)


def _pace_tempo(clips: list[Upload]) -> float:
    """A tempo whose bars fit the footage's shots: slow footage gets a slow groove."""
    total = sum(_seconds(clip) for clip in clips)
    shots = len(clips) + sum(len(clip.scenes) for clip in clips)
    shot = total / shots
    candidates = [60 * beats / shot for beats in (1, 2, 4, 8, 16)]
    return round(min(candidates, key=lambda tempo: abs(tempo - 105)) if shot > 0 else 100.0, 1)


def _groove(name: str, seconds: float, tempo: float, seed: int, volume: float) -> dict[str, Any]:
    return {"tt": 1, "sg": [{"st": 0, "d": _ms(seconds), "m": {
        "name": name, "groove": {"tempo": max(70.0, min(150.0, tempo)), "seed": seed}, "vol": volume,
        "fi": 500, "fo": 1500, "role": "bgm"}}]}


def music_for_video(clips: list[Upload]) -> Plan:
    tempo = _pace_tempo(clips)
    starts = [0.0]
    for clip in clips:
        starts.append(starts[-1] + _seconds(clip))
    seconds = starts[-1]
    video = [{"st": _ms(start), "d": _ms(_seconds(clip)),
              "m": {"name": clip.name, "media": clip.id, "src": 0, "vol": 0.35}}
             for clip, start in zip(clips, starts)]
    name = f"Generated groove ({tempo:.0f} BPM)"
    draft = {"t": [{"tt": 0, "sg": video}, _groove(name, seconds, tempo, _seed(clips), 0.8)]}
    shots = len(clips) + sum(len(clip.scenes) for clip in clips)
    text = (f"Your video has music: a {seconds:g} s background track generated for it at {tempo:.0f} BPM "
            f"(drums, bass and chords paced to its {shots} shot{'s' if shots > 1 else ''}), "
            f"with the video's own sound kept underneath at 35%.")
    return Plan(draft, text, title_of(clips[0].name), seconds)


def _shots(clips: list[Upload]) -> list[tuple[Upload, float, float]]:
    """Every shot of every clip as (clip, start, end); a clip without cuts is one shot."""
    shots = []
    for clip in clips:
        bounds = [0.0, *[t for t in clip.scenes if 0 < t < _seconds(clip)], _seconds(clip)]
        shots += [(clip, start, end) for start, end in zip(bounds, bounds[1:]) if end - start > 0.2]
    return shots


def recut(clips: list[Upload]) -> Plan:
    beat = 60 / RECUT_TEMPO
    shot_seconds = RECUT_BEATS_PER_SHOT * beat
    shots = _shots(clips)
    if len(shots) < 3:  # too few cuts to choose from: take moments spread through the footage
        shots = [(clip, start, min(start + shot_seconds, _seconds(clip)))
                 for clip in clips for start in _grid(60 / shot_seconds, max(0.0, _seconds(clip) - shot_seconds))]
    picked = shots[:: max(1, len(shots) // RECUT_MAX_SHOTS)][:RECUT_MAX_SHOTS]
    video, start = [], 0.0
    for index, (clip, shot_start, shot_end) in enumerate(picked):
        # The middle of the shot, a whole number of beats long (at most a bar), so cuts land on beats.
        available = shot_end - shot_start
        length = min(available, beat * max(1, min(RECUT_BEATS_PER_SHOT, int(available / beat))))
        source = shot_start + (shot_end - shot_start - length) / 2
        meta = {"name": clip.name, "media": clip.id, "vol": 0, "tr": DISSOLVE_MS if index else 0}
        meta |= {"src": _ms(source)} if clip.kind == "video" else {}
        video.append({"st": _ms(start), "d": _ms(length), "m": meta})
        start += length
    seconds = start
    title = title_of(clips[0].name)
    name = f"Generated groove ({RECUT_TEMPO:.0f} BPM)"
    draft = {"t": [{"tt": 0, "sg": video}, _groove(name, seconds, RECUT_TEMPO, _seed(clips), 0.9),
                   _title_track(title, seconds)]}
    text = (f'Your new video is ready: {len(video)} shots from {", ".join(clip.name for clip in clips)} '
            f'cut to {seconds:g} s on the beat, with cross-dissolves, a generated {RECUT_TEMPO:.0f} BPM music '
            f'track and the title "{title}".')
    return Plan(draft, text, title, seconds)


def plan(uploads: list[Upload], message: str) -> Plan | None:
    """The flow the uploads and the request call for; None when nothing was uploaded."""
    # A .mp4/.mov that holds only sound (music-ab2n takes those as tracks) was analysed for beats.
    tracks = [u for u in uploads if u.kind == "audio" or u.beats]
    pictures = [u for u in uploads if u not in tracks and u.kind in ("video", "image")]
    if tracks:
        return music_video(tracks[-1], pictures)
    clips = [u for u in pictures if u.kind == "video"] or pictures
    if not clips:
        return None
    lowered = message.lower()
    if any(word in lowered for word in RECUT_WORDS) or "music" not in lowered and "song" not in lowered:
        return recut(clips)
    return music_for_video(clips)

