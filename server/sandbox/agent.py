"""The scripted agent behind /run_sse.

Keyword rules edit the session's short-key draft, and each turn is written out exactly as
google-adk's api server writes events (tests/fixtures/adk-sse/), so a client that copes
with the sandbox copes with the real transcripts.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import director
from .state import ConnectionAbort, Sandbox
from .studio import Upload, render_hint, rendering_available

Draft = dict[str, Any]

# With nothing uploaded: the visual layer over a generated lo-fi groove (render.py reads fx/groove).
GENERATED_DRAFT: Draft = {"t": [
    {"tt": 0, "sg": [{"st": 0, "d": 10000, "m": {"name": "city timelapse", "fx": "visualizer"}}]},
    {"tt": 1, "sg": [{"st": 0, "d": 10000, "m": {"name": "Lo-fi", "vol": 0.35, "role": "bgm",
                                                 "groove": {"tempo": 84, "seed": 7}}}]},
    {"tt": 7, "sg": [{"st": 0, "d": 3000, "m": {"text": "Urban Dreams", "role": "title"}}]},
]}
# Two-stage generation (the official skill): the raw video first, music and title after the stream.
RAW_VIDEO_TRACKS = 1
TRAILER_TEXT = "I encountered a temporary issue. Please try again later."
# How each ADK version ended a failed run (tests/fixtures/adk-sse/).
FAILED_ENDINGS = {
    "error_details": None,  # the turn's own error, as `{"error", "error_details"}` (boom.sse)
    "error_json": b'data: {"error": "Model error: the \\"seedance\\" backend timed out"}\n\n',
    "error_unescaped": b'data: {"error": "Model error: the "seedance" backend timed out"}\n\n',
    "system_error": None,  # an event from author `system` whose text starts with "Error: "
}
NO_FINAL_LANDS_AFTER_SECONDS = 0.2
GENERATED_TEXT = (
    'Your video is ready: a 10-second city timelapse with Lo-fi background music and the title "Urban Dreams".'
)
EXPORT_HELP_TEXT = (
    "Click the Export button in the top right corner to download your video. "
    "You can also preview in timeline first."
)
FALLBACK_TEXT = (
    "I can generate a video from your music, add titles, or change the background music. "
    "What would you like?"
)
EXPLOSION = "RuntimeError: render backend exploded"


@dataclass(frozen=True)
class Turn:
    cost: int
    tool: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    edit: Callable[[Draft], Draft] | None = None
    # What lands after the stream when the sandbox plays two-stage generation.
    late_edit: Callable[[Draft], Draft] | None = None
    media: dict[str, Any] | None = None
    text: str | None = None
    streamed: bool = False
    error: str | None = None


_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|\'([^\']+)\'')


def _has(message: str, *words: str) -> bool:
    return any(word in message for word in words)


def _is_question(message: str) -> bool:
    return "?" in message or message.startswith(("how", "where", "can ", "what"))


def _explode(message: str) -> Turn:
    return Turn(cost=0, tool="edit_timeline", args={"instruction": message}, error=EXPLOSION)


def _explain_export(message: str) -> Turn:
    return Turn(cost=0, text=EXPORT_HELP_TEXT)


def _post_production(draft: Draft) -> Draft:
    return {**draft, "t": [*draft.get("t", []), *copy.deepcopy(GENERATED_DRAFT["t"][RAW_VIDEO_TRACKS:])]}


def _generate(message: str) -> Turn:
    return Turn(
        cost=10, tool="generate_video", args={"prompt": message},
        edit=lambda draft: {"t": copy.deepcopy(GENERATED_DRAFT["t"][:RAW_VIDEO_TRACKS])},
        late_edit=_post_production,
        media={"type": "video", "name": "city timelapse", "duration_ms": 10000},
        text=GENERATED_TEXT, streamed=True,
    )


def _generate_from(made: director.Plan, message: str) -> Turn:
    """A generation turn made from the uploads: the picture lands first, then sound and title."""
    tracks = made.draft["t"]
    text = made.text if rendering_available() else f"{made.text} {render_hint()}"
    return Turn(
        cost=10, tool="generate_video", args={"prompt": message},
        edit=lambda draft: {"t": copy.deepcopy(tracks[:RAW_VIDEO_TRACKS])},
        late_edit=lambda draft: {**draft, "t": [*draft.get("t", []), *copy.deepcopy(tracks[RAW_VIDEO_TRACKS:])]},
        media={"type": "video", "name": made.title, "duration_ms": round(made.seconds * 1000)},
        text=text, streamed=True,
    )


def _add_text(message: str) -> Turn:
    text = next(group for group in _QUOTED.search(message).groups() if group)
    role = "caption" if "caption" in message.lower() else "title"
    track = {"tt": 7, "sg": [{"st": 0, "d": 3000, "m": {"text": text, "role": role}}]}
    return Turn(
        cost=2, tool="add_text", args={"text": text, "role": role, "start": 0, "end": 3},
        edit=lambda draft: {**draft, "t": [*draft.get("t", []), track]},
    )


def _remove_titles(message: str) -> Turn:
    return Turn(
        cost=2, tool="remove_text", args={"role": "title"},
        edit=lambda draft: {**draft, "t": [track for track in draft.get("t", []) if track.get("tt") != 7]},
    )


def _set_music_volume(message: str) -> Turn:
    number = re.search(r"\d{1,3}", message)
    percent = min(100, int(number.group())) if number else 20 if "quieter" in message.lower() else 80

    def edit(draft: Draft) -> Draft:
        for track in draft.get("t", []):
            for segment in track.get("sg", []) if track.get("tt") == 1 else []:
                meta = segment.setdefault("m", {})
                if meta.get("role", "bgm") == "bgm":
                    meta["vol"] = percent / 100
        return draft

    return Turn(
        cost=2, tool="set_volume", args={"role": "bgm", "volume": percent / 100},
        edit=edit, text=f"Set the background music to {percent}%.",
    )


# With uploads, these ask for a video too ("add background music that matches the mood of my video").
_MEDIA_REQUESTS = ("sync", "turn this", "turn my", "music", "soundtrack", "video")

# First match wins, so the specific edits sit above the broad "make/create" rule
# ("make the music quieter" is a volume change, not a new video).
_RULES: tuple[tuple[Callable[[str], object], Callable[[str], Turn]], ...] = (
    (lambda m: _has(m, "fail", "explode"), _explode),
    (lambda m: "add" in m and _has(m, "title", "caption", "text") and _QUOTED.search(m), _add_text),
    (lambda m: _has(m, "remove", "delete") and "title" in m, _remove_titles),
    (lambda m: _has(m, "music", "bgm") and _has(m, "quieter", "louder", "volume"), _set_music_volume),
    (lambda m: (_has(m, "export", "download") and _is_question(m)) or _has(m, "what next", "next step"), _explain_export),
    (lambda m: _has(m, "generate", "create", "make", "生成", "制作"), _generate),
)


def plan_turn(message: str, uploads: Sequence[Upload] = ()) -> Turn:
    lowered = message.lower()
    build = next((build for matches, build in _RULES if matches(lowered)), None)
    asks_for_media = build is _generate or (build is None and _has(lowered, *_MEDIA_REQUESTS))
    made = director.plan(list(uploads), message) if uploads and asks_for_media else None
    if made is not None:
        return _generate_from(made, message)
    return build(message) if build else Turn(cost=0, text=FALLBACK_TEXT)


def _uuidish(number: int) -> str:
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def _split_for_streaming(text: str, pieces: int = 3) -> list[str]:
    cuts = {text.find(" ", len(text) * k // pieces) + 1 for k in range(1, pieces)}
    bounds = sorted(cuts | {0, len(text)})
    return [text[start:end] for start, end in zip(bounds, bounds[1:]) if end > start]


def _error_frame(error: str) -> bytes:
    error_type, _, error_message = error.partition(": ")
    details = {"error_type": error_type, "error_message": error_message, "timestamp": time.time()}
    # ADK writes this frame with json.dumps defaults, unlike the compact pydantic events.
    return b"data: " + json.dumps({"error": error, "error_details": details}).encode() + b"\n\n"


class _Events:
    """Serialises events like google-adk's api server: camelCase, no empty fields, compact JSON."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self._invocation_id = "e-" + _uuidish(sandbox.next_number("invocation"))

    def new_id(self) -> str:
        return _uuidish(self._sandbox.next_number("event"))

    def frame(self, part: dict[str, Any], role: str, *, partial: bool | None = None,
              usage: dict[str, int] | None = None, state_delta: dict[str, Any] | None = None,
              event_id: str | None = None, author: str = "nemo_agent") -> bytes:
        event: dict[str, Any] = {"content": {"parts": [part], "role": role}}
        if partial is not None:
            event["partial"] = partial
        if usage is not None:
            event["usageMetadata"] = usage
        event |= {
            "invocationId": self._invocation_id,
            "author": author,
            "actions": {"stateDelta": state_delta or {}, "artifactDelta": {},
                        "requestedAuthConfigs": {}, "requestedToolConfirmations": {}},
            "nodeInfo": {"path": ""},
            "id": event_id or self.new_id(),
            "timestamp": time.time(),
        }
        return b"data: " + json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"

    def text_frames(self, text: str, prompt: str, *, streamed: bool) -> list[bytes]:
        answer_tokens, prompt_tokens = len(text.split()), len(prompt.split())
        usage = {"candidatesTokenCount": answer_tokens, "promptTokenCount": prompt_tokens,
                 "totalTokenCount": answer_tokens + prompt_tokens}
        if not streamed:
            return [self.frame({"text": text}, "model", usage=usage)]
        text_id = self.new_id()
        deltas = [self.frame({"text": delta}, "model", partial=True, event_id=text_id)
                  for delta in _split_for_streaming(text)]
        return [*deltas, self.frame({"text": text}, "model", partial=False, usage=usage, event_id=text_id)]


async def _heartbeats(sandbox: Sandbox, started: float) -> AsyncIterator[bytes]:
    # The length is read at every ping, so a test can hold a turn open and then let it end.
    loop = asyncio.get_running_loop()
    while (remaining := started + sandbox.turn_seconds - loop.time()) > 0:
        await asyncio.sleep(min(sandbox.heartbeat_seconds, remaining))
        if loop.time() < started + sandbox.turn_seconds:
            yield b": ping\n\n"


def _failed_ending(ending: str, events: _Events) -> bytes:
    if ending == "system_error":
        return events.frame({"text": "Error: 429 RESOURCE_EXHAUSTED. The video model is overloaded."}, "model",
                            author="system")
    return FAILED_ENDINGS[ending] or _error_frame("RuntimeError: the video model timed out")


def _whole(turn: Turn) -> Callable[[Draft], Draft]:
    """The turn's edit with its post-production, for when both land at once."""
    if turn.edit is None or turn.late_edit is None:
        return turn.edit
    return lambda draft: turn.late_edit(turn.edit(draft))


def _land_later(sandbox: Sandbox, session_id: str, edit: Callable[[Draft], Draft], delay: float) -> None:
    target = sandbox.sessions.get(session_id)
    asyncio.get_running_loop().call_later(
        delay, functools.partial(sandbox.apply_edit, session_id, edit, None, only_to=target))


async def stream_turn(sandbox: Sandbox, session_id: str, token: str, message: str, turn: Turn, *,
                      drop: bool = False, ending: str | None = None, streaming: bool = False) -> AsyncIterator[bytes]:
    """Play one turn; its credits stay frozen until the stream ends, and are spent only if the edit landed.

    Partial text only when the request asked for `streaming`, as ADK does. `ending` plays one of the
    ways a real turn ends badly: a failed run (four ADK styles), the "temporary issue" trailer after
    a good reply, or a clean close before the final event while the work still lands.
    """
    events = _Events(sandbox)
    landed = False
    started = asyncio.get_running_loop().time()
    try:
        call_id = f"call-{sandbox.next_number('call')}" if turn.tool else ""
        if turn.tool:
            yield events.frame({"functionCall": {"id": call_id, "args": turn.args, "name": turn.tool}}, "model")
        try:
            async for ping in _heartbeats(sandbox, started):
                yield ping
        except (GeneratorExit, asyncio.CancelledError):
            # The client went away (its process died, say); the backend's work goes on and lands anyway.
            if turn.edit and ending is None:
                remaining = max(0.0, sandbox.turn_seconds - (asyncio.get_running_loop().time() - started))
                _land_later(sandbox, session_id, _whole(turn), remaining)
                landed = True
            raise
        if ending in FAILED_ENDINGS:
            yield _failed_ending(ending, events)
            return
        two_stage = turn.late_edit is not None and sandbox.late_write_seconds is not None
        if ending == "no_final":
            # A proxy closes the stream cleanly; the backend goes on and the edit lands a moment later.
            if turn.edit:
                _land_later(sandbox, session_id, _whole(turn), sandbox.late_write_seconds or NO_FINAL_LANDS_AFTER_SECONDS)
                landed = True
            return
        if turn.edit:
            draft_version = sandbox.apply_edit(session_id, turn.edit if two_stage else _whole(turn), turn.media)
            if draft_version is None:
                yield _error_frame(f"ValueError: Session not found: {session_id}")
                return
            landed = True
            response = {"functionResponse": {"id": call_id, "name": turn.tool, "response": {"status": "ok"}}}
            yield events.frame(response, "user", state_delta={"draft_version": draft_version})
        if drop:
            raise ConnectionAbort("drop_next_stream")
        if turn.error:
            yield _error_frame(turn.error)
        elif turn.text:
            for frame in events.text_frames(turn.text, message, streamed=turn.streamed and streaming):
                yield frame
            if ending == "trailer":
                yield events.frame({"text": TRAILER_TEXT}, "model")
        if two_stage and landed:
            _land_later(sandbox, session_id, turn.late_edit, sandbox.late_write_seconds)
    finally:
        sandbox.settle_credits(token, turn.cost, spent=landed)
        sandbox.end_turn(session_id)
