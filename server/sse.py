"""Decoder of the Google ADK api server's `/run_sse` stream (the backend's chat endpoint).

Each SSE `data` payload is one ADK Event (camelCase JSON) or, when the run fails, a final
`{"error": ..., "error_details": {...}}` frame. `AdkDecoder` turns payloads into the few
things the chat engine acts on, following the client rule of the captured transcripts
(tests/fixtures/adk-sse/README.md): partial text is shown as it arrives, the final event
that repeats it is not shown again, and tool calls, tool results and state changes count
only on non-partial events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

__all__ = [
    "MAX_EVENT_BYTES",
    "AdkDecoder",
    "AdkEvent",
    "AgentError",
    "Heartbeat",
    "StateDelta",
    "StreamError",
    "TextDelta",
    "ToolCall",
    "ToolResponse",
    "UndecodableFrame",
    "decode_events",
]

# The largest legitimate events are a tool result carrying a draft (short keys, a few KB
# even for a busy timeline) and the final event repeating the whole reply; 1 MiB is far
# above both. The cap bounds what one stream can make us buffer (and then hold as parsed
# Python objects, several times larger) when a proxy or backend misbehaves.
MAX_EVENT_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolResponse:
    call_id: str
    name: str
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StateDelta:
    delta: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Heartbeat:
    pass


@dataclass(frozen=True, slots=True)
class AgentError:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class StreamError:
    message: str
    error_type: str | None


AdkEvent = TextDelta | ToolCall | ToolResponse | StateDelta | Heartbeat | AgentError | StreamError


class UndecodableFrame(ValueError):
    """A `data` payload that is not JSON, not a JSON object, or not shaped like an ADK event."""


class _Wire(BaseModel):
    # Schemas are built on first use, not at import: every server start pays for imports.
    # Unknown fields are ignored: ADK adds fields (nodeInfo, longRunningToolIds, ...) over time.
    model_config = ConfigDict(alias_generator=to_camel, extra="ignore", frozen=True, defer_build=True)


class _FunctionCall(_Wire):
    id: str = ""
    name: str = ""
    args: dict[str, Any] = Field(default_factory=dict)


class _FunctionResponse(_Wire):
    id: str = ""
    name: str = ""
    response: dict[str, Any] = Field(default_factory=dict)


class _Part(_Wire):
    text: str | None = None
    thought: bool = False
    function_call: _FunctionCall | None = None
    function_response: _FunctionResponse | None = None


class _Content(_Wire):
    role: str | None = None
    parts: list[_Part] = Field(default_factory=list)


class _Actions(_Wire):
    state_delta: dict[str, Any] = Field(default_factory=dict)


class _ErrorDetails(_Wire):
    # The api server writes this object itself, in snake_case, unlike the events.
    model_config = ConfigDict(alias_generator=None)

    error_type: str | None = None
    error_message: str | None = None


class _Frame(_Wire):
    """An ADK Event, or the api server's terminal error frame: one model parses both."""

    content: _Content | None = None
    partial: bool = False
    author: str = ""
    actions: _Actions | None = None
    error_code: str | None = None
    error_message: str | None = None
    error: str | None = None
    error_details: _ErrorDetails | None = Field(default=None, alias="error_details")


class AdkDecoder:
    """Stateful: one per stream."""

    def __init__(self) -> None:
        self._text: list[str] = []
        # Authors whose partial text is on screen and whose final event has not come yet.
        # Keyed by author, not by a single flag, because a ParallelAgent's branches
        # interleave their events; never by event id, which older ADK versions change
        # on every chunk and 2.x reuses across them.
        self._shown_partial: set[str] = set()

    @property
    def text(self) -> str:
        return "".join(self._text)

    def feed(self, data: str) -> list[AdkEvent]:
        if not data or data.isspace():
            return [Heartbeat()]
        try:
            frame = _Frame.model_validate_json(data)
        except ValidationError as exc:
            raise UndecodableFrame(f"not an ADK event: {data[:200]!r}") from exc
        out: list[AdkEvent] = []
        if frame.content is not None:
            self._decode_content(frame, frame.content, out)
        if not frame.partial and frame.actions is not None and frame.actions.state_delta:
            out.append(StateDelta(frame.actions.state_delta))
        if frame.error_code:
            out.append(AgentError(frame.error_code, frame.error_message or frame.error_code))
        if frame.error is not None:
            details = frame.error_details
            message = (details.error_message if details else None) or frame.error
            out.append(StreamError(message, details.error_type if details else None))
        return out

    def _decode_content(self, frame: _Frame, content: _Content, out: list[AdkEvent]) -> None:
        # The user's own message (and tool results, which ADK sends as role "user") is
        # never reply text.
        is_reply = content.role != "user"
        if frame.partial:
            for part in content.parts:
                if is_reply and part.text and not part.thought:
                    out.append(TextDelta(part.text))
                    self._text.append(part.text)
                    self._shown_partial.add(frame.author)
            return
        # A final model event repeats the text its partials streamed.
        repeats_partials = is_reply and frame.author in self._shown_partial
        if is_reply:
            self._shown_partial.discard(frame.author)
        for part in content.parts:
            if part.function_call is not None:
                call = part.function_call
                out.append(ToolCall(call.id, call.name, call.args))
            elif part.function_response is not None:
                result = part.function_response
                out.append(ToolResponse(result.id, result.name, result.response))
            elif is_reply and part.text and not part.thought and not repeats_partials:
                out.append(TextDelta(part.text))
                self._text.append(part.text)


def decode_events(events: Iterable[httpx2.ServerSentEvent]) -> Iterator[AdkEvent]:
    decoder = AdkDecoder()
    for event in events:
        yield from decoder.feed(event.data)
