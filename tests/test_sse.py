from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import httpx2
import pytest

from nemovideo_mcp.sse import (
    MAX_EVENT_BYTES,
    AdkDecoder,
    AdkEvent,
    AgentError,
    Heartbeat,
    StateDelta,
    StreamError,
    TextDelta,
    ToolCall,
    ToolResponse,
    UndecodableFrame,
    decode_events,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "adk-sse"
# EventSource reports errors against the response's request, so it needs one.
RUN_SSE = httpx2.Request("POST", "http://backend.test/run_sse")
REPLY = "Trimmed clip c42 to 5.5 seconds."
TRIM_ARGS = {"clip_id": "c42", "start": 1.5, "end": 7.0}
TRIM_RESULT = {"status": "ok", "duration": 5.5}
SCRIPTED_STATE = {"timeline_version": 2, "last_tool": "trim_clip"}
STREAMED = [TextDelta("Trimmed clip "), TextDelta("c42 to "), TextDelta("5.5 seconds.")]
BOOM = StreamError("render backend exploded", "RuntimeError")
GENERATE_CALL = ToolCall("fc-1", "generate_video", {"instruction": "generate a video"})

EXPECTED: dict[str, list[AdkEvent]] = {
    "nonstream.sse": [
        ToolCall("call-1", "trim_clip", TRIM_ARGS),
        ToolResponse("call-1", "trim_clip", TRIM_RESULT),
        StateDelta(SCRIPTED_STATE),
        TextDelta(REPLY),
    ],
    "stream.sse": [
        ToolCall("call-1", "trim_clip", TRIM_ARGS),
        ToolResponse("call-1", "trim_clip", TRIM_RESULT),
        StateDelta(SCRIPTED_STATE),
        *STREAMED,
    ],
    "boom.sse": [ToolCall("call-1", "trim_clip", TRIM_ARGS), BOOM],
    "llm_nonstream.sse": [
        ToolCall("adk-4a1c6407-4be0-4877-b178-3efe151ab0cb", "trim_clip", TRIM_ARGS),
        ToolResponse("adk-4a1c6407-4be0-4877-b178-3efe151ab0cb", "trim_clip", TRIM_RESULT),
        StateDelta({"timeline_version": 2}),
        TextDelta(REPLY),
    ],
    "llm_stream.sse": [
        ToolCall("adk-2249b0f2-8d6d-4920-b8bd-10badbe9b72f", "trim_clip", TRIM_ARGS),
        ToolResponse("adk-2249b0f2-8d6d-4920-b8bd-10badbe9b72f", "trim_clip", TRIM_RESULT),
        StateDelta({"timeline_version": 2}),
        *STREAMED,
    ],
    "llm_boom.sse": [
        ToolCall("adk-9b3312f6-91e3-4288-8063-90a741ced67e", "trim_clip", {**TRIM_ARGS, "clip_id": "boom"}),
        AgentError("RuntimeError", "render backend exploded"),
        BOOM,
    ],
    "llm_safety.sse": [AgentError("SAFETY", "blocked by fake safety")],
    # The reconstructed endings of older ADK versions: each ends the turn as a failure.
    "error_json.sse": [GENERATE_CALL, StreamError('Model error: the "seedance" backend timed out', None)],
    "error_unescaped.sse": [GENERATE_CALL, StreamError('Model error: the "seedance" backend timed out', None)],
    "error_system_event.sse": [
        GENERATE_CALL, StreamError("429 RESOURCE_EXHAUSTED. The video model is overloaded.", "system"),
    ],
    "temporary_issue_trailer.sse": [
        TextDelta('I added the title "Paradise Found" at the top.'),
        TextDelta("\nI encountered a temporary issue. Please try again later."),
    ],
}
WITH_TEXT = {"nonstream.sse", "stream.sse", "llm_nonstream.sse", "llm_stream.sse"}
WITHOUT_REPLY_TEXT = {"error_json.sse", "error_unescaped.sse", "error_system_event.sse", "boom.sse", "llm_boom.sse",
                      "llm_safety.sse"}


def body_of(name: str) -> bytes:
    raw = (FIXTURES / name).read_bytes()
    if raw.startswith(b"HTTP/1.1 "):
        raw = raw.split(b"\r\n\r\n", 1)[1]
    return raw


def sse_events(body: bytes | Iterator[bytes]) -> Iterator[httpx2.ServerSentEvent]:
    response = httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body, request=RUN_SSE)
    return iter(httpx2.EventSource(response, max_event_size=MAX_EVENT_BYTES))


def decode(body: bytes) -> tuple[list[AdkEvent], AdkDecoder]:
    decoder = AdkDecoder()
    return [event for sse in sse_events(body) for event in decoder.feed(sse.data)], decoder


def frames(*events: dict) -> bytes:
    return b"".join(b"data: " + json.dumps(event).encode() + b"\n\n" for event in events)


def model(*parts: dict, partial: bool | None = None, author: str = "nemo_agent", id: str = "e-1", **extra) -> dict:
    event = {"content": {"parts": list(parts), "role": "model"}, "author": author, "id": id, **extra}
    if partial is not None:
        event["partial"] = partial
    return event


def texts(events: Iterable[AdkEvent]) -> list[str]:
    return [event.text for event in events if isinstance(event, TextDelta)]


def test_every_fixture_is_covered() -> None:
    assert sorted(path.name for path in FIXTURES.glob("*.sse")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_decodes_to_the_exact_sequence(name: str) -> None:
    events, decoder = decode(body_of(name))
    assert events == EXPECTED[name]
    if name in WITH_TEXT:
        assert decoder.text == REPLY
    elif name in WITHOUT_REPLY_TEXT:
        assert decoder.text == ""
    assert decoder.text == "".join(texts(events))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_reaches_the_end_of_its_turn(name: str) -> None:
    # A real transcript ends with a final response or an error: never mistaken for a cut stream.
    assert decode(body_of(name))[1].finished


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_transcript_cut_before_its_last_frame_is_not_finished(name: str) -> None:
    frames_of = [frame for frame in body_of(name).split(b"\n\n") if frame.strip()]
    if len(frames_of) < 2:
        pytest.skip("one frame: nothing to cut")
    _, decoder = decode(b"\n\n".join(frames_of[:-1]) + b"\n\n")
    last_kept = frames_of[-2]
    # Only a transcript whose second-to-last frame is itself a final text could look finished.
    if b'"functionCall"' in last_kept or b'"functionResponse"' in last_kept or b'"partial":true' in last_kept:
        assert not decoder.finished


def test_frames_with_only_a_type_are_tolerated_and_change_nothing() -> None:
    body = frames({"type": "heartbeat"}, model({"text": "Done."}), {"type": "done", "extra": {"x": 1}})
    events, decoder = decode(body)
    assert events == [TextDelta("Done.")] and decoder.finished


def test_a_system_event_that_is_not_an_error_is_ordinary_text() -> None:
    events, _ = decode(frames(model({"text": "Session resumed."}, author="system")))
    assert events == [TextDelta("Session resumed.")]


def test_a_skip_summarization_tool_result_ends_the_turn() -> None:
    call = model({"functionCall": {"id": "c", "name": "t", "args": {}}})
    result = {"content": {"parts": [{"functionResponse": {"id": "c", "name": "t", "response": {}}}], "role": "user"},
              "author": "nemo_agent", "actions": {"skipSummarization": True}}
    _, decoder = decode(frames(call, result))
    assert decoder.finished
    _, decoder = decode(frames(call))
    assert not decoder.finished


@pytest.mark.parametrize("name", sorted(WITH_TEXT))
def test_tool_chatter_never_reaches_the_reply(name: str) -> None:
    _, decoder = decode(body_of(name))
    for chatter in ("trim_clip", "clip_id", "{", "status", "duration", "timeline_version", "7.0"):
        assert chatter not in decoder.text


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_decode_events_is_feed_over_a_stream(name: str) -> None:
    assert list(decode_events(sse_events(body_of(name)))) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_heartbeats_interleaved_change_nothing_else(name: str) -> None:
    original = body_of(name).split(b"\n\n")
    assert original[-1] == b""
    noisy = b": ping\n\n"
    for frame in original[:-1]:
        noisy += b": ping\n" + frame + b"\n\ndata:\n\n: keep-alive\n\n"
    events, decoder = decode(noisy)
    assert events.count(Heartbeat()) == len(original) - 1
    assert [event for event in events if event != Heartbeat()] == EXPECTED[name]
    assert decoder.text == decode(body_of(name))[1].text


def test_whitespace_data_is_a_heartbeat_and_adds_no_text() -> None:
    decoder = AdkDecoder()
    assert decoder.feed("") == [Heartbeat()]
    assert decoder.feed("  \t") == [Heartbeat()]
    assert decoder.text == ""


def test_thought_parts_are_not_reply_text() -> None:
    decoder = AdkDecoder()
    thinking = {"text": "The user wants c42 trimmed, call trim_clip.", "thought": True}
    assert decoder.feed(json.dumps(model(thinking, partial=True))) == []
    assert decoder.feed(json.dumps(model(thinking, {"text": "Done."}, partial=True))) == [TextDelta("Done.")]
    assert decoder.feed(json.dumps(model(thinking, {"text": "Done."}, partial=False))) == []
    assert decoder.text == "Done."


def test_final_text_is_shown_when_its_partials_were_only_thoughts() -> None:
    decoder = AdkDecoder()
    thinking = {"text": "hmm", "thought": True}
    assert decoder.feed(json.dumps(model(thinking, partial=True))) == []
    assert decoder.feed(json.dumps(model(thinking, {"text": REPLY}, partial=False))) == [TextDelta(REPLY)]
    assert decoder.text == REPLY


def test_partial_function_calls_are_not_acted_on() -> None:
    decoder = AdkDecoder()
    call = {"functionCall": {"id": "adk-1", "name": "trim_clip", "args": TRIM_ARGS}}
    assert decoder.feed(json.dumps(model(call, partial=True))) == []
    assert decoder.feed(json.dumps(model(call, partial=False))) == [ToolCall("adk-1", "trim_clip", TRIM_ARGS)]
    result = {"functionResponse": {"id": "adk-1", "name": "trim_clip", "response": TRIM_RESULT}}
    assert decoder.feed(json.dumps(model(result, partial=True))) == []
    assert decoder.feed(json.dumps(model(result))) == [ToolResponse("adk-1", "trim_clip", TRIM_RESULT)]


def test_state_delta_only_on_non_partial_events_and_only_when_non_empty() -> None:
    decoder = AdkDecoder()
    assert decoder.feed(json.dumps(model({"text": "a"}, partial=True, actions={"stateDelta": {"x": 1}}))) == [TextDelta("a")]
    assert decoder.feed(json.dumps({"author": "nemo_agent", "actions": {"stateDelta": {}}})) == []
    assert decoder.feed(json.dumps({"author": "nemo_agent", "actions": {"stateDelta": {"x": 2}}})) == [StateDelta({"x": 2})]


def test_unknown_fields_are_ignored() -> None:
    plain = [
        model({"functionCall": {"id": "c", "name": "trim_clip", "args": TRIM_ARGS}}),
        model({"text": "Hi"}, partial=True),
        model({"text": "Hi"}, partial=False, actions={"stateDelta": {"v": 3}}),
    ]
    decorated = [
        model(
            {"functionCall": {"id": "c", "name": "trim_clip", "args": TRIM_ARGS, "willContinue": False}},
            nodeInfo={"path": "a@1"}, longRunningToolIds=[], brandNew={"deep": [1, {"x": None}]},
        ),
        model({"text": "Hi", "thoughtSignature": "c2ln"}, {"executableCode": {"code": "print(1)"}}, partial=True,
              usageMetadata={"totalTokenCount": 3}),
        model({"text": "Hi"}, partial=False, actions={"stateDelta": {"v": 3}, "transferToAgent": "x", "newThing": [1]},
              finishReason="STOP", groundingMetadata={}),
    ]
    expected = [ToolCall("c", "trim_clip", TRIM_ARGS), TextDelta("Hi"), StateDelta({"v": 3})]
    assert decode(frames(*plain))[0] == expected
    assert decode(frames(*decorated))[0] == expected


def test_user_role_text_is_not_reply_text() -> None:
    decoder = AdkDecoder()
    user = {"content": {"role": "user", "parts": [{"text": "trim c42 please"}]}, "author": "user"}
    assert decoder.feed(json.dumps(user)) == []
    assert decoder.feed(json.dumps({**user, "partial": True})) == []
    assert decoder.text == ""


def test_older_adk_chunk_ids_do_not_duplicate_text() -> None:
    events, decoder = decode(frames(
        model({"text": "Trimmed clip "}, partial=True, id="a1"),
        model({"text": "c42 to "}, partial=True, id="a2"),
        model({"text": "5.5 seconds."}, partial=True, id="a3"),
        model({"text": REPLY}, id="a4"),
    ))
    assert events == STREAMED
    assert decoder.text == REPLY


def test_events_are_never_deduplicated_by_id() -> None:
    events, decoder = decode(frames(model({"text": "First. "}, id="same"), model({"text": "Second."}, id="same")))
    assert texts(events) == ["First. ", "Second."]
    assert decoder.text == "First. Second."


def test_each_llm_response_shows_its_own_final_when_not_streamed() -> None:
    _, decoder = decode(frames(
        model({"text": "Working on it. "}, partial=True),
        model({"text": "Working on it. "}, partial=False),
        model({"text": REPLY}),
    ))
    assert decoder.text == "Working on it. " + REPLY


def test_interleaved_authors_each_skip_only_their_own_final() -> None:
    _, decoder = decode(frames(
        model({"text": "A1 "}, partial=True, author="a"),
        model({"text": "B1 "}, partial=True, author="b"),
        model({"text": "A2 "}, partial=True, author="a"),
        model({"text": "A1 A2 "}, author="a"),
        model({"text": "B1 "}, author="b"),
        model({"text": "C "}, author="c"),
    ))
    assert decoder.text == "A1 B1 A2 C "


def test_agent_error_after_its_content_and_message_defaults_to_code() -> None:
    decoder = AdkDecoder()
    assert decoder.feed(json.dumps(model({"text": "Partial answer"}, errorCode="MAX_TOKENS"))) == [
        TextDelta("Partial answer"),
        AgentError("MAX_TOKENS", "MAX_TOKENS"),
    ]


def test_stream_error_without_details_uses_the_error_string() -> None:
    assert AdkDecoder().feed('{"error": "RuntimeError: boom"}') == [StreamError("RuntimeError: boom", None)]
    assert AdkDecoder().feed('{"error": "RuntimeError: boom", "error_details": {"error_type": "RuntimeError"}}') == [
        StreamError("RuntimeError: boom", "RuntimeError")
    ]


@pytest.mark.parametrize("data", ["not json", '{"content":', "[1, 2]", '"text"', "null", "42", '{"partial": [1]}'])
def test_undecodable_frames_raise(data: str) -> None:
    with pytest.raises(UndecodableFrame):
        AdkDecoder().feed(data)


def test_undecodable_frame_in_a_stream_raises() -> None:
    with pytest.raises(UndecodableFrame):
        list(decode_events(sse_events(frames(model({"text": "ok"})) + b"data: <html>502 Bad Gateway</html>\n\n")))


def line_of(size: int) -> bytes:
    """One `data:` line of exactly `size` bytes (what httpx2 counts) holding a text event."""
    head, tail = b'data: {"content":{"role":"model","parts":[{"text":"', b'"}]}}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def test_an_event_of_max_size_decodes() -> None:
    events, decoder = decode(line_of(MAX_EVENT_BYTES) + b"\n\n")
    assert len(decoder.text) > MAX_EVENT_BYTES - 100
    assert texts(events) == [decoder.text]


def test_an_event_over_max_size_raises_sse_error() -> None:
    assert 64 * 1024 <= MAX_EVENT_BYTES <= 16 * 1024 * 1024
    body = line_of(MAX_EVENT_BYTES + 1)
    assert len(body) == MAX_EVENT_BYTES + 1
    with pytest.raises(httpx2.SSEError):
        list(decode_events(sse_events(body + b"\n\n")))


def test_an_endless_event_stops_after_about_max_size() -> None:
    chunk = 64 * 1024
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        yield b"data: "
        # Ends, so that a missing bound fails the test instead of hanging it.
        while sent < 4 * MAX_EVENT_BYTES:
            sent += chunk
            yield b"x" * chunk

    with pytest.raises(httpx2.SSEError):
        list(decode_events(sse_events(endless())))
    assert MAX_EVENT_BYTES <= sent <= MAX_EVENT_BYTES + chunk
