"""One chat turn over `/run_sse`: stream, follow progress, report what changed.

The seeds' rules: tool chatter stays internal; GUI talk is translated; a turn that
closes with no text (about 30% of edits) is answered with a report of what changed;
a broken stream is never answered by sending the message again (that would repeat
paid work) but by polling the project until the change shows up or time runs out.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator

import anyio

from .client import NemoClient
from .errors import StreamInterrupted, TurnFailed
from .gui import DESCRIBE_IN_WORDS, EXPORT_OFFER, translate
from .jobs import Job, format_elapsed
from .logs import get_logger
from .models import StateReply
from .results import ChatResult, NextAction
from .settings import Settings
from .sse import AgentError, StateDelta, StreamError, TextDelta, ToolCall, ToolResponse
from .timeline import describe_changes, summarize, tracks_of

log = get_logger("chat")


CUT_REPLY_NOTICE = "The connection closed before NemoVideo finished its reply; this is what it said."
SAFETY_CODES = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "RECITATION"}
# The official skill: "Ignore trailing 'I encountered a temporary issue' if prior responses were normal".
TEMPORARY_ISSUE_TRAILER = re.compile(r"\s*I encountered a temporary issue\b[^\n]*\s*$", re.IGNORECASE)
# The agent's last sentence is a question to the user ("Which style do you prefer: …?").
QUESTION_ENDING = re.compile(r"[?？]\s*[\"'”’)\]]*\s*$")

EXPORT_READY = NextAction(tool="export", why="The video is ready to export with one call.")
DESCRIBE_EDIT = NextAction(tool="chat", why="Describe the change in words (what to move, where, how long); it is applied through chat.")
ANSWER_QUESTION = NextAction(tool="chat", why="NemoVideo asked a question: ask the user and send their answer with chat.")


# What NemoVideo's second stage adds to a generated video that the timeline can tell (backend.md: "BGM, titles and effects").
POST_PRODUCTION = {"BGM", "Title", "Text"}


def step_for_tool(name: str) -> str:
    lowered = name.lower()
    if "generat" in lowered or "create" in lowered:
        return "🎬 Generating the video…"
    if any(word in lowered for word in ("music", "bgm", "audio", "volume", "sound")):
        return "🎵 Working on the music…"
    if any(word in lowered for word in ("text", "title", "caption", "subtitle")):
        return "✏️ Editing the text on screen…"
    return "✏️ Editing the timeline…"


def without_trailer(text: str, succeeded: bool) -> str:
    """The reply without the "temporary issue" trailer, unless the trailer is all there is to say."""
    stripped = TEMPORARY_ISSUE_TRAILER.sub("", text).rstrip()
    return stripped if stripped or succeeded else text


def asks_the_user(reply: str) -> bool:
    return bool(reply.strip()) and QUESTION_ENDING.search(reply) is not None


def is_generation(tool_names: set[str]) -> bool:
    return any("generat" in name.lower() or "create" in name.lower() for name in tool_names)


def failure_message(code: str | None, message: str) -> str:
    if code in SAFETY_CODES:
        return "NemoVideo's content filter blocked this request. Rephrase it and try again."
    detail = message.split(": ", 1)[-1].strip() if message else ""
    reason = f" ({detail})" if detail else ""
    return f"NemoVideo could not finish this request{reason}. You can try again or rephrase it."


class TurnRunner:
    def __init__(self, client: NemoClient, settings: Settings) -> None:
        self._client = client
        self._settings = settings

    async def run(self, job: Job, session_id: str, message: str, before: StateReply) -> Turn:
        job.update("📨 Sending your request to NemoVideo…")
        failure: str | None = None
        tools: set[str] = set()
        try:
            with anyio.fail_after(self._settings.turn_max_seconds):
                failure = await self._stream(job, session_id, message, tools)
            after = await self._client.state(session_id)
        except StreamInterrupted:
            after = await self._recover(job, session_id, before, said=job.partial_text)
            if after.state.fingerprint() == before.state.fingerprint():
                # Only words came, and the stream closed before their end: they are passed on as they are.
                result = await self._result(before, after, job.partial_text, None)
                # Whatever work the words announced may still land: watched like a generation's second stage.
                return Turn(result=result.model_copy(update={"notice": CUT_REPLY_NOTICE}), after=after,
                            expects_late_writes=True, generation=False)
        except TimeoutError:
            raise TurnFailed(
                "NemoVideo did not finish within its time limit. Check the project with the state tool; "
                "if nothing changed, try again with a simpler request."
            ) from None
        result = await self._result(before, after, job.partial_text, failure)
        # Generation is two-stage (music and titles land after the stream), and NemoVideo's tool names are not
        # documented: any turn that called a tool or changed the project may still have a write in flight.
        generation = is_generation(tools) or before.state.generated_media != after.state.generated_media
        did_something = bool(tools) or after.state.fingerprint() != before.state.fingerprint()
        return Turn(result=result, after=after, expects_late_writes=generation or did_something, generation=generation)

    async def recover_result(self, job: Job, session_id: str, before: StateReply) -> ChatResult:
        """A turn whose process died mid-stream: never re-sent, its outcome read from the project."""
        job.update("🔎 Checking your project for the result of the request…")
        after = await self._recover(job, session_id, before)
        return await self._result(before, after, "", None)

    async def watch_late_writes(self, job: Job, session_id: str, seen: StateReply,
                                on_change: Callable[[list[str], StateReply], None], window: float) -> list[str]:
        """Poll the project after a turn for work that lands late; each change is handed to `on_change`
        as soon as it is seen (so a watch cut short loses nothing), and all of them are returned once settled."""
        delays = _schedule(self._settings.late_write_delays_seconds)
        waited = 0.0
        changes: list[str] = []
        while waited < window:
            job.update("🔎 Checking whether NemoVideo adds more to the project…")
            delay = next(delays)
            await anyio.sleep(delay)
            waited += delay
            after = await self._client.state(session_id)
            if after.state.fingerprint() != seen.state.fingerprint():
                found = changes_between(seen, after)
                changes += found
                on_change(found, after)
                seen = after
            elif changes:
                break  # one quiet look after the late work landed: it has settled
        return changes

    async def _stream(self, job: Job, session_id: str, message: str, tools: set[str]) -> str | None:
        """Follow the turn; its text accumulates in `job.partial_text`. Returns the failure, if any."""
        failure: str | None = None
        quiet_limit = self._settings.turn_quiet_seconds
        async with self._client.run_sse(session_id, message) as events:
            iterator = aiter(events)
            last_activity = anyio.current_time()
            while True:
                # Heartbeats keep the connection open but are not progress: they do not reset the clock.
                remaining = last_activity + quiet_limit - anyio.current_time()
                try:
                    with anyio.fail_after(max(remaining, 0)):
                        event = await anext(iterator)
                except StopAsyncIteration:
                    return failure
                match event:
                    case TextDelta(text=text):
                        job.partial_text += text
                        job.update("💬 NemoVideo is replying…")
                    case ToolCall(name=name):
                        tools.add(name)
                        job.update(step_for_tool(name))
                    case ToolResponse() | StateDelta():
                        pass
                    case AgentError(code=code, message=text):
                        failure = failure_message(code, text)
                    case StreamError(message=text):
                        failure = failure or failure_message(None, text)
                    case _:
                        continue
                last_activity = anyio.current_time()

    async def _recover(self, job: Job, session_id: str, before: StateReply, said: str = "") -> StateReply:
        """The stream broke: poll the project (never re-send) until it changes or we give up.

        Giving up is a failure only when NemoVideo said nothing either; its words are a result.
        """
        log.info("Chat stream for job %s dropped; polling state instead of re-sending", job.id)
        delays = _schedule(self._settings.recovery_delays_seconds)
        waited = 0.0
        while waited < self._settings.recovery_give_up_seconds:
            job.update(f"🔌 The connection dropped; checking your project ({format_elapsed(waited)})…")
            delay = next(delays)
            await anyio.sleep(delay)
            waited += delay
            after = await self._client.state(session_id)
            if after.state.fingerprint() != before.state.fingerprint() or (said.strip() and waited >= max(
                    self._settings.recovery_delays_seconds)):
                return after
        raise TurnFailed(
            "The connection to NemoVideo dropped and your project did not change within "
            f"{format_elapsed(self._settings.recovery_give_up_seconds)}. The request was not sent again "
            "(that could charge twice). Check the project with `state` first; if your request is not there, "
            "say it again."
        )

    async def _result(self, before: StateReply, after: StateReply, raw_reply: str, failure: str | None) -> ChatResult:
        new_tracks = tracks_of(after.state.draft)
        changes = changes_between(before, after)
        if failure is not None:
            done = " Before it stopped: " + "; ".join(changes) if changes else ""
            raise TurnFailed(failure + done)
        translation = translate(without_trailer(raw_reply, succeeded=bool(changes)))
        reply = translation.text.strip()
        next_actions: list[NextAction] = []
        timeline = summarize(new_tracks) if changes or "state" in translation.actions else None
        if "export" in translation.actions and new_tracks:
            next_actions.append(EXPORT_READY)
        if "chat" in translation.actions:
            next_actions.append(DESCRIBE_EDIT)
        parts = [reply, *changes]
        if "state" in translation.actions and timeline:
            parts.append(timeline)
        if "credits" in translation.actions:
            balance = await self._client.credits()
            parts.append(f"Credits: {balance.available:g} available, {balance.total:g} in total.")
        # What the skill does in place of the buttons the agent pointed at.
        if "export" in translation.actions and new_tracks:
            parts.append(EXPORT_OFFER)
        if "chat" in translation.actions:
            parts.append(DESCRIBE_IN_WORDS)
        reply = "\n".join(part for part in parts if part) or (
            "NemoVideo finished, but it sent no reply and the timeline did not change. Try rephrasing the request."
        )
        if not changes and asks_the_user(translation.text):
            # The agent asked the user something: the host asks the user, it does not `wait`.
            return ChatResult(reply=reply, action="chat", status="needs_input", next_actions=[ANSWER_QUESTION])
        return ChatResult(reply=reply, action="chat", status="done", changes=changes, timeline=timeline,
                          next_actions=next_actions)


class Turn:
    """A finished turn: its result, the project as it was left, whether late work may land, and whether it
    generated a video (whose second stage, music and titles, may still be on its way)."""

    __slots__ = ("result", "after", "expects_late_writes", "generation")

    def __init__(self, *, result: ChatResult, after: StateReply, expects_late_writes: bool, generation: bool) -> None:
        self.result = result
        self.after = after
        self.expects_late_writes = expects_late_writes
        self.generation = generation

    @property
    def second_stage_pending(self) -> bool:
        """A generation whose draft has none of what the second stage adds (music, titles, effects) yet: a
        render now would miss them, so an export waits for them."""
        return self.generation and not any(
            track.kind in POST_PRODUCTION for track in tracks_of(self.after.state.draft))


def _schedule(delays: tuple[float, ...]) -> Iterator[float]:
    """The delays in order, then the last one forever."""
    return itertools.chain(delays, itertools.repeat(delays[-1]))


def changes_between(before: StateReply, after: StateReply) -> list[str]:
    changes = describe_changes(tracks_of(before.state.draft), tracks_of(after.state.draft))
    if not changes and after.state.draft != before.state.draft:
        changes = ["✏️ The timeline was updated."]
    if not changes and after.state.fingerprint() != before.state.fingerprint():
        changes = ["✏️ NemoVideo updated the project's media."]
    return changes
