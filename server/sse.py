"""Decoder of the Google ADK api server's `/run_sse` stream (the backend's chat endpoint).

Each SSE `data` payload is one ADK Event (camelCase JSON) or, when the run fails, a final
`{"error": ..., "error_details": {...}}` frame. `AdkDecoder` turns payloads into the few
things the chat engine acts on, following the client rule of the captured transcripts
(tests/fixtures/adk-sse/README.md): partial text is shown as it arrives, the final event
that repeats it is not shown again, and tool calls, tool results and state changes count
only on non-partial events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from .logs import redact

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
    # A tool result that is the turn's answer (ADK's is_final_response counts it as final).
    skip_summarization: bool = False


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


# An api server that builds its error frame by string formatting (ADK 1.4) writes invalid
# JSON when the message has quotes; the frame is still recognisably the run's failure.
_UNESCAPED_ERROR = re.compile(r'^\s*\{\s*"error"\s*:\s*"(?P<message>.*)"\s*\}\s*$', re.DOTALL)
# ADK api servers of 2025 end a failed run with an ordinary event from this author.
SYSTEM_AUTHOR = "system"
SYSTEM_ERROR_PREFIX = "Error: "


class AdkDecoder:
    """Stateful: one per stream."""

    def __init__(self) -> None:
        # True once the turn reached its end: a final response (text, no tool call) or an error.
        # A stream that closes before that was cut (by a proxy, say), however cleanly.
        self.finished = False
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
            unescaped = _UNESCAPED_ERROR.match(data)
            if unescaped is None:
                raise UndecodableFrame(f"not an ADK event: {redact(data)[:200]!r}") from exc
            self.finished = True
            return [StreamError(unescaped.group("message"), None)]
        out: list[AdkEvent] = []
        if frame.author == SYSTEM_AUTHOR and frame.content is not None and not frame.partial:
            failure = self._system_error(frame.content)
            if failure is not None:
                self.finished = True
                return [failure]
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
        self._note_progress(frame)
        return out

    def _note_progress(self, frame: _Frame) -> None:
        if frame.error is not None or frame.error_code:
            self.finished = True
        elif frame.partial:
            return
        elif frame.actions is not None and frame.actions.skip_summarization:
            self.finished = True
        elif frame.content is not None and frame.content.parts:
            # ADK's final response: no tool call or result in it. Anything else means more is coming.
            self.finished = frame.content.role != "user" and not any(
                part.function_call is not None or part.function_response is not None for part in frame.content.parts
            )

    @staticmethod
    def _system_error(content: _Content) -> StreamError | None:
        text = "".join(part.text or "" for part in content.parts).strip()
        if not text.startswith(SYSTEM_ERROR_PREFIX):
            return None
        return StreamError(text[len(SYSTEM_ERROR_PREFIX):].strip(), SYSTEM_AUTHOR)

    def _decode_content(self, frame: _Frame, content: _Content, out: list[AdkEvent]) -> None:
        # The user's own message (and tool results, which ADK sends as role "user") is
        # never reply text.
        is_reply = content.role != "user"
        if frame.partial:
            for part in content.parts:
                if is_reply and part.text and not part.thought:
                    self._emit(part.text, out, starts_message=False)
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
                self._emit(part.text, out, starts_message=True)

    def _emit(self, text: str, out: list[AdkEvent], *, starts_message: bool) -> None:
        # Separate messages of one turn (a reply, then a trailer) must not run into one sentence.
        if starts_message and self._text and not self._text[-1][-1:].isspace():
            text = "\n" + text
        out.append(TextDelta(text))
        self._text.append(text)


def decode_events(events: Iterable[httpx2.ServerSentEvent]) -> Iterator[AdkEvent]:
    decoder = AdkDecoder()
    for event in events:
        yield from decoder.feed(event.data)
