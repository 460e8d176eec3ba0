"""The draft (short-key timeline JSON) and its one-line summary for people.

Short keys, from the seeds: `t` tracks, `tt` track type (0 video, 1 audio, 7 text),
`sg` segments, `d` duration in ms, `m` metadata. A segment's start is read from
`st` (also `s` or `start`); its label from `m.text`, `m.name` or `m.title`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

TrackKind = Literal["Video", "BGM", "Audio", "Title", "Text", "Track"]

EMPTY_TIMELINE = (
    "The timeline is empty: nothing has been made yet. Describe the video you want "
    "(for example \"create a video with visuals synced to this music track\") or upload a file to start."
)


class TrackSummary(BaseModel):
    index: int = Field(description="1-based position in the timeline")
    kind: TrackKind
    label: str = Field(description="what the track holds: clip name, music name or text")
    start_seconds: float
    end_seconds: float
    volume_percent: int | None = Field(default=None, description="audio tracks only")
    segments: int

    def describe(self) -> str:
        label = f'"{self.label}"' if self.kind in ("Title", "Text") else self.label
        span = f"{_seconds(self.start_seconds)}-{_seconds(self.end_seconds)}s"
        if self.volume_percent is not None:
            span += f", {self.volume_percent}%"
        return f"{self.index}. {self.kind}: {label} ({span})"


def _seconds(value: float) -> str:
    return f"{value:g}"


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _segment_start_ms(segment: dict[str, Any]) -> float:
    for key in ("st", "s", "start"):
        if key in segment:
            return _number(segment[key])
    return 0.0


def _kind(track_type: Any, meta: dict[str, Any]) -> TrackKind:
    role = str(meta.get("role", "")).lower()
    if track_type == 0:
        return "Video"
    if track_type == 1:
        return "Audio" if role in ("voice", "voiceover", "sfx") else "BGM"
    if track_type == 7:
        return "Text" if role in ("caption", "subtitle", "text") else "Title"
    return "Track"


# What a track is called when its metadata names nothing.
_UNNAMED: dict[str, str] = {"Video": "clip", "BGM": "music", "Audio": "audio", "Title": "text", "Text": "text"}


def _label(meta: dict[str, Any], kind: TrackKind) -> str:
    for key in ("text", "name", "title", "label"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return _UNNAMED.get(kind, "item")


def tracks_of(draft: dict[str, Any] | None) -> list[TrackSummary]:
    """Tracks that hold at least one segment; an empty track is not content."""
    raw_tracks = (draft or {}).get("t") or []
    summaries: list[TrackSummary] = []
    for raw in raw_tracks:
        if not isinstance(raw, dict):
            continue
        segments = [segment for segment in raw.get("sg") or [] if isinstance(segment, dict)]
        if not segments:
            continue
        first_meta = segments[0].get("m") if isinstance(segments[0].get("m"), dict) else {}
        meta = {**(raw.get("m") if isinstance(raw.get("m"), dict) else {}), **first_meta}
        kind = _kind(raw.get("tt"), meta)
        start_ms = min(_segment_start_ms(segment) for segment in segments)
        end_ms = max(_segment_start_ms(segment) + _number(segment.get("d")) for segment in segments)
        volume = meta.get("vol", meta.get("volume"))
        volume_percent = None
        if kind in ("BGM", "Audio") and isinstance(volume, (int, float)):
            # Volumes come as 0-1 fractions; a value above 1 is already a percentage.
            volume_percent = round(volume * 100) if volume <= 1 else round(volume)
        summaries.append(
            TrackSummary(
                index=len(summaries) + 1,
                kind=kind,
                label=_label(meta, kind),
                start_seconds=round(start_ms / 1000, 2),
                end_seconds=round(end_ms / 1000, 2),
                volume_percent=volume_percent,
                segments=len(segments),
            )
        )
    return summaries


def summarize(tracks: list[TrackSummary]) -> str:
    """The seeds' format: `Timeline (3 tracks): 1. Video: city timelapse (0-10s) 2. ...`."""
    if not tracks:
        return EMPTY_TIMELINE
    noun = "track" if len(tracks) == 1 else "tracks"
    return f"Timeline ({len(tracks)} {noun}): " + " ".join(track.describe() for track in tracks)


TRACK_NOUNS: dict[str, str] = {
    "Video": "video clip", "BGM": "background music", "Audio": "audio",
    "Title": "title", "Text": "text", "Track": "track",
}


def _named(track: TrackSummary) -> str:
    if track.label == _UNNAMED.get(track.kind, "item"):
        return TRACK_NOUNS[track.kind]  # "video clip", not "video clip clip"
    label = f'"{track.label}"' if track.kind in ("Title", "Text") else track.label
    return f"{TRACK_NOUNS[track.kind]} {label}"


def _volume_change(before: int | None, after: int | None) -> str:
    if before is None:
        return f"volume set to {after}%"
    if after is None:
        return f"volume no longer set (was {before}%)"
    return f"volume {before}% → {after}%"


def _span(track: TrackSummary) -> str:
    return f"{_seconds(track.start_seconds)}–{_seconds(track.end_seconds)} s"


def _keyed(tracks: list[TrackSummary]) -> dict[tuple[str, str, int], TrackSummary]:
    """Tracks keyed by kind, label and occurrence, so two identical titles stay two."""
    seen: dict[tuple[str, str], int] = {}
    keyed = {}
    for track in tracks:
        occurrence = seen[(track.kind, track.label)] = seen.get((track.kind, track.label), 0) + 1
        keyed[(track.kind, track.label, occurrence)] = track
    return keyed


def describe_changes(before: list[TrackSummary], after: list[TrackSummary]) -> list[str]:
    """What a turn changed, in plain words: added, removed and changed tracks."""
    old, new = _keyed(before), _keyed(after)
    changes = [f"🗑️ Removed {_named(track)}" for key, track in old.items() if key not in new]
    for key, track in new.items():
        previous = old.get(key)
        if previous is None:
            changes.append(f"✅ Added {_named(track)} ({_span(track)})")
            continue
        details = []
        if (previous.start_seconds, previous.end_seconds) != (track.start_seconds, track.end_seconds):
            details.append(f"time {_span(previous)} → {_span(track)}")
        if previous.volume_percent != track.volume_percent:
            details.append(_volume_change(previous.volume_percent, track.volume_percent))
        if previous.segments != track.segments:
            details.append(f"{previous.segments} → {track.segments} segments")
        if details:
            changes.append(f"✏️ Changed {_named(track)}: " + ", ".join(details))
    return changes
